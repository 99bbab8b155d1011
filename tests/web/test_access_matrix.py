"""The authorization matrix: every kind of principal (role x scope x credential) against the admin,
user, audit and table endpoints, each method, on the real app and a real document store. A
refused request is 403 and changes nothing; an allowed one does what it says."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.config.store import ConfigStore
from parley.embedded import EmbeddedServer
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.users.service import UserService
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.support.operators import Credential, operator_users, session_for, token_for
from tests.support.webapp import ADMIN_KEY, always_ready, never_produced
from tests.support.webdeps import web_deps

KEY = ADMIN_KEY
ClientFactory = Callable[[web.Application], Awaitable[TestClient]]

BOTS = [{"id": f"bot-{name}", "system_prompt": f"You serve {name}."} for name in ("shop", "bank", "unused")]
APPS = [
    {"id": "shop", "name": "Shop", "chatbot_id": "bot-shop", "secret": "shop-secret-value-123"},
    {"id": "bank", "name": "Bank", "chatbot_id": "bot-bank"},
]

#: every principal: how it is made (role, applications, credential)
PRINCIPALS = {
    "admin_key": None,
    "owner": ("owner", None, "session"),
    "admin_all_token": ("admin", None, "token"),
    "admin_shop": ("admin", ["shop"], "session"),
    "admin_shop_viewer_token": ("admin", ["shop"], "viewer-token"),  # an admin's token limited to viewer
    "viewer_shop": ("viewer", ["shop"], "session"),
    "viewer_all_token": ("viewer", None, "token"),
}
EVERYONE = set(PRINCIPALS)
OWNERS = {"admin_key", "owner"}
ADMINS_ALL = OWNERS | {"admin_all_token"}
WRITE_SHOP = ADMINS_ALL | {"admin_shop"}
READ_SHOP = EVERYONE
READ_ALL = ADMINS_ALL | {"viewer_all_token"}

#: (id, method, path, body, who may) -- the ids name what a user would try
ENDPOINTS: list[tuple[str, str, str, Any, set[str]]] = [
    ("list-applications", "GET", "/v1/admin/applications", None, EVERYONE),
    ("read-own-application", "GET", "/v1/admin/applications/shop", None, READ_SHOP),
    ("read-other-tenant", "GET", "/v1/admin/applications/bank", None, READ_ALL),
    ("read-missing-other", "GET", "/v1/admin/applications/nowhere", None, READ_ALL),
    ("create-application-in-scope", "PUT", "/v1/admin/applications/shop",
     {"name": "Shop 2", "chatbot_id": "bot-shop"}, WRITE_SHOP),
    ("create-application-out-of-scope", "POST", "/v1/admin/applications",
     {"id": "shop-eu", "name": "EU", "chatbot_id": "bot-shop"}, ADMINS_ALL),
    ("patch-own-application", "PATCH", "/v1/admin/applications/shop", {"name": "Renamed"}, WRITE_SHOP),
    ("patch-other-tenant", "PATCH", "/v1/admin/applications/bank", {"name": "Renamed"}, ADMINS_ALL),
    ("delete-own-application", "DELETE", "/v1/admin/applications/shop", None, WRITE_SHOP),
    ("delete-other-tenant", "DELETE", "/v1/admin/applications/bank", None, ADMINS_ALL),
    ("point-own-app-at-other-tenants-chatbot", "PATCH", "/v1/admin/applications/shop",
     {"chatbot_id": "bot-bank"}, ADMINS_ALL),
    ("list-chatbots", "GET", "/v1/admin/chatbots", None, EVERYONE),
    ("read-own-chatbot", "GET", "/v1/admin/chatbots/bot-shop", None, READ_SHOP),
    ("read-other-tenants-chatbot", "GET", "/v1/admin/chatbots/bot-bank", None, READ_ALL),
    ("patch-own-chatbot", "PATCH", "/v1/admin/chatbots/bot-shop", {"temperature": 0.5}, WRITE_SHOP),
    ("patch-other-tenants-chatbot", "PATCH", "/v1/admin/chatbots/bot-bank", {"temperature": 0.5}, ADMINS_ALL),
    ("create-chatbot", "POST", "/v1/admin/chatbots", {"id": "bot-new"}, WRITE_SHOP),
    ("delete-unused-chatbot", "DELETE", "/v1/admin/chatbots/bot-unused", None, WRITE_SHOP),
    ("list-users", "GET", "/v1/admin/users", None, OWNERS),
    ("create-user", "POST", "/v1/admin/users", {"email": "new@example.com", "name": "New", "role": "viewer"}, OWNERS),
    ("read-audit", "GET", "/v1/admin/audit", None, WRITE_SHOP),
    ("read-audit-of-other-tenant", "GET", "/v1/admin/audit?application_id=bank", None, ADMINS_ALL),
    ("list-tables", "GET", "/v1/tables", None, EVERYONE),
    ("table-key-of-own-application", "GET", "/v1/tables/conversations/shop/c1", None, READ_SHOP),
    ("table-key-of-other-tenant", "GET", "/v1/tables/usage/bank", None, READ_ALL),
]


@pytest.fixture
async def users(documents: DocumentStore, settings: Settings) -> UserService:
    service = operator_users(documents, settings)
    await service.start()
    return service


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, settings: Settings, documents: DocumentStore, users: UserService
) -> TestClient:
    deps = web_deps(configs=ConfigStore(documents, settings), documents=documents, archive=documents, users=users)
    app = create_web_app(settings=settings, deps=deps, ingress=Ingress(never_produced, timeout_s=1), readiness=always_ready)
    client = await aiohttp_client(app)
    for plural, docs in (("chatbots", BOTS), ("applications", APPS)):
        for doc in docs:
            response = await client.post(f"/v1/admin/{plural}", json=doc, headers={"Authorization": f"Bearer {KEY}"})
            assert response.status == 201, await response.text()
    return client


@pytest.fixture
async def principals(users: UserService) -> dict[str, Credential]:
    made = {"admin_key": Credential("admin key", bearer=KEY)}
    for name, spec in PRINCIPALS.items():
        if spec is None:
            continue
        role, apps, kind = spec
        email = f"{name}@example.com"
        if kind == "session":
            made[name] = (await session_for(users, email, role, apps))[1]
        elif kind == "token":
            made[name] = (await token_for(users, email, role, apps))[1]
        else:
            made[name] = (await token_for(users, email, role, apps, {"role": "viewer"}))[1]
    return made


#: refusals that are not a plain 403: an admin of shop choosing another tenant's chatbot gets a
#: field error (422), shown next to the field like any other
REFUSED = {("point-own-app-at-other-tenants-chatbot", "admin_shop"): (422, "invalid_document")}


def _allowed_status(method: str, path: str) -> set[int]:
    if path.startswith("/v1/tables/"):
        return {404}  # past authorization: this test app is no worker (`not_a_worker`)
    if path.endswith("/nowhere"):
        return {404}  # past authorization: no such application
    return {200, 201, 204}


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
@pytest.mark.parametrize(("case", "method", "path", "body", "allowed"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_the_matrix(
    client: TestClient, principals: dict[str, Credential], documents: DocumentStore,
    who: str, case: str, method: str, path: str, body: Any, allowed: set[str],
) -> None:
    before = {
        "applications": sorted(str(d["_id"]) for d in await documents.applications.list(limit=100)),
        "chatbots": [(str(d["_id"]), d.get("revision")) for d in await documents.chatbots.list(limit=100)],
        "shop": (await documents.get_application("shop") or {}).get("revision"),
        "bank": (await documents.get_application("bank") or {}).get("revision"),
    }
    credential = principals[who]
    response = await client.request(method, path, json=body, headers=credential.headers(method))
    text = await response.text()
    if who in allowed:
        assert response.status in _allowed_status(method, path), (who, case, response.status, text)
        if path.startswith("/v1/tables/"):
            assert (await response.json())["code"] == "not_a_worker"
    else:
        status, code = REFUSED.get((case, who), (403, "forbidden"))
        assert response.status == status, (who, case, response.status, text)
        assert (await response.json())["code"] == code
        after = {
            "applications": sorted(str(d["_id"]) for d in await documents.applications.list(limit=100)),
            "chatbots": [(str(d["_id"]), d.get("revision")) for d in await documents.chatbots.list(limit=100)],
            "shop": (await documents.get_application("shop") or {}).get("revision"),
            "bank": (await documents.get_application("bank") or {}).get("revision"),
        }
        assert after == before, "a refused request changed something"


@pytest.mark.parametrize(
    ("who", "applications", "chatbots"),
    [
        ("owner", ["bank", "shop"], ["bot-bank", "bot-shop", "bot-unused"]),
        ("admin_shop", ["shop"], ["bot-shop", "bot-unused"]),
        ("viewer_shop", ["shop"], ["bot-shop", "bot-unused"]),
        ("viewer_all_token", ["bank", "shop"], ["bot-bank", "bot-shop", "bot-unused"]),
    ],
)
async def test_lists_show_only_the_principals_applications(
    client: TestClient, principals: dict[str, Credential], who: str, applications: list[str], chatbots: list[str]
) -> None:
    headers = principals[who].headers()
    listed = await (await client.get("/v1/admin/applications", headers=headers)).json()
    assert [a["id"] for a in listed["items"]] == applications
    listed = await (await client.get("/v1/admin/chatbots", headers=headers)).json()
    assert [b["id"] for b in listed["items"]] == chatbots


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_session_cookie_without_its_csrf_token_is_refused(
    client: TestClient, principals: dict[str, Credential], documents: DocumentStore, method: str
) -> None:
    owner = principals["owner"]
    path = "/v1/admin/chatbots" if method == "POST" else "/v1/admin/chatbots/bot-unused"
    body = {"id": "bot-x"} if method == "POST" else {"system_prompt": "changed"}
    for headers in (
        {"Cookie": f"parley_session={owner.cookie}"},
        {"Cookie": f"parley_session={owner.cookie}", "X-CSRF-Token": "not-the-token"},
    ):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status == 403
        assert (await response.json())["code"] == "csrf_required"
    assert await documents.get_chatbot("bot-x") is None
    assert (await documents.get_chatbot("bot-unused") or {}).get("system_prompt") == "You serve unused."
    # the same request with the token goes through; a GET needs none
    response = await client.request(method, path, json=body, headers=owner.headers(method))
    assert response.status in (200, 201, 204), await response.text()
    assert (await client.get("/v1/admin/chatbots", headers={"Cookie": f"parley_session={owner.cookie}"})).status == 200


async def test_an_expired_or_revoked_token_is_refused(
    client: TestClient, users: UserService, documents: DocumentStore
) -> None:
    _, session = await session_for(users, "tok@example.com", "owner", None)
    made = await client.post("/v1/auth/tokens", json={"name": "ci", "expires_in_days": 1},
                             headers=session.headers("POST"))
    assert made.status == 201, await made.text()
    body = await made.json()
    secret, token_id = body["secret"], body["token"]["id"]
    assert secret.startswith("pat_")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert (await client.get("/v1/admin/applications", headers=bearer)).status == 200
    # a wrong secret for the same id
    forged = {"Authorization": f"Bearer {secret[:-4]}AAAA"}
    assert (await client.get("/v1/admin/applications", headers=forged)).status == 401
    # expired
    await documents.api_tokens.update_one({"_id": token_id}, {"$set": {"expires_at": 1.0}})
    response = await client.get("/v1/admin/applications", headers=bearer)
    assert response.status == 401
    assert "expired" in (await response.json())["message"]
    await documents.api_tokens.update_one({"_id": token_id}, {"$set": {"expires_at": 4e9}})
    assert (await client.get("/v1/admin/applications", headers=bearer)).status == 200
    # revoked
    revoked = await client.delete(f"/v1/auth/tokens/{token_id}", headers=session.headers("DELETE"))
    assert revoked.status == 204
    assert (await client.get("/v1/admin/applications", headers=bearer)).status == 401
    listed = await (await client.get("/v1/auth/tokens", headers=session.headers())).json()
    assert [(t["id"], t["revoked"]) for t in listed["items"]] == [(token_id, True)]
    assert "secret_hash" not in listed["items"][0]


async def test_a_token_follows_its_user_down(client: TestClient, users: UserService) -> None:
    """A token never outranks its user: demote or disable the user and the token follows."""
    user, session = await session_for(users, "down@example.com", "admin", None)
    made = await client.post("/v1/auth/tokens", json={"name": "ci"}, headers=session.headers("POST"))
    bearer = {"Authorization": f"Bearer {(await made.json())['secret']}"}
    patch = {"name": "x"}
    assert (await client.patch("/v1/admin/chatbots/bot-unused", json={"temperature": 0.3}, headers=bearer)).status == 200
    await users.accounts.update_user(str(user["_id"]), {"role": "viewer"})
    response = await client.patch("/v1/admin/applications/shop", json=patch, headers=bearer)
    assert response.status == 403
    await users.accounts.update_user(str(user["_id"]), {"disabled": True})
    assert (await client.get("/v1/admin/applications", headers=bearer)).status == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "role": "owner"}, "role"),
        ({"name": "x", "applications": ["bank"]}, "applications"),
        ({"name": "x", "applications": None}, "applications"),
        ({"name": "x", "expires_in_days": 100000}, "expires_in_days"),
        ({"name": ""}, "name"),
    ],
    ids=["role-above-own", "application-outside-scope", "all-applications-when-scoped", "too-long", "no-name"],
)
async def test_a_token_cannot_exceed_its_users_rights(
    client: TestClient, users: UserService, body: dict[str, Any], field: str
) -> None:
    _, session = await session_for(users, "scoped@example.com", "admin", ["shop"])
    response = await client.post("/v1/auth/tokens", json=body, headers=session.headers("POST"))
    assert response.status == 422, await response.text()
    assert field in [e["field"] for e in (await response.json())["errors"]]
