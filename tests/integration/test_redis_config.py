"""Configs through a real Redis (a ``redis-server`` child process) and a real document store:
an outage of Redis costs nothing but the cache, and the cache comes back with Redis."""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.config.store import ConfigStore, application_key, chatbot_key
from parley.embedded import EmbeddedServer
from parley.settings import Settings
from parley.storage.cache import RedisCache
from parley.storage.documents import DocumentStore
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.support.net import free_port
from tests.support.webdeps import web_deps

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
KEY = "integration-admin-key-0123456789"
ClientFactory = Callable[[web.Application], Awaitable[TestClient]]



class RedisServer:
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        argv = [
            REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
        ]
        with open(self.workdir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}: see {self.workdir / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout_s}s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGCONT)  # in case a test paused it
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(services: dict[str, EmbeddedServer], redis_server: RedisServer, database: str) -> Settings:
    return Settings(
        mongo_url=services["documents"].url, mongo_database=database, redis_url=redis_server.url,
        admin_api_key=KEY,
    )


@pytest.fixture
async def documents(settings: Settings) -> AsyncIterator[DocumentStore]:
    assert settings.mongo_url is not None
    store = DocumentStore(settings.mongo_url, settings.mongo_database)
    await store.start()
    await store.put_chatbot({"_id": "bot", "system_prompt": "v1", "temperature": 0.5})
    await store.put_application({"_id": "app", "name": "App", "chatbot_id": "bot", "callback_url": None})
    yield store
    await store.close()


@pytest.fixture
async def probe(redis_server: RedisServer) -> AsyncIterator[Any]:
    """A plain client to look inside Redis."""
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    yield client
    await client.aclose()


async def prompt(configs: ConfigStore) -> str:
    config = await configs.application("app")
    assert config is not None
    return config.chatbot.system_prompt


async def test_configs_load_from_mongodb_while_redis_is_down_and_the_cache_returns_with_it(
    settings: Settings, documents: DocumentStore, redis_server: RedisServer, probe: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert settings.redis_url is not None
    cache = RedisCache(settings.redis_url, retry_after_s=0.2)
    configs = ConfigStore(documents, settings, cache)
    try:
        assert await prompt(configs) == "v1"
        assert await probe.exists(application_key("app"), chatbot_key("bot")) == 2
        ttl = await probe.pttl(chatbot_key("bot"))
        assert 0 < ttl <= settings.config_cache_ttl_s * 1000

        # served from Redis: a write behind the cache's back is not seen
        await documents.put_chatbot({"_id": "bot", "system_prompt": "v2", "temperature": 0.5})
        assert await prompt(configs) == "v1"

        redis_server.stop()
        with caplog.at_level(logging.INFO, logger="parley.storage.cache"):
            for _ in range(5):
                assert await prompt(configs) == "v2", "with Redis down, configs come from MongoDB"
                await asyncio.sleep(0.1)
            await configs.invalidate_chatbot("bot")  # an admin write during the outage
            config = await configs.application("app")
            assert config is not None and config.chatbot.temperature == 0.5
            assert await configs.application("missing") is None
        failures = [r for r in caplog.records if "redis cache" in r.getMessage() and r.levelno == logging.WARNING]
        assert len(failures) == 1, "the outage is logged once, not once per call"

        redis_server.start()  # same port, empty
        await probe.connection_pool.disconnect()  # the probe's own pooled connection died with it
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="parley.storage.cache"):
            deadline = time.monotonic() + 10
            while await probe.exists(chatbot_key("bot")) == 0:
                assert time.monotonic() < deadline, "the cache did not come back with Redis"
                assert await prompt(configs) == "v2"
                await asyncio.sleep(0.1)
        assert any("reachable again" in r.getMessage() for r in caplog.records)

        await documents.put_chatbot({"_id": "bot", "system_prompt": "v3"})
        assert await prompt(configs) == "v2", "cached in Redis again"
        await configs.invalidate_chatbot("bot")
        assert await prompt(configs) == "v3"
    finally:
        await cache.close()


async def test_a_hung_redis_costs_a_short_timeout_not_an_error(
    settings: Settings, documents: DocumentStore, redis_server: RedisServer
) -> None:
    assert settings.redis_url is not None and redis_server.proc is not None
    cache = RedisCache(settings.redis_url, timeout_s=0.3)
    configs = ConfigStore(documents, settings, cache)
    try:
        assert await prompt(configs) == "v1"
        await cache.delete(application_key("app"))
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            await documents.put_chatbot({"_id": "bot", "system_prompt": "v2"})
            await configs.invalidate_chatbot("bot")
            started = time.monotonic()
            assert await asyncio.wait_for(prompt(configs), timeout=10) == "v2"
            assert time.monotonic() - started < 5, "socket timeouts must bound a call to a hung Redis"
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
    finally:
        await cache.close()


async def test_an_admin_write_in_one_process_reaches_another_through_redis(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore
) -> None:
    assert settings.redis_url is not None
    web_cache, worker_cache = RedisCache(settings.redis_url), RedisCache(settings.redis_url)
    gateway = ConfigStore(documents, settings, web_cache)  # the process serving the admin API
    worker = ConfigStore(documents, settings, worker_cache)  # a worker answering turns


    async def produce(key: str, value: bytes) -> None:
        raise AssertionError("nothing is produced")

    async def ready() -> tuple[bool, dict[str, Any]]:
        return True, {}

    try:
        client = await aiohttp_client(
            create_web_app(settings=settings, deps=web_deps(configs=gateway, documents=documents, archive=documents),
                           ingress=Ingress(produce, 1), readiness=ready)
        )
        assert await prompt(worker) == "v1"
        response = await client.patch(
            "/v1/admin/chatbots/bot", json={"system_prompt": "patched"},
            headers={"Authorization": f"Bearer {KEY}"},
        )
        assert response.status == 200, await response.text()
        assert await prompt(worker) == "patched", "the worker's next turn uses the update"
    finally:
        await web_cache.close()
        await worker_cache.close()
