"""usage: counts model tokens and turns per application, chatbot and hour (``usage`` table).

Usage is cheap per event and costly per table write (the value holds the ids of the last
events counted): the events of an application waiting to be counted are counted together and
written once (``guarded_batch_agent``), then acked.
"""

from __future__ import annotations

import faust

from parley import metrics
from parley.agents.skeleton import guarded_batch_agent
from parley.records import UsageEvent
from parley.settings import Settings
from parley.streams.codec import decode
from parley.streams.keyed import KeyedBatcher
from parley.streams.usage import apply_usages
from parley.tables import Tables
from parley.topics import Topics

__all__ = ["USAGE_BATCH_WAIT_S", "register"]

#: How long an application's first usage event waits for others to count with it (no client
#: waits for a count; at 1,000 turns/s this makes batches of ~20).
USAGE_BATCH_WAIT_S = 0.02


def register(app: faust.App, topics: Topics, tables: Tables, settings: Settings) -> KeyedBatcher:
    async def count(usage_events: list[UsageEvent]) -> None:
        by_application: dict[str, list[UsageEvent]] = {}
        for event in usage_events:
            by_application.setdefault(event.application_id, []).append(event)
        for application_id, events in by_application.items():
            value, applied = apply_usages(tables.usage.get(application_id), events, settings.usage_retention_hours)
            if not applied:
                continue
            tables.usage[application_id] = value
            for event in applied:
                labels = (event.application_id, event.chatbot_id)
                metrics.USAGE_TURNS.labels(*labels).inc(event.turns)
                metrics.USAGE_TOKENS.labels(*labels, "prompt").inc(event.prompt_tokens)
                metrics.USAGE_TOKENS.labels(*labels, "completion").inc(event.completion_tokens)

    # Keyed by application (the topic's key): one application's events are counted in order.
    batcher = KeyedBatcher(settings.max_turns_in_flight, "usage", max_wait_s=USAGE_BATCH_WAIT_S)
    guarded_batch_agent(
        app, topics.usage, name="usage", decode=lambda raw: decode(raw.value, UsageEvent), handler=count, batcher=batcher,
        dead_letters=topics.dead_letters, settings=settings,
    )
    return batcher
