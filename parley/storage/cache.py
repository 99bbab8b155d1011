"""The cache port and its adapters: ``InMemoryCache`` (one process) and ``RedisCache`` (shared).

A cache is an optimisation, never a source of truth: ``RedisCache`` never raises. When Redis is
down or slow, every call behaves like a miss (reads go to MongoDB), the failure is logged at most
once per ``log_every_s``, and after a failure reads and writes skip Redis for ``retry_after_s`` so a
dead Redis does not cost a socket timeout per call. Deletes are always attempted, because they
carry invalidations.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from parley.ports import Cache
from parley.settings import Settings

__all__ = ["Cache", "InMemoryCache", "RedisCache", "cache_from_settings"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 10_000


class InMemoryCache:
    """A bounded LRU map with per-entry expiry, for one process."""

    shared = False

    def __init__(
        self, max_entries: int = DEFAULT_MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self._max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if ttl_s <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (self._clock() + ttl_s, value)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max_entries:
            self._evict()

    async def add(self, key: str, value: bytes, ttl_s: float) -> None:
        if await self.get(key) is None:
            await self.set(key, value, ttl_s)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    async def incr(self, key: str, by: int, ttl_s: float) -> tuple[int, float] | None:
        now = self._clock()
        entry = self._entries.get(key)
        expires, count = (now + ttl_s, 0) if entry is None or entry[0] <= now else (entry[0], int(entry[1]))
        count += by
        self._entries[key] = (expires, str(count).encode())
        self._entries.move_to_end(key)
        if len(self._entries) > self._max_entries:
            self._evict()
        return count, expires - now

    async def close(self) -> None:
        self._entries.clear()

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)  # least recently used


class RedisCache:
    """Redis through ``redis.asyncio``, with short socket timeouts; never raises."""

    shared = True

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 0.5,
        retry_after_s: float = 1.0,
        log_every_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        self._redis: Any = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            # one immediate retry on a broken pooled connection (e.g. after a Redis restart);
            # a timeout is not retried, so one call costs at most ~2 x timeout_s
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self._retry_after_s = retry_after_s
        self._log_every_s = log_every_s
        self._clock = clock
        self._skip_until = 0.0
        self._last_logged: float | None = None
        self._suppressed = 0
        self._failing = False

    async def get(self, key: str) -> bytes | None:
        if self._skipping():
            return None
        try:
            value = await self._redis.get(key)
        except Exception as exc:  # noqa: BLE001 - a cache failure is a miss
            self._failed("get", exc)
            return None
        self._ok()
        return value if isinstance(value, bytes) or value is None else bytes(value)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if self._skipping():
            return
        try:
            await self._redis.set(key, value, px=max(1, int(ttl_s * 1000)))
        except Exception as exc:  # noqa: BLE001 - a cache failure is a miss
            self._failed("set", exc)
            return
        self._ok()

    async def add(self, key: str, value: bytes, ttl_s: float) -> None:
        if self._skipping():
            return
        try:
            await self._redis.set(key, value, px=max(1, int(ttl_s * 1000)), nx=True)
        except Exception as exc:  # noqa: BLE001 - a cache failure is a miss
            self._failed("set", exc)
            return
        self._ok()

    async def delete(self, key: str) -> None:
        try:
            await self._redis.delete(key)
        except Exception as exc:  # noqa: BLE001 - entries expire by TTL anyway
            self._failed("delete", exc)
            return
        self._ok()

    async def incr(self, key: str, by: int, ttl_s: float) -> tuple[int, float] | None:
        if self._skipping():
            return None
        try:
            async with self._redis.pipeline(transaction=True) as pipe:  # MULTI ... EXEC: one step
                pipe.set(key, 0, px=max(1, int(ttl_s * 1000)), nx=True)
                pipe.incrby(key, by)
                pipe.pttl(key)
                _, count, pttl = await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the caller falls back to its own count
            self._failed("incr", exc)
            return None
        self._ok()
        return int(count), max(0.0, int(pttl) / 1000)

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except Exception as exc:  # noqa: BLE001
            logger.debug("closing the redis cache: %s", exc)

    def _skipping(self) -> bool:
        return self._clock() < self._skip_until

    def _failed(self, op: str, exc: Exception) -> None:
        now = self._clock()
        self._failing = True
        self._skip_until = now + self._retry_after_s
        if self._last_logged is None or now - self._last_logged >= self._log_every_s:
            logger.warning(
                "redis cache %s failed (%s: %s); serving from the document store. "
                "%d similar errors since the last report; the next report comes in %.0f s at the earliest",
                op, type(exc).__name__, exc, self._suppressed, self._log_every_s,
            )
            self._last_logged = now
            self._suppressed = 0
        else:
            self._suppressed += 1

    def _ok(self) -> None:
        if self._failing:
            self._failing = False
            logger.info("redis cache reachable again")


def cache_from_settings(settings: Settings) -> Cache:
    """``RedisCache`` when ``PARLEY_REDIS_URL`` is set, else an ``InMemoryCache``."""
    if settings.redis_url:
        return RedisCache(settings.redis_url)
    return InMemoryCache()
