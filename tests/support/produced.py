"""An ingress ``produce`` function for web tests: records the user events the web layer would put
on ``incoming``, checking each is keyed by its conversation key."""

from __future__ import annotations

from parley.records import IncomingEvent, conversation_key
from parley.streams.codec import decode


class Produced:
    def __init__(self) -> None:
        self.events: list[IncomingEvent] = []

    async def __call__(self, key: str, value: bytes) -> None:
        event = decode(value, IncomingEvent)
        assert key == conversation_key(event.application_id, event.conversation_id), key
        self.events.append(event)
