"""Who is calling the console's operations endpoints, and the record of what they changed.

``operator_for(request, action=..., application_id=...)`` authorizes the request
(``parley.web.access.authorize``: viewers read, admins write for their applications) and names
the operator, archived with a take over and with their messages, and shown to the user by
name; ``record`` appends a write to the audit log (``parley.web.access.audit``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from parley.web.access import Principal, audit, authorize

__all__ = ["ADMIN_KEY_NAME", "Operator", "operator_for", "record"]

Action = Literal["read", "write"]
#: what the user is shown for an operator acting with the admin key (no account, no name)
ADMIN_KEY_NAME = "Administrator"


@dataclass(frozen=True)
class Operator:
    id: str
    name: str
    principal: Principal

    def can_read(self, application_id: str | None) -> bool:
        return self.principal.can_read(application_id)


async def operator_for(request: web.Request, *, action: Action, application_id: str | None = None) -> Operator:
    """The caller, or an ``HttpError`` (401/403) when they may not ``action`` here."""
    principal = await authorize(request, action=action, application_id=application_id)
    name = ADMIN_KEY_NAME if principal.credential == "admin_key" else (principal.name or principal.email)
    return Operator(id=principal.user_id, name=name, principal=principal)


async def record(
    request: web.Request,
    operator: Operator,
    *,
    action: str,
    kind: str,
    target_id: str,
    application_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Append a write to the audit log: who did ``action`` to which ``kind`` ``target_id``."""
    await audit(
        request, operator.principal, action=action, kind=kind, target_id=target_id,
        application_id=application_id, before=before, after=after,
    )
