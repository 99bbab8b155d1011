"""Several frames for one socket go out in one write, and arrive as separate frames, in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from parley.web.outbox import send_texts

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


async def test_a_run_of_frames_is_one_write_and_the_client_reads_each_in_order(aiohttp_client: ClientFactory) -> None:
    writes: list[int] = []
    sends: list[int] = []  # writes made by the two runs

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport: Any = request.transport
        real_write = transport.write

        def counting_write(data: bytes) -> None:
            writes.append(len(data))
            real_write(data)

        transport.write = counting_write
        await send_texts(ws, [f'{{"n": {n}}}' for n in range(5)] + ["x" * 70_000])  # one long frame too
        await send_texts(ws, ["alone"])
        sends.append(len(writes))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    client = await aiohttp_client(app)
    ws = await client.ws_connect("/ws")
    received = []
    async for message in ws:
        assert message.type == WSMsgType.TEXT
        received.append(message.data)
    assert received == [f'{{"n": {n}}}' for n in range(5)] + ["x" * 70_000, "alone"]
    assert sends == [2], f"{sends} writes for two runs of frames"
