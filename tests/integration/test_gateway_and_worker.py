"""`parley web` and `parley worker` as two processes, on the embedded broker and a real Redis."""

from __future__ import annotations

import subprocess
import uuid

import aiohttp
import pytest

from tests.support.net import free_port, wait_http_ok
from tests.support.worker import ParleyProcess, worker_env
from tests.support.wsclient import ChatClient


@pytest.fixture(scope="module")
def split_deployment(services, fake_llm, redis_url, tmp_path_factory):
    data = tmp_path_factory.mktemp("split")
    common = {
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_APP_ID": f"parley-split-{uuid.uuid4().hex[:6]}",
        "PARLEY_LLM_BASE_URL": fake_llm.base_url,
        "PARLEY_LLM_API_KEY": "test-key",
        "PARLEY_LLM_MODEL": "fake-model",
    }
    worker_port, web_port = free_port(), free_port()
    worker = ParleyProcess(["worker"], worker_env(
        kafka_url=services["broker"].url, mongo_url=services["documents"].url,
        data_dir=data / "worker", port=worker_port, **common), data / "worker.log", worker_port).start()
    web = ParleyProcess(["web"], worker_env(
        kafka_url=services["broker"].url, mongo_url=services["documents"].url,
        data_dir=data / "web", port=web_port, **common), data / "web.log", web_port).start()
    yield worker, web
    assert web.stop() == 0, web.log_tail()
    assert worker.stop() == 0, worker.log_tail()


async def test_a_message_through_the_gateway_is_answered_by_the_worker_with_streamed_deltas(split_deployment):
    _worker, web = split_deployment
    client = await ChatClient.connect(web.ws)
    try:
        turn = await client.turn("across processes")
    finally:
        await client.close()
    assert turn.final is not None and turn.final["text"] == "You said: across processes"
    assert len(turn.deltas) >= 2
    assert "".join(d["text"] for d in turn.deltas) == turn.final["text"]


async def test_gateway_without_redis_refuses_to_start_with_a_clear_message(services, tmp_path):
    env = worker_env(kafka_url=services["broker"].url, mongo_url=services["documents"].url,
                     data_dir=tmp_path, port=free_port())
    import os
    import sys

    result = subprocess.run([sys.executable, "-m", "parley", "web"], env={**os.environ, **env},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "PARLEY_REDIS_URL" in result.stderr


async def test_gateway_readiness_and_metrics(split_deployment):
    _, web = split_deployment
    wait_http_ok(f"{web.http}/readyz", 10)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{web.http}/metrics") as response:
            assert response.status == 200
            assert "parley_websocket_connections" in await response.text()
