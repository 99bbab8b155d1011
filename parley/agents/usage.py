"""usage: counts model tokens and turns per application, chatbot and hour (``usage`` table)."""

from __future__ import annotations

import faust

from parley import metrics
from parley.agents import produce, raw_event
from parley.records import DeadLetter, UsageEvent
from parley.settings import Settings
from parley.streams.codec import decode, encode
from parley.streams.deadletters import RawEvent, guarded
from parley.streams.usage import apply_usage
from parley.tables import Tables
from parley.topics import Topics

__all__ = ["register"]


def register(app: faust.App, topics: Topics, tables: Tables, settings: Settings) -> None:
    async def send_dead_letter(letter: DeadLetter) -> None:
        await produce(topics.dead_letters, letter.key or letter.dead_letter_id, encode(letter))

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

    @app.agent(topics.usage, name="parley.usage")
    async def usage(stream: faust.StreamT) -> None:
        # One application's events are applied in order; usage is cheap, so no keyed runner.
        async for event in stream.events():
            raw = raw_event(event)
            await guarded("usage", raw, lambda: count(raw), send_dead_letter,
                          max_attempts=settings.handler_max_attempts)
