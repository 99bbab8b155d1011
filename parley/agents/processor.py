"""processor: incoming -> model -> outgoing (a reply) or function_call (a tool round).

What a turn's output becomes (which messages, in which order, the usage record, the dead letter
of a model failure) is decided by ``streams.turn_plan.plan_outputs``; this module loads what the
turn needs and carries the plan out.
"""

from __future__ import annotations

import logging
import time

import faust

from parley import metrics
from parley.agents.clients import Clients
from parley.agents.skeleton import dead_letter_sender, guarded_agent, produce_all
from parley.config.models import ChatbotConfig
from parley.records import IncomingEvent
from parley.settings import Settings
from parley.streams.codec import decode
from parley.streams.conversation import ConversationState
from parley.streams.deadletters import RawEvent
from parley.streams.keyed import KeyedRunner
from parley.streams.platform_files import fetch_platform_files
from parley.streams.turn_control import TurnControl, note_arrival
from parley.streams.turn_plan import Route, answer_seconds, fetches_platform_files, plan_outputs
from parley.streams.turns import TurnHandler
from parley.tables import Tables
from parley.topics import Topics

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: faust.App, topics: Topics, tables: Tables, runtime: Clients, settings: Settings) -> KeyedRunner:
    handler: TurnHandler | None = None
    control = TurnControl()
    send_dead_letter = dead_letter_sender(topics.dead_letters)
    topic_of = {
        Route.FUNCTION_CALL: topics.function_call, Route.OUTGOING: topics.outgoing, Route.USAGE: topics.usage,
    }

    async def process(raw: RawEvent) -> None:
        nonlocal handler
        if handler is None:
            handler = TurnHandler(runtime.model, runtime.tools, runtime.publish, control=control)
        event = decode(raw.value, IncomingEvent)
        app_config = await runtime.configs.application(event.application_id)
        chatbot = app_config.chatbot if app_config is not None else ChatbotConfig()
        state = ConversationState.from_value(tables.conversations.get(event.key))
        if fetches_platform_files(event, state):
            event.attachments = await fetch_platform_files(event, runtime.file_ports(), settings)
        output = await handler.handle(event, state, chatbot)
        plan = plan_outputs(raw, event, output, chatbot)
        if not plan.write_state:
            return
        await produce_all([(topic_of[route], key, value) for route, key, value in plan.messages])
        # State is written only once its outputs are on the broker: a crash before this line
        # repeats the turn (same ids), never loses its reply.
        tables.conversations[event.key] = state.to_value()
        for waited in answer_seconds(output, state, time.time()):
            metrics.ANSWER_SECONDS.observe(waited)
        if plan.dead_letter is not None:
            await send_dead_letter(plan.dead_letter)

    runner = KeyedRunner(settings.max_turns_in_flight, "processor")
    guarded_agent(
        app, topics.incoming, name="processor", handler=process, runner=runner,
        on_consumed=lambda raw: note_arrival(control, raw), dead_letters=topics.dead_letters, settings=settings,
    )
    return runner
