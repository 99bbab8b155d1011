"""KeyedRunner: ordered per key, concurrent across keys, acked only when done, bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from parley.streams.keyed import KeyedBatcher, KeyedRunner, finish_in_flight


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


async def test_a_batcher_hands_the_waiting_events_of_a_key_over_together_in_order_and_acks_after() -> None:
    batcher = KeyedBatcher(limit=1000, name="test", max_batch=50)
    calls: list[tuple[str, list[int]]] = []
    acked: list[int] = []
    busy = asyncio.Event()

    async def work(items: list[tuple[str, int]]) -> None:
        calls.append((items[0][0], [n for _, n in items]))
        assert not any(n in acked for _, n in items), "acked only after its batch"
        await busy.wait()

    for n in range(120):  # a fetch's worth of events for two keys, nothing handled yet
        key = "a" if n % 3 else "b"
        await batcher.submit(key, (key, n), lambda n=n: acked.append(n), work)
    busy.set()
    await asyncio.wait_for(batcher.drain(), 5)
    a = [n for n in range(120) if n % 3]
    b = [n for n in range(120) if not n % 3]
    assert [c for c in calls if c[0] == "a"] == [("a", a[:50]), ("a", a[50:])]  # at most max_batch
    assert [c for c in calls if c[0] == "b"] == [("b", b)]
    assert sorted(acked) == list(range(120)) and batcher.in_flight == 0


async def test_events_arriving_while_a_batch_runs_form_the_next_batch_of_their_key() -> None:
    batcher = KeyedBatcher(limit=1000, name="test")
    calls: list[list[int]] = []
    release = asyncio.Event()

    async def work(items: list[int]) -> None:
        calls.append(items)
        if len(calls) == 1:
            await release.wait()

    await batcher.submit("k", 0, lambda: None, work)
    await asyncio.sleep(0.01)  # batch [0] is running
    for n in range(1, 30):
        await batcher.submit("k", n, lambda: None, work)
    release.set()
    await asyncio.wait_for(batcher.drain(), 5)
    assert calls == [[0], list(range(1, 30))]


async def test_a_batcher_bounds_the_events_it_holds() -> None:
    batcher = KeyedBatcher(limit=5, name="test")
    release = asyncio.Event()

    async def work(items: list[int]) -> None:
        await release.wait()

    for n in range(5):
        await batcher.submit(n, n, lambda: None, work)
    sixth = asyncio.ensure_future(batcher.submit(5, 5, lambda: None, work))
    await asyncio.sleep(0.05)
    assert not sixth.done(), "the sixth event waits for room"
    release.set()
    await asyncio.wait_for(sixth, 5)
    await asyncio.wait_for(batcher.drain(), 5)
