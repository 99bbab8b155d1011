"""Application and chatbot configuration, read from the document store with a short TTL cache."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.streams.turns import ChatbotConfig

__all__ = ["ConfigStore", "ApplicationConfig", "DEMO_APPLICATION", "DEMO_CHATBOT"]

CACHE_TTL_S = 5.0
CACHE_MAX_ENTRIES = 10_000

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


@dataclass(frozen=True)
class ApplicationConfig:
    application_id: str
    callback_url: str | None
    chatbot: ChatbotConfig


class ConfigStore:
    def __init__(self, documents: DocumentStore, settings: Settings) -> None:
        self._documents = documents
        self._settings = settings
        self._cache: dict[str, tuple[float, ApplicationConfig | None]] = {}

    async def application(self, application_id: str) -> ApplicationConfig | None:
        """The application's config, or None when no such application exists."""
        now = time.monotonic()
        hit = self._cache.get(application_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        config = await self._load(application_id)
        if len(self._cache) >= CACHE_MAX_ENTRIES:
            self._cache.clear()
        self._cache[application_id] = (now + CACHE_TTL_S, config)
        return config

    def invalidate(self, application_id: str) -> None:
        self._cache.pop(application_id, None)

    async def _load(self, application_id: str) -> ApplicationConfig | None:
        app_doc = await self._documents.get_application(application_id)
        if app_doc is None:
            return None
        bot_doc = None
        if app_doc.get("chatbot_id"):
            bot_doc = await self._documents.get_chatbot(str(app_doc["chatbot_id"]))
        bot_doc = bot_doc or {}
        tools = bot_doc.get("tools")
        chatbot = ChatbotConfig(
            chatbot_id=str(bot_doc.get("_id", "default")),
            system_prompt=str(bot_doc.get("system_prompt") or ChatbotConfig.system_prompt),
            tools=tuple(tools) if tools is not None else None,
            history_messages=int(bot_doc.get("history_messages") or self._settings.history_messages),
            max_tool_rounds=int(bot_doc.get("max_tool_rounds") or self._settings.max_tool_rounds),
        )
        return ApplicationConfig(
            application_id=application_id,
            callback_url=app_doc.get("callback_url"),
            chatbot=chatbot,
        )

    async def seed_demo(self) -> None:
        """Create the demo application and chatbot if they do not exist yet."""
        if await self._documents.get_application(DEMO_APPLICATION["_id"]) is None:
            await self._documents.put_application(dict(DEMO_APPLICATION))
        if await self._documents.get_chatbot(DEMO_CHATBOT["_id"]) is None:
            await self._documents.put_chatbot(dict(DEMO_CHATBOT))
