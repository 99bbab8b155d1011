"""FileLinkingModel: attached images referenced as ``parley-file:<id>`` in a prompt reach the
model as fresh links (or data URLs), right before each call."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest

from parley.attachments import UNAVAILABLE_IMAGE, file_ref
from parley.llm.attachments import FileLinkingModel
from parley.storage.files import LocalFileStore

PNG = b"\x89PNG\r\n\x1a\n" + b"pixels"
IMAGE = "demo/2026/02/" + "12" * 16 + ".png"
MISSING = "demo/2026/02/" + "34" * 16 + ".png"


class RecordingModel:
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.closed = False

    async def complete(self, messages: list[dict[str, Any]], tools: list[Any], on_delta: Any, **options: Any) -> str:
        self.calls.append(messages)
        return f"answered with {options}"

    async def close(self) -> None:
        self.closed = True


def prompt(*file_ids: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "no files here"},
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                *({"type": "image_url", "image_url": {"url": file_ref(f)}} for f in file_ids),
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        },
    ]


@pytest.fixture
async def store(tmp_path: Path) -> LocalFileStore:
    store = LocalFileStore(tmp_path, "http://127.0.0.1:9")
    await store.start()
    await store.put(IMAGE, PNG, "image/png")
    return store


async def test_references_become_fresh_links_and_nothing_else_changes(store: LocalFileStore) -> None:
    inner = RecordingModel()
    model = FileLinkingModel(inner, store, expires_s=300)
    messages = prompt(IMAGE)
    original = copy.deepcopy(messages)
    assert await model.complete(messages, [], None, chatbot="bot") == "answered with {'chatbot': 'bot'}"
    assert messages == original, "the caller's prompt is not changed"
    [sent] = inner.calls
    assert sent[:3] == original[:3]
    text, image, external = sent[3]["content"]
    assert text == {"type": "text", "text": "what is this?"}
    assert external == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    url = image["image_url"]["url"]
    assert url.startswith(f"http://127.0.0.1:9/v1/files/{IMAGE}?expires=")
    store.verify_link(IMAGE, *[part.split("=", 1)[1] for part in url.split("?", 1)[1].split("&")])


async def test_inline_images_are_data_urls(store: LocalFileStore) -> None:
    inner = RecordingModel()
    await FileLinkingModel(inner, store, expires_s=300, inline=True).complete(prompt(IMAGE), [], None)
    url = inner.calls[0][3]["content"][1]["image_url"]["url"]
    assert url == "data:image/png;base64," + base64.b64encode(PNG).decode()


async def test_an_image_that_cannot_be_linked_is_said_to_be_missing(store: LocalFileStore) -> None:
    inner = RecordingModel()
    await FileLinkingModel(inner, store, expires_s=300, inline=True).complete(prompt(MISSING, IMAGE), [], None)
    parts = inner.calls[0][3]["content"]
    assert parts[1] == {"type": "text", "text": UNAVAILABLE_IMAGE}
    assert parts[2]["image_url"]["url"].startswith("data:image/png;base64,")


async def test_a_prompt_without_references_is_passed_as_is(store: LocalFileStore) -> None:
    inner = RecordingModel()
    model = FileLinkingModel(inner, store, expires_s=300)
    messages = prompt()
    await model.complete(messages, [], None)
    assert inner.calls[0] is messages
    assert model.name == "recording"
    await model.close()
    assert inner.closed
