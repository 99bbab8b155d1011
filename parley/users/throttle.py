"""Login throttling: failed sign-ins counted per account and per client address.

Counts live in the ``Cache`` port (Redis when configured, so every gateway counts together).
A key that reaches its limit within ``PARLEY_LOGIN_WINDOW_S`` is refused, even with the right
password, until the window that started with its first failure ends. A successful sign-in
clears the account's count (not the address's: one address guessing many accounts stays slow).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from parley.ports import Cache

__all__ = ["LoginThrottle"]


class LoginThrottle:
    def __init__(
        self, cache: Cache, *, per_account: int, per_address: int, window_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._cache = cache
        self._limits = {"acct": per_account, "addr": per_address}
        self._window_s = window_s
        self._clock = clock

    @staticmethod
    def _key(kind: str, value: str) -> str:
        return f"parley:login:{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"

    async def _read(self, key: str) -> tuple[int, float]:
        raw = await self._cache.get(key)
        if raw is None:
            return 0, 0.0
        try:
            data = json.loads(raw)
            return int(data["n"]), float(data["reset"])
        except (ValueError, KeyError, TypeError):
            return 0, 0.0

    async def retry_after(self, email: str, address: str) -> float | None:
        """Seconds until a sign-in of ``email`` from ``address`` may be tried, or None."""
        now = self._clock()
        waits = []
        for kind, value in (("acct", email), ("addr", address)):
            count, reset = await self._read(self._key(kind, value))
            if count >= self._limits[kind] and reset > now:
                waits.append(reset - now)
        return max(waits) if waits else None

    async def failed(self, email: str, address: str) -> None:
        now = self._clock()
        for kind, value in (("acct", email), ("addr", address)):
            key = self._key(kind, value)
            count, reset = await self._read(key)
            if reset <= now:
                count, reset = 0, now + self._window_s
            await self._cache.set(key, json.dumps({"n": count + 1, "reset": reset}).encode(), reset - now)

    async def succeeded(self, email: str) -> None:
        await self._cache.delete(self._key("acct", email))
