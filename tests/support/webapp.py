"""What the tests of the HTTP API share: the admin key they configure, its header, and the
ingress and readiness stand-ins of an app that produces no events (fixtures: tests/web/conftest.py)."""

from __future__ import annotations

from typing import Any

__all__ = ["ADMIN_KEY", "AUTH", "always_ready", "never_produced"]

ADMIN_KEY = "test-admin-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def never_produced(key: str, value: bytes) -> None:
    raise AssertionError("these tests produce no events")


async def always_ready() -> tuple[bool, dict[str, Any]]:
    return True, {}
