"""Webhooks of the messaging platforms: ``/v1/webhooks/{channel}/{application_id}``.

One handler serves every channel in ``parley.channels.CHANNELS`` (generic, telegram, whatsapp,
slack), in this order:

1. the body is read (413 over the limit);
2. the application document is loaded (404 when there is none, 503 when the store is down);
3. the channel verifies the request against the document's credentials (401 with a JSON body
   when the signature, secret or timestamp is wrong; 404 when the channel is not configured);
4. the channel parses the body (400 when malformed) into messages, receipts, or a direct answer
   (URL verification challenges);
5. every message becomes a user event whose ``client_message_id`` is the platform's message id,
   so a redelivery gets the same ``event_id`` and is answered once, and is produced to
   ``incoming`` (503 when the broker does not ack, so the platform retries).

The generic webhook answers ``202 {"event_id"}``; platforms get ``200 {"ok": true,
"event_ids": [...]}`` — also, quickly, for the events Parley ignores, so they do not retry them.
``GET /v1/webhooks/whatsapp/{application_id}`` answers WhatsApp's subscription challenge.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from parley.attachments import MAX_ATTACHMENTS, PlatformFile, to_wire
from parley.channels import CHANNELS, channel_for, refuse_other_platforms
from parley.channels.base import (
    Channel,
    ChannelAuthError,
    ChannelNotConfigured,
    DirectAnswer,
    InboundMessage,
    SendPolicy,
)
from parley.channels.whatsapp import WhatsAppChannel
from parley.retry import ThrottledLog
from parley.validation import InputError, require_id
from parley.web.ingress import IngressUnavailable, user_event
from parley.web.keys import DEPS, INGRESS, SETTINGS

__all__ = ["add_webhook_routes", "channel_webhook", "webhook_handler", "whatsapp_subscription", "TYPING_TASKS"]

logger = logging.getLogger(__name__)

#: seconds a platform is asked to wait before retrying a webhook Parley could not take
RETRY_AFTER_S = 5

#: typing indicators in flight (kept referenced, cancelled on shutdown)
TYPING_TASKS: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("typing_tasks")
#: one warning per interval for failures many requests share (a store outage)
FAILURES = web.AppKey("webhook_failures", ThrottledLog)


def add_webhook_routes(app: web.Application) -> None:
    app[TYPING_TASKS] = set()
    app[FAILURES] = ThrottledLog(logger)
    app.on_shutdown.append(_cancel_typing)
    for name, channel in CHANNELS.items():
        app.router.add_post(f"/v1/webhooks/{name}/{{application_id}}", webhook_handler(channel))
    app.router.add_get("/v1/webhooks/whatsapp/{application_id}", whatsapp_subscription)


def error_response(exc: InputError) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 503 else None
    return web.json_response(exc.body(), status=exc.status, headers=headers)


async def _application(request: web.Request, application_id: str) -> dict[str, Any]:
    try:
        async with asyncio.timeout(request.app[SETTINGS].store_edge_timeout_s):
            application = await request.app[DEPS].configs.application_document(application_id)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the store is down: the platform should retry
        request.app[FAILURES].warning("webhook: cannot load application %s: %s: %s", application_id, type(exc).__name__, exc)
        raise InputError("unavailable", "the document store did not answer; retry later", status=503) from exc
    if application is None:
        raise InputError("unknown_application", f"no application {application_id!r}", status=404)
    return dict(application)


async def _body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise InputError("too_large", f"body is larger than {limit} bytes", status=413)
    try:
        body = await request.content.read(limit + 1)
    except web.RequestPayloadError as exc:  # e.g. a Content-Encoding the body is not in
        raise InputError("invalid_json", "the body could not be read: " + " ".join(str(exc).split())) from exc
    if len(body) > limit:
        raise InputError("too_large", f"body is larger than {limit} bytes", status=413)
    return body


def _verify(channel: Channel, request: web.Request, body: bytes, application: dict[str, Any], application_id: str) -> None:
    try:
        channel.verify(request.headers, body, application)
    except ChannelNotConfigured as exc:
        raise InputError("channel_not_configured", str(exc), status=404) from exc
    except ChannelAuthError as exc:
        logger.warning(
            "webhook %s/%s refused: %s (%s)", channel.name, application_id, exc.code, request.remote
        )
        raise InputError(exc.code, exc.message, status=401) from exc


def platform_attachments(platform: str, attachments: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """A platform message's files as ``IncomingEvent.attachments``: references the worker fetches
    (``parley.streams.platform_files``) before the turn, at most ``MAX_ATTACHMENTS``."""
    return to_wire(PlatformFile.from_inbound(platform, item) for item in attachments[:MAX_ATTACHMENTS])


def webhook_handler(channel: Channel) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await channel_webhook(channel, request)

    handler.__name__ = f"{channel.name}_webhook"
    return handler


async def channel_webhook(channel: Channel, request: web.Request) -> web.Response:
    """A platform's request; any failure of Parley's own (not the request's) is a 503 with
    ``Retry-After``, so the platform sends it again."""
    try:
        return await _channel_webhook(channel, request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - never a 500 with a traceback per request
        request.app[FAILURES].warning("webhook %s failed: %s: %s", channel.name, type(exc).__name__, exc)
        return error_response(InputError("unavailable", "the request could not be handled now; retry later", status=503))


async def _channel_webhook(channel: Channel, request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    event_ids: list[str] = []
    try:
        application_id = require_id(dict(request.match_info), "application_id")
        body = await _body(request, settings.max_text_bytes * 4 + 4096)
        application = await _application(request, application_id)
        _verify(channel, request, body, application, application_id)
        try:
            parsed = channel.parse(body, max_text_bytes=settings.max_text_bytes)
        except RecursionError:
            raise InputError("invalid_json", "body is nested too deeply") from None
        if isinstance(parsed, DirectAnswer):
            if parsed.json is not None:
                return web.json_response(parsed.json, status=parsed.status)
            return web.Response(text=parsed.text or "", status=parsed.status)
        for reason in parsed.ignored:
            logger.info("webhook %s/%s: ignored %s", channel.name, application_id, reason)
        for receipt in parsed.receipts:
            logger.info(
                "webhook %s/%s: message %s to %s is %s",
                channel.name, application_id, receipt.platform_message_id, receipt.recipient, receipt.status,
            )
        for message in parsed.messages:
            require_id({"conversation_id": message.conversation_id}, "conversation_id")
            refuse_other_platforms(message.conversation_id, channel.name)
        for message in parsed.messages:
            event = user_event(
                application_id=application_id,
                conversation_id=message.conversation_id,
                channel=channel.name,
                client_message_id=message.message_id,
                text=message.text,
                sender=message.sender,
                attachments=platform_attachments(channel.name, message.attachments),
            )
            try:
                await request.app[INGRESS].submit(event)
            except IngressUnavailable as exc:
                raise InputError("unavailable", f"{exc}; retry later", status=503) from exc
            event_ids.append(event.event_id)
            if channel.supports_typing:
                _start_typing(request, channel, application, message)
    except InputError as exc:
        return error_response(exc)
    if channel.name == "generic":
        return web.json_response({"event_id": event_ids[0]}, status=202)
    return web.json_response({"ok": True, "event_ids": event_ids})


async def whatsapp_subscription(request: web.Request) -> web.Response:
    """WhatsApp's webhook verification: echo ``hub.challenge`` when the verify token matches."""
    channel = channel_for("whatsapp")
    assert isinstance(channel, WhatsAppChannel)
    try:
        application_id = require_id(dict(request.match_info), "application_id")
        application = await _application(request, application_id)
        try:
            challenge = channel.verify_subscription(request.query, application)
        except ChannelNotConfigured as exc:
            raise InputError("channel_not_configured", str(exc), status=404) from exc
        except ChannelAuthError as exc:
            logger.warning("whatsapp subscription for %s refused: %s", application_id, exc.code)
            raise InputError(exc.code, exc.message, status=403) from exc
    except InputError as exc:
        return error_response(exc)
    return web.Response(text=challenge, content_type="text/plain")


def _start_typing(request: web.Request, channel: Channel, application: dict[str, Any], message: InboundMessage) -> None:
    """Show the platform's typing indicator, in the background and best effort."""
    http, settings = request.app[DEPS].http, request.app[SETTINGS]
    policy = SendPolicy(timeout_s=min(5.0, settings.delivery_timeout_s), max_attempts=1)

    async def typing() -> None:
        try:
            await channel.typing(http, application, message, policy)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a typing indicator is never worth an error
            logger.info("%s typing indicator for %s failed: %s", channel.name, message.conversation_id, exc)

    tasks = request.app[TYPING_TASKS]
    task = asyncio.get_running_loop().create_task(typing())
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _cancel_typing(app: web.Application) -> None:
    running = app[TYPING_TASKS]
    tasks = list(running)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
