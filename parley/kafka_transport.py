"""Parley's Faust Kafka transport: a configurable fetch wait and a commit that never skips
an event still in flight.

- Faust hard-codes ``fetch_max_wait_ms=1500`` for worker consumers. Brokers that do not wake a
  long poll when data arrives (the embedded one) then add ~0.5 s to every hop, so Parley sets
  the wait from ``Settings.consumer_fetch_wait_ms``.
- Parley's agents ack events out of order (different conversations run concurrently). Faust
  computes the offset to commit from the first run of consecutive acked offsets, and its guard
  against a gap at the head of that run is off by one (and absent before the first commit of a
  partition): with offset 31 still running and 32 acked it commits 33. A worker that stops or
  dies then loses offset 31 for good. ``_Consumer._new_offset`` commits only below the lowest
  offset that was handed to a stream and is not acked yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiokafka
from faust.types import TP
from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["Transport"]


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.app.conf.parley_fetch_wait_ms  # type: ignore[attr-defined]
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> int | None:
        running = lowest_unacked_offset(self._unacked_messages, tp)
        acked = self._acked[tp]
        if running is not None and acked and min(acked) > running:
            return None  # the head of the partition is still being handled: nothing to commit
        # The first run of consecutive acked offsets now starts below ``running``, and
        # ``running`` is not acked, so Faust's answer ends below it.
        return super()._new_offset(tp)


def lowest_unacked_offset(messages: Iterable[Any], tp: TP) -> int | None:
    """The lowest offset of ``tp`` among messages delivered to a stream and not acked yet."""
    offsets = [m.offset for m in list(messages) if m.tp == tp and not m.acked]
    return min(offsets) if offsets else None


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
