"""The per-process runtime: every client Parley holds, created on start and closed on stop.

One ``Runtime`` per process, started by the Faust app before its consumers and agents.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from mode import Service

from parley.channels.egress import guarded_session
from parley.config.store import ConfigStore
from parley.egress import EgressPolicy
from parley.kafka_admin import ensure_topics, retained_for_new_group
from parley.llm import ModelRouter
from parley.llm.attachments import FileLinkingModel
from parley.ports import FileStore
from parley.settings import Settings
from parley.storage.bus import Bus, InProcessBus, RedisBus, conversation_channel
from parley.storage.cache import Cache, cache_from_settings
from parley.storage.documents import DocumentStore
from parley.storage.files import file_store_from_settings
from parley.storage.owners import ConversationOwners
from parley.streams.delivery import DeliveryPorts
from parley.streams.platform_files import MAX_CONCURRENT_DOWNLOADS, FilePorts
from parley.tools import ToolRegistry, default_registry
from parley.topics import ALL_TOPICS, INCOMING
from parley.users.commands import default_base_url, ensure_dev_owner, signin_url
from parley.users.service import UserService, user_service
from parley.web.deps import WebDeps

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)


class Runtime(Service):
    """Every client of the process. A worker (``worker_group`` set) also has the model; a gateway
    (``parley web``) opens only what the edges use: documents, bus, files, cache, HTTP."""

    documents: DocumentStore
    bus: Bus
    model: FileLinkingModel  # workers only: a ModelRouter that also links attached images
    cache: Cache
    configs: ConfigStore
    http: aiohttp.ClientSession
    egress: EgressPolicy
    downloads: asyncio.Semaphore  # slots for platform file downloads (streams.platform_files)
    files: FileStore
    owners: ConversationOwners  # who each conversation belongs to (hello, first message)
    store_reads: asyncio.Semaphore  # document store reads at the edges at once
    users: UserService  # operator accounts, sessions, tokens, the audit log

    def __init__(
        self, settings: Settings, *, seed_demo: bool = False, worker_group: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.seed_demo = seed_demo
        # Set in workers (their consumer group): checked for a first start; the model is made ready.
        self.worker_group = worker_group
        self.tools: ToolRegistry = default_registry()

    async def on_start(self) -> None:
        settings = self.settings
        if settings.mongo_url is None:
            raise RuntimeError(
                "PARLEY_MONGO_URL is not set: set it, or run `parley dev`, which starts an "
                "embedded document server"
            )
        if settings.kafka_url is not None:
            await ensure_topics(
                settings.kafka_url, list(ALL_TOPICS), settings.topic_partitions, settings.topic_replicas
            )
            if self.worker_group is not None:
                await report_new_group(settings.kafka_url, self.worker_group, settings.new_group_start)
        self.documents = DocumentStore(
            settings.mongo_url, settings.mongo_database,
            batch_max_docs=settings.store_batch_max_docs, batch_wait_s=settings.store_batch_wait_ms / 1000,
        )
        await self.documents.start()
        await self.documents.backfill_owner_records()
        self.bus = RedisBus(settings.redis_url) if settings.redis_url else InProcessBus()
        await self.bus.start()
        self.files = file_store_from_settings(settings)
        await self.files.start()
        if self.worker_group is not None:  # a worker answers turns; a gateway only serves edges
            # Prompts refer to attached images by file id; the model gets fresh links on every call.
            router = ModelRouter(settings)
            router.prepare()
            self.model = FileLinkingModel(
                router, self.files,
                expires_s=settings.files_url_expiry_s, inline=settings.files_inline_images,
            )
        self.cache = cache_from_settings(settings)
        self.configs = ConfigStore(self.documents, settings, self.cache)
        self.users = user_service(self.documents, self.cache, settings)
        await self.users.start()
        self.store_reads = asyncio.Semaphore(settings.store_read_concurrency)
        self.owners = ConversationOwners(
            self.documents, self.cache,
            ttl_s=settings.owner_cache_ttl_s, negative_ttl_s=settings.owner_negative_ttl_s,
        )
        # every call made on an application's behalf goes through the egress guard
        self.egress = EgressPolicy.from_settings(settings)
        self.http = guarded_session(self.egress, timeout=aiohttp.ClientTimeout(total=30))
        self.downloads = asyncio.Semaphore(MAX_CONCURRENT_DOWNLOADS)
        if self.seed_demo:
            await self.configs.seed_demo()
            await self._announce_dev_owner()
        model = getattr(self, "model", None)
        logger.info(
            "runtime started: model=%s bus=%s files=%s",
            model.name if model is not None else "- (gateway)", type(self.bus).__name__, type(self.files).__name__,
        )

    async def _announce_dev_owner(self) -> None:
        """``parley dev``: the dev owner (made on first start) and a one-time sign-in link."""
        user, secret, created = await ensure_dev_owner(self.users)
        base = default_base_url(self.settings)
        if self.settings.web_port == 0:
            base = "http://127.0.0.1:<port>"
        print(
            f"Parley dev: {'created the dev owner' if created else 'dev owner'} {user['email']}; sign in to the "
            f"console once with {signin_url(base, secret)} (valid {self.settings.signin_link_ttl_s:.0f} s; "
            f"another: `parley users link {user['email']}`)",
            flush=True,
        )

    async def on_stop(self) -> None:
        # Close in reverse order of creation; skip what on_start never got to create.
        for name in ("http", "model", "files", "users", "bus", "cache", "documents"):
            client = getattr(self, name, None)
            if client is None:
                continue
            try:
                await client.close()
            except Exception as exc:  # noqa: BLE001 - keep closing the others
                logger.warning("error while closing %s: %s", name, exc)

    def web_deps(self) -> WebDeps:
        """What the web layer uses, from the started clients."""
        deps = WebDeps(
            configs=self.configs, owners=self.owners, archive=self.documents, documents=self.documents,
            bus=self.bus, files=self.files, uploads=self.documents.uploads, http=self.http, store_reads=self.store_reads,
            egress=self.egress, tool_names=frozenset(self.tools.names()),
        )
        deps.users = self.users  # operator accounts, sessions, tokens and the audit log
        return deps

    def delivery_ports(self) -> DeliveryPorts:
        return DeliveryPorts(publish=self.publish, applications=self.configs, ledger=self.documents, http=self.http)

    def file_ports(self) -> FilePorts:
        return FilePorts(applications=self.configs, http=self.http, files=self.files, downloads=self.downloads)

    async def publish(self, application_id: str, conversation_id: str, frame: dict[str, Any]) -> None:
        await self.bus.publish(conversation_channel(application_id, conversation_id), frame)


async def report_new_group(kafka_url: str, group: str, start: str) -> None:
    """Say, before the worker joins, when its consumer group has never committed on ``incoming``
    while events are retained there: a new group under ``earliest`` answers all of them again
    (a renamed ``PARLEY_APP_ID`` does this). Best effort: a failed check never stops a worker."""
    try:
        retained = await retained_for_new_group(kafka_url, group, INCOMING)
    except Exception as exc:  # noqa: BLE001 - a probe; the worker starts either way
        logger.info("could not check the offsets of consumer group %r: %s", group, exc)
        return
    if not retained:
        return
    if start == "earliest":
        logger.warning(
            "consumer group %r has no committed offsets on %r: this worker answers the %d events "
            "retained there from the start (a first deployment on existing topics, or a new "
            "PARLEY_APP_ID?). Set PARLEY_NEW_GROUP_START=latest to take only new events.",
            group, INCOMING, retained,
        )
    else:
        logger.warning(
            "consumer group %r has no committed offsets on %r: it starts at the end "
            "(PARLEY_NEW_GROUP_START=latest); the %d events retained there are not answered.",
            group, INCOMING, retained,
        )
