"""The persister's work for one event: archive its messages, then deliver a reply.

Archive writes wait out a document store outage (``ArchiveWriter``): the event is not finished,
so it is not acked, until its documents are on the store or ``budget_s`` has passed (then the
failure goes to the dead letters like any other).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from parley.records import FUNCTION_CALL, OUTGOING, FunctionCallEvent, IncomingEvent, ReplyEvent
from parley.retry import ThrottledLog, retry_while, store_outage
from parley.streams.archive import document_for_calls, document_for_reply, documents_for_incoming
from parley.streams.codec import decode
from parley.streams.deadletters import RawEvent

__all__ = ["ArchiveWriter", "persist"]

logger = logging.getLogger(__name__)

#: (documents) -> per document, whether this call wrote it (``DocumentStore.archive``)
Archive = Callable[[list[dict[str, Any]]], Awaitable[list[bool]]]
#: (reply, maybe_delivered) -> delivered (``streams.delivery.deliver``)
Deliver = Callable[[ReplyEvent, bool], Awaitable[None]]


class ArchiveWriter:
    def __init__(
        self,
        archive: Archive,
        *,
        budget_s: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._archive = archive
        self._budget_s = budget_s
        self._sleep = sleep
        self._clock = clock
        self._outage_log = ThrottledLog(logger)

    async def write(self, docs: list[dict[str, Any]]) -> list[bool]:
        def waiting(exc: BaseException, delay: float) -> None:
            self._outage_log.warning(
                "persister: the document store did not take an archive write (%s: %s); retrying in "
                "%.1fs, the events stay unacked", type(exc).__name__, exc, delay,
            )

        return await retry_while(
            lambda: self._archive(docs), store_outage,
            budget_s=self._budget_s, on_retry=waiting, sleep=self._sleep, clock=self._clock,
        )


async def persist(raw: RawEvent, archive: ArchiveWriter, deliver: Deliver) -> None:
    """Archive the event's messages; a reply is then delivered (once it is archived)."""
    if raw.topic == OUTGOING:
        reply = decode(raw.value, ReplyEvent)
        [first_time] = await archive.write([document_for_reply(reply)])
        await deliver(reply, not first_time)
    elif raw.topic == FUNCTION_CALL:
        await archive.write([document_for_calls(decode(raw.value, FunctionCallEvent))])
    else:
        await archive.write(documents_for_incoming(decode(raw.value, IncomingEvent)))
