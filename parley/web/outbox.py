"""Several websocket frames to one socket in one write.

A websocket turn sends its client six frames (``ack`` and ``typing`` together, the deltas of a
model's burst, the reply), and aiohttp writes each frame to the socket on its own: one system
call per frame, which on the development machine cost more than framing the text
(bench/throughput.py --profile). ``send_texts`` lets aiohttp frame each text as usual (masking,
limits and flow control stay aiohttp's) but holds the writes of a run of frames and hands them
to the transport as one.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

__all__ = ["send_texts"]

logger = logging.getLogger(__name__)


class _HeldWrites:
    """Stands in for a socket's transport while a run of frames is framed: keeps what is
    written, answers everything else as the transport does."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def send_texts(ws: web.WebSocketResponse, texts: list[str]) -> None:
    """Send ``texts`` as text frames, in order, in one write when aiohttp's writer allows it
    (its internals are checked: without them, one write per frame as before)."""
    writer = getattr(ws, "_writer", None)
    transport = getattr(writer, "transport", None)
    if len(texts) < 2 or writer is None or transport is None or getattr(writer, "compress", False):
        for text in texts:
            await ws.send_str(text)
        return
    held = _HeldWrites(transport)
    writer.transport = held
    try:
        for text in texts:
            await ws.send_str(text)
    finally:
        if writer.transport is held:
            writer.transport = transport
        if held.parts and not transport.is_closing():
            transport.write(b"".join(held.parts))
