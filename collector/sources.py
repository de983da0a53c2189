"""The two shapes of a source, and what flows out of them. The service runs a list of sources
without knowing their protocol; :mod:`collector.kinds` maps the config's device kinds to them.

- A :class:`PolledSource` (Modbus) is read on aligned ticks: at each tick of its interval the
  tick scheduler calls :meth:`PolledSource.poll` and stamps its readings with the tick. Sources
  that share a pipelined :class:`SharedLink` (a gateway) are polled together: their requests are
  written back to back in the tick's scheduler callback (:meth:`PipelinedSource.send`), then
  collected (:meth:`PipelinedSource.finish`).
- A :class:`PushSource` (MQTT, HJ 212) sends when it likes: :meth:`PushSource.samples` is an
  async iterator of :class:`Rows` (as aiomqtt's messages are an async iterator of messages),
  each batch stamped by the source with its own instants and carrying what to run once the batch
  is committed to the store (an MQTT acknowledgement, an HJ 212 answer).

Both give their health as readings (:meth:`PushSource.health`, the service's own for polled
sources), stored under ``_health.<device>.`` (:func:`store.keys.health_tag`).

This module imports only the store: every source depends on it, and it on no source, no writer
and no service.
"""
from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, Callable, Protocol

from cpaudit.store import Quality, Reason
from cpaudit.store.keys import health_tag


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one tag, its instant given beside it (the tick, or the batch's instant)."""
    tag: str
    value: float
    quality: Quality = Quality.GOOD
    reason: Reason = Reason.NONE


@dataclass(slots=True)
class Rows:
    """A batch of samples from a push source as plain lists, in arrival order (the store keeps the
    first sample of a tag at an instant, so order matters), and the callbacks to run, in order,
    once all of it is committed to the store."""
    tags: list[str] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)           # [ns UTC]
    values: list[float] = field(default_factory=list)
    quality: list[int] = field(default_factory=list)
    reason: list[int] = field(default_factory=list)
    done: list[Callable[[], None]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tags)


class Outbox:
    """What a push source has received and not yet handed on: filled synchronously from its
    protocol callbacks (a message, a packet), emptied by :meth:`batches`, the async iterator the
    source's :meth:`PushSource.samples` returns. Everything queued between two wakes of the
    consumer goes as one :class:`Rows` (one writer call per loop turn, not per message)."""

    def __init__(self) -> None:
        self.rows = Rows()
        self._ready = asyncio.Event()
        self._closed = False

    def put_rows(self, tags: list[str], ts: list[int], values: list[float],
                 done: Callable[[], None] | None = None) -> None:
        """Good readings (finite values); ``done`` runs once they are committed."""
        r = self.rows
        r.tags.extend(tags)
        r.ts.extend(ts)
        r.values.extend(values)
        zeros = [0] * len(tags)
        r.quality.extend(zeros)
        r.reason.extend(zeros)
        if done is not None:
            r.done.append(done)
        self._ready.set()

    def put_readings(self, ts: int, readings: list[Reading]) -> None:
        """Readings of any quality, all at instant ``ts`` [ns UTC]."""
        r = self.rows
        for x in readings:
            r.tags.append(x.tag)
            r.ts.append(ts)
            r.values.append(x.value)
            r.quality.append(x.quality)
            r.reason.append(x.reason)
        self._ready.set()

    def close(self) -> None:
        """No more rows: :meth:`batches` yields what is queued and ends."""
        self._closed = True
        self._ready.set()

    async def batches(self) -> AsyncGenerator[Rows, None]:
        while True:
            await self._ready.wait()
            self._ready.clear()
            rows, self.rows = self.rows, Rows()
            if rows.tags or rows.done:
                yield rows
            if self._closed:
                return


# a polled source's health, stored each tick under _health.<device>.<quantity>
POLL_HEALTH = ("online", "latency_ms", "lateness_ms", "consecutive_failures", "backoff_s",
               "polls", "good_polls")


@dataclass
class DeviceHealth:
    """What the service keeps of a polled source between its polls."""
    name: str
    polls: int = 0
    good_polls: int = 0
    consecutive_failures: int = 0
    last_good_ns: int | None = None
    last_latency_ms: float = math.nan
    last_lateness_ms: float = math.nan
    backoff_until_ns: int = 0
    backoff_s: float = 0.0
    logged_failure: bool = False
    tags: tuple[str, ...] = ()      # its health tags, in the order of POLL_HEALTH

    def __post_init__(self) -> None:
        self.tags = tuple(health_tag(self.name, q) for q in POLL_HEALTH)

    @property
    def state(self) -> str:
        if self.polls == 0:
            return "starting"
        return "online" if self.consecutive_failures == 0 else "offline"


class PolledSource(Protocol):
    """A device read on the ticks. ``poll`` reads every tag once and returns a reading for each
    (bad with the reason when it could not be read); it never raises for a device's failure. One
    with a ``link`` attribute (a :class:`SharedLink`) that is pipelined is a
    :class:`PipelinedSource`."""
    tags: list[str]           # every tag a poll returns, in order
    sent_ns: int              # when the last poll's first request actually went out [ns UTC]
    #                           (0: not known, the tick's start is taken)

    @property
    def name(self) -> str: ...
    @property
    def interval_s(self) -> float | None: ...          # None: the collector's interval

    async def poll(self) -> list[Reading]: ...
    def all_bad(self, reason: Reason) -> list[Reading]: ...
    def close(self) -> None: ...


def shared_link(src: PolledSource) -> SharedLink | None:
    """The pipelined link ``src`` shares with others, if any."""
    link: SharedLink | None = getattr(src, "link", None)
    return link if link is not None and link.pipelined else None


class SharedLink(Protocol):
    """One connection that several polled sources take turns on (a gateway, a serial bus). A
    pipelined one lets them all send at the tick, then collect the replies."""
    pipelined: bool
    label: str
    client: Any               # the open connection, or None

    async def ensure(self, device: str) -> Any: ...


class PipelinedSource(PolledSource, Protocol):
    """A polled source on a pipelined link: ``send`` writes its requests now (no await) on the
    corked connection and returns what ``finish`` waits for."""
    @property
    def link(self) -> SharedLink: ...

    def send(self, conn: Any) -> Any: ...
    async def finish(self, conn: Any, sent: Any) -> list[Reading]: ...


class PushSource(Protocol):
    """A source that sends when it likes (a broker's messages, loggers connecting to us)."""
    @property
    def label(self) -> str: ...

    async def start(self) -> None:
        """What must work before collection starts (listening on a port): an error stops the
        collector with a message."""
    def samples(self) -> AsyncGenerator[Rows, None]:
        """The batches received, until :meth:`aclose`."""
    def health(self, tick: int) -> list[Reading]:
        """Health readings at ``tick`` [ns UTC], asked once per collector tick."""
    async def aclose(self) -> None:
        """Stop receiving; :meth:`samples` yields what it holds and ends."""


class Companion(Protocol):
    """Runs beside the collection on what it stored (the forwarders to the sinks): started once
    the collector has recorded its downtime, asked for health readings each tick, closed after
    the collector's last commit (so it can catch up with it)."""
    def start(self) -> None: ...
    def health(self, tick: int) -> list[Reading]: ...
    async def aclose(self) -> None: ...
