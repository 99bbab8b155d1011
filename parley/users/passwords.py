"""Operator passwords: hashed with Argon2id (argon2-cffi), verified off the event loop.

A hash costs tens of milliseconds of CPU on purpose; ``hash_password`` and ``verify_password``
run it in a worker thread so a sign-in never stalls the other requests of the process.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["MAX_PASSWORD_CHARS", "MIN_PASSWORD_CHARS", "check_password_rules", "hash_password", "verify_password"]

MIN_PASSWORD_CHARS = 10
#: a bound on the work one request can ask for (the hash reads the whole password)
MAX_PASSWORD_CHARS = 1024

_HASHER = PasswordHasher()
#: Compared against when the account does not exist, so an unknown email costs the same time
#: as a wrong password (no user enumeration by timing).
_DUMMY_HASH = _HASHER.hash("parley-no-such-account")


def check_password_rules(password: object) -> str | None:
    """What is wrong with a new password, or None."""
    if not isinstance(password, str):
        return "must be a string"
    if len(password) < MIN_PASSWORD_CHARS:
        return f"must be at least {MIN_PASSWORD_CHARS} characters"
    if len(password) > MAX_PASSWORD_CHARS:
        return f"must be at most {MAX_PASSWORD_CHARS} characters"
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (None: no account; always False, same cost)."""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        return False
    return await asyncio.to_thread(_verify, stored, password)
