"""An aiohttp server on its own event loop in a thread, for fakes that sync and async tests share
(the fake LLM, platform APIs, callback receivers). Subclasses add their routes in ``routes``."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, ClassVar

from aiohttp import web

from tests.support.net import free_port


class ThreadedServer:
    #: extra ``web.AppRunner`` options (e.g. shutdown_timeout, handler_cancellation)
    runner_options: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _start(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, **self.runner_options)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
