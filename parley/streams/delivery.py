"""Delivering a final reply to where its conversation lives: the websocket (over the bus) or a
platform (through its channel's send API). Called by the persister after the reply is archived.

A platform reply is addressed by its conversation id alone (``telegram:<chat id>``,
``whatsapp:<number>``, ``slack:<channel>[:<thread_ts>]``, or the generic application's
``callback_url``); the credentials come from the application document, read on each delivery
(channel credentials are never cached).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from parley.channels import channel_for
from parley.channels.base import ChannelNotConfigured, DeliveryRefused, SendPolicy
from parley.frames import answer_html, message_frame
from parley.ports import ApplicationDocuments, DeliveryLedger
from parley.records import ReplyEvent
from parley.retry import retry_while, store_outage
from parley.settings import Settings

if TYPE_CHECKING:
    from aiohttp import ClientSession

__all__ = ["DeliveryPorts", "deliver", "send_policy", "websocket_frame"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


def websocket_frame(reply: ReplyEvent) -> dict[str, Any]:
    extra = {"operator": {"name": reply.operator_name}} if reply.operator_id else {}
    frame = message_frame(
        message_id=reply.event_id, role=reply.role, text=reply.text, in_reply_to=reply.in_reply_to,
        created_at=reply.created_at, html=answer_html(reply.text, reply.html), stopped=reply.stopped, **extra,
    )
    if reply.tools:
        frame["tools"] = list(reply.tools)
    return frame


def send_policy(settings: Settings) -> SendPolicy:
    return SendPolicy(timeout_s=settings.delivery_timeout_s, max_attempts=settings.delivery_max_attempts)


#: (application_id, conversation_id, frame) -> published on the conversation's bus channel
Publish = Callable[[str, str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class DeliveryPorts:
    """What a delivery reaches: the bus, the applications' credentials, the ledger of what the
    platforms took, and the HTTP client the channels send with."""

    publish: Publish
    applications: ApplicationDocuments
    ledger: DeliveryLedger
    http: ClientSession


async def deliver(reply: ReplyEvent, ports: DeliveryPorts, settings: Settings, *, maybe_delivered: bool = True) -> None:
    """Send ``reply`` to its client or platform; raise ``DeliveryError`` when the platform does
    not take it (``DeliveryRefused``: a 4xx, retrying will not help) so the caller dead-letters it.
    ``maybe_delivered=False`` (this reply was archived just now, for the first time) skips the
    check for an earlier delivery: replies are delivered only after they are archived."""
    if reply.replay_id and not reply.deliver:
        logger.info("replay %s: reply %s archived, not delivered", reply.replay_id, reply.event_id)
        return
    if reply.channel == "websocket":
        await ports.publish(reply.application_id, reply.conversation_id, websocket_frame(reply))
        return
    # A reply already taken by the platform is not sent again (a redelivered `outgoing` event
    # after a worker restart). The window between the platform's answer and the mark remains.
    if maybe_delivered and await _through_outage(lambda: ports.ledger.was_delivered(reply.event_id), settings):
        logger.info("reply %s was already delivered to %s", reply.event_id, reply.channel)
        return
    channel = channel_for(reply.channel)
    if channel is None:
        raise DeliveryRefused(f"reply {reply.event_id} is for an unknown channel {reply.channel!r}")
    application = await ports.applications.application_document(reply.application_id)
    if application is None:
        logger.warning(
            "application %s no longer exists: reply %s archived only", reply.application_id, reply.event_id
        )
        return
    unsent = channel.unsent_reason(application)
    if unsent is not None:
        # nothing was sent, so no mark: the console does not call it delivered
        logger.warning("%s: reply %s archived only", unsent, reply.event_id)
        return
    try:
        await channel.send(ports.http, application, reply, send_policy(settings))
    except ChannelNotConfigured as exc:
        raise DeliveryRefused(f"cannot deliver reply {reply.event_id}: {exc}") from exc
    delivered_at = time.time()
    # the platform has the reply: waiting out an outage here beats sending it again on a retry
    await _through_outage(lambda: ports.ledger.mark_delivered(reply.event_id, delivered_at), settings)


async def _through_outage(call: Callable[[], Awaitable[T]], settings: Settings) -> T:
    return await retry_while(call, store_outage, budget_s=settings.archive_retry_budget_s)
