"""``/v1/auth/...`` (sign-in, sessions, password, personal API tokens, sign-in links),
``/v1/admin/users`` (owners manage accounts) and ``/v1/admin/audit`` (the audit log).

Every error is an ``HttpError`` in the API's one envelope; every write is audited
(``parley.web.access.audit``). See docs/admin-api.md.
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pymongo.errors import PyMongoError

from parley.config.models import FieldError
from parley.users.accounts import AccountError, Throttled, token_view, user_view
from parley.users.audit import AuditLog
from parley.users.principal import Principal
from parley.users.service import UserService
from parley.users.sessions import SessionStoreUnavailable
from parley.web.access import (
    SESSION_COOKIE,
    audit,
    authorize,
    clear_session_cookie,
    client_address,
    current_session,
    set_session_cookie,
    users_of,
)
from parley.web.admin import AdminError, page_limit, read_json
from parley.web.errors import HttpError, sessions_unavailable

__all__ = ["CONSOLE_PATH", "add_account_routes", "signin_link_path"]

logger = logging.getLogger(__name__)

CONSOLE_PATH = "/console/"
LINK_PREFIX = "/v1/auth/link/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def signin_link_path(secret: str) -> str:
    return LINK_PREFIX + secret


def add_account_routes(app: web.Application) -> None:
    routes = [
        ("POST", "/v1/auth/login", login),
        ("GET", "/v1/auth/session", session),
        ("POST", "/v1/auth/logout", logout),
        ("POST", "/v1/auth/logout-everywhere", logout_everywhere),
        ("POST", "/v1/auth/password", change_password),
        ("GET", "/v1/auth/link/{token}", link_page),
        ("POST", "/v1/auth/link/{token}", follow_link),
        ("GET", "/v1/auth/tokens", list_tokens),
        ("POST", "/v1/auth/tokens", create_token),
        ("DELETE", "/v1/auth/tokens/{id}", revoke_token),
        ("GET", "/v1/admin/users", list_users),
        ("POST", "/v1/admin/users", create_user),
        ("GET", "/v1/admin/users/{id}", get_user),
        ("PATCH", "/v1/admin/users/{id}", patch_user),
        ("DELETE", "/v1/admin/users/{id}", delete_user),
        ("POST", "/v1/admin/users/{id}/link", make_link),
        ("GET", "/v1/admin/audit", list_audit),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guarded(handler))


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except AccountError as exc:
            raise HttpError(exc.status, exc.code, exc.message, exc.errors, {"Cache-Control": "no-store"}) from None
        except PyMongoError as exc:
            logger.warning("%s %s: document store error: %s", request.method, request.path, exc)
            raise AdminError(
                503, "unavailable", f"the document store is unavailable ({type(exc).__name__}); retry later"
            ) from exc

    guarded.__name__ = handler.__name__
    return guarded


def _service(request: web.Request) -> UserService:
    users = users_of(request)
    if users is None:
        raise AdminError(503, "unavailable", "operator accounts are not available on this server")
    return users


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store", **(headers or {})})


def _no_content() -> web.Response:
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


async def _signed_in(request: web.Request, action: Any = "read") -> tuple[Principal, dict[str, Any]]:
    """The principal of a session (and its user): endpoints about one's own account."""
    principal = await authorize(request, action=action)
    if principal.credential != "session":
        raise AdminError(403, "session_required", "this needs a signed-in session (POST /v1/auth/login), not a key or token")
    found = await current_session(request)
    assert found is not None
    return principal, found[0]


# --- sign-in and sessions -----------------------------------------------------------------------
def refuse_cross_site_sign_in(request: web.Request) -> None:
    """Sign-in CSRF: another site must not sign a visitor's browser into an account of its
    choosing (whose pages the visitor would then fill in). A browser cannot send a JSON
    ``Content-Type`` to another origin without a CORS preflight Parley never grants, and it tells
    which site a request comes from (``Sec-Fetch-Site``, ``Origin``)."""
    if request.content_type != "application/json":
        raise AdminError(415, "unsupported_media_type", "send the sign-in as Content-Type: application/json")
    refuse_cross_site(request)


def refuse_cross_site(request: web.Request) -> None:
    """403 ``cross_site`` unless the browser says the request comes from this site (a request
    without ``Origin`` and ``Sec-Fetch-Site``, from a program, is let through). A browser's
    ``Sec-Fetch-Site: same-origin`` is enough: a page sent with ``Referrer-Policy: no-referrer``
    (the sign-in link's) posts its forms with ``Origin: null``."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site == "same-origin":
        return
    origin = request.headers.get("Origin")
    cross_site = fetch_site == "cross-site" or (
        origin is not None and origin.partition("://")[2].lower() != request.host.lower()  # "null" too
    )
    if cross_site:
        raise AdminError(403, "cross_site", "a sign-in from another site is refused: sign in on this console's own page")


async def login(request: web.Request) -> web.Response:
    users = _service(request)
    refuse_cross_site_sign_in(request)
    body = await read_json(request)
    address = client_address(request)
    try:
        user, session_, secret = await users.accounts.login(body.get("email"), body.get("password"), address)
    except Throttled as exc:
        wait = max(1, math.ceil(exc.retry_after_s))
        raise AdminError(
            429, "too_many_attempts", f"too many failed sign-ins: retry in {wait} s", headers={"Retry-After": str(wait)}
        ) from None
    except AccountError as exc:
        if exc.status == 401:
            logger.info("sign-in refused from %s", address)  # never the email or the password
        raise
    principal = users.accounts.session_principal(user, session_)
    await audit(request, principal, action="login", kind="session", target_id=str(user["_id"]), application_id=None)
    response = _json({"user": user_view(user), "csrf_token": session_.csrf_token})
    set_session_cookie(response, request, secret)
    return response


async def session(request: web.Request) -> web.Response:
    found = await current_session(request)
    if found is None:
        raise AdminError(401, "unauthorized", "not signed in: POST /v1/auth/login")
    user, session_ = found
    return _json({"user": user_view(user), "csrf_token": session_.csrf_token})


async def logout(request: web.Request) -> web.Response:
    users = _service(request)
    response = _no_content()
    try:
        found = await current_session(request)
    except SessionStoreUnavailable:
        # The session could not be read, so it is not ended on the server; this browser at least
        # forgets its cookie (a shared machine's next user is not signed in as this one).
        failed = sessions_unavailable(
            "; this browser is signed out, the session ends on the server at its expiry or with sign-out everywhere"
        ).response()
        clear_session_cookie(failed, request)
        return failed
    if found is not None:
        await authorize(request, action="read")  # the CSRF token: another site cannot sign you out
        await users.accounts.logout(request.cookies.get(SESSION_COOKIE, ""))
    clear_session_cookie(response, request)
    return response


async def logout_everywhere(request: web.Request) -> web.Response:
    users = _service(request)
    principal, user = await _signed_in(request)
    await users.accounts.logout_everywhere(str(user["_id"]))
    await audit(request, principal, action="logout_everywhere", kind="session", target_id=str(user["_id"]),
                application_id=None)
    response = _no_content()
    clear_session_cookie(response, request)
    return response


async def change_password(request: web.Request) -> web.Response:
    users = _service(request)
    principal, user = await _signed_in(request)
    body = await read_json(request)
    await users.accounts.check_sessions()  # the change ends the other sessions: this one must be storable
    await users.accounts.change_password(user, body.get("current_password"), body.get("new_password"))
    await audit(request, principal, action="change_password", kind="user", target_id=str(user["_id"]),
                application_id=None)
    fresh = await users.accounts.get_user(str(user["_id"]))
    assert fresh is not None
    session_, secret = await users.accounts.open_session(fresh, client_address(request))  # the others ended
    response = _json({"user": user_view(fresh), "csrf_token": session_.csrf_token})
    set_session_cookie(response, request, secret)
    return response


INVALID_LINK = "this sign-in link was used already or has expired: make another with `parley users link EMAIL`"


async def link_page(request: web.Request) -> web.Response:
    """What opening a sign-in link shows: a page with a button that signs in (a POST to the same
    address). Opening it signs nobody in and leaves the link good: mail scanners and link
    previews fetch what they see, and another site could make a browser open the address."""
    users = _service(request)
    user = await users.accounts.peek_link(request.match_info["token"])
    if user is None:
        return link_html(401, "This sign-in link cannot be used", f"<p>{html.escape(INVALID_LINK)} (invalid_link).</p>")
    who = html.escape(str(user.get("email", "")))
    return link_html(200, "Sign in to Parley", (
        f"<p>This one-time link signs <strong>{who}</strong> in to the Parley console.</p>"
        '<form method="post"><button type="submit">Sign in</button></form>'
    ))


def link_html(status: int, title: str, body: str) -> web.Response:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}"
        "button{font:inherit;padding:.5rem 1.5rem;cursor:pointer}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(status=status, text=page, content_type="text/html", headers={
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",  # the address is the secret
        # no script at all; the form posts only here; no other site may frame the button
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'",
        "X-Frame-Options": "DENY",
    })


async def follow_link(request: web.Request) -> web.StreamResponse:
    """The sign-in button of ``link_page``: uses the link up and opens a session."""
    users = _service(request)
    refuse_cross_site(request)
    await users.accounts.check_sessions()  # a link is used up once followed: not into a store that is down
    user = await users.accounts.consume_link(request.match_info["token"])
    if user is None:
        raise AdminError(401, "invalid_link", INVALID_LINK)
    session_, secret = await users.accounts.open_session(user, client_address(request))
    principal = users.accounts.session_principal(user, session_)
    await audit(request, principal, action="login_link", kind="session", target_id=str(user["_id"]), application_id=None)
    response = web.Response(status=303, headers={"Location": CONSOLE_PATH, "Cache-Control": "no-store"})
    set_session_cookie(response, request, secret)
    return response


# --- personal API tokens ------------------------------------------------------------------------
async def list_tokens(request: web.Request) -> web.Response:
    users = _service(request)
    _, user = await _signed_in(request)
    return _json({"items": [token_view(t) for t in await users.accounts.list_tokens(str(user["_id"]))]})


async def create_token(request: web.Request) -> web.Response:
    users = _service(request)
    principal, user = await _signed_in(request)
    body = await read_json(request)
    doc, secret = await users.accounts.create_token(user, body)
    view = token_view(doc)
    await audit(request, principal, action="create", kind="token", target_id=view["id"], application_id=None,
                after=view, application_ids=view["applications"] or [])
    return _json({"token": view, "secret": secret}, 201)


async def revoke_token(request: web.Request) -> web.Response:
    users = _service(request)
    principal, user = await _signed_in(request)
    token = await users.accounts.revoke_token(str(user["_id"]), request.match_info["id"])
    view = token_view(token)
    await audit(request, principal, action="revoke", kind="token", target_id=view["id"], application_id=None,
                before=view, application_ids=view["applications"] or [])
    return _no_content()


# --- users (owners) -----------------------------------------------------------------------------
async def list_users(request: web.Request) -> web.Response:
    users = _service(request)
    await authorize(request, action="manage_users")
    limit = page_limit(request.query.get("limit"))
    after = request.query.get("after") or None
    docs = await users.accounts.list_users(limit=limit + 1, after=after)
    more = len(docs) > limit
    docs = docs[:limit]
    return _json({"items": [user_view(u) for u in docs], "next_after": str(docs[-1]["_id"]) if more else None})


async def create_user(request: web.Request) -> web.Response:
    users = _service(request)
    principal = await authorize(request, action="manage_users")
    body = await read_json(request)
    unknown = sorted(set(body) - {"email", "name", "role", "applications", "password"})
    if unknown:
        raise AccountError(422, "invalid_document", f"unknown field(s): {', '.join(unknown)}",
                           [FieldError(n, "unknown field") for n in unknown])
    user = await users.accounts.create_user(
        email=body.get("email"), name=body.get("name", ""), role=body.get("role"),  # type: ignore[arg-type]
        applications=body.get("applications"), password=body.get("password"),
    )
    view = user_view(user)
    await audit(request, principal, action="create", kind="user", target_id=view["id"], application_id=None, after=view)
    return _json(view, 201, {"Location": f"/v1/admin/users/{view['id']}"})


async def get_user(request: web.Request) -> web.Response:
    users = _service(request)
    await authorize(request, action="manage_users")
    user = await users.accounts.get_user(request.match_info["id"])
    if user is None:
        raise AdminError(404, "not_found", f"no user {request.match_info['id']!r}")
    return _json(user_view(user))


async def patch_user(request: web.Request) -> web.Response:
    users = _service(request)
    principal = await authorize(request, action="manage_users")
    body = await read_json(request)
    before, after = await users.accounts.update_user(request.match_info["id"], body)
    view = user_view(after)
    changes = {**view, **({"password": "changed"} if body.get("password") else {})}
    await audit(request, principal, action="update", kind="user", target_id=view["id"], application_id=None,
                before=user_view(before), after=changes)
    return _json(view)


async def delete_user(request: web.Request) -> web.Response:
    users = _service(request)
    principal = await authorize(request, action="manage_users")
    user = await users.accounts.delete_user(request.match_info["id"])
    await audit(request, principal, action="delete", kind="user", target_id=str(user["_id"]), application_id=None,
                before=user_view(user))
    return _no_content()


async def make_link(request: web.Request) -> web.Response:
    users = _service(request)
    principal = await authorize(request, action="manage_users")
    user = await users.accounts.get_user(request.match_info["id"])
    if user is None:
        raise AdminError(404, "not_found", f"no user {request.match_info['id']!r}")
    if user.get("disabled"):
        raise AdminError(409, "disabled", "the user is disabled: enable them first (PATCH disabled: false)")
    secret = await users.accounts.create_link(str(user["_id"]))
    await audit(request, principal, action="create_link", kind="user", target_id=str(user["_id"]), application_id=None)
    return _json({"path": signin_link_path(secret), "expires_in_s": users.accounts.policy.link_ttl_s}, 201)


# --- the audit log ------------------------------------------------------------------------------
async def list_audit(request: web.Request) -> web.Response:
    users = _service(request)
    principal = await authorize(request, action="read")
    if principal.role == "viewer":
        raise AdminError(403, "forbidden", "the audit log is for admins and owners; you are a viewer")
    query = request.query
    application_id = query.get("application_id") or None
    if application_id is not None and not principal.can_read(application_id):
        raise AdminError(403, "forbidden", f"you have no access to application {application_id!r}")
    cursor = query.get("cursor") or None
    if cursor is not None and not AuditLog.valid_cursor(cursor):
        raise AdminError(400, "invalid_parameter", "cursor must be a `next_cursor` of an earlier page")
    items, next_cursor = await users.audit.list(
        scope=principal.applications, everything=principal.role == "owner" and principal.applications is None,
        actor=query.get("actor") or None, application_id=application_id, kind=query.get("kind") or None,
        action=query.get("action") or None, since=_time(query.get("since"), "since"),
        until=_time(query.get("until"), "until"), limit=page_limit(query.get("limit")), cursor=cursor,
    )
    return _json({"items": items, "next_cursor": next_cursor})


def _time(raw: str | None, name: str) -> float | None:
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise AdminError(400, "invalid_parameter", f"{name} must be an ISO 8601 time, e.g. 2026-01-31T14:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()



