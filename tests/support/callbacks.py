"""A callback receiver (the "platform" of the generic webhook channel), run in a thread."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.support.threaded import ThreadedServer


class CallbackServer(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, Any]] = []

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{tail:.*}", self._receive)

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
