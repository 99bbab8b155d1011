"""The HTTP error envelope of the admin and table APIs, rendered by one middleware.

A handler raises ``HttpError`` (the admin API's ``AdminError`` is one) and ``error_middleware``
answers it as ``{"type": "error", "code", "message"}``, with ``errors``: ``[{"field",
"message"}]`` when the error names fields (a 422), the error's status and its headers.

(The webhooks and uploads still answer their ``InputError`` themselves, in the same shape.)

A session store that does not answer (``SessionStoreUnavailable``, from any handler that reads a
cookie's session) is answered here too, once for the whole app: 503 ``sessions_unavailable``.

aiohttp's own 4xx answers under ``/v1/`` (no route matched, method not allowed, body too large)
get the same envelope instead of aiohttp's ``text/plain``, so every ``/v1`` error is what
``/v1/openapi.json`` documents.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from parley.config.models import FieldError
from parley.users.sessions import SessionStoreUnavailable

__all__ = ["HttpError", "error_middleware", "sessions_unavailable"]

logger = logging.getLogger(__name__)


class HttpError(Exception):
    """An error a client is told about: the status, a stable ``code``, a message saying what was
    wrong and what to do, and for a document the offending fields."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = [e.as_dict() for e in self.errors]
        return body

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def sessions_unavailable(detail: str = "") -> HttpError:
    """503 ``sessions_unavailable``: the session store (Redis) does not answer right now."""
    return HttpError(503, "sessions_unavailable", "sign-in sessions cannot be checked or stored right now; retry shortly" + detail,
                     headers={"Retry-After": "1", "Cache-Control": "no-store"})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as exc:
        return exc.response()
    except SessionStoreUnavailable as exc:
        logger.warning("%s %s: %s", request.method, request.path, exc)
        return sessions_unavailable().response()
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/v1/"):
            raise
        code = "not_found" if exc.status == 404 else (exc.reason or "error").lower().replace(" ", "_")
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else (
            f"{request.method} {request.path}: {exc.reason}")
        return web.json_response({"type": "error", "code": code, "message": message},
                                 status=exc.status, headers=headers)
