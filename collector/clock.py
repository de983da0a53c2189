"""Time for the collector: UTC ns, aligned ticks, and sleeping until a tick without waking early.

asyncio's timer may wake a little early (uvloop does ~20 % of the time, limits.md), so the clock is
checked after waking and the sleep resumed if needed.
"""
from __future__ import annotations

import asyncio
import time
from typing import Callable


STEP_NS = 1_000_000_000      # see collector.service.CLOCK_STEP_NS


def next_tick(now_ns: int, interval_ns: int) -> int:
    """The first multiple of ``interval_ns`` strictly after ``now_ns``."""
    return (now_ns // interval_ns + 1) * interval_ns


class Clock:
    def now_ns(self) -> int:
        return time.time_ns()

    async def sleep_until(self, t_ns: int, limit_ns: int | None = None) -> bool:
        """Sleep until the wall clock reads ``t_ns``; True then. False at once when ``t_ns`` lies
        more than ``limit_ns`` ahead (the caller never asks for more than one interval ahead, so
        the wall clock has stepped back): the caller re-anchors instead of waiting the step out."""
        while True:
            delta = t_ns - self.now_ns()
            if delta <= 0:
                return True
            if limit_ns is not None and delta > limit_ns:
                return False
            await asyncio.sleep(delta / 1e9)


class TickScheduler:
    """Runs every callback registered for a tick in one go, at that tick, with nothing else of
    the event loop in between, then the ``after`` hooks registered while they ran. The pipelined
    gateways use it so that every unit id's request of a tick is queued first and all of them
    are written to the sockets back to back: the spread of poll starts across 2,000 devices is
    then the time of a few socket writes, not of 2,000 tasks waking one after another between
    replies of the previous gateway."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._due: dict[int, list[Callable[[], None]]] = {}
        self._after: list[Callable[[], None]] = []

    def at(self, t_ns: int, cb: Callable[[], None]) -> None:
        if t_ns not in self._due:
            self._due[t_ns] = []
            self._schedule(t_ns)
        self._due[t_ns].append(cb)

    def after(self, cb: Callable[[], None]) -> None:
        """From a tick's callback: run ``cb`` once every callback of the tick has run."""
        self._after.append(cb)

    def _schedule(self, t_ns: int) -> None:
        loop = asyncio.get_running_loop()
        loop.call_at(loop.time() + max(t_ns - self.clock.now_ns(), 0) / 1e9, self._fire, t_ns)

    def _fire(self, t_ns: int) -> None:
        early = t_ns - self.clock.now_ns()
        # woke early (asyncio may, by a little): wait for the tick itself; early by more than a
        # step (the wall clock went back while waiting, the loop's timer runs on monotonic time):
        # fire now, the callers stamp on the new time rather than wait the step out
        if 0 < early <= STEP_NS:
            self._schedule(t_ns)
            return
        for cb in self._due.pop(t_ns, []):
            cb()
        after, self._after = self._after, []
        for cb in after:
            cb()
