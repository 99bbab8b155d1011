"""The admin REST API under ``/v1/admin/``: applications and chatbots in MongoDB.

``GET /v1/admin/{applications|chatbots}`` lists (``?limit=&after=``), ``POST`` creates (409 if the
id exists); ``GET|PUT|PATCH|DELETE /v1/admin/{applications|chatbots}/{id}`` read, create-or-replace,
merge-patch (RFC 7396) and delete. Every write invalidates the config cache, so the next turn uses
it, and is audited. Every request goes through ``parley.web.access.authorize`` (a session, a
personal API token or the admin key; role and application scope). An application is in a
principal's scope when its id is; a chatbot when every application using it is (an unused
chatbot is in every scope). Lists show only what is in scope. See docs/admin-api.md.

Errors are ``AdminError`` s, answered by ``parley.web.errors.error_middleware`` as ``{"type":
"error", "code", "message"}``; a document that does not fit its model (``parley.config.models``)
is 422 with ``errors``: ``[{"field", "message"}]``, one per field.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pymongo.errors import PyMongoError

from parley.config.models import (
    READ_ONLY_FIELDS,
    WRITE_ONLY_FIELDS,
    FieldError,
    Kind,
    coerce_integers,
    validate_document,
)
from parley.egress import EgressPolicy, EgressRefused
from parley.ports import Configs
from parley.storage.documents import DocumentCollection, DocumentStore
from parley.users.principal import Principal
from parley.web.access import audit, authorize
from parley.web.errors import HttpError
from parley.web.keys import DEPS, SETTINGS

__all__ = [
    "ADMIN_PREFIX", "AdminError", "add_admin_routes", "merge_patch", "no_store_json", "page_limit", "read_json",
    "store_errors",
]

logger = logging.getLogger(__name__)

ADMIN_PREFIX = "/v1/admin"
MAX_BODY_BYTES = 256 * 1024
#: How deeply a body may nest: documents are shallow, and the validation and merge helpers are
#: recursive (a body nested some hundreds of levels would exhaust the interpreter's stack).
MAX_DEPTH = 32
#: What MongoDB stores as an integer (BSON int64).
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SURROGATE = re.compile(r"[\ud800-\udfff]")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: how many applications using one chatbot are read to decide its scope
MAX_SCOPE_APPLICATIONS = 10_000
#: Compare-and-swap attempts of one write racing other writes of the same document.
WRITE_ATTEMPTS = 5
#: how long a save waits for an outbound URL's name to resolve
RESOLVE_TIMEOUT_S = 3.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class AdminError(HttpError):
    """An error of the admin API (and of the table queries' authentication): never cached."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, errors, {"Cache-Control": "no-store", **(headers or {})})


@dataclass(frozen=True)
class _Resource:
    """One kind of admin document: its store collection and its config cache entry."""

    kind: Kind
    plural: str
    #: the kind's collection of the document store
    collection: Callable[[DocumentStore], DocumentCollection]
    #: forget the cached config of one document (every process, with Redis)
    forget: Callable[[Configs, str], Awaitable[None]]

    @property
    def path(self) -> str:
        return f"{ADMIN_PREFIX}/{self.plural}"

    def documents(self, request: web.Request) -> DocumentCollection:
        return self.collection(_documents(request))

    async def invalidate(self, request: web.Request, doc_id: str) -> None:
        await self.forget(_configs(request), doc_id)


APPLICATIONS = _Resource(
    "application", "applications",
    collection=lambda store: store.applications,
    forget=lambda configs, doc_id: configs.invalidate(doc_id),
)
CHATBOTS = _Resource(
    "chatbot", "chatbots",
    collection=lambda store: store.chatbots,
    forget=lambda configs, doc_id: configs.invalidate_chatbot(doc_id),
)


def _documents(request: web.Request) -> DocumentStore:
    return request.app[DEPS].documents


def _configs(request: web.Request) -> Configs:
    return request.app[DEPS].configs


# --- routes ---------------------------------------------------------------------------------
def add_admin_routes(app: web.Application) -> None:
    """Register the admin endpoints (and a start-up note when the API is disabled)."""
    for resource in (APPLICATIONS, CHATBOTS):
        item = resource.path + "/{id}"
        name = f"admin.{resource.plural}"
        app.router.add_get(resource.path, _guarded(resource, _list), name=f"{name}.list")
        app.router.add_post(resource.path, _guarded(resource, _create), name=f"{name}.create")
        app.router.add_get(item, _guarded(resource, _get), name=f"{name}.get")
        app.router.add_put(item, _guarded(resource, _put), name=f"{name}.put")
        app.router.add_patch(item, _guarded(resource, _patch), name=f"{name}.patch")
        app.router.add_delete(item, _guarded(resource, _delete), name=f"{name}.delete")
    app.on_startup.append(_announce)


async def _announce(app: web.Application) -> None:
    settings = app[SETTINGS]
    key = settings.admin_api_key
    if key is None or not key.get_secret_value():
        logger.info("the admin key is not set (PARLEY_ADMIN_API_KEY): %s/ accepts operator sessions and tokens only",
                    ADMIN_PREFIX)


def _guarded(
    resource: _Resource, handler: Callable[[_Resource, web.Request, Principal], Awaitable[web.Response]]
) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        write = request.method not in ("GET", "HEAD")
        principal = await authorize(request, action="write" if write else "read")  # an HttpError is answered by the middleware
        return await handler(resource, request, principal)

    return store_errors(guarded)


def store_errors(handler: Handler) -> Handler:
    """``handler``, with a document store failure answered as 503 ``unavailable``."""

    async def answered(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PyMongoError as exc:
            logger.warning("admin %s %s: document store error: %s", request.method, request.path, exc)
            raise AdminError(
                503, "unavailable", f"the document store is unavailable ({type(exc).__name__}); retry later"
            ) from exc

    return answered


# --- scope ----------------------------------------------------------------------------------
async def _scope_of(resource: _Resource, request: web.Request, doc_id: str) -> set[str]:
    """The applications a document belongs to: an application itself; a chatbot's users."""
    if resource.kind == "application":
        return {doc_id}
    return set(await _documents(request).applications_using_chatbot(doc_id, limit=MAX_SCOPE_APPLICATIONS))


async def _check_scope(
    resource: _Resource, request: web.Request, principal: Principal, doc_id: str, *, write: bool
) -> set[str]:
    """403 unless the document is in the principal's scope; returns its applications."""
    apps = await _scope_of(resource, request, doc_id)
    if resource.kind == "application":
        allowed = principal.can_write(doc_id) if write else principal.can_read(doc_id)
    else:
        allowed = principal.can_read_all(apps)
    if not allowed:
        raise AdminError(403, "forbidden", f"you have no access to {resource.kind} {doc_id!r}")
    return apps


async def _check_chatbot_choice(request: web.Request, principal: Principal, doc: dict[str, Any], app_id: str) -> None:
    """A scoped principal may point its application only at a chatbot in its scope (not at
    another tenant's, whose prompt and model it would then use)."""
    chatbot_id = doc.get("chatbot_id")
    if principal.applications is None or not isinstance(chatbot_id, str):
        return
    users = set(await _documents(request).applications_using_chatbot(chatbot_id, limit=MAX_SCOPE_APPLICATIONS))
    if not principal.can_read_all(users - {app_id}):
        raise _invalid([FieldError("chatbot_id", f"chatbot {chatbot_id!r} belongs to applications outside your access")])


# --- handlers -------------------------------------------------------------------------------
async def _list(resource: _Resource, request: web.Request, principal: Principal) -> web.Response:
    limit = page_limit(request.query.get("limit"))
    after = request.query.get("after") or None
    collection = resource.documents(request)
    if principal.applications is None:
        docs = await collection.list(limit=limit + 1, after=after)
    elif resource.kind == "application":
        docs = await collection.list(limit=limit + 1, after=after, only=principal.applications)
    else:  # chatbots: those every user of which is in scope (read in pages, filtered)
        users = await _documents(request).chatbot_users()
        docs = []
        cursor = after
        while len(docs) <= limit:
            page = await collection.list(limit=MAX_LIMIT, after=cursor)
            docs += [d for d in page if principal.can_read_all(users.get(str(d["_id"]), set()))]
            if len(page) < MAX_LIMIT:
                break
            cursor = str(page[-1]["_id"])
    more = len(docs) > limit
    docs = docs[:limit]
    return no_store_json({
        "items": [_view(resource, doc) for doc in docs],
        "next_after": str(docs[-1]["_id"]) if more else None,
    })


async def _get(resource: _Resource, request: web.Request, principal: Principal) -> web.Response:
    doc_id = request.match_info["id"]
    await _check_scope(resource, request, principal, doc_id, write=False)
    stored = await resource.documents(request).get(doc_id)
    if stored is None:
        raise _not_found(resource, doc_id)
    return no_store_json(_view(resource, stored))


async def _create(resource: _Resource, request: web.Request, principal: Principal) -> web.Response:
    body = _document_body(await read_json(request))
    await _validate(resource, request, body, require_id=True)
    doc_id = str(body["id"])
    apps = await _check_scope(resource, request, principal, doc_id, write=True)
    if resource.kind == "application":
        await _check_chatbot_choice(request, principal, body, doc_id)
    stored = _stored(resource, body, previous=None)
    if not await resource.documents(request).create(stored):
        raise AdminError(
            409, "conflict",
            f"{resource.kind} {doc_id!r} already exists; change it with PUT or PATCH {resource.path}/{doc_id}",
        )
    await resource.invalidate(request, doc_id)  # a cached "no such document"
    await _audit(request, principal, resource, "create", doc_id, apps, None, stored)
    return no_store_json(_view(resource, stored), 201, {"Location": f"{resource.path}/{doc_id}"})


async def _put(resource: _Resource, request: web.Request, principal: Principal) -> web.Response:
    doc_id = _path_id(resource, request)
    apps = await _check_scope(resource, request, principal, doc_id, write=True)
    body = _document_body(await read_json(request))
    _same_id(body, doc_id)
    body["id"] = doc_id
    await _validate(resource, request, body)
    if resource.kind == "application":
        await _check_chatbot_choice(request, principal, body, doc_id)
    for _ in range(WRITE_ATTEMPTS):
        previous = await resource.documents(request).get(doc_id)
        document = dict(body)
        if previous is not None:
            for name in WRITE_ONLY_FIELDS:  # clients cannot read them back: omitted means kept
                if name not in document and name in previous:
                    document[name] = previous[name]
        stored = _stored(resource, document, previous)
        if previous is None:
            written = await resource.documents(request).create(stored)
        else:
            written = await resource.documents(request).replace(stored, revision=previous.get("revision"))
        if written:
            await resource.invalidate(request, doc_id)
            await _audit(request, principal, resource, "create" if previous is None else "replace",
                         doc_id, apps, previous, stored)
            return no_store_json(_view(resource, stored), 201 if previous is None else 200)
    raise _concurrent(resource, doc_id)


async def _patch(resource: _Resource, request: web.Request, principal: Principal) -> web.Response:
    doc_id = request.match_info["id"]
    apps = await _check_scope(resource, request, principal, doc_id, write=True)
    patch = _document_body(await read_json(request))
    _same_id(patch, doc_id)
    patch.pop("id", None)
    for _ in range(WRITE_ATTEMPTS):
        previous = await resource.documents(request).get(doc_id)
        if previous is None:
            raise _not_found(resource, doc_id)
        current = {k: v for k, v in previous.items() if k != "_id" and k not in READ_ONLY_FIELDS}
        document = merge_patch(current, patch)
        document["id"] = doc_id
        await _validate(resource, request, document)
        if resource.kind == "application":
            await _check_chatbot_choice(request, principal, document, doc_id)
        stored = _stored(resource, document, previous)
        if await resource.documents(request).replace(stored, revision=previous.get("revision")):
            await resource.invalidate(request, doc_id)
            await _audit(request, principal, resource, "update", doc_id, apps, previous, stored)
            return no_store_json(_view(resource, stored))
    raise _concurrent(resource, doc_id)


async def _delete(resource: _Resource, request: web.Request, principal: Principal) -> web.Response:
    doc_id = request.match_info["id"]
    apps = await _check_scope(resource, request, principal, doc_id, write=True)
    if resource.kind == "chatbot" and apps:
        raise AdminError(
            409, "in_use",
            f"chatbot {doc_id!r} is used by application(s) {', '.join(sorted(apps)[:20])}; "
            "point them at another chatbot first",
        )
    previous = await resource.documents(request).get(doc_id)
    if previous is None or not await resource.documents(request).delete(doc_id):
        raise _not_found(resource, doc_id)
    await resource.invalidate(request, doc_id)
    await _audit(request, principal, resource, "delete", doc_id, apps, previous, None)
    return web.Response(status=204, headers={"Cache-Control": "no-store"})


async def _audit(
    request: web.Request, principal: Principal, resource: _Resource, action: str, doc_id: str,
    apps: set[str], before: dict[str, Any] | None, after: dict[str, Any] | None,
) -> None:
    await audit(
        request, principal, action=action, kind=resource.kind, target_id=doc_id,
        application_id=doc_id if resource.kind == "application" else None,
        before=_audited(before), after=_audited(after), application_ids=sorted(apps),
    )


def _audited(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored document as the audit log keeps it (``id`` for ``_id``; secrets are masked by
    the log itself)."""
    if doc is None:
        return None
    return {"id": str(doc["_id"]), **{k: v for k, v in doc.items() if k != "_id"}}


# --- documents ------------------------------------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def _document_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body without read-only fields (a GET result may be sent back), ``_id`` read as ``id``."""
    body = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS}
    if "_id" in body:
        alias = body.pop("_id")
        if "id" in body and body["id"] != alias:
            raise _invalid([FieldError("id", f"`id` ({body['id']!r}) and `_id` ({alias!r}) differ")])
        body["id"] = alias
    return body


def _outbound_urls(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(field, URL) of every outbound URL of an application document."""
    urls = [("callback_url", doc["callback_url"])] if isinstance(doc.get("callback_url"), str) else []
    channels = doc.get("channels")
    if isinstance(channels, dict):
        for name, config in channels.items():
            if isinstance(config, dict) and isinstance(config.get("api_base"), str):
                urls.append((f"channels.{name}.api_base", config["api_base"]))
    return urls


async def _unresolvable(doc: dict[str, Any], errors: list[FieldError], egress: EgressPolicy) -> list[FieldError]:
    """The outbound URLs whose names resolve to an address the egress guard refuses (checked
    again on every connection: a name may resolve differently later). A name that does not
    resolve now is accepted: it is refused when used if it still does not."""
    named = {e.field for e in errors}
    found: list[FieldError] = []
    for field, url in _outbound_urls(doc):
        if field in named:
            continue
        try:
            await asyncio.wait_for(egress.check_resolved(url), RESOLVE_TIMEOUT_S)
        except EgressRefused as exc:
            found.append(FieldError(field, exc.reason))
        except (OSError, TimeoutError, UnicodeError):
            logger.info("admin: the host of %s does not resolve now; checked again when used", field)
    return found


def _path_id(resource: _Resource, request: web.Request) -> str:
    doc_id = request.match_info["id"]
    errors = validate_document({"id": doc_id}, resource.kind)
    id_errors = [e for e in errors if e.field == "id"]
    if id_errors:
        raise _invalid(id_errors)
    return doc_id


def _same_id(body: dict[str, Any], doc_id: str) -> None:
    if "id" in body and body["id"] != doc_id:
        raise _invalid([FieldError("id", f"must match the id in the URL ({doc_id!r}) or be omitted")])


async def _validate(
    resource: _Resource, request: web.Request, doc: dict[str, Any], *, require_id: bool = False
) -> None:
    deps = request.app[DEPS]
    errors = validate_document(
        doc, resource.kind, require_id=require_id, egress=deps.egress, tools=deps.tool_names
    )
    if resource.kind == "application":
        errors += await _unresolvable(doc, errors, deps.egress)
        errors.sort(key=lambda e: e.field)
    if resource.kind == "application" and not any(e.field == "chatbot_id" for e in errors):
        chatbot_id = doc.get("chatbot_id")
        if isinstance(chatbot_id, str) and await CHATBOTS.documents(request).get(chatbot_id) is None:
            errors.append(
                FieldError("chatbot_id", f"no chatbot {chatbot_id!r}; create it first (POST {CHATBOTS.path})")
            )
            errors.sort(key=lambda e: e.field)
    if errors:
        raise _invalid(errors, resource.kind)


def _stored(resource: _Resource, doc: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """The MongoDB document: ``_id``, the fields without nulls (null means default), bookkeeping."""
    fields = coerce_integers({k: v for k, v in doc.items() if v is not None}, resource.kind)
    doc_id = fields.pop("id")
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    revision = previous.get("revision") if previous is not None else None
    return {
        "_id": doc_id,
        **fields,
        "created_at": (previous or {}).get("created_at") or now,
        "updated_at": now,
        "revision": (revision if isinstance(revision, int) else 0) + 1,
    }


def _view(resource: _Resource, stored: dict[str, Any]) -> dict[str, Any]:
    """What a response shows: never ``secret`` nor the channel credentials."""
    view: dict[str, Any] = {"id": str(stored["_id"])}
    for name, value in stored.items():
        if name != "_id" and name not in WRITE_ONLY_FIELDS:
            view[name] = value.isoformat() if isinstance(value, datetime) else value
    if resource.kind == "application":
        view["secret_set"] = bool(stored.get("secret"))
        channels = stored.get("channels")
        view["channels_set"] = sorted(channels) if isinstance(channels, dict) else []
    return view


# --- request and response helpers -----------------------------------------------------------
def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise AdminError(413, "too_large", f"body is larger than {MAX_BODY_BYTES} bytes")
    raw = bytearray()
    try:
        async for chunk in request.content.iter_chunked(64 * 1024):  # read(n) may stop at a chunk
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise AdminError(413, "too_large", f"body is larger than {MAX_BODY_BYTES} bytes")
    except web.RequestPayloadError as exc:  # e.g. a Content-Encoding the body is not in
        raise AdminError(400, "invalid_json", "the body could not be read: " + " ".join(str(exc).split())) from exc
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise AdminError(400, "invalid_json", f"body is nested more than {MAX_DEPTH} levels deep") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise AdminError(400, "invalid_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise AdminError(400, "invalid_json", f"expected a JSON object, got {type(value).__name__}")
    _check_storable(value)
    return value


def _check_storable(body: dict[str, Any]) -> None:
    """Refuse what the helpers cannot walk or MongoDB cannot store: nesting over ``MAX_DEPTH``
    levels and lone surrogates (``\\ud800`` escapes: not Unicode) are 400; integers over 8
    bytes and keys with a NUL or a leading ``$`` are 422. Iterative, so any depth is safe."""
    stack: list[tuple[Any, str, int]] = [(body, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise AdminError(400, "invalid_json", f"body is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for name, item in value.items():
                if _SURROGATE.search(name):
                    raise AdminError(400, "invalid_json", "body has a lone surrogate (a \\ud800-\\udfff escape) in a key")
                if "\x00" in name or name.startswith("$"):
                    # BSON cannot store a NUL in a key; MongoDB reserves keys starting with "$"
                    field = f"{path}.{name!r}" if path else repr(name)
                    raise _invalid([FieldError(field, "keys must not contain NUL or start with '$'")])
                stack.append((item, f"{path}.{name}" if path else name, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            if _SURROGATE.search(value):
                raise AdminError(400, "invalid_json", f"{path} has a lone surrogate (a \\ud800-\\udfff escape)")
        elif isinstance(value, int) and not isinstance(value, bool) and not _INT64_MIN <= value <= _INT64_MAX:
            raise _invalid([FieldError(path, "must be an integer from -2^63 to 2^63-1")])


def page_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise AdminError(400, "invalid_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw!r}")
    return limit


def _invalid(errors: list[FieldError], kind: str = "document") -> AdminError:
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return AdminError(422, "invalid_document", f"the {kind} is invalid: {summary}{more}", errors)


def _not_found(resource: _Resource, doc_id: str) -> AdminError:
    return AdminError(404, "not_found", f"no {resource.kind} {doc_id!r}")


def _concurrent(resource: _Resource, doc_id: str) -> AdminError:
    return AdminError(
        409, "concurrent_update", f"{resource.kind} {doc_id!r} kept changing while this write ran; retry it"
    )


def no_store_json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store", **(headers or {})})

