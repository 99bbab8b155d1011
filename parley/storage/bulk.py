"""Batched inserts into one MongoDB collection.

Many callers insert a few documents each (the persister archiving one event, a gateway claiming
one conversation); one round trip per document caps a store at ~1,000 writes/s, while one
unordered ``insert_many`` of a few hundred costs about the same as a single insert (measured on
the embedded document server: 1,000 ``insert_one`` 0.67 s, ten ``insert_many`` of 100: 0.06 s).

``BulkInserter.insert`` queues the documents and returns once *they* are on the store (so a
caller acks only what is written). A document goes out at once while fewer than ``max_writes``
batches are on the wire (no added latency when the store keeps up); otherwise it waits for the
next batch, which leaves as soon as a write finishes, when it holds ``max_docs`` documents, or
when its oldest one has waited ``max_wait_s``, whichever comes first (a group commit). One
batch on the wire at a time is the default: against the embedded document server, sustained echo
turns went from 211 (two at a time) and 191 (four) to 251 turns/s through the webhook, with the
store's CPU per turn down from 3.8-4.7 ms to 2.8 ms, at the same latency for a lone turn
(bench/throughput.py, bench/e2e_latency.py). An ``_id`` already present is not an error: the first write wins and the caller learns that the document was there. Any
other failure reaches exactly the callers whose documents it concerns; the others are written.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from pymongo.errors import BulkWriteError

__all__ = ["BulkFinder", "BulkInserter", "BulkWriteFailed", "DUPLICATE_KEY"]

logger = logging.getLogger(__name__)

#: MongoDB's error code for a duplicate key.
DUPLICATE_KEY = 11000


class BulkWriteFailed(RuntimeError):
    """A document was not written (nothing to do with a duplicate ``_id``); retry it."""


class _Collection(Protocol):
    async def insert_many(self, documents: list[dict[str, Any]], *, ordered: bool) -> Any: ...


class _Findable(Protocol):
    def find(self, query: dict[str, Any]) -> Any: ...


class _GroupCommit:
    """The batching of ``BulkInserter``: documents queue, go out in batches (``_send``), and
    each caller returns once its own documents are written."""

    def __init__(
        self,
        *,
        max_docs: int = 500,
        max_wait_s: float = 0.005,
        max_writes: int = 1,
        max_queued: int = 50_000,
    ) -> None:
        if max_docs < 1 or max_writes < 1 or max_queued < max_docs:
            raise ValueError("max_docs and max_writes must be at least 1, max_queued at least max_docs")
        self._max_docs = max_docs
        self._max_wait_s = max_wait_s
        self._queue: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._max_writes = max_writes
        self._writing = 0  # batches on the wire
        self._room = asyncio.Semaphore(max_queued)  # documents queued or being written
        self._tasks: set[asyncio.Task[None]] = set()

    async def _submit(self, docs: list[dict[str, Any]]) -> list[bool]:
        if not docs:
            return []
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bool]] = []
        for doc in docs:
            await self._room.acquire()
            future: asyncio.Future[bool] = loop.create_future()
            future.add_done_callback(lambda _: self._room.release())
            self._queue.append((doc, future))
            futures.append(future)
        if len(self._queue) >= self._max_docs or self._writing < self._max_writes:
            self._write_queued()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_wait_s, self._write_queued)
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return [bool(outcome) for outcome in outcomes]

    async def close(self) -> None:
        """Write what is queued and wait for every write in flight."""
        self._write_queued()
        while self._tasks or self._queue:
            if self._queue and self._writing < self._max_writes:
                self._write_queued()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _write_queued(self) -> None:
        """Send what is queued, in batches of ``max_docs``, as far as ``max_writes`` allows (the
        rest goes when a write finishes); the timer only matters when nothing finishes."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue and self._writing < self._max_writes:
            batch, self._queue = self._queue[: self._max_docs], self._queue[self._max_docs :]
            self._writing += 1
            task = asyncio.get_running_loop().create_task(self._write(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._queue and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_wait_s, self._write_queued)

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        try:
            await self._write_batch(batch)
        finally:
            self._writing -= 1
            if self._queue:
                self._write_queued()

    async def _write_batch(self, batch: list[tuple[dict[str, Any], asyncio.Future[bool]]]) -> None:
        batch = [(doc, future) for doc, future in batch if not future.done()]  # callers gone
        if not batch:
            return
        try:
            await self._send([doc for doc, _ in batch])
        except BulkWriteError as exc:
            _settle_partial(batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets it
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(True)


    async def _send(self, docs: list[dict[str, Any]]) -> None:
        raise NotImplementedError


class BulkInserter(_GroupCommit):
    def __init__(self, collection: _Collection, **options: Any) -> None:
        super().__init__(**options)
        self._collection = collection

    async def insert(self, docs: list[dict[str, Any]]) -> list[bool]:
        """Write ``docs`` (each with its ``_id``); per document, True if this call inserted it,
        False if a document with that ``_id`` was already there. Raises ``BulkWriteFailed`` (or
        the driver's error) when any of them was not written; the others may have been."""
        return await self._submit(docs)

    async def _send(self, docs: list[dict[str, Any]]) -> None:
        await self._collection.insert_many(docs, ordered=False)


def _settle_partial(batch: list[tuple[dict[str, Any], asyncio.Future[bool]]], exc: BulkWriteError) -> None:
    """An unordered insert went on past its failed documents: duplicates were there already (not
    an error), any other failure is its document's caller's; a write-concern error is everyone's."""
    details = exc.details or {}
    if details.get("writeConcernErrors"):
        failure = BulkWriteFailed(f"write concern not satisfied: {details['writeConcernErrors'][0].get('errmsg')}")
        for _, future in batch:
            if not future.done():
                future.set_exception(failure)
        return
    errors = {int(error["index"]): error for error in details.get("writeErrors", ())}
    for index, (_, future) in enumerate(batch):
        if future.done():
            continue
        error = errors.get(index)
        if error is None:
            future.set_result(True)
        elif error.get("code") == DUPLICATE_KEY:
            future.set_result(False)
        else:
            future.set_exception(BulkWriteFailed(f"document not written: {error.get('errmsg')} (code {error.get('code')})"))


class BulkFinder:
    """Lookups by ``_id`` from many callers, answered by one ``{"_id": {"$in": [...]}}`` query per
    batch: a lookup goes out at once while fewer than ``max_reads`` queries are on the wire, else
    with the next batch (``max_ids`` ids, sent when a query finishes or after ``max_wait_s``). A
    thousand hellos on new conversations cost a few queries, not a thousand driver round trips."""

    def __init__(self, collection: _Findable, *, max_ids: int = 500, max_wait_s: float = 0.005, max_reads: int = 4) -> None:
        self._collection = collection
        self._max_ids = max_ids
        self._max_wait_s = max_wait_s
        self._max_reads = max_reads
        self._reading = 0
        self._waiting: dict[Any, list[asyncio.Future[dict[str, Any] | None]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def find(self, doc_id: Any) -> dict[str, Any] | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, Any] | None] = loop.create_future()
        self._waiting.setdefault(doc_id, []).append(future)
        if len(self._waiting) >= self._max_ids or self._reading < self._max_reads:
            self._read_waiting()
        elif self._timer is None:
            self._timer = loop.call_later(self._max_wait_s, self._read_waiting)
        return await future

    def _read_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._waiting and self._reading < self._max_reads:
            ids = list(self._waiting)[: self._max_ids]
            batch = {doc_id: self._waiting.pop(doc_id) for doc_id in ids}
            self._reading += 1
            task = asyncio.get_running_loop().create_task(self._read(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._waiting and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_wait_s, self._read_waiting)

    async def _read(self, batch: dict[Any, list[asyncio.Future[dict[str, Any] | None]]]) -> None:
        try:
            found = {doc["_id"]: doc async for doc in self._collection.find({"_id": {"$in": list(batch)}})}
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets it
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        finally:
            self._reading -= 1
            if self._waiting:
                self._read_waiting()
        for doc_id, futures in batch.items():
            for future in futures:
                if not future.done():
                    future.set_result(found.get(doc_id))
