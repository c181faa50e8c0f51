"""Calls awaited on the event loop: a worker's reply is waited for in poll(2) only while the loop is idle,
and never keeps the loop from other episodes' events or from a call's deadline."""
from __future__ import annotations

import asyncio
import time

from skiller.servers import Environment


def test_a_runaway_call_awaited_alone_still_ends_at_its_deadline(rogue_env: Environment) -> None:
    started = time.monotonic()
    result = asyncio.run(rogue_env.acall("spin", {}))
    assert not result.ok and "exceeded the 1 s wall-clock limit" in (result.error or "")
    assert 0.9 < time.monotonic() - started < 30
    assert not rogue_env.alive


def test_another_environment_s_reply_is_served_while_a_call_waits(env: Environment, rogue_env: Environment) -> None:
    done: dict[str, float] = {}

    async def call(which: Environment, name: str, arguments: dict) -> None:
        result = await which.acall(name, arguments)
        done[name] = time.monotonic()
        assert result.ok == (name == "get_member")

    async def main() -> None:
        # The quick call is waiting on the loop when the runaway one starts waiting: its reply must not wait
        # for the runaway call's deadline.
        await asyncio.gather(call(env, "get_member", {"person_id": "P-001"}), call(rogue_env, "spin", {}))

    started = time.monotonic()
    asyncio.run(main())
    assert done["get_member"] - started < 0.5 < done["spin"] - started  # the runaway call's deadline is 1 s


def test_timers_run_while_a_call_waits(rogue_env: Environment) -> None:
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main() -> float:
        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        started = time.monotonic()
        result = await rogue_env.acall("spin", {})
        ticking.cancel()
        assert not result.ok and time.monotonic() - started < 1.9  # the deadline (1 s) holds, plus the kill
        return started

    started = asyncio.run(main())
    assert sum(started < t < started + 0.9 for t in ticks) >= 5  # ~90 on an idle machine; a blocked loop gives 0
