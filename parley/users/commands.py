"""``parley users create|list|disable|reset|link`` and the dev owner of ``parley dev``.

The commands talk to the document store directly (``PARLEY_MONGO_URL``), so the first owner can
be made before anyone can sign in. Each change is written to the audit log with the actor
``cli``. Passwords are read from standard input (``--password-stdin``) or generated and printed
once; they never appear in a command line, a log line or the audit log.
"""

from __future__ import annotations

import json
import secrets
import sys
from typing import Any, TextIO

from parley.settings import Settings
from parley.storage.cache import InMemoryCache
from parley.storage.documents import DocumentStore
from parley.users.accounts import AccountError, user_view
from parley.users.service import UserService, user_service

__all__ = ["DEV_OWNER_EMAIL", "CommandError", "default_base_url", "ensure_dev_owner", "run_users_command", "signin_url"]

DEV_OWNER_EMAIL = "dev@localhost"
CLI_ACTOR = {"user_id": "cli", "email": "cli", "name": "parley users", "credential": "cli", "credential_id": "cli", "role": "owner"}


class CommandError(Exception):
    """What the command says on stderr before exiting 1."""


def signin_url(base_url: str, secret: str) -> str:
    return f"{base_url.rstrip('/')}/v1/auth/link/{secret}"


def default_base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.web_host in ("0.0.0.0", "::", "") else settings.web_host
    return f"http://{host}:{settings.web_port}"


async def ensure_dev_owner(users: UserService) -> tuple[dict[str, Any], str, bool]:
    """The dev owner (made on first start, without a password) and a fresh one-time sign-in
    secret; the bool says whether the owner was made now."""
    user = await users.accounts.find_user(DEV_OWNER_EMAIL)
    created = user is None
    if user is None:
        try:
            user = await users.accounts.create_user(email=DEV_OWNER_EMAIL, name="Dev owner", role="owner")
            await users.audit.append(actor=CLI_ACTOR | {"name": "parley dev"}, action="create", kind="user",
                                     target_id=str(user["_id"]), application_ids=[], after=user_view(user))
        except AccountError:  # made by another process starting at the same time
            user = await users.accounts.find_user(DEV_OWNER_EMAIL)
            created = False
            assert user is not None
    if user.get("disabled"):
        await users.accounts.update_user(str(user["_id"]), {"disabled": False})
    return user, await users.accounts.create_link(str(user["_id"])), created


def _read_password(stdin: TextIO) -> str:
    password = stdin.readline().rstrip("\r\n")
    if not password:
        raise CommandError("no password on standard input")
    return password


async def run_users_command(settings: Settings, args: Any, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    if settings.mongo_url is None:
        raise CommandError("set PARLEY_MONGO_URL (the document store holding the accounts)")
    documents = DocumentStore(settings.mongo_url, settings.mongo_database)
    users = user_service(documents, InMemoryCache(), settings)
    try:
        await users.start()
        return await _run(users, settings, args, out, stdin)
    except AccountError as exc:
        fields = "".join(f"\n  {e.field}: {e.message}" for e in exc.errors or [])
        raise CommandError(exc.message + fields) from None
    finally:
        await users.close()
        await documents.close()


async def _user(users: UserService, email: str) -> dict[str, Any]:
    user = await users.accounts.find_user(email)
    if user is None:
        raise CommandError(f"no user with email {email!r} (`parley users list` shows them)")
    return user


async def _run(users: UserService, settings: Settings, args: Any, out: TextIO, stdin: TextIO) -> int:
    base = (args.url if getattr(args, "url", None) else default_base_url(settings))
    command = args.users_command
    if command == "list":
        rows = [user_view(u) for u in await users.accounts.list_users(limit=10_000)]
        if args.json:
            for row in rows:
                print(json.dumps(row), file=out)
        else:
            print(f"{'EMAIL':32} {'ROLE':7} {'APPLICATIONS':24} {'STATE':8} ID", file=out)
            for row in rows:
                apps = ",".join(row["applications"]) if row["applications"] is not None else "(all)"
                state = "disabled" if row["disabled"] else "active"
                print(f"{row['email']:32} {row['role']:7} {apps:24} {state:8} {row['id']}", file=out)
        return 0
    if command == "create":
        password = _read_password(stdin) if args.password_stdin else None
        user = await users.accounts.create_user(
            email=args.email, name=args.name or args.email.split("@")[0], role=args.role,
            applications=args.application or None, password=password,
        )
        await _audit(users, "create", user, None, user_view(user))
        print(f"created {user['email']} ({user['role']}, {user['_id']})", file=out)
        if password is None:
            link = await users.accounts.create_link(str(user["_id"]))
            print(f"no password set: sign in once with {signin_url(base, link)} "
                  f"(valid {users.accounts.policy.link_ttl_s:.0f} s), then set one", file=out)
        return 0
    user = await _user(users, args.email)
    if command == "disable":
        before, after = await users.accounts.update_user(str(user["_id"]), {"disabled": not args.enable})
        await _audit(users, "update", after, user_view(before), user_view(after))
        print(f"{after['email']} is {'enabled' if args.enable else 'disabled (its sessions and tokens stop working)'}", file=out)
        return 0
    if command == "reset":
        generated = not args.password_stdin
        password = secrets.token_urlsafe(15) if generated else _read_password(stdin)
        before, after = await users.accounts.update_user(str(user["_id"]), {"password": password})
        await _audit(users, "reset_password", after, None, None)
        print(f"password of {after['email']} reset; its sessions ended", file=out)
        if generated:
            print(f"new password (shown once): {password}", file=out)
        return 0
    if command == "link":
        if user.get("disabled"):
            raise CommandError(f"{user['email']} is disabled: `parley users disable --enable {user['email']}` first")
        link = await users.accounts.create_link(str(user["_id"]))
        await _audit(users, "create_link", user, None, None)
        print(signin_url(base, link), file=out)
        return 0
    raise CommandError(f"unknown command {command!r}")


async def _audit(users: UserService, action: str, user: dict[str, Any], before: Any, after: Any) -> None:
    await users.audit.append(actor=CLI_ACTOR, action=action, kind="user", target_id=str(user["_id"]),
                             application_ids=[], before=before, after=after)
