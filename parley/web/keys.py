"""Typed keys for what the aiohttp application holds (no module-level singletons)."""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from parley.settings import Settings
from parley.web.ingress import Ingress

__all__ = ["SETTINGS", "RUNTIME", "INGRESS", "READINESS", "SOCKETS"]

SETTINGS = web.AppKey("settings", Settings)
RUNTIME = web.AppKey("runtime", Any)  # parley.runtime.Runtime
INGRESS = web.AppKey("ingress", Ingress)
#: () -> (ready, {check: detail})
READINESS = web.AppKey("readiness", Callable[[], Awaitable[tuple[bool, dict[str, Any]]]])
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
#: the Faust app, on workers only (table queries)
FAUST_APP = web.AppKey("faust_app", Any)
