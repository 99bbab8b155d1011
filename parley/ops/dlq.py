"""``parley dlq``: inspect, replay and purge dead letters.

Dead letters are records on the ``dead-letters`` topic (``parley.records.DeadLetter``): the stage
that failed, the error, where the event came from and its original bytes. What operators did
with them lives in the MongoDB collection ``dead_letter_actions``, one document per dead letter
id: ``replayed_at``/``replay_count``/``replays`` and ``purged_at``.

- ``replay`` re-publishes the original bytes to the original topic with the original key, so the
  same event is processed again after a fix. Events that failed were never applied, so the
  processor's dedup lets them through. The exception is stage ``processor.llm``: the model failed,
  the turn was answered with an apology and the event *was* applied, so the same bytes would be
  dropped as a duplicate; a user message of that stage is re-published as a replay instead (a new
  event id derived from the dead letter id, ``replay_id`` ``dlq:<dead_letter_id>``, delivered only
  with ``--deliver``), which regenerates the answer. A dead letter is replayed once unless
  ``--force``.
- ``purge`` only hides: Kafka topics are append-only (and the embedded broker cannot delete
  records), so purged ids are recorded in ``dead_letter_actions`` and ``list`` leaves them out.
  The records themselves go when the topic's retention deletes them.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from parley.ops.common import OpsError, format_time, one_line, render_table
from parley.ops.kafka_io import RangeSpec, SourceRecord
from parley.records import KIND_USER, DeadLetter, IncomingEvent
from parley.redact import scrub
from parley.streams.codec import DecodeError, decode, encode, message_id
from parley.topics import DEAD_LETTERS, INCOMING

__all__ = [
    "LetterView",
    "ReplayStep",
    "DeadLetterActions",
    "load_letters",
    "visible",
    "render_list",
    "letter_detail",
    "letter_record",
    "list_json",
    "render_show",
    "show_json",
    "describe_original",
    "select_for_replay",
    "replay_step",
    "select_for_purge",
    "LLM_STAGE",
]

logger = logging.getLogger(__name__)

LLM_STAGE = "processor.llm"


@dataclass
class LetterView:
    """A dead letter, where it sits on the dead-letters topic, and what was done with it."""

    letter: DeadLetter
    partition: int = 0
    offset: int = 0
    action: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.letter.dead_letter_id

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.letter.original_b64)

    @property
    def purged_at(self) -> float | None:
        return self.action.get("purged_at")

    @property
    def replayed_at(self) -> float | None:
        return self.action.get("replayed_at")

    @property
    def replay_count(self) -> int:
        return int(self.action.get("replay_count") or 0)

    def status(self) -> str:
        parts = []
        if self.replayed_at is not None:
            parts.append("replayed" if self.replay_count <= 1 else f"replayed x{self.replay_count}")
        if self.purged_at is not None:
            parts.append("purged")
        return ",".join(parts)


async def load_letters(source: Any, actions: dict[str, dict[str, Any]]) -> tuple[list[LetterView], int]:
    """Every dead letter on the topic (up to its end now), oldest first, and how many records
    did not decode as one."""
    ranges, _ = await source.plan(DEAD_LETTERS, RangeSpec())
    views: list[LetterView] = []
    undecodable = 0
    record: SourceRecord
    async for record in source.read(DEAD_LETTERS, ranges):
        try:
            letter = decode(record.value, DeadLetter)
        except DecodeError as exc:
            undecodable += 1
            logger.warning("skipping undecodable dead letter %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc)
            continue
        views.append(LetterView(letter, record.partition, record.offset, actions.get(letter.dead_letter_id, {})))
    views.sort(key=lambda v: (v.letter.failed_at, v.partition, v.offset))
    return views, undecodable


def visible(
    views: Sequence[LetterView], *, stage: str | None = None, include_purged: bool = False
) -> list[LetterView]:
    return [
        v for v in views
        if (include_purged or v.purged_at is None) and (stage is None or v.letter.stage == stage)
    ]


# --- list and show ------------------------------------------------------------------------

LIST_HEADERS = ("ID", "FAILED_AT", "STAGE", "ERROR_TYPE", "SOURCE", "KEY", "STATUS", "ERROR")


def render_list(views: Sequence[LetterView], *, error_width: int = 60) -> str:
    rows = [
        [
            v.id,
            format_time(v.letter.failed_at),
            v.letter.stage,
            v.letter.error_type,
            f"{v.letter.topic}[{v.letter.partition}]@{v.letter.offset}",
            one_line(v.letter.key, 24),
            v.status(),
            one_line(scrub(v.letter.error), error_width),
        ]
        for v in views
    ]
    return render_table(LIST_HEADERS, rows)


def letter_record(view: LetterView) -> dict[str, Any]:
    """A dead letter as ``dlq list --json`` prints it (and the console API lists it)."""
    data = view.letter.asdict()
    data.pop("__faust", None)
    data["error"] = scrub(str(data.get("error") or ""))  # letters written before the scrubber
    data.update(
        dead_letter_partition=view.partition,
        dead_letter_offset=view.offset,
        replayed_at=view.replayed_at,
        replay_count=view.replay_count,
        purged_at=view.purged_at,
    )
    return data


def list_json(view: LetterView) -> str:
    return json.dumps(letter_record(view), ensure_ascii=False, sort_keys=True)


def describe_original(raw: bytes) -> str:
    """The original bytes as indented JSON if they parse, else their Python ``repr``."""
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=True)
    except (UnicodeDecodeError, ValueError):
        return repr(raw)


def render_show(view: LetterView) -> str:
    letter = view.letter
    raw = view.original
    status = []
    if view.replayed_at is not None:
        status.append(f"replayed {view.replay_count}x, last at {format_time(view.replayed_at)}")
    if view.purged_at is not None:
        status.append(f"purged at {format_time(view.purged_at)} (hidden from `parley dlq list`)")
    lines = [
        f"dead letter   {letter.dead_letter_id}",
        f"failed at     {format_time(letter.failed_at)} ({letter.failed_at:.3f})",
        f"stage         {letter.stage}",
        f"error type    {letter.error_type}",
        f"error         {scrub(letter.error)}",
        f"attempts      {letter.attempts}",
        f"source        {letter.topic} partition {letter.partition} offset {letter.offset}",
        f"key           {letter.key!r}",
        f"stored at     {DEAD_LETTERS} partition {view.partition} offset {view.offset}",
        f"status        {'; '.join(status) or 'new'}",
        f"original      {len(raw)} bytes:",
        describe_original(raw),
    ]
    return "\n".join(lines)


def letter_detail(view: LetterView) -> dict[str, Any]:
    """``letter_record`` with the original bytes decoded: ``original_json`` (None when they are
    not JSON) and ``original_text`` (UTF-8, undecodable bytes replaced)."""
    data = letter_record(view)
    raw = view.original
    try:
        data["original_json"] = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        data["original_json"] = None
    data["original_text"] = raw.decode("utf-8", "replace")
    return data


def show_json(view: LetterView) -> str:
    return json.dumps(letter_detail(view), ensure_ascii=False, indent=2, sort_keys=True)


# --- replay -------------------------------------------------------------------------------


def select_for_replay(
    views: Sequence[LetterView],
    *,
    ids: Sequence[str] = (),
    stage: str | None = None,
    force: bool = False,
) -> list[LetterView]:
    """The dead letters to replay, or an ``OpsError`` saying which ids are missing or already
    replayed (then nothing is replayed). By stage: those neither replayed nor purged."""
    if ids:
        by_id = {v.id: v for v in views}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise OpsError(f"no dead letter with id {', '.join(missing)}; nothing was replayed")
        chosen = [by_id[i] for i in dict.fromkeys(ids)]  # in the given order, once each
        done = [v for v in chosen if v.replayed_at is not None]
        if done and not force:
            detail = ", ".join(f"{v.id} (at {format_time(v.replayed_at)})" for v in done)
            raise OpsError(f"already replayed: {detail}; pass --force to replay again. Nothing was replayed")
        return chosen
    if stage is None:
        raise OpsError("name dead letter ids or a --stage to replay")
    return [v for v in visible(views, stage=stage) if force or v.replayed_at is None]


@dataclass(frozen=True)
class ReplayStep:
    """What replaying one dead letter produces."""

    topic: str
    key: bytes | None
    value: bytes
    mode: str  # "as-is" or "regenerate"
    event_id: str | None = None
    replay_id: str | None = None

    def describe(self, view: LetterView) -> str:
        target = f"{self.topic} key {(self.key or b'').decode('utf-8', 'replace')!r}"
        if self.mode == "regenerate":
            return (
                f"{view.id} [{view.letter.stage}] -> {target} as replay event {self.event_id} "
                f"(replay id {self.replay_id})"
            )
        return f"{view.id} [{view.letter.stage}] -> {target}, original {len(self.value)} bytes as-is"


def replay_step(view: LetterView, *, attempt: int, deliver: bool, now: float) -> ReplayStep:
    """How to replay ``view``: the original bytes as they were, except a user message whose model
    call failed (stage ``processor.llm``), which is re-published as a new replay event."""
    letter, raw = view.letter, view.original
    key = letter.key.encode() if letter.key else None
    if letter.stage != LLM_STAGE:
        return ReplayStep(letter.topic, key, raw, "as-is")
    try:
        original = decode(raw, IncomingEvent)
    except DecodeError:
        return ReplayStep(letter.topic, key, raw, "as-is")
    if original.kind != KIND_USER:
        raise OpsError(
            f"dead letter {view.id}: the model failed while answering tool results of turn "
            f"{original.turn_id}; that turn was closed with an apology and its tool round cannot "
            f"resume. Replay the user message instead: parley replay --conversation "
            f"{original.conversation_id} (with --since/--until or offsets around it)"
        )
    replay_id = f"dlq:{letter.dead_letter_id}"
    data = original.asdict()
    data.update(
        event_id=message_id("dlq", letter.dead_letter_id, original.event_id, str(attempt)),
        replay_id=replay_id,
        deliver=deliver,
        created_at=now,
    )
    event = IncomingEvent(**data)
    return ReplayStep(
        INCOMING, event.key.encode(), encode(event), "regenerate", event.event_id, replay_id
    )


# --- purge --------------------------------------------------------------------------------


def select_for_purge(
    views: Sequence[LetterView],
    *,
    ids: Sequence[str] = (),
    before: float | None = None,
    stage: str | None = None,
) -> list[LetterView]:
    """Visible dead letters matching every given criterion (none: all of them)."""
    chosen = visible(views, stage=stage)
    if ids:
        known = {v.id for v in views}
        missing = [i for i in ids if i not in known]
        if missing:
            raise OpsError(f"no dead letter with id {', '.join(missing)}; nothing was purged")
        wanted = set(ids)
        chosen = [v for v in chosen if v.id in wanted]
    if before is not None:
        chosen = [v for v in chosen if v.letter.failed_at < before]
    return chosen


# --- MongoDB ------------------------------------------------------------------------------


class DeadLetterActions:
    """The ``dead_letter_actions`` collection."""

    def __init__(self, database: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.collection = database["dead_letter_actions"]
        self._clock = clock

    async def all(self) -> dict[str, dict[str, Any]]:
        return {doc["_id"]: doc async for doc in self.collection.find({})}

    async def claim_replay(self, dead_letter_id: str, *, force: bool) -> tuple[int, dict[str, Any] | None]:
        """Mark ``dead_letter_id`` replayed; return its replay count and the previous document
        (for ``undo_replay``). Without ``force``, a dead letter already replayed (by another
        process since it was listed) raises ``OpsError``."""
        from pymongo import ReturnDocument
        from pymongo.errors import DuplicateKeyError

        query: dict[str, Any] = {"_id": dead_letter_id}
        if not force:
            query["replayed_at"] = {"$exists": False}
        try:
            before = await self.collection.find_one_and_update(
                query,
                {"$set": {"replayed_at": self._clock()}, "$inc": {"replay_count": 1}},
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
        except DuplicateKeyError:
            raise OpsError(f"dead letter {dead_letter_id} was already replayed; pass --force to replay again") from None
        count = int((before or {}).get("replay_count") or 0) + 1
        return count, before

    async def undo_replay(self, dead_letter_id: str, before: dict[str, Any] | None) -> None:
        previous = (before or {}).get("replayed_at")
        update: dict[str, Any] = {"$inc": {"replay_count": -1}}
        update["$set" if previous is not None else "$unset"] = {"replayed_at": previous if previous is not None else ""}
        await self.collection.update_one({"_id": dead_letter_id}, update)

    async def note_replayed(self, dead_letter_id: str, step: ReplayStep) -> None:
        entry = {"at": self._clock(), "mode": step.mode, "topic": step.topic, "event_id": step.event_id}
        await self.collection.update_one({"_id": dead_letter_id}, {"$push": {"replays": entry}})

    async def purge(self, dead_letter_ids: Sequence[str]) -> None:
        from pymongo import UpdateOne

        if not dead_letter_ids:
            return
        now = self._clock()
        await self.collection.bulk_write(
            [UpdateOne({"_id": i}, {"$set": {"purged_at": now}}, upsert=True) for i in dead_letter_ids],
            ordered=False,
        )


async def replay_letters(
    chosen: Sequence[LetterView],
    sink: Any,
    actions: DeadLetterActions,
    *,
    out: TextIO,
    force: bool,
    deliver: bool,
    dry_run: bool,
    clock: Callable[[], float] = time.time,
    on_replayed: Callable[[LetterView, ReplayStep], None] | None = None,
) -> int:
    """Replay ``chosen`` in order; return how many were replayed (or would be, in a dry run).
    ``on_replayed`` is told each replay once it is on the broker."""
    # Refuse up front what cannot be replayed, so a batch is replayed entirely or not at all.
    for view in chosen:
        replay_step(view, attempt=view.replay_count + 1, deliver=deliver, now=clock())
    done = 0
    for view in chosen:
        if dry_run:
            step = replay_step(view, attempt=view.replay_count + 1, deliver=deliver, now=clock())
            print(f"would replay {step.describe(view)}", file=out)
            done += 1
            continue
        count, before = await actions.claim_replay(view.id, force=force)
        step = replay_step(view, attempt=count, deliver=deliver, now=clock())
        try:
            await sink.send_batch(step.topic, [(step.key, step.value)])
        except BaseException:
            await actions.undo_replay(view.id, before)
            raise
        await actions.note_replayed(view.id, step)
        if on_replayed is not None:
            on_replayed(view, step)
        print(f"replayed {step.describe(view)}", file=out, flush=True)
        done += 1
    return done
