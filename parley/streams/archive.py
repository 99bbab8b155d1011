"""Archive documents for every message of a conversation, built from topic events.

One document per message, ``_id`` = the message id, so re-archiving a repeated event is a
no-op. ``order`` breaks ties of ``created_at`` within a turn (user, tool call, tool, assistant).

A take over or hand back (human handoff) is archived as a message of role ``handoff`` (``action``
``take_over`` or ``hand_back``, ``operator`` ``{"id", "name"}``), for the transcript; an
operator's message is archived from its reply on ``outgoing`` (role ``operator``), not here.
"""

from __future__ import annotations

from typing import Any

from parley.attachments import parse_all, to_wire
from parley.records import (
    KIND_HAND_BACK,
    KIND_HANDOFF,
    KIND_TOOL_RESULTS,
    KIND_USER,
    FunctionCallEvent,
    IncomingEvent,
    ReplyEvent,
)
from parley.streams.codec import message_id

__all__ = ["documents_for_incoming", "document_for_calls", "document_for_reply"]


def _base(event: IncomingEvent | FunctionCallEvent | ReplyEvent, role: str, order: int) -> dict[str, Any]:
    return {
        "conversation_id": event.conversation_id,
        "application_id": event.application_id,
        "created_at": event.created_at,
        "role": role,
        "order": order,
        "replay_id": event.replay_id or None,
    }


def documents_for_incoming(event: IncomingEvent) -> list[dict[str, Any]]:
    if event.kind == KIND_USER:
        doc = _base(event, "user", 0)
        doc.update(
            _id=event.event_id,
            text=event.text,
            sender=event.sender,
            signed_in=event.signed_in,
            channel=event.channel,
            client_message_id=event.client_message_id,
        )
        if event.attachments:  # references (``parley.attachments``' wire forms), never bytes
            doc["attachments"] = to_wire(parse_all(event.attachments))
        return [doc]
    if event.kind == KIND_TOOL_RESULTS:
        docs = []
        for index, result in enumerate(event.tool_results):
            doc = _base(event, "tool", 2)
            doc.update(
                _id=message_id(event.event_id, str(result.get("tool_call_id"))),
                turn_id=event.turn_id,
                tool_round=event.tool_round,
                tool_call_id=str(result.get("tool_call_id", "")),
                name=str(result.get("name", "")),
                text=str(result.get("content", "")),
                is_error=bool(result.get("is_error", False)),
                index=index,
            )
            docs.append(doc)
        return docs
    if event.kind in (KIND_HANDOFF, KIND_HAND_BACK):
        doc = _base(event, "handoff", 0)
        doc.update(
            _id=event.event_id,
            action="take_over" if event.kind == KIND_HANDOFF else "hand_back",
            operator={"id": event.operator_id, "name": event.operator_name},
        )
        return [doc]
    return []


def document_for_calls(event: FunctionCallEvent) -> dict[str, Any]:
    doc = _base(event, "tool_call", 1)
    doc.update(_id=event.event_id, turn_id=event.turn_id, tool_round=event.tool_round, calls=event.calls)
    return doc


def document_for_reply(event: ReplyEvent) -> dict[str, Any]:
    doc = _base(event, event.role, 3)
    doc.update(
        _id=event.event_id, text=event.text, in_reply_to=event.in_reply_to, is_error=event.is_error,
        channel=event.channel, html=event.html or None, stopped=event.stopped,
    )
    if event.operator_id:
        doc["operator"] = {"id": event.operator_id, "name": event.operator_name}
    if event.tools:
        doc["tools"] = list(event.tools)
    return doc
