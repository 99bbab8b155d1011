"""What the web layer is given: one typed object under the ``DEPS`` key.

The processes build it from their started clients (``parley.runtime.Runtime.web_deps``); tests
build it from in-memory stand-ins (``tests/support/webdeps.py``). Handlers read
``request.app[DEPS]`` and use only these fields, each a port or a service over ports.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from parley.egress import EgressPolicy
from parley.ports import Archive, Bus, Configs, DeadLetterDesk, FileStore, Owners, UploadLedger
from parley.storage.documents import DocumentStore
from parley.users.service import UserService

__all__ = ["WebDeps"]


@dataclass(slots=True)
class WebDeps:
    configs: Configs
    owners: Owners
    archive: Archive
    #: the admin API's document collections
    documents: DocumentStore
    bus: Bus
    files: FileStore
    #: uploads' hourly quota and which of them messages reference (the rest expire)
    uploads: UploadLedger
    http: aiohttp.ClientSession
    #: document store reads at the edges at once (resume and history)
    store_reads: asyncio.Semaphore
    #: what outbound URLs in saved documents may be (the policy ``http`` connects with)
    egress: EgressPolicy
    #: the tools a chatbot may list (the registry's names)
    tool_names: frozenset[str]
    #: the dead letters (the console's API); None where no broker is configured
    dead_letters: DeadLetterDesk | None = None
    #: operator accounts, sessions, tokens and the audit log (None: only the admin key works)
    users: UserService | None = None
