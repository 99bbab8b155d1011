"""Login throttling: sign-in attempts counted per account and per client address.

Counts live in the ``Cache`` port when it is shared (Redis, so every gateway counts together),
as counters that expire ``PARLEY_LOGIN_WINDOW_S`` after the first attempt of their window; with
an in-process cache, or while Redis cannot answer, this process counts on its own (in a map of
its own, which no other cache traffic evicts). An attempt is counted *before* its password is
checked, in one atomic step, so a thousand guesses sent at once are not all checked while the
count still reads zero: once a key's count passes its limit, attempts are refused (even with the
right password) until its window ends. A successful sign-in takes its attempt back from the
address (one address signing in many people, an office behind one NAT, is not slowed by their
successes) and clears the account's count; an attempt whose check could not run (the document
store failed) is taken back from both; failures stay counted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from parley.ports import Cache
from parley.storage.cache import InMemoryCache

__all__ = ["Attempt", "LoginThrottle"]

#: Counters this process keeps on its own (least recently used dropped beyond this).
LOCAL_ENTRIES = 100_000


@dataclass
class Attempt:
    """One counted sign-in attempt: refused (``refused_for`` seconds until its window ends) or
    allowed, and then taken back or marked a success."""

    throttle: LoginThrottle
    email_key: str
    address_key: str
    refused_for: float | None = None
    #: where each counted +1 landed (the shared cache or this process's map): a take-back goes there
    counted: list[tuple[str, Cache]] = field(default_factory=list)

    async def take_back(self) -> None:
        for key, store in self.counted:
            await self.throttle.add(key, -1, store)
        self.counted = []

    async def succeeded(self) -> None:
        """The right password: the account starts afresh, the address gets its attempt back."""
        for key, store in self.counted:
            if key == self.email_key:
                await store.delete(key)
        self.counted = [(key, store) for key, store in self.counted if key == self.address_key]
        await self.take_back()


class LoginThrottle:
    def __init__(
        self, cache: Cache, *, per_account: int, per_address: int, window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._local = InMemoryCache(max_entries=LOCAL_ENTRIES, clock=clock)
        self._shared: Cache | None = cache if cache.shared else None
        self._limits = {"acct": per_account, "addr": per_address}
        self._window_s = window_s

    @staticmethod
    def _key(kind: str, value: str) -> str:
        return f"parley:login:v2:{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"

    async def add(self, key: str, by: int, store: Cache | None = None) -> tuple[int, float, Cache]:
        """Add ``by`` to ``key``'s counter in ``store`` (default: the shared cache, else this
        process's map): (count, seconds left in its window, the store that counted)."""
        stores = [store] if store is not None else [s for s in (self._shared, self._local) if s is not None]
        for candidate in stores:
            counted = await candidate.incr(key, by, self._window_s)
            if counted is not None:
                return counted[0], counted[1], candidate
        return 0, 0.0, stores[-1]  # only a take-back in a shared cache that went away since

    async def attempt(self, email: str, address: str) -> Attempt:
        """Count a sign-in attempt of ``email`` from ``address``. A refused attempt is not
        counted (it checks no password)."""
        attempt = Attempt(self, self._key("acct", email), self._key("addr", address))
        waits: list[float] = []
        for kind, key in (("acct", attempt.email_key), ("addr", attempt.address_key)):
            count, left, store = await self.add(key, 1)
            attempt.counted.append((key, store))
            if count > self._limits[kind]:
                waits.append(max(left, 0.001))
        if waits:
            await attempt.take_back()
            attempt.refused_for = max(waits)
        return attempt
