"""The generic webhook channel: any HTTP system that POSTs messages and takes replies at a
callback URL configured on the application."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import aiohttp

__all__ = ["DeliveryError", "post_callback", "reply_payload"]

logger = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """The callback did not accept the reply after every attempt."""


def reply_payload(reply: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "message_id": reply.event_id,
        "conversation_id": reply.conversation_id,
        "application_id": reply.application_id,
        "role": reply.role,
        "text": reply.text,
        "in_reply_to": reply.in_reply_to,
        "created_at": reply.created_at,
    }


async def post_callback(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    *,
    timeout_s: float,
    max_attempts: int,
    base_backoff_s: float = 0.25,
) -> None:
    """POST ``payload`` as JSON; retry connection errors, 429 and 5xx with backoff."""
    last_error = ""
    for attempt in range(1, max_attempts + 1):
        try:
            async with session.post(
                url, json=payload, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                if response.status < 300:
                    return
                last_error = f"HTTP {response.status}"
                if response.status < 500 and response.status != 429:
                    raise DeliveryError(f"callback {url} refused the reply: {last_error}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if attempt < max_attempts:
            delay = min(5.0, base_backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            logger.warning("callback %s failed (%s), retry %d in %.2fs", url, last_error, attempt, delay)
            await asyncio.sleep(delay)
    raise DeliveryError(f"callback {url} failed after {max_attempts} attempts: {last_error}")
