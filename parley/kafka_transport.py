"""Parley's Faust Kafka transport: a configurable fetch wait and a commit that never skips
an event still in flight.

- Faust hard-codes ``fetch_max_wait_ms=1500`` for worker consumers. Brokers that do not wake a
  long poll when data arrives (the embedded one) then add ~0.5 s to every hop, so Parley sets
  the wait from ``Settings.consumer_fetch_wait_ms``.
- Parley's agents ack events out of order (different conversations run concurrently). Faust
  computes the offset to commit from the first run of consecutive acked offsets, and its check
  that this run starts at the head of the partition is off by one (and absent before a
  partition's first commit): with offset 31 still running, or not yet read again after a
  rebalance's re-seek, and 32 acked, it commits 33. A worker that stops or dies, or the next
  rebalance, then loses offset 31 for good. ``_Consumer._new_offset`` commits only a run that
  starts exactly where this consumer started reading the partition (its committed offset, or
  the first offset handed to a stream since the assignment) and never passes an offset still
  being handled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.utils.functional import consecutive_numbers

__all__ = ["Transport"]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.app.conf.parley_fetch_wait_ms  # type: ignore[attr-defined]
        return consumer


class _FirstOffsetSensor(faust.Sensor):
    """Records, per partition, the offset of the first message handed to a stream (Faust calls
    ``on_message_in`` as it starts tracking a message for acks)."""

    def __init__(self, first: dict[TP, int]) -> None:
        super().__init__()
        self._first = first

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        self._first.setdefault(tp, offset)


class _Consumer(faust_aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: per partition, the first offset handed to a stream since it was assigned
        self._parley_first: dict[TP, int] = {}
        # Faust's streams track messages without calling ``track_message``; its sensors see them.
        self.app.sensors.add(_FirstOffsetSensor(self._parley_first))

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._parley_first.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit for ``tp``: one past the run of consecutive handled offsets that
        starts where this consumer started reading it (the committed offset, or the first offset
        handed to a stream since the partition was assigned), and never past an offset still
        being handled. None when nothing can be committed."""
        acked = self._acked[tp]
        if not acked:
            return None
        self._fill_gaps(tp, acked)
        acked.sort()
        committed = self._committed_offset[tp]
        head = committed if committed is not None else self._parley_first.get(tp)
        if head is None:
            return None  # nothing read since the assignment: where the partition starts is unknown
        while acked and acked[0] < head:  # acks of messages from before a re-seek
            self._acked_index[tp].discard(acked.pop(0))
        if not acked or acked[0] != head:
            return None  # the head of the partition is not handled yet
        run = next(consecutive_numbers(acked))
        end = run[-1] + 1
        running = lowest_unacked_offset(self._unacked_messages, tp)
        if running is not None and running < end:
            end = running  # a duplicate of a running message was acked: stop before it
            if end <= head:
                return None
        acked[:] = [o for o in acked if o >= end]
        self._acked_index[tp].difference_update(range(head, end))
        return end

    def _fill_gaps(self, tp: TP, acked: list[int]) -> None:
        """Offsets that carry no message (transaction markers, compacted records) count as
        handled once a later offset is (as Faust does)."""
        gaps = self._gap[tp]
        if not gaps:
            return
        top = max(acked)
        intervals = sorted(gaps.overlap(0, top), key=lambda i: i.begin)
        if intervals:
            filled = [o for i in intervals for o in range(i.begin, i.end)]
            acked.extend(filled)
            gaps.chop(0, max(filled[-1], top + 1))


def lowest_unacked_offset(messages: Iterable[Any], tp: TP) -> int | None:
    """The lowest offset of ``tp`` among messages delivered to a stream and not acked yet."""
    offsets = [m.offset for m in list(messages) if m.tp == tp and not m.acked]
    return min(offsets) if offsets else None


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
