"""``UserService``: the accounts and the audit log of one process, built from its clients."""

from __future__ import annotations

from dataclasses import dataclass

from parley.ports import Cache
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.users.accounts import Accounts, Policy
from parley.users.audit import AuditLog
from parley.users.sessions import MongoSessions, RedisSessions, SessionStore
from parley.users.throttle import LoginThrottle

__all__ = ["UserService", "user_service"]


@dataclass(slots=True)
class UserService:
    accounts: Accounts
    audit: AuditLog

    async def start(self) -> None:
        await self.accounts.start()
        await self.audit.start()

    async def close(self) -> None:
        await self.accounts.close()


def user_service(documents: DocumentStore, cache: Cache, settings: Settings) -> UserService:
    """Sessions in Redis when ``PARLEY_REDIS_URL`` is set, else in the document store; the login
    throttle counts in ``cache``."""
    sessions: SessionStore = RedisSessions(settings.redis_url) if settings.redis_url else MongoSessions(documents.sessions)
    throttle = LoginThrottle(
        cache, per_account=settings.login_max_failures_per_account,
        per_address=settings.login_max_failures_per_address, window_s=settings.login_window_s,
    )
    policy = Policy(
        idle_timeout_s=settings.session_idle_timeout_s, max_age_s=settings.session_max_age_s,
        token_max_days=settings.api_token_max_days, link_ttl_s=settings.signin_link_ttl_s,
    )
    return UserService(Accounts(documents, sessions, throttle, policy), AuditLog(documents.audit, retention_days=settings.audit_retention_days))
