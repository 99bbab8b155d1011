"""Waiting out an outage: bounded retries with capped exponential backoff, and warnings that
say once per interval what hundreds of callers would each say.

``store_outage`` tells a store that did not answer (retry later) from a request it refused
(retrying cannot help).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo import errors as mongo_errors

__all__ = ["ThrottledLog", "backoff_delay", "retry_while", "store_outage"]

T = TypeVar("T")

#: PyMongo's errors that mean "the store did not answer" (down, unreachable, overloaded).
_OUTAGES = (
    mongo_errors.AutoReconnect,  # ConnectionFailure, NetworkTimeout, NotPrimaryError...
    mongo_errors.ConnectionFailure,
    mongo_errors.ServerSelectionTimeoutError,
    mongo_errors.WaitQueueTimeoutError,
    mongo_errors.ExecutionTimeout,
    TimeoutError,
    ConnectionError,
)


def store_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the document store did not answer in time (retry later), as
    opposed to refusing the request."""
    if isinstance(exc, mongo_errors.PyMongoError) and exc.timeout:
        return True
    return isinstance(exc, _OUTAGES)


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Delay before retry ``attempt`` (1-based): doubling from ``base_s`` up to ``max_s``, with
    jitter (half to all of it) so callers that failed together do not retry together."""
    delay = min(max_s, base_s * 2 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)


async def retry_while(
    operation: Callable[[], Awaitable[T]],
    transient: Callable[[BaseException], bool],
    *,
    budget_s: float,
    base_s: float = 0.1,
    max_s: float = 5.0,
    on_retry: Callable[[BaseException, float], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Run ``operation`` until it succeeds, retrying failures that ``transient`` accepts for at
    most ``budget_s`` seconds; the last failure (or a non-transient one) is raised."""
    deadline = clock() + budget_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not transient(exc):
                raise
            delay = backoff_delay(attempt, base_s, max_s)
            if clock() + delay > deadline:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            await sleep(delay)


class ThrottledLog:
    """At most one warning per ``every_s`` for one kind of failure, saying how many were held
    back: a thousand sockets failing together make one line, not a thousand tracebacks."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._every_s = every_s
        self._clock = clock
        self._last: float | None = None
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._every_s:
            self._held += 1
            return
        held, self._held, self._last = self._held, 0, now
        suffix = f" ({held} more like this in the last {self._every_s:g}s)" if held else ""
        self._logger.warning(message + suffix, *args)
