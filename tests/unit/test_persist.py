"""The persister's work for one event: it returns (and so the event is acked) only once the
event's documents are on the store, waiting out a store outage with backoff."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from parley.records import ReplyEvent
from parley.storage.bulk import BulkWriteFailed
from parley.streams.codec import encode
from parley.streams.deadletters import RawEvent
from parley.streams.persist import ArchiveWriter, persist
from parley.web.ingress import user_event


class Store:
    """An archive that is down for its first ``down_for`` calls."""

    def __init__(self, down_for: int = 0, error: Exception | None = None) -> None:
        self.down_for = down_for
        self.error = error or ServerSelectionTimeoutError("127.0.0.1:27017: connection refused")
        self.calls = 0
        self.docs: dict[str, dict[str, Any]] = {}

    async def archive(self, docs: list[dict[str, Any]]) -> list[bool]:
        self.calls += 1
        if self.calls <= self.down_for:
            raise self.error
        fresh = [d["_id"] not in self.docs for d in docs]
        for doc in docs:
            self.docs.setdefault(doc["_id"], doc)
        return fresh


class Sleeps:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def raw(topic: str, value: bytes) -> RawEvent:
    return RawEvent(topic=topic, partition=0, offset=7, key=b"k", value=value)


def reply_raw(event_id: str = "r-1") -> RawEvent:
    reply = ReplyEvent(event_id=event_id, conversation_id="c", application_id="app", created_at=time.time(),
                       text="Hi!", channel="generic", in_reply_to="e-1")
    return raw("outgoing", encode(reply))


async def test_a_user_message_is_archived_before_persist_returns() -> None:
    store = Store()
    event = user_event(application_id="app", conversation_id="c", channel="websocket", client_message_id="m", text="hi")
    await persist(raw("incoming", encode(event)), ArchiveWriter(store.archive, budget_s=1), _no_delivery)
    assert list(store.docs) == [event.event_id]


async def test_an_outage_is_waited_out_with_growing_backoff_and_one_log_line(caplog: pytest.LogCaptureFixture) -> None:
    store, sleeps = Store(down_for=5), Sleeps()
    delivered: list[tuple[str, bool]] = []

    async def deliver(reply: ReplyEvent, maybe_delivered: bool) -> None:
        assert reply.event_id in store.docs, "a reply is delivered only once it is archived"
        delivered.append((reply.event_id, maybe_delivered))

    writer = ArchiveWriter(store.archive, budget_s=300, sleep=sleeps)
    with caplog.at_level(logging.WARNING):
        await persist(reply_raw(), writer, deliver)
    assert store.calls == 6
    assert delivered == [("r-1", False)], "archived just now: it cannot have been delivered before"
    assert len(sleeps.delays) == 5 and max(sleeps.delays) <= 5.0
    assert sleeps.delays[-1] > sleeps.delays[0], "the backoff grows"
    assert sum("did not take an archive write" in r.getMessage() for r in caplog.records) == 1


async def test_a_reply_archived_before_is_checked_for_an_earlier_delivery() -> None:
    store = Store()
    delivered: list[bool] = []

    async def deliver(reply: ReplyEvent, maybe_delivered: bool) -> None:
        delivered.append(maybe_delivered)

    writer = ArchiveWriter(store.archive, budget_s=1)
    await persist(reply_raw(), writer, deliver)
    await persist(reply_raw(), writer, deliver)  # the event again (a redelivery)
    assert delivered == [False, True]


async def test_an_outage_longer_than_the_budget_fails_the_event() -> None:
    store, sleeps = Store(down_for=1000), Sleeps()
    clock = [0.0]

    async def sleep(delay: float) -> None:
        clock[0] += delay
        await sleeps(delay)

    writer = ArchiveWriter(store.archive, budget_s=30, sleep=sleep, clock=lambda: clock[0])
    with pytest.raises(ServerSelectionTimeoutError):
        await writer.write([{"_id": "x"}])
    assert 0 < sum(sleeps.delays) <= 30
    assert store.calls == len(sleeps.delays) + 1


async def test_a_refused_document_is_not_retried() -> None:
    store = Store(down_for=1, error=BulkWriteFailed("document not written: too large (code 10334)"))
    with pytest.raises(BulkWriteFailed):
        await persist(reply_raw(), ArchiveWriter(store.archive, budget_s=300), _no_delivery)
    assert store.calls == 1


async def _no_delivery(reply: ReplyEvent, maybe_delivered: bool) -> None:
    raise AssertionError("nothing is delivered")
