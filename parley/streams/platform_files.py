"""Files users send through a messaging platform, fetched by the worker before their turn.

The webhook only records the platform's reference (a ``parley.attachments.PlatformFile`` in
``IncomingEvent.attachments``), so platforms get their answer at once. Before the
turn, ``fetch_platform_files`` downloads each file through its channel, checks it like an upload
(``PARLEY_MAX_UPLOAD_BYTES``, ``PARLEY_UPLOAD_ALLOWED_TYPES``, the content matching its type) and
stores it in the file store. The attachment then is a ``StoredFile``, as an upload's is, and the
model sees it the same way. A file that cannot be fetched or is refused becomes an
``UnreadableFile``: the model is told it could not be read.

The stored key derives from the event and the file's place in it, so a redelivered event stores
the same file under the same key. A message's files are fetched together, each within
``FILE_BUDGET_S`` in all (attempts included), at most ``MAX_CONCURRENT_DOWNLOADS`` at once per
worker; a file whose declared size or type is already refused is not downloaded. A file store
that fails raises (the event is retried, then dead-lettered): the file is not dropped for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parley.attachments import PlatformFile, StoredFile, parse
from parley.channels import channel_for
from parley.channels.base import ChannelNotConfigured, DownloadError
from parley.filetypes import EXTENSIONS, checked_content_type
from parley.ports import ApplicationDocuments, FileStore
from parley.records import IncomingEvent
from parley.settings import Settings
from parley.storage.files import make_key
from parley.streams.delivery import send_policy
from parley.validation import InputError

if TYPE_CHECKING:
    from aiohttp import ClientSession

__all__ = ["FilePorts", "fetch_platform_files", "has_platform_files", "stored_key"]

logger = logging.getLogger(__name__)

#: The most time one file may take, its platform lookup, download attempts and backoff included.
FILE_BUDGET_S = 30.0
#: Files downloaded at once by one worker (each holds up to PARLEY_MAX_UPLOAD_BYTES in memory):
#: the size of ``Runtime.downloads``.
MAX_CONCURRENT_DOWNLOADS = 8


def has_platform_files(event: IncomingEvent) -> bool:
    return any(isinstance(parse(a), PlatformFile) for a in event.attachments)


def stored_key(event: IncomingEvent, index: int, extension: str) -> str:
    """Where the ``index``-th file of ``event`` is stored: the same key for every delivery."""
    digest = hashlib.sha256(f"{event.event_id}/{index}".encode()).hexdigest()[:32]
    return make_key(event.application_id, extension, now=event.created_at, unique=digest)


@dataclass(frozen=True)
class FilePorts:
    """What fetching platform files reaches: the applications' credentials, the HTTP client the
    channels download with, the file store, and the process's download slots."""

    applications: ApplicationDocuments
    http: ClientSession
    files: FileStore
    downloads: asyncio.Semaphore


async def fetch_platform_files(event: IncomingEvent, ports: FilePorts, settings: Settings) -> list[dict[str, Any]]:
    """``event.attachments`` with every platform file fetched and stored (or marked unreadable),
    as wire dicts; the other attachments are left as they are."""
    application = await ports.applications.application_document(event.application_id)

    async def resolve(index: int, wire: Any) -> Any:
        attachment = parse(wire)
        if not isinstance(attachment, PlatformFile):
            return wire
        try:
            refused = _refused_as_declared(attachment, settings)
            if refused:
                raise DownloadError(refused)
            async with ports.downloads:
                stored = await asyncio.wait_for(
                    _fetch(event, index, attachment, application, ports, settings), FILE_BUDGET_S
                )
            return stored.to_wire()
        except TimeoutError:
            reason = f"fetching it took longer than {FILE_BUDGET_S:g}s"
        except (DownloadError, ChannelNotConfigured, InputError) as exc:
            reason = exc.message if isinstance(exc, InputError) else str(exc)
        logger.warning("event %s: file %d not taken: %s", event.event_id, index, reason)
        return attachment.unreadable(reason).to_wire()

    return list(await asyncio.gather(*(resolve(i, a) for i, a in enumerate(event.attachments))))


def _refused_as_declared(attachment: PlatformFile, settings: Settings) -> str | None:
    """Why the file would be refused by what the platform says of it, before fetching it."""
    if attachment.size > settings.max_upload_bytes:
        return f"the file is larger than {settings.max_upload_bytes} bytes"
    declared = attachment.content_type.split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream" and declared not in settings.upload_allowed_types:
        return f"files of type {declared!r} are not accepted"
    return None


async def _fetch(
    event: IncomingEvent, index: int, attachment: PlatformFile, application: dict[str, Any] | None,
    ports: FilePorts, settings: Settings,
) -> StoredFile:
    channel = channel_for(attachment.platform)
    if channel is None or application is None:
        raise DownloadError("the file's platform or application is unknown")
    download = await channel.download(
        ports.http, application, attachment.ref, max_bytes=settings.max_upload_bytes, policy=send_policy(settings)
    )
    declared = attachment.content_type or download.content_type
    content_type = checked_content_type(declared, download.data, settings.upload_allowed_types)
    key = stored_key(event, index, EXTENSIONS.get(content_type, ""))
    name = attachment.name or "file"
    metadata = {"application_id": event.application_id, "conversation_id": event.conversation_id,
                "user": event.sender, "platform": attachment.platform}
    size = await ports.files.put(key, download.data, content_type, name=name, metadata=metadata)
    logger.info("event %s: stored %s file %s (%s, %d bytes)", event.event_id, attachment.platform, key,
                content_type, size)
    return StoredFile(file_id=key, content_type=content_type, size=size, name=name)
