"""Human handoff: an operator takes a conversation over, writes to the user, and hands it back.

Every step is an ``incoming`` event keyed by the conversation (``parley.records`` kinds
``handoff``, ``operator`` and ``hand_back``), so the processor that owns the conversation's
partition applies it to the ``conversations`` table in order with the user's messages, and every
worker agrees on who answers. While ``state.handoff`` is set:

- a user message is added to the history (and archived by the persister, as always) but the
  model is not called;
- an operator message becomes a ``ReplyEvent`` of role ``operator`` on ``outgoing``, delivered
  on the conversation's own channel and kept in the history as an assistant message, so after
  the hand back the model reads the whole exchange.

Ids are derived as everywhere (``docs/architecture.md``): a take over, hand back or operator
message has the id the web gave it, the operator's reply ``operator_reply_id`` of it, and a
repeated event is skipped by the conversation's applied ids.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from parley.records import KIND_HAND_BACK, KIND_HANDOFF, KIND_OPERATOR, IncomingEvent, ReplyEvent
from parley.streams.codec import message_id
from parley.streams.conversation import ConversationState, close_tool_round

__all__ = [
    "HANDOFF_KINDS",
    "OPERATOR_ROLE",
    "apply_hand_back",
    "apply_take_over",
    "conversation_channel",
    "control_event",
    "handoff_frame",
    "handoff_state_frame",
    "hold_user_message",
    "operator_event",
    "operator_reply",
    "operator_reply_id",
]

#: The incoming kinds of the handoff (the processor hands these to this module).
HANDOFF_KINDS = frozenset({KIND_HANDOFF, KIND_HAND_BACK, KIND_OPERATOR})
#: The role of an operator's message: in the archive, on ``outgoing`` and in websocket frames.
OPERATOR_ROLE = "operator"
TAKEN_OVER_REASON = "cancelled: a human operator took over the conversation"


def control_event(
    kind: str, *, application_id: str, conversation_id: str, operator_id: str, operator_name: str,
    channel: str, request_id: str | None = None,
) -> IncomingEvent:
    """A take over (``handoff``) or hand back (``hand_back``) event; its id derives from
    ``request_id`` (a fresh one when None: each click is its own step)."""
    if kind not in (KIND_HANDOFF, KIND_HAND_BACK):
        raise ValueError(f"not a handoff control kind: {kind!r}")
    request = request_id or uuid.uuid4().hex
    return IncomingEvent(
        event_id=message_id(application_id, conversation_id, kind, request),
        conversation_id=conversation_id, application_id=application_id, created_at=time.time(),
        kind=kind, channel=channel, operator_id=operator_id, operator_name=operator_name,
    )


def operator_event(
    *, application_id: str, conversation_id: str, operator_id: str, operator_name: str, text: str,
    channel: str, client_message_id: str | None = None,
) -> IncomingEvent:
    """An operator's message; the same ``client_message_id`` (the console's own id for the
    message) gives the same event, so a retried POST is delivered once."""
    client_id = client_message_id or uuid.uuid4().hex
    return IncomingEvent(
        event_id=message_id(application_id, conversation_id, KIND_OPERATOR, operator_id, client_id),
        conversation_id=conversation_id, application_id=application_id, created_at=time.time(),
        kind=KIND_OPERATOR, text=text, channel=channel, client_message_id=client_id,
        operator_id=operator_id, operator_name=operator_name,
    )


def operator_reply_id(event_id: str) -> str:
    """The message id of the reply an operator event becomes (what the web answers with)."""
    return message_id(event_id, "reply")


def conversation_channel(state: ConversationState, fallback: str) -> str:
    """Where the conversation's replies go: its latest user message's channel, else ``fallback``."""
    for message in reversed([*state.history, *state.queued]):
        if message.get("role") == "user" and isinstance(message.get("channel"), str):
            return str(message["channel"])
    return fallback


def _last_user_message_id(state: ConversationState) -> str:
    for message in reversed(state.history):
        if message.get("role") == "user":
            return str(message.get("id") or "")
    return ""


def apply_take_over(state: ConversationState, event: IncomingEvent) -> None:
    """The operator holds the conversation from now on: a tool round in progress is closed
    (its late results are ignored) and messages queued behind it join the history unanswered."""
    close_tool_round(state, TAKEN_OVER_REASON)
    if state.queued:
        state.history.extend(state.queued)
        state.queued = []
    state.handoff = {
        "operator_id": event.operator_id, "operator_name": event.operator_name, "since": event.created_at,
    }


def apply_hand_back(state: ConversationState) -> None:
    """The model answers the conversation again (from its next user message, whole history)."""
    state.handoff = None


def hold_user_message(state: ConversationState, message: dict[str, Any]) -> None:
    """A user message during a handoff: kept in the history for the model's later turns."""
    state.history.append(message)


def operator_reply(state: ConversationState, event: IncomingEvent, *, now: float) -> ReplyEvent:
    """The operator's message as a reply on the conversation's channel, added to the history
    as the assistant's turn (the model later reads it as what "it" said)."""
    reply = ReplyEvent(
        event_id=operator_reply_id(event.event_id),
        conversation_id=event.conversation_id,
        application_id=event.application_id,
        created_at=max(now, event.created_at),
        in_reply_to=_last_user_message_id(state),
        text=event.text,
        role=OPERATOR_ROLE,
        channel=conversation_channel(state, event.channel),
        operator_id=event.operator_id,
        operator_name=event.operator_name,
    )
    close_tool_round(state, TAKEN_OVER_REASON)  # an operator message without a take over
    state.history.append(
        {
            "id": reply.event_id, "role": "assistant", "content": reply.text,
            "operator": {"id": reply.operator_id, "name": reply.operator_name},
        }
    )
    return reply


def handoff_frame(event: IncomingEvent) -> dict[str, Any]:
    """The websocket frame telling the user a person joined or left (docs/websocket-protocol.md)."""
    return handoff_state_frame(event.operator_name if event.kind == KIND_HANDOFF else None, event.created_at)


def handoff_state_frame(operator_name: str | None, at: Any) -> dict[str, Any]:
    """The ``handoff`` frame: a person (``operator_name``) answers, or (None) the assistant does."""
    return {
        "type": "handoff",
        "state": "assistant" if operator_name is None else "operator",
        "operator": None if operator_name is None else {"name": operator_name},
        "created_at": at,
    }
