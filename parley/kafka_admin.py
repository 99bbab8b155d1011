"""Creates Parley's topics with the configured partition count before any consumer subscribes.

Brokers that auto-create topics on first use (the embedded one does, with its own default
partition count) would otherwise create ``incoming`` with a count that does not match the
table changelogs, breaking co-partitioning. An existing topic with the wrong count is an error
that names the topic and both counts.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

__all__ = ["TopicMismatch", "ensure_topics", "bootstrap_servers", "retained_for_new_group"]

logger = logging.getLogger(__name__)


class TopicMismatch(RuntimeError):
    pass


def bootstrap_servers(kafka_url: str) -> list[str]:
    hosts = kafka_url.removeprefix("kafka://").replace(";", ",").split(",")
    return [h.strip().rstrip("/") for h in hosts if h.strip()]


async def ensure_topics(
    kafka_url: str, names: list[str], partitions: int, replicas: int, *, timeout_s: float = 30.0
) -> None:
    servers = bootstrap_servers(kafka_url)
    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(admin.start(), timeout_s)
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=replicas) for n in missing]
                )
                logger.info("created topics %s with %d partitions", missing, partitions)
            except TopicAlreadyExistsError:
                pass  # another worker created them first
    finally:
        await admin.close()
    client = AIOKafkaClient(bootstrap_servers=servers, request_timeout_ms=int(timeout_s * 1000))
    await asyncio.wait_for(client.bootstrap(), timeout_s)
    try:
        for _ in range(50):
            await client.force_metadata_update()
            counts = {n: len(client.cluster.partitions_for_topic(n) or ()) for n in names}
            if all(counts.values()):
                break
            await asyncio.sleep(0.1)
        wrong = {n: c for n, c in counts.items() if c != partitions}
        if wrong:
            detail = ", ".join(f"{n!r} has {c}" for n, c in wrong.items())
            raise TopicMismatch(
                f"topics must have PARLEY_TOPIC_PARTITIONS={partitions} partitions, but {detail}; "
                "recreate them or set PARLEY_TOPIC_PARTITIONS to match"
            )
    finally:
        await client.close()


async def retained_for_new_group(kafka_url: str, group_id: str, topic: str, *, timeout_s: float = 15.0) -> int | None:
    """How many events of ``topic`` are retained for a consumer group that never committed on it
    (it reads them from the start of the log under ``earliest``); None when the group has
    committed offsets there. The probe only reads the group's offsets; it never joins the group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(kafka_url), group_id=group_id, enable_auto_commit=False,
        request_timeout_ms=int(timeout_s * 1000),
    )
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return 0
        committed = [await asyncio.wait_for(consumer.committed(tp), timeout_s) for tp in tps]
        if any(offset is not None and offset >= 0 for offset in committed):
            return None
        start = await asyncio.wait_for(consumer.beginning_offsets(tps), timeout_s)
        end = await asyncio.wait_for(consumer.end_offsets(tps), timeout_s)
    finally:
        await consumer.stop()
    return sum(max(0, end[tp] - start[tp]) for tp in tps)
