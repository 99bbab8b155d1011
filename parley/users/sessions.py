"""Server-side sessions: what a ``parley_session`` cookie stands for.

The cookie holds a random secret; the store keeps the session under the SHA-256 of that secret
(a copy of the store does not give anyone a session). Two stores, one shape: Redis (through the
``Cache`` port, when ``PARLEY_REDIS_URL`` is set, so every gateway sees every session) and the
document store's ``sessions`` collection otherwise. A session ends at its absolute expiry, after
``PARLEY_SESSION_IDLE_TIMEOUT_S`` without a request, on sign-out, and when its user's
``session_epoch`` moves on (sign-out everywhere, a password change, a reset).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

from parley.ports import Cache

__all__ = ["CacheSessions", "MongoSessions", "Session", "SessionStore", "new_secret", "secret_digest"]


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Session:
    id: str  #: the digest of the cookie's secret
    user_id: str
    csrf_token: str
    created_at: float
    last_seen: float
    expires_at: float  #: absolute expiry
    epoch: int  #: the user's session_epoch when it was made
    address: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Session:
        return cls(
            id=str(data["id"]), user_id=str(data["user_id"]), csrf_token=str(data["csrf_token"]),
            created_at=float(data["created_at"]), last_seen=float(data["last_seen"]),
            expires_at=float(data["expires_at"]), epoch=int(data["epoch"]), address=str(data.get("address", "")),
        )


class SessionStore(Protocol):
    async def put(self, session: Session, ttl_s: float) -> None: ...
    async def get(self, session_id: str) -> Session | None: ...
    async def delete(self, session_id: str) -> None: ...
    async def purge(self, *, expired_before: float, idle_before: float) -> None:
        """Forget sessions past their absolute expiry or idle since before ``idle_before``."""


class CacheSessions:
    """Sessions in Redis (the ``Cache`` port): each key expires with its session."""

    def __init__(self, cache: Cache, prefix: str = "parley:session:") -> None:
        self._cache = cache
        self._prefix = prefix

    async def put(self, session: Session, ttl_s: float) -> None:
        await self._cache.set(self._prefix + session.id, json.dumps(session.as_dict()).encode(), ttl_s)

    async def get(self, session_id: str) -> Session | None:
        raw = await self._cache.get(self._prefix + session_id)
        if raw is None:
            return None
        try:
            return Session.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            return None

    async def delete(self, session_id: str) -> None:
        await self._cache.delete(self._prefix + session_id)

    async def purge(self, *, expired_before: float, idle_before: float) -> None:
        return None  # Redis expires each key with its session


class MongoSessions:
    """Sessions in the document store's ``sessions`` collection (an ended session is removed when
    read, and every sign-in purges the ended ones)."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection

    async def put(self, session: Session, ttl_s: float) -> None:
        doc = {"_id": session.id, **session.as_dict()}
        await self._collection.replace_one({"_id": session.id}, doc, upsert=True)

    async def get(self, session_id: str) -> Session | None:
        doc = await self._collection.find_one({"_id": session_id})
        if doc is None:
            return None
        try:
            return Session.from_dict(doc)
        except (ValueError, KeyError, TypeError):
            return None

    async def delete(self, session_id: str) -> None:
        await self._collection.delete_one({"_id": session_id})

    async def purge(self, *, expired_before: float, idle_before: float) -> None:
        await self._collection.delete_many(
            {"$or": [{"expires_at": {"$lt": expired_before}}, {"last_seen": {"$lt": idle_before}}]}
        )
