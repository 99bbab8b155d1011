"""A small websocket chat client for tests, on the ``websockets`` package."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets


@dataclass
class Turn:
    ack: dict[str, Any]
    deltas: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    others: list[dict[str, Any]] = field(default_factory=list)


class ChatClient:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, url: str, application_id: str = "demo", conversation_id: str | None = None) -> ChatClient:
        ws = await websockets.connect(url, open_timeout=10)
        client = cls(ws)
        conversation_id = conversation_id or f"c-{uuid.uuid4().hex[:12]}"
        await client.send({"type": "hello", "application_id": application_id, "conversation_id": conversation_id})
        ready = await client.recv()
        assert ready["type"] == "ready", ready
        client.conversation_id = conversation_id
        return client

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout_s: float = 20.0) -> dict[str, Any]:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))

    async def turn(self, text: str, client_id: str | None = None, timeout_s: float = 20.0) -> Turn:
        client_id = client_id or f"m-{uuid.uuid4().hex[:12]}"
        await self.send({"type": "message", "id": client_id, "text": text})
        ack = await self.recv(timeout_s)
        assert ack["type"] == "ack" and ack["id"] == client_id, ack
        turn = Turn(ack=ack)
        while True:
            frame = await self.recv(timeout_s)
            if frame["type"] == "delta":
                turn.deltas.append(frame)
            elif frame["type"] == "message" and frame["in_reply_to"] == ack["event_id"]:
                turn.final = frame
                return turn
            else:
                turn.others.append(frame)

    async def close(self) -> None:
        await self.ws.close()
