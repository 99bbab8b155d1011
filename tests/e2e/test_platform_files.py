"""Files users send on Telegram, WhatsApp and Slack reach the model: the worker fetches each one
through the platform's API (fake platforms here), stores it, and the model sees an image through
a link serving its bytes, or a note naming the file; a file that cannot be fetched or is not what
it claims is named with the reason, and the message is still answered."""

from __future__ import annotations

import json
import random
import time
import uuid
from typing import Any

import aiohttp

from tests.e2e.test_attachments import PNG, fetch, model_request_with
from tests.e2e.test_channels import (  # noqa: F401 - platforms is a fixture
    SLACK_TOKEN,
    TELEGRAM_TOKEN,
    WHATSAPP_TOKEN,
    hmac_hex,
    new_application,
    platforms,
    post,
    send_message_to,
    slack_event,
    slack_headers,
    wait_for,
    whatsapp_message,
)

PDF = b"%PDF-1.4\n" + uuid.uuid4().bytes * 4 + b"\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + uuid.uuid4().bytes * 8  # Telegram photos are JPEG


def telegram_photo(chat_id: int, message_id: int, file_id: str, caption: str | None) -> bytes:
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
        "chat": {"id": chat_id, "type": "private"},
        "date": int(time.time()),
        "photo": [
            {"file_id": f"{file_id}-small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 100},
            {"file_id": file_id, "file_unique_id": "l", "width": 800, "height": 800, "file_size": len(JPEG)},
        ],
    }
    if caption is not None:
        message["caption"] = caption
    return json.dumps({"update_id": random.randint(1, 10**9), "message": message}).encode()


def model_request_for(fake_llm: Any, marker: str) -> dict[str, Any]:
    for request in reversed(list(fake_llm.requests)):
        if marker in json.dumps(request["messages"][-1]):
            return request
    raise AssertionError(f"no model request mentions {marker!r}")


async def test_a_telegram_photo_reaches_the_model_as_an_image(worker, mongo_db, platforms, fake_llm) -> None:  # noqa: F811
    app = new_application(mongo_db, platforms)
    chat_id, file_id = random.randint(10**8, 10**9), f"AgAC{uuid.uuid4().hex}"
    platforms.files[file_id] = (JPEG, "application/octet-stream")  # as Telegram's file server says
    caption = f"what is this? {uuid.uuid4().hex[:6]}"
    headers = {"X-Telegram-Bot-Api-Secret-Token": app["channels"]["telegram"]["secret_token"]}
    status, body = await post(
        f"{worker.http}/v1/webhooks/telegram/{app['_id']}", telegram_photo(chat_id, 31, file_id, caption), headers
    )
    assert status == 200 and len(body["event_ids"]) == 1

    request = await model_request_with(fake_llm, caption)
    parts = request["messages"][-1]["content"]
    images = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
    assert len(images) == 1 and TELEGRAM_TOKEN not in images[0]  # the model never sees the bot token
    async with aiohttp.ClientSession() as http:
        assert await fetch(http, images[0]) == JPEG
    await wait_for(platforms, send_message_to(chat_id))
    downloads = platforms.matching(lambda r: r["method"] == "GET" and "/file/bot" in r["path"])
    assert [r["path"] for r in downloads if file_id in r["path"]] == [f"/file/bot{TELEGRAM_TOKEN}/files/{file_id}"]
    assert not [r for r in downloads if f"{file_id}-small" in r["path"]]  # the largest size only

    # a photo without a caption is taken too (before, Telegram photos without text were dropped)
    bare_id = f"AgAC{uuid.uuid4().hex}"
    platforms.files[bare_id] = (PNG, "image/jpeg")  # the bytes are not what Telegram photos are
    status, body = await post(
        f"{worker.http}/v1/webhooks/telegram/{app['_id']}", telegram_photo(chat_id, 32, bare_id, None), headers
    )
    assert status == 200 and len(body["event_ids"]) == 1
    # declared JPEG by the platform, but the bytes are a PNG: refused, and said so to the model
    await wait_for(platforms, lambda r: send_message_to(chat_id)(r) and "could not be read" in r["body"]["text"])


async def test_a_whatsapp_document_and_a_file_that_cannot_be_fetched(worker, mongo_db, platforms, fake_llm) -> None:  # noqa: F811
    app = new_application(mongo_db, platforms)
    config = app["channels"]["whatsapp"]
    url = f"{worker.http}/v1/webhooks/whatsapp/{app['_id']}"
    number = str(random.randint(10**10, 10**11))
    media_id = str(random.randint(10**14, 10**15))
    platforms.files[media_id] = (PDF, "application/pdf")

    def document(wamid: str, media: str, caption: str) -> bytes:
        data = json.loads(whatsapp_message(number, wamid, ""))
        message = data["entry"][0]["changes"][0]["value"]["messages"][0]
        message.pop("text")
        message.update(type="document", document={
            "id": media, "mime_type": "application/pdf", "filename": "report.pdf", "caption": caption,
        })
        return json.dumps(data).encode()

    caption = f"summarise {uuid.uuid4().hex[:6]}"
    data = document(f"wamid.{uuid.uuid4().hex}", media_id, caption)
    status, _ = await post(url, data, {"X-Hub-Signature-256": "sha256=" + hmac_hex(config["app_secret"], data)})
    assert status == 200
    await wait_for(platforms, lambda r: (r["body"] or {}).get("to") == number)
    content = model_request_for(fake_llm, caption)["messages"][-1]["content"]
    assert f"[attached file: report.pdf (application/pdf, {len(PDF)} bytes)]" in content
    lookups = platforms.matching(lambda r: r["method"] == "GET" and media_id in r["path"])
    assert lookups and all(r["headers"]["Authorization"] == f"Bearer {WHATSAPP_TOKEN}" for r in lookups)

    # media that WhatsApp no longer has: the model is told, the user still gets an answer
    gone = f"gone {uuid.uuid4().hex[:6]}"
    data = document(f"wamid.{uuid.uuid4().hex}", "999999", gone)
    status, _ = await post(url, data, {"X-Hub-Signature-256": "sha256=" + hmac_hex(config["app_secret"], data)})
    assert status == 200
    await wait_for(platforms, lambda r: r["platform"] == "whatsapp" and (r["body"] or {}).get("to") == number
                   and gone in r["body"]["text"]["body"])
    content = model_request_for(fake_llm, gone)["messages"][-1]["content"]
    assert "[attached file: report.pdf (application/pdf, 0 bytes) could not be read: whatsapp media lookup refused" in content

    # a type Parley does not take is refused by what WhatsApp says of it: never downloaded
    video_id = str(random.randint(10**14, 10**15))
    platforms.files[video_id] = (b"\x00\x00\x00\x18ftypmp42", "video/mp4")
    clip = f"clip {uuid.uuid4().hex[:6]}"
    data = json.loads(document(f"wamid.{uuid.uuid4().hex}", video_id, clip))
    message = data["entry"][0]["changes"][0]["value"]["messages"][0]
    message.pop("document")
    message.update(type="video", video={"id": video_id, "mime_type": "video/mp4", "caption": clip})
    data = json.dumps(data).encode()
    status, _ = await post(url, data, {"X-Hub-Signature-256": "sha256=" + hmac_hex(config["app_secret"], data)})
    assert status == 200
    await wait_for(platforms, lambda r: r["platform"] == "whatsapp" and (r["body"] or {}).get("to") == number
                   and clip in r["body"]["text"]["body"])
    content = model_request_for(fake_llm, clip)["messages"][-1]["content"]
    assert "could not be read: files of type 'video/mp4' are not accepted" in content
    assert not platforms.matching(lambda r: r["method"] == "GET" and video_id in r["path"])


async def test_a_slack_file_share_reaches_the_model(worker, mongo_db, platforms, fake_llm) -> None:  # noqa: F811
    app = new_application(mongo_db, platforms)
    secret = app["channels"]["slack"]["signing_secret"]
    channel = f"C{uuid.uuid4().hex[:10].upper()}"
    file_id = f"F{uuid.uuid4().hex[:10].upper()}"
    platforms.files[file_id] = (PNG, "image/png")
    text = f"look {uuid.uuid4().hex[:6]}"
    data = slack_event({
        "type": "message", "subtype": "file_share", "channel": channel, "user": "U123ABC456", "text": text,
        "ts": f"{int(time.time())}.000400",
        "files": [
            {"id": file_id, "name": "chart.png", "mimetype": "image/png", "size": len(PNG),
             "url_private_download": platforms.slack_file_url(file_id)},
            # a file somewhere else than Slack's file host: never fetched with the bot token
            {"id": "F0EVIL", "name": "x.png", "mimetype": "image/png", "url_private": "https://evil.example/x.png"},
        ],
    })
    status, _ = await post(f"{worker.http}/v1/webhooks/slack/{app['_id']}", data, slack_headers(secret, data))
    assert status == 200
    request = await model_request_with(fake_llm, text)
    parts = request["messages"][-1]["content"]
    assert len([p for p in parts if p["type"] == "image_url"]) == 1
    assert "x.png (image/png, 0 bytes) could not be read: the slack file's url is not on files.slack.com" in parts[0]["text"]
    downloads = platforms.matching(lambda r: r["method"] == "GET" and r["path"] == f"/files/{file_id}")
    assert downloads and downloads[0]["headers"]["Authorization"] == f"Bearer {SLACK_TOKEN}"
    await wait_for(platforms, lambda r: (r["body"] or {}).get("channel") == channel)
