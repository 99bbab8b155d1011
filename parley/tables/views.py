"""Read-only views of the state tables, for data engineers and ops (HTTP and CLI).

A key lives on the worker that owns its partition. ``owner_url`` finds that worker from the
group's assignment (Faust shares each member's advertised URL), so any worker can answer by
forwarding. The partition of a key is computed as the producers compute it for the
conversation topics (murmur2 of the raw key bytes), which is where the table's entries live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka.partitioner import DefaultPartitioner

__all__ = ["TABLE_VIEWS", "TableView", "key_partition", "owner_url", "local_get", "local_scan"]


@dataclass(frozen=True)
class TableView:
    """A queryable view: the Faust table it reads and how a value is shown."""

    table: str
    describe: str
    project: Callable[[Any], Any]


def _conversation(value: Any) -> Any:
    return value


def _seen_events(value: Any) -> Any:
    return {"applied_event_ids": list((value or {}).get("applied") or [])}


def _usage(value: Any) -> Any:
    return {"hours": (value or {}).get("hours") or {}}


TABLE_VIEWS: dict[str, TableView] = {
    "usage": TableView("usage", "model tokens and turns per chatbot and UTC hour, keyed by application", _usage),
    "conversations": TableView("conversations", "history, summary, tool round and queue of a conversation, keyed by application_id/conversation_id", _conversation),
    "seen-events": TableView("conversations", "event ids already applied to a conversation (dedup), keyed by application_id/conversation_id", _seen_events),
}

_partitioner = DefaultPartitioner()


def key_partition(key: str, partitions: int) -> int:
    all_partitions = list(range(partitions))
    return int(_partitioner(key.encode("utf-8"), all_partitions, all_partitions))


def _changelog_topic(app: faust.App, table_name: str) -> str:
    return str(app.tables[table_name].changelog_topic.get_topic_name())


def owner_url(app: faust.App, table_name: str, key: str, partitions: int) -> str | None:
    """The advertised URL of the worker that holds ``key`` (None before the first assignment)."""
    topic = _changelog_topic(app, table_name)
    partition = key_partition(key, partitions)
    for url, assignment in app.router.table_metadata(table_name).items():
        if partition in assignment.get(topic, ()):
            return str(url)
    return None


def owns(app: faust.App, table_name: str, key: str, partitions: int) -> bool:
    topic = _changelog_topic(app, table_name)
    partition = key_partition(key, partitions)
    return any(tp.topic == topic and tp.partition == partition for tp in app.assignor.assigned_actives())


def local_get(app: faust.App, view: TableView, key: str) -> tuple[bool, Any]:
    table = app.tables[view.table]
    assert isinstance(table, faust.Table)
    value = table.get(key)
    return value is not None, (view.project(value) if value is not None else None)


def local_scan(app: faust.App, view: TableView, prefix: str, limit: int) -> list[dict[str, Any]]:
    table = app.tables[view.table]
    assert isinstance(table, faust.Table)
    rows = []
    for key, value in table.items():
        if isinstance(key, str) and key.startswith(prefix):
            rows.append({"key": key, "value": view.project(value)})
            if len(rows) >= limit:
                break
    return rows


def members(app: faust.App, table_name: str) -> list[str]:
    return sorted(str(url) for url in app.router.table_metadata(table_name))
