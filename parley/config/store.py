"""Application and chatbot configuration, read from the document store through a cache.

Application and chatbot documents are cached under separate keys and ``ApplicationConfig`` is
built from both on every call, so invalidating one chatbot reaches every application using it.
With Redis (``RedisCache``) the cache is shared by every process and an admin write's
invalidation reaches them all at once; there is no second in-process layer. Without Redis each
process has its own ``InMemoryCache`` with a short TTL (``PARLEY_CONFIG_LOCAL_CACHE_TTL_S``).
When Redis fails, reads fall through to MongoDB.

Whole application documents, with the write-only ``secret`` and ``channels`` (the credentials
that verify tokens and webhooks and send to platforms), are cached too, but only in the process
that read them and only for ``PARLEY_CONFIG_LOCAL_CACHE_TTL_S``: they never go to Redis, and a
webhook or hello costs no store read per request. After a secret is rotated, another process
may accept the old one for up to that many seconds.

While the document store is down, a document whose cache entry has expired is served as this
process last read it (``LAST_KNOWN_ENTRIES`` of them), so turns go on through an outage instead
of failing; an invalidation forgets it.

Stored documents are checked against their models (``parley.config.models``) when loaded: a
field that does not fit (e.g. a hand-edited ``temperature: "hot"``) is ignored with a warning
and takes its default.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from parley.config.models import (
    APPLICATION_FIELDS,
    CHATBOT_FIELDS,
    WRITE_ONLY_FIELDS,
    ApplicationConfig,
    Chatbot,
    ChatbotConfig,
    Kind,
    validate_document,
)
from parley.redact import register_application_secrets
from parley.retry import ThrottledLog, store_outage
from parley.settings import Settings
from parley.singleflight import SingleFlight
from parley.storage.cache import Cache, InMemoryCache
from parley.storage.documents import DocumentStore

__all__ = [
    "DEMO_APPLICATION",
    "DEMO_CHATBOT",
    "ApplicationConfig",
    "ConfigStore",
    "application_key",
    "chatbot_config",
    "chatbot_key",
]

logger = logging.getLogger(__name__)

#: Documents remembered per process for a document store outage (least recently used dropped).
LAST_KNOWN_ENTRIES = 10_000

#: After the document store failed to answer, how long loads of documents this process has
#: read before go straight to those (no store timeout per read while it is down).
OUTAGE_HOLD_S = 2.0

#: Part of every cache key: bump it when the cached layout changes, so processes of two versions
#: running side by side never read each other's entries.
CACHE_FORMAT = "v1"

DEMO_APPLICATION: dict[str, Any] = {
    "_id": "demo",
    "name": "Parley demo",
    "chatbot_id": "demo",
    "callback_url": None,
}
DEMO_CHATBOT: dict[str, Any] = {
    "_id": "demo",
    "system_prompt": "You are Parley's demo assistant. Answer briefly. Use tools when they help.",
    "tools": None,
}

#: Application fields the pipeline uses. ``secret`` and ``channels`` are never cached.
_APPLICATION_FIELDS = tuple(name for name in APPLICATION_FIELDS if name not in WRITE_ONLY_FIELDS)


def application_key(application_id: str) -> str:
    return f"parley:config:{CACHE_FORMAT}:application:{application_id}"


def chatbot_key(chatbot_id: str) -> str:
    return f"parley:config:{CACHE_FORMAT}:chatbot:{chatbot_id}"


class ConfigStore:
    def __init__(self, documents: DocumentStore, settings: Settings, cache: Cache | None = None) -> None:
        self._documents = documents
        self._settings = settings
        self._cache: Cache = cache if cache is not None else InMemoryCache()
        self._ttl_s = (
            settings.config_cache_ttl_s if self._cache.shared else settings.config_local_cache_ttl_s
        )
        # bumped by every invalidation: a load that overlapped one does not fill the cache, so a
        # read racing an admin write cannot put the old document back (within this process)
        self._invalidations = 0
        self._loads: SingleFlight[str, dict[str, Any] | None] = SingleFlight()
        self._credentials: Cache = InMemoryCache()  # never shared: holds secrets
        self._last_known: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._outage_log = ThrottledLog(logger)
        self._store_down_until = 0.0

    async def application(self, application_id: str) -> ApplicationConfig | None:
        """The application's config, or None when no such application exists."""
        app_doc = await self._cached(
            application_key(application_id), application_id, self._documents.get_application,
            "application", _APPLICATION_FIELDS,
        )
        if app_doc is None:
            return None
        bot_doc: dict[str, Any] | None = None
        chatbot_id = app_doc.get("chatbot_id")
        if chatbot_id:
            bot_doc = await self._cached(
                chatbot_key(chatbot_id), chatbot_id, self._documents.get_chatbot,
                "chatbot", CHATBOT_FIELDS,
            )
            if bot_doc is None:
                logger.warning(
                    "application %s uses chatbot %s, which does not exist: answering with defaults",
                    application_id, chatbot_id,
                )
        origins = app_doc.get("allowed_origins") or ()
        return ApplicationConfig(
            application_id=application_id,
            callback_url=app_doc.get("callback_url"),
            chatbot=chatbot_config(
                bot_doc, self._settings, chatbot_id=chatbot_id if bot_doc is not None else None
            ),
            name=str(app_doc.get("name") or ""),
            allow_anonymous=bool(app_doc.get("allow_anonymous", True)),
            allowed_origins=tuple(origins),
            widget=dict(app_doc["widget"]) if isinstance(app_doc.get("widget"), dict) else {},
        )

    async def application_document(self, application_id: str) -> dict[str, Any] | None:
        """The whole stored application document, credentials included (this process's cache)."""
        doc = await self._cached(
            "credentials:" + application_key(application_id), application_id,
            self._documents.get_application, None, (), cache=self._credentials,
            ttl_s=self._settings.config_local_cache_ttl_s,
        )
        return dict(doc) if doc is not None else None

    async def invalidate(self, application_id: str) -> None:
        """Forget the cached application document (every process, with Redis)."""
        self._invalidations += 1
        for key in (application_key(application_id), "credentials:" + application_key(application_id)):
            self._last_known.pop(key, None)
        await self._credentials.delete("credentials:" + application_key(application_id))
        await self._cache.delete(application_key(application_id))

    async def invalidate_chatbot(self, chatbot_id: str) -> None:
        """Forget the cached chatbot document: every application using it reloads it."""
        self._invalidations += 1
        self._last_known.pop(chatbot_key(chatbot_id), None)
        await self._cache.delete(chatbot_key(chatbot_id))

    async def seed_demo(self) -> None:
        """Create the demo application and chatbot if they do not exist yet."""
        if await self._documents.get_application(DEMO_APPLICATION["_id"]) is None:
            await self._documents.put_application(dict(DEMO_APPLICATION))
            await self.invalidate(DEMO_APPLICATION["_id"])
        if await self._documents.get_chatbot(DEMO_CHATBOT["_id"]) is None:
            await self._documents.put_chatbot(dict(DEMO_CHATBOT))
            await self.invalidate_chatbot(DEMO_CHATBOT["_id"])

    async def _cached(
        self,
        key: str,
        doc_id: str,
        load: Callable[[str], Awaitable[dict[str, Any] | None]],
        kind: Kind | None,
        fields: tuple[str, ...],
        *,
        cache: Cache | None = None,
        ttl_s: float | None = None,
    ) -> dict[str, Any] | None:
        """The document through ``cache`` (the config cache by default); ``kind`` None: the
        stored document as it is, else its known ``fields`` checked against the schema."""
        cache = cache if cache is not None else self._cache
        raw = await cache.get(key)
        if raw is not None:
            try:
                entry = json.loads(raw)
                doc = entry["doc"]
                if doc is None or isinstance(doc, dict):
                    return doc
            except (ValueError, KeyError, TypeError):
                pass
            logger.warning("ignoring an unreadable cache entry %s", key)
        # One load per key at a time: a thousand turns starting together for one application
        # read its document once, not a thousand times (which exhausts the Mongo pool).
        return await self._loads.run(key, lambda: self._load(key, doc_id, load, kind, fields, cache, ttl_s))

    async def _load(
        self,
        key: str,
        doc_id: str,
        load: Callable[[str], Awaitable[dict[str, Any] | None]],
        kind: Kind | None,
        fields: tuple[str, ...],
        cache: Cache,
        ttl_s: float | None,
    ) -> dict[str, Any] | None:
        """The document from the store (cached), or as last read while the store is down."""
        invalidations = self._invalidations
        if key in self._last_known and time.monotonic() < self._store_down_until:
            return self._last_known[key]  # the store was down a moment ago: do not wait on it
        try:
            stored = await load(doc_id)
        except Exception as exc:
            if not store_outage(exc):
                raise
            self._store_down_until = time.monotonic() + OUTAGE_HOLD_S
            if key not in self._last_known:
                raise
            self._outage_log.warning(
                "the document store did not answer (%s: %s); using the configs last read", type(exc).__name__, exc
            )
            return self._last_known[key]
        register_application_secrets(stored)  # hidden from every log line from now on
        doc = stored if stored is None or kind is None else _checked(kind, doc_id, stored, fields)
        if invalidations == self._invalidations:
            await cache.set(key, json.dumps({"doc": doc}, default=str).encode(), ttl_s or self._ttl_s)
            self._remember(key, doc)
        return doc

    def _remember(self, key: str, doc: dict[str, Any] | None) -> None:
        self._last_known[key] = doc
        self._last_known.move_to_end(key)
        while len(self._last_known) > LAST_KNOWN_ENTRIES:
            self._last_known.popitem(last=False)


def _checked(kind: Kind, doc_id: str, stored: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The known fields of a stored document, without those that break the schema."""
    doc = {name: stored[name] for name in fields if name in stored}
    for error in validate_document(doc, kind):
        name = error.field.split(".", 1)[0].split("[", 1)[0]
        if name in doc:
            logger.warning(
                "%s %s: ignoring stored field %s (%s); using its default", kind, doc_id, error.field, error.message
            )
            del doc[name]
    return doc


def chatbot_config(
    doc: dict[str, Any] | None, settings: Settings, *, chatbot_id: str | None = None
) -> ChatbotConfig:
    """The ``ChatbotConfig`` of a chatbot document whose fields fit the model (``_checked``):
    an absent field takes the model's default, or the setting for ``history_messages`` and
    ``max_tool_rounds``."""
    try:
        chatbot = Chatbot.model_validate(doc or {})
    except ValidationError:  # e.g. a cache entry another version wrote: what fits is used
        chatbot = Chatbot.model_validate(_checked("chatbot", str(chatbot_id), doc or {}, CHATBOT_FIELDS))
    return chatbot.config(settings, chatbot_id=str(chatbot_id or "default"))
