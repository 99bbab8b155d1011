"""Puts a Parley app together: topics, tables, runtime, agents and the web server."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import faust

from parley import metrics
from parley.agents import dispatcher, persister, processor, produce, usage
from parley.ops.dlq_desk import desk_for
from parley.runtime import Runtime
from parley.settings import Settings
from parley.storage.uploads import sweep_unreferenced
from parley.tables import declare_tables
from parley.topics import declare_topics
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from parley.web.server import WebServer

if TYPE_CHECKING:
    from parley.app import ParleyApp

__all__ = ["wire"]

logger = logging.getLogger(__name__)


async def update_consumer_lag(app: faust.App) -> None:
    """Set ``parley_consumer_lag`` for every assigned partition: messages not yet committed,
    i.e. not yet fully handled (events are acked when their turn is done). A partition the group
    never committed (Faust also says "none" for offset 0) has everything from the start of its log
    still ahead of it: a new group reads from the earliest offset. Only the topics agents read
    count: Faust reads the tables' changelogs to restore the tables and never commits them (they
    would always show a lag), nor its leader-election topic."""
    consumer = app.consumer
    committed_offsets = getattr(consumer, "_committed_offset", {})
    internal = set(app.tables.changelog_topics) | set(getattr(consumer, "randomly_assigned_topics", ()))
    assigned = [tp for tp in consumer.assignment() if tp.topic not in internal]
    from_start = app.conf.consumer_auto_offset_reset == "earliest"  # under latest: from its position
    try:
        never_committed = [tp for tp in assigned if committed_offsets.get(tp) is None] if from_start else []
        earliest = await consumer.earliest_offsets(*never_committed) if never_committed else {}
    except Exception as exc:  # noqa: BLE001 - metrics must never break the worker
        logger.debug("earliest offsets unavailable: %s", exc)
        earliest = {}
    for tp in assigned:
        try:
            highwater = consumer.highwater(tp)
        except Exception as exc:  # noqa: BLE001 - metrics must never break the worker
            logger.debug("lag of %s unavailable: %s", tp, exc)
            continue
        committed = committed_offsets.get(tp)
        if committed is None:
            committed = earliest.get(tp) if from_start else await _position(consumer, tp)
        if committed is not None and highwater is not None:
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - committed))


async def _position(consumer: Any, tp: Any) -> int | None:
    try:
        return int(await consumer.position(tp))
    except Exception as exc:  # noqa: BLE001 - metrics must never break the worker
        logger.debug("position of %s unavailable: %s", tp, exc)
        return None


def wire(app: ParleyApp, settings: Settings) -> None:
    topics = declare_topics(app, settings)
    tables = declare_tables(app, settings)
    runtime = Runtime(settings, seed_demo=settings.seed_demo, worker_group=settings.app_id)
    app.parley_runtime = runtime
    app.parley_topics = topics
    app.parley_tables = tables

    # Finished in this order on shutdown: turns and tool rounds, then the archive, deliveries
    # and usage counts.
    app.parley_runner_stages = [
        [processor.register(app, topics, tables, runtime, settings), dispatcher.register(app, topics, runtime, settings)],
        [persister.register(app, topics, runtime, settings), usage.register(app, topics, tables, settings)],
    ]

    ingress = Ingress(lambda key, value: produce(topics.incoming, key, value), settings.produce_timeout_s)

    async def readiness() -> tuple[bool, dict[str, Any]]:
        assigned = len(app.consumer.assignment()) if app.consumer is not None else 0
        documents_ok = await runtime.documents.ping()
        checks = {"partitions_assigned": assigned, "document_store": "ok" if documents_ok else "down"}
        if app.should_stop:
            checks["stopping"] = True  # finishing turns in flight: send no new traffic here
        return assigned > 0 and documents_ok and not app.should_stop, checks

    def make_web_app() -> Any:
        deps = runtime.web_deps()
        deps.dead_letters = desk_for(settings, runtime.documents.database)
        return create_web_app(settings=settings, deps=deps, ingress=ingress, readiness=readiness, faust_app=app)

    @app.timer(settings.metrics_interval_s, name="parley.consumer_lag")
    async def record_consumer_lag() -> None:
        await update_consumer_lag(app)

    if settings.upload_unreferenced_ttl_s:
        @app.timer(settings.upload_sweep_interval_s, name="parley.upload_sweep")
        async def delete_unreferenced_uploads() -> None:
            try:
                await sweep_unreferenced(
                    runtime.documents.uploads, runtime.files, ttl_s=settings.upload_unreferenced_ttl_s, now=time.time()
                )
            except Exception as exc:  # noqa: BLE001 - the store is down: the next round tries again
                logger.warning("the sweep of unreferenced uploads failed: %s", exc)

    app.web_server(WebServer(make_web_app, settings.web_host, settings.web_port))
