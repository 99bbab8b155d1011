"""persister: archives every message (incoming, function_call, outgoing) and delivers replies
to the websocket (over the bus) or to the application's callback URL (``streams.persist``).

Archive writes of all events in flight go out together in batches (``DocumentStore.archive``);
each event is acked only once its own documents are written.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

import faust

from parley.agents.clients import Clients
from parley.agents.skeleton import guarded_agent
from parley.records import ReplyEvent
from parley.settings import Settings
from parley.streams.deadletters import RawEvent
from parley.streams.delivery import deliver
from parley.streams.keyed import KeyedRunner
from parley.streams.persist import ArchiveWriter, persist
from parley.topics import FUNCTION_CALL, INCOMING, OUTGOING, Topics

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(app: faust.App, topics: Topics, runtime: Clients, settings: Settings) -> KeyedRunner:
    archived = app.topic(
        INCOMING, OUTGOING, FUNCTION_CALL,
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
    )
    writer: ArchiveWriter | None = None

    async def deliver_reply(reply: ReplyEvent, maybe_delivered: bool) -> None:
        await deliver(reply, runtime.delivery_ports(), settings, maybe_delivered=maybe_delivered)

    async def work_for(raw: RawEvent) -> None:
        nonlocal writer
        if writer is None:  # the runtime's clients exist once the app has started
            writer = ArchiveWriter(runtime.documents.archive, budget_s=settings.archive_retry_budget_s)
        await persist(raw, writer, deliver_reply)

    def topic_and_conversation(event: faust.EventT[Any], raw: RawEvent) -> Hashable:
        # Per topic and conversation: replies stay in order, and archiving a user message
        # never delays the delivery of a reply.
        return (raw.topic, event.key)

    runner = KeyedRunner(settings.max_turns_in_flight, "persister")
    guarded_agent(
        app, archived, name="persister", handler=work_for, runner=runner, key_of=topic_and_conversation,
        stage_of=lambda raw: f"persister.{raw.topic}", dead_letters=topics.dead_letters, settings=settings,
    )
    return runner
