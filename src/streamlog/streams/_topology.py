"""The topology: the graph the DSL builds, cut into sub-topologies and tasks.

Nodes are sources (read topics), processors and sinks (write topics). Two
nodes belong to the same *sub-topology* when an edge or a (non-global) state
store connects them; an internal repartition topic is a sink in one
sub-topology and a source in another, which is where the graph is cut. Each
sub-topology runs as one *task* per partition of its source topics (which
must be co-partitioned: equal partition counts), named ``<sub>_<partition>``
as in Kafka Streams.

The builder is used by one thread while the application is defined; a built
``Topology`` is immutable and shared by every task.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import TopologyError
from ._processor import Processor
from ._serdes import Serde
from ._stores import StateStore

__all__ = ["NodeSpec", "StoreSpec", "SubTopology", "Topology", "TopologyBuilder"]


@dataclass
class NodeSpec:
    """One node: ``make()`` builds its processor for a task."""

    name: str
    make: Callable[[], Processor]
    parents: list[str]
    stores: tuple[str, ...] = ()
    # sources: the topics read and their serdes (None = the app's default)
    source_topics: tuple[str, ...] = ()
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    # sinks: the topic written
    sink_topic: str | None = None
    children: list[str] = field(default_factory=list)

    @property
    def is_source(self) -> bool:
        return bool(self.source_topics)


@dataclass
class StoreSpec:
    name: str
    make: Callable[[], StateStore]
    logged: bool = True
    is_global: bool = False
    global_topic: str | None = None  # a global store is filled from this topic
    key_serde: Serde | None = None  # of the global topic
    value_serde: Serde | None = None


@dataclass
class InternalTopic:
    """A repartition topic (``partitions`` None: as many as the upstream sources)."""

    name: str
    partitions: int | None = None
    upstream: str | None = None  # a node of the writing sub-topology


@dataclass
class SubTopology:
    id: int
    nodes: list[str]  # topological order (parents first)
    source_topics: tuple[str, ...]
    stores: tuple[str, ...]
    sink_topics: tuple[str, ...]


class Topology:
    """A built topology: nodes, stores, sub-topologies, internal topics."""

    def __init__(
        self,
        nodes: dict[str, NodeSpec],
        stores: dict[str, StoreSpec],
        internal: dict[str, InternalTopic],
        subtopologies: list[SubTopology],
    ) -> None:
        self.nodes = nodes
        self.stores = stores
        self.internal_topics = internal
        self.subtopologies = subtopologies
        self.source_topic_to_sub: dict[str, SubTopology] = {}
        self.source_nodes: dict[str, str] = {}  # topic -> source node name
        for sub in subtopologies:
            for topic in sub.source_topics:
                self.source_topic_to_sub[topic] = sub
        for node in nodes.values():
            for topic in node.source_topics:
                self.source_nodes[topic] = node.name

    @property
    def source_topics(self) -> list[str]:
        return sorted(self.source_topic_to_sub)

    @property
    def global_stores(self) -> list[StoreSpec]:
        return [s for s in self.stores.values() if s.is_global]

    def describe(self) -> str:
        """A human-readable description, like Kafka's ``TopologyDescription``."""
        lines = []
        for sub in self.subtopologies:
            lines.append(f"Sub-topology: {sub.id}")
            for name in sub.nodes:
                node = self.nodes[name]
                if node.source_topics:
                    what = f"Source: {name} (topics: {list(node.source_topics)})"
                elif node.sink_topic is not None:
                    what = f"Sink: {name} (topic: {node.sink_topic})"
                else:
                    what = f"Processor: {name} (stores: {list(node.stores)})"
                lines.append(f"  {what}")
                lines.append(f"    --> {', '.join(node.children) or 'none'}")
        for spec in self.global_stores:
            lines.append(f"Global store: {spec.name} (topic: {spec.global_topic})")
        return "\n".join(lines)


class TopologyBuilder:
    """Collects nodes and stores while the DSL is used; ``build()`` cuts it up."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeSpec] = {}
        self.stores: dict[str, StoreSpec] = {}
        self.internal: dict[str, InternalTopic] = {}
        self._counter = itertools.count()
        self._source_by_topic: dict[str, str] = {}
        self.built = False

    def new_name(self, prefix: str) -> str:
        return f"{prefix}-{next(self._counter):010d}"

    def _check_open(self) -> None:
        if self.built:
            raise TopologyError(
                "the topology cannot change after the application started (or a TestDriver "
                "was made from it); define every stream before start()"
            )

    def add_source(
        self,
        topics: Sequence[str],
        key_serde: Serde | None,
        value_serde: Serde | None,
        make: Callable[[], Processor],
        prefix: str = "KSTREAM-SOURCE",
    ) -> str:
        self._check_open()
        for topic in topics:
            if topic in self._source_by_topic:
                raise TopologyError(
                    f"topic {topic!r} is already a source of this topology; reuse the KStream "
                    "or KTable made from it (Kafka Streams refuses the same)"
                )
        name = self.new_name(prefix)
        self.nodes[name] = NodeSpec(
            name,
            make,
            [],
            source_topics=tuple(topics),
            key_serde=key_serde,
            value_serde=value_serde,
        )
        for topic in topics:
            self._source_by_topic[topic] = name
        return name

    def add_processor(
        self,
        prefix: str,
        make: Callable[[], Processor],
        parents: Sequence[str],
        stores: Sequence[str] = (),
    ) -> str:
        self._check_open()
        name = self.new_name(prefix)
        for parent in parents:
            if parent not in self.nodes:
                raise TopologyError(f"unknown parent node {parent!r}")
        for store in stores:
            if store not in self.stores:
                raise TopologyError(f"unknown state store {store!r}")
        self.nodes[name] = NodeSpec(name, make, list(parents), stores=tuple(stores))
        for parent in parents:
            self.nodes[parent].children.append(name)
        return name

    def add_sink(self, topic: str, make: Callable[[], Processor], parent: str) -> str:
        name = self.add_processor("KSTREAM-SINK", make, [parent])
        self.nodes[name].sink_topic = topic
        return name

    def add_store(self, spec: StoreSpec) -> str:
        self._check_open()
        if spec.name in self.stores:
            raise TopologyError(f"a state store named {spec.name!r} already exists")
        self.stores[spec.name] = spec
        return spec.name

    def connect_store(self, node: str, store: str) -> None:
        spec = self.nodes[node]
        if store not in spec.stores:
            spec.stores = (*spec.stores, store)

    def add_internal_topic(self, name: str, upstream: str, partitions: int | None = None) -> str:
        self._check_open()
        self.internal[name] = InternalTopic(name, partitions, upstream)
        return name

    def build(self) -> Topology:
        self.built = True
        parent: dict[str, str] = {n: n for n in self.nodes}

        def find(x: str) -> str:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        def union(a: str, b: str) -> None:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

        store_owner: dict[str, str] = {}
        for node in self.nodes.values():
            for p in node.parents:
                union(node.name, p)
            for store in node.stores:
                if self.stores[store].is_global:
                    continue
                if store in store_owner:
                    union(node.name, store_owner[store])
                else:
                    store_owner[store] = node.name
        groups: dict[str, list[str]] = {}
        for name in self.nodes:  # insertion order is a topological order (parents first)
            groups.setdefault(find(name), []).append(name)
        subs = []
        order = {name: i for i, name in enumerate(self.nodes)}
        for i, members in enumerate(sorted(groups.values(), key=lambda m: order[m[0]])):
            topics = tuple(t for n in members for t in self.nodes[n].source_topics)
            stores = tuple(
                dict.fromkeys(
                    s for n in members for s in self.nodes[n].stores if not self.stores[s].is_global
                )
            )
            sinks = tuple(
                self.nodes[n].sink_topic for n in members if self.nodes[n].sink_topic is not None
            )
            if not topics:
                raise TopologyError(f"nodes {members} are not connected to any source topic")
            subs.append(SubTopology(i, members, topics, stores, sinks))  # type: ignore[arg-type]
        return Topology(dict(self.nodes), dict(self.stores), dict(self.internal), subs)
