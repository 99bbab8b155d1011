"""Table queries: any worker answers for any key, forwarding to the key's owner."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import aiohttp

from parley.tables.views import key_partition
from tests.integration.test_scaling import callback_application, post, start_two_workers, wait_replies

ADMIN_KEY = "table-test-key"


async def test_a_query_to_the_worker_that_does_not_own_the_key_returns_the_right_state(
    services, fake_llm, redis_url, callbacks, mongo_db, tmp_path, monkeypatch
):
    monkeypatch.setenv("PARLEY_ADMIN_API_KEY", ADMIN_KEY)
    application_id = callback_application(mongo_db, callbacks, "tables")
    a, b = await start_two_workers(services, fake_llm, redis_url, tmp_path, f"parley-tables-{uuid.uuid4().hex[:6]}")
    try:
        conversations = [f"tq-{i}" for i in range(8)]
        sent = set()
        async with aiohttp.ClientSession() as http:
            for conv in conversations:
                sent.add(await post(http, f"{a.http}/v1/webhooks/generic/{application_id}",
                                    {"conversation_id": conv, "id": "m1", "text": f"state of {conv}"}))
        await asyncio.to_thread(lambda: wait_replies(callbacks, application_id, sent, 30))

        keys = [f"{application_id}/{conv}" for conv in conversations]  # conversation ids are per application
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        served_by = set()
        async with aiohttp.ClientSession(headers=headers) as http:
            for conv, key in zip(conversations, keys, strict=True):
                for worker in (a, b):  # one of the two does not own the key
                    async with http.get(f"{worker.http}/v1/tables/conversations/{key}") as response:
                        assert response.status == 200, await response.text()
                        body = await response.json()
                    assert body["key"] == key
                    assert body["partition"] == key_partition(key, 8)
                    contents = [m["content"] for m in body["value"]["history"]]
                    assert contents == [f"state of {conv}", f"You said: state of {conv}"]
                    served_by.add(body["served_by"])
            assert served_by == {a.http, b.http}, "every answer came from one worker: no forwarding happened"
            async with http.get(f"{a.http}/v1/tables/seen-events/{keys[0]}") as response:
                assert len((await response.json())["value"]["applied_event_ids"]) == 1
            async with http.get(f"{a.http}/v1/tables/conversations?prefix={application_id}/&limit=50") as response:
                scan = await response.json()
            assert sorted(r["key"] for r in scan["rows"]) == sorted(keys)
            assert scan["unreachable"] == []
            async with http.get(f"{b.http}/v1/tables/conversations/{application_id}/no-such-conversation") as response:
                assert response.status == 404
                assert (await response.json())["found"] is False
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{a.http}/v1/tables/conversations/{keys[0]}") as response:
                assert response.status == 401

        # the CLI, against either worker
        env = {**os.environ, "PARLEY_ADMIN_API_KEY": ADMIN_KEY}
        result = subprocess.run(
            [sys.executable, "-m", "parley", "tables", "get", "conversations", keys[3], "--url", b.http],
            env=env, capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["value"]["history"][0]["content"] == f"state of {conversations[3]}"
    finally:
        a.stop()
        b.stop()
