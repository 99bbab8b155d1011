"""Where a platform file of an event is stored: one key per event and position, a valid file key."""

from __future__ import annotations

from parley.records import IncomingEvent
from parley.storage.files import KEY_PATTERN
from parley.streams.platform_files import has_platform_files, stored_key


def event(event_id: str = "e1", **fields) -> IncomingEvent:
    return IncomingEvent(event_id=event_id, conversation_id="telegram:1", application_id="shop",
                         created_at=1_764_000_000.0, **fields)


def test_a_redelivered_event_stores_its_files_under_the_same_keys() -> None:
    first, again = stored_key(event(), 0, ".jpg"), stored_key(event(), 0, ".jpg")
    assert first == again and KEY_PATTERN.match(first)["application_id"] == "shop"
    assert first.startswith("shop/2025/11/") and first.endswith(".jpg")
    assert stored_key(event(), 1, ".jpg") != first  # another file of the message
    assert stored_key(event("e2"), 0, ".jpg") != first  # another message


def test_only_platform_references_need_fetching() -> None:
    assert not has_platform_files(event(attachments=[{"file_id": "shop/2025/11/" + "a" * 32}]))
    assert has_platform_files(event(attachments=[{"platform": "telegram", "ref": {"file_id": "x"}}]))
