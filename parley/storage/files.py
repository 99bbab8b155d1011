"""The file store: uploaded attachments, and the expiring links through which clients and models
read them back.

Two adapters behind one port:

- ``S3FileStore``: S3, MinIO or moto through ``aiobotocore``. Links are presigned GET URLs.
  Every call has connect/read timeouts and bounded retries (botocore's config), plus an overall
  deadline; a failure raises ``FileStoreError``.
- ``LocalFileStore`` (``parley dev``): files under ``{data_dir}/files/``; links point to the web
  app's ``GET /v1/files/{key}?expires=..&sig=..``, signed with HMAC-SHA256 — the local
  equivalent of a presigned URL.

A file's key is ``{application_id}/{yyyy}/{mm}/{32 hex}{.ext}``; it is also the ``file_id``
clients reference. ``KEY_PATTERN`` is the only shape accepted anywhere a key comes from outside,
which, with the resolved-path check of ``LocalFileStore``, makes path traversal impossible.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlencode

from parley.ports import FileInfo, FileStore, FileStoreError
from parley.settings import Settings

__all__ = [
    "FileInfo",
    "FileStore",
    "FileStoreError",
    "KEY_PATTERN",
    "LocalFileStore",
    "S3FileStore",
    "LinkError",
    "file_store_from_settings",
    "is_valid_key",
    "make_key",
]

logger = logging.getLogger(__name__)

#: ``{application_id}/{yyyy}/{mm}/{uuid hex}{.ext}``; the application id follows the id rule
#: of ``parley.validation`` (it starts with a letter or digit, so never ``.`` or ``..``).
KEY_PATTERN = re.compile(
    r"^(?P<application_id>[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127})/[0-9]{4}/[0-9]{2}/[0-9a-f]{32}(?:\.[a-z0-9]{1,8})?$"
)

T = TypeVar("T")


def is_valid_key(key: str) -> bool:
    return bool(KEY_PATTERN.match(key))


def make_key(
    application_id: str, extension: str, *, now: float | None = None, unique: str | None = None
) -> str:
    """A key for a file of ``application_id``; ``extension`` is ``""`` or like ``".png"``. Fresh
    unless ``unique`` (32 lowercase hex digits) is given: then the same inputs give the same key."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=UTC)
    key = f"{application_id}/{moment:%Y}/{moment:%m}/{unique or uuid.uuid4().hex}{extension}"
    if not is_valid_key(key):
        raise ValueError(f"cannot make a file key from {application_id!r} and {extension!r}")
    return key


async def _collect(data: bytes | AsyncIterable[bytes]) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    chunks = [bytes(chunk) async for chunk in data]
    return b"".join(chunks)


# --- S3 -------------------------------------------------------------------------------------


class S3FileStore:
    """S3 through ``aiobotocore``: one client per process, created on start.

    The bucket is created on start when missing; if S3 is unreachable then, start logs a warning
    and the first ``put`` tries again, so a worker does not die of an S3 outage.
    Streams given to ``put`` are collected in memory first (callers bound their size).
    """

    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        endpoint_url: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        timeout_s: float = 10.0,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self.endpoint_url = endpoint_url
        self._access_key_id = access_key_id
        self._secret_access_key = secret_access_key
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        # Backstop over botocore's own per-request timeouts and retries (with their backoff).
        self.call_deadline_s = 2 * timeout_s * max_attempts + 5.0
        self._client: Any = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._bucket_ready = False

    @classmethod
    def from_settings(cls, settings: Settings) -> S3FileStore:
        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        return cls(
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url,
            access_key_id=secret(settings.s3_access_key_id),
            secret_access_key=secret(settings.s3_secret_access_key),
            timeout_s=settings.s3_timeout_s,
            max_attempts=settings.s3_max_attempts,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            raise FileStoreError("the S3 file store is not started")
        return self._client

    async def start(self) -> None:
        from aiobotocore.config import AioConfig
        from aiobotocore.session import get_session

        config = AioConfig(
            connect_timeout=self.timeout_s,
            read_timeout=self.timeout_s,
            retries={"total_max_attempts": self.max_attempts, "mode": "standard"},
            signature_version="s3v4",
            # MinIO and moto serve buckets under the path, not as subdomains
            s3={"addressing_style": "path"} if self.endpoint_url else {},
        )
        self._stack = contextlib.AsyncExitStack()
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3",
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self._access_key_id,
                aws_secret_access_key=self._secret_access_key,
                config=config,
            )
        )
        try:
            await self._ensure_bucket()
        except FileStoreError as exc:
            logger.warning("S3 bucket %s not checked at start (retried on first upload): %s", self.bucket, exc)

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            async with asyncio.timeout(self.call_deadline_s):
                return await call()
        except TimeoutError as exc:
            raise FileStoreError(f"S3 {what} did not finish within {self.call_deadline_s:g}s") from exc
        except ClientError:
            raise  # the caller decides what a 404 means
        except (BotoCoreError, OSError) as exc:
            raise FileStoreError(f"S3 {what} failed: {exc}") from exc

    async def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        if self._bucket_ready:
            return
        try:
            await self._call("head_bucket", lambda: self.client.head_bucket(Bucket=self.bucket))
        except ClientError as exc:
            if _status(exc) != 404:
                raise FileStoreError(f"S3 bucket {self.bucket!r} is not usable: {exc}") from exc
            params: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            try:
                await self._call("create_bucket", lambda: self.client.create_bucket(**params))
                logger.info("created S3 bucket %s", self.bucket)
            except ClientError as create_exc:
                code = create_exc.response.get("Error", {}).get("Code")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise FileStoreError(f"cannot create S3 bucket {self.bucket!r}: {create_exc}") from create_exc
        self._bucket_ready = True

    async def put(
        self,
        key: str,
        data: bytes | AsyncIterable[bytes],
        content_type: str,
        *,
        name: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        from botocore.exceptions import ClientError

        body = await _collect(data)
        await self._ensure_bucket()
        meta = {k: quote(v, safe="") for k, v in (metadata or {}).items()}
        if name:
            meta["name"] = quote(name, safe="")
        try:
            await self._call(
                "put_object",
                lambda: self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=meta
                ),
            )
        except ClientError as exc:
            raise FileStoreError(f"S3 put_object of {key} failed: {exc}") from exc
        return len(body)

    async def stat(self, key: str) -> FileInfo | None:
        from botocore.exceptions import ClientError

        try:
            head = await self._call("head_object", lambda: self.client.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise FileStoreError(f"S3 head_object of {key} failed: {exc}") from exc
        meta = {k: unquote(v) for k, v in (head.get("Metadata") or {}).items()}
        return FileInfo(
            key=key,
            content_type=str(head.get("ContentType") or "application/octet-stream"),
            size=int(head.get("ContentLength") or 0),
            name=meta.pop("name", ""),
            metadata=meta,
        )

    async def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        async def read() -> bytes:
            response = await self.client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as stream:
                return bytes(await stream.read())

        try:
            return await self._call("get_object", read)
        except ClientError as exc:
            raise FileStoreError(f"S3 get_object of {key} failed: {exc}") from exc

    async def delete(self, key: str) -> None:
        from botocore.exceptions import ClientError

        try:  # S3 answers 204 for a key that does not exist
            await self._call("delete_object", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            raise FileStoreError(f"S3 delete_object of {key} failed: {exc}") from exc

    async def presigned_url(self, key: str, expires_s: int) -> str:
        # Signing is local (no request), but may refresh credentials: same deadline as a call.
        return str(
            await self._call(
                "presign",
                lambda: self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=int(expires_s)
                ),
            )
        )


def _status(exc: Any) -> int | None:
    response = getattr(exc, "response", {}) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status is None and response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
        return 404
    return int(status) if status is not None else None


# --- local directory ------------------------------------------------------------------------

_META_SUFFIX = ".meta.json"


class LinkError(ValueError):
    """A local file link that is expired, forged or malformed (the web app answers 403)."""


class LocalFileStore:
    """Files under ``root``, each with a ``<name>.meta.json`` beside it (type, size, name).

    ``presigned_url`` returns ``{base_url}/v1/files/{key}?expires=<unix s>&sig=<hex>``, where
    ``sig`` is HMAC-SHA256(signing_key, ``"{key}\\n{expires}"``); the web app checks it with
    ``verify_link`` and serves ``path_for(key)``.
    """

    def __init__(self, root: Path, base_url: str, signing_key: bytes | None = None) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self._signing_key = signing_key or secrets.token_bytes(32)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalFileStore:
        key = settings.files_signing_key
        return cls(
            settings.data_dir / "files",
            settings.files_public_url or _local_base_url(settings),
            key.get_secret_value().encode("utf-8") if key is not None and key.get_secret_value() else None,
        )

    async def start(self) -> None:
        return None  # the directory is made by the first upload

    async def close(self) -> None:
        return None

    def path_for(self, key: str) -> Path:
        """The file's path; ``ValueError`` for anything that is not a key inside ``root``."""
        if not isinstance(key, str) or not is_valid_key(key):
            raise ValueError(f"not a file key: {key!r}")
        root = self.root.resolve()
        path = (root / key).resolve()
        if not path.is_relative_to(root):
            raise ValueError(f"file key {key!r} leaves the file directory")
        return path

    async def put(
        self,
        key: str,
        data: bytes | AsyncIterable[bytes],
        content_type: str,
        *,
        name: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> int:
        path = self.path_for(key)
        body = await _collect(data)
        meta = {"content_type": content_type, "size": len(body), "name": name, "metadata": dict(metadata or {})}
        await asyncio.to_thread(_write_file, path, body, json.dumps(meta).encode("utf-8"))
        return len(body)

    async def stat(self, key: str) -> FileInfo | None:
        try:
            path = self.path_for(key)
        except ValueError:
            return None
        meta = await asyncio.to_thread(_read_meta, path)
        if meta is None:
            return None
        return FileInfo(
            key=key,
            content_type=str(meta.get("content_type") or "application/octet-stream"),
            size=int(meta.get("size") or 0),
            name=str(meta.get("name") or ""),
            metadata={str(k): str(v) for k, v in (meta.get("metadata") or {}).items()},
        )

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            raise FileStoreError(f"cannot read file {key}: {exc}") from exc

    async def delete(self, key: str) -> None:
        path = self.path_for(key)
        await asyncio.to_thread(_remove_file, path)

    def sign(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self._signing_key, message, hashlib.sha256).hexdigest()

    async def presigned_url(self, key: str, expires_s: int) -> str:
        self.path_for(key)
        expires = int(time.time() + expires_s)
        query = urlencode({"expires": expires, "sig": self.sign(key, expires)})
        return f"{self.base_url}/v1/files/{quote(key, safe='/')}?{query}"

    def verify_link(self, key: str, expires: str | None, sig: str | None, *, now: float | None = None) -> None:
        """Raise ``LinkError`` unless ``sig`` signs ``key`` until ``expires`` and that is in the future."""
        if not expires or not sig or not expires.isdigit() or len(expires) > 12:
            raise LinkError("the link has no valid 'expires' and 'sig'")
        if not hmac.compare_digest(sig.encode("ascii", "replace"), self.sign(key, int(expires)).encode("ascii")):
            raise LinkError("the link's signature is not valid")
        if (time.time() if now is None else now) >= int(expires):
            raise LinkError("the link has expired; ask for a new one")


def _write_file(path: Path, body: bytes, meta: bytes) -> None:
    """Write the data, then its metadata (a file without metadata does not exist), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for target, content in ((path, body), (path.with_name(path.name + _META_SUFFIX), meta)):
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(content)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _remove_file(path: Path) -> None:
    """Remove the metadata first (a file without metadata does not exist), then the data."""
    for target in (path.with_name(path.name + _META_SUFFIX), path):
        with contextlib.suppress(FileNotFoundError):
            target.unlink()


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads(path.with_name(path.name + _META_SUFFIX).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not path.is_file():
        return None
    return meta


def _local_base_url(settings: Settings) -> str:
    host = settings.web_host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.web_port}"


def file_store_from_settings(settings: Settings) -> FileStore:
    """``S3FileStore`` or ``LocalFileStore``, as ``PARLEY_FILES_BACKEND`` says (see settings)."""
    backend = settings.files_backend
    if backend == "auto":
        backend = "s3" if settings.s3_endpoint_url or settings.s3_access_key_id else "local"
    if backend == "s3":
        return S3FileStore.from_settings(settings)
    return LocalFileStore.from_settings(settings)
