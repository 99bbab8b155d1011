"""A worker whose consumer group never committed (a first deployment on existing topics, or a new
PARLEY_APP_ID) says how many retained events it is about to answer again, and
PARLEY_NEW_GROUP_START=latest skips them."""

from __future__ import annotations

import asyncio
import re
import uuid

import aiohttp

from tests.integration.test_scaling import callback_application, post, start_worker, wait_replies


async def test_a_new_group_reports_the_retained_backlog_and_latest_skips_it(
    services, fake_llm, redis_url, callbacks, mongo_db, tmp_path
):
    application_id = callback_application(mongo_db, callbacks, "newgroup")
    tag = uuid.uuid4().hex[:6]
    old_texts = [f"old {tag} {n}" for n in range(3)]

    async def send(worker, n: int, text: str) -> str:
        async with aiohttp.ClientSession() as http:
            return await post(http, f"{worker.http}/v1/webhooks/generic/{application_id}",
                              {"conversation_id": f"ng-{tag}-{n}", "id": f"m{n}", "text": text})

    first = start_worker(services, fake_llm, redis_url, tmp_path / "first", f"parley-ng1-{tag}").start()
    try:
        sent = {await send(first, n, text) for n, text in enumerate(old_texts)}
        await asyncio.to_thread(lambda: wait_replies(callbacks, application_id, sent, 30))
    finally:
        first.stop()
    assert "no committed offsets" not in first.log_path.read_text()  # nothing was retained yet

    latest = start_worker(services, fake_llm, redis_url, tmp_path / "latest", f"parley-ng2-{tag}",
                          PARLEY_NEW_GROUP_START="latest").start()
    try:
        fresh = await send(latest, 9, f"new {tag}")
        await asyncio.to_thread(lambda: wait_replies(callbacks, application_id, {fresh}, 30))
        await asyncio.sleep(2.0)  # time to (wrongly) answer the old ones too
    finally:
        latest.stop()
    assert re.search(r"starts at the end .* the 3 events retained there are not answered", latest.log_path.read_text())
    assert [calls(fake_llm, text) for text in old_texts] == [1, 1, 1]

    earliest = start_worker(services, fake_llm, redis_url, tmp_path / "earliest", f"parley-ng3-{tag}").start()
    try:
        await asyncio.to_thread(lambda: wait_replies(callbacks, application_id, sent | {fresh}, 30))
        deadline = asyncio.get_running_loop().time() + 30
        while min(calls(fake_llm, text) for text in old_texts) < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.2)
    finally:
        earliest.stop()
    assert "this worker answers the 4 events retained there" in earliest.log_path.read_text()
    assert [calls(fake_llm, text) for text in old_texts] == [2, 2, 2]  # answered again, as warned


def calls(fake_llm, text: str) -> int:
    return sum(1 for r in list(fake_llm.requests) if r["messages"][-1].get("content") == text)
