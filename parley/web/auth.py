"""User tokens for the chat websocket, and the browser origin check.

An application's backend, which knows who its user is, mints a short-lived token with the
application's ``secret`` and hands it to the browser; the browser sends it in its ``hello``
frame (or as ``/ws?token=...``). Parley checks it and uses the token's user id as the
``sender`` of that client's messages.

Format (any language can mint one; docs/websocket-protocol.md has examples)::

    payload = base64url(JSON {"sub": <user id>, "app": <application id>, "exp": <unix seconds>})
    token   = payload + "." + base64url(HMAC-SHA256(key=secret, msg=payload))

base64url is RFC 4648 §5 without ``=`` padding; the HMAC is over the ASCII of the encoded
payload; ``exp`` is an integer. A token is valid until ``exp`` for that one application, and
only if ``exp`` is at most ``PARLEY_USER_TOKEN_MAX_LIFETIME_S`` from now (a leaked token of ten
years is refused, not honoured for ten years).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["TokenError", "bearer_matches", "make_user_token", "verify_user_token", "origin_allowed", "MAX_TOKEN_CHARS"]

MAX_TOKEN_CHARS = 4096
MAX_USER_ID_CHARS = 256
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TokenError(ValueError):
    """The token is malformed, forged, expired or for another application; the message says which."""


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(part: str) -> bytes:
    if not _B64URL.match(part):
        raise TokenError("the token is not two base64url parts joined by '.'")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("the token is not two base64url parts joined by '.'") from exc


def _signature(secret: str, payload_part: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), payload_part.encode("ascii"), hashlib.sha256).digest()


def _check_user_id(user_id: object) -> str:
    if (
        not isinstance(user_id, str)
        or not user_id.strip()
        or len(user_id) > MAX_USER_ID_CHARS
        or _CONTROL.search(user_id)
    ):
        raise TokenError(f"'sub' must be a user id of 1-{MAX_USER_ID_CHARS} printable characters")
    return user_id


def make_user_token(
    secret: str, application_id: str, user_id: str, ttl_s: float, *, now: float | None = None
) -> str:
    """A token saying ``user_id`` of ``application_id`` until ``ttl_s`` seconds from now.

    Call it on the application's backend (it needs the application's ``secret``) and hand the
    result to the user's browser, which sends it in its ``hello`` frame.
    """
    if not secret:
        raise ValueError("the application has no secret to sign tokens with")
    if ttl_s <= 0:
        raise ValueError(f"ttl_s must be positive, got {ttl_s}")
    _check_user_id(user_id)
    issued = time.time() if now is None else now
    claims = {"sub": user_id, "app": application_id, "exp": int(issued + ttl_s)}
    payload_part = _encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    return f"{payload_part}.{_encode(_signature(secret, payload_part))}"


def verify_user_token(
    token: Any, secret: str, application_id: str, *, now: float | None = None, max_lifetime_s: float | None = None
) -> str:
    """The user id the token vouches for; ``TokenError`` when it is not valid for
    ``application_id`` signed with ``secret`` right now, or (``max_lifetime_s``) expires further
    than that from now. The signature is checked (in constant time) before anything in the
    payload is read."""
    if not isinstance(token, str) or not token:
        raise TokenError("the token must be a non-empty string")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError(f"the token is longer than {MAX_TOKEN_CHARS} characters")
    if not secret:
        raise TokenError("the application has no secret, so it cannot accept user tokens")
    payload_part, dot, signature_part = token.partition(".")
    if not dot or "." in signature_part:
        raise TokenError("the token is not two base64url parts joined by '.'")
    signature = _decode(signature_part)
    payload = _decode(payload_part)
    if not hmac.compare_digest(signature, _signature(secret, payload_part)):
        raise TokenError("the token's signature does not match the application's secret")
    try:
        claims = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TokenError("the token's payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise TokenError("the token's payload is not a JSON object")
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        raise TokenError("the token has no numeric 'exp'")
    current = time.time() if now is None else now
    if current >= exp:
        raise TokenError("the token has expired; get a new one from the application")
    if max_lifetime_s is not None and exp - current > max_lifetime_s:
        raise TokenError(
            f"the token expires {exp - current:.0f}s from now, more than the {max_lifetime_s:g}s this server "
            "accepts (PARLEY_USER_TOKEN_MAX_LIFETIME_S): mint tokens with a shorter lifetime"
        )
    if claims.get("app") != application_id:
        raise TokenError(f"the token is not for application {application_id!r}")
    return _check_user_id(claims.get("sub"))


def _normal_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(origin: str | None, allowed: Sequence[str], own_host: str | None = None) -> bool:
    """Whether a browser ``Origin`` may open the websocket. No ``Origin`` header (a non-browser
    client) and an empty allow-list allow everything; ``*`` in the list allows every origin.

    ``own_host`` is the request's ``Host``: a page Parley serves itself (the widget's chat panel,
    the page at ``/``) is always allowed. Which sites may show that panel is decided by the
    browser, from the panel's ``frame-ancestors`` (the same allow-list: parley/web/widget.py)."""
    if origin is None or not allowed:
        return True
    wanted = _normal_origin(origin)
    if own_host and wanted.partition("://")[2] == own_host.strip().lower():
        return True
    return any(entry == "*" or _normal_origin(entry) == wanted for entry in allowed)


def bearer_matches(header: str | None, expected: str) -> bool:
    """Whether an ``Authorization`` header is ``Bearer <expected>`` (compared in constant time)."""
    scheme, _, presented = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    # (surrogatepass: a header with bytes that are not UTF-8 arrives with surrogate escapes)
    return hmac.compare_digest(presented.strip().encode("utf-8", "surrogatepass"), expected.encode("utf-8"))
