"""A fresh Parley app per test (``create_app`` with ``store="memory://"``), driven by Faust's
``agent.test_context()``, one fixture per outbound port.

What the agents reach outside the app is put in place on the app's runtime, which the test
never starts: the broker (``app.producer``, a ``MemoryProducer``), the model (the built-in echo
model), the bus (the in-process bus), the application configs and the archive (``harness``).

``put`` on a test agent returns once the event has entered the agent's stream (for an agent
that does not yield, Faust's wrapper records the value in a stream processor), which is before
the agent has handled it, let alone before its keyed runner has finished the work: the tests
wait for the event's ack (``event.message.acked``), which the agents give only when the work is
done, and drain the runner before leaving the test context.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from parley.app import ParleyApp, create_app
from parley.llm.echo import EchoModel
from parley.settings import Settings
from parley.storage.bus import InProcessBus
from tests.agents.harness import Archive, Configs, MemoryProducer


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        store="memory://", data_dir=tmp_path, app_id=f"agents-{uuid.uuid4().hex[:8]}",
        handler_max_attempts=2,
    )


@pytest.fixture
def configs() -> Configs:
    return Configs()


@pytest.fixture
def archive() -> Archive:
    return Archive()


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
async def app(settings: Settings, configs: Configs, archive: Archive, bus: InProcessBus) -> AsyncIterator[ParleyApp]:
    app = create_app(settings)
    producer = MemoryProducer(app.transport)
    app.producer = producer
    runtime = app.parley_runtime
    runtime.model = EchoModel()
    runtime.bus = bus
    runtime.configs = configs
    runtime.documents = archive  # the persister uses only DocumentStore.archive here
    runtime.http = None  # websocket replies only: no platform is called
    yield app
    await producer.stop()


@pytest.fixture
def broker(app: ParleyApp) -> MemoryProducer:
    producer = app.producer
    assert isinstance(producer, MemoryProducer)
    return producer
