"""Attachments in the conversation: kept on the user message in the history and the archive,
shown to the model as OpenAI content parts (images) or as text (other files)."""

from __future__ import annotations

from typing import Any

from parley.attachments import file_ref
from parley.config.models import ChatbotConfig
from parley.records import IncomingEvent
from parley.streams.archive import documents_for_incoming
from parley.streams.codec import decode, encode
from parley.streams.conversation import ConversationState, build_prompt, with_attachments
from parley.streams.turns import TurnHandler
from parley.tools import default_registry
from parley.web.ingress import user_event
from tests.unit.test_turns import ScriptedModel

IMAGE = {"file_id": "demo/2026/03/" + "a1" * 16 + ".png", "content_type": "image/png", "size": 2048, "name": "cat.png"}
PDF = {"file_id": "demo/2026/03/" + "b2" * 16 + ".pdf", "content_type": "application/pdf", "size": 3 * 1024 * 1024, "name": "report.pdf"}
TEXT = {"file_id": "demo/2026/03/" + "c3" * 16 + ".txt", "content_type": "text/plain", "size": 12, "name": ""}


def event(*attachments: dict[str, Any], text: str = "look at this") -> IncomingEvent:
    return user_event(
        application_id="demo", conversation_id="c1", channel="websocket", client_message_id="m1",
        text=text, attachments=list(attachments),
    )


def test_images_become_content_parts_and_other_files_text() -> None:
    assert with_attachments("look", [IMAGE, PDF, TEXT]) == [
        {
            "type": "text",
            "text": "look\n[attached file: report.pdf (application/pdf, 3.0 MiB)]\n"
            f"[attached file: {TEXT['file_id']} (text/plain, 12 bytes)]",
        },
        {"type": "image_url", "image_url": {"url": file_ref(IMAGE["file_id"])}},
    ]
    assert with_attachments("look", [PDF]) == "look\n[attached file: report.pdf (application/pdf, 3.0 MiB)]"
    assert with_attachments("", [IMAGE]) == [{"type": "image_url", "image_url": {"url": file_ref(IMAGE["file_id"])}}]


def test_build_prompt_shows_attachments_of_user_messages_only() -> None:
    history = [
        {"id": "u1", "role": "user", "content": "plain", "channel": "websocket"},
        {"id": "a1", "role": "assistant", "content": "ok", "attachments": [IMAGE]},
        {"id": "u2", "role": "user", "content": "with a file", "channel": "websocket", "attachments": [IMAGE]},
    ]
    prompt = build_prompt("Be brief.", history, 10)
    assert prompt[1] == {"role": "user", "content": "plain"}
    assert prompt[2] == {"role": "assistant", "content": "ok"}
    assert prompt[3] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "with a file"},
            {"type": "image_url", "image_url": {"url": file_ref(IMAGE["file_id"])}},
        ],
    }


def test_attachments_survive_the_wire_and_default_to_none() -> None:
    assert decode(encode(event(IMAGE, PDF)), IncomingEvent).attachments == [IMAGE, PDF]
    old = IncomingEvent(event_id="e", conversation_id="c", application_id="a", created_at=1.0, text="hi")
    assert decode(encode(old), IncomingEvent).attachments == []


async def test_the_model_sees_the_image_and_the_history_keeps_the_reference() -> None:
    model = ScriptedModel("a cat", "still a cat")

    async def publish(*_: Any) -> None:
        return None

    handler = TurnHandler(model, default_registry(), publish, clock=lambda: 1.0)
    state = ConversationState()
    config = ChatbotConfig(system_prompt="Be brief.")
    await handler.handle(event(IMAGE), state, config)
    assert state.history[0]["attachments"] == [IMAGE]
    prompt, _ = model.calls[0]
    assert prompt[-1]["content"][1] == {"type": "image_url", "image_url": {"url": file_ref(IMAGE["file_id"])}}

    followup = user_event(application_id="demo", conversation_id="c1", channel="websocket", client_message_id="m2", text="and now?")
    await handler.handle(followup, state, config)
    prompt, _ = model.calls[1]
    assert [m["content"] for m in prompt[1:]] == [
        [{"type": "text", "text": "look at this"}, {"type": "image_url", "image_url": {"url": file_ref(IMAGE["file_id"])}}],
        "a cat",
        "and now?",
    ]
    assert "attachments" not in state.history[-2], "a message without attachments stays as it was"


def test_the_archive_keeps_the_references() -> None:
    [doc] = documents_for_incoming(event(IMAGE, TEXT))
    assert doc["attachments"] == [IMAGE, TEXT]
    [plain] = documents_for_incoming(event())
    assert "attachments" not in plain
