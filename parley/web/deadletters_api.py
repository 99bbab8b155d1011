"""The console's dead letters: ``GET /v1/admin/dead-letters`` (newest first, by application and
stage), ``GET …/{id}`` (the error, the stage and the original bytes), ``POST …/{id}/replay`` and
``DELETE …/{id}`` (purge: hidden from the list). The work is ``parley dlq`` 's, through the
``DeadLetterDesk`` port (``parley.ops.dlq_desk``). See docs/admin-api.md.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from parley.ports import DeadLetterDesk, DeadLetterRefused
from parley.web.admin import ADMIN_PREFIX, AdminError, no_store_json, page_limit, read_json, store_errors
from parley.web.keys import DEPS
from parley.web.operators import operator_for, record

__all__ = ["add_dead_letter_routes", "letter_application"]

DEAD_LETTERS = ADMIN_PREFIX + "/dead-letters"
DEAD_LETTER = DEAD_LETTERS + "/{dead_letter_id}"


def add_dead_letter_routes(app: web.Application) -> None:
    app.router.add_get(DEAD_LETTERS, store_errors(list_letters))
    app.router.add_get(DEAD_LETTER, store_errors(show_letter))
    app.router.add_post(DEAD_LETTER + "/replay", store_errors(replay_letter))
    app.router.add_delete(DEAD_LETTER, store_errors(purge_letter))


def letter_application(letter: dict[str, Any]) -> str | None:
    """The application a dead letter belongs to, from its key (``application/conversation`` on
    the conversation topics, the application on ``usage``); None when it has no key."""
    key = str(letter.get("key") or "")
    return key.split("/", 1)[0] or None


def _desk(request: web.Request) -> DeadLetterDesk:
    desk = request.app[DEPS].dead_letters
    if desk is None:
        raise AdminError(
            503, "dead_letters_unavailable",
            "this process reads no dead letters (it has no broker configured: set PARLEY_KAFKA_URL)",
        )
    return desk


def _position(letter: dict[str, Any]) -> tuple[float, int, int]:
    return (
        float(letter.get("failed_at") or 0.0), int(letter.get("dead_letter_partition") or 0),
        int(letter.get("dead_letter_offset") or 0),
    )


def _cursor(raw: str | None) -> tuple[float, int, int] | None:
    if not raw:
        return None
    try:
        at, partition, offset = json.loads(base64.urlsafe_b64decode(raw.encode() + b"=" * (-len(raw) % 4)))
        return float(at), int(partition), int(offset)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise AdminError(400, "invalid_parameter", "cursor is not one this API gave out") from None


def _view(letter: dict[str, Any]) -> dict[str, Any]:
    return {**letter, "application_id": letter_application(letter)}


async def _refused(call: Any) -> Any:
    try:
        return await call
    except DeadLetterRefused as exc:
        raise AdminError(404 if exc.missing else 409, "not_found" if exc.missing else "refused", str(exc)) from exc
    except TimeoutError as exc:
        raise AdminError(503, "unavailable", "the dead-letters topic could not be read in time; retry later") from exc


async def list_letters(request: web.Request) -> web.Response:
    application_id = request.query.get("application_id") or None
    operator = await operator_for(request, action="read", application_id=application_id)
    stage = request.query.get("stage") or None
    include_purged = request.query.get("include_purged", "false").lower() in ("1", "true", "yes")
    limit = page_limit(request.query.get("limit"))
    after = _cursor(request.query.get("cursor"))
    letters = await _refused(_desk(request).letters())
    chosen = [
        _view(letter) for letter in letters
        if (include_purged or letter.get("purged_at") is None)
        and (stage is None or letter.get("stage") == stage)
        and (application_id is None or letter_application(letter) == application_id)
        and operator.can_read(letter_application(letter))  # a scoped operator sees their applications'
    ]
    chosen.sort(key=_position, reverse=True)
    if after is not None:
        chosen = [letter for letter in chosen if _position(letter) < after]
    page, more = chosen[:limit], len(chosen) > limit
    cursor = None
    if more and page:
        cursor = base64.urlsafe_b64encode(json.dumps(list(_position(page[-1]))).encode()).decode().rstrip("=")
    return no_store_json({"items": page, "next_cursor": cursor})


async def _letter(request: web.Request) -> dict[str, Any]:
    dead_letter_id = request.match_info["dead_letter_id"]
    letter = await _refused(_desk(request).letter(dead_letter_id))
    if letter is None:
        raise AdminError(404, "not_found", f"no dead letter {dead_letter_id!r} on the dead-letters topic")
    return dict(_view(letter))


async def show_letter(request: web.Request) -> web.Response:
    await operator_for(request, action="read")
    letter = await _letter(request)
    await operator_for(request, action="read", application_id=letter["application_id"])
    return no_store_json(letter)


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise AdminError(422, "invalid_field", f"field {name!r} must be true or false")
    return value


async def replay_letter(request: web.Request) -> web.Response:
    await operator_for(request, action="read")
    body = await read_json(request) if request.can_read_body else {}
    force, deliver = _flag(body, "force"), _flag(body, "deliver")
    letter = await _letter(request)
    operator = await operator_for(request, action="write", application_id=letter["application_id"])
    replay = await _refused(_desk(request).replay(letter["dead_letter_id"], force=force, deliver=deliver))
    await record(
        request, operator, action="replay", kind="dead_letter", target_id=letter["dead_letter_id"],
        application_id=letter["application_id"], before={"replay_count": letter.get("replay_count", 0)},
        after={**replay, "force": force, "deliver": deliver},
    )
    return no_store_json({"dead_letter_id": letter["dead_letter_id"], "replay": replay})


async def purge_letter(request: web.Request) -> web.Response:
    await operator_for(request, action="read")
    letter = await _letter(request)
    operator = await operator_for(request, action="write", application_id=letter["application_id"])
    await _refused(_desk(request).purge(letter["dead_letter_id"]))
    await record(
        request, operator, action="purge", kind="dead_letter", target_id=letter["dead_letter_id"],
        application_id=letter["application_id"], before={"purged_at": letter.get("purged_at")},
        after={"purged": True},
    )
    return no_store_json({"dead_letter_id": letter["dead_letter_id"], "purged": True})
