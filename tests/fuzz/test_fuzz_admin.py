"""Property-based fuzzing of the admin API's writes: POST, PUT and PATCH of applications and
chatbots, with the right key, against a real ``DocumentStore`` on the session's embedded
MongoDB-protocol server (a fresh database per test; the documents written by one example stay
for the next, so creates, conflicts and patches of existing documents all happen).

Bodies: near-valid documents with fields mutated (wrong types, out-of-range and huge numbers,
integers over 8 bytes, tricky ids, lone surrogates, values nested a few hundred levels deep),
random JSON, bodies that are not JSON, not an object, not UTF-8, nested deeper than the
recursion limit, over the size limit, or in a ``Content-Encoding`` they are not in. On every
example:

- the status is one of 200, 201, 204, 400, 404, 409, 413, 415, 422 (never a 5xx), and nothing is
  logged at ERROR;
- an error is a JSON ``{"type": "error", "code", "message"}``;
- a write that succeeded answered a view with a valid id, without ``secret`` or ``channels``,
  and a GET of that id answers the same view: what was stored is valid and reads back.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import assume, given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from parley.config.models import READ_ONLY_FIELDS, document_schema, validate_document
from parley.config.store import ConfigStore
from parley.embedded import EmbeddedServer
from parley.settings import Settings
from parley.storage.documents import DocumentStore
from parley.web.admin import MAX_BODY_BYTES
from parley.web.app import create_web_app
from parley.web.deps import WebDeps
from parley.web.ingress import Ingress
from tests.fuzz.conftest import (
    ID,
    ClientFactory,
    ErrorLog,
    ProducedRecorder,
    chars,
    deep_values,
    fuzz_settings,
    header_bytes,
    huge_int_literals,
    ids,
    json_values,
    near_ids,
    one_in,
    raw_request,
    server_stack,
    tricky_ids,
)
from tests.support.webdeps import web_deps

KEY = "fuzz-admin-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
ALLOWED_STATUSES = frozenset({200, 201, 204, 400, 404, 409, 413, 415, 422})
PLURAL = {"application": "applications", "chatbot": "chatbots"}


def admin_deps(documents: DocumentStore, configs: ConfigStore) -> WebDeps:
    """What the admin API reads: the document store and the configs."""
    return web_deps(configs=configs, documents=documents, archive=documents)


async def _ready() -> tuple[bool, dict[str, Any]]:
    return True, {}


@pytest.fixture
async def documents(services: dict[str, EmbeddedServer], database: str) -> AsyncIterator[DocumentStore]:
    store = DocumentStore(services["documents"].url, database)
    await store.start()
    yield store
    await store.close()


@dataclass
class AdminExample:
    client: TestClient
    produced: ProducedRecorder
    error_log: ErrorLog


@pytest.fixture
async def admin(
    aiohttp_client: ClientFactory, services: dict[str, EmbeddedServer], database: str, documents: DocumentStore,
    produced: ProducedRecorder, error_log: ErrorLog,
) -> AdminExample:
    settings = Settings(mongo_url=services["documents"].url, mongo_database=database, admin_api_key=KEY)
    app = create_web_app(
        settings=settings,
        deps=admin_deps(documents, ConfigStore(documents, settings)),
        ingress=Ingress(produced, timeout_s=1),
        readiness=_ready,
    )
    client = await aiohttp_client(app)
    for plural, body in (("chatbots", {"id": "bot", "system_prompt": "Be terse."}),
                         ("applications", {"id": "app", "name": "Shop", "chatbot_id": "bot"})):
        response = await client.post(f"/v1/admin/{plural}", json=body, headers=AUTH)
        assert response.status == 201, await response.text()
    return AdminExample(client, produced, error_log)


# --- strategies ---------------------------------------------------------------------------------
DEEP = "\x00__deep__\x00"
HUGE_INT = "\x00__huge_int__\x00"

existing_ids = st.sampled_from(["bot", "app", "b1", "a1"])  # seeded, or soon written by a PUT
doc_ids = st.one_of(st.sampled_from(["bot", "app", "b1", "a1", "x"]), ids, near_ids)
urls = st.one_of(
    st.sampled_from(["https://example.com/cb", "http://h", "https://h/p?q#f", "ftp://h", "https://", "https://h /x",
                     "https://h/\n", "javascript:alert(1)", "https://127.0.0.1/cb", "https://[::ffff:10.0.0.1]/",
                     "https://0x7f000001/"]),
    st.text(max_size=30),
)
origins = st.one_of(st.sampled_from(["*", "https://shop.example", "https://shop.example/", "http://a:8080", "null", ""]),
                    st.text(max_size=20))


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


#: values nested deeply, yet parseable: recursive helpers and the BSON encoder see them
nested_values = st.builds(nested, st.integers(50, 500), st.sampled_from([1, 1.5, "x", None, 2**70, "\ud800"]))
big_numbers = st.one_of(
    st.integers(2**63 - 2, 2**63 + 2), st.integers(-(2**63) - 2, -(2**63) + 2), st.integers(2**64, 10**40),
    st.sampled_from([1e308, -1e308, 5e-324, -0.0, 1.0, 2.5, 200_000.0, 1e16]),
)
wrong_values = st.one_of(
    json_values, tricky_ids, big_numbers, nested_values, st.just(DEEP), st.just(HUGE_INT),
    st.sampled_from([True, False, None, "", " ", [], {}, "\ud800", "\udc80x", "a" * 20_001]),
)


clean_leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                        st.floats(allow_nan=False, allow_infinity=False), st.text(chars, max_size=20))
#: a key MongoDB can store: no NUL, no leading "$" (the admin API answers 422 for the others)
def storable_keys(max_size: int) -> st.SearchStrategy[str]:
    return st.text(chars, max_size=max_size).filter(lambda k: "\x00" not in k and not k.startswith("$"))


#: what a platform's credentials may hold: any JSON MongoDB can store, up to the depth limit
credential_values = st.one_of(
    st.recursive(clean_leaves, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(storable_keys(8), c, max_size=3)),
                 max_leaves=8),
    st.builds(nested, st.integers(1, 28), clean_leaves),
)

#: a valid value for every document field, edge values included
VALID: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(chars, min_size=1, max_size=200).filter(lambda t: len(t) <= 200),
    "chatbot_id": st.just("bot"),
    # (plain http and private addresses are refused unless the operator allows them: near misses)
    "callback_url": st.sampled_from([None, "https://example.com/cb", "https://h", "https://h/p?q=1#f", "https://h:8443/é"]),
    "allow_anonymous": st.booleans(),
    "allowed_origins": st.lists(st.sampled_from(["*", "https://shop.example", "http://a:8080"]), max_size=3),
    "secret": st.one_of(st.none(), st.text(chars, min_size=8, max_size=40)),
    "channels": st.one_of(st.none(), st.dictionaries(
        st.sampled_from(["telegram", "slack", "whatsapp", "generic", "x_1"]),
        st.dictionaries(storable_keys(10), credential_values, max_size=3), max_size=3,
    )),
    "system_prompt": st.text(chars, min_size=1, max_size=60),
    "provider": st.sampled_from(["openai", "gemini", "grok", "custom", None]),
    "model": st.sampled_from([None, "gpt-4o", "gemini-2.0-flash", "a/b:c"]),
    "fallback_models": st.lists(st.sampled_from(["gpt-4o", "gemini:flash"]), max_size=3),
    "temperature": st.one_of(st.none(), st.floats(0, 2), st.integers(0, 2)),
    "max_tokens": st.one_of(st.none(), st.integers(1, 200_000), st.just(64.0)),
    "history_token_budget": st.integers(200, 1_000_000),
    "tools": st.one_of(st.none(), st.lists(st.sampled_from(["current_time", "calculate"]), max_size=2)),
    "double_texting": st.sampled_from(["queue", "interrupt", "merge"]),
    "merge_window_s": st.one_of(st.floats(0, 30), st.integers(0, 30)),
    "history_messages": st.integers(2, 1000),
    "max_tool_rounds": st.integers(1, 50),
    "rate_limit_per_minute": st.one_of(st.none(), st.integers(1, 10**4), st.just(2**63 - 1)),
}
#: a near miss for some fields (out of range by one, wrong enum, pattern violations)
NEAR_MISS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.builds(lambda i, end: i + end, ids, st.sampled_from(["\n", "\r\n", " "])),
    "name": st.sampled_from(["", "x" * 201]),
    "chatbot_id": st.sampled_from(["nope", "b1", "bot\n"]),
    "callback_url": urls,
    "allowed_origins": st.one_of(st.lists(origins, min_size=1, max_size=3), st.just(["https://shop.example\n"])),
    "secret": st.text(max_size=7),
    "channels": st.dictionaries(st.sampled_from(["Bad Name", "", "telegram", "telegram\n"]), json_values, min_size=1, max_size=2),
    "fallback_models": st.just(["gpt-4o\n"]),
    "provider": st.just("other"),
    "model": st.sampled_from(["", "a b", "gpt-4o\n"]),
    "temperature": st.sampled_from([-0.001, 2.001, 1e308]),
    "max_tokens": st.sampled_from([0, 200_001, 1.5]),
    "history_token_budget": st.sampled_from([199, 1_000_001]),
    "tools": st.sampled_from([["bad name"], ["current_time\n"], ["x-y_z"]]),
    "double_texting": st.just("other"),
    "merge_window_s": st.sampled_from([-1, 30.5]),
    "history_messages": st.sampled_from([1, 1001]),
    "max_tool_rounds": st.sampled_from([0, 51]),
    "rate_limit_per_minute": st.sampled_from([0, 2**63, 2**64, -(2**63) - 1]),
}


#: the fields with a ``pattern`` in the schemas (channels: its keys)
PATTERN_FIELDS = {
    "application": {"id", "chatbot_id", "callback_url", "allowed_origins", "channels"},
    "chatbot": {"id", "model", "fallback_models", "tools"},
}


def _strings(value: Any) -> list[str]:
    """Every string in ``value``, keys included."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


APPLICATION_FIELDS = ["name", "chatbot_id", "callback_url", "allow_anonymous", "allowed_origins", "secret", "channels"]
CHATBOT_FIELDS = ["system_prompt", "provider", "model", "fallback_models", "temperature", "max_tokens",
                  "history_token_budget", "tools", "double_texting", "merge_window_s", "history_messages",
                  "max_tool_rounds", "rate_limit_per_minute"]


@st.composite
def documents_for(draw: st.DrawFn, kind: str, method: str, path_id: str | None) -> tuple[Any, bool]:
    """(a document body, whether it is valid for ``method``)."""
    fields = APPLICATION_FIELDS if kind == "application" else CHATBOT_FIELDS
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields)))
    if kind == "application" and method != "PATCH":
        chosen = list(dict.fromkeys(["name", "chatbot_id", *chosen]))
    doc: dict[str, Any] = {name: draw(VALID[name]) for name in chosen}
    if method == "POST":
        doc["id"] = draw(doc_ids.filter(lambda i: ID.fullmatch(i) is not None))
    elif draw(st.booleans()):
        doc["id"] = path_id
    choice = draw(st.sampled_from(["valid", "valid", "newline", "mutate"]))
    if choice == "valid":
        return doc, True
    if choice == "newline":
        # one field with a final newline, the rest valid: "$" must not let it through
        name = draw(st.sampled_from(sorted(PATTERN_FIELDS[kind])))
        value = {
            "id": (path_id or "x") + "\n", "chatbot_id": "bot\n", "callback_url": "https://h/\n",
            "allowed_origins": ["https://shop.example\n"], "model": "gpt-4o\n",
            "fallback_models": ["gpt-4o\n"], "tools": ["current_time\n"], "channels": {"telegram\n": {}},
        }[name]
        doc[name] = value
        return doc, False
    # mutate: near misses, wrong values, unknown or read-only fields
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([*fields, "id", "_id", "revision", "created_at", "secret_set", "unknown", ""]))
        if name in NEAR_MISS and draw(st.booleans()):
            doc[name] = draw(NEAR_MISS[name])
        else:
            doc[name] = draw(wrong_values)
    return doc, False


def render(value: Any, deep: str, huge: str) -> bytes:
    text = json.dumps(value)
    return text.replace(json.dumps(DEEP), deep).replace(json.dumps(HUGE_INT), huge).encode("utf-8")


@dataclass
class Request:
    method: str
    kind: str
    path_id: str | None
    body: bytes
    headers: dict[str, str]
    corrupt_encoding: bool = False
    #: a valid document: a POST is 201 or 409 (the id exists), a PUT 200 or 201, a PATCH 200
    #: or 404 (no such document)
    valid: bool = False

    @property
    def path(self) -> str:
        base = f"/v1/admin/{PLURAL[self.kind]}"
        return base if self.path_id is None else f"{base}/{self.path_id}"


@st.composite
def requests(draw: st.DrawFn) -> Request:
    kind = draw(st.sampled_from(["application", "chatbot"]))
    method = draw(st.sampled_from(["POST", "PUT", "PATCH"]))
    path_id = None if method == "POST" else draw(st.one_of(existing_ids, existing_ids, doc_ids).filter(lambda i: i and not set(i) & set("/{}?#%\\") and i not in (".", "..")
                                                                and i.strip() == i and i.isprintable()))
    shape = draw(st.sampled_from(["doc", "doc", "doc", "doc", "doc", "doc", "json", "deep", "huge_int", "not_json", "non_utf8", "too_large"]))
    deep, huge = draw(deep_values), draw(huge_int_literals)
    valid = False
    if shape == "doc":
        document, valid = draw(documents_for(kind, method, path_id))
        body = render(document, deep, huge)
    elif shape == "json":
        body = render(draw(json_values), deep, huge)
    elif shape == "deep":
        body = deep.encode()
    elif shape == "huge_int":
        body = ('{"name": "n", "chatbot_id": "bot", "max_tokens": ' + huge + "}").encode()
    elif shape == "not_json":
        body = draw(st.sampled_from([b"", b"{", b"{'a': 1}", b"NaN", b'{"a": NaN}', b'{"a": Infinity}', b"null", b"[]"]))
    elif shape == "non_utf8":
        body = b'{"name": "\xff\xfe", "chatbot_id": "bot"}'
    else:
        body = b'{"name": "' + b"x" * (MAX_BODY_BYTES + draw(st.integers(0, 10))) + b'"}'
    headers = dict(AUTH)
    headers.update(draw(st.sampled_from([
        {}, {}, {"Content-Type": "application/json"}, {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"}, {"Content-Type": "application/merge-patch+json"},
    ])))
    corrupt = draw(one_in(8)) and bool(body)
    if corrupt:
        headers["Content-Encoding"] = draw(st.sampled_from(["gzip", "deflate"]))
        headers["Connection"] = "close"
        if len(body) <= MAX_BODY_BYTES and draw(st.booleans()):
            # large enough that the handler is reading when the decoder fails (a small body
            # arriving with the headers is refused by aiohttp's parser before any handler runs)
            body += b" " * draw(st.integers(32_000, MAX_BODY_BYTES // 2))
    valid = valid and not corrupt and (method != "PUT" or ID.fullmatch(path_id or "") is not None)
    return Request(method, kind, path_id, body, headers, corrupt, valid)


# --- the property -------------------------------------------------------------------------------
@fuzz_settings(100)
@given(request=requests())
async def test_admin_writes(admin: AdminExample, request: Request) -> None:
    with server_stack():
        await _admin_write(admin, request)


async def _admin_write(admin: AdminExample, request: Request) -> None:
    admin.error_log.clear()
    client = admin.client
    response = await client.request(request.method, request.path, data=request.body, headers=request.headers)
    raw = await response.read()
    context = f"{request.method} {request.path} {request.body[:300]!r} -> {response.status} {raw[:300]!r}"
    hypothesis.event(f"admin: {request.method} {request.kind} -> {response.status}")
    if request.corrupt_encoding and response.content_type == "text/plain":
        assert response.status == 400, context  # aiohttp's parser refused the body itself
    else:
        assert response.status in ALLOWED_STATUSES, context
        assert response.content_type == "application/json", context
        body = json.loads(raw)
        if response.status >= 400:
            assert body["type"] == "error", context
            assert isinstance(body["code"], str) and body["code"], context
            assert isinstance(body["message"], str) and body["message"], context
        else:
            doc_id = body["id"]
            assert isinstance(doc_id, str) and ID.fullmatch(doc_id), context
            assert "secret" not in body and "channels" not in body, context
            if request.kind == "application":
                assert ID.fullmatch(body["chatbot_id"]), context
            for name in (PATTERN_FIELDS[request.kind] - {"channels"}) | {"channels_set"}:
                assert all(not s.endswith("\n") for s in _strings(body.get(name))), f"{name} stored: {context}"
            written = {k: v for k, v in body.items() if k not in READ_ONLY_FIELDS}
            assert validate_document(written, request.kind) == [], context  # type: ignore[arg-type]
            again = await client.get(f"/v1/admin/{PLURAL[request.kind]}/{doc_id}", headers=AUTH)
            assert again.status == 200, context
            assert await again.json() == body, context
    if request.valid:
        assert response.status in {"POST": (201, 409), "PUT": (200, 201), "PATCH": (200, 404)}[request.method], context
    assert admin.produced.events == [] and admin.produced.problems == []
    admin.error_log.assert_none()


@fuzz_settings(40)
@given(
    name=st.sampled_from([b"Authorization", b"X-Admin-Key"]),
    prefix=st.sampled_from([b"Bearer ", b"bearer ", b"", b"Bearer \xff", b"Bearer " + KEY.encode(), KEY.encode()]),
    value=header_bytes,
)
async def test_a_key_that_is_not_utf8_is_401(admin: AdminExample, name: bytes, prefix: bytes, value: bytes) -> None:
    """Header bytes that are not UTF-8 (sent on a raw connection) are a wrong key, not a crash."""
    admin.error_log.clear()
    key = prefix + value
    body = b'{"id": "raw-key", "system_prompt": "x"}'
    status, _, payload = await raw_request(admin.client, "POST", "/v1/admin/chatbots", [(name, key)], body)
    context = f"{name!r}: {key!r} -> {status} {payload[:200]!r}"
    # the right key after all: an empty value, or one of Unicode whitespace, which is stripped
    text = key.decode("utf-8", "surrogateescape")
    scheme, _, token = text.strip().partition(" ")
    if (name == b"Authorization" and scheme.lower() == "bearer" and token.strip() == KEY) or text.strip() == KEY:
        return
    assert status == 401, context
    assert json.loads(payload)["code"] == "unauthorized", context
    admin.error_log.assert_none()


#: (kind, field, value): values the schema allows but no server can take as they are
unstorable = st.one_of(
    st.tuples(st.just("chatbot"), st.just("rate_limit_per_minute"), st.integers(2**63, 10**40)),
    st.tuples(st.just("application"), st.just("channels"), st.builds(
        lambda name, value: {name: {"k": value}}, st.sampled_from(["telegram", "slack"]),
        st.one_of(st.integers(2**63, 10**40), st.integers(-(10**40), -(2**63) - 1)),
    )),
    st.tuples(st.just("application"), st.just("channels"), st.builds(
        lambda depth, leaf: {"telegram": {"k": nested(depth, leaf)}}, st.integers(30, 900), st.sampled_from([1, "x", None]),
        # (the leaf is 3 + depth levels down: past MAX_DEPTH)
    )),
    st.tuples(st.sampled_from(["application", "chatbot"]), st.just("surrogate"), st.sampled_from(
        ["\ud800", "a\udfffb", "\udc80", "😀\ud83d"]
    )),
)


@fuzz_settings(50)
@given(edge=unstorable, method=st.sampled_from(["POST", "PUT", "PATCH"]), target=existing_ids)
async def test_unstorable_values_are_refused(admin: AdminExample, edge: tuple[str, str, Any], method: str, target: str) -> None:
    """Integers over 8 bytes, values nested past the limit and lone surrogates in otherwise valid
    documents: a 4xx, never a 5xx (MongoDB's encoder, or the recursive validators, would fail)."""
    kind, name, value = edge
    doc: dict[str, Any] = {"name": "Shop", "chatbot_id": "bot"} if kind == "application" else {"system_prompt": "Be terse."}
    if name == "surrogate":
        doc["name" if kind == "application" else "system_prompt"] = value
    else:
        doc[name] = value
    if method == "POST":
        doc["id"] = f"edge-{uuid.uuid4().hex[:8]}"
    data = json.dumps(doc)  # (before the server's stack is put back: it may be deep)
    path = f"/v1/admin/{PLURAL[kind]}" + ("" if method == "POST" else f"/{target}")
    admin.error_log.clear()
    with server_stack():
        response = await admin.client.request(method, path, data=data, headers=AUTH)
        raw = await response.read()
    context = f"{method} {path} {data[:200]} -> {response.status} {raw[:300]!r}"
    assert response.status in ((400, 404, 422) if method == "PATCH" else (400, 422)), context
    assert json.loads(raw)["type"] == "error", context
    admin.error_log.assert_none()


NEWLINE_VALUES = {
    "id": "nl-{n}\n", "chatbot_id": "bot\n", "callback_url": "https://h/\n", "allowed_origins": ["https://shop.example\n"],
    "channels": {"telegram\n": {}}, "model": "gpt-4o\n", "fallback_models": ["gpt-4o\n"], "tools": ["current_time\n"],
}


@fuzz_settings(40)
@given(
    kind_field=st.sampled_from(sorted((k, f) for k, fields in PATTERN_FIELDS.items() for f in fields)),
    method=st.sampled_from(["POST", "PUT", "PATCH"]),
    end=st.sampled_from(["\n", "\r\n", "\n\n"]),
)
async def test_a_final_newline_never_passes_a_pattern(admin: AdminExample, kind_field: tuple[str, str], method: str, end: str) -> None:
    """Every field with a ``pattern`` (``^...$``): Python's ``$`` also matches before a final
    newline, JSON Schema's does not. A value with one is refused (422), never stored (nor put in a
    ``Location`` header)."""
    kind, name = kind_field
    doc: dict[str, Any] = {"name": "Shop", "chatbot_id": "bot"} if kind == "application" else {"system_prompt": "Be terse."}
    value: Any = json.loads(json.dumps(NEWLINE_VALUES[name]).replace("\\n", json.dumps(end)[1:-1]))
    if name == "id":
        value = value.replace("{n}", uuid.uuid4().hex[:8])
    doc[name] = value
    target = "app" if kind == "application" else "bot"
    if method == "POST" and name != "id":
        doc["id"] = f"nl-{uuid.uuid4().hex[:8]}"
    if method != "POST" and name == "id":
        return  # the body's id must equal the URL's: that mismatch is its own 422
    path = f"/v1/admin/{PLURAL[kind]}" + ("" if method == "POST" else f"/{target}")
    admin.error_log.clear()
    response = await admin.client.request(method, path, data=json.dumps(doc), headers=AUTH)
    raw = await response.read()
    context = f"{method} {path} {json.dumps(doc)} -> {response.status} {raw[:300]!r}"
    assert response.status == 422, context
    assert json.loads(raw)["code"] == "invalid_document", context
    admin.error_log.assert_none()


@fuzz_settings(25)
@given(
    kind=st.sampled_from(["application", "chatbot"]),
    method=st.sampled_from(["POST", "PUT", "PATCH"]),
    encoding=st.sampled_from(["gzip", "deflate"]),
    size=st.integers(1, MAX_BODY_BYTES // 2),
)
async def test_a_body_not_in_its_content_encoding_is_400(
    admin: AdminExample, kind: str, method: str, encoding: str, size: int
) -> None:
    """``Content-Encoding: gzip`` over bytes that are not gzip: 400, not a 500 from the decoder's
    error escaping the body read. (A small body that arrives with the headers is refused by
    aiohttp's parser itself, ``400 text/plain``, before any handler runs.)"""
    admin.error_log.clear()
    body = b'{"name": "Shop"}' + b" " * size
    path = f"/v1/admin/{PLURAL[kind]}" + ("" if method == "POST" else "/app")
    headers = {**AUTH, "Content-Encoding": encoding, "Connection": "close"}
    response = await admin.client.request(method, path, data=body, headers=headers)
    raw = await response.read()
    context = f"{method} {path} {encoding} {len(body)} bytes -> {response.status} {raw[:200]!r}"
    assert response.status == 400, context
    if response.content_type == "application/json":
        assert json.loads(raw)["code"] == "invalid_json", context
    admin.error_log.assert_none()


# --- the published schema and the model ---------------------------------------------------------
def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
    """``pattern`` as JSON Schema (ECMA-262) reads it: a final ``$`` is the end of the string."""
    if validator.is_type(instance, "string"):
        match = re.search(pattern, instance)
        if match is None or (pattern.endswith("$") and match.end() != len(instance)):
            yield ValidationError(f"{instance!r} does not match {pattern!r}")


SchemaValidator = validators.extend(Draft202012Validator, {"pattern": _ecma_pattern})


def _json_like(value: Any, depth: int = 0) -> bool:
    """What the admin API validates at all: finite numbers, no lone surrogates, at most 32 levels
    (anything else is refused before validation, or by the document-wide finiteness check)."""
    if depth > 32:
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return _strings_ok(value)
    if isinstance(value, dict):
        return all(_strings_ok(k) and _json_like(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_json_like(v, depth + 1) for v in value)
    return True


def _strings_ok(text: str) -> bool:
    return not re.search(r"[\ud800-\udfff]", text)


@fuzz_settings(300)
@given(kind=st.sampled_from(["application", "chatbot"]), method=st.sampled_from(["POST", "PUT", "PATCH"]),
       path_id=st.one_of(st.none(), doc_ids), data=st.data())
def test_the_published_schema_accepts_what_the_model_accepts(kind: str, method: str, path_id: str | None, data: st.DataObject) -> None:
    """The JSON Schema in /v1/openapi.json is generated from the model: a document is valid
    under one exactly when it is valid under the other."""
    doc, _ = data.draw(documents_for(kind, method, path_id))
    assume(_json_like(doc))
    errors = validate_document(doc, kind)  # type: ignore[arg-type]
    schema_errors = list(SchemaValidator(document_schema(kind)).iter_errors(doc))  # type: ignore[arg-type]
    hypothesis.event(f"schema: {kind} {'valid' if not errors else 'invalid'}")
    assert (errors == []) == (schema_errors == []), (doc, errors, [e.message for e in schema_errors])
