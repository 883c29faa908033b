"""librdkafka configuration (dotted names) checked and translated to streamlog's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._types import KafkaError, KafkaException

__all__ = ["ACCEPTED", "Conf", "parse"]

# Every property librdkafka knows (CONFIGURATION.md, global and topic) that the shim
# accepts without acting on it: there is no network, broker or security layer.
ACCEPTED = frozenset([
    "builtin.features", "metadata.broker.list", "bootstrap.servers",
    "message.copy.max.bytes", "receive.message.max.bytes",
    "max.in.flight.requests.per.connection", "max.in.flight",
    "topic.metadata.refresh.interval.ms", "metadata.max.age.ms",
    "topic.metadata.refresh.fast.interval.ms", "topic.metadata.refresh.fast.cnt",
    "topic.metadata.refresh.sparse", "topic.metadata.propagation.max.ms", "topic.blacklist",
    "debug", "socket.timeout.ms", "socket.blocking.max.ms", "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes", "socket.keepalive.enable", "socket.nagle.disable",
    "socket.max.fails", "broker.address.ttl", "broker.address.family",
    "socket.connection.setup.timeout.ms", "connections.max.idle.ms",
    "reconnect.backoff.jitter.ms", "reconnect.backoff.ms", "reconnect.backoff.max.ms",
    "statistics.interval.ms", "enabled_events", "log_level", "log.queue", "log.thread.name",
    "enable.random.seed", "log.connection.close", "api.version.request",
    "api.version.request.timeout.ms", "api.version.fallback.ms", "broker.version.fallback",
    "allow.auto.create.topics", "security.protocol", "ssl.cipher.suites", "ssl.curves.list",
    "ssl.sigalgs.list", "ssl.key.location", "ssl.key.password", "ssl.key.pem",
    "ssl.certificate.location", "ssl.certificate.pem", "ssl.ca.location", "ssl.ca.pem",
    "ssl.ca.certificate.stores", "ssl.crl.location", "ssl.keystore.location",
    "ssl.keystore.password", "ssl.providers", "ssl.engine.location", "ssl.engine.id",
    "enable.ssl.certificate.verification", "ssl.endpoint.identification.algorithm",
    "sasl.mechanisms", "sasl.mechanism", "sasl.kerberos.service.name",
    "sasl.kerberos.principal", "sasl.kerberos.kinit.cmd", "sasl.kerberos.keytab",
    "sasl.kerberos.min.time.before.relogin", "sasl.username", "sasl.password",
    "sasl.oauthbearer.config", "enable.sasl.oauthbearer.unsecure.jwt",
    "sasl.oauthbearer.method", "sasl.oauthbearer.client.id",
    "sasl.oauthbearer.client.secret", "sasl.oauthbearer.scope",
    "sasl.oauthbearer.extensions", "sasl.oauthbearer.token.endpoint.url",
    "plugin.library.paths", "client.rack", "retry.backoff.ms", "retry.backoff.max.ms",
    "retries", "message.send.max.retries", "client.dns.lookup", "enable.metrics.push",
    "queue.buffering.backpressure.threshold", "compression.level", "batch.num.messages",
    "sticky.partitioning.linger.ms", "request.timeout.ms", "message.timeout.ms",
    "delivery.timeout.ms", "delivery.report.only.error", "enable.gapless.guarantee",
    "transaction.timeout.ms", "queued.min.messages", "queued.max.messages.kbytes",
    "fetch.wait.max.ms", "fetch.queue.backoff.ms", "fetch.message.max.bytes",
    "max.partition.fetch.bytes", "fetch.max.bytes", "fetch.min.bytes",
    "fetch.error.backoff.ms", "offset.store.method", "coordinator.query.interval.ms",
    "check.crcs", "group.protocol.type", "group.protocol", "group.remote.assignor",
    "consume.callback.max.messages", "client.software.name", "client.software.version",
    "error_cb", "throttle_cb", "stats_cb", "logger", "oauth_cb", "on_commit", "on_delivery",
    "dr_cb", "dr_msg_cb", "message.max.bytes", "queue.buffering.max.messages",
    "queue.buffering.max.kbytes", "queue.buffering.max.ms", "linger.ms", "batch.size",
    "acks", "request.required.acks", "compression.type", "compression.codec", "partitioner",
    "enable.idempotence", "transactional.id", "client.id", "group.id", "group.instance.id",
    "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms",
    "partition.assignment.strategy", "auto.offset.reset", "enable.auto.commit",
    "auto.commit.interval.ms", "enable.auto.offset.store", "enable.partition.eof",
    "isolation.level", "auto.commit.enable", "produce.offset.report",
])

_TRUE = {"true", "1", "yes", "on", "t"}
_FALSE = {"false", "0", "no", "off", "f"}


def _invalid(text: str) -> KafkaException:
    return KafkaException(KafkaError(KafkaError._INVALID_ARG, text))


class Conf:
    """A checked librdkafka config: typed getters with librdkafka's defaults."""

    def __init__(self, conf: Mapping[str, Any]) -> None:
        self.raw = dict(conf)

    def get(self, *names: str, default: Any = None) -> Any:
        for n in names:
            if n in self.raw:
                return self.raw[n]
        return default

    def get_bool(self, name: str, default: bool) -> bool:
        v = self.raw.get(name, default)
        if isinstance(v, bool):
            return v
        if isinstance(v, int):
            return v != 0
        if isinstance(v, str) and v.lower() in _TRUE | _FALSE:
            return v.lower() in _TRUE
        raise _invalid(f'Invalid value "{v}" for configuration property "{name}"')

    def get_int(self, *names: str, default: int, low: int = 0, high: int = 2**31 - 1) -> int:
        v = self.get(*names, default=default)
        try:
            n = int(float(v)) if isinstance(v, (str, float)) else int(v)
        except (TypeError, ValueError):
            raise _invalid(
                f'Invalid value "{v}" for configuration property "{names[0]}"'
            ) from None
        if not low <= n <= high:
            raise _invalid(
                f'Configuration property "{names[0]}" value {n} is outside allowed range '
                f"{low}..{high}"
            )
        return n

    def get_str(self, *names: str, default: str | None = None) -> str | None:
        v = self.get(*names, default=default)
        return None if v is None else str(v)

    def callback(self, name: str) -> Callable[..., Any] | None:
        v = self.raw.get(name)
        if v is not None and not callable(v):
            raise TypeError(f"expected {name} property as a callable function")
        return v


def parse(conf: object, kind: str) -> Conf:
    """Check ``conf`` as librdkafka does when a client is created: a dict of known
    property names (unknown ones raise ``KafkaException(_INVALID_ARG)``, "No such
    configuration property")."""
    if conf is None:
        conf = {}
    if not isinstance(conf, Mapping):
        raise TypeError(f"expected configuration dict, not {type(conf).__name__}")
    for key in conf:
        if not isinstance(key, str):
            raise TypeError("expected configuration property name as type str")
        if key not in ACCEPTED and not key.startswith("default.topic.config"):
            raise _invalid(f'No such configuration property: "{key}"')
    return Conf(conf)
