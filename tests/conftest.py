"""Shared fixtures. The embedded broker and document server start once per session; the e2e
tests run a real ``parley worker`` child process against them and a fake OpenAI-compatible
LLM server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from parley.embedded import EmbeddedServer, embedded_services
from tests.support.callbacks import CallbackServer
from tests.support.fake_llm import FakeLLM
from tests.support.worker import ParleyProcess, free_port, worker_env

ADMIN_KEY = "session-admin-key"


@pytest.fixture(scope="session")
def session_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, EmbeddedServer]]:
    """The embedded broker and document server, started once per session."""
    with embedded_services(tmp_path_factory.mktemp("embedded")) as servers:
        yield servers
    for server in servers.values():
        assert server.process.poll() is not None, f"embedded {server.name} outlived the session"


@pytest.fixture(scope="session")
def services(session_services: dict[str, EmbeddedServer]) -> dict[str, EmbeddedServer]:
    """The servers a test talks to (tests/integration gives each module a broker of its own)."""
    return session_services


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def callbacks() -> Iterator[CallbackServer]:
    server = CallbackServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server of the session's own, on a free port (nothing kept on disk)."""
    import subprocess
    import time

    import redis

    from tests.support.net import free_port as _free_port

    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def mongo_db(session_services: dict[str, EmbeddedServer]) -> Iterator[Any]:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(session_services["documents"].url, timeoutMS=10_000)
    yield client["parley"]
    client.close()


@pytest.fixture
def database(mongo_db: Any) -> Iterator[str]:
    """A database of this test's own on the session's document server, dropped afterwards."""
    name = f"t{uuid.uuid4().hex[:16]}"
    yield name
    mongo_db.client.drop_database(name)


@pytest.fixture(scope="session")
def worker(
    services: dict[str, EmbeddedServer],
    fake_llm: FakeLLM,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ParleyProcess]:
    """One ``parley worker`` for the session, answering with the fake LLM."""
    data_dir = tmp_path_factory.mktemp("worker")
    port = free_port()
    env = worker_env(
        kafka_url=services["broker"].url,
        mongo_url=services["documents"].url,
        data_dir=data_dir,
        port=port,
        PARLEY_APP_ID=f"parley-test-{uuid.uuid4().hex[:8]}",
        PARLEY_LLM_BASE_URL=fake_llm.base_url,
        PARLEY_LLM_API_KEY="test-key",
        PARLEY_LLM_MODEL="fake-model",
        PARLEY_LLM_MAX_ATTEMPTS="3",
        PARLEY_LLM_BACKOFF_BASE_S="0.05",
        PARLEY_LLM_TIMEOUT_S="1.5",
        PARLEY_HANDLER_MAX_ATTEMPTS="2",
        PARLEY_ADMIN_API_KEY=ADMIN_KEY,
    )
    process = ParleyProcess(["worker"], env, data_dir / "worker.log", port).start()
    yield process
    code = process.stop()
    assert code == 0, f"worker exited with {code}:\n{process.log_tail()}"
