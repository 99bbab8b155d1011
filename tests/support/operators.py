"""Operator accounts for web tests: a ``UserService`` on a real ``DocumentStore``, and the
headers of each kind of credential."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from parley.settings import Settings
from parley.storage.cache import InMemoryCache
from parley.storage.documents import DocumentStore
from parley.users.service import UserService, user_service


@dataclass(frozen=True)
class Credential:
    """How a test sends one principal's requests: ``headers(method)``."""

    name: str
    bearer: str | None = None
    cookie: str | None = None
    csrf: str | None = None

    def headers(self, method: str = "GET") -> dict[str, str]:
        if self.bearer is not None:
            return {"Authorization": f"Bearer {self.bearer}"}
        assert self.cookie is not None
        headers = {"Cookie": f"parley_session={self.cookie}"}
        if method not in ("GET", "HEAD") and self.csrf is not None:
            headers["X-CSRF-Token"] = self.csrf
        return headers


def operator_users(documents: DocumentStore, settings: Settings) -> UserService:
    return user_service(documents, InMemoryCache(), settings)


async def session_for(
    users: UserService, email: str, role: str, applications: list[str] | None, password: str | None = None,
) -> tuple[dict[str, Any], Credential]:
    """A new user and a signed-in session of theirs."""
    user = await users.accounts.create_user(
        email=email, name=email.split("@")[0], role=role, applications=applications, password=password
    )
    session, secret = await users.accounts.open_session(user, "127.0.0.1")
    return user, Credential(email, cookie=secret, csrf=session.csrf_token)


async def token_for(
    users: UserService, email: str, role: str, applications: list[str] | None, token: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Credential]:
    """A new user and a personal API token of theirs (``token``: the token's role, scope...)."""
    user = await users.accounts.create_user(email=email, name=email.split("@")[0], role=role, applications=applications)
    doc, secret = await users.accounts.create_token(user, {"name": "automation", **(token or {})})
    return doc, Credential(f"{email} token", bearer=secret)
