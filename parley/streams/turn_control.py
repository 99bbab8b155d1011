"""What a running turn needs to know about messages that arrived after it: the double-texting
policies ``interrupt`` and ``merge``.

The processor's loop calls ``arrived`` for every user message as it is consumed (before the
message waits its turn behind the running one); a turn calls ``started`` when it begins.
- ``pending`` counts user messages of a conversation consumed but not yet started, so a turn
  knows a newer message is already waiting.
- ``interruptible`` registers a running turn under the ``interrupt`` policy; a newer message sets
  its event, and the turn stops its model call.
- ``quiet`` waits until no user message has arrived for a window (``merge``).
- ``stoppable`` registers a model call whose answer streams to sockets; a ``stop`` event
  (``parley.records.KIND_STOP``, the websocket ``stop`` frame) sets its event as it is consumed
  (not when its turn in the queue comes: it would wait behind the very turn it stops).
All of it is per worker process; a conversation is always on one worker (its partition).
Conversations are named by their key (``parley.records.conversation_key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from parley.records import KIND_STOP, KIND_USER, conversation_key

__all__ = ["TurnControl", "note_arrival"]


@dataclass
class _Conversation:
    pending: int = 0
    last_arrival: float = 0.0
    interrupt: asyncio.Event | None = None
    arrivals: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event | None = None
    streaming: str = ""  # the message id of the reply being streamed (what a stop names)


class TurnControl:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._conversations: dict[str, _Conversation] = {}

    def _get(self, conversation_id: str) -> _Conversation:
        return self._conversations.setdefault(conversation_id, _Conversation())

    def arrived(self, conversation_id: str) -> None:
        conv = self._get(conversation_id)
        conv.pending += 1
        conv.last_arrival = self._clock()
        conv.arrivals.set()
        if conv.interrupt is not None:
            conv.interrupt.set()

    def started(self, conversation_id: str) -> None:
        conv = self._get(conversation_id)
        conv.pending = max(0, conv.pending - 1)

    def pending(self, conversation_id: str) -> int:
        conv = self._conversations.get(conversation_id)
        return conv.pending if conv else 0

    def interruptible(self, conversation_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._get(conversation_id).interrupt = event
        return event

    def finished(self, conversation_id: str) -> None:
        conv = self._conversations.get(conversation_id)
        if conv is None:
            return
        conv.interrupt = None
        self._forget_if_idle(conversation_id, conv)

    def stoppable(self, conversation_id: str, reply_id: str) -> asyncio.Event:
        """Register the model call streaming ``reply_id``; its event is set by ``stop``."""
        conv = self._get(conversation_id)
        conv.stop, conv.streaming = asyncio.Event(), reply_id
        return conv.stop

    def stop(self, conversation_id: str, reply_id: str = "") -> bool:
        """Stop the conversation's streaming answer (only if it is ``reply_id``'s, when given);
        whether one was running."""
        conv = self._conversations.get(conversation_id)
        if conv is None or conv.stop is None or (reply_id and reply_id != conv.streaming):
            return False
        conv.stop.set()
        return True

    def done_streaming(self, conversation_id: str) -> None:
        conv = self._conversations.get(conversation_id)
        if conv is None:
            return
        conv.stop, conv.streaming = None, ""
        self._forget_if_idle(conversation_id, conv)

    def _forget_if_idle(self, conversation_id: str, conv: _Conversation) -> None:
        if conv.pending == 0 and conv.interrupt is None and conv.stop is None:
            del self._conversations[conversation_id]

    async def quiet(self, conversation_id: str, window_s: float) -> None:
        """Return once no user message of the conversation arrived for ``window_s``."""
        conv = self._get(conversation_id)
        while True:
            remaining = conv.last_arrival + window_s - self._clock()
            if remaining <= 0:
                return
            conv.arrivals.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conv.arrivals.wait(), remaining)


def note_arrival(control: TurnControl, raw: object) -> None:
    """Tell ``control`` about a consumed ``incoming`` event if it is a user message or a stop
    (events that do not decode are ignored here; their handler dead-letters them)."""
    try:
        data = json.loads(getattr(raw, "value", None) or b"")
    except (ValueError, TypeError):
        return
    if not isinstance(data, dict):
        return
    application_id, conversation_id = data.get("application_id"), data.get("conversation_id")
    if not (isinstance(application_id, str) and isinstance(conversation_id, str)):
        return
    kind = data.get("kind", KIND_USER)
    if kind == KIND_USER:
        control.arrived(conversation_key(application_id, conversation_id))
    elif kind == KIND_STOP:
        target = data.get("turn_id")
        control.stop(conversation_key(application_id, conversation_id), target if isinstance(target, str) else "")
