"""Who is calling the console's operations endpoints, and the record of what they changed.

``operator_for(request, action=..., application_id=...)`` authorizes the request and names the
operator (id and name, archived with a handoff and with their messages); ``record`` appends a
write to the audit trail. Until accounts exist, the caller is the holder of the admin key
(``parley.web.admin.authorize_admin``), named ``admin``, and writes are logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from parley.web.admin import authorize_admin

__all__ = ["Operator", "operator_for", "record"]

logger = logging.getLogger(__name__)

Action = Literal["read", "write"]


@dataclass(frozen=True)
class Operator:
    id: str
    name: str


ADMIN_KEY_OPERATOR = Operator(id="admin", name="Administrator")


async def operator_for(request: web.Request, *, action: Action, application_id: str | None = None) -> Operator:
    """The caller, or an ``HttpError`` (401/403/503) when they may not ``action`` here."""
    authorize_admin(request)
    return ADMIN_KEY_OPERATOR


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
    """Note a write: who did ``action`` to which ``kind`` ``target_id``."""
    logger.info(
        "audit: %s (%s) %s %s %s of application %s from %s",
        operator.name, operator.id, action, kind, target_id, application_id, request.remote,
    )
