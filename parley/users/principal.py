"""Who a request acts as: a ``Principal`` (role, application scope, which credential)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ROLES", "Action", "Credential", "Principal", "Role", "role_at_most", "role_rank"]

Role = Literal["owner", "admin", "viewer"]
Credential = Literal["session", "token", "admin_key"]
Action = Literal["read", "write", "manage_users"]

#: weakest first
ROLES: tuple[Role, ...] = ("viewer", "admin", "owner")


def role_rank(role: str) -> int:
    return ROLES.index(role) if role in ROLES else -1


def role_at_most(role: str, ceiling: str) -> bool:
    return 0 <= role_rank(role) <= role_rank(ceiling)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``applications`` None means every application."""

    credential: Credential
    credential_id: str
    user_id: str
    email: str
    name: str
    role: Role
    applications: frozenset[str] | None

    def can_read(self, application_id: str | None) -> bool:
        """Read access to one application (None: something belonging to no application, which
        only principals scoped to every application see)."""
        if self.applications is None:
            return True
        return application_id is not None and application_id in self.applications

    def can_write(self, application_id: str | None) -> bool:
        return role_rank(self.role) >= role_rank("admin") and self.can_read(application_id)

    def can_read_all(self, application_ids: set[str] | frozenset[str]) -> bool:
        """Read access to something shared by these applications (e.g. a chatbot)."""
        return self.applications is None or set(application_ids) <= self.applications

    def allows(self, action: Action) -> bool:
        """Whether the role allows the action at all (scope aside)."""
        if action == "manage_users":
            return self.role == "owner"
        if action == "write":
            return role_rank(self.role) >= role_rank("admin")
        return True

    def as_actor(self) -> dict[str, Any]:
        """How the audit log names the caller."""
        return {
            "user_id": self.user_id, "email": self.email, "name": self.name,
            "credential": self.credential, "credential_id": self.credential_id, "role": self.role,
        }
