"""A Faust Kafka transport whose consumer fetch wait is a setting.

Faust hard-codes ``fetch_max_wait_ms=1500`` for worker consumers. Brokers that do not wake a
long poll when data arrives (the embedded one) then add ~0.5 s to every hop, so Parley sets the
wait from ``Settings.consumer_fetch_wait_ms``.
"""

from __future__ import annotations

from typing import Any

import aiokafka
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


class Transport(faust_aiokafka.Transport):
    Consumer = _Consumer
