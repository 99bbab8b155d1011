"""SIGTERM lets the turns in flight finish (within PARLEY_SHUTDOWN_GRACE_S) instead of leaving
them to be started again, from scratch, by the partition's next owner."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid

import aiohttp

from tests.e2e.test_llm_faults import make_application
from tests.integration.test_scaling import post, start_worker, wait_replies


async def test_a_stopping_worker_finishes_its_turn_in_flight(
    services, fake_llm, redis_url, callbacks, mongo_db, tmp_path
):
    application_id = make_application(mongo_db, model="slow-6s")
    mongo_db.applications.update_one({"_id": application_id}, {"$set": {"callback_url": callbacks.url(f"/{application_id}")}})
    app_id = f"parley-grace-{uuid.uuid4().hex[:6]}"
    text = f"finish me {uuid.uuid4().hex[:6]}"
    first = start_worker(services, fake_llm, redis_url, tmp_path / "first", app_id).start()
    try:
        async with aiohttp.ClientSession() as http:
            event_id = await post(http, f"{first.http}/v1/webhooks/generic/{application_id}",
                                  {"conversation_id": "grace-1", "id": "m1", "text": text})
        deadline = time.monotonic() + 10
        while not calls(fake_llm, text) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert calls(fake_llm, text) == 1, "the turn did not start"
        stopping = time.monotonic()
        first.proc.terminate()
        assert await asyncio.to_thread(first.proc.wait, 40) == 0
        took = time.monotonic() - stopping
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker did not stop:\n{first.log_tail()}") from None
    finally:
        first.stop()
    assert took >= 4, f"stopped after {took:.1f}s: the 6 s turn cannot have finished"
    assert "events in flight" in first.log_path.read_text()
    # the stopping worker also delivered the answer (its persister stayed open for it)
    delivered = [r["body"] for r in list(callbacks.received) if r["path"] == f"/{application_id}"]
    assert [r["text"] for r in delivered if r["in_reply_to"] == event_id] == [f"You said: {text}"]

    # Its offsets were committed: the next worker neither asks the model again nor redelivers.
    second = start_worker(services, fake_llm, redis_url, tmp_path / "second", app_id).start()
    try:
        replies = await asyncio.to_thread(lambda: wait_replies(callbacks, application_id, {event_id}, 60))
        await asyncio.sleep(2.0)
    finally:
        second.stop()
    answers = {(r["message_id"], r["text"]) for r in replies if r["in_reply_to"] == event_id}
    assert [a[1] for a in answers] == [f"You said: {text}"]  # one reply (a redelivery has its id)
    assert calls(fake_llm, text) == 1, "the turn was started again by the next worker"


def calls(fake_llm, text: str) -> int:
    return sum(1 for r in list(fake_llm.requests) if r["messages"][-1].get("content") == text)
