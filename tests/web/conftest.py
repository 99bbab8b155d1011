"""Fixtures of the HTTP API tests: the settings that point at the test's own database
(``database``, tests/conftest.py), with the admin key of ``tests.support.webapp``, and a started
``DocumentStore``. A module that needs other settings overrides ``settings``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from parley.embedded import EmbeddedServer
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from tests.support.webapp import ADMIN_KEY


@pytest.fixture
def settings(services: dict[str, EmbeddedServer], database: str) -> Settings:
    return Settings(mongo_url=services["documents"].url, mongo_database=database, admin_api_key=ADMIN_KEY)


@pytest.fixture
async def documents(settings: Settings) -> AsyncIterator[DocumentStore]:
    assert settings.mongo_url is not None
    store = DocumentStore(settings.mongo_url, settings.mongo_database)
    await store.start()
    yield store
    await store.close()
