"""Messaging-platform channels: verify and parse inbound webhooks, send replies outbound.

``CHANNELS`` maps a channel name (the ``channel`` of events and replies, and the segment of
``/v1/webhooks/{channel}/{application_id}``) to its implementation.
"""

from __future__ import annotations

from parley.channels.base import Channel
from parley.channels.generic import GenericChannel
from parley.channels.slack import SlackChannel
from parley.channels.telegram import TelegramChannel
from parley.channels.whatsapp import WhatsAppChannel
from parley.validation import InputError

__all__ = ["CHANNELS", "channel_for", "refuse_other_platforms"]

CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (GenericChannel(), TelegramChannel(), WhatsAppChannel(), SlackChannel())
}


def channel_for(name: str) -> Channel | None:
    return CHANNELS.get(name)


#: Conversations of these channels belong to a messaging platform (``telegram:<chat id>``...): no
#: other door (the websocket, the generic webhook) may read or write them.
_PLATFORM_PREFIXES = tuple(f"{name}:" for name in CHANNELS if name != "generic")


def _platform_of(conversation_id: str) -> str | None:
    """The messaging platform a conversation id belongs to (``telegram:42`` -> ``telegram``), or
    None for a conversation of the websocket or the generic webhook."""
    if conversation_id.startswith(_PLATFORM_PREFIXES):
        return conversation_id.split(":", 1)[0]
    return None


def refuse_other_platforms(conversation_id: str, door: str) -> None:
    """403 ``forbidden_conversation`` when ``conversation_id`` belongs to a messaging platform
    other than ``door`` (a channel name, or ``websocket``): its text would enter that user's
    history, and the reply would go to whoever wrote it."""
    platform = _platform_of(conversation_id)
    if platform is not None and platform != door:
        raise InputError(
            "forbidden_conversation",
            f"conversation {conversation_id!r} belongs to {platform}; {door} conversations may not start with "
            + ", ".join(repr(p) for p in _PLATFORM_PREFIXES),
            status=403,
        )
