"""The web server as a service of the worker: started after table recovery, stopped first."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, ClassVar

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from mode import Service

from parley.redact import redact_path, redact_url

__all__ = ["QUIET_SERVER_LOGGER", "QuietBadRequests", "ScrubbedAccessLogger", "WebServer", "runner_options"]

logger = logging.getLogger(__name__)


class QuietBadRequests(logging.LoggerAdapter):
    """aiohttp's server logger, minus the ERROR traceback it writes for every request its HTTP
    parser refuses with a 4xx (a Content-Encoding it cannot decode, such as ``br`` without
    Brotli, a malformed header): anyone can send those to an unauthenticated webhook, so each
    is one INFO line. The client still gets aiohttp's 4xx; real server errors still log."""

    def exception(self, msg: object, *args: object, exc_info: object = True, **kwargs: Any) -> None:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        refused = _client_error(exc)
        if refused is not None:
            # aiohttp logs the same body twice (the handler's read, then its lingering close
            # reading the rest): the second one, with no peer address, is dropped
            if args:
                self.logger.info("refused a malformed request from %s: %s", args[0], refused)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


def _client_error(exc: BaseException | None) -> str | None:
    """The one-line reason when ``exc`` (or what caused it) is the client's malformed request
    (an HTTP parser error with a 4xx, a body that does not decode), else None."""
    seen = 0
    while exc is not None and seen < 5:
        code = getattr(exc, "code", None)
        if isinstance(exc, (HttpProcessingError, web.RequestPayloadError)) and (
            isinstance(exc, web.RequestPayloadError) or (isinstance(code, int) and 400 <= code < 500)
        ):
            return " ".join(str(exc).split())
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


QUIET_SERVER_LOGGER = QuietBadRequests(logging.getLogger("aiohttp.server"), {})


def runner_options() -> dict[str, Any]:
    """What every ``web.AppRunner`` of Parley is built with (worker and ``parley web``)."""
    return {
        "handle_signals": False, "shutdown_timeout": 5.0,
        "access_log_class": ScrubbedAccessLogger, "logger": QUIET_SERVER_LOGGER,
    }


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
        self._runner = web.AppRunner(self._make_app(), **runner_options())
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
