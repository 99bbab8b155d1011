"""The bus: ephemeral fan-out of token deltas and deliveries to the web gateways.

``InProcessBus`` when the worker and the gateway share a process (``parley dev``);
``RedisBus`` (Redis pub/sub) between processes. Subscribers get a bounded queue; a subscriber
that falls behind loses frames rather than slowing the publisher (finals are durable in the
archive, and a reconnecting client reads them from there).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson

from parley.frames import frame_text
from parley.ports import Bus

__all__ = ["Bus", "InProcessBus", "RedisBus", "Subscription", "conversation_channel"]

logger = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_SIZE = 1024


def conversation_channel(application_id: str, conversation_id: str) -> str:
    return f"parley:conv:{application_id}:{conversation_id}"


class Subscription:
    """A bounded queue of frames for one subscriber."""

    def __init__(self, maxsize: int = SUBSCRIBER_QUEUE_SIZE) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.dropped = 0

    def offer(self, frame: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def take_waiting(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` frames already in the queue, without waiting."""
        frames: list[dict[str, Any]] = []
        while len(frames) < limit and not self.queue.empty():
            frames.append(self.queue.get_nowait())
        return frames


class InProcessBus:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._subs.clear()

    async def publish(self, channel: str, frame: dict[str, Any]) -> None:
        for sub in tuple(self._subs.get(channel, ())):
            sub.offer(frame)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        sub = Subscription()
        self._subs[channel].add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]


class RedisBus:
    """Redis pub/sub: one connection for publishing, one pattern-free subscriber per process."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._local = InProcessBus()
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._reader = asyncio.create_task(self._read(), name="parley-redis-bus")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        await self._pubsub.aclose()
        await self._redis.aclose()

    async def publish(self, channel: str, frame: dict[str, Any]) -> None:
        try:
            await self._redis.publish(channel, frame_text(frame))
        except Exception as exc:  # noqa: BLE001 - the bus is best effort; finals are archived
            logger.warning("bus publish to %s failed: %s", channel, exc)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        async with self._lock:
            if channel not in self._local._subs:
                await self._pubsub.subscribe(channel)
        async with self._local.subscribe(channel) as sub:
            try:
                yield sub
            finally:
                async with self._lock:
                    if channel not in self._local._subs or len(self._local._subs[channel]) <= 1:
                        try:
                            await self._pubsub.unsubscribe(channel)
                        except Exception:  # noqa: BLE001
                            pass

    async def _read(self) -> None:
        backoff = 0.1
        while True:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
                if message is None:
                    continue
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else channel
                await self._local.publish(channel, orjson.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                logger.warning("bus read failed, retrying in %.1fs: %s", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
