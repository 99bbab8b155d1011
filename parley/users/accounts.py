"""The User Service: operator accounts, sign-in, sessions, personal API tokens, sign-in links.

Accounts live in the document store's ``users`` collection (email unique, password hashed with
Argon2id), tokens in ``api_tokens`` (only a SHA-256 of the secret is kept), one-time sign-in
links in ``signin_links``, sessions in a ``SessionStore`` (Redis or the document store). Nothing
here knows HTTP: the web layer (``parley.web.access``, ``parley.web.accounts_api``) maps
``AccountError`` to responses.
"""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from parley.config.models import ID_PATTERN, FieldError
from parley.storage.documents import DocumentStore
from parley.users.passwords import check_password_rules, hash_password, verify_password
from parley.users.principal import ROLES, Principal, Role, role_at_most
from parley.users.sessions import Session, SessionStore, new_secret, secret_digest
from parley.users.throttle import LoginThrottle

__all__ = [
    "TOKEN_PREFIX", "AccountError", "Accounts", "Policy", "Throttled", "normal_email", "user_view",
]

TOKEN_PREFIX = "pat_"
MAX_NAME_CHARS = 200
MAX_EMAIL_CHARS = 254
MAX_TOKENS_PER_USER = 100
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_APP_ID = re.compile(ID_PATTERN)
_TOKEN = re.compile(r"^pat_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")


class AccountError(Exception):
    """A refused account operation: ``status`` (400/401/403/404/409/422), a stable ``code``, a
    message saying what to do, the offending fields."""

    def __init__(self, status: int, code: str, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


class Throttled(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed sign-ins; retry in {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Policy:
    idle_timeout_s: float = 7200.0
    max_age_s: float = 43200.0
    token_max_days: int = 365
    link_ttl_s: float = 900.0


def normal_email(email: str) -> str:
    return email.strip().lower()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_view(user: dict[str, Any]) -> dict[str, Any]:
    """The ``user`` JSON: never the password hash."""
    apps = user.get("applications")
    return {
        "id": str(user["_id"]), "email": user["email"], "name": user.get("name", ""),
        "role": user["role"], "applications": sorted(apps) if apps is not None else None,
        "disabled": bool(user.get("disabled")), "created_at": user.get("created_at"),
    }


def token_view(token: dict[str, Any]) -> dict[str, Any]:
    apps = token.get("applications")
    return {
        "id": str(token["_id"]), "name": token.get("name", ""), "role": token["role"],
        "applications": sorted(apps) if apps is not None else None,
        "created_at": token.get("created_at"), "expires_at": _iso(float(token["expires_at"])),
        "last_used_at": token.get("last_used_at"), "revoked": bool(token.get("revoked_at")),
    }


def _principal(user: dict[str, Any], credential: Any, credential_id: str, *,
               role: str | None = None, token_applications: list[str] | None = None) -> Principal:
    """The principal of a user's credential: a token narrows the user's current role and
    scope to its own (it never widens them: a demoted user's tokens are demoted too)."""
    user_apps = user.get("applications")
    apps: frozenset[str] | None = frozenset(user_apps) if user_apps is not None else None
    if token_applications is not None:
        narrowed = frozenset(token_applications)
        apps = narrowed if apps is None else narrowed & apps
    effective: Role = user["role"]
    if role is not None and role_at_most(role, effective):
        effective = role  # type: ignore[assignment]
    return Principal(
        credential=credential, credential_id=credential_id, user_id=str(user["_id"]), email=user["email"],
        name=user.get("name", ""), role=effective, applications=apps,
    )


class Accounts:
    def __init__(
        self, documents: DocumentStore, sessions: SessionStore, throttle: LoginThrottle,
        policy: Policy | None = None, clock: Callable[[], float] = time.time,
    ) -> None:
        self._users = documents.users
        self._tokens = documents.api_tokens
        self._links = documents.signin_links
        self._sessions = sessions
        self._throttle = throttle
        self.policy = policy or Policy()
        self._clock = clock

    async def start(self) -> None:
        await self._users.create_index([("email", ASCENDING)], unique=True)
        await self._tokens.create_index([("user_id", ASCENDING)])

    async def check_sessions(self) -> None:
        """``SessionStoreUnavailable`` unless a new session could be stored now."""
        await self._sessions.ping()

    async def close(self) -> None:
        await self._sessions.close()  # a Redis store holds a connection pool

    # --- validation -----------------------------------------------------------------------
    @staticmethod
    def _check_fields(body: dict[str, Any], *, creating: bool) -> list[FieldError]:
        errors: list[FieldError] = []
        if creating or "email" in body:
            email = body.get("email")
            if not isinstance(email, str) or len(email) > MAX_EMAIL_CHARS or not _EMAIL.match(email.strip()):
                errors.append(FieldError("email", "must be an email address (name@host)"))
        if creating or "name" in body:
            name = body.get("name", "")
            if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
                errors.append(FieldError("name", f"must be a string of at most {MAX_NAME_CHARS} characters"))
        if (creating or "role" in body) and body.get("role") not in ROLES:
            errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}"))
        if "applications" in body:
            errors += _check_applications(body["applications"])
        if "password" in body and body["password"] is not None:
            problem = check_password_rules(body["password"])
            if problem:
                errors.append(FieldError("password", problem))
        if "disabled" in body and not isinstance(body["disabled"], bool):
            errors.append(FieldError("disabled", "must be true or false"))
        return errors

    # --- users ----------------------------------------------------------------------------
    async def create_user(
        self, *, email: str, name: str, role: str, applications: list[str] | None = None,
        password: str | None = None,
    ) -> dict[str, Any]:
        body = {"email": email, "name": name, "role": role, "applications": applications, "password": password}
        errors = self._check_fields(body, creating=True)
        if errors:
            raise AccountError(422, "invalid_document", _summary("user", errors), errors)
        now = _iso(self._clock())
        user = {
            "_id": "usr_" + secrets.token_hex(8), "email": normal_email(email), "name": name.strip(),
            "role": role, "applications": sorted(set(applications)) if applications is not None else None,
            "password_hash": await hash_password(password) if password else None,
            "disabled": False, "session_epoch": 0, "created_at": now, "updated_at": now,
        }
        try:
            await self._users.insert_one(user)
        except DuplicateKeyError:
            raise AccountError(409, "conflict", f"a user with email {user['email']!r} exists") from None
        return user

    async def get_user(self, user_id: str) -> dict[str, Any] | None:
        return await self._users.find_one({"_id": user_id})

    async def find_user(self, email: str) -> dict[str, Any] | None:
        if not isinstance(email, str) or len(email) > MAX_EMAIL_CHARS:
            return None
        return await self._users.find_one({"email": normal_email(email)})

    async def list_users(self, *, limit: int, after: str | None = None) -> list[dict[str, Any]]:
        query = {"_id": {"$gt": after}} if after else {}
        return [u async for u in self._users.find(query).sort("_id", ASCENDING).limit(limit)]

    async def count_owners(self) -> int:
        return await self._users.count_documents({"role": "owner", "disabled": {"$ne": True}})

    async def update_user(self, user_id: str, changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Apply ``changes`` (name, role, applications, disabled, password); returns (before,
        after). Disabling, a role or scope change and a password reset end the user's sessions."""
        allowed = {"name", "role", "applications", "disabled", "password"}
        unknown = sorted(set(changes) - allowed)
        errors = [FieldError(name, "cannot be changed here") for name in unknown]
        errors += self._check_fields(changes, creating=False)
        if errors:
            raise AccountError(422, "invalid_document", _summary("user", errors), errors)
        before = await self.get_user(user_id)
        if before is None:
            raise AccountError(404, "not_found", f"no user {user_id!r}")
        update: dict[str, Any] = {"updated_at": _iso(self._clock())}
        ends_sessions = False
        for name in ("name", "role", "disabled"):
            if name in changes:
                update[name] = changes[name].strip() if name == "name" else changes[name]
        if "applications" in changes:
            apps = changes["applications"]
            update["applications"] = sorted(set(apps)) if apps is not None else None
        if changes.get("password"):
            update["password_hash"] = await hash_password(changes["password"])
            ends_sessions = True
        if changes.get("disabled") or "role" in changes or "applications" in changes:
            ends_sessions = True
        demoted = update.get("role", "owner") != "owner" or update.get("disabled")
        if before["role"] == "owner" and demoted and not before.get("disabled") and await self.count_owners() <= 1:
            raise AccountError(409, "last_owner", "this is the last enabled owner: make another owner first")
        operation: dict[str, Any] = {"$set": update}
        if ends_sessions:
            operation["$inc"] = {"session_epoch": 1}
        await self._users.update_one({"_id": user_id}, operation)
        after = await self.get_user(user_id)
        assert after is not None
        return before, after

    async def delete_user(self, user_id: str) -> dict[str, Any]:
        user = await self.get_user(user_id)
        if user is None:
            raise AccountError(404, "not_found", f"no user {user_id!r}")
        if user["role"] == "owner" and not user.get("disabled") and await self.count_owners() <= 1:
            raise AccountError(409, "last_owner", "this is the last enabled owner: make another owner first")
        await self._users.delete_one({"_id": user_id})
        await self._tokens.delete_many({"user_id": user_id})
        return user

    # --- sign-in and sessions --------------------------------------------------------------
    async def login(self, email: Any, password: Any, address: str) -> tuple[dict[str, Any], Session, str]:
        """(user, session, cookie secret); ``Throttled`` or ``AccountError`` 401."""
        if not isinstance(email, str) or not isinstance(password, str):
            raise AccountError(400, "invalid_field", "send {\"email\": ..., \"password\": ...} as strings")
        key = normal_email(email)[:MAX_EMAIL_CHARS]
        attempt = await self._throttle.attempt(key, address)  # counted before the password is checked
        if attempt.refused_for is not None:
            raise Throttled(attempt.refused_for)
        try:
            user = await self.find_user(key)
            ok = await verify_password(user.get("password_hash") if user else None, password)
        except BaseException:
            await attempt.take_back()  # the store failed: no password was checked
            raise
        if not ok or user is None or user.get("disabled"):
            raise AccountError(401, "bad_credentials", "wrong email or password (or the account is disabled)")
        await attempt.succeeded()
        now = self._clock()
        await self._sessions.purge(expired_before=now, idle_before=now - self.policy.idle_timeout_s)
        await self._links.delete_many({"expires_at": {"$lt": now}})
        session, secret = await self.open_session(user, address)
        return user, session, secret

    async def open_session(self, user: dict[str, Any], address: str) -> tuple[Session, str]:
        now = self._clock()
        secret = new_secret()
        session = Session(
            id=secret_digest(secret), user_id=str(user["_id"]), csrf_token=secrets.token_urlsafe(24),
            created_at=now, last_seen=now, expires_at=now + self.policy.max_age_s,
            epoch=int(user.get("session_epoch", 0)), address=address,
        )
        await self._sessions.put(session, min(self.policy.idle_timeout_s, self.policy.max_age_s))
        return session, secret

    async def session(self, secret: str) -> tuple[dict[str, Any], Session] | None:
        """The live session of a cookie secret and its user, or None (expired, signed out,
        user disabled or signed out everywhere). Refreshes the idle timer."""
        if not secret or len(secret) > 200:
            return None
        session_id = secret_digest(secret)
        session = await self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now >= session.expires_at or now - session.last_seen >= self.policy.idle_timeout_s:
            await self._sessions.delete(session_id)
            return None
        user = await self.get_user(session.user_id)
        if user is None or user.get("disabled") or int(user.get("session_epoch", 0)) != session.epoch:
            await self._sessions.delete(session_id)
            return None
        # refresh the idle timer at most once a minute (not a write per request)
        if now - session.last_seen >= min(60.0, self.policy.idle_timeout_s / 10):
            session = Session(**{**session.as_dict(), "last_seen": now})
            await self._sessions.put(session, min(self.policy.idle_timeout_s, session.expires_at - now))
        return user, session

    async def logout(self, secret: str) -> None:
        await self._sessions.delete(secret_digest(secret))

    async def logout_everywhere(self, user_id: str) -> None:
        await self._users.update_one({"_id": user_id}, {"$inc": {"session_epoch": 1}})

    async def change_password(self, user: dict[str, Any], current: Any, new: Any) -> None:
        if not isinstance(current, str) or not await verify_password(user.get("password_hash"), current):
            raise AccountError(403, "bad_credentials", "the current password is wrong")
        problem = check_password_rules(new)
        if problem:
            errors = [FieldError("new_password", problem)]
            raise AccountError(422, "invalid_document", _summary("password", errors), errors)
        await self._users.update_one(
            {"_id": user["_id"]},
            {"$set": {"password_hash": await hash_password(new), "updated_at": _iso(self._clock())},
             "$inc": {"session_epoch": 1}},
        )

    # --- one-time sign-in links ------------------------------------------------------------
    async def create_link(self, user_id: str) -> str:
        secret = new_secret()
        await self._links.insert_one({
            "_id": secret_digest(secret), "user_id": user_id, "expires_at": self._clock() + self.policy.link_ttl_s,
        })
        return secret

    async def consume_link(self, secret: str) -> dict[str, Any] | None:
        """The user of a sign-in link, once (the link is deleted), or None."""
        if not secret or len(secret) > 200:
            return None
        return await self._link_user(await self._links.find_one_and_delete({"_id": secret_digest(secret)}))

    async def peek_link(self, secret: str) -> dict[str, Any] | None:
        """The user a sign-in link would sign in, or None; the link stays as it was."""
        if not secret or len(secret) > 200:
            return None
        return await self._link_user(await self._links.find_one({"_id": secret_digest(secret)}))

    async def _link_user(self, link: dict[str, Any] | None) -> dict[str, Any] | None:
        if link is None or float(link.get("expires_at", 0)) <= self._clock():
            return None
        user = await self.get_user(str(link["user_id"]))
        if user is None or user.get("disabled"):
            return None
        return user

    # --- personal API tokens ---------------------------------------------------------------
    async def create_token(self, user: dict[str, Any], body: dict[str, Any]) -> tuple[dict[str, Any], str]:
        errors: list[FieldError] = []
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_CHARS:
            errors.append(FieldError("name", f"must be a non-empty string of at most {MAX_NAME_CHARS} characters"))
        role = body.get("role", user["role"])
        if role not in ROLES:
            errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}"))
        elif not role_at_most(role, user["role"]):
            errors.append(FieldError("role", f"must be at most your own role ({user['role']})"))
        apps = body.get("applications", user.get("applications"))
        app_errors = _check_applications(apps)
        errors += app_errors
        if not app_errors and user.get("applications") is not None:
            outside = sorted(set(apps or []) - set(user["applications"])) if apps is not None else ["(all)"]
            if outside:
                errors.append(FieldError("applications", f"outside your applications: {', '.join(outside)}"))
        days = body.get("expires_in_days", 90)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= self.policy.token_max_days:
            errors.append(FieldError("expires_in_days", f"must be an integer from 1 to {self.policy.token_max_days}"))
        extra = sorted(set(body) - {"name", "role", "applications", "expires_in_days"})
        errors += [FieldError(n, "unknown field") for n in extra]
        if errors:
            raise AccountError(422, "invalid_document", _summary("token", errors), errors)
        if await self._tokens.count_documents({"user_id": user["_id"], "revoked_at": None}) >= MAX_TOKENS_PER_USER:
            raise AccountError(409, "too_many_tokens", f"at most {MAX_TOKENS_PER_USER} tokens per user: revoke some")
        now = self._clock()
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        doc = {
            "_id": token_id, "user_id": user["_id"], "name": name.strip(), "role": role,  # type: ignore[union-attr]
            "applications": sorted(set(apps)) if apps is not None else None,
            "secret_hash": secret_digest(secret), "created_at": _iso(now),
            "expires_at": now + days * 86400, "last_used_at": None, "revoked_at": None,
        }
        await self._tokens.insert_one(doc)
        return doc, f"{TOKEN_PREFIX}{token_id}_{secret}"

    async def list_tokens(self, user_id: str) -> list[dict[str, Any]]:
        cursor = self._tokens.find({"user_id": user_id}).sort("created_at", ASCENDING).limit(MAX_TOKENS_PER_USER * 2)
        return [t async for t in cursor]

    async def revoke_token(self, user_id: str, token_id: str) -> dict[str, Any]:
        token = await self._tokens.find_one({"_id": token_id, "user_id": user_id})
        if token is None:
            raise AccountError(404, "not_found", f"no token {token_id!r} of yours")
        await self._tokens.update_one({"_id": token_id}, {"$set": {"revoked_at": _iso(self._clock())}})
        return token

    async def token_principal(self, presented: str) -> Principal | None:
        """The principal of a ``pat_...`` token, or None (unknown, wrong, expired, revoked, or
        its user disabled). The token acts with at most its user's current role and scope."""
        match = _TOKEN.match(presented)
        if match is None:
            return None
        token_id, secret = match.groups()
        token = await self._tokens.find_one({"_id": token_id})
        if token is None or not hmac.compare_digest(str(token.get("secret_hash", "")), secret_digest(secret)):
            return None
        now = self._clock()
        if token.get("revoked_at") or float(token.get("expires_at", 0)) <= now:
            return None
        user = await self.get_user(str(token["user_id"]))
        if user is None or user.get("disabled"):
            return None
        last = token.get("last_used_at")
        if last is None or last < _iso(now - 60):
            await self._tokens.update_one({"_id": token_id}, {"$set": {"last_used_at": _iso(now)}})
        return _principal(user, "token", token_id, role=token["role"], token_applications=token.get("applications"))

    @staticmethod
    def session_principal(user: dict[str, Any], session: Session) -> Principal:
        return _principal(user, "session", session.id[:16])


def _check_applications(apps: Any) -> list[FieldError]:
    if apps is None:
        return []
    if not isinstance(apps, list) or len(apps) > 1000:
        return [FieldError("applications", "must be null (every application) or a list of application ids")]
    return [
        FieldError(f"applications[{i}]", "must be an application id")
        for i, app in enumerate(apps) if not isinstance(app, str) or not _APP_ID.match(app)
    ]


def _summary(kind: str, errors: list[FieldError]) -> str:
    return f"the {kind} is invalid: " + "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
