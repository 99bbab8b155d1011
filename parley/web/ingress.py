"""Ingress: puts validated user messages on ``incoming`` and waits for the broker's ack."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from parley.records import KIND_STOP, IncomingEvent
from parley.streams.codec import encode, message_id

__all__ = ["Ingress", "IngressUnavailable", "stop_event", "user_event"]

logger = logging.getLogger(__name__)

#: (key, value) -> awaits the broker's ack
Produce = Callable[[str, bytes], Awaitable[object]]


class IngressUnavailable(RuntimeError):
    """The broker did not ack in time; the client should retry (nothing was lost)."""


def user_event(
    *,
    application_id: str,
    conversation_id: str,
    channel: str,
    client_message_id: str,
    text: str,
    sender: str = "",
    signed_in: bool = False,
    attachments: list[dict[str, Any]] | None = None,
) -> IncomingEvent:
    """A user message whose ``event_id`` derives from the client's or platform's own id, so a
    redelivered message gets the same ``event_id`` and is answered once. ``attachments`` come
    from ``parley.web.uploads.resolve_attachments``."""
    return IncomingEvent(
        event_id=message_id(application_id, conversation_id, channel, client_message_id),
        conversation_id=conversation_id,
        application_id=application_id,
        created_at=time.time(),
        text=text,
        sender=sender,
        signed_in=signed_in,
        channel=channel,
        client_message_id=client_message_id,
        attachments=list(attachments or []),
    )


def stop_event(*, application_id: str, conversation_id: str, reply_id: str = "") -> IncomingEvent:
    """A request to stop the conversation's streaming answer (``reply_id``: only that reply's).
    Each stop is its own event: a repeated one finds nothing left to stop."""
    return IncomingEvent(
        event_id=message_id(application_id, conversation_id, "stop", uuid.uuid4().hex),
        conversation_id=conversation_id,
        application_id=application_id,
        created_at=time.time(),
        kind=KIND_STOP,
        channel="websocket",
        turn_id=reply_id,
    )


class Ingress:
    def __init__(self, produce: Produce, timeout_s: float) -> None:
        self._produce = produce
        self._timeout_s = timeout_s

    async def submit(self, event: IncomingEvent) -> None:
        try:
            await asyncio.wait_for(self._produce(event.key, encode(event)), self._timeout_s)
        except TimeoutError as exc:
            raise IngressUnavailable(f"the broker did not ack within {self._timeout_s:g}s") from exc
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any producer failure means "not accepted"
            logger.warning("ingress produce failed: %s", exc)
            raise IngressUnavailable(f"the broker did not accept the message: {exc}") from exc
