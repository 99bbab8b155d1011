"""``create_web_app``: the aiohttp application, built from its dependencies."""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import WSCloseCode, web

from parley import metrics
from parley.settings import Settings
from parley.web.admin import add_admin_routes
from parley.web.deps import WebDeps
from parley.web.errors import error_middleware
from parley.web.ingress import Ingress
from parley.web.keys import DEPS, FAUST_APP, INGRESS, READINESS, SETTINGS, SOCKETS, Readiness
from parley.web.openapi import openapi_handler
from parley.web.tables_api import add_table_routes
from parley.web.uploads import add_upload_routes
from parley.web.webhooks import add_webhook_routes
from parley.web.widget import add_widget_routes
from parley.web.ws import add_websocket_routes

__all__ = ["create_web_app"]


async def metrics_handler(request: web.Request) -> web.Response:
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
    add_table_routes(app)
    add_upload_routes(app)
    return app
