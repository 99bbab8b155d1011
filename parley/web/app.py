"""``create_web_app``: the aiohttp application, built from its dependencies."""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import WSCloseCode, hdrs, web

from parley import metrics
from parley.settings import Settings
from parley.web.accounts_api import add_account_routes
from parley.web.admin import add_admin_routes
from parley.web.auth import bearer_matches
from parley.web.console import add_console_routes
from parley.web.conversations_api import add_conversation_routes
from parley.web.deadletters_api import add_dead_letter_routes
from parley.web.deps import WebDeps
from parley.web.errors import error_middleware
from parley.web.ingress import Ingress
from parley.web.keys import DEPS, FAUST_APP, INGRESS, READINESS, SETTINGS, SOCKETS, Readiness
from parley.web.openapi import openapi_handler
from parley.web.overview_api import add_overview_routes
from parley.web.tables_api import add_table_routes
from parley.web.tools_api import add_tool_routes
from parley.web.uploads import add_upload_routes
from parley.web.webhooks import add_webhook_routes
from parley.web.widget import add_widget_routes
from parley.web.ws import add_websocket_routes

__all__ = ["create_web_app"]


async def metrics_handler(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    if token is not None and not bearer_matches(request.headers.get(hdrs.AUTHORIZATION), token.get_secret_value()):
        return web.json_response(
            {"type": "error", "code": "unauthorized", "message": "/metrics needs 'Authorization: Bearer <PARLEY_METRICS_TOKEN>'"},
            status=401, headers={"WWW-Authenticate": "Bearer"},
        )
    body = metrics.render()
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    ready, checks = await request.app[READINESS]()
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


async def _close_sockets(app: web.Application) -> None:
    sockets = app[SOCKETS]
    for ws in list(sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def create_web_app(
    *,
    settings: Settings,
    deps: WebDeps,
    ingress: Ingress,
    readiness: Readiness,
    faust_app: Any = None,
) -> web.Application:
    app = web.Application(client_max_size=settings.max_text_bytes * 4 + 4096, middlewares=[error_middleware])
    app[SETTINGS] = settings
    app[DEPS] = deps
    app[INGRESS] = ingress
    app[READINESS] = readiness
    app[SOCKETS] = weakref.WeakSet()
    if faust_app is not None:
        app[FAUST_APP] = faust_app
    app.on_shutdown.append(_close_sockets)
    add_widget_routes(app)
    add_websocket_routes(app)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    add_webhook_routes(app)
    app.router.add_get("/v1/openapi.json", openapi_handler)
    add_admin_routes(app)
    add_conversation_routes(app)
    add_dead_letter_routes(app)
    add_overview_routes(app)
    add_account_routes(app)
    add_tool_routes(app)
    add_table_routes(app)
    add_upload_routes(app)
    add_console_routes(app)
    return app
