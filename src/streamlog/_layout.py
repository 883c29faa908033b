"""Every path of a data directory, named in one place.

::

    <data>/
      streamlog.json                    format version (storage._datadir)
      meta/
        instance.lock                   who has the directory open (storage._datadir)
        clean-shutdown                  present while closed cleanly (storage._datadir)
        catalog.lock                    guards topic create/delete/grow (coordination._catalog)
        catalog.version                 a change counter readers map (coordination._catalog)
        doorbells/                      wake-ups across processes (coordination._doorbell)
          board                         sleeper count + bell generation, mapped
          <pid>-<token>.sock            a sleeping reader's datagram socket
        topics/<topic>.json             the topic catalog (coordination._catalog)
        groups/<group>/                 one consumer group (coordination._groupstore)
          group.lock  state.json  version  members/<member id>
          offsets.log  offsets.lock     committed offsets (coordination._offsets)
      topics/<topic>/<partition>/       a partition log (storage._partition); segment
                                        file names are ``_fs.offset_to_name`` + suffix
      trash/                            deleted topics on their way out
      streams/<application id>/         stream apps' local store checkpoints
        <task id>/<store>.checkpoint    (streams._runtime; derived data, safe to delete)

Storage modules use only the directory-level names (``meta``, ``topics``,
``trash``, partition directories); what lives under ``meta/groups`` belongs to
the coordination layer, which hands storage anything it must sync at close as
a callback. Names that come from users or from disk (topics, groups, member
ids) are validated by their owners before they reach these functions.
"""

from __future__ import annotations

import os

FORMAT_FILE = "streamlog.json"
TMP_SUFFIX = ".tmp"


# ------------------------------------------------------------------ top level
def meta_dir(root: str) -> str:
    return os.path.join(root, "meta")


def topics_dir(root: str) -> str:
    return os.path.join(root, "topics")


def trash_dir(root: str) -> str:
    return os.path.join(root, "trash")


def streams_dir(root: str, application_id: str) -> str:
    return os.path.join(root, "streams", application_id)


def format_file(root: str) -> str:
    return os.path.join(root, FORMAT_FILE)


def instance_lock(root: str) -> str:
    return os.path.join(meta_dir(root), "instance.lock")


def clean_marker(root: str) -> str:
    return os.path.join(meta_dir(root), "clean-shutdown")


# ------------------------------------------------------------------ topics
def catalog_dir(root: str) -> str:
    return os.path.join(meta_dir(root), "topics")


def catalog_version(root: str) -> str:
    """8 bytes, a u64 bumped after every catalog change (readers map it)."""
    return os.path.join(meta_dir(root), "catalog.version")


def catalog_lock(root: str) -> str:
    return os.path.join(meta_dir(root), "catalog.lock")


def topic_meta_file(root: str, topic: str) -> str:
    return os.path.join(catalog_dir(root), f"{topic}.json")


def topic_deleting_file(root: str, topic: str) -> str:
    """A topic's catalog file renamed to ``<topic>.del`` marks its deletion under way."""
    return os.path.join(catalog_dir(root), f"{topic}{DELETING_SUFFIX}")


DELETING_SUFFIX = ".del"  # 249-character name + 4 <= NAME_MAX (255)


def topic_dir(root: str, topic: str) -> str:
    return os.path.join(topics_dir(root), topic)


def partition_dir(root: str, topic: str, partition: int) -> str:
    return os.path.join(topic_dir(root, topic), str(partition))


# ------------------------------------------------------------------ doorbells
BELL_SUFFIX = ".sock"


def doorbells_dir(root: str) -> str:
    return os.path.join(meta_dir(root), "doorbells")


def doorbell_board(root: str) -> str:
    """A small mapped file: the count of sleeping readers and the bells' generation."""
    return os.path.join(doorbells_dir(root), "board")


def bell_name(pid: int, token: str) -> str:
    """The file name of a reader's bell (an AF_UNIX datagram socket)."""
    return f"{pid}-{token}{BELL_SUFFIX}"


def bell_pid(name: str) -> int | None:
    """The process id a bell's file name carries, or None if ``name`` is not a bell."""
    stem, sep, _token = name.partition("-")
    if not sep or not name.endswith(BELL_SUFFIX) or not stem.isdigit() or len(stem) > 10:
        return None
    return int(stem)


def bell_path(root: str, name: str) -> str:
    return os.path.join(doorbells_dir(root), name)


# ------------------------------------------------------------------ groups
GROUP_STATE = "state.json"
GROUP_OFFSETS = "offsets.log"


def groups_dir(root: str) -> str:
    return os.path.join(meta_dir(root), "groups")


def group_dir(root: str, group: str) -> str:
    return os.path.join(groups_dir(root), group)


def group_state_file(root: str, group: str) -> str:
    return os.path.join(group_dir(root, group), GROUP_STATE)


def group_lock_file(root: str, group: str) -> str:
    return os.path.join(group_dir(root, group), "group.lock")


def group_version_file(root: str, group: str) -> str:
    return os.path.join(group_dir(root, group), "version")


def group_members_dir(root: str, group: str) -> str:
    return os.path.join(group_dir(root, group), "members")


def group_dirs(root: str, group: str) -> tuple[str, str, str, str]:
    """The directories from ``meta`` down to a group's members, outermost first."""
    return (
        meta_dir(root),
        groups_dir(root),
        group_dir(root, group),
        group_members_dir(root, group),
    )


def offsets_file(root: str, group: str) -> str:
    return os.path.join(group_dir(root, group), GROUP_OFFSETS)


def offsets_lock_file(root: str, group: str) -> str:
    return os.path.join(group_dir(root, group), "offsets.lock")


# ---------------------------------------------------------------- transactions
TXN_SUFFIX = ".txn"


def transactions_dir(root: str) -> str:
    """Transaction coordinator records, one per transactional id (``coordination._txn``)."""
    return os.path.join(meta_dir(root), "transactions")


def transactions_lock(root: str) -> str:
    """flock target guarding every transaction record and the producer-id counter."""
    return os.path.join(transactions_dir(root), "txn.lock")


def producer_ids_file(root: str) -> str:
    """The next producer id to hand out (JSON), written durably before use."""
    return os.path.join(transactions_dir(root), "producer_ids.json")


def transaction_file(root: str, transactional_id: str) -> str:
    return os.path.join(transactions_dir(root), transactional_id + TXN_SUFFIX)
