"""Shared pieces of the property-based fuzz tests (hypothesis) of the web edge.

Each fuzz test builds the real aiohttp app (``create_web_app``) once per test function and
reuses it across hypothesis examples; ``reset`` puts the per-example state back.

- ``ProducedRecorder`` is the Ingress produce function: every produced value is decoded as an
  ``IncomingEvent`` and checked (ids, text, channel), so "nothing invalid is produced" is asserted
  on every example. An invalid event is refused (the produce raises), and recorded in
  ``problems``.
- ``ErrorLog`` captures every log record at ERROR and above (aiohttp's "Error handling request"
  for an exception escaping a handler, asyncio's "Task exception was never retrieved"...).
- ``server_stack`` gives the app's handlers, for one example, the stack a production server has
  (hypothesis raises the recursion limit while a test runs, which would hide a RecursionError).
- ``fuzz_settings(n)`` are the hypothesis settings every fuzz test uses: ``n`` examples (times
  ``PARLEY_FUZZ_SCALE``), no deadline (the machine is shared), no example database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from parley.channels import CHANNELS
from parley.records import KIND_USER, IncomingEvent, conversation_key
from parley.settings import Settings
from parley.streams.codec import decode
from parley.web.app import create_web_app
from parley.web.deps import WebDeps
from parley.web.ingress import Ingress
from parley.web.keys import DEPS
from tests.support.stores import OwnerRecords, memory_owners
from tests.support.webdeps import web_deps

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]

#: small limits, so that "near the limit" and "over the limit" are cheap to generate
MAX_TEXT = 256
#: the webhook body limit and the websocket frame limit (both 4 x text + 4 KiB)
BODY_LIMIT = MAX_TEXT * 4 + 4096

#: the id pattern of ``parley.validation`` (kept here on purpose: the test states the contract)
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$")
KNOWN_CHANNELS = frozenset(CHANNELS) | {"websocket"}

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz_settings(max_examples: int) -> settings:
    """``FUZZ`` with ``max_examples`` examples, times ``PARLEY_FUZZ_SCALE`` (default 1; e.g. 20
    for a long local run)."""
    scale = float(os.environ.get("PARLEY_FUZZ_SCALE", "1"))
    return settings(FUZZ, max_examples=max(1, round(max_examples * scale)))


# --- the produce recorder -----------------------------------------------------------------------
def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def event_problems(key: str, event: IncomingEvent, max_text_bytes: int) -> list[str]:
    """Why ``event`` (produced under ``key``) is not a valid user event; empty when it is."""
    problems: list[str] = []
    for name in ("event_id", "application_id", "conversation_id"):
        value = getattr(event, name)
        if not isinstance(value, str) or not ID.fullmatch(value):
            problems.append(f"{name} {value!r} does not match the id pattern")
    if key != conversation_key(event.application_id, event.conversation_id):
        problems.append(f"key {key!r} is not the conversation key of {event.application_id!r}/{event.conversation_id!r}")
    if event.kind != KIND_USER:
        problems.append(f"kind {event.kind!r} is not {KIND_USER!r}")
    if event.channel not in KNOWN_CHANNELS:
        problems.append(f"channel {event.channel!r} is unknown")
    text = event.text
    if not isinstance(text, str) or (not text.strip() and not (text == "" and event.attachments)):
        problems.append(f"text {text!r} is empty (only a message with files may have no text)")
    elif not _utf8(text):
        problems.append(f"text {text!r} is not valid Unicode")
    elif len(text.encode("utf-8")) > max_text_bytes:
        problems.append(f"text is {len(text.encode('utf-8'))} bytes, over {max_text_bytes}")
    for name in ("sender", "client_message_id"):
        value = getattr(event, name)
        if not isinstance(value, str) or not _utf8(value):
            problems.append(f"{name} {value!r} is not a valid string")
    if not event.client_message_id:
        problems.append("client_message_id is empty")
    if not isinstance(event.created_at, float):
        problems.append(f"created_at {event.created_at!r} is not a float")
    if not isinstance(event.attachments, list) or event.tool_results:
        problems.append("attachments/tool_results are malformed")
    return problems


class ProducedRecorder:
    """The Ingress produce function: records valid events, refuses (and records) invalid ones."""

    def __init__(self, max_text_bytes: int = MAX_TEXT) -> None:
        self.max_text_bytes = max_text_bytes
        self.events: list[IncomingEvent] = []
        self.problems: list[str] = []

    def reset(self) -> None:
        self.events.clear()
        self.problems.clear()

    async def __call__(self, key: str, value: bytes) -> None:
        try:
            event = decode(value, IncomingEvent)
        except Exception as exc:
            self.problems.append(f"undecodable value {value[:200]!r}: {exc}")
            raise AssertionError(self.problems[-1]) from exc
        problems = event_problems(key, event, self.max_text_bytes)
        if problems:
            self.problems.extend(problems)
            raise AssertionError("; ".join(problems))
        self.events.append(event)

    def assert_valid(self) -> None:
        assert self.problems == [], f"invalid events were produced: {self.problems}"


# --- error logs ---------------------------------------------------------------------------------
def _aiohttp_undecodable_body(record: logging.LogRecord) -> bool:
    """aiohttp's own records for a body it cannot decompress (``Content-Encoding: gzip`` over
    bytes that are not gzip): its parser answers ``400`` itself and logs "Error handling request"
    (no handler runs), or, when the handler already answered, the drain of the rest of the body
    logs "Unhandled exception" and closes the connection. Either way for any route, body read or
    not: not Parley's to fix (the handler's part, a JSON 400, is checked by the tests)."""
    from aiohttp.http_exceptions import ContentEncodingError
    from aiohttp.web import RequestPayloadError

    return (
        record.name == "aiohttp.server"
        and record.exc_info is not None
        and isinstance(record.exc_info[1], (RequestPayloadError, ContentEncodingError))
    )


class ErrorLog(logging.Handler):
    """Every record at ERROR or above, from any logger."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if _aiohttp_undecodable_body(record):
            return
        self.records.append(record)

    def clear(self) -> None:
        self.records.clear()

    def describe(self) -> list[str]:
        out = []
        for record in self.records:
            text = f"{record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                text += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
            out.append(text)
        return out

    def assert_none(self) -> None:
        assert self.records == [], f"errors were logged: {self.describe()}"


@pytest.fixture
def error_log() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture
def produced() -> ProducedRecorder:
    return ProducedRecorder()


# --- a fake platform API (typing indicators go there) -------------------------------------------
class FakePlatform:
    """Answers every request ``200 {"ok": true}`` and counts them."""

    def __init__(self) -> None:
        self.requests = 0
        self.base = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests += 1
        return web.json_response({"ok": True})


@pytest.fixture
async def platform(aiohttp_server: Any) -> FakePlatform:
    fake = FakePlatform()
    server = await aiohttp_server(fake.app())
    fake.base = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- applications -------------------------------------------------------------------------------
GENERIC_SECRET = "whsec-fuzz-0123456789"
CHANNEL_GENERIC_SECRET = "whsec-channel-only-9876"
TELEGRAM_SECRET = "tg-secret_Token-value"
TELEGRAM_TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
WHATSAPP_APP_SECRET = "0123456789abcdef0123456789abcdef"
WHATSAPP_VERIFY_TOKEN = "meatyhamhock"
SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
WS_SECRET = "ws-app-secret-for-user-tokens"
ALLOWED_ORIGIN = "https://shop.example"


def applications(api_base: str) -> dict[str, dict[str, Any]]:
    """The application documents the stub store holds."""
    return {
        "plain": {"_id": "plain"},
        "signed": {"_id": "signed", "secret": GENERIC_SECRET},
        "chsigned": {"_id": "chsigned", "channels": {"generic": {"secret": CHANNEL_GENERIC_SECRET}}},
        "tg": {"_id": "tg", "channels": {"telegram": {
            "bot_token": TELEGRAM_TOKEN, "secret_token": TELEGRAM_SECRET, "api_base": api_base,
        }}},
        "wa": {"_id": "wa", "channels": {"whatsapp": {
            "app_secret": WHATSAPP_APP_SECRET, "verify_token": WHATSAPP_VERIFY_TOKEN,
            "access_token": "EAAGm0PX4ZCpsBAPZCZA", "phone_number_id": "106540352242922", "api_base": api_base,
        }}},
        "sl": {"_id": "sl", "channels": {"slack": {
            "signing_secret": SLACK_SIGNING_SECRET, "bot_token": "xoxb-1-2-abc", "api_base": api_base,
        }}},
        # half-configured channels: the credentials object is there, the secret is not
        "tg-nosecret": {"_id": "tg-nosecret", "channels": {"telegram": {"bot_token": TELEGRAM_TOKEN}}},
        "wa-nosecret": {"_id": "wa-nosecret", "channels": {"whatsapp": {"verify_token": 7}}},
        "sl-nosecret": {"_id": "sl-nosecret", "channels": {"slack": {"signing_secret": ""}}},
        "broken": {"_id": "broken", "channels": ["not", "an", "object"], "secret": 42},
        # websocket applications
        "demo": {"_id": "demo"},
        "private": {"_id": "private", "secret": WS_SECRET},
        "strict": {"_id": "strict"},
    }


#: websocket application policies (what ``ConfigStore.application`` returns, stubbed)
WS_POLICIES: dict[str, dict[str, Any]] = {
    "demo": {"allow_anonymous": True, "allowed_origins": ()},
    "private": {"allow_anonymous": False, "allowed_origins": ()},
    "strict": {"allow_anonymous": True, "allowed_origins": (ALLOWED_ORIGIN,)},
}

#: what a resume reads from the stub archive
ARCHIVED = [
    {"_id": "m-archived-1", "role": "user", "text": "earlier", "client_message_id": "c-1", "sender": "",
     "created_at": 1.0},
    {"_id": "m-archived-2", "role": "assistant", "text": "answer", "in_reply_to": "m-archived-1",
     "created_at": 2.0},
]


class Documents:
    def __init__(self, apps: dict[str, dict[str, Any]]) -> None:
        self.applications = apps

    async def get_application(self, application_id: str) -> dict[str, Any] | None:
        doc = self.applications.get(application_id)
        return json.loads(json.dumps(doc)) if doc is not None else None

    async def messages_after(
        self, application_id: str, conversation_id: str, last_message_id: str, *, roles: Any, limit: int
    ) -> tuple[list[dict[str, Any]], bool, bool]:
        found = last_message_id == ARCHIVED[0]["_id"]
        docs = ARCHIVED[1:] if found else list(ARCHIVED)
        return docs[-limit:], found, len(docs) > limit

    async def handoff(self, application_id: str, conversation_id: str) -> dict[str, Any] | None:
        return None


class Configs:
    def __init__(self, documents: Documents) -> None:
        self._documents = documents

    async def application_document(self, application_id: str) -> dict[str, Any] | None:
        return await self._documents.get_application(application_id)

    async def application(self, application_id: str) -> Any:
        policy = WS_POLICIES.get(application_id)
        if policy is None:
            return None
        return SimpleNamespace(application_id=application_id, chatbot=None, **policy)


def fuzz_deps(http: aiohttp.ClientSession, api_base: str) -> WebDeps:
    archive = Documents(applications(api_base))
    archive.owner_records = OwnerRecords()  # the first message of a conversation claims it
    return web_deps(
        configs=Configs(archive), archive=archive, documents=archive, http=http,
        owners=memory_owners(archive.owner_records),
    )


async def _ready() -> tuple[bool, dict[str, Any]]:
    return True, {}


def fuzz_settings_object() -> Settings:
    return Settings(
        max_text_bytes=MAX_TEXT,
        delivery_timeout_s=2.0,
        # rate limits are their own tests; here every frame must be judged on its content
        ws_messages_per_minute=0,
        ws_app_messages_per_minute=0,
    )


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, http: aiohttp.ClientSession, platform: FakePlatform, produced: ProducedRecorder
) -> TestClient:
    app = create_web_app(
        settings=fuzz_settings_object(),
        deps=fuzz_deps(http, platform.base),
        ingress=Ingress(produced, timeout_s=2),
        readiness=_ready,
    )
    return await aiohttp_client(app)


@dataclass
class Example:
    """The state one hypothesis example starts from."""

    client: TestClient
    produced: ProducedRecorder
    error_log: ErrorLog

    def reset(self) -> None:
        self.produced.reset()
        self.error_log.clear()
        deps = self.client.app[DEPS]
        deps.archive.owner_records.records.clear()
        deps.owners = memory_owners(deps.archive.owner_records)  # and an empty owner cache

    def assert_clean(self) -> None:
        self.produced.assert_valid()
        self.error_log.assert_none()


@pytest.fixture
def example(client: TestClient, produced: ProducedRecorder, error_log: ErrorLog) -> Example:
    return Example(client, produced, error_log)


async def raw_request(
    client: TestClient, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, bytes, bytes]:
    """(status, head, body) of a request written byte for byte on its own connection: headers
    that are not UTF-8, which HTTP clients refuse to send."""
    server = client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: localhost", b"Connection: close",
                b"Content-Length: " + str(len(body)).encode()]
        head += [name + b": " + value for name, value in headers]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = response.partition(b"\r\n")
    response_head, _, response_body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), response_head, response_body


#: header bytes HTTP allows in a value (visible ASCII, space, tab, obs-text), UTF-8 or not
header_bytes = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c < 127 or c >= 128).strip()
)


@contextlib.contextmanager
def server_stack(headroom: int = 1000) -> Iterator[None]:
    """The stack a production server has, for the duration of one example.

    Hypothesis raises the recursion limit while it runs a test (to its caller's depth + 2000), so
    a body that exhausts a server's stack (limit 1000, nearly all of it free) would parse fine
    under ``@given``. The app's handlers run in tasks of this same loop, at about the depth of
    the caller: ``headroom`` frames above it is what ``parley web`` gives them. Hypothesis' own
    limit is put back on exit (it warns, an error here, when a test leaves it changed)."""
    depth = 0
    frame = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + headroom)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


async def settle() -> None:
    """Let background work started by a request (typing indicators) run."""
    await asyncio.sleep(0)


# --- shared strategies --------------------------------------------------------------------------
def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (``st.integers(0, n) == 0`` is far likelier: hypothesis
    favours boundary values)."""
    return st.sampled_from([False] * (n - 1) + [True])


ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,40}", fullmatch=True)
#: strings next to the id pattern that it must refuse
tricky_ids = st.sampled_from([
    "c1\n", "c1\r", "c1\r\n", " c1", "c1 ", "\nc1", "-c1", "_c1", ".c1", "c/1", "c 1", "c1\x00", "é1", "c١",
    "ｃ1", "a" * 129, "", "c1\t", "c1\u2028",
])
#: valid ids spoiled at one end (the pattern's ``$`` alone lets a final newline through)
near_ids = st.one_of(
    tricky_ids,
    st.builds(lambda i, end: i + end, ids, st.sampled_from(["\n", "\r\n", " ", "\x00", "/", "é"])),
    st.builds(lambda i, start: start + i, ids, st.sampled_from(["\n", " ", "-", "_", "."])),
)
#: ids of every admissible length, 128 included
long_ids = st.integers(0, 127).flatmap(
    lambda n: st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:@\-]{" + str(n) + "}", fullmatch=True)
)


def _fits(text: str, limit: int) -> bool:
    return bool(text.strip()) and len(text.encode("utf-8")) <= limit


#: a character of any Unicode category except lone surrogates (which are not text)
chars = st.characters(exclude_categories=("Cs",))


def near_limit_text(limit: int = MAX_TEXT) -> st.SearchStrategy[str]:
    """Texts whose UTF-8 size is just under, at or just over ``limit`` (1-4 byte characters)."""
    return st.builds(
        lambda ch, delta: ch * max(1, (limit + delta) // len(ch.encode("utf-8"))),
        st.sampled_from(["x", "é", "€", "😀", " a"]),
        st.integers(-4, 4),
    )


#: texts a user may send: non-blank, within MAX_TEXT bytes
valid_texts = st.one_of(
    st.text(chars, min_size=1, max_size=60),
    near_limit_text(),
).filter(lambda t: _fits(t, MAX_TEXT))

#: any text at all, lone surrogates included
any_texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(categories=("Cs",)), min_size=1, max_size=3),
    st.builds(lambda a, s, b: a + s + b, st.text(max_size=5), st.sampled_from(["\ud800", "\udfff", "\udc80"]), st.text(max_size=5)),
    near_limit_text(),
    st.sampled_from(["", " ", "\n\t", "\u00a0\u2003", "\x00", "\u202e", "\ufeff"]),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    any_texts,
)
#: JSON values: scalars, lists and objects, a few levels deep
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)


def deep_json(depth: int, kind: str) -> str:
    """JSON nested ``depth`` levels (deeper than the interpreter's recursion limit), at most
    ``BODY_LIMIT`` bytes."""
    if kind == "list":
        return "[" * depth + "]" * depth
    if kind == "object":
        return '{"":' * depth + "1" + "}" * depth
    return '[{"":' * (depth // 2) + "0" + "}]" * (depth // 2)


deep_values = st.one_of(
    st.builds(deep_json, st.integers(1000, 2500), st.just("list")),
    st.builds(deep_json, st.integers(1000, 1020), st.just("object")),
    st.builds(deep_json, st.integers(1000, 1400), st.just("mixed")),
)
#: an integer literal over Python's int-to-str digit limit (4300 digits)
huge_int_literals = st.integers(4301, 4600).map(lambda n: "9" * n)


def dumps(value: Any) -> str:
    """JSON text of ``value``; lone surrogates come out as ``\\udXXX`` escapes (valid JSON)."""
    return json.dumps(value)

