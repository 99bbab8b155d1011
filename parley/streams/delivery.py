"""Delivering a final reply to where its conversation lives: the websocket (over the bus) or a
platform (through its channel). Called by the persister after the reply is archived."""

from __future__ import annotations

import logging
from typing import Any

from parley.channels.generic import post_callback, reply_payload
from parley.records import ReplyEvent
from parley.settings import Settings

__all__ = ["deliver", "websocket_frame"]

logger = logging.getLogger(__name__)


def websocket_frame(reply: ReplyEvent) -> dict[str, Any]:
    return {
        "type": "message",
        "message_id": reply.event_id,
        "role": reply.role,
        "text": reply.text,
        "in_reply_to": reply.in_reply_to,
        "created_at": reply.created_at,
    }


async def deliver(reply: ReplyEvent, runtime: Any, settings: Settings) -> None:
    """Send ``reply`` to its client or platform; raise when the platform refuses it (the caller
    retries and finally dead-letters)."""
    if reply.replay_id and not reply.deliver:
        logger.info("replay %s: reply %s archived, not delivered", reply.replay_id, reply.event_id)
        return
    if reply.channel == "websocket":
        await runtime.publish(reply.application_id, reply.conversation_id, websocket_frame(reply))
        return
    config = await runtime.configs.application(reply.application_id)
    if config is None or not config.callback_url:
        logger.warning(
            "no callback URL for application %s: reply %s archived only",
            reply.application_id, reply.event_id,
        )
        return
    await post_callback(
        runtime.http, config.callback_url, reply_payload(reply),
        timeout_s=settings.delivery_timeout_s, max_attempts=settings.delivery_max_attempts,
    )
