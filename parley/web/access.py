"""Who may do what over HTTP: ``authorize`` (every credential, every role and scope check) and
``audit`` (every write, appended to the audit log).

Credentials, tried in this order:
- ``Authorization: Bearer pat_...``: a personal API token (role and applications at most its user's);
- ``Authorization: Bearer <PARLEY_ADMIN_API_KEY>`` (or ``X-Admin-Key``): the bootstrap /
  break-glass key, an owner of every application;
- the ``parley_session`` cookie of a signed-in operator. On unsafe methods (POST, PUT, PATCH,
  DELETE) the request must also carry ``X-CSRF-Token`` equal to the session's token: a cookie
  alone is refused (403 ``csrf_required``), so another site cannot make a browser write.

Roles: ``viewer`` reads; ``admin`` also writes (applications, chatbots, dead letters, replays,
handoff); ``owner`` also manages users and reads every audit entry. Each user is scoped to every
application (``applications: null``) or to a list. See docs/admin-api.md.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from aiohttp import web

from parley.settings import Settings
from parley.users.principal import Action, Principal
from parley.users.service import UserService
from parley.users.sessions import Session
from parley.web.errors import HttpError
from parley.web.keys import DEPS, SETTINGS

__all__ = [
    "ADMIN_KEY_USER_ID", "CSRF_HEADER", "SESSION_COOKIE", "Principal", "audit", "authorize",
    "client_address", "clear_session_cookie", "current_session", "set_session_cookie", "users_of",
]

logger = logging.getLogger(__name__)

SESSION_COOKIE = "parley_session"
CSRF_HEADER = "X-CSRF-Token"
ADMIN_KEY_USER_ID = "admin-key"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: where the principal of a request is kept once authorized
_PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("parley.principal", Principal)
_SESSION: web.RequestKey[tuple[dict[str, Any], Session] | None] = web.RequestKey("parley.session")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="parley-admin"', "Cache-Control": "no-store"}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> HttpError:
    return HttpError(status, code, message, headers={"Cache-Control": "no-store", **(headers or {})})


def users_of(request: web.Request) -> UserService | None:
    return request.app[DEPS].users


def client_address(request: web.Request) -> str:
    """The client's address (the last ``X-Forwarded-For`` hop when ``PARLEY_TRUST_FORWARDED_FOR``)."""
    if request.app[SETTINGS].trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last[:100]
    return request.remote or ""


def _presented_bearer(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if authorization.strip():
        raise _error(401, "unauthorized", "the Authorization header must be `Bearer <token or admin key>`", _CHALLENGE)
    header = request.headers.get("X-Admin-Key", "").strip()
    return header or None


def _admin_key_principal(settings: Settings, presented: str) -> Principal:
    key = settings.admin_api_key
    expected = key.get_secret_value() if key is not None else ""
    if not expected:
        raise _error(
            401, "unauthorized",
            "the admin key is not enabled on this server (PARLEY_ADMIN_API_KEY is unset): sign in, "
            "or use a personal API token (`Bearer pat_...`)", _CHALLENGE,
        )
    # (surrogatepass: a header with bytes that are not UTF-8 arrives with surrogate escapes)
    if not hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8")):
        raise _error(401, "unauthorized", "wrong admin key or token", _CHALLENGE)
    return Principal(
        credential="admin_key", credential_id=ADMIN_KEY_USER_ID, user_id=ADMIN_KEY_USER_ID,
        email=ADMIN_KEY_USER_ID, name="PARLEY_ADMIN_API_KEY", role="owner", applications=None,
    )


async def _authenticate(request: web.Request) -> Principal:
    users = users_of(request)
    presented = _presented_bearer(request)
    if presented is not None:
        if presented.startswith("pat_"):
            principal = await users.accounts.token_principal(presented) if users is not None else None
            if principal is None:
                raise _error(401, "unauthorized", "unknown, expired or revoked API token: make a new one", _CHALLENGE)
            return principal
        return _admin_key_principal(request.app[SETTINGS], presented)
    found = await current_session(request)
    if found is None:
        if request.cookies.get(SESSION_COOKIE):
            raise _error(401, "session_expired", "your session has ended: sign in again", _CHALLENGE)
        raise _error(
            401, "unauthorized",
            "sign in (POST /v1/auth/login), or send `Authorization: Bearer <personal API token or "
            "PARLEY_ADMIN_API_KEY>`", _CHALLENGE,
        )
    user, session = found
    if request.method in UNSAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode("utf-8", "surrogatepass"), session.csrf_token.encode()):
            raise _error(
                403, "csrf_required",
                f"a request made with the session cookie must send the session's CSRF token in "
                f"{CSRF_HEADER} (GET /v1/auth/session returns it)",
            )
    assert users is not None
    return users.accounts.session_principal(user, session)


async def current_session(request: web.Request) -> tuple[dict[str, Any], Session] | None:
    """The request's live session (from its cookie) and its user, or None."""
    if _SESSION in request:
        return request[_SESSION]
    users = users_of(request)
    secret = request.cookies.get(SESSION_COOKIE)
    found: tuple[dict[str, Any], Session] | None = None
    if users is not None and secret:
        found = await users.accounts.session(secret)  # an outage: 503 (web/errors.py)
    request[_SESSION] = found
    return found


async def authorize(request: web.Request, *, action: Action, application_id: str | None = None) -> Principal:
    """The request's principal, if it may ``action`` (on ``application_id`` when given):
    ``HttpError`` 401 without a valid credential, 403 when the role or the scope refuses.
    Unscoped list endpoints pass no application and filter with ``principal.can_read``."""
    principal = request.get(_PRINCIPAL)
    if principal is None:
        principal = await _authenticate(request)
        request[_PRINCIPAL] = principal
    if not principal.allows(action):
        need = "an owner" if action == "manage_users" else "an admin or owner"
        raise _error(403, "forbidden", f"this needs {need}; you are a {principal.role}")
    if application_id is not None:
        allowed = principal.can_write(application_id) if action == "write" else principal.can_read(application_id)
        if not allowed:
            raise _error(403, "forbidden", f"you have no access to application {application_id!r}")
    return principal


async def audit(
    request: web.Request, principal: Principal, *, action: str, kind: str, target_id: str,
    application_id: str | None, before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
    application_ids: list[str] | None = None,
) -> None:
    """Append one entry to the audit log (secrets in ``before`` / ``after`` are masked).
    ``application_ids``: every application the write concerns, when more than one (a chatbot's
    users); by default ``[application_id]``."""
    users = users_of(request)
    if users is None:
        logger.debug("no user service: %s %s %s not audited", action, kind, target_id)
        return
    apps = application_ids if application_ids is not None else ([application_id] if application_id else [])
    await users.audit.append(
        actor=principal.as_actor(), action=action, kind=kind, target_id=target_id, application_ids=apps,
        before=before, after=after, address=client_address(request), method=request.method, path=request.path,
    )


def _secure(request: web.Request) -> bool:
    return (
        request.app[SETTINGS].session_cookie_secure or request.secure
        or request.headers.get("X-Forwarded-Proto", "").lower() == "https"
    )


def set_session_cookie(response: web.StreamResponse, request: web.Request, secret: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, secret, path="/", httponly=True, samesite="Strict", secure=_secure(request),
        max_age=int(request.app[SETTINGS].session_max_age_s),
    )


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="Strict")
