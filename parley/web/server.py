"""The web server as a service of the worker: started after table recovery, stopped first."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from mode import Service

__all__ = ["WebServer"]

logger = logging.getLogger(__name__)


class WebServer(Service):
    def __init__(self, make_app: Any, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._make_app = make_app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self._runner = web.AppRunner(self._make_app(), handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            self.port = server.sockets[0].getsockname()[1]
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        print(f"Parley is ready: chat page http://{shown}:{self.port}/  websocket ws://{shown}:{self.port}/ws", flush=True)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def get_web_url(self) -> str:
        return f"http://{self.host}:{self.port}/"
