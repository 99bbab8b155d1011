"""A platform delivering the same message 5 times, once after the worker restarted (a new
process, its table restored from the changelog), gets exactly one reply."""

from __future__ import annotations

import asyncio
import random
import uuid

from tests.e2e.test_channels import new_application, platforms, post, send_message_to, telegram_update, wait_for  # noqa: F401
from tests.integration.test_scaling import start_worker


async def test_redelivery_after_a_worker_restart_is_answered_once(
    services, fake_llm, redis_url, mongo_db, platforms, tmp_path  # noqa: F811
):
    app = new_application(mongo_db, platforms)
    app_id = f"parley-restart-{uuid.uuid4().hex[:6]}"
    chat_id = random.randint(10**8, 10**9)
    update = telegram_update(chat_id, 501, "answer me once")
    headers = {"X-Telegram-Bot-Api-Secret-Token": app["channels"]["telegram"]["secret_token"]}

    first = start_worker(services, fake_llm, redis_url, tmp_path / "first", app_id).start()
    try:
        for _ in range(4):
            status, _ = await post(f"{first.http}/v1/webhooks/telegram/{app['_id']}", update, headers)
            assert status == 200
        await wait_for(platforms, send_message_to(chat_id))
    finally:
        assert first.stop() == 0
    # A new worker process with an empty local store: its state comes from the changelog.
    second = start_worker(services, fake_llm, redis_url, tmp_path / "second", app_id).start()
    try:
        status, _ = await post(f"{second.http}/v1/webhooks/telegram/{app['_id']}", update, headers)
        assert status == 200
        follow_up = telegram_update(chat_id, 502, "and this one")
        status, _ = await post(f"{second.http}/v1/webhooks/telegram/{app['_id']}", follow_up, headers)
        assert status == 200
        await wait_for(platforms, lambda r: send_message_to(chat_id)(r) and r["body"]["text"] == "You said: and this one")
        await asyncio.sleep(1.5)
    finally:
        second.stop()
    texts = [s["body"]["text"] for s in platforms.matching(send_message_to(chat_id))]
    assert texts == ["You said: answer me once", "You said: and this one"]
