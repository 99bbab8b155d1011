"""The document store stops in the middle of a conversation: clients get `unavailable` frames and
webhooks 503s (never a dropped socket or a lost message), and once the store is back every
message is answered and archived exactly once."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import MongoClient

from parley.embedded import EmbeddedServer, start_document_server
from tests.e2e.test_ws_resume import Socket
from tests.support.callbacks import CallbackServer
from tests.support.fake_llm import FakeLLM
from tests.support.worker import ParleyProcess, free_port, worker_env


@pytest.fixture
def documents(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A document server of this test's own, which it stops and starts again (same port, files)."""
    place: dict[str, Any] = {"port": free_port(), "dir": tmp_path / "documents"}
    place["server"] = start_document_server(place["dir"], tmp_path / "logs", port=place["port"])
    yield place
    server: EmbeddedServer = place["server"]
    server.stop()


@pytest.fixture
def outage_worker(
    documents: dict[str, Any], services: dict[str, EmbeddedServer], fake_llm: FakeLLM, tmp_path: Path
) -> Iterator[ParleyProcess]:
    port = free_port()
    env = worker_env(
        kafka_url=services["broker"].url, mongo_url=documents["server"].url, data_dir=tmp_path / "worker",
        port=port, PARLEY_APP_ID=f"parley-outage-{uuid.uuid4().hex[:8]}",
        PARLEY_LLM_BASE_URL=fake_llm.base_url, PARLEY_LLM_API_KEY="test-key", PARLEY_LLM_MODEL="fake-model",
        PARLEY_STORE_EDGE_TIMEOUT_S="1", PARLEY_CONFIG_LOCAL_CACHE_TTL_S="0.5",
    )
    process = ParleyProcess(["worker"], env, tmp_path / "worker.log", port).start()
    yield process
    process.stop()


async def test_a_store_outage_is_waited_out_and_nothing_is_lost(
    outage_worker: ParleyProcess, documents: dict[str, Any], callbacks: CallbackServer
) -> None:
    url = documents["server"].url
    hook = f"outage-{uuid.uuid4().hex[:6]}"
    with MongoClient(url, timeoutMS=5000) as client:
        client["parley"].applications.insert_one(
            {"_id": hook, "name": "outage", "chatbot_id": "demo", "callback_url": callbacks.url(f"/{hook}")}
        )
    before = await Socket.open(outage_worker.ws, "c-before")
    _, reply = await before.turn("first")
    assert reply["text"] == "You said: first"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{outage_worker.http}/v1/webhooks/generic/{hook}",
                             json={"conversation_id": "h-1", "id": "w-1", "text": "hook one"}) as response:
            assert response.status == 202

        documents["server"].stop()  # --- the store is down -------------------------------------
        await asyncio.sleep(1.0)  # the local config cache (0.5 s) has expired
        # a conversation whose owner this gateway knows goes on: accepted, answered once the
        # store is back (the reply cannot be archived before)
        await before.send({"type": "message", "id": "m-during", "text": "during"})
        ack = await before.until(lambda f: f["type"] in ("ack", "error"))
        assert ack["type"] == "ack", ack
        # a new conversation cannot be checked: `unavailable`, the socket stays open
        newcomer = Socket(await __import__("websockets").connect(outage_worker.ws, open_timeout=10))
        await newcomer.send({"type": "hello", "application_id": "demo", "conversation_id": "c-new"})
        refusal = await newcomer.recv(timeout_s=10)
        assert (refusal["type"], refusal["code"]) == ("error", "unavailable"), refusal
        assert refusal["retry_after"] > 0
        # a webhook either waits out the outage with the application it knows, or says 503
        async with http.post(f"{outage_worker.http}/v1/webhooks/generic/{hook}",
                             json={"conversation_id": "h-2", "id": "w-2", "text": "hook two"}) as response:
            assert response.status in (202, 503), await response.text()
            if response.status == 503:
                assert response.headers["Retry-After"]
            hook_two_accepted = response.status == 202
        async with http.post(f"{outage_worker.http}/v1/webhooks/generic/never-read",
                             json={"conversation_id": "h-3", "id": "w-3", "text": "?"}) as response:
            assert response.status == 503 and response.headers["Retry-After"]
        await asyncio.sleep(2.0)

        documents["server"] = start_document_server(  # --- the store is back ---------------------
            documents["dir"], documents["dir"].parent / "logs", port=documents["port"]
        )
        final = await before.until(lambda f: f["type"] == "message" and f.get("in_reply_to") == ack["event_id"],
                                   timeout_s=60)
        assert final["text"] == "You said: during"
        deadline = time.monotonic() + 30
        while True:  # the client retries its hello, as `retry_after` says
            await newcomer.send({"type": "hello", "application_id": "demo", "conversation_id": "c-new"})
            ready = await newcomer.recv(timeout_s=10)
            if ready["type"] == "ready" or time.monotonic() > deadline:
                break
            await asyncio.sleep(ready.get("retry_after", 1))
        assert ready["type"] == "ready", ready
        _, reply = await newcomer.turn("after")
        assert reply["text"] == "You said: after"
        if not hook_two_accepted:  # the platform retries its 503
            async with http.post(f"{outage_worker.http}/v1/webhooks/generic/{hook}",
                                 json={"conversation_id": "h-2", "id": "w-2", "text": "hook two"}) as response:
                assert response.status == 202
    hits = await asyncio.to_thread(
        callbacks.wait_for, lambda r: r["path"] == f"/{hook}" and r["body"]["conversation_id"] == "h-2", 60
    )
    assert [h["body"]["text"] for h in hits if h["body"]["conversation_id"] == "h-2"] == ["You said: hook two"]
    await before.ws.close()
    await newcomer.ws.close()
    # everything archived exactly once
    with MongoClient(documents["server"].url, timeoutMS=5000) as client:
        messages = client["parley"].messages
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = {c: messages.count_documents({"conversation_id": c}) for c in ("c-before", "c-new", "h-1", "h-2")}
            if counts == {"c-before": 4, "c-new": 2, "h-1": 2, "h-2": 2}:
                break
            await asyncio.sleep(0.2)
        assert counts == {"c-before": 4, "c-new": 2, "h-1": 2, "h-2": 2}
        texts = [d["text"] for d in messages.find({"conversation_id": "c-before", "role": "user"})]
        assert sorted(texts) == ["during", "first"]
    assert "Traceback" not in Path(outage_worker.log_path).read_text()
