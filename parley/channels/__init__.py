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

__all__ = ["CHANNELS", "channel_for"]

CHANNELS: dict[str, Channel] = {
    channel.name: channel
    for channel in (GenericChannel(), TelegramChannel(), WhatsAppChannel(), SlackChannel())
}


def channel_for(name: str) -> Channel | None:
    return CHANNELS.get(name)
