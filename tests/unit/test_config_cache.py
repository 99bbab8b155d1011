"""InMemoryCache expiry and bound; ConfigStore's read-through caching and document mapping."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any

import pytest

from parley.config.models import ChatbotConfig, document_schema
from parley.config.store import ConfigStore, application_key, chatbot_key
from parley.settings import Settings
from parley.storage.cache import InMemoryCache, RedisCache, cache_from_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- InMemoryCache ----------------------------------------------------------------------------
async def test_entries_expire_after_their_ttl() -> None:
    clock = Clock()
    cache = InMemoryCache(clock=clock)
    await cache.set("a", b"1", ttl_s=5)
    await cache.set("b", b"2", ttl_s=10)
    clock.now += 4.9
    assert (await cache.get("a"), await cache.get("b")) == (b"1", b"2")
    clock.now += 0.1
    assert (await cache.get("a"), await cache.get("b")) == (None, b"2")
    clock.now += 5
    assert await cache.get("b") is None
    assert len(cache) == 0


async def test_set_replaces_and_delete_and_zero_ttl_remove() -> None:
    cache = InMemoryCache()
    await cache.set("a", b"1", ttl_s=5)
    await cache.set("a", b"2", ttl_s=5)
    assert await cache.get("a") == b"2"
    await cache.delete("a")
    await cache.delete("never-set")
    assert await cache.get("a") is None
    await cache.set("a", b"3", ttl_s=5)
    await cache.set("a", b"4", ttl_s=0)
    assert await cache.get("a") is None


async def test_the_cache_is_bounded_evicting_expired_then_least_recently_used() -> None:
    clock = Clock()
    cache = InMemoryCache(max_entries=3, clock=clock)
    await cache.set("old", b"x", ttl_s=1)
    await cache.set("a", b"a", ttl_s=60)
    await cache.set("b", b"b", ttl_s=60)
    clock.now += 2
    await cache.set("c", b"c", ttl_s=60)  # "old" has expired: it goes, nothing live does
    assert [await cache.get(k) for k in ("a", "b", "c")] == [b"a", b"b", b"c"]
    assert await cache.get("a") == b"a"  # "a" is now the most recently used
    await cache.set("d", b"d", ttl_s=60)
    assert len(cache) == 3
    assert [await cache.get(k) for k in ("a", "b", "c", "d")] == [b"a", None, b"c", b"d"]
    for i in range(100):
        await cache.set(f"k{i}", b"v", ttl_s=60)
    assert len(cache) == 3


async def test_redis_is_used_when_a_redis_url_is_set() -> None:
    assert isinstance(cache_from_settings(Settings(redis_url=None)), InMemoryCache)
    cache = cache_from_settings(Settings(redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(cache, RedisCache) and cache.shared
    await cache.close()


# --- ConfigStore ------------------------------------------------------------------------------
class Documents:
    """The two DocumentStore reads ConfigStore makes, counting them."""

    def __init__(self) -> None:
        self.applications: dict[str, dict[str, Any]] = {}
        self.chatbots: dict[str, dict[str, Any]] = {}
        self.loads: list[tuple[str, str]] = []
        self.gate: asyncio.Event | None = None

    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        self.loads.append(("application", application_id))
        doc = self.applications.get(application_id)
        snapshot = dict(doc) if doc else None  # read now, answered when the gate opens
        if self.gate is not None:
            await self.gate.wait()
        return snapshot

    async def get_chatbot(self, chatbot_id: str) -> dict[str, Any] | None:
        self.loads.append(("chatbot", chatbot_id))
        doc = self.chatbots.get(chatbot_id)
        return dict(doc) if doc else None

    async def put_application(self, doc: dict[str, Any]) -> None:
        self.applications[doc["_id"]] = doc

    async def put_chatbot(self, doc: dict[str, Any]) -> None:
        self.chatbots[doc["_id"]] = doc


class RecordingCache(InMemoryCache):
    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.ttls: list[float] = []
        self.values: dict[str, bytes] = {}

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self.ttls.append(ttl_s)
        self.values[key] = value
        await super().set(key, value, ttl_s)


FULL_CHATBOT = {
    "_id": "bot",
    "system_prompt": "Be precise.",
    "provider": "gemini",
    "model": "gemini-2.0-flash",
    "fallback_models": ["openai:gpt-4o-mini", "grok-2"],
    "temperature": 0.7,
    "max_tokens": 800,
    "history_token_budget": 9000,
    "tools": ["current_time"],
    "double_texting": "merge",
    "merge_window_s": 2.5,
    "history_messages": 12,
    "max_tool_rounds": 3,
    "rate_limit_per_minute": 20,
    "revision": 4,
    "updated_at": "2026-01-01T00:00:00.000Z",
}


@pytest.fixture
def documents() -> Documents:
    docs = Documents()
    docs.chatbots["bot"] = dict(FULL_CHATBOT)
    docs.chatbots["plain"] = {"_id": "plain"}
    docs.applications["app"] = {
        "_id": "app", "name": "Shop", "chatbot_id": "bot", "callback_url": "https://example.com/cb",
        "allow_anonymous": False, "allowed_origins": ["https://shop.example"],
        "secret": "s3cret-value", "channels": {"telegram": {"bot_token": "t0ken"}},
    }
    docs.applications["other"] = {"_id": "other", "name": "Other", "chatbot_id": "bot"}
    return docs


async def test_every_chatbot_field_reaches_chatbot_config(documents: Documents) -> None:
    configs = ConfigStore(documents, Settings())  # type: ignore[arg-type]
    config = await configs.application("app")
    assert config is not None
    assert (config.application_id, config.name, config.callback_url) == ("app", "Shop", "https://example.com/cb")
    assert (config.allow_anonymous, config.allowed_origins) == (False, ("https://shop.example",))
    assert config.chatbot == ChatbotConfig(
        chatbot_id="bot",
        system_prompt="Be precise.",
        provider="gemini",
        model="gemini-2.0-flash",
        fallback_models=("openai:gpt-4o-mini", "grok-2"),
        temperature=0.7,
        max_tokens=800,
        history_token_budget=9000,
        tools=("current_time",),
        double_texting="merge",
        merge_window_s=2.5,
        history_messages=12,
        max_tool_rounds=3,
        rate_limit_per_minute=20,
    )
    schema_fields = set(document_schema("chatbot")["properties"]) - {"id"}
    config_fields = {f.name for f in dataclasses.fields(ChatbotConfig)} - {"chatbot_id"}
    assert schema_fields == config_fields, "the chatbot schema and ChatbotConfig must have the same fields"


async def test_absent_fields_take_defaults_and_the_settings(documents: Documents) -> None:
    documents.applications["bare"] = {"_id": "bare", "chatbot_id": "plain"}
    documents.applications["orphan"] = {"_id": "orphan", "chatbot_id": "ghost"}
    settings = Settings(history_messages=17, max_tool_rounds=9)
    configs = ConfigStore(documents, settings)  # type: ignore[arg-type]
    expected = ChatbotConfig(history_messages=17, max_tool_rounds=9)
    bare = await configs.application("bare")
    assert bare is not None
    assert bare.chatbot == dataclasses.replace(expected, chatbot_id="plain")
    assert (bare.name, bare.callback_url, bare.allow_anonymous, bare.allowed_origins) == ("", None, True, ())
    orphan = await configs.application("orphan")
    assert orphan is not None and orphan.chatbot == expected


async def test_a_stored_field_breaking_the_schema_is_ignored_with_a_warning(
    documents: Documents, caplog: pytest.LogCaptureFixture
) -> None:
    documents.chatbots["bot"] = {**FULL_CHATBOT, "temperature": "hot", "fallback_models": ["ok", 3], "history_messages": 1}
    configs = ConfigStore(documents, Settings(history_messages=40))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="parley.config.store"):
        config = await configs.application("app")
        await configs.application("app")
    assert config is not None
    assert (config.chatbot.temperature, config.chatbot.fallback_models, config.chatbot.history_messages) == (None, (), 40)
    assert config.chatbot.system_prompt == "Be precise."
    warned = sorted(r.getMessage().split("ignoring stored field ")[1].split(" ")[0] for r in caplog.records)
    assert warned == ["fallback_models[1]", "history_messages", "temperature"], "one warning per field and load"


async def test_reads_go_through_the_cache_and_unknown_applications_are_cached_too(documents: Documents) -> None:
    configs = ConfigStore(documents, Settings())  # type: ignore[arg-type]
    for _ in range(3):
        assert await configs.application("app") is not None
        assert await configs.application("nope") is None
    assert documents.loads == [("application", "app"), ("chatbot", "bot"), ("application", "nope")]


async def test_invalidating_a_chatbot_reloads_it_for_every_application(documents: Documents) -> None:
    configs = ConfigStore(documents, Settings())  # type: ignore[arg-type]
    assert (await configs.application("app")).chatbot.system_prompt == "Be precise."  # type: ignore[union-attr]
    assert (await configs.application("other")).chatbot.system_prompt == "Be precise."  # type: ignore[union-attr]
    documents.chatbots["bot"]["system_prompt"] = "Be brief."
    assert (await configs.application("app")).chatbot.system_prompt == "Be precise."  # type: ignore[union-attr]
    await configs.invalidate_chatbot("bot")
    assert (await configs.application("app")).chatbot.system_prompt == "Be brief."  # type: ignore[union-attr]
    assert (await configs.application("other")).chatbot.system_prompt == "Be brief."  # type: ignore[union-attr]
    assert documents.loads.count(("chatbot", "bot")) == 2
    assert documents.loads.count(("application", "app")) == 1, "the application document stayed cached"

    documents.applications["app"]["callback_url"] = None
    await configs.invalidate("app")
    assert (await configs.application("app")).callback_url is None  # type: ignore[union-attr]


async def test_a_load_racing_an_invalidation_does_not_cache_the_old_document(documents: Documents) -> None:
    configs = ConfigStore(documents, Settings())  # type: ignore[arg-type]
    documents.gate = asyncio.Event()
    reader = asyncio.create_task(configs.application("app"))
    while not documents.loads:
        await asyncio.sleep(0)
    documents.applications["app"]["name"] = "Renamed"  # the write happens while the read is in flight
    await configs.invalidate("app")
    documents.gate.set()
    stale = await reader
    assert stale is not None and stale.name == "Shop"
    documents.gate = None
    config = await configs.application("app")
    assert config is not None and config.name == "Renamed"


async def test_secrets_stay_out_of_the_cache_and_ttls_follow_the_cache_kind(documents: Documents) -> None:
    shared = RecordingCache()
    configs = ConfigStore(documents, Settings(config_cache_ttl_s=42), shared)  # type: ignore[arg-type]
    await configs.application("app")
    assert shared.ttls == [42, 42]
    cached = json.loads(shared.values[application_key("app")])["doc"]
    assert cached == {
        "name": "Shop", "chatbot_id": "bot", "callback_url": "https://example.com/cb",
        "allow_anonymous": False, "allowed_origins": ["https://shop.example"],
    }
    assert "revision" not in json.loads(shared.values[chatbot_key("bot")])["doc"]

    clock = Clock()
    local = InMemoryCache(clock=clock)
    configs = ConfigStore(documents, Settings(config_cache_ttl_s=42, config_local_cache_ttl_s=3), local)  # type: ignore[arg-type]
    await configs.application("app")
    loads = len(documents.loads)
    clock.now += 2.9
    await configs.application("app")
    assert len(documents.loads) == loads
    clock.now += 0.2
    await configs.application("app")
    assert len(documents.loads) == loads + 2, "the in-process TTL is config_local_cache_ttl_s"


async def test_an_unreadable_cache_entry_is_a_miss(documents: Documents) -> None:
    cache = InMemoryCache()
    configs = ConfigStore(documents, Settings(), cache)  # type: ignore[arg-type]
    await cache.set(application_key("app"), b"\x00not json", ttl_s=60)
    config = await configs.application("app")
    assert config is not None and config.name == "Shop"


async def test_seed_demo_creates_the_demo_once_and_replaces_a_cached_miss(documents: Documents) -> None:
    configs = ConfigStore(documents, Settings())  # type: ignore[arg-type]
    assert await configs.application("demo") is None
    await configs.seed_demo()
    demo = await configs.application("demo")
    assert demo is not None and demo.chatbot.chatbot_id == "demo"
    assert "demo assistant" in demo.chatbot.system_prompt
    documents.chatbots["demo"]["system_prompt"] = "Changed."
    await configs.seed_demo()
    assert documents.chatbots["demo"]["system_prompt"] == "Changed.", "seeding never overwrites"


async def test_concurrent_loads_of_one_application_read_the_store_once():
    import asyncio

    from parley.config.store import ConfigStore
    from parley.settings import Settings
    from parley.storage.cache import InMemoryCache

    class CountingStore:
        def __init__(self) -> None:
            self.reads = 0

        async def get_application(self, application_id):
            self.reads += 1
            await asyncio.sleep(0.05)
            return {"_id": application_id, "chatbot_id": None}

        async def get_chatbot(self, chatbot_id):
            return None

    store = CountingStore()
    configs = ConfigStore(store, Settings(), InMemoryCache())  # type: ignore[arg-type]
    results = await asyncio.gather(*(configs.application("shop") for _ in range(200)))
    assert store.reads == 1
    assert {r.application_id for r in results} == {"shop"}
