"""Which offset a worker commits while events of one partition finish out of order.

Different conversations of one partition run concurrently, so a later offset is often acked
before an earlier one. The committed offset must never pass an event that is still running: a
worker that stops or dies right after such a commit would lose that event for good.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest
from faust.types import TP
from intervaltree import IntervalTree

from parley.kafka_transport import _Consumer, lowest_unacked_offset

PARTITION = TP("incoming", 3)
OTHER = TP("incoming", 4)


@dataclass(eq=False)
class Message:
    tp: TP
    offset: int
    acked: bool = False


def consumer(
    committed: int | None, acked: list[int], running: list[Message], first: int | None = None
) -> _Consumer:
    """A consumer in the state the commit reads: what was committed, acked and handed out, and
    the first offset handed out since the partition was assigned."""
    c = _Consumer.__new__(_Consumer)  # only the bookkeeping: no app, no broker
    c._acked = defaultdict(list, {PARTITION: list(acked)})
    c._acked_index = defaultdict(set, {PARTITION: set(acked)})
    c._committed_offset = defaultdict(lambda: None, {PARTITION: committed})
    c._gap = defaultdict(IntervalTree)
    c._unacked_messages = set(running)
    c._parley_first = {PARTITION: first} if first is not None else {}
    return c


def test_an_event_still_running_at_the_committed_offset_is_not_skipped():
    # 0-30 are committed; 31 (a slow turn) runs while 32 (another conversation) is done.
    c = consumer(committed=31, acked=[32], running=[Message(PARTITION, 31)])
    assert c._new_offset(PARTITION) is None
    # once 31 is done, both are committed
    c._acked[PARTITION].append(31)
    c._unacked_messages.clear()
    assert c._new_offset(PARTITION) == 33


def test_before_the_first_commit_nothing_passes_a_running_event():
    c = consumer(committed=None, acked=[5, 6], running=[Message(PARTITION, 4)], first=4)
    assert c._new_offset(PARTITION) is None


def test_before_the_first_commit_the_run_starts_at_the_first_offset_read():
    c = consumer(committed=None, acked=[0, 1, 2, 4], running=[], first=0)
    assert c._new_offset(PARTITION) == 3
    # nothing read yet since the assignment (an old message acked): unknown head, no commit
    assert consumer(committed=None, acked=[7], running=[])._new_offset(PARTITION) is None


def test_after_a_re_seek_an_old_ack_does_not_skip_the_events_read_again():
    # Rebalance: the partition comes back at committed offset 40. A message at 41 from before
    # the rebalance finishes and is acked while 40 is fetched again but not handed out yet:
    # nothing may be committed (stock Faust commits 42, and 40 is never answered).
    c = consumer(committed=40, acked=[41], running=[])
    assert c._new_offset(PARTITION) is None
    c._acked[PARTITION].append(40)
    assert c._new_offset(PARTITION) == 42
    assert c._acked[PARTITION] == []


def test_acks_below_where_reading_started_are_dropped():
    c = consumer(committed=10, acked=[3, 10, 11], running=[])
    assert c._new_offset(PARTITION) == 12
    assert c._acked[PARTITION] == [] and c._acked_index[PARTITION] == set()


def test_offsets_without_messages_count_as_handled():
    c = consumer(committed=10, acked=[10, 14], running=[])
    c._gap[PARTITION].addi(11, 14)  # 11-13: transaction markers, no messages
    assert c._new_offset(PARTITION) == 15


def test_commits_the_finished_prefix_below_a_running_event():
    c = consumer(committed=10, acked=[10, 11, 12, 14], running=[Message(PARTITION, 13)])
    assert c._new_offset(PARTITION) == 13
    assert c._acked[PARTITION] == [14]  # kept for the next commit


@pytest.mark.parametrize("running", [[], [Message(OTHER, 0)], [Message(PARTITION, 1, acked=True)]])
def test_events_running_elsewhere_do_not_hold_the_partition_back(running):
    c = consumer(committed=None, acked=[0, 1, 2], running=running, first=0)
    assert c._new_offset(PARTITION) == 3


def test_lowest_unacked_offset():
    messages = [Message(PARTITION, 9), Message(PARTITION, 7), Message(PARTITION, 3, acked=True), Message(OTHER, 1)]
    assert lowest_unacked_offset(messages, PARTITION) == 7
    assert lowest_unacked_offset(messages, OTHER) == 1
    assert lowest_unacked_offset([], PARTITION) is None
