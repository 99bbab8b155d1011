"""Faust tables: conversation state (co-partitioned with the conversation topics)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust

from parley.settings import Settings

__all__ = ["Tables", "declare_tables"]


@dataclass(frozen=True)
class Tables:
    conversations: faust.Table  # conversation key (application_id/conversation_id) -> ConversationState.to_value()
    usage: faust.Table  # application_id -> hourly usage windows (parley.streams.usage)


def _table(app: faust.App, name: str, **options: Any) -> faust.Table:
    table = app.Table(name, **options)
    assert isinstance(table, faust.Table)
    return table


def declare_tables(app: faust.App, settings: Settings) -> Tables:
    return Tables(
        conversations=_table(app,
            "conversations",
            default=None,
            partitions=settings.topic_partitions,
            # JSON on the changelog, never pickle.
            # (No key/value *types*: plain JSON. ``value_type=dict`` makes changelog recovery fail,
            # as Faust calls ``dict.from_data`` on every record it restores.)
            schema=faust.Schema(key_serializer="json", value_serializer="json"),
            help="Recent history and dedup state of each conversation.",
        ),
        usage=_table(app,
            "usage",
            default=None,
            partitions=settings.topic_partitions,
            schema=faust.Schema(key_serializer="json", value_serializer="json"),
            help="Model usage per application, chatbot and hour.",
        ),
    )
