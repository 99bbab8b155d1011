"""Answering a conversation event: the processor's logic, free of Kafka.

``TurnHandler.handle`` takes an ``IncomingEvent`` and the conversation's state, calls the model
(streaming deltas to the bus), updates the state, and returns what to produce: a final reply on
``outgoing`` or a tool round on ``function_call``. Ids of everything it returns are derived from
the event's id, so handling the same event twice produces the same message ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley.attachments import parse_all, to_wire
from parley.config.models import ChatbotConfig
from parley.llm import Completion, DeltaCallback, LLMError
from parley.records import (
    KIND_HANDOFF,
    KIND_OPERATOR,
    KIND_STOP,
    KIND_TOOL_RESULTS,
    KIND_USER,
    FunctionCallEvent,
    IncomingEvent,
    ReplyEvent,
    conversation_key,
)
from parley.rendering import render_markdown
from parley.streams.codec import message_id
from parley.streams.conversation import ConversationState, build_prompt, close_tool_round, trim_history
from parley.streams.handoff import (
    HANDOFF_KINDS,
    apply_hand_back,
    apply_take_over,
    conversation_channel,
    handoff_frame,
    hold_user_message,
    operator_reply,
)
from parley.streams.memory import clip_summary, should_fold, split_for_budget, summary_request
from parley.streams.turn_control import TurnControl
from parley.tools import ToolRegistry

__all__ = ["TurnHandler", "TurnOutput", "APOLOGY", "TOOL_LIMIT_MESSAGE"]

logger = logging.getLogger(__name__)

class Answerer(Protocol):
    """What answers a prompt for a chatbot: ``parley.llm.ModelRouter`` in production."""

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        on_delta: DeltaCallback | None,  # None: no client is listening, nothing is streamed
        *,
        chatbot: Any,
    ) -> Completion: ...


#: A frame publisher: (application_id, conversation_id, frame) -> None.
Publish = Callable[[str, str, dict[str, Any]], Awaitable[None]]

APOLOGY = "Sorry, I could not answer just now. Please try again in a moment."
TOOL_LIMIT_MESSAGE = "I stopped after {n} rounds of tool calls without reaching an answer."


@dataclass
class TurnOutput:
    replies: list[ReplyEvent] = field(default_factory=list)
    function_calls: list[FunctionCallEvent] = field(default_factory=list)
    failure: str | None = None  # set when the model failed: the event is also dead-lettered
    skipped: bool = False  # a redelivered or stale event: nothing to do
    interrupted: bool = False  # a newer message stopped this turn (policy ``interrupt``)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""

    def add_usage(self, completion: Completion) -> None:
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        self.model = completion.model or self.model

    def extend(self, other: TurnOutput) -> None:
        self.replies.extend(other.replies)
        self.function_calls.extend(other.function_calls)
        self.failure = self.failure or other.failure
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.model = other.model or self.model


@dataclass(frozen=True)
class _Turn:
    """What a model call answers: the turn's user event, its reply id and where replies go."""

    application_id: str
    conversation_id: str
    turn_id: str
    reply_id: str
    channel: str
    tool_round: int
    replay_id: str = ""
    deliver: bool = True
    #: ``created_at`` of the event that started this model call: what the call produces is
    #: stamped no earlier, so the archive keeps a question before its answer even when the
    #: gateway's clock runs ahead of the worker's
    asked_at: float = 0.0

    @property
    def key(self) -> str:
        return conversation_key(self.application_id, self.conversation_id)


class TurnHandler:
    def __init__(
        self,
        model: Answerer,
        tools: ToolRegistry,
        publish: Publish,
        clock: Callable[[], float] = time.time,
        control: TurnControl | None = None,
    ) -> None:
        self._control = control or TurnControl()
        self._model = model
        self._tools = tools
        self._publish = publish
        self._clock = clock

    async def handle(
        self, event: IncomingEvent, state: ConversationState, config: ChatbotConfig
    ) -> TurnOutput:
        if state.seen(event.event_id):
            logger.info("skipping already applied event %s", event.event_id)
            return TurnOutput(skipped=True)
        state.mark_applied(event.event_id)
        if event.kind == KIND_USER:
            return await self._on_user(event, state, config)
        if event.kind == KIND_TOOL_RESULTS:
            return await self._on_tool_results(event, state, config)
        if event.kind == KIND_STOP:  # acted on as it was consumed (``note_arrival``)
            return TurnOutput(skipped=True)
        if event.kind in HANDOFF_KINDS:
            return await self._on_handoff(event, state)
        logger.warning("ignoring incoming event %s of unknown kind %r", event.event_id, event.kind)
        return TurnOutput(skipped=True)

    async def _on_user(
        self, event: IncomingEvent, state: ConversationState, config: ChatbotConfig
    ) -> TurnOutput:
        message = {
            "id": event.event_id,
            "role": "user",
            "content": event.text,
            "channel": event.channel,
            "created_at": event.created_at,  # kept: a queued message's answer is stamped after it
        }
        if event.attachments:  # references only; build_prompt shows them to the model
            message["attachments"] = to_wire(parse_all(event.attachments))
        control, conversation = self._control, event.key
        control.started(conversation)
        if state.handoff is not None:  # an operator answers: the model stays silent
            hold_user_message(state, message)
            return TurnOutput()
        policy = config.double_texting
        if policy == "merge":
            await control.quiet(conversation, config.merge_window_s)
        newer_waiting = control.pending(conversation) > 0
        if state.awaiting is not None:
            if policy != "interrupt":
                state.queued.append(message)  # answered once the running tool round completes
                return TurnOutput()
            close_tool_round(state, "cancelled: the user sent a newer message")
        state.history.append(message)
        if policy in ("merge", "interrupt") and newer_waiting:
            return TurnOutput()  # the newest message's turn answers them all
        turn = self._turn_for(event, event.event_id, 0)
        if policy != "interrupt":
            return await self._answer(turn, state, config)
        interrupt = control.interruptible(conversation)
        try:
            return await self._answer(turn, state, config, interrupt=interrupt)
        finally:
            control.finished(conversation)

    async def _on_handoff(self, event: IncomingEvent, state: ConversationState) -> TurnOutput:
        """Take over, hand back, or an operator's message (``parley.streams.handoff``)."""
        if event.kind == KIND_OPERATOR:
            reply = operator_reply(state, event, now=self._clock())
            return TurnOutput(replies=[reply])
        if event.kind == KIND_HANDOFF:
            apply_take_over(state, event)
        else:
            apply_hand_back(state)
        if conversation_channel(state, event.channel) == "websocket":
            await self._publish(event.application_id, event.conversation_id, handoff_frame(event))
        return TurnOutput()

    async def _on_tool_results(
        self, event: IncomingEvent, state: ConversationState, config: ChatbotConfig
    ) -> TurnOutput:
        awaiting = state.awaiting
        if (
            awaiting is None
            or awaiting.get("turn_id") != event.turn_id
            or awaiting.get("tool_round") != event.tool_round
        ):
            logger.info("ignoring stale tool results %s for turn %s", event.event_id, event.turn_id)
            return TurnOutput(skipped=True)
        for result in event.tool_results:
            state.history.append(
                {
                    "id": message_id(event.event_id, str(result.get("tool_call_id"))),
                    "role": "tool",
                    "tool_call_id": str(result.get("tool_call_id", "")),
                    "name": str(result.get("name", "")),
                    "content": str(result.get("content", "")),
                }
            )
        state.awaiting = None
        turn = self._turn_for(event, event.turn_id, event.tool_round + 1)
        output = await self._answer(turn, state, config)
        if state.awaiting is None and state.queued:
            queued, state.queued = state.queued, []
            state.history.extend(queued)
            last = queued[-1]
            next_turn = _Turn(
                event.application_id,
                event.conversation_id,
                turn_id=last["id"],
                reply_id=message_id(last["id"], "reply"),
                channel=last.get("channel", event.channel),
                tool_round=0,
                replay_id=event.replay_id,
                deliver=event.deliver,
                asked_at=max([event.created_at, *(float(m.get("created_at") or 0) for m in queued)]),
            )
            output.extend(await self._answer(next_turn, state, config))
        return output

    @staticmethod
    def _has_listeners(turn: _Turn) -> bool:
        """Whether a socket may see the turn's ephemeral frames: only websocket conversations
        have sockets (a platform gets the final reply alone), and a replay with ``deliver`` off
        must reach none."""
        return turn.channel == "websocket" and not (turn.replay_id and not turn.deliver)

    async def _frame(self, turn: _Turn, frame: dict[str, Any]) -> None:
        """Publish an ephemeral frame (delta, tool, interrupted) to the conversation's sockets."""
        if self._has_listeners(turn):
            await self._publish(turn.application_id, turn.conversation_id, frame)

    def _turn_for(self, event: IncomingEvent, turn_id: str, tool_round: int) -> _Turn:
        return _Turn(
            event.application_id,
            event.conversation_id,
            turn_id=turn_id,
            reply_id=message_id(event.event_id, "reply"),
            channel=event.channel,
            tool_round=tool_round,
            replay_id=event.replay_id,
            deliver=event.deliver,
            asked_at=event.created_at,
        )

    def _stamp(self, turn: _Turn) -> float:
        return max(self._clock(), turn.asked_at)

    async def _answer(
        self,
        turn: _Turn,
        state: ConversationState,
        config: ChatbotConfig,
        *,
        interrupt: asyncio.Event | None = None,
    ) -> TurnOutput:
        may_call_tools = turn.tool_round < config.max_tool_rounds
        tools = self._tools.specs(list(config.tools) if config.tools is not None else None)
        summary_usage = await self._remember(turn, state, config)
        _, recent = split_for_budget(state.history, config.history_token_budget, config.history_messages)
        prompt = build_prompt(config.system_prompt, recent, config.history_messages, state.summary)
        streamed: list[str] = []  # what the sockets have seen: kept when the user stops the answer

        async def on_delta(text: str) -> None:
            frame = {"type": "delta", "message_id": turn.reply_id, "seq": len(streamed), "text": text}
            streamed.append(text)
            await self._frame(turn, frame)

        # No callback when no socket listens: then nothing counts as streamed, and the router
        # may retry a call that fails part way (a client would otherwise see the text twice).
        # Only a streamed answer can be stopped (a user sees it; a platform gets replies whole).
        listening = self._has_listeners(turn)
        listener = on_delta if listening else None
        call = self._model.complete(prompt, tools if may_call_tools else [], listener, chatbot=config)
        stop = self._control.stoppable(turn.key, turn.reply_id) if listening else None
        try:
            finished = await _unless(call, interrupt, stop)
            if finished is None and stop is not None and stop.is_set():
                logger.info("turn %s stopped by the user after %d deltas", turn.turn_id, len(streamed))
                return self._stopped(turn, state, "".join(streamed))
            if finished is None:
                logger.info("turn %s interrupted by a newer message", turn.turn_id)
                frame = {"type": "interrupted", "message_id": turn.reply_id}
                await self._frame(turn, frame)
                return TurnOutput(interrupted=True)
            completion = finished
        except LLMError as exc:
            logger.error("turn %s: %s", turn.turn_id, exc)
            return TurnOutput(replies=[self._reply(turn, APOLOGY, is_error=True)], failure=str(exc))
        finally:
            if stop is not None:
                self._control.done_streaming(turn.key)

        if completion.tool_calls and may_call_tools:
            output = await self._tool_round(turn, state, completion)
            output.add_usage(completion)
            if summary_usage is not None:
                output.add_usage(summary_usage)
            return output
        text = completion.text
        if completion.tool_calls:
            text = TOOL_LIMIT_MESSAGE.format(n=config.max_tool_rounds)
        reply = self._reply(turn, text or "…", tools=_tools_called(state.history))
        state.history.append({"id": reply.event_id, "role": "assistant", "content": reply.text})
        output = TurnOutput(replies=[reply])
        output.add_usage(completion)
        if summary_usage is not None:
            output.add_usage(summary_usage)
        return output

    def _stopped(self, turn: _Turn, state: ConversationState, partial: str) -> TurnOutput:
        """The user stopped the answer: what was streamed is the reply, marked ``stopped``."""
        reply = self._reply(turn, partial, stopped=True)
        if partial:
            state.history.append({"id": reply.event_id, "role": "assistant", "content": partial})
        return TurnOutput(replies=[reply])

    async def _remember(
        self, turn: _Turn, state: ConversationState, config: ChatbotConfig
    ) -> Completion | None:
        """Fold messages that no longer fit the prompt into the rolling summary."""
        older, _ = split_for_budget(state.history, config.history_token_budget, config.history_messages)
        if not should_fold(older, config.history_token_budget):
            return None

        try:  # the summary is not shown to anyone: no delta callback, so it may be retried
            completion = await self._model.complete(
                summary_request(state.summary, older), [], None, chatbot=config
            )
        except LLMError as exc:
            logger.warning("turn %s: could not update the summary, keeping history: %s", turn.turn_id, exc)
            hard_cap = max(config.history_messages * 4, 32)
            if len(state.history) > hard_cap:
                state.history[:] = trim_history(state.history, hard_cap)
            return None
        state.summary = clip_summary(completion.text)
        del state.history[: len(older)]
        return completion

    async def _tool_round(
        self, turn: _Turn, state: ConversationState, completion: Completion
    ) -> TurnOutput:
        call_event_id = message_id(turn.reply_id, "calls", str(turn.tool_round))
        calls = [call.to_dict() for call in completion.tool_calls]
        state.history.append(
            {
                "id": call_event_id,
                "role": "assistant",
                "content": completion.text or None,
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls
                ],
            }
        )
        state.awaiting = {
            "turn_id": turn.turn_id,
            "tool_round": turn.tool_round,
            "call_ids": [c["id"] for c in calls],
            "channel": turn.channel,
        }
        for c in calls:
            frame = {"type": "tool", "message_id": turn.reply_id, "name": c["name"], "status": "calling"}
            await self._frame(turn, frame)
        return TurnOutput(
            function_calls=[
                FunctionCallEvent(
                    event_id=call_event_id,
                    conversation_id=turn.conversation_id,
                    application_id=turn.application_id,
                    created_at=self._stamp(turn),
                    turn_id=turn.turn_id,
                    tool_round=turn.tool_round,
                    channel=turn.channel,
                    calls=calls,
                    replay_id=turn.replay_id,
                    deliver=turn.deliver,
                )
            ]
        )

    def _reply(
        self, turn: _Turn, text: str, *, is_error: bool = False, stopped: bool = False, tools: list[str] | None = None
    ) -> ReplyEvent:
        return ReplyEvent(
            event_id=turn.reply_id,
            conversation_id=turn.conversation_id,
            application_id=turn.application_id,
            created_at=self._stamp(turn),
            in_reply_to=turn.turn_id,
            text=text,
            channel=turn.channel,
            is_error=is_error,
            replay_id=turn.replay_id,
            deliver=turn.deliver,
            html=render_markdown(text),  # rendered once, here: every client and the archive get it
            stopped=stopped,
            tools=list(tools or ()),
        )


def _tools_called(history: list[dict[str, Any]]) -> list[str]:
    """The names of the tools called since the last user message, in order."""
    names: list[str] = []
    for message in reversed(history):
        if message.get("role") == "user":
            break
        for call in reversed(message.get("tool_calls") or ()):
            names.append(str((call.get("function") or {}).get("name", "")))
    return [name for name in reversed(names) if name]


async def _unless(call: Any, *events: asyncio.Event | None) -> Completion | None:
    """Await ``call`` unless one of ``events`` is set first (then cancel it and return None)."""
    watched = [e for e in events if e is not None]
    if not watched:
        return await call
    task = asyncio.ensure_future(call)
    waiters = [asyncio.ensure_future(e.wait()) for e in watched]
    try:
        await asyncio.wait({task, *waiters}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, LLMError):
        await task
    return None
