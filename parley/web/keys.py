"""Typed keys for what the aiohttp application holds (no module-level singletons)."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from parley.settings import Settings
from parley.web.deps import WebDeps
from parley.web.ingress import Ingress

__all__ = ["SETTINGS", "DEPS", "INGRESS", "READINESS", "SOCKETS", "FAUST_APP"]

SETTINGS = web.AppKey("settings", Settings)
#: every port and service the handlers use
DEPS = web.AppKey("deps", WebDeps)
INGRESS = web.AppKey("ingress", Ingress)
#: () -> (ready, {check: detail})
READINESS = web.AppKey("readiness", Callable[[], Awaitable[tuple[bool, dict[str, Any]]]])
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
#: the Faust app, on workers only (table queries)
FAUST_APP = web.AppKey("faust_app", Any)
