"""Small pieces the ops commands share: errors, times, text tables, the service URLs they need."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from parley.settings import Settings

__all__ = [
    "OpsError",
    "parse_time",
    "format_time",
    "one_line",
    "render_table",
    "require_services",
    "validate_id",
]


class OpsError(RuntimeError):
    """A failure the operator can act on; the CLI prints the message and exits 1."""


def require_services(settings: Settings) -> tuple[str, str]:
    """The Kafka and MongoDB URLs, or an error naming the variables to set."""
    missing = [name for name in ("kafka_url", "mongo_url") if getattr(settings, name) is None]
    if missing:
        env = " and ".join(f"PARLEY_{m.upper()}" for m in missing)
        raise OpsError(
            f"set {env}: the broker and the document server the workers use (for "
            "`parley dev`, the URLs it prints at start)"
        )
    assert settings.kafka_url is not None and settings.mongo_url is not None
    return settings.kafka_url, settings.mongo_url


def parse_time(text: str) -> float:
    """An ISO 8601 time as epoch seconds. Times without an offset are UTC.

    >>> parse_time("2025-01-02T03:04:05Z")
    1735787045.0
    """
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 time; write e.g. 2025-01-31T14:00:00Z or 2025-01-31"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def format_time(epoch_s: float | None) -> str:
    """Epoch seconds as ``2025-01-02T03:04:05Z`` (UTC, to the second); ``-`` for None."""
    if epoch_s is None:
        return "-"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def one_line(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters (an ellipsis marks the cut)."""
    flat = " ".join(str(text).split())
    if limit <= 0:
        return ""
    if len(flat) <= limit:
        return flat
    return flat[: max(0, limit - 1)] + "…"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table: left-aligned columns separated by two spaces, no trailing spaces."""
    widths = [len(h) for h in headers]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, the table {len(headers)} columns: {row!r}")
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in [list(headers), *rows]:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)


_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def validate_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-128 characters of letters, digits and . _ : - "
            "(starting with a letter or digit)"
        )
    return value
