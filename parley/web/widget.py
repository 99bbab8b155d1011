"""The embeddable chat widget (docs/widget.md): its script, its panel page and its public
presentation endpoint.

- ``GET /widget.js``: the loader a site includes with one tag; it draws the launcher bubble and
  opens the chat panel in an iframe (the host page's styles and scripts never touch it).
- ``GET /`` and ``GET /widget/panel?application=<id>``: the chat page (``static/chat.html``),
  whole-page at ``/``, the widget's panel inside the iframe. Its ``Content-Security-Policy``
  names the sites that may frame it, ``frame-ancestors``: the application's
  ``allowed_origins`` (empty: any), so the browser itself keeps the panel off other sites;
  the websocket then comes from Parley's own origin, which ``origin_allowed`` admits.
- ``GET /v1/widget/{application_id}``: what the widget shows, public (CORS ``*``): only the
  application's ``widget`` fields (``Application.widget``), its words in its language
  (``static/strings.json``, one entry per language) and the text limit, never anything else.
- ``GET /favicon.svg`` and ``/favicon.ico``: the page's icon.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from parley.config.models import ApplicationConfig, Widget
from parley.validation import InputError, require_id
from parley.web.keys import DEPS, SETTINGS

__all__ = ["add_widget_routes", "frame_ancestors", "presentation", "strings"]

logger = logging.getLogger(__name__)

#: the default accent colour (the chat page's blue)
DEFAULT_ACCENT = "#2f6fed"
#: what the panel is served with when the application cannot be read (the store is down)
_SELF_ONLY = "'self'"


def _static(name: str) -> str:
    return resources.files("parley.web").joinpath(f"static/{name}").read_text("utf-8")


@functools.cache
def strings() -> dict[str, dict[str, str]]:
    """The widget's own words, per language (``static/strings.json``)."""
    loaded: dict[str, dict[str, str]] = json.loads(_static("strings.json"))
    return loaded


def presentation(config: ApplicationConfig, max_text_bytes: int) -> dict[str, Any]:
    """What ``GET /v1/widget/{id}`` answers: the ``widget`` fields with their defaults filled in."""
    try:
        widget = Widget.model_validate(config.widget) if config.widget else Widget()
    except ValidationError:  # a document stored around the admin API: the defaults, not a 500
        logger.warning("application %s: its widget fields are invalid; showing the defaults", config.application_id)
        widget = Widget()
    words = strings().get(widget.language) or strings()["en"]
    return {
        "application_id": config.application_id,
        "display_name": widget.display_name or config.name or config.application_id,
        "avatar_url": widget.avatar_url,
        "accent_color": widget.accent_color or DEFAULT_ACCENT,
        "welcome_message": widget.welcome_message or words["welcome"],
        "placeholder": widget.placeholder or words["placeholder"],
        "language": widget.language,
        "max_text_bytes": max_text_bytes,
        "strings": words,
    }


def frame_ancestors(config: ApplicationConfig | None) -> str:
    """The panel's ``frame-ancestors``: the application's allowed origins (and Parley's own)."""
    if config is None or not config.allowed_origins or "*" in config.allowed_origins:
        return "*"
    return " ".join([_SELF_ONLY, *config.allowed_origins])


async def _config(request: web.Request, application_id: str) -> ApplicationConfig | None:
    deps, settings = request.app[DEPS], request.app[SETTINGS]
    async with asyncio.timeout(settings.store_edge_timeout_s):
        config = await deps.configs.application(application_id)
    return config if isinstance(config, ApplicationConfig) else None


async def widget_config(request: web.Request) -> web.Response:
    cors = {"Access-Control-Allow-Origin": "*"}
    try:
        application_id = require_id(dict(request.match_info), "application_id")
        try:
            config = await _config(request, application_id)
        except Exception as exc:  # noqa: BLE001 - the store did not answer: the client retries
            raise InputError("unavailable", "the application could not be read; retry in a moment", status=503) from exc
    except InputError as exc:
        return web.json_response(exc.body(), status=exc.status, headers=cors)
    if config is None:  # the widget's words come along, so it can say so in words
        body = {**InputError("unknown_application", f"no application {application_id!r}", status=404).body(),
                "strings": strings()["en"]}
        return web.json_response(body, status=404, headers=cors)
    body = presentation(config, request.app[SETTINGS].max_text_bytes)
    return web.json_response(body, headers={**cors, "Cache-Control": "public, max-age=60"})


async def chat_page(request: web.Request) -> web.Response:
    application_id = request.query.get("application") or request.query.get("app") or "demo"
    ancestors = "*"  # an unknown application: the panel says so wherever it is shown
    try:
        config = await _config(request, require_id({"application": application_id}, "application"))
        ancestors = frame_ancestors(config)
    except InputError:
        pass  # not an id: the page says the application is unknown
    except Exception as exc:  # noqa: BLE001 - the store is down: frame the page only on Parley's own origin
        logger.warning("chat page: application %r could not be read: %s: %s", application_id, type(exc).__name__, exc)
        ancestors = _SELF_ONLY
    return web.Response(
        text=_static("chat.html"), content_type="text/html",
        headers={"Content-Security-Policy": f"frame-ancestors {ancestors}", "Cache-Control": "no-cache"},
    )


async def widget_script(request: web.Request) -> web.Response:
    return web.Response(
        text=_static("widget.js"), content_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


async def favicon(request: web.Request) -> web.Response:
    return web.Response(
        text=_static("favicon.svg"), content_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


def add_widget_routes(app: web.Application) -> None:
    app.router.add_get("/", chat_page)
    app.router.add_get("/widget/panel", chat_page)
    app.router.add_get("/widget.js", widget_script)
    app.router.add_get("/v1/widget/{application_id}", widget_config)
    app.router.add_get("/favicon.svg", favicon)
    app.router.add_get("/favicon.ico", favicon)
