"""The files a user message carries, as typed values that own their wire form, how the model is
shown them and how their link is made.

On the wire (``IncomingEvent.attachments``, the user message in the ``conversations`` table's
history, the archive's ``attachments`` field) an attachment is a plain JSON object of one of
three shapes. The shapes never change: events on the log and archived documents written by
any build parse, and every value Parley writes comes back out as the same dict.

- ``StoredFile``, ``{"file_id", "content_type", "size", "name"}``: a file in Parley's file store,
  an upload a message references (``web.uploads``) or a platform file once fetched;
- ``PlatformFile``, ``{"platform", "ref", "content_type", "size", "name"}``: a file still on a
  messaging platform, as a webhook recorded it (``web.webhooks``); ``ref`` is the platform's own;
- ``UnreadableFile``, ``{"name", "content_type", "size", "error"}``: a platform file that could
  not be fetched or was refused.

``parse`` tells them apart: a ``platform`` key makes a platform file, an ``error`` key an
unreadable one, a ``file_id`` string a stored file. Anything else (not an object, or an object
of no known shape) is an ``UnreadableFile`` whose ``error`` says so, so one odd entry never
fails a turn.

How each reaches the model (``prompt_content``): a stored image is an OpenAI ``image_url``
part whose URL is the reference ``parley-file:<file_id>``; every other file is a line of the
message's text, ``[attached file: name (type, size)]``, with `` could not be read: <why>``
for an unreadable one.

How the link is made: only a stored file has one. Its ``parley-file:`` reference is swapped
for a fresh link from the file store (a presigned URL, or a ``data:`` URL) right before each
model call by ``parley.llm.attachments.FileLinkingModel``, so an image sent an hour ago still
works; when no link can be made the part becomes the text ``UNAVAILABLE_IMAGE``. A platform file
has no link: the worker fetches it through its channel before the turn
(``parley.streams.platform_files``) and replaces it with a stored or an unreadable file.

Layer 0: this module imports nothing of Parley's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FILE_REF_SCHEME",
    "MAX_ATTACHMENTS",
    "MAX_ERROR_CHARS",
    "MAX_NAME_CHARS",
    "UNAVAILABLE_IMAGE",
    "UNKNOWN_SHAPE",
    "Attachment",
    "PlatformFile",
    "StoredFile",
    "UnreadableFile",
    "file_ref",
    "parse",
    "parse_all",
    "prompt_content",
    "referenced_file_id",
    "to_wire",
]

#: Most files one message may carry.
MAX_ATTACHMENTS = 4

#: How a prompt refers to an attached image: ``parley-file:<file_id>`` in an ``image_url`` part.
FILE_REF_SCHEME = "parley-file:"

#: The text part that stands for an attached image whose link could not be made.
UNAVAILABLE_IMAGE = "[attached image: it could not be loaded]"

#: The ``error`` of an entry that is none of the three shapes.
UNKNOWN_SHAPE = "it is not an attachment Parley knows"

#: Longest ``name`` a platform file keeps; longest ``error`` an unreadable file keeps.
MAX_NAME_CHARS = 200
MAX_ERROR_CHARS = 300


def file_ref(file_id: str) -> str:
    """The prompt's reference to a stored file: ``parley-file:<file_id>``."""
    return FILE_REF_SCHEME + file_id


def referenced_file_id(url: Any) -> str | None:
    """The ``file_id`` a ``parley-file:`` reference names; None for any other URL."""
    if isinstance(url, str) and url.startswith(FILE_REF_SCHEME):
        return url[len(FILE_REF_SCHEME):]
    return None


def _size(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    return 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _readable_size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


class _Described:
    """What every kind has: a name, a declared type and a size, shown to clients and the model."""

    name: str
    content_type: str
    size: int

    def described(self) -> dict[str, Any]:
        """Name, type and size only: what a client is shown of an archived message's file (a
        platform's reference and a store's key stay on the server)."""
        return {"name": self.name, "content_type": self.content_type, "size": self.size}

    def prompt_label(self) -> str:
        return self.name

    def prompt_note(self) -> str:
        """The file as a line of the message's text."""
        return f"[attached file: {self.prompt_label()} ({self.content_type}, {_readable_size(self.size)})]"

    def prompt_part(self) -> dict[str, Any] | None:
        """The file as a content part of its own (an image), or None: it is a line of text."""
        return None


@dataclass(frozen=True)
class StoredFile(_Described):
    """A file in Parley's file store; ``file_id`` is its key (``parley.storage.files.KEY_PATTERN``)."""

    file_id: str
    content_type: str = ""
    size: int = 0
    name: str = ""

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> StoredFile:
        return cls(
            file_id=_text(wire.get("file_id")),
            content_type=_text(wire.get("content_type")),
            size=_size(wire.get("size")),
            name=_text(wire.get("name")),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "content_type": self.content_type, "size": self.size, "name": self.name}

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")

    @property
    def ref(self) -> str:
        """The prompt's reference to this file, linked right before each model call."""
        return file_ref(self.file_id)

    def prompt_label(self) -> str:
        return self.name or self.file_id

    def prompt_part(self) -> dict[str, Any] | None:
        if not self.is_image:
            return None
        return {"type": "image_url", "image_url": {"url": self.ref}}


@dataclass(frozen=True)
class PlatformFile(_Described):
    """A file still on a messaging platform: ``ref`` is what the platform's channel parsed from
    the webhook (``InboundMessage.attachments``), which its ``download`` fetches."""

    platform: str
    ref: Mapping[str, Any] = field(default_factory=dict)
    content_type: str = ""
    size: int = 0
    name: str = ""

    @classmethod
    def from_inbound(cls, platform: str, item: Mapping[str, Any]) -> PlatformFile:
        """A file as a channel parsed it (``mime_type``, ``file_name``, ``size``, ids...)."""
        size = item.get("size")
        return cls(
            platform=platform,
            ref=dict(item),
            content_type=str(item.get("mime_type") or ""),
            size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else 0,
            name=str(item.get("file_name") or item.get("type") or "file")[:MAX_NAME_CHARS],
        )

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> PlatformFile:
        ref = wire.get("ref")
        return cls(
            platform=_text(wire.get("platform")),
            ref=dict(ref) if isinstance(ref, Mapping) else {},
            content_type=_text(wire.get("content_type")),
            size=_size(wire.get("size")),
            name=_text(wire.get("name")),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "ref": dict(self.ref),
            "content_type": self.content_type,
            "size": self.size,
            "name": self.name,
        }

    def unreadable(self, reason: str) -> UnreadableFile:
        """This file, not taken for ``reason``."""
        return UnreadableFile(
            error=reason[:MAX_ERROR_CHARS], name=self.name, content_type=self.content_type, size=self.size
        )


@dataclass(frozen=True)
class UnreadableFile(_Described):
    """A file the user sent that Parley could not take; ``error`` says why, to the model."""

    error: str
    name: str = ""
    content_type: str = ""
    size: int = 0

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> UnreadableFile:
        return cls(
            error=_text(wire.get("error")),
            name=_text(wire.get("name")),
            content_type=_text(wire.get("content_type")),
            size=_size(wire.get("size")),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "content_type": self.content_type, "size": self.size, "error": self.error}

    def prompt_note(self) -> str:
        note = super().prompt_note()
        return f"{note[:-1]} could not be read: {self.error}]" if self.error else note


Attachment = StoredFile | PlatformFile | UnreadableFile


def parse(wire: Any) -> Attachment:
    """The attachment a wire dict is (the shapes are in the module's docstring); never raises."""
    if not isinstance(wire, Mapping):
        return UnreadableFile(error=UNKNOWN_SHAPE)
    if "platform" in wire:
        return PlatformFile.from_wire(wire)
    if "error" in wire:
        return UnreadableFile.from_wire(wire)
    file_id = wire.get("file_id")
    if isinstance(file_id, str) and file_id:
        return StoredFile.from_wire(wire)
    return UnreadableFile(
        error=UNKNOWN_SHAPE,
        name=_text(wire.get("name")),
        content_type=_text(wire.get("content_type")),
        size=_size(wire.get("size")),
    )


def parse_all(wires: Iterable[Any] | None) -> list[Attachment]:
    return [parse(wire) for wire in wires or ()]


def to_wire(attachments: Iterable[Attachment]) -> list[dict[str, Any]]:
    return [attachment.to_wire() for attachment in attachments]


def prompt_content(text: str, attachments: Iterable[Attachment]) -> str | list[dict[str, Any]]:
    """A user message's content with its files: each file that is not an image is a line after
    the text; images make the content a list of OpenAI parts, the text (when any) first."""
    parts: list[dict[str, Any]] = []
    notes: list[str] = []
    for attachment in attachments:
        part = attachment.prompt_part()
        if part is None:
            notes.append(attachment.prompt_note())
        else:
            parts.append(part)
    text = "\n".join(line for line in (text, *notes) if line)
    if not parts:
        return text
    return ([{"type": "text", "text": text}] if text else []) + parts
