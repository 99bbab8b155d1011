"""``parley users ...`` against the embedded document server: the first owner, a listing, a
disabled account, a reset password, a one-time link; each change in the audit log."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from parley.cli import build_parser
from parley.embedded import EmbeddedServer
from parley.settings import Settings
from parley.storage.cache import InMemoryCache
from parley.storage.documents import DocumentStore
from parley.users.commands import CommandError, ensure_dev_owner, run_users_command
from parley.users.service import UserService, user_service


@pytest.fixture
def settings(services: dict[str, EmbeddedServer], database: str) -> Settings:
    return Settings(mongo_url=services["documents"].url, mongo_database=database, web_port=8123)


@pytest.fixture
async def users(settings: Settings) -> AsyncIterator[UserService]:
    assert settings.mongo_url is not None
    documents = DocumentStore(settings.mongo_url, settings.mongo_database)
    service = user_service(documents, InMemoryCache(), settings)
    await service.start()
    yield service
    await documents.close()


async def run(settings: Settings, *argv: str, stdin: str = "") -> str:
    args = build_parser().parse_args(["users", *argv])
    out = io.StringIO()
    assert await run_users_command(settings, args, out=out, stdin=io.StringIO(stdin)) == 0
    return out.getvalue()


async def test_the_first_owner_and_the_rest_of_an_accounts_life(settings: Settings, users: UserService) -> None:
    out = await run(settings, "create", "Root@Example.com", "--role", "owner", "--password-stdin",
                    stdin="a long enough password\n")
    assert out.startswith("created root@example.com (owner, usr_")
    assert "a long enough password" not in out
    assert (await users.accounts.login("root@example.com", "a long enough password", "1.2.3.4"))[0]["role"] == "owner"

    out = await run(settings, "create", "ops@example.com", "--role", "admin", "--application", "shop",
                    "--application", "bank")
    assert "sign in once with http://127.0.0.1:8123/v1/auth/link/" in out
    link = out.split("/v1/auth/link/")[1].split()[0]
    assert (await users.accounts.consume_link(link))["email"] == "ops@example.com"  # type: ignore[index]

    listing = await run(settings, "list")
    assert "root@example.com" in listing and "bank,shop" in listing and "(all)" in listing

    await run(settings, "disable", "ops@example.com")
    assert '"disabled": true' in await run(settings, "list", "--json")
    assert await users.accounts.consume_link(await users.accounts.create_link(
        str((await users.accounts.find_user("ops@example.com") or {})["_id"]))) is None
    await run(settings, "disable", "--enable", "ops@example.com")

    out = await run(settings, "reset", "root@example.com")
    password = out.split("new password (shown once): ")[1].strip()
    assert (await users.accounts.login("root@example.com", password, "1.2.3.4"))[0]["email"] == "root@example.com"

    url = (await run(settings, "link", "ops@example.com", "--url", "https://parley.example.com/")).strip()
    assert url.startswith("https://parley.example.com/v1/auth/link/")

    entries, _ = await users.audit.list(scope=None, everything=True, limit=50)
    assert [e["action"] for e in entries] == ["create_link", "reset_password", "update", "update", "create", "create"]
    assert all(e["actor"]["credential"] == "cli" for e in entries)
    assert password not in str(entries)


async def test_mistakes_are_clear_errors(settings: Settings, users: UserService) -> None:
    with pytest.raises(CommandError, match=r"no user with email 'ghost@example\.com'"):
        await run(settings, "link", "ghost@example.com")
    with pytest.raises(CommandError, match="password: must be at least 10 characters"):
        await run(settings, "create", "a@example.com", "--password-stdin", stdin="short\n")
    await run(settings, "create", "a@example.com")
    with pytest.raises(CommandError, match="exists"):
        await run(settings, "create", "A@example.com")
    with pytest.raises(CommandError, match="PARLEY_MONGO_URL"):
        await run(Settings(), "list")


async def test_the_dev_owner_is_made_once_and_gets_a_fresh_link_each_start(users: UserService) -> None:
    user, first, created = await ensure_dev_owner(users)
    assert created and user["email"] == "dev@localhost" and user["role"] == "owner"
    again, second, created = await ensure_dev_owner(users)
    assert not created and again["_id"] == user["_id"] and second != first
    assert (await users.accounts.consume_link(second))["_id"] == user["_id"]  # type: ignore[index]
