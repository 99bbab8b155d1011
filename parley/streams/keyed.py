"""Keyed concurrency: events of one key run in order, different keys run concurrently.

``submit`` is called from the agent's ``async for`` loop; it returns once the event has a slot
(at most ``limit`` events in flight, which back-pressures the stream). The event's task is
created inside the loop, so it inherits Faust's current-event context (table writes go to the
event's partition). Each event is acked only when its work is done, so Faust commits only the
contiguous prefix of finished events and a crash repeats unfinished work instead of dropping it.

On shutdown, ``finish_in_flight`` closes runners to new events and waits, within a grace period,
for the events they hold: a stopping worker finishes its turns instead of leaving them to be
started again by the partitions' next owner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from parley import metrics

__all__ = ["KeyedBatcher", "KeyedRunner", "finish_in_flight"]

logger = logging.getLogger(__name__)


class _KeyedTasks:
    """What both runners share: at most ``limit`` events at once, a task chain per key, closing
    (``submit`` waits from then on) and draining."""

    def __init__(self, limit: int, name: str) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._tails: dict[Any, asyncio.Task[None]] = {}
        self._name = name
        self.in_flight = 0
        self._gauge = metrics.TURNS_IN_FLIGHT.labels(name)
        self._open = asyncio.Event()
        self._open.set()

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        """Take no more events: ``submit`` waits from now on (the worker is stopping; events not
        taken stay uncommitted and go to the partition's next owner)."""
        self._open.clear()

    async def _admit(self) -> None:
        """Wait for a slot while open; then count the event in flight."""
        while True:
            await self._open.wait()
            await self._slots.acquire()
            if self._open.is_set():
                break
            self._slots.release()  # closed while waiting for a slot: take nothing more
        self.in_flight += 1
        self._gauge.inc()

    def _release(self, key: Any, events: int) -> None:
        """Give back the slots of ``events`` finished events of ``key``'s current task."""
        self.in_flight -= events
        self._gauge.dec(events)
        for _ in range(events):
            self._slots.release()
        if self._tails.get(key) is asyncio.current_task():
            del self._tails[key]

    async def drain(self) -> None:
        """Wait until every submitted event is done."""
        while self._tails:
            await asyncio.wait(list(self._tails.values()))


class KeyedRunner(_KeyedTasks):
    def __init__(self, limit: int, name: str = "keyed") -> None:
        super().__init__(limit, name)

    async def submit(
        self, key: Any, work: Callable[[], Awaitable[None]], done: Callable[[], Any]
    ) -> None:
        await self._admit()
        previous = self._tails.get(key)
        task = asyncio.create_task(self._run(key, previous, work, done), name=f"{self._name}:{key!r}")
        self._tails[key] = task

    async def _run(
        self,
        key: Any,
        previous: asyncio.Task[None] | None,
        work: Callable[[], Awaitable[None]],
        done: Callable[[], Any],
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - work is expected to dead-letter its own failures
                logger.exception("%s: unhandled error for key %r", self._name, key)
            done()
        finally:
            self._release(key, 1)


class KeyedBatcher(_KeyedTasks):
    """Like ``KeyedRunner``, but the events of one key that arrive while the key is busy (or in
    the same run of the event loop: everything a fetch brought) are handled together, by one
    call of ``work`` with all of them, and each is acked (``done``) after that call. For cheap
    work whose cost is per call, not per event: the usage agent writes an application's counters
    once per batch instead of once per turn.

    A batch runs in the context of its first event (a table write goes to that event's
    partition, which is its key's: keys are message keys). At most ``max_batch`` events per call;
    a key that was idle waits ``max_wait_s`` before its first batch, to gather what follows.
    """

    def __init__(self, limit: int, name: str = "batched", *, max_batch: int = 500, max_wait_s: float = 0.0) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError("max_batch must be at least 1, max_wait_s not negative")
        super().__init__(limit, name)
        self._max_wait_s = max_wait_s
        self._max_batch = max_batch
        self._open_batch: dict[Any, list[tuple[Any, Callable[[], Any]]]] = {}  # per key, still filling
        self.batches = 0  # calls of ``work`` so far

    async def submit(
        self, key: Any, item: Any, done: Callable[[], Any], work: Callable[[list[Any]], Awaitable[None]]
    ) -> None:
        await self._admit()
        batch = self._open_batch.get(key)
        if batch is None:
            batch = self._open_batch[key] = []
            task = asyncio.create_task(self._run(key, batch, self._tails.get(key), work), name=f"{self._name}:{key!r}")
            self._tails[key] = task
        batch.append((item, done))
        if len(batch) >= self._max_batch:
            del self._open_batch[key]  # full: the next event of the key starts another batch

    async def _run(
        self,
        key: Any,
        batch: list[tuple[Any, Callable[[], Any]]],
        previous: asyncio.Task[None] | None,
        work: Callable[[list[Any]], Awaitable[None]],
    ) -> None:
        try:
            if previous is not None:
                await asyncio.wait([previous])
            else:
                await asyncio.sleep(self._max_wait_s)  # let the events already fetched join the batch
            if self._open_batch.get(key) is batch:
                del self._open_batch[key]  # from now on events of the key start another batch
            self.batches += 1
            try:
                await work([item for item, _ in batch])
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - work is expected to dead-letter its own failures
                logger.exception("%s: unhandled error for key %r", self._name, key)
            for _, done in batch:
                done()
        finally:
            if self._open_batch.get(key) is batch:
                del self._open_batch[key]
            self._release(key, len(batch))


#: After a stage finished events, how long the next stage stays open to take what they produced
#: (a reply written to ``outgoing`` reaches the persister within a fetch or two).
SETTLE_S = 1.0


async def finish_in_flight(stages: list[list[KeyedRunner | KeyedBatcher]], grace_s: float, settle_s: float = SETTLE_S) -> int:
    """Close the runners and let their events finish, stage after stage, within ``grace_s`` in
    all; a stage's runners are closed only when the stages before it are done (and, when those
    finished anything, ``settle_s`` later), so the persister still takes and delivers the replies
    of the turns finished before it. Returns how many events were still running when the grace
    period ran out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    produced = False  # did an earlier stage finish events whose output the next stage takes?
    for stage in stages:
        if produced:
            await asyncio.sleep(max(0.0, min(settle_s, deadline - loop.time())))
        for runner in stage:
            runner.close()
        waiting = sum(r.in_flight for r in stage)
        if waiting:
            names = ", ".join(r.name for r in stage)
            logger.info("stopping: finishing %d events in flight (%s) within %.0fs", waiting, names, grace_s)
            produced = True
        remaining = deadline - loop.time()
        try:
            await asyncio.wait_for(asyncio.gather(*(r.drain() for r in stage)), max(0.0, remaining))
        except TimeoutError:
            break
    for stage in stages:  # out of time: the later stages take nothing more either
        for runner in stage:
            runner.close()
    left = sum(r.in_flight for stage in stages for r in stage)
    if left:
        logger.warning(
            "stopping: %d events in flight did not finish within PARLEY_SHUTDOWN_GRACE_S=%.0fs; "
            "the partitions' next owner handles them again", left, grace_s,
        )
    return left
