"""The ports: what Parley's logic and edges need from each outside system, as Protocols.

Layer 0: this module imports nothing of Parley's. Adapters (``parley.storage``, ``parley.llm``,
``parley.channels``) implement these; the logic (``parley.streams``) and the edges
(``parley.web``) are given objects of these types, never the adapters' classes, so tests hand
them the fakes in ``tests/support``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley.config.models import ApplicationConfig

__all__ = [
    "ApplicationDocuments", "Archive", "Bus", "Cache", "Configs", "DeadLetterDesk", "DeadLetterRefused",
    "DeliveryLedger", "FileInfo", "FileStore", "FileStoreError", "Owner", "OwnerRecords", "Owners", "Subscription",
    "UploadLedger",
]


class Cache(Protocol):
    """A key/value cache with expiry (Redis, or in-process). Never the source of truth."""

    #: True when entries are visible to (and deletes reach) every process, as with Redis.
    shared: bool

    async def get(self, key: str) -> bytes | None: ...
    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...
    async def add(self, key: str, value: bytes, ttl_s: float) -> None:
        """``set`` unless the key holds an entry (a negative entry never hides a positive one
        written meanwhile by another process)."""
        ...

    async def delete(self, key: str) -> None: ...
    async def incr(self, key: str, by: int, ttl_s: float) -> tuple[int, float] | None:
        """Add ``by`` to the counter at ``key`` in one step (a new counter starts at 0 and
        expires ``ttl_s`` from now; adding never moves its expiry): (the new count, seconds until
        it expires), or None when the cache could not answer."""
        ...

    async def close(self) -> None: ...


class Subscription(Protocol):
    """Frames published on one channel, in order, for one subscriber (bounded)."""

    async def get(self) -> dict[str, Any]: ...

    def take_waiting(self, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` frames already waiting, without waiting for more."""
        ...


class Bus(Protocol):
    """Ephemeral frames between processes (Redis pub/sub, or in-process)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def publish(self, channel: str, frame: dict[str, Any]) -> None: ...
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]: ...


@dataclass(frozen=True)
class Owner:
    """The party a conversation belongs to: one signed-in user, or anonymous clients (None)."""

    user_id: str | None

    def admits(self, user_id: str | None) -> bool:
        return self.user_id == user_id

    @property
    def signed_in(self) -> bool:
        return self.user_id is not None


class Owners(Protocol):
    """Who each conversation belongs to (``parley.storage.owners.ConversationOwners``)."""

    async def owner(self, application_id: str, conversation_id: str) -> Owner | None: ...
    async def claim(self, application_id: str, conversation_id: str, user_id: str | None) -> Owner: ...


class Configs(Protocol):
    """Application and chatbot configuration (``parley.config.store.ConfigStore``)."""

    async def application(self, application_id: str) -> ApplicationConfig | None: ...
    async def application_document(self, application_id: str) -> dict[str, Any] | None: ...
    async def invalidate(self, application_id: str) -> None: ...
    async def invalidate_chatbot(self, chatbot_id: str) -> None: ...


class OwnerRecords(Protocol):
    """Who each conversation belongs to: one record per claimed conversation."""

    async def find_owner_record(self, record_id: str) -> dict[str, Any] | None: ...
    async def insert_owner_records(self, records: list[dict[str, Any]]) -> list[bool]:
        """Per record, True if it was written, False if the conversation had an owner already."""
        ...


class Archive(Protocol):
    """Every message of every conversation, by message id (insert once)."""

    async def archive(self, docs: list[dict[str, Any]]) -> list[bool]:
        """Per document, whether this call wrote it (False: it was archived already)."""
        ...

    async def messages_after(
        self, application_id: str, conversation_id: str, after_id: str | None, *, roles: tuple[str, ...], limit: int
    ) -> tuple[list[dict[str, Any]], bool, bool]:
        """(docs after ``after_id``, oldest first; whether ``after_id`` was found; truncated)."""
        ...

    async def handoff(self, application_id: str, conversation_id: str) -> dict[str, Any] | None:
        """The conversation's current human handoff (``operator_name``, ``since``), or None."""
        ...


class ApplicationDocuments(Protocol):
    """Whole application documents, credentials included (``ConfigStore.application_document``:
    cached in the process that reads them, never in Redis)."""

    async def application_document(self, application_id: str) -> dict[str, Any] | None: ...


class DeliveryLedger(Protocol):
    """Which replies a platform has taken (so a redelivered reply is not sent again)."""

    async def was_delivered(self, message_id: str) -> bool: ...
    async def mark_delivered(self, message_id: str, at: float) -> None: ...


class FileStoreError(RuntimeError):
    """The store failed or did not answer in time; the caller may retry later."""


@dataclass(frozen=True)
class FileInfo:
    key: str
    content_type: str
    size: int
    name: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


class FileStore(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...

    async def put(
        self,
        key: str,
        data: bytes | AsyncIterable[bytes],
        content_type: str,
        *,
        name: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        """Store ``data`` under ``key``; returns its size in bytes."""
        ...

    async def stat(self, key: str) -> FileInfo | None:
        """The file's type, size and name; None when there is no such file."""
        ...

    async def get(self, key: str) -> bytes:
        """The file's bytes (for models that need them: prefer ``presigned_url``)."""
        ...

    async def presigned_url(self, key: str, expires_s: int) -> str:
        """A URL anyone holding it may GET the file through, for ``expires_s`` seconds."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the file; nothing happens when there is no such file."""
        ...


class UploadLedger(Protocol):
    """What Parley knows of the files clients upload: each application's hourly quota, and which
    uploads no message has referenced yet (they expire, docs/attachments.md)."""

    async def reserve(self, application_id: str, size: int, quota_bytes: int, now: float) -> float:
        """Count ``size`` bytes against the application's quota of this hour. 0 when they fit
        (and are counted); otherwise nothing is counted and the result is the seconds until
        the next hour."""
        ...

    async def release(self, application_id: str, size: int, now: float) -> None:
        """Give back bytes ``reserve`` counted for an upload that was not stored."""
        ...

    async def record(self, file_id: str, application_id: str, size: int, now: float) -> None:
        """Note a stored upload; it expires unless a message references it."""
        ...

    async def referenced(self, file_ids: list[str], now: float) -> None:
        """Note that a message references these uploads: they are kept."""
        ...

    async def unreferenced_before(self, before: float, limit: int) -> list[str]:
        """Uploads recorded before ``before`` that no message references, oldest first."""
        ...

    async def forget(self, file_ids: list[str]) -> None:
        """Drop the records of deleted uploads."""
        ...

    async def prune_quota(self, before: float) -> None:
        """Drop the quota counters of hours that ended before ``before``."""
        ...


class DeadLetterRefused(RuntimeError):
    """A dead letter operation that cannot be done (unknown id, replayed already, cannot be
    replayed); the message says why and what to do."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class DeadLetterDesk(Protocol):
    """The dead letters and what operators do with them (``parley.ops.dlq_desk``: the topic and
    the ``dead_letter_actions`` collection). Records are ``parley dlq list --json`` 's fields."""

    async def letters(self) -> list[dict[str, Any]]:
        """Every dead letter on the topic now, purged ones included, oldest first."""
        ...

    async def letter(self, dead_letter_id: str) -> dict[str, Any] | None:
        """One dead letter with its original bytes (``original_b64``, ``original_json``,
        ``original_text``), or None."""
        ...

    async def replay(self, dead_letter_id: str, *, force: bool, deliver: bool) -> dict[str, Any]:
        """Replay it; ``{"mode", "topic", "event_id", "replay_id"}``, or ``DeadLetterRefused``."""
        ...

    async def purge(self, dead_letter_id: str) -> None:
        """Hide it from the list (``DeadLetterRefused`` for an unknown id)."""
        ...
