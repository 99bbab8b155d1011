"""The audit log: one ``audit`` document per write, newest first, secrets redacted.

An entry says who (the principal: user, credential, role), what (``action`` on ``kind``
``target_id``), when (``at``), which applications it concerns (``application_ids``, for
filtering by scope), the document before and after (write-only fields replaced by ``***``) and
from which address. Ids sort by time (``<ms since epoch>-<random>``), so the id is the cursor.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from parley.redact import MASK

__all__ = ["AuditLog", "redact_document"]

#: The field the document store's TTL index removes entries by (only entries written with a
#: retention carry it).
EXPIRES = "expires_at"

#: a field is masked (at any depth) when its name is one of these, or its last ``_`` part is
#: one of ``_SECRET_ENDINGS``, or it contains "password" or "secret"
_SECRET_NAMES = frozenset({"channels", "secret"})
_SECRET_ENDINGS = frozenset({"secret", "password", "token", "key", "hash", "credential", "credentials"})
_CURSOR = re.compile(r"^\d{13}-[0-9a-f]{8}$")


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    if lowered.endswith("_set"):  # secret_set, channels_set: whether one is set, not what it is
        return False
    return (
        lowered in _SECRET_NAMES or lowered.rsplit("_", 1)[-1] in _SECRET_ENDINGS
        or "password" in lowered or "secret" in lowered
    )


def redact_document(doc: Any) -> Any:
    """A copy of ``doc`` with every secret-looking field's value replaced by ``***`` (the names
    stay, so an entry still says a secret was set or changed)."""
    if isinstance(doc, dict):
        out: dict[str, Any] = {}
        for name, value in doc.items():
            if _secret_name(str(name)):
                out[str(name)] = _mask(value)
            else:
                out[str(name)] = redact_document(value)
        return out
    if isinstance(doc, list):
        return [redact_document(v) for v in doc]
    if isinstance(doc, datetime):
        return doc.isoformat()
    return doc


def _mask(value: Any) -> Any:
    if isinstance(value, dict):  # channels: keep the channel names, hide every value
        return {str(k): _mask(v) for k, v in value.items()}
    if value is None or isinstance(value, bool):
        return value
    return MASK


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """``retention_days`` > 0: each entry carries the time it expires and the document store's
    TTL index removes it then (``PARLEY_AUDIT_RETENTION_DAYS``); 0 keeps entries for good."""

    def __init__(
        self, collection: AsyncCollection[dict[str, Any]], clock: Callable[[], float] = time.time,
        *, retention_days: int = 0,
    ) -> None:
        self._collection = collection
        self._clock = clock
        self._retention_s = retention_days * 86400.0

    async def start(self) -> None:
        await self._collection.create_index([("application_ids", ASCENDING), ("_id", DESCENDING)])
        await self._collection.create_index([(EXPIRES, ASCENDING)], expireAfterSeconds=0)

    async def append(
        self, *, actor: dict[str, Any], action: str, kind: str, target_id: str,
        application_ids: list[str], before: Any = None, after: Any = None, address: str = "",
        method: str = "", path: str = "",
    ) -> dict[str, Any]:
        now = self._clock()
        entry = {
            "_id": f"{int(now * 1000):013d}-{secrets.token_hex(4)}",
            "at": _iso(now),
            "actor": actor,
            "action": action,
            "kind": kind,
            "target_id": target_id,
            "application_id": application_ids[0] if len(application_ids) == 1 else None,
            "application_ids": sorted(set(application_ids)),
            "before": redact_document(before),
            "after": redact_document(after),
            "address": address,
            "request": {"method": method, "path": path},
        }
        stored = dict(entry)
        if self._retention_s:
            stored[EXPIRES] = datetime.fromtimestamp(now + self._retention_s, UTC)
        await self._collection.insert_one(stored)
        return entry

    async def list(
        self, *, scope: frozenset[str] | None, everything: bool, actor: str | None = None,
        application_id: str | None = None, kind: str | None = None, action: str | None = None,
        since: float | None = None, until: float | None = None, limit: int = 50, cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Entries newest first. ``everything``: no scope filter (owners); otherwise only entries
        about applications in ``scope`` (None: entries about any application)."""
        query: dict[str, Any] = {}
        clauses: list[dict[str, Any]] = []
        if not everything:
            clauses.append({"application_ids": {"$ne": []}} if scope is None else {"application_ids": {"$in": sorted(scope)}})
        if application_id:
            clauses.append({"application_ids": application_id})
        if actor:
            clauses.append({"$or": [{"actor.email": actor.lower()}, {"actor.user_id": actor}]})
        if kind:
            clauses.append({"kind": kind})
        if action:
            clauses.append({"action": action})
        id_range: dict[str, str] = {}
        if since is not None:
            id_range["$gte"] = f"{int(since * 1000):013d}"
        if until is not None:
            id_range["$lt"] = f"{int(until * 1000):013d}"
        if cursor:
            id_range["$lt"] = min(cursor, id_range.get("$lt", cursor))
        if id_range:
            clauses.append({"_id": id_range})
        if clauses:
            query = {"$and": clauses} if len(clauses) > 1 else clauses[0]
        rows = self._collection.find(query, {EXPIRES: 0})  # the TTL field is the store's, not the API's
        found = [doc async for doc in rows.sort("_id", DESCENDING).limit(limit + 1)]
        more = len(found) > limit
        found = found[:limit]
        items = [{"id": doc.pop("_id"), **doc} for doc in found]
        return items, (items[-1]["id"] if more and items else None)

    @staticmethod
    def valid_cursor(cursor: str) -> bool:
        return bool(_CURSOR.match(cursor))
