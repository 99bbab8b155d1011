"""Attachments: ``POST /v1/applications/{application_id}/uploads``, ``GET /v1/files/{key}`` and
``resolve_attachments``, which turns the ``attachments`` a client sends with a message into
references to put on the event. Protocol and limits: docs/attachments.md.

An upload is read as a stream and never past ``PARLEY_MAX_UPLOAD_BYTES`` (plus one read chunk);
its type must be on ``PARLEY_UPLOAD_ALLOWED_TYPES`` and, for images and PDFs, match the file's
magic bytes (``parley.filetypes``). ``GET /v1/files/{key}`` serves the files of a
``LocalFileStore`` (``parley dev``) through HMAC-signed, expiring links; with S3 the links are
presigned S3 URLs instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Awaitable
from typing import Any, TypeVar
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.helpers import parse_mimetype

from parley.attachments import MAX_ATTACHMENTS, StoredFile
from parley.filetypes import EXTENSIONS, checked_content_type
from parley.ports import Configs, FileStore, UploadLedger
from parley.storage.files import (
    KEY_PATTERN,
    FileStoreError,
    LinkError,
    LocalFileStore,
    make_key,
)
from parley.validation import InputError, require_id
from parley.web.auth import TokenError, origin_allowed, verify_user_token
from parley.web.deps import WebDeps
from parley.web.keys import DEPS, SETTINGS

__all__ = [
    "MAX_ATTACHMENTS",
    "add_upload_routes",
    "file_handler",
    "openapi_paths",
    "resolve_attachments",
    "upload_handler",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Bytes read from the request at a time.
READ_CHUNK = 64 * 1024
#: The smallest read the multipart parser accepts (it must see a whole boundary).
_MIN_READ = 4096
#: Room for the multipart framing and the small fields around the file, in a Content-Length.
FORM_OVERHEAD = 16 * 1024
MAX_PARTS = 8
MAX_NAME_BYTES = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _error(exc: InputError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=headers)


# --- upload ---------------------------------------------------------------------------------


async def upload_handler(request: web.Request) -> web.Response:
    try:
        return await _upload(request)
    except InputError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, QuotaExceeded):
            headers = {"Retry-After": str(exc.retry_after)}
        response = _error(exc, headers)
        if exc.status == 413:
            response.force_close()  # do not keep a connection with an unread body around
        return response


async def _upload(request: web.Request) -> web.Response:
    deps, settings = request.app[DEPS], request.app[SETTINGS]
    application_id = require_id(dict(request.match_info), "application_id")
    config = await _application_config(deps.configs, application_id)
    origin = request.headers.get(hdrs.ORIGIN)
    if not origin_allowed(origin, getattr(config, "allowed_origins", ()), request.headers.get("Host")):
        raise InputError(
            "forbidden_origin", f"origin {origin!r} may not upload to application {application_id!r}", status=403
        )
    user_id = await _authenticate(request, deps, application_id, getattr(config, "allow_anonymous", True))

    limit = settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + FORM_OVERHEAD:
        raise _too_large(limit)
    body_type = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, ""))
    if (body_type.type, body_type.subtype) != ("multipart", "form-data"):
        raise InputError(
            "not_multipart", "send the file as multipart/form-data with one part named 'file'", status=415
        )
    form = await _read_form(request, limit)

    assert form.data is not None  # _read_form refuses a form without the file
    content_type = checked_content_type(form.declared_type, form.data, settings.upload_allowed_types)
    extension = EXTENSIONS.get(content_type, "")
    key = make_key(application_id, extension)
    name = _clean_name(form.filename) or f"file{extension}"
    metadata = {"application_id": application_id, "conversation_id": form.conversation_id, "user": user_id or ""}
    store, ledger, now = deps.files, deps.uploads, time.time()
    quota = settings.upload_quota_bytes_per_hour
    if quota:
        wait = await _ledger(ledger.reserve(application_id, len(form.data), quota, now))
        if wait:
            raise QuotaExceeded(application_id, quota, wait)
    try:
        size = await store.put(key, form.data, content_type, name=name, metadata=metadata)
        url = await store.presigned_url(key, settings.files_url_expiry_s)
    except FileStoreError as exc:
        logger.warning("upload for %s not stored: %s", application_id, exc)
        if quota:
            await _ledger(ledger.release(application_id, len(form.data), now))
        raise InputError("unavailable", "the file store did not answer; retry later", status=503) from exc
    try:
        await _ledger(ledger.record(key, application_id, size, now))
    except InputError:
        with contextlib.suppress(FileStoreError):  # a file without its record would never expire
            await store.delete(key)
        raise
    logger.info("stored upload %s (%s, %d bytes) for %s", key, content_type, size, application_id)
    stored = StoredFile(file_id=key, content_type=content_type, size=size, name=name)
    return web.json_response({**stored.to_wire(), "url": url}, status=201)


class QuotaExceeded(InputError):
    def __init__(self, application_id: str, quota: int, retry_after: float) -> None:
        super().__init__(
            "upload_quota",
            f"application {application_id!r} has used its upload quota of {quota} bytes for this hour; "
            f"retry in {math.ceil(retry_after)} s",
            status=429,
        )
        self.retry_after = math.ceil(retry_after)


async def _ledger(call: Awaitable[T]) -> T:
    """A call of the upload ledger (the document store): 503 when it fails."""
    try:
        return await call
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the document store is down: retry later
        logger.warning("upload ledger: %s", exc)
        raise InputError("unavailable", "the document store did not answer; retry later", status=503) from exc


async def _application_config(configs: Configs, application_id: str) -> Any:
    try:
        config = await configs.application(application_id)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - the document store is down: retry later
        logger.warning("upload: cannot load application %s: %s", application_id, exc)
        raise InputError("unavailable", "the document store did not answer; retry later", status=503) from exc
    if config is None:
        raise InputError("unknown_application", f"no application {application_id!r}", status=404)
    return config


async def _authenticate(request: web.Request, deps: WebDeps, application_id: str, allow_anonymous: bool) -> str | None:
    """The user id of a valid ``Authorization: Bearer <user token>`` (``parley.web.auth``).

    Without one, only an application with neither a ``secret`` nor ``allow_anonymous: false``
    accepts the upload. Tokens are the websocket's: minted with the application's secret."""
    header = request.headers.get(hdrs.AUTHORIZATION)
    token: str | None = None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise InputError("unauthorized", "the Authorization header must be 'Bearer <user token>'", status=401)
        token = value.strip()
    application = await deps.configs.application_document(application_id) or {}
    stored_secret = application.get("secret")
    secret = stored_secret if isinstance(stored_secret, str) else ""
    if token is None:
        if secret or not allow_anonymous:
            raise InputError(
                "unauthorized",
                f"application {application_id!r} requires a user token: send 'Authorization: Bearer <token>'",
                status=401,
            )
        return None
    try:
        return verify_user_token(token, secret, application_id, max_lifetime_s=request.app[SETTINGS].user_token_max_lifetime_s)
    except TokenError as exc:
        raise InputError("unauthorized", str(exc), status=401) from exc


def _too_large(limit: int) -> InputError:
    return InputError("too_large", f"the file is larger than the limit of {limit} bytes", status=413)


class _Form:
    def __init__(self) -> None:
        self.data: bytes | None = None
        self.declared_type = ""
        self.filename = ""
        self.conversation_id = ""


async def _read_form(request: web.Request, limit: int) -> _Form:
    form = _Form()
    try:
        reader = await request.multipart()
        for _ in range(MAX_PARTS):
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise InputError("invalid_multipart", "nested multipart bodies are not accepted")
            encoding = (part.headers.get(hdrs.CONTENT_TRANSFER_ENCODING) or "binary").lower()
            if encoding not in ("binary", "8bit", "7bit"):
                raise InputError("invalid_multipart", f"Content-Transfer-Encoding {encoding!r} is not accepted")
            if part.name == "file":
                if form.data is not None:
                    raise InputError("invalid_multipart", "send one part named 'file', not several")
                form.declared_type = part.headers.get(hdrs.CONTENT_TYPE, "")
                form.filename = part.filename or ""
                form.data = await _read_part(part, limit, _too_large(limit))
            elif part.name == "conversation_id":
                raw = await _read_part(part, 256, InputError("invalid_field", "field 'conversation_id' is too long"))
                form.conversation_id = require_id({"conversation_id": raw.decode("utf-8", "replace")}, "conversation_id")
            else:
                raise InputError("invalid_multipart", f"unexpected part {part.name!r}: send 'file' and optionally 'conversation_id'")
        else:
            raise InputError("invalid_multipart", f"more than {MAX_PARTS} parts")
    except InputError:
        raise
    except (ValueError, AssertionError, RuntimeError) as exc:  # aiohttp's multipart parser
        raise InputError("invalid_multipart", f"the multipart body is malformed: {exc}") from exc
    if form.data is None:
        raise InputError("missing_file", "send the file in a multipart part named 'file'")
    if not form.data:
        raise InputError("empty_file", "the file is empty")
    return form


async def _read_part(part: BodyPartReader, limit: int, too_large: InputError) -> bytes:
    """The part's bytes; ``too_large`` as soon as more than ``limit`` arrive (nothing more is read)."""
    data = bytearray()
    while True:
        want = max(_MIN_READ, min(READ_CHUNK, limit + 1 - len(data)))
        chunk = await part.read_chunk(want)
        if not chunk:
            return bytes(data)
        if len(data) + len(chunk) > limit:
            raise too_large
        data.extend(chunk)


def _clean_name(filename: str) -> str:
    """The file's base name without control characters, at most ``MAX_NAME_BYTES`` of UTF-8.
    Percent escapes are decoded: browsers escape ``"`` and line breaks, aiohttp everything."""
    name = unquote(filename)
    name = _CONTROL.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name.encode("utf-8")[:MAX_NAME_BYTES].decode("utf-8", "ignore").strip()


# --- local file links -----------------------------------------------------------------------


async def file_handler(request: web.Request) -> web.StreamResponse:
    """``GET /v1/files/{key}?expires=..&sig=..``: a file of the local store, through a link it signed."""
    store = request.app[DEPS].files
    key = request.match_info["key"]
    if not isinstance(store, LocalFileStore):
        return _error(InputError("not_found", "files are served by the object store's links", status=404))
    try:
        store.verify_link(key, request.query.get("expires"), request.query.get("sig"))
    except LinkError as exc:
        return _error(InputError("forbidden", str(exc), status=403))
    try:
        path = store.path_for(key)
    except ValueError:
        return _error(InputError("not_found", "no such file", status=404))
    info = await store.stat(key)
    if info is None:
        return _error(InputError("not_found", "no such file", status=404))
    disposition = "inline" if info.content_type.startswith("image/") else "attachment"
    remaining = max(0, int(request.query["expires"]) - int(time.time()))
    return web.FileResponse(
        path,
        headers={
            hdrs.CONTENT_TYPE: info.content_type,
            hdrs.CONTENT_DISPOSITION: f"{disposition}; filename*=UTF-8''{quote(info.name or 'file', safe='')}",
            hdrs.CACHE_CONTROL: f"private, max-age={remaining}",
            "X-Content-Type-Options": "nosniff",
        },
    )


# --- referencing files from messages ----------------------------------------------------------


async def resolve_attachments(
    files: FileStore, uploads: UploadLedger, application_id: str, raw: Any
) -> list[dict[str, Any]]:
    """The ``attachments`` of a message frame or webhook body (``[{"file_id": ...}]``, at most
    ``MAX_ATTACHMENTS``) as references for ``IncomingEvent.attachments``: the wire form of a
    ``parley.attachments.StoredFile``, in the order given, duplicates dropped.

    ``InputError`` (400) when the value is malformed or names a file that is not an upload of
    ``application_id``; 503 when the file store does not answer. The files are noted as
    referenced, so they do not expire (``parley.storage.uploads``).
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InputError("invalid_field", "field 'attachments' must be a list of {\"file_id\": ...} objects")
    if len(raw) > MAX_ATTACHMENTS:
        raise InputError("too_many_attachments", f"a message may carry at most {MAX_ATTACHMENTS} attachments")
    file_ids: list[str] = []
    for item in raw:
        file_id = item.get("file_id") if isinstance(item, dict) else None
        if not isinstance(file_id, str) or not file_id:
            raise InputError("invalid_field", "each attachment must be an object with a 'file_id' string")
        if file_id not in file_ids:
            file_ids.append(file_id)
    resolved = []
    for file_id in file_ids:
        match = KEY_PATTERN.match(file_id)
        info = None
        if match is not None and match["application_id"] == application_id:
            try:
                info = await files.stat(file_id)
            except FileStoreError as exc:
                raise InputError("unavailable", "the file store did not answer; retry later", status=503) from exc
        if info is None:
            raise InputError("unknown_file", f"no uploaded file {file_id[:200]!r} in application {application_id!r}")
        resolved.append(
            StoredFile(file_id=file_id, content_type=info.content_type, size=info.size, name=info.name).to_wire()
        )
    await _ledger(uploads.referenced(file_ids, time.time()))  # kept: a message uses them
    return resolved


def add_upload_routes(app: web.Application) -> None:
    app.router.add_post("/v1/applications/{application_id}/uploads", upload_handler)
    app.router.add_get("/v1/files/{key:.+}", file_handler)


def openapi_paths(id_schema: dict[str, Any]) -> dict[str, Any]:
    """This module's routes, for ``/v1/openapi.json`` (``parley.web.openapi``)."""

    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}

    uploaded = {
        "type": "object",
        "required": ["file_id", "content_type", "size", "name", "url"],
        "properties": {
            "file_id": {"type": "string", "description": "`{application_id}/{yyyy}/{mm}/{uuid}{ext}`; "
                        "reference it from messages as `{\"file_id\": ...}`."},
            "content_type": {"type": "string"},
            "size": {"type": "integer"},
            "name": {"type": "string"},
            "url": {"type": "string", "format": "uri", "description": "Reads the file until PARLEY_FILES_URL_EXPIRY_S."},
        },
    }
    return {
        "/v1/applications/{application_id}/uploads": {
            "post": {
                "operationId": "upload_file",
                "summary": "Upload an attachment",
                "description": "One multipart part `file` (and optionally `conversation_id`); see "
                "docs/attachments.md. An application with a `secret` or `allow_anonymous: false` needs "
                "`Authorization: Bearer <user token>`.",
                "tags": ["ingress"],
                "parameters": [{"name": "application_id", "in": "path", "required": True, "schema": id_schema}],
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"},
                                   "conversation_id": id_schema},
                }}}},
                "responses": {
                    "201": {"description": "Stored.", "content": {"application/json": {"schema": uploaded}}},
                    "400": error("Malformed form, missing or empty file."),
                    "401": error("A user token is required, or it is not valid."),
                    "403": error("A browser origin the application does not allow."),
                    "404": error("No such application."),
                    "413": error("Larger than PARLEY_MAX_UPLOAD_BYTES."),
                    "429": {
                        "description": "The application's uploads of this hour reached "
                        "PARLEY_UPLOAD_QUOTA_BYTES_PER_HOUR; retry after Retry-After seconds.",
                        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                    "415": error("Not multipart, a type not allowed, or content that contradicts the type."),
                    "503": error("The file store or the document store did not answer: retry later."),
                },
            }
        },
        "/v1/files/{key}": {
            "get": {
                "operationId": "get_file",
                "summary": "Read a file through a signed link (local file store only)",
                "tags": ["ingress"],
                "parameters": [
                    {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "expires", "in": "query", "required": True, "schema": {"type": "integer"}},
                    {"name": "sig", "in": "query", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "The file, with its stored type."},
                    "403": error("The link is expired or forged."),
                    "404": error("No such file, or files are served by S3."),
                },
            }
        },
    }
