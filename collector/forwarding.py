"""The config's sinks, forwarded from the store beside the collection: one
:class:`store.forward.Forwarder` per sink, each in its own thread, its health stored each tick
under ``_health.sink.<name>.``, and a last catch-up at a clean stop so it leaves no backlog.

Built by whoever builds the sinks (``cpaudit collect``) and handed to the collector as a
:class:`collector.sources.Companion`; the collector's service knows nothing of forwarding.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
import os
import threading
import time
from typing import Callable
from zoneinfo import ZoneInfo

from cpaudit.collector.sources import Reading
from cpaudit.config import Config, checks
from cpaudit.config.models import InfluxV1Sink
from cpaudit.config.models import InfluxV2Sink as InfluxV2SinkConfig
from cpaudit.store import Quality, Reason, SQLiteStore, Store, StoreError
from cpaudit.store.changes import Change, apply_all
from cpaudit.store.forward import Forwarder, Sink
from cpaudit.store.keys import health_tag

log = logging.getLogger("cpaudit.collector")

STOP_JOIN_S = 10.0       # a forwarder thread's time to finish its batch at stop
CATCH_UP_S = 10.0        # the last catch-up's time at stop, per sink


def forwarders(cfg: Config, store: Store) -> list[Forwarder]:
    """One forwarder from ``store`` per sink of the config (none without sinks)."""
    if not cfg.sinks:
        return []
    if not isinstance(store, SQLiteStore):
        raise ValueError("forwarding needs the SQLite store as the record")
    out = []
    # every point carries its site and campaign: many edge boxes share one database
    scope = {"site": cfg.campaign.site, "campaign": cfg.campaign.name}
    for s in cfg.sinks:
        sink: Sink
        if isinstance(s, InfluxV1Sink):
            from cpaudit.store.influx import InfluxV1Store
            pw = os.environ.get(s.password_env) if s.password_env else None
            sink = InfluxV1Store(s.url, s.database, measurement=s.measurement,
                                 username=s.username, password=pw, create=False, scope=scope)
        else:
            from cpaudit.store.influx import InfluxV2Sink
            sink = InfluxV2Sink(s.url, os.environ.get(s.token_env, ""), s.org, s.bucket,
                                s.measurement, scope=scope)
        out.append(Forwarder(store, sink, s.name, batch_size=s.batch_size,
                             take_changes=_change_taker(cfg, store, s)))
    return out


def _change_taker(cfg: Config, store: SQLiteStore, s: InfluxV1Sink | InfluxV2SinkConfig
                  ) -> Callable[[list[Change]], dict[str, int]] | None:
    """What applies the changes asked for centrally to this box's record, when its sink names
    the key they are signed with (``changes_key_env``, a v1 sink's: the one read back) and the
    environment holds it."""
    env = s.changes_key_env if isinstance(s, InfluxV1Sink) else None
    if not env:
        return None
    key = os.environ.get(env, "")
    if not key:
        log.warning("%s: changes_key_env names %s, which is not set: this box takes no change "
                    "from the office", s.name, env)
        return None
    tz = ZoneInfo(cfg.campaign.timezone)

    def shown(ns: int) -> str:
        return dt.datetime.fromtimestamp(ns / 1e9, tz).isoformat(timespec="seconds")

    ignored: set[str] = set()        # unverified ids, each counted once

    def take(chs: list[Change]) -> dict[str, int]:
        return apply_all(store, chs, key=key.encode(), site=cfg.campaign.site or "",
                         campaign=cfg.campaign.name,
                         problem=functools.partial(checks.change_problem, cfg), now=time.time_ns(),
                         fmt=shown, ignored=ignored)
    return take


class Forwarding:
    """The forwarders of a campaign run beside its collector (a
    :class:`~collector.sources.Companion`)."""

    def __init__(self, fwds: list[Forwarder]) -> None:
        self.forwarders = fwds
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_config(cls, cfg: Config, store: Store) -> Forwarding:
        return cls(forwarders(cfg, store))

    def start(self) -> None:
        self._threads = [threading.Thread(target=f.run, args=(self._stop,),
                                          name=f"forward-{f.name}", daemon=True)
                         for f in self.forwarders]
        for t in self._threads:
            t.start()

    def health(self, tick: int) -> list[Reading]:
        readings = []
        for f in self.forwarders:
            def tag(q: str, name: str = f.name) -> str:
                return health_tag(f"sink.{name}", q)
            last = f.stats.last_forward_ns
            readings += [
                Reading(tag("backlog"), float(f.stats.backlog)),
                Reading(tag("errors"), float(f.stats.errors)),
                Reading(tag("undeliverable"), float(f.stats.undeliverable)),
                Reading(tag("forwarded"), float(f.stats.forwarded)),
                Reading(tag("backoff_s"), f.stats.backoff_s),
                Reading(tag("since_last_forward_s"),
                        (tick - last) / 1e9 if last else math.nan,
                        Quality.GOOD if last else Quality.BAD,
                        Reason.NONE if last else Reason.CONNECTION),
            ]
            if f.take_changes is not None:      # the changes from the office, counted
                readings += [Reading(tag(q), float(getattr(f.stats, q)))
                             for q in ("changes_applied", "changes_refused",
                                       "changes_unverified", "changes_malformed",
                                       "changes_errors")]
        return readings

    async def aclose(self) -> None:
        """Stop the threads, then a last catch-up, so a clean stop leaves no backlog."""
        self._stop.set()
        for t in self._threads:
            await asyncio.to_thread(t.join, STOP_JOIN_S)
        for f in self.forwarders:
            try:
                await asyncio.wait_for(asyncio.to_thread(f.drain), CATCH_UP_S)
            except (StoreError, asyncio.TimeoutError) as e:
                log.warning("%s: %d samples not forwarded at stop (%s); they stay in the "
                            "store and go at the next start", f.name, f.stats.backlog, e)
            f.sink.close()
