"""Usage accounting: model tokens and turns per application, chatbot and hour.

The ``usage`` table holds, per application, a window per UTC hour (``2026-11-25T09``) with one
counter set per chatbot; windows older than ``PARLEY_USAGE_RETENTION_HOURS`` are dropped on the
next update. Events carry the id of the turn they count, and the last ids applied are kept in
the value, so a redelivered usage event is not counted twice.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from parley.records import UsageEvent

__all__ = ["apply_usage", "apply_usages", "hour_of", "usage_event"]

APPLIED_MEMORY = 1000


def hour_of(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H")


def usage_event(
    *, event_id: str, application_id: str, chatbot_id: str, model: str,
    prompt_tokens: int, completion_tokens: int, turns: int, at: float | None = None,
) -> UsageEvent:
    return UsageEvent(
        event_id=event_id, application_id=application_id, chatbot_id=chatbot_id, model=model or "",
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, turns=turns,
        at=time.time() if at is None else at,
    )


def apply_usage(value: Any, event: UsageEvent, retention_hours: int, now: float | None = None) -> tuple[dict[str, Any], bool]:
    """(new value, applied): add ``event`` to the application's hourly windows."""
    state, applied = apply_usages(value, [event], retention_hours, now)
    return state, bool(applied)


def apply_usages(
    value: Any, events: list[UsageEvent], retention_hours: int, now: float | None = None
) -> tuple[dict[str, Any], list[UsageEvent]]:
    """(new value, the events applied): add ``events`` (of one application, in order) to its
    hourly windows, skipping those already counted (by ``event_id``, also within ``events``).
    One copy of the value for the whole batch: the usage agent writes it once."""
    state: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
    applied_ids: list[str] = list(state.get("applied") or [])
    seen = set(applied_ids)
    hours: dict[str, Any] = {h: dict(bots) for h, bots in (state.get("hours") or {}).items()}
    applied: list[UsageEvent] = []
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        window = hours.setdefault(hour_of(event.at), {})
        counters = dict(window.get(event.chatbot_id) or {})
        counters["turns"] = int(counters.get("turns", 0)) + event.turns
        counters["prompt_tokens"] = int(counters.get("prompt_tokens", 0)) + event.prompt_tokens
        counters["completion_tokens"] = int(counters.get("completion_tokens", 0)) + event.completion_tokens
        window[event.chatbot_id] = counters
        applied_ids.append(event.event_id)
        applied.append(event)
    if not applied:
        return state, []
    oldest = hour_of((time.time() if now is None else now) - retention_hours * 3600)
    hours = {h: bots for h, bots in hours.items() if h >= oldest}
    return {"hours": dict(sorted(hours.items())), "applied": applied_ids[-APPLIED_MEMORY:]}, applied
