"""Server-side sessions: what a ``parley_session`` cookie stands for.

The cookie holds a random secret; the store keeps the session under the SHA-256 of that secret
(a copy of the store does not give anyone a session). Two stores, one shape: Redis (when
``PARLEY_REDIS_URL`` is set, so every gateway sees every session) and the document store's
``sessions`` collection otherwise. Unlike the config cache, the Redis store is the sessions'
source of truth: when it cannot answer it raises ``SessionStoreUnavailable`` (the API answers 503
``sessions_unavailable``) instead of reading as "not signed in" or dropping a new session unseen.
A session ends at its absolute expiry, after ``PARLEY_SESSION_IDLE_TIMEOUT_S`` without a request, on sign-out, and when its user's
``session_epoch`` moves on (sign-out everywhere, a password change, a reset).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pymongo.asynchronous.collection import AsyncCollection

__all__ = [
    "MongoSessions", "RedisSessions", "Session", "SessionStore", "SessionStoreUnavailable", "new_secret", "secret_digest",
]

#: Socket timeout of one session read or write in Redis.
REDIS_TIMEOUT_S = 1.0


class SessionStoreUnavailable(RuntimeError):
    """The session store did not answer: a cookie can be neither checked nor issued now."""


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
    async def ping(self) -> None:
        """Raise ``SessionStoreUnavailable`` unless the store answers now (checked before a
        write that would be lost if the new session then could not be stored)."""

    async def put(self, session: Session, ttl_s: float) -> None: ...
    async def get(self, session_id: str) -> Session | None: ...
    async def delete(self, session_id: str) -> None: ...
    async def purge(self, *, expired_before: float, idle_before: float) -> None:
        """Forget sessions past their absolute expiry or idle since before ``idle_before``."""

    async def close(self) -> None: ...


class RedisSessions:
    """Sessions in Redis: each key expires with its session."""

    def __init__(self, url: str, *, prefix: str = "parley:session:", timeout_s: float = REDIS_TIMEOUT_S) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._prefix = prefix

    async def _call(self, what: str, call: Any) -> Any:
        try:
            return await call
        except Exception as exc:  # noqa: BLE001 - any Redis failure: the store did not answer
            raise SessionStoreUnavailable(f"the session store (Redis) did not answer a {what}: {type(exc).__name__}") from exc

    async def ping(self) -> None:
        await self._call("check", self._redis.ping())

    async def put(self, session: Session, ttl_s: float) -> None:
        key = self._prefix + session.id
        await self._call("write", self._redis.set(key, json.dumps(session.as_dict()).encode(), px=max(1, int(ttl_s * 1000))))

    async def get(self, session_id: str) -> Session | None:
        raw = await self._call("read", self._redis.get(self._prefix + session_id))
        if raw is None:
            return None
        try:
            return Session.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            return None

    async def delete(self, session_id: str) -> None:
        await self._call("delete", self._redis.delete(self._prefix + session_id))

    async def purge(self, *, expired_before: float, idle_before: float) -> None:
        return None  # Redis expires each key with its session

    async def close(self) -> None:
        await self._redis.aclose()


class MongoSessions:
    """Sessions in the document store's ``sessions`` collection (an ended session is removed when
    read, and every sign-in purges the ended ones)."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self._collection = collection

    async def ping(self) -> None:
        return None  # the document store's own errors reach the caller of each operation

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

    async def close(self) -> None:
        return None  # the document store is closed by its owner
