"""MQTT source. The only module that imports aiomqtt (pinned <3: its main branch is a rewrite).

QoS 1 with a persistent session (fixed client id, ``clean_session=False``): the broker keeps the
subscriptions and queues messages while the collector is away. paho's ``manual_ack`` is switched on
so a message is acknowledged only after its samples are committed to the store (aiomqtt 2.x does
not expose the option; it is set on its paho client). Hence: at-least-once into the store; a
message redelivered after a crash or reconnect yields the same (tag, sender timestamp) and the
store ignores it. Without a sender timestamp the receive time stamps the sample, and a redelivery
can then appear twice with two receive times.

Malformed payloads are counted per kind and logged once per kind; they never stop the loop or
other topics, and they are acknowledged (in order) so the broker does not redeliver them forever.

A push source (:class:`collector.sources.PushSource`): :meth:`MqttSource.samples` is the async
iterator of what the messages held, each batch with the acknowledgements to send once it is
committed.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
from collections import Counter
from typing import Any, AsyncGenerator

import aiomqtt

from cpaudit.collector.clock import Clock
from cpaudit.collector.sources import Outbox, Reading, Rows
from cpaudit.collector.payloads import PayloadError, match, parse
from cpaudit.config.models import MqttDevice, Subscription
from cpaudit.store import Quality, Reason
from cpaudit.store.keys import health_tag

log = logging.getLogger("cpaudit.collector.mqtt")

BACKOFF_MAX_S = 30.0


class MqttSource:
    def __init__(self, cfg: MqttDevice, clock: Clock) -> None:
        self.cfg, self.clock = cfg, clock
        self.out = Outbox()
        self._task: asyncio.Task[None] | None = None
        self.declared = {t.tag for t in cfg.tags}
        self.malformed: Counter[str] = Counter()
        self._logged: set[str] = set()
        self.received = 0
        self.acked = 0               # acknowledgements sent (each after its message's commit)
        self.readings = 0
        self.connected = False
        self.connects = 0
        self.failures = 0
        self.backoff_s = 0.0
        self.last_offset_ms = math.nan

    # -- messages ------------------------------------------------------------------------------
    def _count(self, kind: str, topic: str, detail: str) -> None:
        self.malformed[kind] += 1
        if kind not in self._logged:
            self._logged.add(kind)
            log.warning("%s: malformed message (%s) on %r: %s; further %s messages are counted "
                        "in health, not logged", self.cfg.name, kind, topic, detail, kind)

    def handle(self, topic: str, payload: bytes, ack: Any = None) -> int:
        """Turn one message into samples and queue them; ``ack`` runs once they are stored."""
        self.received += 1
        now = self.clock.now_ns()
        tags: list[str] = []
        stamps: list[int] = []
        values: list[float] = []
        sub, caps = self._route(topic)
        try:
            if sub is None:
                raise PayloadError("unknown_topic", "no subscription matches")
            for p in parse(sub, topic, payload, self.cfg.max_payload, caps):
                if p.tag not in self.declared:
                    self._count("undeclared_tag", topic, f"tag {p.tag!r} is not in the device's tags")
                    continue
                if p.ts_ns is not None:
                    self.last_offset_ms = (now - p.ts_ns) / 1e6
                tags.append(p.tag)
                stamps.append(p.ts_ns if p.ts_ns is not None else now)
                values.append(p.value)
        except PayloadError as e:
            self._count(e.kind, topic, str(e))
            tags, stamps, values = [], [], []
        n = len(tags)
        self.readings += n
        self.out.put_rows(tags, stamps, values, ack)   # the broker waits for the ack (committed)
        return n

    def _ack(self, paho: Any, mid: int, qos: int) -> None:
        paho.ack(mid, qos)
        self.acked += 1

    def _route(self, topic: str) -> tuple[Subscription | None, list[str] | None]:
        for s in self.cfg.subscriptions:
            caps = match(s.topic, topic)
            if caps is not None:
                return s, caps
        return None, None

    # -- connection ----------------------------------------------------------------------------
    def _client(self) -> aiomqtt.Client:
        pw = os.environ.get(self.cfg.password_env) if self.cfg.password_env else None
        client = aiomqtt.Client(self.cfg.host, self.cfg.port, identifier=self.cfg.client_id,
                                clean_session=False, keepalive=self.cfg.keepalive_s,
                                username=self.cfg.username, password=pw, timeout=10)
        paho = getattr(client, "_client", None)
        if self.cfg.qos == 1 and paho is not None and hasattr(paho, "manual_ack_set"):
            paho.manual_ack_set(True)
        return client

    @property
    def label(self) -> str:
        return self.cfg.name

    async def start(self) -> None:
        """Nothing to bind: the connection is made (and re-made) by :meth:`samples`."""

    async def samples(self) -> AsyncGenerator[Rows, None]:
        """Connect, subscribe and reconnect with backoff until :meth:`aclose`; the batches of
        samples the messages held."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mqtt {self.cfg.name}")
        try:
            async for rows in self.out.batches():
                yield rows
        finally:
            self._task.cancel()

    async def aclose(self) -> None:
        self.out.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            client = self._client()
            paho = getattr(client, "_client", None)
            try:
                async with client:
                    for s in self.cfg.subscriptions:       # restored on every (re)connect
                        await client.subscribe(s.topic, qos=self.cfg.qos)
                    self.connected = True
                    self.connects += 1
                    if self.failures:
                        log.warning("%s: reconnected to %s:%d after %d failures", self.cfg.name,
                                    self.cfg.host, self.cfg.port, self.failures)
                    self.failures, backoff, self.backoff_s = 0, 0.5, 0.0
                    async for msg in client.messages:
                        payload = msg.payload if isinstance(msg.payload, bytes) else \
                            str(msg.payload).encode()
                        ack = None
                        if msg.qos > 0 and paho is not None:
                            ack = functools.partial(self._ack, paho, msg.mid, msg.qos)
                        self.handle(str(msg.topic), payload, ack)
            except aiomqtt.MqttError as e:
                self.connected = False
                self.failures += 1
                if self.failures == 1:
                    log.warning("%s: MQTT connection to %s:%d lost or refused (%s); retrying "
                                "with backoff", self.cfg.name, self.cfg.host, self.cfg.port, e)
                self.backoff_s = backoff
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
            except Exception as e:  # noqa: BLE001 - a bug must not end ingestion silently
                # whatever escaped: the health says offline, the log says what, and the source
                # reconnects (an unacknowledged message is delivered again)
                self.connected = False
                self.failures += 1
                kind = type(e).__name__
                self.malformed["internal:" + kind] += 1
                if self.malformed["internal:" + kind] == 1:
                    log.exception("%s: the MQTT source failed (%s); it reconnects, and further "
                                  "failures of this kind are counted in cpaudit_mqtt_malformed_"
                                  "total{kind=\"internal:%s\"}", self.cfg.name, e, kind)
                self.backoff_s = backoff
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    def health(self, tick: int) -> list[Reading]:
        def tag(q: str) -> str:
            return health_tag(self.cfg.name, q)
        off = self.last_offset_ms
        return [
            Reading(tag("online"), 1.0 if self.connected else 0.0),
            Reading(tag("consecutive_failures"), float(self.failures)),
            Reading(tag("backoff_s"), self.backoff_s),
            Reading(tag("received"), float(self.received)),
            Reading(tag("malformed"), float(sum(self.malformed.values()))),
            Reading(tag("clock_offset_ms"), off, Quality.GOOD if math.isfinite(off)
                    else Quality.BAD, Reason.NONE if math.isfinite(off) else Reason.STALE),
        ]
