"""Every record that travels on a Parley topic.

The class name is the wire namespace (Faust writes it into each payload): never rename one.
Times are epoch seconds (float). Records are validated at the edges (``parley.web``) before they
are produced; the core trusts them.
"""

from __future__ import annotations

from typing import Any

import faust

__all__ = [
    "ConversationEvent",
    "IncomingEvent",
    "FunctionCallEvent",
    "ReplyEvent",
    "DeadLetter",
    "UsageEvent",
    "KIND_USER",
    "KIND_TOOL_RESULTS",
    "KIND_HANDOFF",
    "KIND_HAND_BACK",
    "KIND_OPERATOR",
    "KIND_STOP",
    "conversation_key",
    "INCOMING",
    "OUTGOING",
    "FUNCTION_CALL",
    "DEAD_LETTERS",
    "USAGE",
    "ALL_TOPICS",
]

KIND_USER = "user"
KIND_TOOL_RESULTS = "tool_results"
#: An operator took the conversation over (human handoff): the processor stops answering it.
KIND_HANDOFF = "handoff"
#: The operator handed the conversation back: the processor answers it again.
KIND_HAND_BACK = "hand_back"
#: An operator wrote to the user (``text`` set): delivered as a ``ReplyEvent`` of role ``operator``.
KIND_OPERATOR = "operator"
#: the user asked to stop the answer being streamed (websocket ``stop`` frame); ``turn_id``:
#: the streamed reply's ``message_id`` it is meant for, or "" for whatever is streaming
KIND_STOP = "stop"


#: Topic names (``parley.topics`` declares the topics). Never renamed: they are the wire.
INCOMING = "incoming"
OUTGOING = "outgoing"
FUNCTION_CALL = "function_call"
DEAD_LETTERS = "dead-letters"
USAGE = "usage"  # keyed by application_id (not a conversation topic)
ALL_TOPICS = (INCOMING, OUTGOING, FUNCTION_CALL, DEAD_LETTERS, USAGE)


def conversation_key(application_id: str, conversation_id: str) -> str:
    """A conversation's key on every conversation topic and in the ``conversations`` table.

    Conversation ids are unique only within an application (two Telegram bots meet the same chat
    id), so the key holds both; ids never contain "/".
    """
    return f"{application_id}/{conversation_id}"


class ConversationEvent(faust.Record, abstract=True, serializer="json", coerce=True):
    """The envelope every conversation topic shares; its key is ``conversation_key``
    (application and conversation).

    ``replay_id`` is set on events re-published by ``parley replay`` (and on everything derived
    from them); ``deliver`` False means "archive, but do not deliver to the client or platform".
    """

    event_id: str
    conversation_id: str
    application_id: str
    created_at: float
    replay_id: str = ""
    deliver: bool = True

    @property
    def key(self) -> str:
        """The record's key on its topic, and its conversation's key in the tables."""
        return conversation_key(self.application_id, self.conversation_id)


class IncomingEvent(ConversationEvent, serializer="json", coerce=True):
    """Something happened in a conversation: a user wrote, tools answered, or an operator acted.

    ``kind`` is ``user`` (``text`` set) or ``tool_results`` (``tool_results`` set: a list of
    ``{"tool_call_id", "name", "content", "is_error"}``, answering ``turn_id``'s tool round),
    ``stop`` (``KIND_STOP``: stop the answer streaming now; nothing is archived for it), or
    one of the human handoff's: ``handoff`` (an operator takes over), ``hand_back`` and
    ``operator`` (the operator's message, ``text`` set); these carry ``operator_id`` and
    ``operator_name`` (``parley.streams.handoff``).
    ``channel`` says where replies go: ``websocket`` or ``generic`` (callback URL).
    ``attachments`` (user messages) are the wire forms of ``parley.attachments``: uploaded files,
    each ``{"file_id", "content_type", "size", "name"}`` (``parley.web.uploads.resolve_attachments``),
    or files on a messaging platform, ``{"platform", "ref", "content_type", "size", "name"}``,
    which the processor fetches and stores first (``parley.streams.platform_files``), or files
    that could not be taken, ``{"name", "content_type", "size", "error"}``.
    """

    kind: str = KIND_USER
    text: str = ""
    sender: str = ""
    signed_in: bool = False  # the sender is a user token's subject (websocket), not self-declared
    channel: str = "websocket"
    client_message_id: str = ""
    turn_id: str = ""
    tool_round: int = 0
    tool_results: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    operator_id: str = ""
    operator_name: str = ""


class FunctionCallEvent(ConversationEvent, serializer="json", coerce=True):
    """The model asked for tools: ``calls`` is a list of ``{"id", "name", "arguments"}``
    (``arguments`` is the model's JSON string). ``turn_id`` is the user event being answered."""

    turn_id: str = ""
    tool_round: int = 0
    channel: str = "websocket"
    calls: list[dict[str, Any]] = []


class ReplyEvent(ConversationEvent, serializer="json", coerce=True):
    """An assistant reply, final and durable. ``event_id`` is the reply's message id.

    ``role`` is ``operator`` for an operator's message during a handoff (then ``operator_id``
    and ``operator_name`` say who wrote it).
    ``html`` is ``text`` rendered and sanitised (``parley.rendering.render_markdown``) where the
    reply is produced; "" on replies produced before the field existed (clients then get it
    rendered on delivery). ``stopped``: the user stopped the answer; ``text`` is what was
    streamed until then. ``tools``: the names of the tools the turn called before this answer
    (clients show them as a line of activity, also in the history)."""

    in_reply_to: str = ""
    text: str = ""
    role: str = "assistant"
    channel: str = "websocket"
    is_error: bool = False
    operator_id: str = ""
    operator_name: str = ""
    html: str = ""
    stopped: bool = False
    tools: list[str] = []


class UsageEvent(faust.Record, serializer="json", coerce=True):
    """Model usage of one answered event, keyed by ``application_id`` on the ``usage`` topic."""

    event_id: str
    application_id: str
    chatbot_id: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    turns: int
    at: float


class DeadLetter(faust.Record, serializer="json", coerce=True):
    """An event Parley could not process: where it failed, why, and its original bytes."""

    dead_letter_id: str
    stage: str
    error: str
    error_type: str
    topic: str
    partition: int
    offset: int
    key: str
    original_b64: str
    failed_at: float
    attempts: int = 1
