"""The OpenAPI description of ``/v1/auth/...``, ``/v1/admin/users`` and ``/v1/admin/audit``
(``parley.web.accounts_api``); merged into ``/v1/openapi.json`` by ``parley.web.openapi``."""

from __future__ import annotations

from typing import Any

from parley.config.models import ID_PATTERN
from parley.users.accounts import MAX_EMAIL_CHARS, MAX_NAME_CHARS
from parley.users.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from parley.users.principal import ROLES
from parley.web.admin import DEFAULT_LIMIT, MAX_LIMIT

__all__ = ["SECURITY", "account_paths", "account_schemas"]

#: every way to call the admin API: a bearer (personal API token or the admin key), X-Admin-Key,
#: or the session cookie (with X-CSRF-Token on unsafe methods)
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"adminKey": []}, {"sessionCookie": []}]
_SESSION_ONLY: list[dict[str, list[str]]] = [{"sessionCookie": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_APPLICATIONS = {
    "anyOf": [{"type": "array", "maxItems": 1000, "items": {"type": "string", "pattern": ID_PATTERN}}, {"type": "null"}],
    "description": "The applications in scope; null: every application.",
}
_ROLE = {"enum": list(ROLES), "description": "viewer < admin < owner (docs/admin-api.md lists each role's rights)."}
_PASSWORD = {"type": "string", "minLength": MIN_PASSWORD_CHARS, "maxLength": MAX_PASSWORD_CHARS, "writeOnly": True}
_LIMIT = {"name": "limit", "in": "query",
          "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}}
_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_LINK_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
_COOKIE = {"Set-Cookie": {"description": "`parley_session=...; HttpOnly; SameSite=Strict; Path=/` "
                          "(`Secure` over https or with PARLEY_SESSION_COOKIE_SECURE).",
                          "schema": {"type": "string"}}}


def account_schemas() -> dict[str, Any]:
    user = {
        "type": "object",
        "required": ["id", "email", "name", "role", "applications", "disabled", "created_at"],
        "properties": {
            "id": {"type": "string"}, "email": {"type": "string"}, "name": {"type": "string"},
            "role": _ROLE, "applications": _APPLICATIONS, "disabled": {"type": "boolean"},
            "created_at": {"type": ["string", "null"]},
        },
    }
    token = {
        "type": "object",
        "required": ["id", "name", "role", "applications", "created_at", "expires_at", "revoked"],
        "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "role": _ROLE, "applications": _APPLICATIONS,
            "created_at": {"type": "string"}, "expires_at": {"type": "string"},
            "last_used_at": {"type": ["string", "null"]}, "revoked": {"type": "boolean"},
        },
    }
    return {
        "User": user,
        "UserList": {
            "type": "object", "required": ["items", "next_after"],
            "properties": {"items": {"type": "array", "items": _ref("User")},
                           "next_after": {"type": ["string", "null"]}},
        },
        "UserCreate": {
            "type": "object", "additionalProperties": False, "required": ["email", "role"],
            "properties": {
                "email": {"type": "string", "maxLength": MAX_EMAIL_CHARS, "pattern": r"^[^@\s]+@[^@\s]+$"},
                "name": {"type": "string", "maxLength": MAX_NAME_CHARS}, "role": _ROLE,
                "applications": _APPLICATIONS,
                "password": {**_PASSWORD, "description": "Omitted: the user signs in with a link "
                             "(POST /v1/admin/users/{id}/link) and sets one."},
            },
        },
        "UserPatch": {
            "type": "object", "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "maxLength": MAX_NAME_CHARS}, "role": _ROLE,
                "applications": _APPLICATIONS, "disabled": {"type": "boolean"},
                "password": {**_PASSWORD, "description": "A reset: the user's sessions end."},
            },
        },
        "Session": {
            "type": "object", "required": ["user", "csrf_token"],
            "properties": {"user": _ref("User"), "csrf_token": {
                "type": "string", "description": "Send it as `X-CSRF-Token` on every POST, PUT, PATCH and DELETE."}},
        },
        "Login": {
            "type": "object", "required": ["email", "password"],
            "properties": {"email": {"type": "string"}, "password": {"type": "string", "writeOnly": True}},
        },
        "PasswordChange": {
            "type": "object", "required": ["current_password", "new_password"],
            "properties": {"current_password": {"type": "string", "writeOnly": True}, "new_password": _PASSWORD},
        },
        "Token": token,
        "TokenList": {"type": "object", "required": ["items"],
                      "properties": {"items": {"type": "array", "items": _ref("Token")}}},
        "TokenCreate": {
            "type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS},
                "role": {**_ROLE, "description": "At most your own role (default: yours)."},
                "applications": {**_APPLICATIONS, "description": "A subset of yours (default: yours)."},
                "expires_in_days": {"type": "integer", "minimum": 1, "default": 90,
                                    "description": "At most PARLEY_API_TOKEN_MAX_DAYS."},
            },
        },
        "TokenCreated": {
            "type": "object", "required": ["token", "secret"],
            "properties": {"token": _ref("Token"), "secret": {
                "type": "string", "description": "`pat_...`: shown once, send it as `Authorization: Bearer <secret>`."}},
        },
        "SigninLink": {
            "type": "object", "required": ["path", "expires_in_s"],
            "properties": {"path": {"type": "string", "description": "`/v1/auth/link/<token>`, used once."},
                           "expires_in_s": {"type": "number"}},
        },
        "AuditEntry": {
            "type": "object",
            "required": ["id", "at", "actor", "action", "kind", "target_id", "application_id", "application_ids"],
            "properties": {
                "id": {"type": "string", "description": "Sorts by time; a page's last id is its `next_cursor`."},
                "at": {"type": "string"},
                "actor": {"type": "object", "description": "user_id, email, name, credential "
                          "(session | token | admin_key | cli), credential_id, role."},
                "action": {"type": "string", "examples": ["create", "replace", "update", "delete", "login"]},
                "kind": {"type": "string", "examples": ["application", "chatbot", "user", "token", "session"]},
                "target_id": {"type": "string"},
                "application_id": {"type": ["string", "null"]},
                "application_ids": {"type": "array", "items": {"type": "string"}},
                "before": {"description": "The document before the write (secrets `***`), or null."},
                "after": {"description": "The document after the write (secrets `***`), or null."},
                "address": {"type": "string"},
                "request": {"type": "object"},
            },
        },
        "AuditPage": {
            "type": "object", "required": ["items", "next_cursor"],
            "properties": {"items": {"type": "array", "items": _ref("AuditEntry")},
                           "next_cursor": {"type": ["string", "null"]}},
        },
    }


def account_paths() -> dict[str, Any]:
    unavailable = {**_error("The document store is unavailable (`unavailable`), or, with Redis, the session "
                            "store is (`sessions_unavailable`); retry after `Retry-After` seconds."),
                   "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}}
    unauthorized = _error("No valid credential (`unauthorized`), or the session ended (`session_expired`).")
    forbidden = _error("The role or the application scope refuses it (`forbidden`), a session cookie came "
                       "without its `X-CSRF-Token` (`csrf_required`), or it needs a signed-in session "
                       "(`session_required`).")
    bad_body = {"400": _error("The body is not a JSON object of the right types."),
                "413": _error("The body is larger than 256 KiB."),
                "422": {"description": "Fields are invalid; `errors` names each.",
                        "content": {"application/json": {"schema": _ref("ValidationError")}}}}
    auth = ["auth"]
    users = ["users"]
    return {
        "/v1/auth/login": {"post": {
            "operationId": "login", "summary": "Sign in", "tags": auth, "security": [],
            "description": "Starts a server-side session: the `parley_session` cookie and the session's CSRF "
            "token. Attempts are counted per account and per client address before the password is "
            "checked (a success takes its attempt back); past PARLEY_LOGIN_MAX_FAILURES_PER_ACCOUNT / "
            "_PER_ADDRESS within PARLEY_LOGIN_WINDOW_S, 429. Only as `application/json` from this "
            "server's own pages (no sign-in CSRF).",
            "requestBody": _body(_ref("Login")),
            "responses": {
                "200": {**_json(_ref("Session"), "Signed in."), "headers": _COOKIE},
                **bad_body,
                "401": _error("Wrong email or password, or a disabled account (`bad_credentials`)."),
                "403": _error("The request came from another site (`cross_site`: `Origin` or `Sec-Fetch-Site`)."),
                "415": _error("The body is not sent as `Content-Type: application/json` (`unsupported_media_type`)."),
                "429": {**_error("Too many failed sign-ins (`too_many_attempts`)."), "headers": {
                    "Retry-After": {"description": "Seconds until the next try.", "schema": {"type": "integer"}}}},
                "503": unavailable,
            },
        }},
        "/v1/auth/session": {"get": {
            "operationId": "get_session", "summary": "The signed-in user and the CSRF token", "tags": auth,
            "security": _SESSION_ONLY,
            "responses": {"200": _json(_ref("Session"), "The session's user."), "401": unauthorized, "503": unavailable},
        }},
        "/v1/auth/logout": {"post": {
            "operationId": "logout", "summary": "Sign out (this session)", "tags": auth, "security": _SESSION_ONLY,
            "responses": {"204": {"description": "Signed out; the cookie is cleared.", "headers": _COOKIE},
                          "401": unauthorized, "403": forbidden, "503": unavailable},
        }},
        "/v1/auth/logout-everywhere": {"post": {
            "operationId": "logout_everywhere", "summary": "End every session of the signed-in user",
            "tags": auth, "security": _SESSION_ONLY,
            "responses": {"204": {"description": "Every session ended.", "headers": _COOKIE},
                          "401": unauthorized, "403": forbidden, "503": unavailable},
        }},
        "/v1/auth/password": {"post": {
            "operationId": "change_password", "summary": "Change your password", "tags": auth,
            "security": _SESSION_ONLY,
            "description": "Ends your other sessions; this one is renewed (a new cookie and CSRF token).",
            "requestBody": _body(_ref("PasswordChange")),
            "responses": {"200": {**_json(_ref("Session"), "Changed."), "headers": _COOKIE},
                          **bad_body, "401": unauthorized, "403": _error("Wrong current password, or see 403 above."),
                          "503": unavailable},
        }},
        "/v1/auth/link/{token}": {
            "get": {
                "operationId": "show_signin_link", "summary": "The page of a one-time sign-in link", "tags": auth,
                "security": [],
                "description": "Made by `parley users link EMAIL`, `parley dev` or POST /v1/admin/users/{id}/link; "
                "valid once, for PARLEY_SIGNIN_LINK_TTL_S. Opening it signs nobody in and leaves it good (mail "
                "scanners and link previews open links): the page's button posts to the same address.",
                "parameters": [_LINK_TOKEN],
                "responses": {
                    "200": {"description": "An HTML page naming the account, with a Sign in button.",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "401": {"description": "Used already or expired (an HTML page).",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                    "503": unavailable,
                },
            },
            "post": {
                "operationId": "follow_signin_link", "summary": "Sign in with a one-time link", "tags": auth,
                "security": [],
                "description": "The Sign in button of the link's page: uses the link up and opens a session. "
                "Refused from another site's page (`Sec-Fetch-Site`, `Origin`).",
                "parameters": [_LINK_TOKEN],
                "responses": {
                    "303": {"description": "Signed in: to /console/.", "headers": {
                        **_COOKIE, "Location": {"schema": {"type": "string", "const": "/console/"}}}},
                    "401": _error("Used already or expired (`invalid_link`)."),
                    "403": _error("Posted from another site (`cross_site`)."),
                    "503": unavailable,
                },
            },
        },
        "/v1/auth/tokens": {
            "get": {
                "operationId": "list_tokens", "summary": "Your personal API tokens", "tags": auth,
                "security": _SESSION_ONLY,
                "responses": {"200": _json(_ref("TokenList"), "Yours, revoked ones included."),
                              "401": unauthorized, "403": forbidden, "503": unavailable},
            },
            "post": {
                "operationId": "create_token", "summary": "Make a personal API token", "tags": auth,
                "security": _SESSION_ONLY,
                "description": "For automation: `Authorization: Bearer pat_...`. Stored hashed; its role and "
                "applications never exceed yours (now or later: a demoted user's tokens are demoted).",
                "requestBody": _body(_ref("TokenCreate")),
                "responses": {"201": _json(_ref("TokenCreated"), "The token; its secret is shown only now."),
                              **bad_body, "401": unauthorized, "403": forbidden,
                              "409": _error("Too many live tokens (`too_many_tokens`)."), "503": unavailable},
            },
        },
        "/v1/auth/tokens/{id}": {"delete": {
            "operationId": "revoke_token", "summary": "Revoke one of your tokens", "tags": auth,
            "security": _SESSION_ONLY, "parameters": [_ID],
            "responses": {"204": {"description": "Revoked."}, "401": unauthorized, "403": forbidden,
                          "404": _error("No such token of yours."), "503": unavailable},
        }},
        "/v1/admin/users": {
            "get": {
                "operationId": "list_users", "summary": "Operator accounts (owners)", "tags": users,
                "security": SECURITY,
                "parameters": [_LIMIT, {"name": "after", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json(_ref("UserList"), "A page of users, by id."),
                              "400": _error("`limit` is invalid."), "401": unauthorized, "403": forbidden,
                              "503": unavailable},
            },
            "post": {
                "operationId": "create_user", "summary": "Make an account (owners)", "tags": users,
                "security": SECURITY, "requestBody": _body(_ref("UserCreate")),
                "responses": {"201": _json(_ref("User"), "The new account."), **bad_body,
                              "401": unauthorized, "403": forbidden,
                              "409": _error("The email is taken (`conflict`)."), "503": unavailable},
            },
        },
        "/v1/admin/users/{id}": {
            "parameters": [_ID],
            "get": {
                "operationId": "get_user", "summary": "One account (owners)", "tags": users, "security": SECURITY,
                "responses": {"200": _json(_ref("User"), "The account."), "401": unauthorized,
                              "403": forbidden, "404": _error("No such user."), "503": unavailable},
            },
            "patch": {
                "operationId": "patch_user", "summary": "Change, disable or reset an account (owners)",
                "tags": users, "security": SECURITY,
                "description": "Disabling, a role or scope change and a password reset end the user's sessions.",
                "requestBody": _body(_ref("UserPatch")),
                "responses": {"200": _json(_ref("User"), "The changed account."), **bad_body,
                              "401": unauthorized, "403": forbidden, "404": _error("No such user."),
                              "409": _error("It would leave no enabled owner (`last_owner`)."), "503": unavailable},
            },
            "delete": {
                "operationId": "delete_user", "summary": "Delete an account and its tokens (owners)",
                "tags": users, "security": SECURITY,
                "responses": {"204": {"description": "Deleted."}, "401": unauthorized, "403": forbidden,
                              "404": _error("No such user."),
                              "409": _error("The last enabled owner (`last_owner`)."), "503": unavailable},
            },
        },
        "/v1/admin/users/{id}/link": {"post": {
            "operationId": "create_signin_link", "summary": "A one-time sign-in link for an account (owners)",
            "tags": users, "security": SECURITY, "parameters": [_ID],
            "responses": {"201": _json(_ref("SigninLink"), "The link's path (on this server)."),
                          "401": unauthorized, "403": forbidden, "404": _error("No such user."),
                          "409": _error("The user is disabled."), "503": unavailable},
        }},
        "/v1/admin/audit": {"get": {
            "operationId": "list_audit", "summary": "The audit log, newest first", "tags": users,
            "security": SECURITY,
            "description": "Every write: who (user and credential), what, when, the document before and after "
            "(secrets masked), from which address. Owners see everything; admins the entries of their "
            "applications; viewers nothing.",
            "parameters": [
                {"name": "actor", "in": "query", "schema": {"type": "string"}, "description": "An email or a user id."},
                {"name": "application_id", "in": "query", "schema": {"type": "string"}},
                {"name": "kind", "in": "query", "schema": {"type": "string"}},
                {"name": "action", "in": "query", "schema": {"type": "string"}},
                {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
                _LIMIT,
                {"name": "cursor", "in": "query", "schema": {"type": "string"},
                 "description": "The previous page's `next_cursor`."},
            ],
            "responses": {"200": _json(_ref("AuditPage"), "A page of entries."),
                          "400": _error("A parameter is invalid (`invalid_parameter`)."),
                          "401": unauthorized, "403": forbidden, "503": unavailable},
        }},
    }
