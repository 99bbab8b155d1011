"""Keyed concurrency: events of one key run in order, different keys run concurrently.

``submit`` is called from the agent's ``async for`` loop; it returns once the event has a slot
(at most ``limit`` events in flight, which back-pressures the stream). The event's task is
created inside the loop, so it inherits Faust's current-event context (table writes go to the
event's partition). Each event is acked only when its work is done, so Faust commits only the
contiguous prefix of finished events and a crash repeats unfinished work instead of dropping it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from parley import metrics

__all__ = ["KeyedRunner"]

logger = logging.getLogger(__name__)


class KeyedRunner:
    def __init__(self, limit: int, name: str = "keyed") -> None:
        self._slots = asyncio.Semaphore(limit)
        self._tails: dict[Any, asyncio.Task[None]] = {}
        self._name = name
        self.in_flight = 0
        self._gauge = metrics.TURNS_IN_FLIGHT.labels(name)

    async def submit(
        self, key: Any, work: Callable[[], Awaitable[None]], done: Callable[[], Any]
    ) -> None:
        await self._slots.acquire()
        self.in_flight += 1
        self._gauge.inc()
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
            self.in_flight -= 1
            self._gauge.dec()
            self._slots.release()
            if self._tails.get(key) is asyncio.current_task():
                del self._tails[key]

    async def drain(self) -> None:
        """Wait until every submitted event is done."""
        while self._tails:
            await asyncio.wait(list(self._tails.values()))
