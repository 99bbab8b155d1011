"""KeyedRunner: ordered per key, concurrent across keys, acked only when done, bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from parley.streams.keyed import KeyedRunner, finish_in_flight


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


async def test_stopping_finishes_turns_first_then_the_stage_after_them() -> None:
    turns, persister, log, acked = KeyedRunner(10, "processor"), KeyedRunner(10, "persister"), [], []
    await turns.submit("c1", sleeper(log, "turn", 0.2), lambda: acked.append("turn"))

    async def reply_archived_later() -> None:  # the persister takes the turn's reply meanwhile
        await asyncio.sleep(0.1)
        await persister.submit("c1", sleeper(log, "archive", 0.1), lambda: acked.append("archive"))

    taking = asyncio.create_task(reply_archived_later())
    left = await asyncio.wait_for(finish_in_flight([[turns], [persister]], grace_s=5), 10)
    await taking
    assert left == 0
    assert acked == ["turn", "archive"]

    # closed: a runner takes nothing more (the event stays uncommitted for the next owner)
    blocked = asyncio.create_task(turns.submit("c2", sleeper(log, "late", 0), lambda: acked.append("late")))
    await asyncio.sleep(0.1)
    assert not blocked.done() and "start late" not in log
    blocked.cancel()


async def test_stopping_gives_up_after_the_grace_period_and_says_how_many_were_left() -> None:
    runner, log = KeyedRunner(10, "processor"), []
    for key in ("a", "b"):
        await runner.submit(key, sleeper(log, key, 30), lambda: None)
    started = time.monotonic()
    assert await finish_in_flight([[runner]], grace_s=0.2) == 2
    assert time.monotonic() - started < 5
    for task in list(runner._tails.values()):
        task.cancel()


async def test_a_runner_closed_while_the_loop_waits_for_a_slot_starts_nothing_new() -> None:
    runner, log = KeyedRunner(1, "processor"), []
    await runner.submit("a", sleeper(log, "a", 0.2), lambda: None)
    waiting = asyncio.create_task(runner.submit("b", sleeper(log, "b", 0), lambda: None))  # no slot yet
    await asyncio.sleep(0.05)
    runner.close()
    await asyncio.wait_for(runner.drain(), 5)
    await asyncio.sleep(0.1)
    assert log == ["start a", "end a"] and not waiting.done()
    waiting.cancel()
