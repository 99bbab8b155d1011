"""What a file is: the types Parley knows, their key extensions, and the content checks every
file passes before it is stored (an upload, ``parley.web.uploads``, or a file fetched from a
messaging platform, ``parley.streams.platform_files``).

Layer 0: plain functions over bytes and strings; they raise ``parley.validation.InputError``
(415) so that the web edge answers with it and the worker can say why a file was not taken.
"""

from __future__ import annotations

from parley.validation import InputError

__all__ = ["EXTENSIONS", "TYPES_BY_EXTENSION", "checked_content_type", "media_type", "sniff"]

#: The MIME types Parley knows, with the extension their keys get.
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "application/pdf": ".pdf",
    "text/plain": ".txt",
}
TYPES_BY_EXTENSION = {ext: mime for mime, ext in EXTENSIONS.items()}

#: Types whose magic bytes are checked: a file declared as one of these must start with them.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # after b"RIFF" + 4 size bytes
    (b"%PDF-", 0, "application/pdf"),
)
_SNIFFED_TYPES = frozenset(mime for _, _, mime in _MAGIC)


def sniff(data: bytes) -> str | None:
    """The type the file's first bytes say it has, among PNG, JPEG, GIF, WebP and PDF."""
    for magic, offset, mime in _MAGIC:
        if data[offset : offset + len(magic)] == magic and (offset == 0 or data[:4] == b"RIFF"):
            return mime
    return None


def media_type(declared: str) -> str:
    """``type/subtype`` of a Content-Type, lowercased, without parameters or a ``+suffix``
    (``"image/svg+xml; x=1"`` -> ``"image/svg"``); ``""`` when none is given. The same reading
    as ``aiohttp.helpers.parse_mimetype``, which this layer does not import."""
    if not declared:
        return ""
    full = declared.split(";")[0].strip().lower()
    if full == "*":
        full = "*/*"
    main, _, sub = full.partition("/")
    return f"{main}/{sub.partition('+')[0]}" if main else ""


def checked_content_type(declared: str, data: bytes, allowed: tuple[str, ...]) -> str:
    """The type to store the file as: the declared one (or, when none or generic, the sniffed
    one), if allowed and not contradicted by the file's magic bytes."""
    content_type = media_type(declared)
    sniffed = sniff(data)
    if content_type in ("", "application/octet-stream"):
        if sniffed is None:
            raise InputError(
                "unsupported_type", "the file's type is not given and could not be recognised", status=415
            )
        content_type = sniffed
    if content_type not in allowed:
        raise InputError(
            "unsupported_type",
            f"files of type {content_type!r} are not accepted; allowed: {', '.join(allowed)}",
            status=415,
        )
    if (content_type in _SNIFFED_TYPES or sniffed is not None) and sniffed != content_type:
        raise InputError(
            "type_mismatch",
            f"the file is declared as {content_type!r} but its content "
            + (f"is {sniffed!r}" if sniffed else "does not start like one"),
            status=415,
        )
    if content_type.startswith("text/") and not _is_text(data):
        raise InputError("type_mismatch", f"the file is declared as {content_type!r} but is not UTF-8 text", status=415)
    return content_type


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
