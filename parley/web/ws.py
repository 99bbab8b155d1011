"""``GET /ws``: the chat websocket. Protocol: docs/websocket-protocol.md.

Every client frame is validated; a bad one gets an ``error`` frame and the socket stays open.
Replies reach the socket over the bus: ``delta`` frames while the model streams, then the final
``message`` (delivered by the persister after archiving).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from parley import metrics
from parley.storage.bus import conversation_channel
from parley.web.ingress import IngressUnavailable, user_event
from parley.web.keys import INGRESS, RUNTIME, SETTINGS, SOCKETS
from parley.web.validation import InputError, parse_json_object, require_id, require_text

__all__ = ["websocket_handler"]

logger = logging.getLogger(__name__)

HEARTBEAT_S = 30.0


class _Session:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.runtime = request.app[RUNTIME]
        self.settings = request.app[SETTINGS]
        self.ingress = request.app[INGRESS]
        self.application_id: str | None = None
        self.conversation_id: str | None = None
        self._forwarder: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, frame: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        async with self._send_lock:
            try:
                await self.ws.send_json(frame)
            except (ConnectionResetError, RuntimeError) as exc:
                logger.debug("websocket send failed: %s", exc)

    async def on_text(self, data: str) -> None:
        if len(data.encode("utf-8")) > self.settings.max_text_bytes * 4 + 4096:
            raise InputError("too_large", "frame is larger than the limit", status=413)
        frame = parse_json_object(data)
        kind = frame.get("type")
        if kind == "hello":
            await self.on_hello(frame)
        elif kind == "message":
            await self.on_message(frame)
        elif kind == "ping":
            await self.send({"type": "pong"})
        else:
            raise InputError("unknown_type", f"unknown frame type {kind!r}; expected hello, message or ping")

    async def on_hello(self, frame: dict[str, Any]) -> None:
        application_id = require_id(frame, "application_id")
        conversation_id = require_id(frame, "conversation_id")
        if await self.runtime.configs.application(application_id) is None:
            raise InputError("unknown_application", f"no application {application_id!r}", status=404)
        await self._stop_forwarding()
        self.application_id, self.conversation_id = application_id, conversation_id
        ready = asyncio.Event()
        self._forwarder = asyncio.create_task(self._forward(ready))
        await ready.wait()
        await self.send({"type": "ready", "application_id": application_id, "conversation_id": conversation_id})

    async def on_message(self, frame: dict[str, Any]) -> None:
        if self.application_id is None or self.conversation_id is None:
            raise InputError("not_ready", "send a hello frame before messages")
        client_id = require_id(frame, "id")
        text = require_text(frame, "text", self.settings.max_text_bytes)
        event = user_event(
            application_id=self.application_id,
            conversation_id=self.conversation_id,
            channel="websocket",
            client_message_id=client_id,
            text=text,
            sender=str(frame.get("sender") or ""),
        )
        try:
            await self.ingress.submit(event)
        except IngressUnavailable as exc:
            raise InputError("unavailable", f"{exc}; retry with the same id", status=503) from exc
        await self.send({"type": "ack", "id": client_id, "event_id": event.event_id})

    async def _forward(self, ready: asyncio.Event) -> None:
        assert self.application_id is not None and self.conversation_id is not None
        channel = conversation_channel(self.application_id, self.conversation_id)
        async with self.runtime.bus.subscribe(channel) as subscription:
            ready.set()
            while True:
                await self.send(await subscription.get())

    async def _stop_forwarding(self) -> None:
        if self._forwarder is not None:
            self._forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._forwarder
            self._forwarder = None

    async def close(self) -> None:
        await self._stop_forwarding()


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=settings.max_text_bytes * 4 + 4096)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    session = _Session(request, ws)
    metrics.WEBSOCKET_CONNECTIONS.inc()
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    await session.on_text(msg.data)
                except InputError as exc:
                    await session.send(exc.body())
            elif msg.type == WSMsgType.BINARY:
                await session.send(
                    InputError("invalid_frame", "binary frames are not supported; send JSON text").body()
                )
            elif msg.type == WSMsgType.ERROR:
                logger.info("websocket closed with error: %s", ws.exception())
    finally:
        metrics.WEBSOCKET_CONNECTIONS.dec()
        await session.close()
    return ws
