"""Reading a bounded range of a topic and producing records, for the ops commands.

The range of each partition is ``[start, stop)``, computed once at start from the requested
offsets or times and the partition's end offset at that moment, so a scan always terminates
even while the topic keeps growing (a replay into ``incoming`` writes to the topic it reads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from parley.kafka_admin import bootstrap_servers
from parley.kafka_offsets import fetched_ends
from parley.ops.common import OpsError

__all__ = [
    "RangeSpec",
    "PartitionRange",
    "SourceRecord",
    "plan_ranges",
    "KafkaSource",
    "KafkaSink",
]

logger = logging.getLogger(__name__)

TIME_MARGIN_S = 60.0


@dataclass(frozen=True)
class RangeSpec:
    """What to read from every partition: offsets ``from_offset..to_offset`` (both inclusive),
    or times ``since`` (inclusive) .. ``until`` (exclusive) in epoch seconds; None = open."""

    from_offset: int | None = None
    to_offset: int | None = None
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        by_offset = self.from_offset is not None or self.to_offset is not None
        by_time = self.since is not None or self.until is not None
        if by_offset and by_time:
            raise ValueError("give a range by offsets or by times, not both")
        for name in ("from_offset", "to_offset"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
        if self.from_offset is not None and self.to_offset is not None and self.from_offset > self.to_offset:
            raise ValueError(f"--from-offset {self.from_offset} is after --to-offset {self.to_offset}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("--since must be before --until")

    @property
    def by_time(self) -> bool:
        return self.since is not None or self.until is not None

    def admits_timestamp(self, timestamp_ms: int) -> bool:
        """Whether a record's timestamp is in the time range (always, for offset ranges)."""
        if self.since is not None and timestamp_ms < self.since * 1000:
            return False
        return not (self.until is not None and timestamp_ms >= self.until * 1000)


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int  # first offset to read
    stop: int  # one past the last offset to read

    @property
    def size(self) -> int:
        return max(0, self.stop - self.start)


@dataclass(frozen=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None


def plan_ranges(
    spec: RangeSpec,
    beginning: Mapping[int, int],
    end: Mapping[int, int],
    *,
    since_offsets: Mapping[int, int | None] | None = None,
    until_offsets: Mapping[int, int | None] | None = None,
    cap: Mapping[int, int] | None = None,
) -> list[PartitionRange]:
    """The ``[start, stop)`` range of every partition.

    ``since_offsets``/``until_offsets`` are the first offsets at or after ``since``/``until``
    (None: no such record, i.e. the end). ``cap`` bounds ``stop`` further (the end offsets a
    replay recorded on its first run, so a re-run covers the same records).
    """
    ranges = []
    for partition in sorted(end):
        first, last = beginning.get(partition, 0), end[partition]
        start, stop = first, last
        if spec.from_offset is not None:
            start = max(start, spec.from_offset)
        if spec.to_offset is not None:
            stop = min(stop, spec.to_offset + 1)
        if spec.since is not None:
            found = (since_offsets or {}).get(partition)
            start = max(start, last if found is None else found)
        if spec.until is not None:
            found = (until_offsets or {}).get(partition)
            stop = min(stop, last if found is None else found)
        if cap is not None and partition in cap:
            stop = min(stop, cap[partition])
        ranges.append(PartitionRange(partition, start, max(start, stop)))
    return ranges


class KafkaSource:
    """A group-less consumer that reads bounded partition ranges of a topic."""

    def __init__(self, kafka_url: str, *, fetch_wait_ms: int = 10, idle_timeout_s: float = 15.0) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers(kafka_url),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=fetch_wait_ms,
            request_timeout_ms=30_000,
        )
        self._kafka_url = kafka_url
        self._idle_timeout_s = idle_timeout_s
        self.incomplete: dict[int, tuple[int, int]] = {}  # partition -> (position, stop)

    async def __aenter__(self) -> KafkaSource:
        try:
            await asyncio.wait_for(self._consumer.start(), 30)
        except Exception as exc:
            await self._consumer.stop()
            raise OpsError(f"cannot reach the broker at {self._kafka_url}: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._consumer.stop()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        parts = self._consumer.partitions_for_topic(topic)
        if not parts:
            await self._consumer.topics()  # refreshes metadata
            parts = self._consumer.partitions_for_topic(topic)
        if not parts:
            raise OpsError(f"topic {topic!r} does not exist on {self._kafka_url}")
        return [TopicPartition(topic, p) for p in sorted(parts)]

    async def plan(
        self, topic: str, spec: RangeSpec, cap: Mapping[int, int] | None = None
    ) -> tuple[list[PartitionRange], dict[int, int]]:
        """The ranges to read, and every partition's end offset now."""
        tps = await self.partitions(topic)
        beginning = {tp.partition: o for tp, o in (await self._consumer.beginning_offsets(tps)).items()}
        end = {tp.partition: o for tp, o in (await self._consumer.end_offsets(tps)).items()}
        end = await self._true_end(tps, beginning, end)
        since_offsets = until_offsets = None
        # Times only narrow where the scan starts and stops, with a margin: brokers index times
        # per record batch (Tansu by its own append time), and records are then filtered by
        # their own timestamps (``RangeSpec.admits_timestamp``).
        if spec.since is not None:
            since_offsets = await self._offsets_for_time(tps, spec.since - TIME_MARGIN_S)
        if spec.until is not None:
            until_offsets = await self._offsets_for_time(tps, spec.until + TIME_MARGIN_S)
        ranges = plan_ranges(
            spec, beginning, end, since_offsets=since_offsets, until_offsets=until_offsets, cap=cap
        )
        return ranges, end

    async def _true_end(
        self, tps: Sequence[TopicPartition], beginning: Mapping[int, int], reported: Mapping[int, int]
    ) -> dict[int, int]:
        """End offsets as the fetch high watermark reports them (``parley.kafka_offsets``)."""
        ends = await fetched_ends(
            self._consumer, {tp: reported[tp.partition] for tp in tps},
            empty_below={tp: beginning.get(tp.partition, 0) for tp in tps},
        )
        return {tp.partition: offset for tp, offset in ends.items()}

    async def _offsets_for_time(self, tps: Sequence[TopicPartition], epoch_s: float) -> dict[int, int | None]:
        found = await self._consumer.offsets_for_times({tp: int(epoch_s * 1000) for tp in tps})
        result: dict[int, int | None] = {}
        for tp in tps:
            hit = found.get(tp)
            # Kafka answers "no record at or after that time" with None; some Kafka-compatible
            # brokers (Tansu) with offset 0 and timestamp -1.
            result[tp.partition] = None if hit is None or hit.timestamp < 0 else hit.offset
        return result

    async def read(self, topic: str, ranges: Sequence[PartitionRange]) -> AsyncIterator[SourceRecord]:
        """Every record in ``ranges``, in offset order within each partition.

        A partition that stops advancing before its end for ``idle_timeout_s`` (a gap the broker
        never fills, or a broker that went away) is given up and listed in ``incomplete``.
        """
        consumer = self._consumer
        todo = {r.partition: r for r in ranges if r.size > 0}
        if not todo:
            return
        tps = {p: TopicPartition(topic, p) for p in todo}
        consumer.assign(list(tps.values()))
        for partition, rng in todo.items():
            consumer.seek(tps[partition], rng.start)
        loop = asyncio.get_running_loop()
        last_progress = loop.time()
        while todo:
            batch = await consumer.getmany(*(tps[p] for p in todo), timeout_ms=200, max_records=500)
            if batch:
                last_progress = loop.time()
            for tp, records in batch.items():
                pending = todo.get(tp.partition)
                if pending is None:
                    continue
                for record in records:
                    if record.offset < pending.start or record.offset >= pending.stop:
                        continue
                    yield SourceRecord(
                        topic, tp.partition, record.offset, record.timestamp, record.key, record.value
                    )
            for partition in list(todo):
                if await consumer.position(tps[partition]) >= todo[partition].stop:
                    consumer.pause(tps[partition])
                    del todo[partition]
            if todo and loop.time() - last_progress > self._idle_timeout_s:
                for partition, rng in todo.items():
                    position = await consumer.position(tps[partition])
                    logger.warning(
                        "%s[%d]: no records past offset %d for %.0fs (expected up to %d); giving up on it",
                        topic, partition, position, self._idle_timeout_s, rng.stop,
                    )
                    self.incomplete[partition] = (position, rng.stop)
                return


class KafkaSink:
    """Produces batches of records and waits for the broker's acks."""

    def __init__(self, kafka_url: str) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(kafka_url), acks="all", linger_ms=5
        )
        self._kafka_url = kafka_url

    async def __aenter__(self) -> KafkaSink:
        try:
            await asyncio.wait_for(self._producer.start(), 30)
        except Exception as exc:
            await self._producer.stop()
            raise OpsError(f"cannot reach the broker at {self._kafka_url}: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.stop()

    async def send_batch(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Send ``(key, value)`` pairs in order; return once the broker acked all of them."""
        futures = [await self._producer.send(topic, value, key=key) for key, value in items]
        await asyncio.gather(*futures)
