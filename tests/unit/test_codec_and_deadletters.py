"""Decoding topic payloads, and guarded(): retry what is transient, dead-letter what is not."""

from __future__ import annotations

import base64
import json

import faust
import pytest

from parley.records import DeadLetter, FunctionCallEvent, IncomingEvent, ReplyEvent
from parley.streams.codec import DecodeError, decode, encode
from parley.streams.deadletters import RawEvent, guarded

ENVELOPE = {"event_id": "e1", "conversation_id": "c1", "application_id": "demo", "created_at": 1.5}

RECORDS = [
    IncomingEvent(
        **ENVELOPE, text="héllo ✓", sender="ann", channel="generic", client_message_id="m1"
    ),
    IncomingEvent(
        **ENVELOPE,
        kind="tool_results",
        turn_id="t1",
        tool_round=2,
        tool_results=[{"tool_call_id": "x", "name": "calc", "content": "4", "is_error": False}],
    ),
    FunctionCallEvent(
        **ENVELOPE,
        turn_id="t1",
        tool_round=1,
        calls=[{"id": "x", "name": "calc", "arguments": "{}"}],
    ),
    ReplyEvent(**ENVELOPE, in_reply_to="t1", text="hi", is_error=True),
    DeadLetter(
        dead_letter_id="d1", stage="processor", error="boom", error_type="RuntimeError",
        topic="incoming", partition=3, offset=42, key="c1", original_b64="e30=", failed_at=2.0,
    ),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_round_trips(record: faust.Record) -> None:
    decoded = decode(encode(record), type(record))
    assert type(decoded) is type(record)
    assert decoded.asdict() == record.asdict()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "empty payload"),
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'[{"event_id": "e1"}]', "JSON list, not an object"),
        (json.dumps({"event_id": "e1", "conversation_id": "c1"}).encode(), "not a IncomingEvent"),
        (json.dumps({**ENVELOPE, "created_at": "yesterday"}).encode(), "not a IncomingEvent"),
    ],
)
def test_bad_payloads_raise_decode_error(raw: bytes | None, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(raw, IncomingEvent)


RAW = RawEvent(topic="incoming", partition=1, offset=7, key=b"c1", value=b'{"bad": \x00}')


class Recorder:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls = 0
        self.letters: list[DeadLetter] = []

    async def handler(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)

    async def send(self, letter: DeadLetter) -> None:
        self.letters.append(letter)


async def run(recorder: Recorder) -> bool:
    return await guarded(
        "processor", RAW, recorder.handler, recorder.send, max_attempts=3, base_backoff_s=0.001
    )


async def test_a_transient_failure_is_retried() -> None:
    recorder = Recorder(ConnectionError("broker blip"))
    assert await run(recorder) is True
    assert recorder.calls == 2 and recorder.letters == []


async def test_a_decode_error_is_dead_lettered_without_retry() -> None:
    recorder = Recorder(DecodeError("payload is not JSON"))
    assert await run(recorder) is False
    assert recorder.calls == 1
    [letter] = recorder.letters
    assert (letter.error_type, letter.attempts) == ("DecodeError", 1)


async def test_a_persistent_failure_is_dead_lettered_with_the_original_bytes() -> None:
    recorder = Recorder(*[RuntimeError("mongo down")] * 5)
    assert await run(recorder) is False
    assert recorder.calls == 3
    [letter] = recorder.letters
    assert base64.b64decode(letter.original_b64) == RAW.value
    assert (letter.stage, letter.error_type, letter.error, letter.attempts) == (
        "processor", "RuntimeError", "mongo down", 3
    )
    assert (letter.topic, letter.partition, letter.offset, letter.key) == ("incoming", 1, 7, "c1")
    assert decode(encode(letter), DeadLetter).asdict() == letter.asdict()


async def test_a_permanent_error_is_dead_lettered_without_retries() -> None:
    from parley.channels.base import DeliveryRefused
    from parley.streams.deadletters import RawEvent, guarded

    calls, letters = [], []

    async def handler() -> None:
        calls.append(1)
        raise DeliveryRefused("platform said 400")

    async def send(letter) -> None:  # type: ignore[no-untyped-def]
        letters.append(letter)

    raw = RawEvent("outgoing", 0, 5, b"c1", b"{}")
    assert await guarded("persister.outgoing", raw, handler, send, max_attempts=5, base_backoff_s=0.001) is False
    assert len(calls) == 1 and letters[0].error_type == "DeliveryRefused"
