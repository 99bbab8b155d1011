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

__all__ = ["CHANNELS", "PLATFORM_PREFIXES", "channel_for", "platform_of"]

CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (GenericChannel(), TelegramChannel(), WhatsAppChannel(), SlackChannel())
}


def channel_for(name: str) -> Channel | None:
    return CHANNELS.get(name)


#: Conversations of these channels belong to a messaging platform (``telegram:<chat id>``...): no
#: other door (the websocket, the generic webhook) may read or write them.
PLATFORM_PREFIXES = tuple(f"{name}:" for name in CHANNELS if name != "generic")


def platform_of(conversation_id: str) -> str | None:
    """The messaging platform a conversation id belongs to (``telegram:42`` -> ``telegram``), or
    None for a conversation of the websocket or the generic webhook."""
    if conversation_id.startswith(PLATFORM_PREFIXES):
        return conversation_id.split(":", 1)[0]
    return None
