"""A callback receiver (the "platform" of the generic webhook channel), run in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from aiohttp import web

from tests.support.net import free_port


class CallbackServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)  # type: ignore[union-attr]
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append({"path": request.path, "body": await request.json()})
        return web.json_response({"ok": True})

    def wait_for(self, predicate: Any, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            hits = [r for r in list(self.received) if predicate(r)]
            if hits:
                return hits
            time.sleep(0.05)
        raise TimeoutError(f"no matching callback within {timeout_s}s; got {self.received!r}")
