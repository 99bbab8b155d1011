"""The console's conversations: list, transcript, and the human handoff.

``GET /v1/admin/applications/{app}/conversations?q=&limit=&cursor=`` lists an application's
conversations, newest first; ``GET …/conversations/{conv}`` is a transcript (tool calls and
results, attachments, delivery, replay marks, operators). ``POST …/{conv}/handoff`` takes the
conversation over, ``DELETE …/{conv}/handoff`` hands it back, ``POST …/{conv}/messages`` sends the
operator's message: each is an ``incoming`` event applied by the processor that owns the
conversation (``parley.streams.handoff``); the ``handoffs`` collection is this API's view of who
holds which conversation. See docs/admin-api.md.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aiohttp import web

from parley.records import KIND_HAND_BACK, KIND_HANDOFF
from parley.storage.transcripts import ConversationIndex
from parley.streams.handoff import control_event, operator_event, operator_reply_id
from parley.validation import InputError, require_id, require_text
from parley.web.admin import ADMIN_PREFIX, AdminError, no_store_json, page_limit, read_json, store_errors
from parley.web.ingress import IngressUnavailable
from parley.web.keys import DEPS, INGRESS, SETTINGS
from parley.web.operators import Operator, operator_for, record

__all__ = ["add_conversation_routes", "transcript_message", "TRANSCRIPT_LIMIT"]

CONVERSATIONS = ADMIN_PREFIX + "/applications/{application_id}/conversations"
CONVERSATION = CONVERSATIONS + "/{conversation_id}"
#: the most messages a transcript shows (its last ones)
TRANSCRIPT_LIMIT = 1000
MAX_QUERY_CHARS = 200


def add_conversation_routes(app: web.Application) -> None:
    app.router.add_get(CONVERSATIONS, store_errors(list_conversations))
    app.router.add_get(CONVERSATION, store_errors(transcript))
    app.router.add_post(CONVERSATION + "/handoff", store_errors(take_over))
    app.router.add_delete(CONVERSATION + "/handoff", store_errors(hand_back))
    app.router.add_post(CONVERSATION + "/messages", store_errors(send_operator_message))


def _index(request: web.Request) -> ConversationIndex:
    return request.app[DEPS].documents.index


def _ids(request: web.Request) -> tuple[str, str | None]:
    values = dict(request.match_info)
    try:
        application_id = require_id(values, "application_id")
        conversation_id = require_id(values, "conversation_id") if "conversation_id" in values else None
    except InputError as exc:
        raise AdminError(400, "invalid_parameter", exc.message) from exc
    return application_id, conversation_id


async def _known_application(request: web.Request, application_id: str) -> None:
    if await request.app[DEPS].documents.get_application(application_id) is None:
        raise AdminError(404, "not_found", f"no application {application_id!r}")


def _cursor(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    try:
        at, conversation_id = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        return float(at), str(conversation_id)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise AdminError(400, "invalid_parameter", "cursor is not one this API gave out") from None


def _next_cursor(at: float, conversation_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([at, conversation_id]).encode()).decode().rstrip("=")


# --- reads ----------------------------------------------------------------------------------
async def list_conversations(request: web.Request) -> web.Response:
    application_id, _ = _ids(request)
    await operator_for(request, action="read", application_id=application_id)
    query = request.query.get("q", "").strip()
    if len(query) > MAX_QUERY_CHARS:
        raise AdminError(400, "invalid_parameter", f"q is longer than {MAX_QUERY_CHARS} characters")
    limit = page_limit(request.query.get("limit"))
    after = _cursor(request.query.get("cursor"))
    await _known_application(request, application_id)
    index = _index(request)
    rows, more = await index.page(application_id, query=query, limit=limit, after=after)
    handoffs = await index.handoffs_of(application_id, [r.conversation_id for r in rows])
    items = [
        {
            "conversation_id": r.conversation_id, "sender": r.sender, "last_message_at": r.last_message_at,
            "last_text": r.last_text, "handoff": handoffs.get(r.conversation_id),
        }
        for r in rows
    ]
    cursor = _next_cursor(rows[-1].last_message_at, rows[-1].conversation_id) if more and rows else None
    return no_store_json({"items": items, "next_cursor": cursor})


async def transcript(request: web.Request) -> web.Response:
    application_id, conversation_id = _ids(request)
    assert conversation_id is not None
    await operator_for(request, action="read", application_id=application_id)
    index = _index(request)
    docs, truncated = await index.transcript(application_id, conversation_id, limit=TRANSCRIPT_LIMIT)
    if not docs:
        await _known_application(request, application_id)
        raise AdminError(404, "not_found", f"no conversation {conversation_id!r} in application {application_id!r}")
    channel = next((str(d.get("channel")) for d in reversed(docs) if d.get("role") == "user" and d.get("channel")), "websocket")
    return no_store_json({
        "conversation_id": conversation_id,
        "application_id": application_id,
        "channel": channel,
        "handoff": await index.handoff(application_id, conversation_id),
        "truncated": truncated,
        "messages": [transcript_message(d, channel) for d in docs],
    })


def transcript_message(doc: dict[str, Any], channel: str) -> dict[str, Any]:
    """An archived message as the transcript shows it (docs/admin-api.md)."""
    role = str(doc.get("role") or "")
    message: dict[str, Any] = {
        "message_id": str(doc["_id"]),
        "role": "assistant" if role == "tool_call" else role,
        "text": str(doc.get("text") or ""),
        "sender": str(doc.get("sender") or ""),
        "created_at": doc.get("created_at"),
    }
    if doc.get("replay_id"):
        message.update(replayed=True, replay_id=str(doc["replay_id"]))
    if role == "user":
        message["channel"] = str(doc.get("channel") or channel)
        if doc.get("attachments"):
            message["attachments"] = [a for a in doc["attachments"] if isinstance(a, dict)]
    elif role == "tool_call":
        message["tool_calls"] = [
            {"id": str(c.get("id", "")), "name": str(c.get("name", "")), "arguments": c.get("arguments", "")}
            for c in doc.get("calls") or [] if isinstance(c, dict)
        ]
    elif role == "tool":
        message["tool_results"] = [{
            "call_id": str(doc.get("tool_call_id") or ""), "name": str(doc.get("name") or ""),
            "content": str(doc.get("text") or ""), "is_error": bool(doc.get("is_error")),
        }]
    elif role in ("assistant", "operator"):
        reply_channel = str(doc.get("channel") or channel)
        delivered_at = doc.get("delivered_at")
        status = "delivered" if delivered_at else ("published" if reply_channel == "websocket" else "pending")
        message["delivery"] = {"channel": reply_channel, "status": status, "delivered_at": delivered_at}
        message["in_reply_to"] = str(doc.get("in_reply_to") or "")
        if doc.get("is_error"):
            message["is_error"] = True
    elif role == "handoff":
        message["action"] = str(doc.get("action") or "")
    operator = doc.get("operator")
    if isinstance(operator, dict):
        message["operator"] = {"id": str(operator.get("id") or ""), "name": str(operator.get("name") or "")}
        if role == "handoff":
            verb = "took over" if message["action"] == "take_over" else "handed back to the assistant"
            message["text"] = f"{message['operator']['name'] or message['operator']['id']} {verb}"
    return message


# --- the handoff ------------------------------------------------------------------------------
async def _conversation_channel(request: web.Request, application_id: str, conversation_id: str) -> str:
    channel = await _index(request).channel(application_id, conversation_id)
    if channel is None:
        await _known_application(request, application_id)
        raise AdminError(
            404, "not_found", f"no conversation {conversation_id!r} in application {application_id!r} (no user message archived)"
        )
    return channel


async def _submit(request: web.Request, event: Any) -> None:
    try:
        await request.app[INGRESS].submit(event)
    except IngressUnavailable as exc:
        raise AdminError(503, "unavailable", f"{exc}; retry later", headers={"Retry-After": "1"}) from exc


def _held_by_other(handoff: dict[str, Any], operator: Operator) -> AdminError:
    return AdminError(
        409, "taken_over",
        f"{handoff['operator_name'] or handoff['operator_id']} holds this conversation; they (or an admin) "
        "must hand it back first",
    )


async def _handoff_target(request: web.Request) -> tuple[str, str, Operator, str, Any, dict[str, Any] | None]:
    """The conversation a take over or hand back is for, who asks (admin), its channel, the
    handoff index and who holds it now."""
    application_id, conversation_id = _ids(request)
    assert conversation_id is not None
    operator = await operator_for(request, action="write", application_id=application_id)
    channel = await _conversation_channel(request, application_id, conversation_id)
    index = _index(request)
    return application_id, conversation_id, operator, channel, index, await index.handoff(application_id, conversation_id)


async def _send_control(
    request: web.Request, kind: str, operator: Operator, application_id: str, conversation_id: str, channel: str
) -> Any:
    """Produce a handoff control event for the processor that owns the conversation."""
    event = control_event(
        kind, application_id=application_id, conversation_id=conversation_id,
        operator_id=operator.id, operator_name=operator.name, channel=channel,
    )
    await _submit(request, event)
    return event


async def take_over(request: web.Request) -> web.Response:
    application_id, conversation_id, operator, channel, index, current = await _handoff_target(request)
    if current is not None:
        if current["operator_id"] != operator.id:
            raise _held_by_other(current, operator)
        return no_store_json({"conversation_id": conversation_id, "handoff": current})
    event = await _send_control(request, KIND_HANDOFF, operator, application_id, conversation_id, channel)
    handoff = {"operator_id": operator.id, "operator_name": operator.name, "since": event.created_at}
    await index.hold(application_id, conversation_id, handoff)
    await record(
        request, operator, action="take_over", kind="conversation", target_id=conversation_id,
        application_id=application_id, before=None, after=handoff,
    )
    return no_store_json({"conversation_id": conversation_id, "handoff": handoff})


async def hand_back(request: web.Request) -> web.Response:
    # Sent even when this API's view says nobody holds it: a take over whose record was not
    # written (the store failed after the broker took the event) can still be undone.
    application_id, conversation_id, operator, channel, index, current = await _handoff_target(request)
    await _send_control(request, KIND_HAND_BACK, operator, application_id, conversation_id, channel)
    await index.release(application_id, conversation_id)
    await record(
        request, operator, action="hand_back", kind="conversation", target_id=conversation_id,
        application_id=application_id, before=current, after=None,
    )
    return no_store_json({"conversation_id": conversation_id, "handoff": None})


async def send_operator_message(request: web.Request) -> web.Response:
    application_id, conversation_id = _ids(request)
    assert conversation_id is not None
    operator = await operator_for(request, action="write", application_id=application_id)
    body = await read_json(request)
    try:
        text = require_text(body, "text", request.app[SETTINGS].max_text_bytes)
        client_id = require_id(body, "id") if body.get("id") is not None else None
    except InputError as exc:
        raise AdminError(exc.status, exc.code, exc.message) from exc
    channel = await _conversation_channel(request, application_id, conversation_id)
    if await _index(request).handoff(application_id, conversation_id) is None:
        raise AdminError(
            409, "not_taken_over",
            f"take conversation {conversation_id!r} over first (POST …/handoff): the assistant answers it now",
        )
    event = operator_event(
        application_id=application_id, conversation_id=conversation_id, operator_id=operator.id,
        operator_name=operator.name, text=text, channel=channel, client_message_id=client_id,
    )
    await _submit(request, event)
    message_id = operator_reply_id(event.event_id)
    await record(
        request, operator, action="send_message", kind="conversation", target_id=conversation_id,
        application_id=application_id, after={"message_id": message_id, "text_bytes": len(text.encode())},
    )
    return no_store_json({"message_id": message_id, "event_id": event.event_id, "accepted_at": time.time()}, status=202)
