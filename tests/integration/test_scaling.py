"""Two `parley worker` processes split the partitions; one is stopped (SIGTERM) or killed
(SIGKILL) while traffic flows. Every message is answered, no message gets two different replies,
and the survivor takes over the partitions with their table state (changelog recovery)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import defaultdict

import aiohttp
import pytest

from tests.support.net import free_port
from tests.support.worker import ParleyProcess, worker_env


def start_worker(services, fake_llm, redis_url, data_dir, app_id: str, **extra_env: str) -> ParleyProcess:
    port = free_port()
    env = worker_env(
        kafka_url=services["broker"].url, mongo_url=services["documents"].url, data_dir=data_dir,
        port=port, PARLEY_APP_ID=app_id, PARLEY_REDIS_URL=redis_url,
        PARLEY_LLM_BASE_URL=fake_llm.base_url, PARLEY_LLM_API_KEY="test-key", PARLEY_LLM_MODEL="fake-model",
        PARLEY_METRICS_INTERVAL_S="0.5", **extra_env,
    )
    return ParleyProcess(["worker"], env, data_dir / "worker.log", port)


async def post(http: aiohttp.ClientSession, url: str, body: dict) -> str:
    for _ in range(100):  # a stopping worker answers 503 or drops the connection: retry elsewhere
        try:
            async with http.post(url, json=body) as response:
                if response.status == 202:
                    return (await response.json())["event_id"]
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"could not deliver {body}")


def callback_application(mongo_db, callbacks, prefix: str) -> str:
    """A generic-webhook application whose replies go to the test's callback server."""
    application_id = f"{prefix}-{uuid.uuid4().hex[:6]}"
    mongo_db.applications.insert_one(
        {"_id": application_id, "chatbot_id": "demo", "callback_url": callbacks.url(f"/{application_id}")}
    )
    return application_id


async def start_two_workers(services, fake_llm, redis_url, tmp_path, app_id: str) -> tuple[ParleyProcess, ParleyProcess]:
    """Two workers of one group, returned once both own partitions."""
    a = start_worker(services, fake_llm, redis_url, tmp_path / "a", app_id).start()
    b = start_worker(services, fake_llm, redis_url, tmp_path / "b", app_id).start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and 0 in assignment_sizes(a, b):
        await asyncio.sleep(0.5)
    if 0 in assignment_sizes(a, b):
        a.stop()
        b.stop()
        raise AssertionError("the two workers did not split the partitions")
    return a, b


def assignment_sizes(*workers: ParleyProcess) -> list[int]:
    import json
    import urllib.error
    import urllib.request

    sizes = []
    for w in workers:
        try:
            with urllib.request.urlopen(f"{w.http}/readyz", timeout=5) as r:
                sizes.append(json.loads(r.read())["checks"]["partitions_assigned"])
        except urllib.error.HTTPError as exc:  # 503 while a rebalance is in progress
            sizes.append(json.loads(exc.read() or b"{}").get("checks", {}).get("partitions_assigned", 0))
        except OSError:
            sizes.append(0)
    return sizes


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_failover_answers_everything_once_and_keeps_conversation_state(
    services, fake_llm, redis_url, callbacks, mongo_db, tmp_path, stop_signal
):
    application_id = callback_application(mongo_db, callbacks, "scale")
    a, b = await start_two_workers(services, fake_llm, redis_url, tmp_path, f"parley-scale-{uuid.uuid4().hex[:6]}")
    try:
        conversations = [f"scale-c{i}" for i in range(16)]
        sent: dict[str, str] = {}  # event_id -> conversation
        url = f"{a.http}/v1/webhooks/generic/{application_id}"
        async with aiohttp.ClientSession() as http:
            # first message of every conversation: both workers build table state
            for conv in conversations:
                sent[await post(http, url, {"conversation_id": conv, "id": "m0", "text": f"{conv} remember me"})] = conv
            await asyncio.to_thread(lambda: wait_replies(callbacks, application_id, set(sent), 30))
            # traffic continues while worker b stops
            for n in range(1, 4):
                for conv in conversations:
                    sent[await post(http, url, {"conversation_id": conv, "id": f"m{n}", "text": f"{conv} message {n}"})] = conv
                if n == 1:
                    b.proc.send_signal(stop_signal)
            b.proc.wait(30)
            replies = await asyncio.to_thread(lambda: wait_replies(callbacks, application_id, set(sent), 90))
    finally:
        a.stop()
        b.stop()

    # every message answered; no message got two different replies (same message id = same reply,
    # which the client drops)
    by_event = defaultdict(set)
    for reply in replies:
        by_event[reply["in_reply_to"]].add(reply["message_id"])
    assert set(by_event) >= set(sent)
    assert all(len(ids) == 1 for ids in by_event.values()), {k: v for k, v in by_event.items() if len(v) > 1}
    # the survivor answered with each conversation's earlier history (changelog recovery)
    for conv in conversations:
        last = [r for r in fake_llm.requests if r["messages"][-1].get("content") == f"{conv} message 3"]
        assert last, conv
        contents = [m.get("content") for m in last[-1]["messages"]]
        assert f"{conv} remember me" in contents and f"{conv} message 1" in contents


def wait_replies(callbacks, application_id: str, event_ids: set[str], timeout_s: float) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        replies = [r["body"] for r in list(callbacks.received) if r["path"] == f"/{application_id}"]
        if event_ids <= {r["in_reply_to"] for r in replies}:
            time.sleep(1.0)  # let duplicates, if any, arrive
            return [r["body"] for r in list(callbacks.received) if r["path"] == f"/{application_id}"]
        time.sleep(0.1)
    answered = {r["body"]["in_reply_to"] for r in callbacks.received if r["path"] == f"/{application_id}"}
    raise AssertionError(f"{len(event_ids - answered)} of {len(event_ids)} messages unanswered: {sorted(event_ids - answered)}")
