"""``POST /v1/webhooks/generic/{application_id}``: messages from any HTTP system.

Answers ``202 {"event_id"}`` once the broker has the event, 4xx with a JSON body for bad input
(nothing is produced), and 503 when the broker cannot ack, so the sender retries.
"""

from __future__ import annotations

from aiohttp import web

from parley.web.ingress import IngressUnavailable, user_event
from parley.web.keys import INGRESS, RUNTIME, SETTINGS
from parley.web.validation import InputError, optional_str, parse_json_object, require_id, require_text

__all__ = ["generic_webhook"]


def error_response(exc: InputError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status)


async def generic_webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    limit = settings.max_text_bytes * 4 + 4096
    try:
        application_id = require_id(dict(request.match_info), "application_id")
        if request.content_length is not None and request.content_length > limit:
            raise InputError("too_large", f"body is larger than {limit} bytes", status=413)
        body = await request.content.read(limit + 1)
        if len(body) > limit:
            raise InputError("too_large", f"body is larger than {limit} bytes", status=413)
        payload = parse_json_object(body)
        conversation_id = require_id(payload, "conversation_id")
        message_id = require_id(payload, "id")
        text = require_text(payload, "text", settings.max_text_bytes)
        sender = optional_str(payload, "sender")
        if await request.app[RUNTIME].configs.application(application_id) is None:
            raise InputError("unknown_application", f"no application {application_id!r}", status=404)
        event = user_event(
            application_id=application_id,
            conversation_id=conversation_id,
            channel="generic",
            client_message_id=message_id,
            text=text,
            sender=sender,
        )
        try:
            await request.app[INGRESS].submit(event)
        except IngressUnavailable as exc:
            raise InputError("unavailable", f"{exc}; retry later", status=503) from exc
    except InputError as exc:
        return error_response(exc)
    return web.json_response({"event_id": event.event_id}, status=202)
