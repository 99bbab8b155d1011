"""KeyedRunner: ordered per key, concurrent across keys, acked only when done, bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from parley.streams.keyed import KeyedRunner


def sleeper(log: list[str], label: str, delay: float) -> Callable[[], Awaitable[None]]:
    async def work() -> None:
        log.append(f"start {label}")
        await asyncio.sleep(delay)
        log.append(f"end {label}")

    return work


async def test_same_key_runs_strictly_in_order() -> None:
    runner, log = KeyedRunner(limit=10), []
    for i, delay in enumerate([0.05, 0.01, 0.0, 0.02]):  # later work is faster
        await runner.submit("conv-1", sleeper(log, str(i), delay), lambda: None)
    await asyncio.wait_for(runner.drain(), 5)
    assert log == [f"{edge} {i}" for i in range(4) for edge in ("start", "end")]


async def test_different_keys_run_concurrently() -> None:
    runner, log = KeyedRunner(limit=100), []
    started = time.monotonic()
    for key in range(50):
        await runner.submit(key, sleeper(log, str(key), 0.2), lambda: None)
    await asyncio.wait_for(runner.drain(), 10)
    assert len(log) == 100
    assert time.monotonic() - started < 5  # serially it would take 10 s


async def test_done_is_called_only_after_the_work_finished_even_when_it_raises() -> None:
    runner, log = KeyedRunner(limit=10), []

    async def fails() -> None:
        await asyncio.sleep(0.01)
        log.append("failed")
        raise RuntimeError("boom")

    await runner.submit("a", sleeper(log, "ok", 0.01), lambda: log.append("ack ok"))
    await runner.submit("b", fails, lambda: log.append("ack failed"))
    assert "ack ok" not in log and "ack failed" not in log  # submit does not wait for the work
    await asyncio.wait_for(runner.drain(), 5)
    assert log.index("ack ok") > log.index("end ok")
    assert log.index("ack failed") > log.index("failed")
    assert runner.in_flight == 0


async def test_the_in_flight_limit_is_respected() -> None:
    runner, running, peak = KeyedRunner(limit=3), 0, 0

    async def work() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    for key in range(12):
        await runner.submit(key, work, lambda: None)
        assert runner.in_flight <= 3
    await asyncio.wait_for(runner.drain(), 5)
    assert peak == 3
