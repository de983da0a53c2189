"""The tick scheduler runs every callback of a tick, then the hooks they registered, with no
other task of the event loop in between — what keeps the pipelined gateways' poll starts within
a socket write of each other."""
from __future__ import annotations

import asyncio

from cpaudit.collector.clock import Clock, TickScheduler, next_tick


def test_callbacks_of_a_tick_run_together_then_their_after_hooks() -> None:
    events: list[str] = []

    async def main() -> None:
        clock = Clock()
        ticks = TickScheduler(clock)
        tick = next_tick(clock.now_ns(), 50_000_000)

        async def busy() -> None:      # another task, ready all the time until the tick is done
            while "after g3" not in events:
                events.append("task")
                await asyncio.sleep(0)
            events.append("task")

        def cb(name: str) -> None:
            events.append(name)
            ticks.after(lambda: events.append(f"after {name}"))

        for name in ("g1", "g2", "g3"):
            ticks.at(tick, lambda n=name: cb(n))
        ticks.at(tick + 50_000_000, lambda: events.append("next tick"))
        task = asyncio.create_task(busy())
        await asyncio.sleep(0.15)
        await task
        assert clock.now_ns() >= tick
        i = events.index("g1")
        assert events[i - 1] == "task" and events[i + 6] == "task"    # it ran around the tick
        assert events[i:i + 6] == ["g1", "g2", "g3", "after g1", "after g2", "after g3"]
        assert "next tick" in events[i + 6:]

    asyncio.run(main())


def test_a_tick_already_past_runs_at_once() -> None:
    async def main() -> list[str]:
        ticks = TickScheduler(Clock())
        out: list[str] = []
        ticks.at(Clock().now_ns() - 10**9, lambda: out.append("late"))
        await asyncio.sleep(0.01)
        return out

    assert asyncio.run(main()) == ["late"]
