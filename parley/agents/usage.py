"""usage: counts model tokens and turns per application, chatbot and hour (``usage`` table)."""

from __future__ import annotations

import faust

from parley import metrics
from parley.agents.skeleton import guarded_agent
from parley.records import UsageEvent
from parley.settings import Settings
from parley.streams.codec import decode
from parley.streams.deadletters import RawEvent
from parley.streams.usage import apply_usage
from parley.tables import Tables
from parley.topics import Topics

__all__ = ["register"]


def register(app: faust.App, topics: Topics, tables: Tables, settings: Settings) -> None:
    async def count(raw: RawEvent) -> None:
        event = decode(raw.value, UsageEvent)
        value, applied = apply_usage(tables.usage.get(event.application_id), event, settings.usage_retention_hours)
        if not applied:
            return
        tables.usage[event.application_id] = value
        labels = (event.application_id, event.chatbot_id)
        metrics.USAGE_TURNS.labels(*labels).inc(event.turns)
        metrics.USAGE_TOKENS.labels(*labels, "prompt").inc(event.prompt_tokens)
        metrics.USAGE_TOKENS.labels(*labels, "completion").inc(event.completion_tokens)

    # One application's events are applied in order; usage is cheap, so no keyed runner: each
    # event is handled inline.
    guarded_agent(
        app, topics.usage, name="usage", handler=count, dead_letters=topics.dead_letters, settings=settings,
    )
