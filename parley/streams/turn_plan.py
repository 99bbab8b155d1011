"""What the processor does with a turn's output: the policy, free of Kafka and of I/O.

The processor reads an ``incoming`` event, runs the turn (``TurnHandler``) and then carries out
the ``TurnPlan`` returned here, in this order:

1. produce ``messages`` in order and wait for the broker's acks: the tool round
   (``function_call``), then the replies (``outgoing``), then the usage record (``usage``);
2. only then write the conversation state (``write_state``): a crash before this step repeats
   the turn with the same ids, it never loses a reply;
3. then produce ``dead_letter``: a model failure answered with an error reply is also recorded,
   with the event's original bytes, so it can be replayed once the model is back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from parley.config.models import ChatbotConfig
from parley.records import DeadLetter, IncomingEvent
from parley.streams.codec import encode
from parley.streams.conversation import ConversationState
from parley.streams.deadletters import RawEvent, dead_letter_for
from parley.streams.platform_files import has_platform_files
from parley.streams.turns import TurnOutput
from parley.streams.usage import usage_event

__all__ = ["Route", "TurnPlan", "answer_seconds", "fetches_platform_files", "plan_outputs"]

#: The dead-letter stage of an event whose model call failed (the turn itself was answered).
MODEL_FAILURE_STAGE = "processor.llm"


class Route(StrEnum):
    """Where a planned message goes (the processor maps each to its topic)."""

    FUNCTION_CALL = "function_call"
    OUTGOING = "outgoing"
    USAGE = "usage"  # keyed by application, not by conversation


@dataclass(frozen=True)
class TurnPlan:
    messages: list[tuple[Route, str, bytes]] = field(default_factory=list)  # (route, key, value)
    write_state: bool = False
    dead_letter: DeadLetter | None = None


#: A redelivered or stale event: nothing to produce, no state to write.
SKIP = TurnPlan()


def fetches_platform_files(event: IncomingEvent, state: ConversationState) -> bool:
    """Whether the event's platform files are to be downloaded before the turn: not for an
    event the conversation has already applied (a redelivery is skipped; nothing to fetch)."""
    return has_platform_files(event) and not state.seen(event.event_id)


def plan_outputs(raw: RawEvent, event: IncomingEvent, output: TurnOutput, chatbot: ChatbotConfig) -> TurnPlan:
    """The messages to produce for ``event``'s turn, whether to write its state, and its dead
    letter (``raw`` is the event as consumed, for the dead letter's original bytes)."""
    if output.skipped:
        return SKIP
    messages: list[tuple[Route, str, bytes]] = [
        (Route.FUNCTION_CALL, c.key, encode(c)) for c in output.function_calls
    ]
    messages += [(Route.OUTGOING, r.key, encode(r)) for r in output.replies]
    answers = [r for r in output.replies if r.role == "assistant"]  # an operator's are no model turns
    if output.prompt_tokens or output.completion_tokens or answers:
        record = usage_event(
            event_id=event.event_id, application_id=event.application_id,
            chatbot_id=chatbot.chatbot_id, model=output.model, prompt_tokens=output.prompt_tokens,
            completion_tokens=output.completion_tokens,
            turns=sum(1 for r in answers if not r.is_error),
        )
        messages.append((Route.USAGE, event.application_id, encode(record)))
    letter = None
    if output.failure is not None:
        letter = dead_letter_for(raw, MODEL_FAILURE_STAGE, RuntimeError(output.failure), 1)
    return TurnPlan(messages=messages, write_state=True, dead_letter=letter)


def answer_seconds(output: TurnOutput, state: ConversationState, now: float) -> list[float]:
    """How long the user waited for each of the model's final replies in ``output``: from their
    message's ``created_at`` (in the history) to ``now`` (the ``parley_answer_seconds`` metric)."""
    asked = {m.get("id"): m.get("created_at") for m in state.history if m.get("role") == "user"}
    waits = []
    for reply in output.replies:
        at = asked.get(reply.in_reply_to)
        if reply.role == "assistant" and isinstance(at, int | float) and at > 0:
            waits.append(max(0.0, now - float(at)))
    return waits
