"""Who is calling the console's operations endpoints, and the record of what they changed.

``operator_for(request, action=..., application_id=...)`` authorizes the request
(``parley.web.access.authorize``: session, personal token or admin key, role and scope) and
names the operator (id and name, archived with a handoff and with their messages); ``record``
appends a write to the audit log (``parley.web.access.audit``). The holder of the admin key is
named ``Administrator`` (id ``admin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from parley.web.access import Principal, audit, authorize

__all__ = ["Operator", "operator_for", "record"]

Action = Literal["read", "write"]


@dataclass(frozen=True)
class Operator:
    id: str
    name: str
    principal: Principal


#: the admin key's operator, as handoffs and operator messages name it
ADMIN_KEY_ID, ADMIN_KEY_NAME = "admin", "Administrator"


async def operator_for(request: web.Request, *, action: Action, application_id: str | None = None) -> Operator:
    """The caller, or an ``HttpError`` (401/403) when they may not ``action`` here."""
    principal = await authorize(request, action=action, application_id=application_id)
    if principal.credential == "admin_key":
        return Operator(id=ADMIN_KEY_ID, name=ADMIN_KEY_NAME, principal=principal)
    return Operator(id=principal.user_id, name=principal.name or principal.email, principal=principal)


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
    """Note a write in the audit log: who did ``action`` to which ``kind`` ``target_id``."""
    await audit(
        request, operator.principal, action=action, kind=kind, target_id=target_id,
        application_id=application_id, before=before, after=after,
    )
