"""``parley replay``: re-publish the user messages of a range of ``incoming`` as new events, so
their answers are regenerated (after a fix to a prompt, a tool, a model) and archived marked with
the replay id.

Each replayed event is a copy of the original with
- ``event_id`` = ``message_id(replay_id, original event_id)``: the same replay id always yields
  the same ids, so the processor's dedup drops a repeated run (a replay is not a duplicate, a
  repeated replay is);
- ``replay_id`` set, and ``deliver`` False unless ``--deliver``: answers are archived but not
  sent to the original client or platform;
- ``created_at`` the time of the replay.

The tool is idempotent on its own too: the MongoDB collection ``replays`` holds one document per
replay id (its parameters, the end offsets captured on its first run, status and the number of
events sent) and ``replay_events`` one document per event sent (``_id`` = the new event id, with
the original's id, partition and offset). Events already recorded are not produced again, so a
second run of the same replay id sends nothing ("0 new events"). An event is recorded after the
broker acked it; a crash in between means a re-run produces it again, and the processor drops it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

from parley.ops.common import OpsError, format_time, one_line
from parley.ops.kafka_io import PartitionRange, RangeSpec, SourceRecord
from parley.ops.progress import ProgressBar
from parley.records import KIND_USER, IncomingEvent
from parley.streams.codec import DecodeError, decode, encode, message_id
from parley.topics import INCOMING

__all__ = [
    "ReplayOptions",
    "ReplaySummary",
    "ReplayLedger",
    "MongoReplayLedger",
    "new_replay_id",
    "replay_event_id",
    "replay_event",
    "skip_reason",
    "run_replay",
    "dry_run_line",
]

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
LEASE_S = 60.0
MAX_LOGGED_UNDECODABLE = 10


@dataclass(frozen=True)
class ReplayOptions:
    topic: str = INCOMING
    spec: RangeSpec = field(default_factory=RangeSpec)
    conversations: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    replay_id: str | None = None
    deliver: bool = False
    include_replays: bool = False
    dry_run: bool = False

    def params(self) -> dict[str, Any]:
        """What defines a replay: a replay id is refused with different parameters."""
        return {
            "topic": self.topic,
            "from_offset": self.spec.from_offset,
            "to_offset": self.spec.to_offset,
            "since": self.spec.since,
            "until": self.spec.until,
            "conversations": sorted(self.conversations),
            "applications": sorted(self.applications),
            "deliver": self.deliver,
            "include_replays": self.include_replays,
        }


@dataclass
class ReplaySummary:
    replay_id: str
    dry_run: bool = False
    partitions: int = 0
    total: int = 0  # records in the planned ranges
    scanned: int = 0
    matched: int = 0  # user messages passing the filters
    sent: int = 0  # new events produced (or, in a dry run, that would be)
    already_sent: int = 0  # matched, but recorded as sent by an earlier run of this replay id
    undecodable: int = 0
    not_user: int = 0  # tool results: the tool round is recomputed from the replayed message
    earlier_replays: int = 0  # events of earlier replays (not replayed again by default)
    filtered_out: int = 0
    incomplete: dict[int, tuple[int, int]] = field(default_factory=dict)

    def line(self) -> str:
        verb = "would be sent" if self.dry_run else "sent"
        head = f"{'dry run ' if self.dry_run else ''}replay {self.replay_id}: {self.sent} new events {verb}"
        parts = [f"{self.already_sent} already sent by this replay id"]
        parts.append(
            f"scanned {self.scanned:,} records in {self.partitions} partitions: {self.matched} user "
            f"messages matched, {self.filtered_out} filtered out, {self.not_user} tool results, "
            f"{self.earlier_replays} from earlier replays, {self.undecodable} undecodable"
        )
        text = f"{head} ({parts[0]}); {parts[1]}"
        if self.incomplete:
            gaps = ", ".join(f"p{p} stopped at {pos} of {stop}" for p, (pos, stop) in sorted(self.incomplete.items()))
            text += f"; INCOMPLETE: {gaps}"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total, "scanned": self.scanned, "matched": self.matched, "sent": self.sent,
            "already_sent": self.already_sent, "undecodable": self.undecodable,
            "not_user": self.not_user, "earlier_replays": self.earlier_replays,
            "filtered_out": self.filtered_out,
            "incomplete": {str(p): list(v) for p, v in self.incomplete.items()},
        }


class Source(Protocol):
    incomplete: dict[int, tuple[int, int]]

    async def plan(
        self, topic: str, spec: RangeSpec, cap: Mapping[int, int] | None = None
    ) -> tuple[list[PartitionRange], dict[int, int]]: ...

    def read(self, topic: str, ranges: Sequence[PartitionRange]) -> AsyncIterator[SourceRecord]: ...


class Sink(Protocol):
    async def send_batch(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None: ...


class ReplayLedger(Protocol):
    """What a replay id has done so far (MongoDB ``replays`` / ``replay_events``)."""

    async def load(self, replay_id: str) -> dict[str, Any] | None: ...

    async def begin(
        self, replay_id: str, params: dict[str, Any], end_offsets: dict[int, int], owner: str
    ) -> None: ...

    async def sent_ids(self, replay_id: str) -> set[str]: ...

    async def record_sent(self, replay_id: str, events: Sequence[dict[str, Any]]) -> None: ...

    async def heartbeat(self, replay_id: str) -> None: ...

    async def finish(self, replay_id: str, status: str, summary: dict[str, Any]) -> None: ...


def new_replay_id(clock: Callable[[], float] = time.time) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(clock()))
    return f"replay-{stamp}-{uuid.uuid4().hex[:6]}"


def replay_event_id(replay_id: str, original_event_id: str) -> str:
    return message_id(replay_id, original_event_id)


def replay_event(original: IncomingEvent, replay_id: str, *, deliver: bool, now: float) -> IncomingEvent:
    data = original.asdict()
    data.update(
        event_id=replay_event_id(replay_id, original.event_id),
        replay_id=replay_id,
        deliver=deliver,
        created_at=now,
    )
    return IncomingEvent(**data)


def skip_reason(event: IncomingEvent, options: ReplayOptions) -> str | None:
    """Why ``event`` is not replayed (a summary counter's name), or None to replay it."""
    if event.kind != KIND_USER:
        return "not_user"
    if event.replay_id and not options.include_replays:
        return "earlier_replays"
    if options.conversations and event.conversation_id not in options.conversations:
        return "filtered_out"
    if options.applications and event.application_id not in options.applications:
        return "filtered_out"
    return None


def dry_run_line(record: SourceRecord, event: IncomingEvent) -> str:
    """``partition offset conversation event_id text`` (the text cut to 60 characters)."""
    return f"{record.partition}\t{record.offset}\t{event.conversation_id}\t{event.event_id}\t{one_line(event.text, 60)}"


def _range_text(ranges: Sequence[PartitionRange]) -> str:
    busy = [r for r in ranges if r.size]
    if not busy:
        return "nothing"
    return ", ".join(f"p{r.partition}:{r.start}..{r.stop - 1}" for r in busy)


@dataclass
class _Pending:
    record: SourceRecord
    original: IncomingEvent
    event: IncomingEvent


async def run_replay(
    options: ReplayOptions,
    source: Source,
    sink: Sink,
    ledger: ReplayLedger,
    *,
    out: TextIO,
    progress: ProgressBar,
    confirm: Callable[[str], Awaitable[bool]] | None = None,
    clock: Callable[[], float] = time.time,
    owner: str | None = None,
) -> ReplaySummary:
    replay_id = options.replay_id or new_replay_id(clock)
    summary = ReplaySummary(replay_id, dry_run=options.dry_run)
    print(f"replay id: {replay_id}", file=out, flush=True)

    existing = await ledger.load(replay_id)
    cap: dict[int, int] | None = None
    sent_before: set[str] = set()
    if existing is not None:
        if existing.get("params") != options.params():
            raise OpsError(
                f"replay id {replay_id!r} was first run with other parameters "
                f"({existing.get('params')}); use a new --replay-id for a different replay"
            )
        cap = {int(p): int(o) for p, o in (existing.get("end_offsets") or {}).items()}
        sent_before = await ledger.sent_ids(replay_id)
    ranges, end = await source.plan(options.topic, options.spec, cap)
    summary.partitions = len(ranges)
    summary.total = sum(r.size for r in ranges)

    if not options.dry_run:
        delivery = (
            "and DELIVERED again to the original clients and platforms"
            if options.deliver
            else "without delivering them to clients or platforms"
        )
        prompt = (
            f"Replay up to {summary.total:,} records of {options.topic} ({_range_text(ranges)}) as "
            f"replay {replay_id}: answers are regenerated and archived {delivery}. Continue?"
        )
        if summary.total and confirm is not None and not await confirm(prompt):
            raise OpsError("replay cancelled; nothing was sent")
        owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        await ledger.begin(replay_id, options.params(), cap if cap is not None else end, owner)
    elif summary.total:
        print("# partition\toffset\tconversation\tevent_id\ttext", file=out)

    pending: list[_Pending] = []
    last_heartbeat = clock()

    async def flush() -> None:
        nonlocal pending
        batch, pending = pending, []
        if not batch:
            return
        fresh: list[_Pending] = []
        for item in batch:
            if item.event.event_id in sent_before:
                summary.already_sent += 1  # by an earlier run, or the same original twice
            else:
                sent_before.add(item.event.event_id)
                fresh.append(item)
        if options.dry_run:
            for item in fresh:
                print(dry_run_line(item.record, item.event), file=out)
            summary.sent += len(fresh)
            return
        if not fresh:
            return
        await sink.send_batch(
            INCOMING, [(item.event.key.encode(), encode(item.event)) for item in fresh]
        )
        now = clock()
        await ledger.record_sent(
            replay_id,
            [
                {
                    "_id": item.event.event_id,
                    "replay_id": replay_id,
                    "original_event_id": item.original.event_id,
                    "conversation_id": item.event.conversation_id,
                    "application_id": item.event.application_id,
                    "topic": item.record.topic,
                    "partition": item.record.partition,
                    "offset": item.record.offset,
                    "sent_at": now,
                }
                for item in fresh
            ],
        )
        summary.sent += len(fresh)

    status = "failed"
    try:
        async for record in source.read(options.topic, ranges):
            summary.scanned += 1
            progress.update(summary.scanned, summary.total, summary.sent)
            if not options.spec.admits_timestamp(record.timestamp_ms):
                summary.filtered_out += 1
                continue
            try:
                original = decode(record.value, IncomingEvent)
            except DecodeError as exc:
                summary.undecodable += 1
                if summary.undecodable <= MAX_LOGGED_UNDECODABLE:
                    logger.warning(
                        "skipping undecodable record %s[%d]@%d: %s",
                        record.topic, record.partition, record.offset, exc,
                    )
                continue
            reason = skip_reason(original, options)
            if reason is not None:
                setattr(summary, reason, getattr(summary, reason) + 1)
                continue
            summary.matched += 1
            event = replay_event(original, replay_id, deliver=options.deliver, now=clock())
            pending.append(_Pending(record, original, event))
            if len(pending) >= BATCH_SIZE:
                await flush()
            if not options.dry_run and clock() - last_heartbeat > LEASE_S / 4:
                await ledger.heartbeat(replay_id)
                last_heartbeat = clock()
        await flush()
        summary.incomplete = dict(source.incomplete)
        progress.update(summary.scanned, summary.total, summary.sent, force=True)
        status = "incomplete" if summary.incomplete else "done"
    except asyncio.CancelledError:
        status = "interrupted"
        raise
    finally:
        progress.close()
        if summary.undecodable > MAX_LOGGED_UNDECODABLE:
            logger.warning(
                "%d more undecodable records skipped", summary.undecodable - MAX_LOGGED_UNDECODABLE
            )
        if not options.dry_run:
            finished = {**summary.as_dict(), "finished_at": clock(), "finished_at_iso": format_time(clock())}
            try:
                await asyncio.shield(ledger.finish(replay_id, status, finished))
            except Exception as exc:  # noqa: BLE001 - report the original failure, not this one
                logger.error("could not record the end of replay %s: %s", replay_id, exc)
    return summary


class MongoReplayLedger:
    """``replays`` (one document per replay id) and ``replay_events`` (one per event sent)."""

    def __init__(self, database: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.replays = database["replays"]
        self.events = database["replay_events"]
        self._clock = clock

    async def load(self, replay_id: str) -> dict[str, Any] | None:
        doc: dict[str, Any] | None = await self.replays.find_one({"_id": replay_id})
        return doc

    async def begin(
        self, replay_id: str, params: dict[str, Any], end_offsets: dict[int, int], owner: str
    ) -> None:
        from pymongo.errors import DuplicateKeyError

        now = self._clock()
        try:
            await self.replays.update_one(
                {
                    "_id": replay_id,
                    "$or": [{"status": {"$ne": "running"}}, {"lease_until": {"$lt": now}}],
                },
                {
                    "$set": {"status": "running", "owner": owner, "lease_until": now + LEASE_S, "updated_at": now},
                    "$setOnInsert": {
                        "params": params,
                        "end_offsets": {str(p): o for p, o in end_offsets.items()},
                        "created_at": now,
                        "sent_count": 0,
                    },
                    "$inc": {"runs": 1},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            doc = await self.load(replay_id) or {}
            raise OpsError(
                f"replay {replay_id} is running in {doc.get('owner', 'another process')} "
                f"(lease until {format_time(doc.get('lease_until'))}); wait for it to finish"
            ) from None

    async def sent_ids(self, replay_id: str) -> set[str]:
        # Loaded once per run (one query: far faster than a lookup per batch on large replays).
        return {doc["_id"] async for doc in self.events.find({"replay_id": replay_id}, {"_id": 1})}

    async def record_sent(self, replay_id: str, events: Sequence[dict[str, Any]]) -> None:
        from pymongo.errors import BulkWriteError

        try:
            result = await self.events.insert_many(list(events), ordered=False)
            inserted = len(result.inserted_ids)
        except BulkWriteError as exc:  # already recorded (a concurrent run after a lease expiry)
            if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", [])):
                raise
            inserted = int(exc.details.get("nInserted", 0))
        now = self._clock()
        await self.replays.update_one(
            {"_id": replay_id},
            {
                "$inc": {"sent_count": inserted},
                "$set": {"lease_until": now + LEASE_S, "updated_at": now},
            },
        )

    async def heartbeat(self, replay_id: str) -> None:
        now = self._clock()
        await self.replays.update_one(
            {"_id": replay_id}, {"$set": {"lease_until": now + LEASE_S, "updated_at": now}}
        )

    async def finish(self, replay_id: str, status: str, summary: dict[str, Any]) -> None:
        await self.replays.update_one(
            {"_id": replay_id},
            {
                "$set": {"status": status, "last_run": summary, "updated_at": self._clock()},
                "$unset": {"lease_until": ""},
            },
        )
