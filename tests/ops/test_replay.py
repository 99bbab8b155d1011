"""``parley replay``'s logic on an in-memory topic, producer and ledger."""

from __future__ import annotations

import io
import json
import logging

import pytest

from parley.ops.common import OpsError
from parley.ops.kafka_io import PartitionRange, RangeSpec, plan_ranges
from parley.ops.progress import ProgressBar
from parley.ops.replay import (
    ReplayOptions,
    dry_run_line,
    new_replay_id,
    replay_event,
    replay_event_id,
    run_replay,
    skip_reason,
)
from parley.records import KIND_TOOL_RESULTS, IncomingEvent
from parley.streams.codec import decode, message_id
from tests.ops.fakes import TTY, FakeSink, FakeTopic, MemoryLedger, user_event

# --- ranges -------------------------------------------------------------------------------


def test_range_spec_rejects_mixed_negative_and_backwards_ranges():
    with pytest.raises(ValueError, match="not both"):
        RangeSpec(from_offset=1, since=5.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        RangeSpec(to_offset=-1)
    with pytest.raises(ValueError, match="after --to-offset"):
        RangeSpec(from_offset=5, to_offset=4)
    with pytest.raises(ValueError, match="before --until"):
        RangeSpec(since=5.0, until=5.0)
    RangeSpec(from_offset=4, to_offset=4)  # a single offset is fine


def test_open_range_is_the_whole_retained_partition_up_to_its_end_now():
    ranges = plan_ranges(RangeSpec(), {0: 0, 1: 7}, {0: 10, 1: 9})
    assert ranges == [PartitionRange(0, 0, 10), PartitionRange(1, 7, 9)]
    assert [r.size for r in ranges] == [10, 2]


def test_offset_range_is_inclusive_and_clamped_to_what_exists():
    spec = RangeSpec(from_offset=3, to_offset=5)
    assert plan_ranges(spec, {0: 0, 1: 4, 2: 0}, {0: 10, 1: 10, 2: 4}) == [
        PartitionRange(0, 3, 6),
        PartitionRange(1, 4, 6),  # offsets before 4 were deleted by retention
        PartitionRange(2, 3, 4),  # the partition ends at 4
    ]
    beyond = plan_ranges(RangeSpec(from_offset=50), {0: 0}, {0: 10})
    assert beyond == [PartitionRange(0, 50, 50)] and beyond[0].size == 0


def test_time_range_uses_the_offsets_found_for_the_times():
    spec = RangeSpec(since=100.0, until=200.0)
    ranges = plan_ranges(
        spec, {0: 0, 1: 0, 2: 0}, {0: 10, 1: 10, 2: 10},
        since_offsets={0: 2, 1: None, 2: 0}, until_offsets={0: 8, 1: None, 2: None},
    )
    # partition 1 has nothing at or after `since`: empty; partition 2 nothing after `until`.
    assert ranges == [PartitionRange(0, 2, 8), PartitionRange(1, 10, 10), PartitionRange(2, 0, 10)]


def test_a_recorded_cap_keeps_a_rerun_on_the_first_run_records():
    ranges = plan_ranges(RangeSpec(), {0: 0, 1: 0}, {0: 15, 1: 4}, cap={0: 10, 1: 6})
    assert ranges == [PartitionRange(0, 0, 10), PartitionRange(1, 0, 4)]


def test_time_filter_is_since_inclusive_until_exclusive():
    spec = RangeSpec(since=10.0, until=20.0)
    assert [spec.admits_timestamp(ms) for ms in (9_999, 10_000, 19_999, 20_000)] == [False, True, True, False]
    assert RangeSpec(from_offset=0).admits_timestamp(0)


# --- ids and events -----------------------------------------------------------------------


def test_replay_event_ids_are_derived_from_the_replay_id_and_the_original():
    assert replay_event_id("r1", "e1") == message_id("r1", "e1") == replay_event_id("r1", "e1")
    assert replay_event_id("r1", "e1") != replay_event_id("r2", "e1")
    assert replay_event_id("r1", "e1") != replay_event_id("r1", "e2")


def test_replay_event_is_a_marked_copy_of_the_original():
    original = user_event("e1", text="hi", channel="generic", sender="alice", client_message_id="m-1")
    event = replay_event(original, "r1", deliver=False, now=50.0)
    assert event.event_id == message_id("r1", "e1")
    assert (event.replay_id, event.deliver, event.created_at) == ("r1", False, 50.0)
    assert (event.text, event.channel, event.sender, event.client_message_id) == ("hi", "generic", "alice", "m-1")
    assert (event.conversation_id, event.application_id, event.kind) == ("c1", "app", "user")
    assert replay_event(original, "r1", deliver=True, now=1.0).deliver is True


def test_generated_replay_ids_are_valid_distinct_and_dated():
    first, second = new_replay_id(lambda: 1735787045.0), new_replay_id(lambda: 1735787045.0)
    assert first.startswith("replay-20250102T030405Z-") and first != second


def test_skip_reasons():
    options = ReplayOptions(conversations=("c1",), applications=("app",))
    assert skip_reason(user_event("e"), options) is None
    assert skip_reason(user_event("e", kind=KIND_TOOL_RESULTS), options) == "not_user"
    assert skip_reason(user_event("e", replay_id="old"), options) == "earlier_replays"
    assert skip_reason(user_event("e", replay_id="old"), ReplayOptions(include_replays=True)) is None
    assert skip_reason(user_event("e", conversation="c2"), options) == "filtered_out"
    assert skip_reason(user_event("e", application_id="other"), options) == "filtered_out"
    assert skip_reason(user_event("e", conversation="c2"), ReplayOptions()) is None


def test_dry_run_line_is_tab_separated_with_the_text_cut_to_60():
    topic = FakeTopic(1)
    event = user_event("e1", text="line one\nline two " + "z" * 100)
    record = topic.append(0, event)
    fields = dry_run_line(record, event).split("\t")
    assert fields[:4] == ["0", "0", "c1", "e1"]
    assert len(fields[4]) == 60 and fields[4].startswith("line one line two z") and fields[4].endswith("…")


# --- run_replay ---------------------------------------------------------------------------


def conversation_topic() -> FakeTopic:
    topic = FakeTopic(2)
    topic.append(0, user_event("e1", text="one"))
    topic.append(0, user_event("t1", kind=KIND_TOOL_RESULTS, text=""))
    topic.append(0, b"\xff garbage")
    topic.append(0, user_event("x1", conversation="other", text="not mine"))
    topic.append(1, user_event("e2", text="two"))
    topic.append(1, user_event("r0", text="replayed before", replay_id="old"))
    topic.append(1, user_event("e3", text="three"))
    return topic


async def replay(topic, sink, ledger, **options):
    out = io.StringIO()
    confirm = options.pop("confirm", None)
    summary = await run_replay(
        ReplayOptions(**options), topic, sink, ledger,
        out=out, progress=ProgressBar(io.StringIO(), "replay"), confirm=confirm, clock=lambda: 99.0,
    )
    return summary, out.getvalue()


async def test_replays_the_conversation_user_messages_as_new_undelivered_events():
    topic, sink, ledger = conversation_topic(), FakeSink(), MemoryLedger()
    summary, out = await replay(topic, sink, ledger, conversations=("c1",), replay_id="r1")
    sent = [(t, k, decode(v, IncomingEvent)) for t, k, v in sink.sent]
    assert [e.text for _, _, e in sent] == ["one", "two", "three"]
    assert {t for t, _, _ in sent} == {"incoming"} and {k for _, k, _ in sent} == {b"app/c1"}
    assert [e.event_id for _, _, e in sent] == [message_id("r1", e) for e in ("e1", "e2", "e3")]
    assert all(e.replay_id == "r1" and e.deliver is False and e.created_at == 99.0 for _, _, e in sent)
    assert (summary.scanned, summary.matched, summary.sent) == (7, 3, 3)
    assert (summary.not_user, summary.undecodable, summary.filtered_out, summary.earlier_replays) == (1, 1, 1, 1)
    assert out.splitlines()[0] == "replay id: r1"
    assert summary.line().startswith("replay r1: 3 new events sent (0 already sent by this replay id)")
    record = ledger.replays["r1"]
    assert record["status"] == "done" and record["sent_count"] == 3
    assert record["end_offsets"] == {"0": 4, "1": 3}
    assert record["params"]["conversations"] == ["c1"] and record["params"]["deliver"] is False
    assert {e["original_event_id"] for e in ledger.events.values()} == {"e1", "e2", "e3"}
    assert ledger.events[message_id("r1", "e2")]["partition"] == 1


async def test_the_same_replay_id_twice_sends_nothing_new():
    topic, sink, ledger = conversation_topic(), FakeSink(), MemoryLedger()
    await replay(topic, sink, ledger, conversations=("c1",), replay_id="r1")
    topic.append(0, user_event("e4", text="four, after the first run"))  # beyond its end offsets
    summary, _ = await replay(topic, sink, ledger, conversations=("c1",), replay_id="r1")
    assert len(sink.sent) == 3
    assert (summary.sent, summary.already_sent) == (0, 3)
    assert "0 new events sent (3 already sent by this replay id)" in summary.line()
    assert ledger.replays["r1"]["runs"] == 2 and ledger.replays["r1"]["sent_count"] == 3


async def test_a_rerun_after_a_crash_sends_only_what_was_not_recorded():
    topic, sink, ledger = conversation_topic(), FakeSink(), MemoryLedger()
    await replay(topic, sink, ledger, conversations=("c1",), replay_id="r1")
    lost = message_id("r1", "e3")
    del ledger.events[lost]  # produced, but the process died before recording it
    summary, _ = await replay(topic, FakeSink(), ledger, conversations=("c1",), replay_id="r1")
    assert (summary.sent, summary.already_sent) == (1, 2)


async def test_a_replay_id_is_refused_with_other_parameters():
    topic, ledger = conversation_topic(), MemoryLedger()
    await replay(topic, FakeSink(), ledger, conversations=("c1",), replay_id="r1")
    sink = FakeSink()
    with pytest.raises(OpsError, match="other parameters"):
        await replay(topic, sink, ledger, conversations=("c1",), replay_id="r1", deliver=True)
    assert sink.sent == []


async def test_dry_run_lists_and_sends_and_records_nothing():
    topic, sink, ledger = conversation_topic(), FakeSink(), MemoryLedger()
    summary, out = await replay(topic, sink, ledger, conversations=("c1",), replay_id="r1", dry_run=True)
    assert sink.sent == [] and ledger.replays == {} and "begin" not in ledger.calls
    lines = out.splitlines()
    assert lines[1] == "# partition\toffset\tconversation\tevent_id\ttext"
    assert lines[2:] == [
        f"0\t0\tc1\t{message_id('r1', 'e1')}\tone",
        f"1\t0\tc1\t{message_id('r1', 'e2')}\ttwo",
        f"1\t2\tc1\t{message_id('r1', 'e3')}\tthree",
    ]
    assert summary.line().startswith("dry run replay r1: 3 new events would be sent")


async def test_dry_run_of_a_finished_replay_lists_nothing():
    topic, ledger = conversation_topic(), MemoryLedger()
    await replay(topic, FakeSink(), ledger, conversations=("c1",), replay_id="r1")
    summary, out = await replay(topic, FakeSink(), ledger, conversations=("c1",), replay_id="r1", dry_run=True)
    assert summary.sent == 0 and summary.already_sent == 3
    assert [line for line in out.splitlines() if "\tc1\t" in line] == []


async def test_deliver_and_application_filter():
    topic, sink = conversation_topic(), FakeSink()
    topic.append(1, user_event("a1", conversation="c9", application_id="shop", text="shop"))
    await replay(topic, sink, MemoryLedger(), applications=("shop",), replay_id="r2", deliver=True)
    [(_, key, value)] = sink.sent
    event = decode(value, IncomingEvent)
    assert key == b"shop/c9" and event.deliver is True and event.text == "shop"


async def test_time_range_filters_by_record_timestamp():
    topic = FakeTopic(1)
    for index, ms in enumerate((1_000, 2_000, 3_000, 4_000)):
        topic.append(0, user_event(f"e{index}", text=str(ms)), timestamp_ms=ms)
    sink = FakeSink()
    summary, _ = await replay(topic, sink, MemoryLedger(), spec=RangeSpec(since=2.0, until=4.0), replay_id="r")
    assert [decode(v, IncomingEvent).text for _, _, v in sink.sent] == ["2000", "3000"]
    assert summary.total == 2


async def test_an_original_seen_twice_in_the_range_is_sent_once():
    topic = FakeTopic(1)
    topic.append(0, user_event("e1"))
    topic.append(0, user_event("e1"))  # a producer retry wrote it twice
    sink = FakeSink()
    summary, _ = await replay(topic, sink, MemoryLedger(), replay_id="r")
    assert len(sink.sent) == 1 and summary.already_sent == 1


async def test_declined_confirmation_sends_and_records_nothing():
    topic, sink, ledger = conversation_topic(), FakeSink(), MemoryLedger()
    prompts = []

    async def decline(prompt: str) -> bool:
        prompts.append(prompt)
        return False

    with pytest.raises(OpsError, match="cancelled"):
        await replay(topic, sink, ledger, replay_id="r1", confirm=decline)
    assert sink.sent == [] and ledger.replays == {}
    assert "7 records of incoming (p0:0..3, p1:0..2)" in prompts[0] and "without delivering" in prompts[0]


async def test_a_failed_send_marks_the_replay_failed():
    topic, ledger = conversation_topic(), MemoryLedger()
    with pytest.raises(ConnectionError):
        await replay(topic, FakeSink(fail=True), ledger, replay_id="r1")
    assert ledger.replays["r1"]["status"] == "failed" and ledger.replays["r1"]["sent_count"] == 0


async def test_undecodable_records_are_counted_and_logged(caplog):
    topic = FakeTopic(1)
    for _ in range(12):
        topic.append(0, b"{not json")
    topic.append(0, json.dumps({"event_id": 5}).encode())
    with caplog.at_level(logging.WARNING, logger="parley.ops.replay"):
        summary, _ = await replay(topic, FakeSink(), MemoryLedger(), replay_id="r")
    assert summary.undecodable == 13
    messages = [r.getMessage() for r in caplog.records]
    assert sum("skipping undecodable record incoming[0]@" in m for m in messages) == 10
    assert "3 more undecodable records skipped" in messages


async def test_progress_is_drawn_on_a_terminal_and_erased_before_the_summary():
    topic, stream = conversation_topic(), TTY()
    await run_replay(
        ReplayOptions(replay_id="r"), topic, FakeSink(), MemoryLedger(),
        out=io.StringIO(), progress=ProgressBar(stream, "replay incoming"),
    )
    text = stream.getvalue()
    assert "replay incoming [" in text and "7/7 records (100%)" in text
    assert text.endswith("\r")
