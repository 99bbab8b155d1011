"""Run a handler with bounded retries; what still fails becomes a ``DeadLetter``.

Faust acks an event even when the agent body raises, and the agent then pauses while its
supervisor restarts it. Every handler therefore runs through ``guarded``: transient failures
are retried with backoff, a ``DecodeError`` (or any error marked ``permanent``) is never retried, and the final failure is sent to
``dead-letters`` with the original bytes and the error. ``guarded`` itself never raises.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from parley import metrics
from parley.records import DeadLetter
from parley.redact import scrub
from parley.retry import backoff_delay
from parley.streams.codec import DecodeError

__all__ = ["RawEvent", "guarded", "dead_letter_for"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawEvent:
    """Where an event came from and its bytes, as the dead-letter record needs them."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def dead_letter_for(raw: RawEvent, stage: str, exc: BaseException, attempts: int) -> DeadLetter:
    return DeadLetter(
        dead_letter_id=str(uuid.uuid4()),
        stage=stage,
        error=scrub(str(exc)) or type(exc).__name__,  # no URL credentials, no known secret
        error_type=type(exc).__name__,
        topic=raw.topic,
        partition=raw.partition,
        offset=raw.offset,
        key=(raw.key or b"").decode("utf-8", "replace"),
        original_b64=base64.b64encode(raw.value or b"").decode("ascii"),
        failed_at=time.time(),
        attempts=attempts,
    )


async def guarded(
    stage: str,
    raw: RawEvent,
    handler: Callable[[], Awaitable[None]],
    send_dead_letter: Callable[[DeadLetter], Awaitable[None]],
    *,
    max_attempts: int,
    base_backoff_s: float = 0.2,
    max_backoff_s: float = 5.0,
) -> bool:
    """Run ``handler``; return True on success, False when the event was dead-lettered."""
    attempt = 0
    started = time.perf_counter()
    while True:
        attempt += 1
        try:
            await handler()
            metrics.HANDLER_SECONDS.labels(stage).observe(time.perf_counter() - started)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is retried or dead-lettered
            permanent = isinstance(exc, DecodeError) or getattr(exc, "permanent", False) is True
            final = permanent or attempt >= max_attempts
            if not final:
                delay = backoff_delay(attempt, base_backoff_s, max_backoff_s)
                logger.warning(
                    "%s: attempt %d/%d failed for %s[%d]@%d: %s; retrying in %.2fs",
                    stage, attempt, max_attempts, raw.topic, raw.partition, raw.offset, scrub(str(exc)), delay,
                )
                await asyncio.sleep(delay)
                continue
            logger.error(
                "%s: dead-lettering %s[%d]@%d after %d attempt(s): %s: %s",
                stage, raw.topic, raw.partition, raw.offset, attempt, type(exc).__name__, scrub(str(exc)),
            )
            metrics.DEAD_LETTERS.labels(stage).inc()
            await _send_with_retry(send_dead_letter, dead_letter_for(raw, stage, exc, attempt))
            return False


async def _send_with_retry(
    send: Callable[[DeadLetter], Awaitable[None]], letter: DeadLetter, attempts: int = 5
) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await send(letter)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            logger.error("could not produce dead letter (attempt %d): %s", attempt, exc)
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
    logger.critical("dead letter lost after %d attempts: %r", attempts, letter.asdict())
