"""The HTTP error envelope of the admin and table APIs, rendered by one middleware.

A handler raises ``HttpError`` (the admin API's ``AdminError`` is one) and ``error_middleware``
answers it as ``{"type": "error", "code", "message"}``, with ``errors``: ``[{"field",
"message"}]`` when the error names fields (a 422), the error's status and its headers.

(The webhooks and uploads still answer their ``InputError`` themselves, in the same shape.)
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from parley.config.models import FieldError

__all__ = ["HttpError", "error_middleware"]


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


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as exc:
        return exc.response()
