"""Typed keys for what the aiohttp application holds (no module-level singletons)."""

from __future__ import annotations

import weakref
from typing import Any, Protocol

from aiohttp import web

from parley.settings import Settings
from parley.web.deps import WebDeps
from parley.web.ingress import Ingress

__all__ = ["SETTINGS", "DEPS", "INGRESS", "READINESS", "Readiness", "SOCKETS", "FAUST_APP"]

SETTINGS = web.AppKey("settings", Settings)
#: every port and service the handlers use
DEPS = web.AppKey("deps", WebDeps)
INGRESS = web.AppKey("ingress", Ingress)


class Readiness(Protocol):
    """``/readyz``: (ready, {check: detail})."""

    async def __call__(self) -> tuple[bool, dict[str, Any]]: ...


READINESS = web.AppKey("readiness", Readiness)
#: open websockets, closed with GOING_AWAY on shutdown
SOCKETS: web.AppKey[weakref.WeakSet[web.WebSocketResponse]] = web.AppKey("sockets")
#: the Faust app, on workers only (table queries)
FAUST_APP = web.AppKey("faust_app", Any)
