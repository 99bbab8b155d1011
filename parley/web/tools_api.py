"""``GET /v1/admin/tools``: the names of the registered tools, which a chatbot's ``tools`` may
list (the console offers them as choices; the admin API refuses any other name)."""

from __future__ import annotations

from aiohttp import web

from parley.web.access import authorize
from parley.web.admin import ADMIN_PREFIX, no_store_json, store_errors
from parley.web.keys import DEPS

__all__ = ["add_tool_routes"]


async def _tools(request: web.Request) -> web.Response:
    await authorize(request, action="read")
    names = sorted(request.app[DEPS].tool_names)
    return no_store_json({"items": [{"name": name} for name in names]})


def add_tool_routes(app: web.Application) -> None:
    app.router.add_get(f"{ADMIN_PREFIX}/tools", store_errors(_tools), name="admin.tools")
