"""``/v1/tables``: read-only queries of the state tables, answered by any worker.

Authorized like the admin API (``parley.web.access.authorize``: a session, a personal API token or
the admin key): a key belongs to the application it starts with (``application_id/...``), and a
scan shows only the rows of the principal's applications. Errors are ``HttpError`` s, answered by
``parley.web.errors.error_middleware``. A key owned by another worker is forwarded to it (once: a
forwarded request is always answered locally). A scan asks every member of the group for its
own partitions and merges the answers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web

from parley.tables.views import TABLE_VIEWS, key_partition, local_get, local_scan, members, owner_url, owns
from parley.web.access import Principal, authorize
from parley.web.admin import AdminError
from parley.web.errors import HttpError
from parley.web.keys import FAUST_APP, SETTINGS

__all__ = ["add_table_routes"]

logger = logging.getLogger(__name__)

FORWARDED = "X-Parley-Forwarded"
FORWARD_TIMEOUT_S = 5.0
MAX_SCAN = 1000


def add_table_routes(app: web.Application) -> None:
    app.router.add_get("/v1/tables", list_views)
    app.router.add_get("/v1/tables/{view}", scan)
    app.router.add_get("/v1/tables/{view}/{key:.+}", get)  # conversation keys hold a "/"


def _application_of(key: str) -> str:
    """The application a table key belongs to (``app/conversation`` or ``app``)."""
    return key.split("/", 1)[0]


async def _context(request: web.Request) -> tuple[Any, Any, Principal]:
    key = request.match_info.get("key")
    principal = await authorize(request, action="read", application_id=_application_of(key) if key else None)
    faust_app = request.app.get(FAUST_APP)
    if faust_app is None:
        raise AdminError(404, "not_a_worker", "table queries are answered by workers (`parley worker`), not gateways")
    name = request.match_info.get("view", "")
    view = TABLE_VIEWS.get(name)
    if view is None:
        raise AdminError(404, "unknown_table", f"no table {name!r}; known: {', '.join(sorted(TABLE_VIEWS))}")
    return faust_app, view, principal


async def list_views(request: web.Request) -> web.Response:
    await authorize(request, action="read")
    return web.json_response({"tables": {name: v.describe for name, v in sorted(TABLE_VIEWS.items())}})


async def _forward(request: web.Request, url: str) -> tuple[int, Any]:
    headers = {FORWARDED: "1"}
    for name in ("Authorization", "X-Admin-Key", "Cookie"):  # the owner authorizes the caller again
        if name in request.headers:
            headers[name] = request.headers[name]
    timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(url, headers=headers) as response:
            return response.status, await response.json()


async def get(request: web.Request) -> web.Response:
    faust_app, view, _ = await _context(request)
    key = request.match_info["key"]
    partitions = request.app[SETTINGS].topic_partitions
    if not owns(faust_app, view.table, key, partitions) and FORWARDED not in request.headers:
        owner = owner_url(faust_app, view.table, key, partitions)
        if owner is None:
            raise HttpError(503, "not_assigned", "partitions are not assigned yet; retry shortly")
        url = f"{owner.rstrip('/')}{request.path}"
        try:
            status, body = await _forward(request, url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HttpError(502, "owner_unreachable", f"the worker owning this key ({owner}) did not answer: {exc}") from exc
        return web.json_response(body, status=status)
    found, value = local_get(faust_app, view, key)
    body = {
        "table": request.match_info["view"],
        "key": key,
        "partition": key_partition(key, partitions),
        "found": found,
        "value": value,
        "served_by": str(faust_app.conf.canonical_url),
    }
    return web.json_response(body, status=200 if found else 404)


async def scan(request: web.Request) -> web.Response:
    faust_app, view, principal = await _context(request)
    prefix = request.query.get("prefix", "")
    try:
        limit = min(MAX_SCAN, max(1, int(request.query.get("limit", "100"))))
    except ValueError:
        raise HttpError(400, "invalid_field", "limit must be an integer") from None
    # a scoped principal's rows are picked out of a wider scan, so a page is not cut short by
    # other tenants' keys that sort first
    wide = limit if principal.applications is None else MAX_SCAN
    rows = [r for r in local_scan(faust_app, view, prefix, wide) if principal.can_read(_application_of(r["key"]))][:limit]
    if FORWARDED in request.headers:
        return web.json_response({"rows": rows})
    own = str(faust_app.conf.canonical_url).rstrip("/")
    others = [m.rstrip("/") for m in members(faust_app, view.table) if m.rstrip("/") != own]
    results = await asyncio.gather(
        *(_forward(request, f"{m}{request.path_qs}") for m in others), return_exceptions=True
    )
    missing = []
    for member, result in zip(others, results, strict=True):
        if isinstance(result, BaseException) or result[0] != 200:
            missing.append(member)
            continue
        rows.extend(result[1].get("rows", []))
    rows.sort(key=lambda r: r["key"])
    return web.json_response({"rows": rows[:limit], "members": [own, *others], "unreachable": missing})
