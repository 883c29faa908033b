"""``streamlog.aio``: the asyncio API, modelled on aiokafka (docs/asyncio.md).

    import streamlog, streamlog.aio

    async def main(log: streamlog.Log) -> None:
        async with streamlog.aio.AIOProducer(log) as p:
            md = await p.send_and_wait("orders", b"{}", key=b"alice")
        async with streamlog.aio.AIOConsumer(log, "orders", auto_offset_reset="earliest") as c:
            async for record in c:
                ...

Built on the sync clients' non-blocking operations (``poll(0)``, the producer's
inline append), with the waiting done on the event loop: appends in this process wake
awaiting consumers through the loop, appends by other processes through the data
directory's doorbell (registered with ``loop.add_reader``), with the sync consumer's
back-off where there is no doorbell. Blocking I/O that cannot be avoided (opening a
directory given as a path, group joins with their listener callbacks, synced writes,
transaction commits, closing) runs in a private pool of worker threads.

Every object belongs to one event loop (the one it was created or first used on);
several loops in several threads work, each with its own objects.
"""

from __future__ import annotations

from ._consumer import AIOConsumer as AIOConsumer
from ._consumer import ConsumerRebalanceListener as ConsumerRebalanceListener
from ._eventstore import AIOEventStore as AIOEventStore
from ._eventstore import AIOSubscription as AIOSubscription
from ._producer import AIOProducer as AIOProducer
from ._table import AIOTable as AIOTable
from ._table import refresh as refresh

__all__ = [
    "AIOConsumer",
    "AIOEventStore",
    "AIOProducer",
    "AIOSubscription",
    "AIOTable",
    "ConsumerRebalanceListener",
    "refresh",
]
