"""The Faust application: ``create_app(settings)`` builds one; ``app`` is the CLI's instance.

The factory declares topics and tables and registers the agents and the runtime service on the
app it returns, so each test gets its own app. ``app`` is built lazily on first access, so
importing this module reads no environment and opens nothing.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faust
from mode.utils.queues import FlowControlEvent

from parley.settings import Settings

if TYPE_CHECKING:
    from parley.runtime import Runtime
    from parley.streams.keyed import KeyedBatcher, KeyedRunner
    from parley.tables import Tables
    from parley.topics import Topics

    #: the module-level app of the CLI, built on first access (``__getattr__`` below)
    app: ParleyApp

__all__ = ["ParleyApp", "StreamFlowControl", "all_tables_dir", "create_app", "tables_dir"]

logger = logging.getLogger(__name__)


class StreamFlowControl(FlowControlEvent):
    """Flow control of the agents' stream buffers that clears them only when flow resumes after
    a suspension.

    Faust suspends flow when partitions are revoked and resumes it after the new assignment; a
    resume also empties every agent's buffer, dropping the events queued before the rebalance.
    But Faust's recovery resumes flow twice: once when the tables need no restore, and again
    after it has resumed the stream partitions and seeked them to the committed offsets. The seek
    goes partition by partition, and a partition already seeked is fetched from at once: its
    first events (the ones right after the committed offset) reached the buffers while the other
    partitions were still being seeked, and the second clear dropped them. The fetch position
    was already past them, so nobody handled or read them again: they sat unanswered until the
    next rebalance. A resume while flow is already active now leaves the buffers alone.

    Events from an older assignment are still skipped by the streams, which compare each event's
    generation with the app's. Events fetched before the seek (prefetched while the partitions
    were paused) are now handled and then fetched again after the seek: handled twice, as any
    redelivery is (the processor skips an event its conversation has applied, a platform reply
    is not sent twice, a websocket client drops a message id it already shows).
    """

    def resume(self) -> None:
        if self.is_active():
            return
        super().resume()


class ParleyApp(faust.App):
    """A Faust app that uses Parley's Kafka transport (configurable fetch wait, a consumer that
    pauses while idle and is woken by the app's own produces) and starts Parley's runtime
    (stores, bus, model) before its consumers and agents."""

    # Set by ``create_app`` and ``parley.wiring.wire`` (annotations only: Faust's own
    # attributes are set the same way).
    parley_settings: Settings
    parley_runtime: Runtime
    parley_topics: Topics
    parley_tables: Tables
    parley_runner_stages: list[list[KeyedRunner | KeyedBatcher]]

    @cached_property
    def flow_control(self) -> FlowControlEvent:
        return StreamFlowControl(loop=self.loop)

    async def on_stop(self) -> None:
        # Before Faust pauses the consumer, commits and stops the agents: let the events in
        # flight finish (bounded by PARLEY_SHUTDOWN_GRACE_S) so their acks make the last commit.
        from parley.streams.keyed import finish_in_flight

        settings = getattr(self, "parley_settings", None)
        if self.parley_runner_stages and settings is not None:
            await finish_in_flight(self.parley_runner_stages, settings.shutdown_grace_s)
        await super().on_stop()

    def on_init_dependencies(self) -> Any:
        deps = list(super().on_init_dependencies())
        if self.parley_runtime is not None:
            deps.insert(0, self.parley_runtime)
        return deps

    def _new_transport(self) -> Any:
        from parley.kafka_transport import Transport

        return Transport(self.conf.broker_consumer, self)

    def _new_producer_transport(self) -> Any:
        from parley.kafka_transport import Transport

        return Transport(self.conf.broker_producer, self)


def advertised_url(settings: Settings) -> str:
    if settings.advertised_url:
        return settings.advertised_url
    import socket

    host = settings.web_host if settings.web_host not in ("0.0.0.0", "::", "") else socket.gethostname()
    return f"http://{host}:{settings.web_port}"


def tables_dir(settings: Settings) -> Path:
    """Where this app's table stores (RocksDB) live: one directory per app id, since the stored
    changelog offsets belong to that app's changelog topics (a changed ``PARLEY_APP_ID`` would
    otherwise find offsets ahead of its new, empty changelogs, and Faust refuses to start)."""
    return all_tables_dir(settings.data_dir) / settings.app_id


def all_tables_dir(data_dir: Path) -> Path:
    """The table stores of every app id under ``data_dir``."""
    return data_dir / "tables"


def warn_without_compiled_streams() -> bool:
    """Warn when Faust's compiled stream iterator is missing; returns whether it is."""
    from faust import streams

    if getattr(streams, "_CStreamIterator", None) is not None:
        return False
    logger.warning(
        "faust-streaming runs without its compiled stream iterator (no binary wheel for this "
        "platform, or NO_CYTHON set): its pure-Python streams ack the events they skip during a "
        "rebalance, so a commit can pass an event that was never handled. Install a faust-streaming "
        "wheel built for this platform."
    )
    return True


def create_app(settings: Settings) -> ParleyApp:
    """Build a Faust app for ``settings`` (``parley dev`` fills in the embedded URLs)."""
    warn_without_compiled_streams()
    broker = settings.kafka_url or "kafka://127.0.0.1:9092"
    app = ParleyApp(
        settings.app_id,
        broker=broker,
        store=settings.store,
        datadir=str(tables_dir(settings)),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replicas,
        topic_allow_declare=True,
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        broker_request_timeout=max(40.0, settings.broker_session_timeout_s * 2),
        consumer_auto_offset_reset=settings.new_group_start,
        producer_linger=0.0,
        producer_max_batch_size=settings.producer_max_batch_bytes,
        stream_wait_empty=False,
        # Parley registers its own aiohttp service (``app.web_server``), so Faust's web stack,
        # which would serve /table on 0.0.0.0:6066, is never built.
        web_enabled=True,
        autodiscover=False,
        loghandlers=[],
        canonical_url=advertised_url(settings),
    )
    app.conf.parley_fetch_wait_ms = settings.consumer_fetch_wait_ms
    app.conf.parley_idle_fetch_wait_ms = settings.consumer_idle_fetch_wait_ms
    app.parley_settings = settings

    from parley.wiring import wire

    wire(app, settings)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        global app
        app = create_app(Settings())
        return app
    raise AttributeError(name)
