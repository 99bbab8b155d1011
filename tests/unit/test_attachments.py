"""The three kinds of attachment: each wire form round-trips unchanged, dicts written by earlier
builds (events on the log, archived documents) parse, anything else is an unreadable file, and
each kind is shown to the model as before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from parley.attachments import (
    MAX_ERROR_CHARS,
    UNKNOWN_SHAPE,
    PlatformFile,
    StoredFile,
    UnreadableFile,
    file_ref,
    parse,
    parse_all,
    prompt_content,
    referenced_file_id,
    to_wire,
)

FILE_ID = "demo/2026/03/" + "a1" * 16 + ".png"

#: Exactly as earlier builds wrote them (web.uploads, web.webhooks, streams.platform_files),
#: after a JSON round trip through Kafka or MongoDB.
STORED = {"file_id": FILE_ID, "content_type": "image/png", "size": 2048, "name": "cat.png"}
TELEGRAM = {
    "platform": "telegram",
    "ref": {"type": "image", "file_id": "AgACAgQAAxkBAAI", "mime_type": "image/jpeg", "size": 900},
    "content_type": "image/jpeg",
    "size": 900,
    "name": "image",
}
SLACK = {
    "platform": "slack",
    "ref": {"type": "file", "file_id": "F0ABC", "file_name": "chart.png", "mime_type": "image/png",
            "size": 31, "url": "https://files.slack.com/files-pri/T1-F0ABC/download/chart.png"},
    "content_type": "image/png",
    "size": 31,
    "name": "chart.png",
}
UNREADABLE = {"name": "report.pdf", "content_type": "application/pdf", "size": 0,
              "error": "whatsapp media lookup refused (404)"}


@pytest.mark.parametrize(
    ("wire", "kind"),
    [(STORED, StoredFile), (TELEGRAM, PlatformFile), (SLACK, PlatformFile), (UNREADABLE, UnreadableFile)],
)
def test_each_wire_form_parses_to_its_kind_and_back_unchanged(wire: dict[str, Any], kind: type) -> None:
    archived = json.loads(json.dumps(wire))
    attachment = parse(archived)
    assert type(attachment) is kind
    assert attachment.to_wire() == wire
    assert list(attachment.to_wire()) == list(wire), "the keys keep their order"
    assert json.loads(json.dumps(attachment.to_wire())) == wire
    assert parse(attachment.to_wire()) == attachment


def test_a_pre_existing_event_and_archived_document_parse() -> None:
    # an IncomingEvent's attachments and a `messages` document as earlier builds stored them
    event = json.loads(
        '{"attachments": [{"file_id": "demo/2026/01/' + "0" * 32 + '.txt", "content_type": "text/plain",'
        ' "size": 12, "name": ""}, {"platform": "whatsapp", "ref": {"type": "document", "media_id": "1234",'
        ' "mime_type": "application/pdf", "file_name": "report.pdf"}, "content_type": "application/pdf",'
        ' "size": 0, "name": "report.pdf"}]}'
    )
    stored, platform = parse_all(event["attachments"])
    assert stored == StoredFile(file_id="demo/2026/01/" + "0" * 32 + ".txt", content_type="text/plain", size=12, name="")
    assert isinstance(platform, PlatformFile) and platform.platform == "whatsapp"
    assert platform.ref["media_id"] == "1234" and platform.name == "report.pdf"
    assert to_wire(parse_all(event["attachments"])) == event["attachments"]


def test_a_stored_file_with_fields_missing_still_parses() -> None:
    # the smallest reference a test or an old tool could have put on the log
    assert parse({"file_id": FILE_ID}) == StoredFile(file_id=FILE_ID, content_type="", size=0, name="")


@pytest.mark.parametrize(
    "wire",
    [None, "a string", 3, [STORED], {}, {"file_id": ""}, {"file_id": 7, "name": "x"}, {"url": "https://x"}],
)
def test_anything_of_no_known_shape_is_an_unreadable_file(wire: Any) -> None:
    attachment = parse(wire)
    assert isinstance(attachment, UnreadableFile) and attachment.error == UNKNOWN_SHAPE
    assert "could not be read: " + UNKNOWN_SHAPE in attachment.prompt_note()


def test_platform_file_from_a_channels_parse() -> None:
    item = {"type": "document", "file_id": "BQAC", "mime_type": "application/pdf", "file_name": "a" * 300,
            "size": True}
    platform = PlatformFile.from_inbound("telegram", item)
    assert platform.to_wire() == {
        "platform": "telegram", "ref": item, "content_type": "application/pdf", "size": 0, "name": "a" * 200,
    }
    assert PlatformFile.from_inbound("slack", {"type": "file"}).name == "file"
    assert PlatformFile.from_inbound("slack", {}).name == "file"
    assert PlatformFile.from_inbound("slack", {"size": -1}).size == 0


def test_a_platform_file_not_taken_keeps_what_it_said_of_itself() -> None:
    platform = parse(TELEGRAM)
    assert isinstance(platform, PlatformFile)
    unreadable = platform.unreadable("x" * 400)
    assert unreadable.to_wire() == {"name": "image", "content_type": "image/jpeg", "size": 900,
                                    "error": "x" * MAX_ERROR_CHARS}


def test_what_a_client_is_shown_of_each_kind() -> None:
    # never the platform's reference nor the store's key
    assert [a.described() for a in parse_all([STORED, TELEGRAM, UNREADABLE])] == [
        {"name": "cat.png", "content_type": "image/png", "size": 2048},
        {"name": "image", "content_type": "image/jpeg", "size": 900},
        {"name": "report.pdf", "content_type": "application/pdf", "size": 0},
    ]


def test_prompt_rendering_per_kind() -> None:
    image = parse(STORED)
    text = StoredFile(file_id="demo/2026/03/" + "c3" * 16 + ".txt", content_type="text/plain", size=12)
    pdf = StoredFile(file_id="demo/2026/03/" + "b2" * 16 + ".pdf", content_type="application/pdf",
                     size=3 * 1024 * 1024, name="report.pdf")
    # a stored image is a part of its own, referring to the file by parley-file:
    assert image.prompt_part() == {"type": "image_url", "image_url": {"url": "parley-file:" + FILE_ID}}
    # other stored files are lines of the text, named by their name or else their id
    assert pdf.prompt_part() is None
    assert pdf.prompt_note() == "[attached file: report.pdf (application/pdf, 3.0 MiB)]"
    assert text.prompt_note() == f"[attached file: {text.file_id} (text/plain, 12 bytes)]"
    assert StoredFile(file_id=FILE_ID, content_type="text/plain", size=2048).prompt_note().endswith("(text/plain, 2.0 KiB)]")
    # a platform file (not fetched yet) is a line, even when it is an image: it has no link
    assert parse(TELEGRAM).prompt_part() is None
    assert parse(TELEGRAM).prompt_note() == "[attached file: image (image/jpeg, 900 bytes)]"
    # an unreadable file says why
    assert parse(UNREADABLE).prompt_note() == (
        "[attached file: report.pdf (application/pdf, 0 bytes) could not be read: whatsapp media lookup refused (404)]"
    )
    assert prompt_content("look", [image, pdf, parse(UNREADABLE)]) == [
        {"type": "text", "text": "look\n[attached file: report.pdf (application/pdf, 3.0 MiB)]\n"
         "[attached file: report.pdf (application/pdf, 0 bytes) could not be read: whatsapp media lookup refused (404)]"},
        {"type": "image_url", "image_url": {"url": file_ref(FILE_ID)}},
    ]
    assert prompt_content("", [image]) == [{"type": "image_url", "image_url": {"url": file_ref(FILE_ID)}}]
    assert prompt_content("", [pdf]) == "[attached file: report.pdf (application/pdf, 3.0 MiB)]"
    assert prompt_content("just text", []) == "just text"


def test_how_a_stored_files_link_is_found_in_a_prompt() -> None:
    stored = parse(STORED)
    assert isinstance(stored, StoredFile)
    assert referenced_file_id(stored.ref) == FILE_ID
    assert referenced_file_id("https://example.com/cat.png") is None
    assert referenced_file_id(None) is None
