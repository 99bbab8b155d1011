"""In-memory stand-ins for the ops commands' source (a topic), sink (a producer) and ledgers."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from parley.ops.kafka_io import PartitionRange, RangeSpec, SourceRecord, plan_ranges
from parley.records import IncomingEvent
from parley.streams.codec import encode


def user_event(event_id: str, conversation: str = "c1", text: str = "hello", **fields: Any) -> IncomingEvent:
    return IncomingEvent(
        event_id=event_id, conversation_id=conversation, application_id=fields.pop("application_id", "app"),
        created_at=fields.pop("created_at", 1.0), text=text, **fields,
    )


class FakeTopic:
    """Partitions of records; ``plan``/``read`` as ``KafkaSource`` does them."""

    def __init__(self, partitions: int = 2) -> None:
        self.records: dict[int, list[SourceRecord]] = {p: [] for p in range(partitions)}
        self.incomplete: dict[int, tuple[int, int]] = {}
        self.reads = 0

    def append(self, partition: int, value: bytes | IncomingEvent, *, timestamp_ms: int = 1_000, key: bytes | None = None) -> SourceRecord:
        raw = encode(value) if isinstance(value, IncomingEvent) else value
        record = SourceRecord("incoming", partition, len(self.records[partition]), timestamp_ms, key, raw)
        self.records[partition].append(record)
        return record

    async def plan(
        self, topic: str, spec: RangeSpec, cap: Mapping[int, int] | None = None
    ) -> tuple[list[PartitionRange], dict[int, int]]:
        end = {p: len(r) for p, r in self.records.items()}
        since = {p: next((r.offset for r in rs if spec.since is not None and r.timestamp_ms >= spec.since * 1000), None)
                 for p, rs in self.records.items()}
        until = {p: next((r.offset for r in rs if spec.until is not None and r.timestamp_ms >= spec.until * 1000), None)
                 for p, rs in self.records.items()}
        beginning = dict.fromkeys(self.records, 0)
        return plan_ranges(spec, beginning, end, since_offsets=since, until_offsets=until, cap=cap), end

    async def read(self, topic: str, ranges: Sequence[PartitionRange]) -> AsyncIterator[SourceRecord]:
        self.reads += 1
        for rng in ranges:
            for record in self.records[rng.partition][rng.start : rng.stop]:
                yield record


class FakeSink:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.fail = fail

    async def send_batch(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        if self.fail:
            raise ConnectionError("broker went away")
        self.sent.extend((topic, key, value) for key, value in items)


class MemoryLedger:
    """``ReplayLedger`` in memory, recording the calls made to it."""

    def __init__(self) -> None:
        self.replays: dict[str, dict[str, Any]] = {}
        self.events: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    async def load(self, replay_id: str) -> dict[str, Any] | None:
        self.calls.append("load")
        return self.replays.get(replay_id)

    async def begin(self, replay_id: str, params: dict[str, Any], end_offsets: dict[int, int], owner: str) -> None:
        self.calls.append("begin")
        doc = self.replays.setdefault(
            replay_id,
            {"params": params, "end_offsets": {str(p): o for p, o in end_offsets.items()}, "sent_count": 0, "runs": 0},
        )
        doc.update(status="running", owner=owner)
        doc["runs"] += 1

    async def sent_ids(self, replay_id: str) -> set[str]:
        return {i for i, e in self.events.items() if e["replay_id"] == replay_id}

    async def record_sent(self, replay_id: str, events: Sequence[dict[str, Any]]) -> None:
        self.calls.append("record_sent")
        for event in events:
            if event["_id"] not in self.events:
                self.events[event["_id"]] = event
                self.replays[replay_id]["sent_count"] += 1

    async def heartbeat(self, replay_id: str) -> None:
        self.calls.append("heartbeat")

    async def finish(self, replay_id: str, status: str, summary: dict[str, Any]) -> None:
        self.calls.append("finish")
        self.replays[replay_id].update(status=status, last_run=summary)


class TTY(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True
