"""``parley dlq``'s logic: rendering, selection and replay steps, without Kafka."""

from __future__ import annotations

import base64
import io
import json

import pytest

from parley.ops.common import OpsError
from parley.ops.dlq import (
    LIST_HEADERS,
    LetterView,
    describe_original,
    list_json,
    load_letters,
    render_list,
    render_show,
    replay_letters,
    replay_step,
    select_for_purge,
    select_for_replay,
    show_json,
)
from parley.records import KIND_TOOL_RESULTS, DeadLetter, IncomingEvent
from parley.streams.codec import decode, encode, message_id
from tests.ops.fakes import FakeSink, FakeTopic, user_event


def letter(dead_letter_id: str, *, stage: str = "processor", original: bytes = b"\xff nope", failed_at: float = 1735787045.0,
           error: str = "payload is not JSON: Expecting value", key: str = "conv-1", topic: str = "incoming") -> DeadLetter:
    return DeadLetter(
        dead_letter_id=dead_letter_id, stage=stage, error=error, error_type="DecodeError", topic=topic,
        partition=3, offset=42, key=key, original_b64=base64.b64encode(original).decode(), failed_at=failed_at,
    )


def view(dead_letter_id: str, action: dict | None = None, **fields) -> LetterView:
    return LetterView(letter(dead_letter_id, **fields), partition=1, offset=7, action=action or {})


# --- list and show ------------------------------------------------------------------------


def test_list_table_has_one_row_per_letter_with_source_and_truncated_error():
    table = render_list([
        view("d-1", error="x" * 200),
        view("d-2", {"replayed_at": 5.0, "replay_count": 2}, stage="processor.llm", key="k" * 40),
    ], error_width=30)
    header, first, second = table.splitlines()
    assert header.split() == list(LIST_HEADERS)
    assert first.split()[:5] == ["d-1", "2025-01-02T03:04:05Z", "processor", "DecodeError", "incoming[3]@42"]
    assert first.endswith("x" * 29 + "…")
    assert "processor.llm" in second and "replayed x2" in second and "k" * 23 + "…" in second


def test_list_json_is_the_record_plus_where_it_sits_and_what_was_done():
    data = json.loads(list_json(view("d-1", {"purged_at": 9.0})))
    assert data["dead_letter_id"] == "d-1" and data["stage"] == "processor" and data["offset"] == 42
    assert (data["dead_letter_partition"], data["dead_letter_offset"]) == (1, 7)
    assert (data["purged_at"], data["replayed_at"], data["replay_count"]) == (9.0, None, 0)
    assert "__faust" not in data


def test_original_bytes_show_as_json_when_they_parse_else_as_repr():
    assert describe_original(b'{"b": 1, "a": "\xc3\xa9"}') == '{\n  "a": "é",\n  "b": 1\n}'
    assert describe_original(b"\xff nope") == repr(b"\xff nope")
    assert describe_original(b"") == "b''"


def test_show_prints_every_field_and_the_original():
    event = user_event("e1", text="hello")
    shown = render_show(view("d-1", {"replayed_at": 1735787045.0, "replay_count": 1}, original=encode(event)))
    for expected in ("d-1", "2025-01-02T03:04:05Z", "processor", "DecodeError", "payload is not JSON",
                     "incoming partition 3 offset 42", "'conv-1'", "dead-letters partition 1 offset 7",
                     "replayed 1x", '"text": "hello"'):
        assert expected in shown, expected
    data = json.loads(show_json(view("d-2")))
    assert data["original_json"] is None and data["original_text"] == "\ufffd nope"


async def test_load_letters_sorts_by_failure_time_and_skips_undecodable_records():
    topic = FakeTopic(2)
    topic.append(0, encode(letter("late", failed_at=20.0)))
    topic.append(1, encode(letter("early", failed_at=10.0)))
    topic.append(1, b"not a dead letter")
    views, undecodable = await load_letters(topic, {"late": {"purged_at": 1.0}})
    assert [v.id for v in views] == ["early", "late"] and undecodable == 1
    assert views[1].purged_at == 1.0 and (views[0].partition, views[0].offset) == (1, 0)


# --- replay -------------------------------------------------------------------------------


def letters() -> list[LetterView]:
    return [
        view("a"),
        view("b", {"replayed_at": 5.0, "replay_count": 1}),
        view("c", {"purged_at": 6.0}),
        view("d", stage="dispatcher", topic="function_call"),
    ]


def test_replay_by_ids_refuses_missing_and_already_replayed_ids_entirely():
    with pytest.raises(OpsError, match="no dead letter with id zz"):
        select_for_replay(letters(), ids=["a", "zz"])
    with pytest.raises(OpsError, match=r"already replayed: b .*--force"):
        select_for_replay(letters(), ids=["a", "b"])
    assert [v.id for v in select_for_replay(letters(), ids=["b", "a", "b"], force=True)] == ["b", "a"]
    assert [v.id for v in select_for_replay(letters(), ids=["c"])] == ["c"]  # purged, but named


def test_replay_by_stage_takes_those_neither_replayed_nor_purged():
    assert [v.id for v in select_for_replay(letters(), stage="processor")] == ["a"]
    assert [v.id for v in select_for_replay(letters(), stage="processor", force=True)] == ["a", "b"]
    with pytest.raises(OpsError, match="ids or a --stage"):
        select_for_replay(letters())


def test_a_failed_event_is_replayed_as_is_to_its_topic_with_its_key():
    step = replay_step(view("d", stage="dispatcher", topic="function_call", original=b'{"x": 1}'),
                       attempt=1, deliver=False, now=5.0)
    assert (step.topic, step.key, step.value, step.mode) == ("function_call", b"conv-1", b'{"x": 1}', "as-is")
    assert replay_step(view("e", key=""), attempt=1, deliver=False, now=5.0).key is None


def test_a_failed_model_call_is_replayed_as_a_new_replay_event():
    original = user_event("e1", conversation="conv-1", text="hi")
    llm = view("d-9", stage="processor.llm", original=encode(original))
    step = replay_step(llm, attempt=1, deliver=False, now=5.0)
    event = decode(step.value, IncomingEvent)
    assert (step.topic, step.key, step.mode) == ("incoming", b"app/conv-1", "regenerate")  # the conversation key
    assert event.event_id == step.event_id == message_id("dlq", "d-9", "e1", "1")
    assert (event.replay_id, event.deliver, event.text, event.created_at) == ("dlq:d-9", False, "hi", 5.0)
    # Forced again: a new id, or the processor would drop it as a duplicate.
    assert replay_step(llm, attempt=2, deliver=True, now=5.0).event_id == message_id("dlq", "d-9", "e1", "2")
    assert decode(replay_step(llm, attempt=2, deliver=True, now=5.0).value, IncomingEvent).deliver is True
    # Undecodable bytes of that stage go back as they were.
    assert replay_step(view("d-8", stage="processor.llm"), attempt=1, deliver=False, now=5.0).mode == "as-is"


def test_a_failed_model_call_on_tool_results_cannot_be_replayed():
    results = user_event("t1", kind=KIND_TOOL_RESULTS, text="", turn_id="turn-1")
    with pytest.raises(OpsError, match="parley replay --conversation c1"):
        replay_step(view("d-7", stage="processor.llm", original=encode(results)), attempt=1, deliver=False, now=5.0)


class FakeActions:
    def __init__(self) -> None:
        self.claimed: list[str] = []
        self.undone: list[str] = []
        self.noted: list[str] = []

    async def claim_replay(self, dead_letter_id: str, *, force: bool):
        self.claimed.append(dead_letter_id)
        return 1, None

    async def undo_replay(self, dead_letter_id: str, before) -> None:
        self.undone.append(dead_letter_id)

    async def note_replayed(self, dead_letter_id: str, step) -> None:
        self.noted.append(dead_letter_id)


async def test_replay_letters_sends_claims_and_notes_each():
    sink, actions, out = FakeSink(), FakeActions(), io.StringIO()
    done = await replay_letters([view("a"), view("d", topic="function_call")], sink, actions,
                                out=out, force=False, deliver=False, dry_run=False)
    assert done == 2 and [t for t, _, _ in sink.sent] == ["incoming", "function_call"]
    assert actions.claimed == actions.noted == ["a", "d"]
    assert out.getvalue().count("replayed ") == 2


async def test_replay_letters_dry_run_touches_nothing():
    sink, actions, out = FakeSink(), FakeActions(), io.StringIO()
    assert await replay_letters([view("a")], sink, actions, out=out, force=False, deliver=False, dry_run=True) == 1
    assert sink.sent == [] and actions.claimed == [] and out.getvalue().startswith("would replay a [processor] -> incoming")


async def test_a_failed_send_undoes_the_claim():
    actions = FakeActions()
    with pytest.raises(ConnectionError):
        await replay_letters([view("a")], FakeSink(fail=True), actions, out=io.StringIO(),
                             force=False, deliver=False, dry_run=False)
    assert actions.claimed == actions.undone == ["a"] and actions.noted == []


async def test_a_batch_with_an_unreplayable_letter_sends_nothing():
    results = user_event("t1", kind=KIND_TOOL_RESULTS, text="")
    sink, actions = FakeSink(), FakeActions()
    with pytest.raises(OpsError):
        await replay_letters([view("a"), view("x", stage="processor.llm", original=encode(results))], sink, actions,
                             out=io.StringIO(), force=False, deliver=False, dry_run=False)
    assert sink.sent == [] and actions.claimed == []


# --- purge --------------------------------------------------------------------------------


def test_purge_selects_visible_letters_by_ids_time_and_stage():
    views = [view("a", failed_at=10.0), view("b", failed_at=20.0), view("c", {"purged_at": 1.0}, failed_at=5.0),
             view("d", stage="dispatcher", failed_at=15.0)]
    assert [v.id for v in select_for_purge(views)] == ["a", "b", "d"]
    assert [v.id for v in select_for_purge(views, before=16.0)] == ["a", "d"]
    assert [v.id for v in select_for_purge(views, before=16.0, stage="processor")] == ["a"]
    assert [v.id for v in select_for_purge(views, ids=["b", "c"])] == ["b"]  # c is purged already
    with pytest.raises(OpsError, match="no dead letter with id nope"):
        select_for_purge(views, ids=["nope"])
