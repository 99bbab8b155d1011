"""Login throttling: sign-in attempts counted per account and per client address.

Counts live in the ``Cache`` port (Redis when configured, so every gateway counts together), as
counters that expire ``PARLEY_LOGIN_WINDOW_S`` after the first attempt of their window. An
attempt is counted *before* its password is checked, in one atomic step, so a thousand guesses
sent at once are not all checked while the count still reads zero: once a key's count passes its
limit, attempts are refused (even with the right password) until its window ends. A successful
sign-in takes its attempt back from the address (one address signing in many people, an office
behind one NAT, is not slowed by their successes) and clears the account's count; failures stay
counted. When the shared cache cannot answer, this process counts on its own.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from parley.ports import Cache
from parley.storage.cache import InMemoryCache

__all__ = ["LoginThrottle"]


class LoginThrottle:
    def __init__(
        self, cache: Cache, *, per_account: int, per_address: int, window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache = cache
        self._local = InMemoryCache(clock=clock)  # when the shared cache is down
        self._limits = {"acct": per_account, "addr": per_address}
        self._window_s = window_s

    @staticmethod
    def _key(kind: str, value: str) -> str:
        return f"parley:login:v2:{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"

    async def _add(self, key: str, by: int) -> tuple[int, float]:
        counted = await self._cache.incr(key, by, self._window_s)
        if counted is None:
            counted = await self._local.incr(key, by, self._window_s)
            assert counted is not None  # the in-process cache always answers
        return counted

    async def attempt(self, email: str, address: str) -> float | None:
        """Count a sign-in attempt of ``email`` from ``address``; None when it may go on, else
        the seconds until the window that refuses it ends (the attempt is then not counted)."""
        waits: list[float] = []
        counted: list[str] = []
        for kind, value in (("acct", email), ("addr", address)):
            key = self._key(kind, value)
            count, left = await self._add(key, 1)
            counted.append(key)
            if count > self._limits[kind]:
                waits.append(max(left, 0.001))
        if waits:
            for key in counted:  # a refused attempt checks no password: it does not count
                await self._add(key, -1)
            return max(waits)
        return None

    async def succeeded(self, email: str, address: str) -> None:
        """The attempt was the right password: the account starts afresh and the address gets
        its attempt back."""
        await self._cache.delete(self._key("acct", email))
        await self._local.delete(self._key("acct", email))
        await self._add(self._key("addr", address), -1)
