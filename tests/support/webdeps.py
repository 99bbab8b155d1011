"""``WebDeps`` for tests: in-memory stand-ins for every port, each replaceable by keyword."""

from __future__ import annotations

import asyncio
from typing import Any

from parley.egress import EgressPolicy
from parley.storage.bus import InProcessBus
from parley.tools import default_registry
from parley.web.deps import WebDeps
from tests.support.stores import MemoryUploadLedger, memory_owners

__all__ = ["web_deps", "NoFiles", "NoArchive"]


class NoFiles:
    """A file store with no files (tests that never upload)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def stat(self, key: str) -> None:
        return None

    async def put(self, *args: Any, **kwargs: Any) -> int:
        raise AssertionError("this test stores no file")

    async def get(self, key: str) -> bytes:
        raise AssertionError("this test reads no file")

    async def presigned_url(self, key: str, expires_s: int) -> str:
        raise AssertionError("this test links no file")

    async def delete(self, key: str) -> None:
        raise AssertionError("this test deletes no file")


class NoArchive:
    """An empty archive."""

    async def archive(self, docs: list[dict[str, Any]]) -> list[bool]:
        return [True for _ in docs]

    async def messages_after(self, *args: Any, **kwargs: Any) -> tuple[list[dict[str, Any]], bool, bool]:
        return [], False, False

    async def handoff(self, application_id: str, conversation_id: str) -> dict[str, Any] | None:
        return None


def web_deps(**given: Any) -> WebDeps:
    """A ``WebDeps`` whose unnamed fields are empty stand-ins (``configs`` must be given)."""
    fields: dict[str, Any] = {
        "owners": memory_owners(), "archive": NoArchive(), "documents": None, "bus": InProcessBus(),
        "files": NoFiles(), "uploads": MemoryUploadLedger(), "http": None, "store_reads": asyncio.Semaphore(8),
        "egress": EgressPolicy(), "tool_names": frozenset(default_registry().names()),
    }
    fields.update(given)
    return WebDeps(**fields)
