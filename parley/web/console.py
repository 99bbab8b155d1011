"""The operators' console under ``/console/``: a shell page and its static files.

The console is a client of the API (``/v1/auth/…``, ``/v1/admin/…``): this module only serves
``parley/web/static/console/`` — one HTML shell for every ``/console/…`` page (the scripts route
in the browser) and its stylesheet and ES modules under ``/console/assets/``. No build step.

Every console response carries a strict Content-Security-Policy (scripts and styles from this
origin only, no inline script, no framing), so a value shown on a page cannot run as script
even if a page forgot to escape it (the scripts only ever set ``textContent``). See
docs/console.md.
"""

from __future__ import annotations

import re
from importlib import resources

from aiohttp import web

__all__ = ["CONSOLE_PREFIX", "SECURITY_HEADERS", "add_console_routes"]

CONSOLE_PREFIX = "/console"
#: an asset's path under static/console/: one optional folder, lowercase names, known types
_ASSET = re.compile(r"^(?:[a-z0-9_-]+/)?[a-z0-9_-]+\.(js|css|svg)$")
_TYPES = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _static(name: str) -> bytes:
    return resources.files("parley.web").joinpath("static/console").joinpath(name).read_bytes()


async def _shell(request: web.Request) -> web.Response:
    return web.Response(
        body=_static("index.html"), content_type="text/html", charset="utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )


async def _asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    match = _ASSET.match(name)
    if match is None:
        raise web.HTTPNotFound(text=f"no console asset {name!r}")
    try:
        body = _static(name)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise web.HTTPNotFound(text=f"no console asset {name!r}") from None
    return web.Response(
        body=body, content_type=_TYPES[match.group(1)], charset="utf-8",
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(f"{CONSOLE_PREFIX}/")


def add_console_routes(app: web.Application) -> None:
    """``/console`` (redirect), ``/console/assets/{name}``, and the shell for every other page."""
    app.router.add_get(CONSOLE_PREFIX, _redirect, name="console.redirect")
    app.router.add_get(CONSOLE_PREFIX + "/assets/{name:.+}", _asset, name="console.asset")
    app.router.add_get(CONSOLE_PREFIX + "/{page:.*}", _shell, name="console.page")
