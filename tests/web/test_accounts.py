"""Operator sign-in, sessions, password change, sign-in links and the audit log, on the real app
and a real document store (one fresh database per test)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.config.store import ConfigStore
from parley.embedded import EmbeddedServer
from parley.settings import Settings
from parley.storage.cache import InMemoryCache
from parley.storage.documents import DocumentStore
from parley.users.accounts import Accounts, Policy
from parley.users.service import UserService, user_service
from parley.users.sessions import MongoSessions, RedisSessions
from parley.users.throttle import LoginThrottle
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.support.net import free_port
from tests.support.operators import Credential, operator_users, session_for
from tests.support.webapp import ADMIN_KEY, always_ready, never_produced
from tests.support.webdeps import web_deps

KEY = ADMIN_KEY
PASSWORD = "correct horse battery"
ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


@pytest.fixture
def settings(services: dict[str, EmbeddedServer], database: str) -> Settings:
    return Settings(
        mongo_url=services["documents"].url, mongo_database=database, admin_api_key=KEY,
        login_max_failures_per_account=3, login_max_failures_per_address=6,
    )


@pytest.fixture
async def users(documents: DocumentStore, settings: Settings) -> UserService:
    service = operator_users(documents, settings)
    await service.start()
    return service


def _app(settings: Settings, documents: DocumentStore, users: UserService) -> web.Application:
    deps = web_deps(configs=ConfigStore(documents, settings), documents=documents, archive=documents, users=users)
    return create_web_app(settings=settings, deps=deps, ingress=Ingress(never_produced, timeout_s=1), readiness=always_ready)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, users: UserService) -> TestClient:
    return await aiohttp_client(_app(settings, documents, users))


@pytest.fixture
async def ada(users: UserService) -> dict[str, Any]:
    return await users.accounts.create_user(
        email="Ada@Example.com", name="Ada", role="admin", applications=["shop"], password=PASSWORD
    )


def _cookie(response: Any) -> Any:
    return response.cookies["parley_session"]


async def test_sign_in_sets_a_strict_httponly_cookie_and_the_session_reads_back(client: TestClient, ada: dict[str, Any]) -> None:
    response = await client.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["user"] == {
        "id": ada["_id"], "email": "ada@example.com", "name": "Ada", "role": "admin", "applications": ["shop"],
        "disabled": False, "created_at": ada["created_at"],
    }
    cookie = _cookie(response)
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    assert not cookie["secure"], "plain http in this test: a Secure cookie would never come back"
    assert PASSWORD not in await response.text()
    session = await client.get("/v1/auth/session")  # the client's cookie jar sends it
    assert session.status == 200
    again = await session.json()
    assert again["user"]["email"] == "ada@example.com" and again["csrf_token"] == body["csrf_token"]


async def test_the_cookie_is_secure_over_https_or_when_configured(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, users: UserService, ada: dict[str, Any]
) -> None:
    client = await aiohttp_client(_app(settings, documents, users))
    response = await client.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
                                 headers={"X-Forwarded-Proto": "https"})
    assert _cookie(response)["secure"]
    forced = await aiohttp_client(_app(settings.model_copy(update={"session_cookie_secure": True}), documents, users))
    response = await forced.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert _cookie(response)["secure"]


@pytest.mark.parametrize(
    "body",
    [{"email": "ada@example.com", "password": "wrong password!"}, {"email": "nobody@example.com", "password": PASSWORD}],
    ids=["wrong-password", "unknown-email"],
)
async def test_a_wrong_sign_in_is_401_with_the_same_message(
    client: TestClient, ada: dict[str, Any], body: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        response = await client.post("/v1/auth/login", json=body)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "sign-in refused from 127.0.0.1" in logged
    assert body["password"] not in logged
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("parley"))
    assert body["email"] not in ours  # (PyMongo's own DEBUG records quote its queries)
    assert response.status == 401
    assert (await response.json())["message"] == "wrong email or password (or the account is disabled)"
    assert "parley_session" not in response.cookies
    assert (await client.get("/v1/auth/session")).status == 401


async def test_failed_sign_ins_are_throttled_per_account_and_per_address(client: TestClient, ada: dict[str, Any]) -> None:
    for _ in range(3):
        assert (await client.post("/v1/auth/login", json={"email": "ada@example.com", "password": "bad password"})).status == 401
    locked = await client.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert locked.status == 429, "the right password does not open a locked account"
    assert 1 <= int(locked.headers["Retry-After"]) <= 900
    assert (await locked.json())["code"] == "too_many_attempts"
    # the address: three more failures on other accounts lock it for every account
    for n in range(3):
        await client.post("/v1/auth/login", json={"email": f"guess{n}@example.com", "password": "bad password"})
    response = await client.post("/v1/auth/login", json={"email": "other@example.com", "password": "whatever12345"})
    assert response.status == 429 and "Retry-After" in response.headers


async def test_guesses_sent_at_once_are_counted_before_any_password_is_checked(
    client: TestClient, ada: dict[str, Any]
) -> None:
    bad = {"email": "ada@example.com", "password": "bad password"}
    answers = await asyncio.gather(*(client.post("/v1/auth/login", json=bad) for _ in range(40)))
    statuses = sorted(r.status for r in answers)
    assert statuses.count(401) == 3, f"only the account's 3 attempts are checked, got {statuses}"
    assert statuses.count(429) == 37


async def test_sign_ins_that_succeed_do_not_use_up_the_address(client: TestClient, ada: dict[str, Any]) -> None:
    # an office behind one address: more successful sign-ins than the address may fail
    for _ in range(10):
        response = await client.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert response.status == 200, await response.text()


async def test_a_disabled_account_cannot_sign_in_and_its_sessions_end(
    client: TestClient, users: UserService, ada: dict[str, Any]
) -> None:
    response = await client.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert response.status == 200
    await users.accounts.update_user(ada["_id"], {"disabled": True})
    assert (await client.get("/v1/auth/session")).status == 401
    assert (await client.get("/v1/admin/applications")).status == 401
    assert (await client.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})).status == 401


async def test_sign_out_and_sign_out_everywhere(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, users: UserService, ada: dict[str, Any]
) -> None:
    laptop = await aiohttp_client(_app(settings, documents, users))
    phone = await aiohttp_client(_app(settings, documents, users))
    tokens = {}
    for name, device in (("laptop", laptop), ("phone", phone)):
        response = await device.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        tokens[name] = (await response.json())["csrf_token"]
    # sign-out needs the CSRF token (another site cannot sign you out), then ends that session only
    assert (await laptop.post("/v1/auth/logout")).status == 403
    assert (await laptop.post("/v1/auth/logout", headers={"X-CSRF-Token": tokens["laptop"]})).status == 204
    assert (await laptop.get("/v1/auth/session")).status == 401
    assert (await phone.get("/v1/auth/session")).status == 200
    response = await laptop.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    csrf = (await response.json())["csrf_token"]
    assert (await laptop.post("/v1/auth/logout-everywhere", headers={"X-CSRF-Token": csrf})).status == 204
    assert (await laptop.get("/v1/auth/session")).status == 401
    assert (await phone.get("/v1/auth/session")).status == 401


async def test_a_password_change_keeps_this_session_and_ends_the_others(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, users: UserService, ada: dict[str, Any]
) -> None:
    here = await aiohttp_client(_app(settings, documents, users))
    elsewhere = await aiohttp_client(_app(settings, documents, users))
    csrf = ""
    for device in (elsewhere, here):
        response = await device.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        csrf = (await response.json())["csrf_token"]
    wrong = await here.post("/v1/auth/password", json={"current_password": "not it at all", "new_password": "a new passphrase"},
                            headers={"X-CSRF-Token": csrf})
    assert wrong.status == 403
    short = await here.post("/v1/auth/password", json={"current_password": PASSWORD, "new_password": "short"},
                            headers={"X-CSRF-Token": csrf})
    assert short.status == 422 and (await short.json())["errors"][0]["field"] == "new_password"
    changed = await here.post("/v1/auth/password", json={"current_password": PASSWORD, "new_password": "a new passphrase"},
                              headers={"X-CSRF-Token": csrf})
    assert changed.status == 200, await changed.text()
    assert (await here.get("/v1/auth/session")).status == 200
    assert (await elsewhere.get("/v1/auth/session")).status == 401
    assert (await elsewhere.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})).status == 401
    assert (await elsewhere.post("/v1/auth/login", json={"email": "ada@example.com", "password": "a new passphrase"})).status == 200


async def test_a_sign_in_link_works_once_and_lands_on_the_console(
    client: TestClient, users: UserService, ada: dict[str, Any]
) -> None:
    secret = await users.accounts.create_link(ada["_id"])
    # opening the link (a person, a mail scanner, a link preview) shows a button and signs nobody in
    for _ in range(2):
        page = await client.get(f"/v1/auth/link/{secret}", allow_redirects=False)
        assert page.status == 200 and page.content_type == "text/html"
        assert "parley_session" not in page.cookies
        text = await page.text()
        assert "ada@example.com" in text and '<form method="post">' in text and "<script" not in text
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"
    assert (await client.get("/v1/auth/session")).status == 401
    # another site's form posting to the link is refused, and the link stays good
    foreign = await client.post(f"/v1/auth/link/{secret}", headers={"Origin": "https://evil.example"},
                                allow_redirects=False)
    assert foreign.status == 403 and (await foreign.json())["code"] == "cross_site"
    sandboxed = await client.post(f"/v1/auth/link/{secret}", headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"},
                                  allow_redirects=False)
    assert sandboxed.status == 403
    # the button: a same-site form post signs in and lands on the console
    host = f"http://{client.server.host}:{client.server.port}"
    response = await client.post(f"/v1/auth/link/{secret}", headers={"Origin": host, "Sec-Fetch-Site": "same-origin"},
                                 data={}, allow_redirects=False)
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == "/console/"
    assert _cookie(response)["httponly"]
    assert (await client.get("/v1/auth/session")).status == 200
    client.session.cookie_jar.clear()
    again = await client.post(f"/v1/auth/link/{secret}", allow_redirects=False)
    assert again.status == 401
    assert "parley users link" in (await again.json())["message"]
    gone = await client.get(f"/v1/auth/link/{secret}")
    assert gone.status == 401 and "parley users link" in await gone.text()


async def test_owners_manage_users_and_every_write_is_audited(
    client: TestClient, users: UserService, documents: DocumentStore
) -> None:
    _, owner = await session_for(users, "owner@example.com", "owner", None)
    made = await client.post("/v1/admin/users", json={
        "email": "Viewer@Example.com", "name": "Vi", "role": "viewer", "applications": ["shop"], "password": PASSWORD,
    }, headers=owner.headers("POST"))
    assert made.status == 201, await made.text()
    user = await made.json()
    assert user["email"] == "viewer@example.com" and "password" not in user and "password_hash" not in user
    duplicate = await client.post("/v1/admin/users", json={"email": "viewer@example.com", "name": "", "role": "viewer"},
                                  headers=owner.headers("POST"))
    assert duplicate.status == 409
    bad = await client.post("/v1/admin/users", json={"email": "nope", "role": "king", "password": "short"},
                            headers=owner.headers("POST"))
    assert bad.status == 422
    assert sorted(e["field"] for e in (await bad.json())["errors"]) == ["email", "password", "role"]
    patched = await client.patch(f"/v1/admin/users/{user['id']}", json={"role": "admin", "applications": None},
                                 headers=owner.headers("PATCH"))
    assert patched.status == 200 and (await patched.json())["applications"] is None
    # the application writes of the admin API land in the log too, secrets masked
    for body in ({"id": "bot", "system_prompt": "Hi"}, ):
        assert (await client.post("/v1/admin/chatbots", json=body, headers=owner.headers("POST"))).status == 201
    app = {"id": "shop", "name": "Shop", "chatbot_id": "bot", "secret": "app-secret-canary-1"}
    assert (await client.post("/v1/admin/applications", json=app, headers=owner.headers("POST"))).status == 201
    renamed = await client.patch("/v1/admin/applications/shop", json={"name": "Shop 2", "secret": "app-secret-canary-2"},
                                 headers=owner.headers("PATCH"))
    assert renamed.status == 200
    log = await client.get("/v1/admin/audit", headers=owner.headers())
    assert log.status == 200
    text = await log.text()
    assert "app-secret-canary" not in text and PASSWORD not in text
    entries = (await log.json())["items"]
    assert [(e["action"], e["kind"], e["target_id"]) for e in entries] == [
        ("update", "application", "shop"), ("create", "application", "shop"), ("create", "chatbot", "bot"),
        ("update", "user", user["id"]), ("create", "user", user["id"]),
    ]
    update = entries[0]
    assert update["actor"]["email"] == "owner@example.com" and update["actor"]["credential"] == "session"
    assert update["before"]["name"] == "Shop" and update["after"]["name"] == "Shop 2"
    assert update["before"]["revision"] == 1 and update["after"]["revision"] == 2
    assert update["before"]["secret"] == "***" and update["application_id"] == "shop"
    assert update["address"] == "127.0.0.1" and update["at"].endswith("Z")
    # filters and pages
    only = await (await client.get("/v1/admin/audit?kind=user", headers=owner.headers())).json()
    assert [e["action"] for e in only["items"]] == ["update", "create"]
    page = await (await client.get("/v1/admin/audit?limit=2", headers=owner.headers())).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = await (await client.get(f"/v1/admin/audit?limit=10&cursor={page['next_cursor']}", headers=owner.headers())).json()
    assert [e["id"] for e in page["items"] + rest["items"]] == [e["id"] for e in entries]
    assert (await client.get("/v1/admin/audit?since=yesterday", headers=owner.headers())).status == 400
    # a scoped admin sees its application's entries only; a viewer none
    _, scoped = await session_for(users, "scoped@example.com", "admin", ["shop"])
    theirs = await (await client.get("/v1/admin/audit", headers=scoped.headers())).json()
    # (the chatbot was created before any application used it: an entry of no application, for owners)
    assert [(e["kind"], e["target_id"]) for e in theirs["items"]] == [("application", "shop"), ("application", "shop")]
    _, viewer = await session_for(users, "v2@example.com", "viewer", None)
    assert (await client.get("/v1/admin/audit", headers=viewer.headers())).status == 403
    # the last owner stays
    me = (await (await client.get("/v1/auth/session", headers=owner.headers())).json())["user"]
    response = await client.patch(f"/v1/admin/users/{me['id']}", json={"disabled": True}, headers=owner.headers("PATCH"))
    assert response.status == 409 and (await response.json())["code"] == "last_owner"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("store", ["documents", "redis"])
async def test_sessions_end_when_idle_or_too_old(
    documents: DocumentStore, users: UserService, store: str, request: pytest.FixtureRequest
) -> None:
    clock = Clock()
    if store == "redis":
        sessions: Any = RedisSessions(request.getfixturevalue("redis_url"), prefix=f"test:{uuid.uuid4().hex}:")
    else:
        sessions = MongoSessions(documents.sessions)
    throttle = LoginThrottle(InMemoryCache(), per_account=5, per_address=5, window_s=60)
    accounts = Accounts(documents, sessions, throttle, Policy(idle_timeout_s=600, max_age_s=3600), clock=clock)
    user = await users.accounts.create_user(email="s@example.com", name="S", role="viewer")
    try:
        _, secret = await accounts.open_session(user, "10.0.0.1")
        clock.now += 599
        assert await accounts.session(secret) is not None  # and that request refreshed it
        clock.now += 599
        assert await accounts.session(secret) is not None
        clock.now += 601
        assert await accounts.session(secret) is None, "idle past the timeout"
        _, secret = await accounts.open_session(user, "10.0.0.1")
        for _ in range(6):
            clock.now += 590
            assert await accounts.session(secret) is not None
        clock.now += 590  # 3,540 + 590 s after sign-in: past the absolute expiry, though active
        assert await accounts.session(secret) is None
    finally:
        await accounts.close()


async def test_with_redis_down_sign_in_and_session_checks_are_503_not_signed_out(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, ada: dict[str, Any]
) -> None:
    # sessions in a Redis that is gone: nothing is silently dropped or read as "not signed in"
    down = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    users = user_service(documents, InMemoryCache(), down)
    client = await aiohttp_client(_app(down, documents, users))
    try:
        response = await client.post("/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert response.status == 503, await response.text()
        assert (await response.json())["code"] == "sessions_unavailable" and response.headers["Retry-After"] == "1"
        assert "parley_session" not in response.cookies
        link = await users.accounts.create_link(ada["_id"])
        response = await client.post(f"/v1/auth/link/{link}", allow_redirects=False)
        assert response.status == 503
        assert await users.accounts.consume_link(link) is not None, "the link is still good once Redis is back"
        client.session.cookie_jar.update_cookies({"parley_session": "some-session-secret"})
        response = await client.get("/v1/admin/applications")
        assert response.status == 503 and (await response.json())["code"] == "sessions_unavailable"
        # signing out clears this browser's cookie even though the session could not be ended
        response = await client.post("/v1/auth/logout")
        assert response.status == 503
        assert response.cookies["parley_session"].value == ""
    finally:
        await users.close()


async def test_a_session_request_without_users_configured_is_a_clear_401(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore
) -> None:
    deps = web_deps(configs=ConfigStore(documents, settings), documents=documents, archive=documents)
    client = await aiohttp_client(create_web_app(
        settings=settings, deps=deps, ingress=Ingress(never_produced, timeout_s=1), readiness=always_ready))
    response = await client.get("/v1/admin/applications", headers=Credential("x", cookie="abc").headers())
    assert response.status == 401


async def test_a_sign_in_purges_ended_sessions_and_links_from_the_document_store(
    documents: DocumentStore, users: UserService
) -> None:
    clock = Clock()
    throttle = LoginThrottle(InMemoryCache(), per_account=5, per_address=5, window_s=60)
    accounts = Accounts(documents, MongoSessions(documents.sessions), throttle,
                        Policy(idle_timeout_s=600, max_age_s=3600, link_ttl_s=60), clock=clock)
    user = await users.accounts.create_user(email="p@example.com", name="P", role="viewer", password=PASSWORD)
    await accounts.open_session(user, "10.0.0.1")
    await accounts.create_link(str(user["_id"]))
    clock.now += 601
    _, live, _ = await accounts.login("p@example.com", PASSWORD, "10.0.0.1")
    assert [d["_id"] async for d in documents.sessions.find({})] == [live.id]
    assert await documents.signin_links.count_documents({}) == 0


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Content-Type": "text/plain"}, 415, "unsupported_media_type"),  # what a cross-site form can send
        ({"Content-Type": "application/json", "Origin": "https://evil.example"}, 403, "cross_site"),
        ({"Content-Type": "application/json", "Origin": "null"}, 403, "cross_site"),  # a sandboxed frame
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403, "cross_site"),
    ],
    ids=["form-body", "other-origin", "null-origin", "fetch-site"],
)
async def test_another_site_cannot_sign_a_browser_in(
    client: TestClient, ada: dict[str, Any], headers: dict[str, str], status: int, code: str
) -> None:
    body = json.dumps({"email": "ada@example.com", "password": PASSWORD})
    response = await client.post("/v1/auth/login", data=body, headers=headers)
    assert response.status == status
    assert (await response.json())["code"] == code
    assert "parley_session" not in response.cookies
    # the console's own page signs in (same origin)
    own = await client.post("/v1/auth/login", data=body, headers={
        "Content-Type": "application/json", "Origin": f"http://{client.host}:{client.port}", "Sec-Fetch-Site": "same-origin"})
    assert own.status == 200, await own.text()
