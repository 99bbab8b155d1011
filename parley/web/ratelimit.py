"""Token buckets for the websocket gateway: per connection and per application.

A bucket holds up to ``capacity`` tokens and gains ``rate_per_s`` tokens a second; a frame
takes one. A frame that finds no token is refused with the seconds until one is available.
Buckets are in-process: each gateway process limits on its own, so with N gateways an
application may reach N times its per-application limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

__all__ = ["TokenBucket", "ApplicationBuckets", "admit", "per_minute_bucket", "MAX_APPLICATION_BUCKETS"]

#: Per-application buckets kept per process; the least recently used is forgotten first.
MAX_APPLICATION_BUCKETS = 10_000

Clock = Callable[[], float]


class TokenBucket:
    def __init__(self, rate_per_s: float, capacity: float, now: float) -> None:
        if rate_per_s <= 0 or capacity < 1:
            raise ValueError(f"a bucket needs a positive rate and a capacity >= 1, got {rate_per_s}, {capacity}")
        self.rate_per_s = rate_per_s
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:
            self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.rate_per_s)
            self._at = now

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0: one is available now)."""
        self._refill(now)
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate_per_s

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def reconfigure(self, rate_per_s: float, capacity: float, now: float) -> None:
        """Apply a changed limit (an admin edit), keeping the tokens the bucket has."""
        if (rate_per_s, float(capacity)) != (self.rate_per_s, self.capacity):
            self._refill(now)
            self.rate_per_s, self.capacity = rate_per_s, float(capacity)
            self.tokens = min(self.tokens, self.capacity)


def per_minute_bucket(per_minute: float, burst: float, now: float) -> TokenBucket | None:
    """A bucket allowing ``per_minute`` frames a minute after a burst of ``burst``; None when
    ``per_minute`` is 0 (unlimited)."""
    if per_minute <= 0:
        return None
    return TokenBucket(per_minute / 60.0, max(1.0, burst), now)


class ApplicationBuckets:
    """One bucket per application, allowing ``per_minute`` messages with a burst of a minute's
    worth. Memory is bounded: at most ``max_entries`` buckets, least recently used evicted (a
    forgotten bucket comes back full, which only ever errs towards admitting)."""

    def __init__(self, max_entries: int = MAX_APPLICATION_BUCKETS, clock: Clock = time.monotonic) -> None:
        self.max_entries = max_entries
        self.clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def bucket(self, application_id: str, per_minute: float) -> TokenBucket | None:
        """The application's bucket at its current limit; None when it is unlimited."""
        if per_minute <= 0:
            self._buckets.pop(application_id, None)
            return None
        now = self.clock()
        capacity = max(1.0, per_minute)
        bucket = self._buckets.get(application_id)
        if bucket is None:
            bucket = TokenBucket(per_minute / 60.0, capacity, now)
            self._buckets[application_id] = bucket
            while len(self._buckets) > self.max_entries:
                self._buckets.popitem(last=False)
        else:
            bucket.reconfigure(per_minute / 60.0, capacity, now)
            self._buckets.move_to_end(application_id)
        return bucket


def admit(buckets: Iterable[TokenBucket | None], now: float) -> float:
    """Take a token from every bucket if each has one, and return 0; otherwise take none and
    return the seconds to wait (the longest of the buckets' waits)."""
    limited = [b for b in buckets if b is not None]
    retry_after = max((b.wait(now) for b in limited), default=0.0)
    if retry_after > 0:
        return retry_after
    for b in limited:
        b.take(now)
    return 0.0
