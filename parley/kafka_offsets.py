"""End offsets as the fetch high watermark reports them.

The embedded broker (Tansu 0.6) answers ListOffsets(latest) with the base offset of a
partition's last record batch + 1: when that batch holds several records the end it reports is
too small (measured: ten records produced in one batch after one alone, end offset 2 against a
high watermark of 11). A fetch of the record just before the reported end returns the whole last
batch and the true high watermark. On Kafka both agree, and this costs one fetch per non-empty
partition. Used by the ops tools (ranges to read) and by Faust's table recovery
(``parley.kafka_transport``), which stops reading a changelog at the end it is given and refuses
(``ConsistencyError``) a table store whose offset is past it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["fetched_ends"]

logger = logging.getLogger(__name__)


async def fetched_ends(
    consumer: Any, reported: Mapping[Any, int], *, empty_below: Mapping[Any, int] | None = None,
    timeout_s: float = 10.0,
) -> dict[Any, int]:
    """``reported`` end offsets (per TopicPartition), raised to the high watermark of a fetch of
    each partition's last reported record. ``consumer`` is an ``AIOKafkaConsumer`` of no group;
    its assignment is replaced. A partition whose reported end is at or below its
    ``empty_below`` offset (default 0) is empty and not fetched."""
    end = dict(reported)
    probe = [tp for tp, offset in reported.items() if offset > (empty_below or {}).get(tp, 0)]
    if not probe:
        return end
    consumer.assign(probe)
    for tp in probe:
        consumer.seek(tp, reported[tp] - 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = set(probe)
    while pending and loop.time() < deadline:
        await consumer.getmany(*pending, timeout_ms=200, max_records=1)
        for tp in list(pending):
            highwater = consumer.highwater(tp)
            if highwater is not None:
                end[tp] = max(end[tp], highwater)
                pending.discard(tp)
    _warn_missing(pending, end)
    consumer.unsubscribe()
    return end


def _warn_missing(pending: Iterable[Any], end: Mapping[Any, int]) -> None:
    for tp in pending:
        logger.warning("%s[%d]: no high watermark from the broker; using end offset %d", tp.topic, tp.partition, end[tp])
