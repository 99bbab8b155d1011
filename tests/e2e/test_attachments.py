"""Attachments end to end: upload to a real worker (local file store), reference the files from
a user message, and check the model is shown the image through a link that serves its bytes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp

from tests.e2e.test_pipeline import archived
from tests.support.wsclient import ChatClient

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + uuid.uuid4().bytes * 8
NOTES = b"shopping: milk, eggs\n"


async def upload(http: aiohttp.ClientSession, base: str, data: bytes, content_type: str, filename: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    async with http.post(f"{base}/v1/applications/demo/uploads", data=form) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def fetch(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url) as response:
        assert response.status == 200, url
        return await response.read()


async def model_request_with(fake_llm: Any, text: str, timeout_s: float = 20.0) -> dict[str, Any]:
    """The first request to the model whose last message is the user message ``text`` with parts."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for request in list(fake_llm.requests):
            content = request["messages"][-1].get("content")
            if isinstance(content, list) and any(text in p.get("text", "") for p in content):
                return request
        await asyncio.sleep(0.05)
    raise AssertionError(f"no model request carried {text!r}")


async def test_an_uploaded_image_reaches_the_model_through_a_link_that_serves_it(worker, services, fake_llm, mongo_db):
    async with aiohttp.ClientSession() as http:
        image = await upload(http, worker.http, PNG, "image/png", "cat.png")
        notes = await upload(http, worker.http, NOTES, "text/plain", "notes.txt")
        assert await fetch(http, image["url"]) == PNG

        # The client sends the uploads' file ids with its message over the websocket.
        question = f"what is in this picture? {uuid.uuid4().hex[:6]}"
        attachments = [
            {k: upload_[k] for k in ("file_id", "content_type", "size", "name")} for upload_ in (image, notes)
        ]
        client = await ChatClient.connect(worker.ws)
        conversation_id = client.conversation_id
        try:
            await client.send({"type": "message", "id": "m-1", "text": question,
                               "attachments": [{"file_id": image["file_id"]}, {"file_id": notes["file_id"]}]})
            ack = await client.recv()
            assert ack["type"] == "ack", ack
        finally:
            await client.close()

        request = await model_request_with(fake_llm, question)
        text_part, image_part = request["messages"][-1]["content"]
        assert text_part == {
            "type": "text",
            "text": f"{question}\n[attached file: notes.txt (text/plain, {len(NOTES)} bytes)]",
        }
        assert image_part["type"] == "image_url"
        link = image_part["image_url"]["url"]
        assert link.startswith(f"{worker.http}/v1/files/{image['file_id']}?expires="), link
        assert await fetch(http, link) == PNG

    docs = await asyncio.to_thread(archived, mongo_db, conversation_id, 2)
    user, reply = docs[0], docs[-1]
    assert user["role"] == "user" and user["attachments"] == attachments
    assert reply["role"] == "assistant" and reply["text"].startswith("You said: ")


async def test_a_message_of_files_alone_is_answered(worker, fake_llm):
    async with aiohttp.ClientSession() as http:
        image = await upload(http, worker.http, PNG, "image/png", f"alone-{uuid.uuid4().hex[:6]}.png")
    client = await ChatClient.connect(worker.ws)
    try:
        await client.send({"type": "message", "id": "m-1", "attachments": [{"file_id": image["file_id"]}]})
        assert (await client.recv())["type"] == "ack"
        frames = [await client.recv()]
        while frames[-1]["type"] != "message":
            frames.append(await client.recv())
    finally:
        await client.close()
    sent = [r for r in list(fake_llm.requests) if image["file_id"] in json.dumps(r["messages"][-1])]
    assert sent and sent[-1]["messages"][-1]["content"][0]["type"] == "image_url"  # no text part, just the image
    # without files, an empty text is still refused
    client = await ChatClient.connect(worker.ws)
    try:
        await client.send({"type": "message", "id": "m-2", "text": " "})
        error = await client.recv()
        assert (error["type"], error["code"]) == ("error", "invalid_field")
    finally:
        await client.close()
