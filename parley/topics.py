"""Every Parley topic. The conversation topics are keyed by the conversation key
(``parley.records.conversation_key``: application and conversation) and all topics share one
partition count, so a conversation is always handled by one worker, in order, co-partitioned
with its table.

Values travel as raw bytes and are decoded by the agents (``parley.streams.codec``): a payload
that does not decode is then dead-lettered with its original bytes instead of vanishing inside
Faust's deserializer.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust

from parley.records import ALL_TOPICS, DEAD_LETTERS, FUNCTION_CALL, INCOMING, OUTGOING, USAGE
from parley.settings import Settings

__all__ = ["ALL_TOPICS", "DEAD_LETTERS", "FUNCTION_CALL", "INCOMING", "OUTGOING", "USAGE", "Topics", "declare_topics"]

# The names themselves are part of the wire, with the records: ``parley.records``.


@dataclass(frozen=True)
class Topics:
    incoming: faust.TopicT  # IncomingEvent
    outgoing: faust.TopicT  # ReplyEvent
    function_call: faust.TopicT  # FunctionCallEvent
    dead_letters: faust.TopicT  # DeadLetter
    usage: faust.TopicT  # UsageEvent, keyed by application_id


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    def topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
            replicas=settings.topic_replicas,
        )

    return Topics(
        incoming=topic(INCOMING),
        outgoing=topic(OUTGOING),
        function_call=topic(FUNCTION_CALL),
        dead_letters=topic(DEAD_LETTERS),
        usage=topic(USAGE),
    )
