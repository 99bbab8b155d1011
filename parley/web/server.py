"""The web server as a service of the worker: started after table recovery, stopped first."""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from mode import Service

from parley.redact import redact_path, redact_url

__all__ = ["ScrubbedAccessLogger", "WebServer"]

logger = logging.getLogger(__name__)


class ScrubbedAccessLogger(AbstractAccessLogger):
    """aiohttp's access line, minus the secrets its default format writes: the request line's
    query keeps its parameter names but not the values of secret ones (a websocket
    ``?token=``, WhatsApp's ``hub.verify_token``; ``parley.redact.SECRET_QUERY_PARAMETERS``),
    and the Referer loses its userinfo and query values."""

    # aiohttp's default: '%a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"'
    time_format: ClassVar[str] = "[%d/%b/%Y:%H:%M:%S %z]"

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_s: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        referer = request.headers.get("Referer", "-")
        self.logger.info(
            '%s %s "%s %s HTTP/%d.%d" %d %d "%s" "%s" %.6fs',
            request.remote or "-", time.strftime(self.time_format, time.localtime()),
            request.method, redact_path(request.path_qs), request.version.major, request.version.minor,
            response.status, response.body_length, redact_url(referer) if referer != "-" else "-",
            request.headers.get("User-Agent", "-"), time_s,
        )


class WebServer(Service):
    def __init__(self, make_app: Any, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._make_app = make_app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        self._runner = web.AppRunner(
            self._make_app(), handle_signals=False, shutdown_timeout=5.0, access_log_class=ScrubbedAccessLogger
        )
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
