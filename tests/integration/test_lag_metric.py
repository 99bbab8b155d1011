"""The consumer-lag gauge rises while a worker is behind and returns to zero after catch-up."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp

from tests.e2e.test_llm_faults import make_application
from tests.integration.test_scaling import post, start_worker, wait_replies


async def lag_by_topic(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with http.get(f"{base}/metrics") as response:
        text = await response.text()
    lag: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("parley_consumer_lag{"):
            topic = line.split('topic="', 1)[1].split('"', 1)[0]
            lag[topic] = lag.get(topic, 0.0) + float(line.rsplit(" ", 1)[1])
    return lag


async def incoming_lag(http: aiohttp.ClientSession, base: str) -> float:
    return (await lag_by_topic(http, base)).get("incoming", 0.0)


async def test_consumer_lag_rises_under_load_and_returns_to_zero(
    services, fake_llm, redis_url, callbacks, mongo_db, tmp_path, monkeypatch
):
    monkeypatch.setenv("PARLEY_MAX_TURNS_IN_FLIGHT", "2")  # a slow model and few turns at once: a backlog
    application_id = make_application(mongo_db, model="slow-2s")
    mongo_db.applications.update_one({"_id": application_id}, {"$set": {"callback_url": callbacks.url(f"/{application_id}")}})
    worker = start_worker(services, fake_llm, redis_url, tmp_path / "w", f"parley-lag-{uuid.uuid4().hex[:6]}").start()
    try:
        samples: list[float] = []
        sent = set()
        async with aiohttp.ClientSession() as http:
            for i in range(12):
                sent.add(await post(http, f"{worker.http}/v1/webhooks/generic/{application_id}",
                                    {"conversation_id": f"lag-{i}", "id": "m1", "text": f"burst {i}"}))
            done = asyncio.create_task(asyncio.to_thread(lambda: wait_replies(callbacks, application_id, sent, 90)))
            while not done.done():
                samples.append(await incoming_lag(http, worker.http))
                await asyncio.sleep(0.3)
            await done
            deadline = time.monotonic() + 60  # commits happen every few seconds; generous on a busy CI box
            lag = await lag_by_topic(http, worker.http)
            while sum(lag.values()) > 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                lag = await lag_by_topic(http, worker.http)
    finally:
        worker.stop()
    assert max(samples) >= 4, f"lag never rose under load: {samples}"
    # every topic the agents read is caught up; the tables' changelogs (never committed) are not counted
    assert "incoming" in lag and sum(lag.values()) == 0, f"lag did not return to zero after catch-up: {lag}"
    assert not [topic for topic in lag if topic.endswith(("-changelog", "__leader"))], lag
