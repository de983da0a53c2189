"""Time for the collector: UTC ns, aligned ticks, and sleeping until a tick without waking early.

asyncio's timer may wake a little early (uvloop does ~20 % of the time, limits.md), so the clock is
checked after waking and the sleep resumed if needed.
"""
from __future__ import annotations

import asyncio
import time


def next_tick(now_ns: int, interval_ns: int) -> int:
    """The first multiple of ``interval_ns`` strictly after ``now_ns``."""
    return (now_ns // interval_ns + 1) * interval_ns


class Clock:
    def now_ns(self) -> int:
        return time.time_ns()

    async def sleep_until(self, t_ns: int) -> None:
        while True:
            delta = (t_ns - self.now_ns()) / 1e9
            if delta <= 0:
                return
            await asyncio.sleep(delta)
