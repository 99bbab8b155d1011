"""What the web layer is given: one typed object under the ``DEPS`` key.

The processes build it from their started clients (``parley.runtime.Runtime.web_deps``); tests
build it from in-memory stand-ins (``tests/support/webdeps.py``). Handlers read
``request.app[DEPS]`` and use only these fields, each a port or a service over ports.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from parley.ports import Archive, Bus, FileStore

if TYPE_CHECKING:
    from parley.storage.owners import Owner

__all__ = ["WebDeps", "Configs", "Owners"]


class Configs(Protocol):
    """Application and chatbot configuration (``parley.streams.config.ConfigStore``)."""

    async def application(self, application_id: str) -> Any: ...  # ApplicationConfig | None
    async def application_document(self, application_id: str) -> dict[str, Any] | None: ...
    async def invalidate(self, application_id: str) -> None: ...
    async def invalidate_chatbot(self, chatbot_id: str) -> None: ...


class Owners(Protocol):
    """Who each conversation belongs to (``parley.storage.owners.ConversationOwners``)."""

    async def owner(self, application_id: str, conversation_id: str) -> Owner | None: ...
    async def claim(self, application_id: str, conversation_id: str, user_id: str | None) -> Owner: ...


@dataclass(slots=True)
class WebDeps:
    configs: Configs
    owners: Owners
    archive: Archive
    #: the admin API's document collections (``parley.storage.documents.DocumentStore``)
    documents: Any
    bus: Bus
    files: FileStore
    http: aiohttp.ClientSession
    #: document store reads at the edges at once (resume and history)
    store_reads: asyncio.Semaphore
