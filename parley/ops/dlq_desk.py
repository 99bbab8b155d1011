"""The dead letters for the console's API (``parley.ports.DeadLetterDesk``): the same listing,
replay and purge as ``parley dlq`` (``parley.ops.dlq``), on the process's own broker and
document store. Each call reads the dead-letters topic to its current end (it is small: what
failed), within ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from parley.ops.common import OpsError
from parley.ops.dlq import (
    DeadLetterActions,
    LetterView,
    ReplayStep,
    letter_detail,
    letter_record,
    load_letters,
    replay_letters,
    select_for_purge,
    select_for_replay,
)
from parley.ports import DeadLetterRefused
from parley.settings import Settings

__all__ = ["DeadLetterService", "DESK_TIMEOUT_S", "desk_for"]

DESK_TIMEOUT_S = 30.0

#: () -> a started source or sink (``parley.ops.kafka_io.KafkaSource`` / ``KafkaSink``) as a context
Opener = Callable[[], AbstractAsyncContextManager[Any]]


class DeadLetterService:
    def __init__(
        self,
        database: Any,
        *,
        source: Opener,
        sink: Opener,
        timeout_s: float = DESK_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._actions = DeadLetterActions(database, clock=clock)
        self._source = source
        self._sink = sink
        self._timeout_s = timeout_s
        self._clock = clock

    async def _views(self) -> list[LetterView]:
        actions = await self._actions.all()
        async with self._source() as source:
            views, _ = await load_letters(source, actions)
        return views

    async def _timed(self, call: Any) -> Any:
        try:
            return await asyncio.wait_for(call, self._timeout_s)
        except OpsError as exc:
            raise DeadLetterRefused(str(exc), missing=str(exc).startswith("no dead letter")) from exc

    async def letters(self) -> list[dict[str, Any]]:
        return [letter_record(v) for v in await self._timed(self._views())]

    async def letter(self, dead_letter_id: str) -> dict[str, Any] | None:
        views = await self._timed(self._views())
        match = next((v for v in views if v.id == dead_letter_id), None)
        return None if match is None else letter_detail(match)

    async def replay(self, dead_letter_id: str, *, force: bool, deliver: bool) -> dict[str, Any]:
        return dict(await self._timed(self._replay(dead_letter_id, force=force, deliver=deliver)))

    async def _replay(self, dead_letter_id: str, *, force: bool, deliver: bool) -> dict[str, Any]:
        chosen = select_for_replay(await self._views(), ids=[dead_letter_id], force=force)
        steps: list[ReplayStep] = []
        async with self._sink() as sink:
            await replay_letters(
                chosen, sink, self._actions, out=io.StringIO(), force=force, deliver=deliver, dry_run=False,
                clock=self._clock, on_replayed=lambda _view, step: steps.append(step),
            )
        [step] = steps
        return {"mode": step.mode, "topic": step.topic, "event_id": step.event_id, "replay_id": step.replay_id}

    async def purge(self, dead_letter_id: str) -> None:
        await self._timed(self._purge(dead_letter_id))

    async def _purge(self, dead_letter_id: str) -> None:
        views = await self._views()
        select_for_purge(views, ids=[dead_letter_id])  # an unknown id is refused
        await self._actions.purge([dead_letter_id])


def desk_for(settings: Settings, database: Any) -> DeadLetterService | None:
    """The desk of a process with a broker (``PARLEY_KAFKA_URL``), else None."""
    if settings.kafka_url is None:
        return None
    from parley.ops.commands import kafka_sink, kafka_source

    return DeadLetterService(database, source=lambda: kafka_source(settings), sink=lambda: kafka_sink(settings))
