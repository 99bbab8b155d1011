"""Canary secrets never reach a log line, a topic, the archive, the metrics or the CLI (issue 11, part 2).

A worker of its own holds a canary LLM key; an application with a canary secret, a callback URL
with canary credentials (a port nobody listens on, so delivery fails and is dead-lettered), a
WhatsApp channel with a canary verify token. Traffic: a signed generic webhook answered by a
model that echoes the key in its 401 (dead letter, apology reply, failing callback), a websocket
connected with ``?token=<canary token>``, WhatsApp's subscription check with the canary verify
token. Then the worker log, every record of the dead-letters topic, the application's archive,
the worker's /metrics
and ``parley dlq list`` (table and JSON) and ``parley dlq show`` are searched: 0 hits.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer

from parley.channels.generic import sign
from parley.web.auth import make_user_token
from tests.support.net import free_port
from tests.support.worker import ParleyProcess, worker_env
from tests.support.wsclient import ChatClient

RUN = uuid.uuid4().hex[:10]
LLM_KEY = f"sk-canary-llm-{RUN}"
APP_SECRET = f"canary-app-secret-{RUN}"
CALLBACK_PASSWORD = f"canary-cb-password-{RUN}"
CALLBACK_TOKEN = f"canary-cb-token-{RUN}"
VERIFY_TOKEN = f"canary-verify-{RUN}"


@pytest.fixture(scope="module")
def canary_worker(services: Any, fake_llm: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParleyProcess]:
    data_dir = tmp_path_factory.mktemp("canary-worker")
    port = free_port()
    env = worker_env(
        kafka_url=services["broker"].url, mongo_url=services["documents"].url, data_dir=data_dir, port=port,
        PARLEY_APP_ID=f"parley-canary-{RUN}", PARLEY_LLM_BASE_URL=fake_llm.base_url, PARLEY_LLM_API_KEY=LLM_KEY,
        PARLEY_LLM_MODEL="echo-key", PARLEY_LLM_MAX_ATTEMPTS="2", PARLEY_LLM_BACKOFF_BASE_S="0.05",
        PARLEY_HANDLER_MAX_ATTEMPTS="2", PARLEY_DELIVERY_MAX_ATTEMPTS="2", PARLEY_DELIVERY_TIMEOUT_S="1",
        PARLEY_SEED_DEMO="false",
    )
    process = ParleyProcess(["worker"], env, data_dir / "worker.log", port).start()
    yield process
    assert process.stop() == 0, process.log_tail()


async def dead_letters(kafka_url: str, settle_s: float = 3.0) -> list[bytes]:
    """Every record of the dead-letters topic, read until nothing new came for ``settle_s``."""
    consumer = AIOKafkaConsumer(
        "dead-letters", bootstrap_servers=kafka_url.removeprefix("kafka://"),
        auto_offset_reset="earliest", enable_auto_commit=False, fetch_max_wait_ms=50,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle_s:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                values.extend(r.value or b"" for r in records)
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return values


def parley_cli(services: Any, *args: str) -> str:
    env = {**os.environ, "PARLEY_KAFKA_URL": services["broker"].url, "PARLEY_MONGO_URL": services["documents"].url}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "parley", *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


async def test_no_canary_secret_reaches_logs_topics_the_archive_metrics_or_the_cli(
    canary_worker: ParleyProcess, services: Any, mongo_db: Any
) -> None:
    application_id = f"canary-{RUN}"
    closed_port = free_port()  # nobody listens: every callback attempt fails
    callback_url = f"http://canary-user:{CALLBACK_PASSWORD}@127.0.0.1:{closed_port}/cb?token={CALLBACK_TOKEN}"
    mongo_db.chatbots.insert_one({"_id": application_id, "system_prompt": "Be brief.", "model": "echo-key"})
    mongo_db.applications.insert_one({
        "_id": application_id, "chatbot_id": application_id, "secret": APP_SECRET, "callback_url": callback_url,
        "channels": {"generic": {}, "whatsapp": {
            "app_secret": f"canary-wa-app-secret-{RUN}", "verify_token": VERIFY_TOKEN,
            "access_token": f"canary-wa-access-{RUN}", "phone_number_id": "1234567",
        }},
    })
    user_token = make_user_token(APP_SECRET, application_id, "canary-user-1", 300)
    conversation_id = f"conv-{RUN}"

    async with aiohttp.ClientSession() as http:
        # a signed generic webhook: the model echoes the key, the reply's callback fails
        body = json.dumps({"conversation_id": conversation_id, "id": f"m-{RUN}", "text": "hello canary"}).encode()
        async with http.post(
            f"{canary_worker.http}/v1/webhooks/generic/{application_id}", data=body,
            headers={"Content-Type": "application/json", "X-Parley-Signature": sign(APP_SECRET, body)},
        ) as response:
            assert response.status < 300, await response.text()
        # WhatsApp's subscription check, with the verify token in the query
        async with http.get(
            f"{canary_worker.http}/v1/webhooks/whatsapp/{application_id}",
            params={"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "4242"},
        ) as response:
            assert (response.status, await response.text()) == (200, "4242")
    # a websocket signed in with ?token=
    client = await ChatClient.connect(
        f"{canary_worker.ws}?token={user_token}", application_id=application_id, conversation_id=f"ws-{RUN}"
    )
    try:
        turn = await client.turn("hello over the socket", timeout_s=30)
        assert turn.final["text"].startswith("Sorry")
    finally:
        await client.close()

    # wait for the webhook turn's dead letters: the model's, then the failed callback's
    deadline = time.monotonic() + 60
    letters: list[bytes] = []
    while time.monotonic() < deadline:
        letters = [v for v in await dead_letters(services["broker"].url, settle_s=1.0) if application_id.encode() in v]
        stages = {json.loads(v)["stage"] for v in letters}
        if any("llm" in s for s in stages) and any("deliver" in s or "persist" in s for s in stages):
            break
        await asyncio.sleep(1)
    stages = {json.loads(v)["stage"] for v in letters}
    assert any("llm" in s for s in stages), f"the model's failure was not dead-lettered: {stages}"
    assert any("deliver" in s or "persist" in s for s in stages), f"the failed callback was not dead-lettered: {stages}"
    errors = " ".join(json.loads(v)["error"] for v in letters)
    assert "Incorrect API key provided: ***" in errors, errors  # the provider's words are kept, the key is not
    assert f"127.0.0.1:{closed_port}/cb" in errors, errors  # the callback is still named

    canaries = [LLM_KEY, APP_SECRET, CALLBACK_PASSWORD, CALLBACK_TOKEN, VERIFY_TOKEN, user_token]
    archive = json.dumps(list(mongo_db.messages.find({"application_id": application_id})), default=str)
    assert conversation_id in archive, "the archive was searched"
    all_letters = b"\n".join(await dead_letters(services["broker"].url)).decode("utf-8", "replace")
    async with aiohttp.ClientSession() as http, http.get(f"{canary_worker.http}/metrics") as response:
        metrics_text = await response.text()
    shown_id = json.loads(letters[0])["dead_letter_id"]
    places = {
        "worker log": canary_worker.log_path.read_text(errors="replace"),
        "dead-letters topic": all_letters,
        "archive": archive,
        "dlq list": parley_cli(services, "dlq", "list", "--limit", "0"),
        "dlq list --json": parley_cli(services, "dlq", "list", "--json", "--limit", "0"),
        "dlq show": parley_cli(services, "dlq", "show", shown_id),
        "metrics": metrics_text,
    }
    assert f'application="{application_id}"' in metrics_text, "the metrics were searched"
    assert "GET /ws?token=***" in places["worker log"], "the access log was searched"
    hits = {(where, canary[:24]) for where, text in places.items() for canary in canaries if canary in text}
    assert hits == set(), hits
