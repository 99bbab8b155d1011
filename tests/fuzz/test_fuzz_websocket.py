"""Property-based fuzzing of the chat websocket, ``GET /ws`` (docs/websocket-protocol.md).

Hypothesis opens a connection (with or without a browser ``Origin``, with or without a
``?token=``) and sends a sequence of frames over it: ``hello`` variants (known, unknown and
malformed applications and conversations, platform conversations, good, expired, forged and
mistyped tokens, resumes), ``message`` variants (good ones, missing and mistyped fields,
numbers where strings are expected, texts around the limit, unicode, lone surrogates),
``ping``, unknown types, text that is not JSON or not an object, JSON nested deeper than the
interpreter's recursion limit, integers over Python's digit limit, binary frames, frames over
the size limit. After each frame a ``ping`` is sent, so the answer to the frame is everything
before the matching ``pong``.

A small model of the protocol says what each frame must get. The properties:

- every frame is answered: a bad frame with one ``error`` frame carrying a ``code`` from the
  documented table (and a ``message``), a good one with ``pong`` / ``ready`` (+ the resume) /
  ``ack`` + ``typing``;
- the socket stays open, except for the documented closes: 4401 after ``unauthorized``, 4403
  after ``forbidden_origin``, 1009 for a frame over the limit;
- every acked message is produced, exactly once, as a valid event of the session's application
  and conversation, with the frame's id, text and sender; nothing else is produced;
- nothing is logged at ERROR (an exception escaping the handler is logged by aiohttp).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import hypothesis
from hypothesis import given
from hypothesis import strategies as st

from parley.web.auth import make_user_token
from tests.fuzz.conftest import (
    ALLOWED_ORIGIN,
    ARCHIVED,
    BODY_LIMIT,
    ID,
    MAX_TEXT,
    WS_POLICIES,
    WS_SECRET,
    Example,
    any_texts,
    chars,
    deep_values,
    fuzz_settings,
    huge_int_literals,
    ids,
    json_values,
    long_ids,
    near_ids,
    near_limit_text,
    one_in,
    server_stack,
    valid_texts,
)

FRAME_LIMIT = BODY_LIMIT  # 4 x PARLEY_MAX_TEXT_BYTES + 4 KiB, like the webhook body limit
PLATFORM_PREFIXES = ("telegram:", "whatsapp:", "slack:")
#: the documented error codes (docs/websocket-protocol.md, "Error codes")
ERROR_CODES = frozenset({
    "invalid_json", "invalid_frame", "unknown_type", "missing_field", "invalid_field", "too_large",
    "unknown_application", "not_ready", "unauthorized", "forbidden_origin", "forbidden_conversation",
    "rate_limited", "idle_timeout", "unavailable",
})
HELLO_FIELD_CODES = frozenset({"missing_field", "invalid_field"})
MESSAGE_FIELD_CODES = frozenset({"missing_field", "invalid_field", "too_large"})
RECEIVE_TIMEOUT_S = 5.0


# --- frames -------------------------------------------------------------------------------------
@dataclass
class Frame:
    """One client frame: a JSON object (``payload``), or raw ``text`` / ``binary``."""

    label: str
    payload: dict[str, Any] | None = None
    text: str | None = None
    binary: bytes | None = None
    #: the user a ``token`` in ``payload`` vouches for (a freshly minted, valid token), else None
    token_user: str | None = None

    def wire(self) -> str | bytes:
        if self.binary is not None:
            return self.binary
        if self.text is not None:
            return self.text
        return json.dumps(self.payload)


@dataclass
class Connection:
    origin: str | None
    query_token: str | None
    query_token_user: str | None
    frames: list[Frame]


def mint(user: str, application_id: str = "private", secret: str = WS_SECRET, ttl_s: float = 300, now: float | None = None) -> str:
    return make_user_token(secret, application_id, user, ttl_s, now=now)


user_ids = st.text(
    st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=256
).filter(lambda u: u.strip() != "" and "\x7f" not in u)


valid_tokens = st.builds(lambda user: (mint(user), user), user_ids)


@st.composite
def tokens(draw: st.DrawFn) -> tuple[Any, str | None]:
    """(a token value, the user it vouches for at application ``private``, or None)."""
    kind = draw(st.sampled_from(
        ["valid", "valid", "valid", "expired", "other_app", "wrong_secret", "tampered", "garbage", "typed", "empty", "long"]
    ))
    user = draw(user_ids)
    if kind == "valid":
        return mint(user), user
    if kind == "expired":
        return mint(user, now=time.time() - 3600), None
    if kind == "other_app":
        return mint(user, application_id=draw(st.sampled_from(["demo", "strict", "Private"]))), None
    if kind == "wrong_secret":
        return mint(user, secret="not-the-secret"), None
    if kind == "tampered":
        token = mint(user)
        at = draw(st.integers(0, len(token) - 1))
        replacement = draw(st.sampled_from("AbZ09_-.=+/ é"))
        tampered = token[:at] + replacement + token[at + 1:]
        return tampered, (user if tampered == token else None)
    if kind == "garbage":
        return draw(st.text(max_size=60)), None
    if kind == "typed":
        return draw(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.text(max_size=3), max_size=2),
                              st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))), None
    if kind == "empty":
        return "", None
    return "a" * draw(st.integers(4090, 4200)) + "." + "b", None


id_values = st.one_of(ids, ids, long_ids, st.integers(0, 10**40), near_ids, near_ids, st.integers(-(10**6), -1),
                      st.floats(allow_nan=False), st.booleans(), st.lists(ids, max_size=2), st.text(max_size=10))
conversation_values = st.one_of(
    id_values,
    st.builds(lambda p, i: p + i, st.sampled_from(PLATFORM_PREFIXES), ids),
)
application_values = st.one_of(st.sampled_from(sorted(WS_POLICIES)), st.sampled_from(sorted(WS_POLICIES)), id_values)
text_values = st.one_of(
    valid_texts, valid_texts, any_texts, near_limit_text(),
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.text(max_size=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
sender_values = st.one_of(st.text(chars, max_size=20), st.text(chars, min_size=250, max_size=260), any_texts,
                          st.integers(), st.booleans(), st.lists(st.integers(), max_size=2))
extras = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in (
    "type", "application_id", "conversation_id", "token", "last_message_id", "resume_from", "id", "text", "sender",
    "history",
)), json_values, max_size=2)
MISSING = object()


def _put(payload: dict[str, Any], name: str, value: Any) -> None:
    if value is not MISSING:
        payload[name] = value


@st.composite
def hello_frames(draw: st.DrawFn, good: bool = False) -> Frame:
    payload: dict[str, Any] = {"type": "hello"}
    token_user = None
    if good:
        application_id = draw(st.sampled_from(sorted(WS_POLICIES)))
        payload["application_id"] = application_id
        payload["conversation_id"] = draw(ids.filter(lambda c: not c.startswith(PLATFORM_PREFIXES)))
        if application_id == "private":
            payload["token"], token_user = draw(valid_tokens)
    else:
        _put(payload, "application_id", draw(st.one_of(application_values, st.just(MISSING), st.none())))
        _put(payload, "conversation_id", draw(st.one_of(conversation_values, st.just(MISSING), st.none())))
        if draw(st.booleans()):
            payload["token"], token_user = draw(st.one_of(tokens(), st.tuples(st.none(), st.none())))
    resume = draw(st.sampled_from([None, None, "last_message_id", "resume_from", "both"]))
    if resume is not None:
        value = draw(st.one_of(st.just(ARCHIVED[0]["_id"]), ids, id_values if not good else ids, st.none()))
        if resume == "both":
            payload["last_message_id"] = value
            payload["resume_from"] = draw(id_values)
        else:
            payload[resume] = value
    history = st.sampled_from([MISSING, MISSING, True, False, None])
    _put(payload, "history", draw(history if good else st.one_of(history, json_values)))
    payload.update(draw(extras))
    return Frame("hello", payload=payload, token_user=token_user)


@st.composite
def message_frames(draw: st.DrawFn, good: bool = False) -> Frame:
    payload: dict[str, Any] = {"type": "message"}
    if good:
        payload["id"] = draw(st.one_of(ids, st.integers(0, 10**20)))
        payload["text"] = draw(valid_texts)
        if draw(st.booleans()):
            payload["sender"] = draw(st.text(chars, max_size=256))
    else:
        _put(payload, "id", draw(st.one_of(id_values, st.just(MISSING), st.none())))
        _put(payload, "text", draw(st.one_of(text_values, st.just(MISSING), st.none())))
        _put(payload, "sender", draw(st.one_of(sender_values, st.just(MISSING), st.none())))
    payload.update(draw(extras))
    return Frame("message", payload=payload)


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


raw_frames = st.one_of(
    st.builds(lambda t: Frame("not_json", text=t), st.text(max_size=40).filter(_not_json)),
    st.builds(lambda t: Frame("not_json", text=t), st.sampled_from([
        "{", "{not json", '{"type": "ping"', "[1, 2", "NaN(", "{'type': 'ping'}", '{"type": "ping"}}', "\ufeff{}",
    ])),
    st.builds(lambda v: Frame("not_object", text=json.dumps(v)), json_values.filter(lambda v: not isinstance(v, dict))),
    st.builds(lambda t: Frame("deep", text=t), deep_values),
    st.builds(lambda n: Frame("huge_int", text=n), huge_int_literals),
    st.builds(lambda n, w: Frame("huge_int", text=w % n), huge_int_literals, st.sampled_from([
        '{"type": "message", "id": %s, "text": "hi"}', '{"type": "hello", "application_id": "demo", "conversation_id": %s}',
        '[%s]',
    ])),
    st.builds(lambda s: Frame("surrogate", text='{"type": "message", "id": "m1", "text": "a' + s + 'b"}'),
              st.sampled_from(["\\ud800", "\\udfff", "\\udc80\\ud800"])),
    st.builds(lambda t: Frame("numbers", text=t), st.sampled_from([
        '{"type": 1}', '{"type": "hello", "application_id": 1e400, "conversation_id": -0}',
        '{"type": "message", "id": 1.0, "text": 1e999}', '{"type": "message", "id": 12, "text": -Infinity}',
        '{"type": "hello", "application_id": "demo", "conversation_id": 0}', '{"type": "ping", "type": "hello"}',
    ])),
)
binary_frames = st.builds(lambda b: Frame("binary", binary=b), st.binary(max_size=64))
oversized_frames = st.one_of(
    st.builds(lambda n: Frame("oversized", text="x" * n), st.integers(FRAME_LIMIT + 1, FRAME_LIMIT + 64)),
    st.builds(lambda n: Frame("oversized", text=json.dumps({"type": "message", "id": "m1", "text": "é" * n})),
              st.integers(FRAME_LIMIT // 2, FRAME_LIMIT // 2 + 64)),
)
other_frames = st.one_of(
    st.builds(lambda e: Frame("ping", payload={"type": "ping", **e}), extras),
    st.builds(lambda t, e: Frame("unknown", payload={"type": t, **e}),
              json_values.filter(lambda t: t not in ("hello", "message", "ping")), extras),
    st.builds(lambda e: Frame("unknown", payload=e), extras),  # no type at all
)
frames = st.one_of(
    hello_frames(good=True), hello_frames(), message_frames(good=True), message_frames(good=True), message_frames(),
    other_frames, raw_frames, binary_frames,
)


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    origin = draw(st.sampled_from([None, None, None, ALLOWED_ORIGIN, ALLOWED_ORIGIN.upper() + "/", "https://evil.example", "null"]))
    query_token, query_user = None, None
    if draw(one_in(6)):
        query_token, query_user = draw(tokens())
        if not isinstance(query_token, str) or not query_token:
            query_token, query_user = None, None
    sequence = draw(st.lists(frames, min_size=1, max_size=8))
    if not draw(one_in(4)):
        sequence.insert(0, draw(hello_frames(good=True)))
    if draw(one_in(10)):
        sequence.append(draw(oversized_frames))
    return Connection(origin, query_token, query_user, sequence)


# --- the model ----------------------------------------------------------------------------------
@dataclass
class Session:
    application_id: str | None = None
    conversation_id: str | None = None
    user_id: str | None = None


@dataclass
class Expect:
    """What a frame must get: ``kind`` is pong / ready / ack / error / close."""

    kind: str
    codes: frozenset[str] = frozenset()
    close_code: int | None = None
    session: Session | None = None  # ready: the session after it
    resume_id: str | None = None
    history: bool = False  # ready: the conversation so far follows (when no resume_id)
    message: dict[str, Any] = field(default_factory=dict)  # ack: what is produced


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= c <= "\udfff" for c in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _id(value: Any) -> str | None:
    """The id a field value stands for (the documented pattern; integers are read as digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and ID.fullmatch(value) else None


def _origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    def normal(o: str) -> str:
        return o.strip().rstrip("/").lower()

    return origin is None or not allowed or any(a == "*" or normal(a) == normal(origin) for a in allowed)


#: who each conversation belongs to: (application, conversation) -> user id, None for anonymous
Owners = dict[tuple[str, str], "str | None"]


def judge(frame: Frame, session: Session, connection: Connection, owners: Owners) -> Expect:
    if frame.binary is not None:
        return Expect("error", frozenset({"invalid_frame"}))
    wire = frame.wire()
    assert isinstance(wire, str)
    if len(wire.encode("utf-8")) > FRAME_LIMIT:
        return Expect("close", close_code=1009)
    try:
        payload = json.loads(wire)
    except (ValueError, RecursionError):
        return Expect("error", frozenset({"invalid_json"}))
    if not isinstance(payload, dict) or _has_surrogate(payload):
        return Expect("error", frozenset({"invalid_json"}))
    kind = payload.get("type")
    if kind == "ping":
        return Expect("pong")
    if kind == "hello":
        return judge_hello(payload, frame, connection, owners)
    if kind == "message":
        return judge_message(payload, session, owners)
    return Expect("error", frozenset({"unknown_type"}))


def judge_hello(payload: dict[str, Any], frame: Frame, connection: Connection, owners: Owners) -> Expect:
    refused = Expect("error", HELLO_FIELD_CODES)
    application_id, conversation_id = _id(payload.get("application_id")), _id(payload.get("conversation_id"))
    if application_id is None or conversation_id is None:
        return refused
    resume_id = None
    for name in ("last_message_id", "resume_from"):
        if payload.get(name) is not None:
            resume_id = _id(payload[name])
            if resume_id is None:
                return refused
            break
    history = payload.get("history")
    if history is not None and not isinstance(history, bool):
        return refused
    if conversation_id.startswith(PLATFORM_PREFIXES):
        return Expect("error", frozenset({"forbidden_conversation"}))
    policy = WS_POLICIES.get(application_id)
    if policy is None:
        return Expect("error", frozenset({"unknown_application"}))
    if not _origin_allowed(connection.origin, policy["allowed_origins"]):
        return Expect("error", frozenset({"forbidden_origin"}), close_code=4403)
    token, user = payload.get("token"), frame.token_user
    if token is None:
        token, user = connection.query_token, connection.query_token_user
    if token is None:
        if not policy["allow_anonymous"]:
            return Expect("error", frozenset({"unauthorized"}), close_code=4401)
    elif application_id != "private" or user is None:
        return Expect("error", frozenset({"unauthorized"}), close_code=4401)
    key = (application_id, conversation_id)
    if key in owners and owners[key] != user:  # another identity sent its first message
        return Expect("error", frozenset({"forbidden_conversation"}))
    return Expect(
        "ready", session=Session(application_id, conversation_id, user), resume_id=resume_id, history=history is True
    )


def judge_message(payload: dict[str, Any], session: Session, owners: Owners) -> Expect:
    if session.application_id is None:
        return Expect("error", frozenset({"not_ready"}))
    client_id = _id(payload.get("id"))
    text = payload.get("text")
    if client_id is None or not isinstance(text, str) or not text.strip():
        return Expect("error", MESSAGE_FIELD_CODES)
    if len(text.encode("utf-8")) > MAX_TEXT:
        return Expect("error", frozenset({"too_large"}))
    sender = payload.get("sender")
    if session.user_id is not None:
        sender = session.user_id
    elif sender is None:
        sender = ""
    elif not isinstance(sender, str) or len(sender) > 256:
        return Expect("error", frozenset({"invalid_field"}))
    key = (session.application_id, session.conversation_id or "")
    if key in owners and owners[key] != session.user_id:  # claimed meanwhile: the socket leaves it
        return Expect("error", frozenset({"forbidden_conversation"}), session=Session())
    return Expect("ack", message={
        "application_id": session.application_id, "conversation_id": session.conversation_id,
        "client_message_id": client_id, "text": text, "sender": sender,
    })


# --- the exchange -------------------------------------------------------------------------------
CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


async def exchange(ws: aiohttp.ClientWebSocketResponse, frame: Frame, pongs: int) -> tuple[list[dict[str, Any]], int | None]:
    """Send ``frame``, then a ``ping``; the frames received before the last expected ``pong``,
    and the close code if the server closed the socket instead."""
    wire = frame.wire()
    if isinstance(wire, bytes):
        await ws.send_bytes(wire)
    else:
        await ws.send_str(wire)
    try:
        await ws.send_str('{"type": "ping"}')
    except ConnectionError:
        pass  # the server closed the socket: its close frame is next
    received: list[dict[str, Any]] = []
    seen = 0
    while True:
        msg = await ws.receive(timeout=RECEIVE_TIMEOUT_S)
        if msg.type in CLOSED:
            return received, ws.close_code
        assert msg.type == aiohttp.WSMsgType.TEXT, f"unexpected {msg.type} {msg.data!r}"
        data = json.loads(msg.data)
        assert isinstance(data, dict), data
        if data == {"type": "pong"}:
            seen += 1
            if seen == pongs:
                return received, None
        received.append(data)


def check_error(frame: dict[str, Any], context: str) -> None:
    assert frame.get("type") == "error", context
    assert frame.get("code") in ERROR_CODES, context
    assert isinstance(frame.get("message"), str) and frame["message"], context


async def run_connection(example: Example, connection: Connection) -> None:
    with server_stack():
        await _run_connection(example, connection)


async def _run_connection(example: Example, connection: Connection) -> None:
    example.reset()
    headers = {"Origin": connection.origin} if connection.origin is not None else {}
    params = {"token": connection.query_token} if connection.query_token is not None else {}
    session = Session()
    owners: Owners = {}
    expected_events: list[dict[str, Any]] = []
    acked: list[str] = []
    async with example.client.ws_connect("/ws", headers=headers, params=params, autoping=True) as ws:
        for index, frame in enumerate(connection.frames):
            expect = judge(frame, session, connection, owners)
            hypothesis.event(f"websocket: {frame.label} -> {expect.kind}")
            context = f"frame {index} {frame.label} {str(frame.wire())[:300]!r} expecting {expect}"
            received, close_code = await exchange(ws, frame, 2 if expect.kind == "pong" else 1)
            context += f", got {received!r} close {close_code}"
            if expect.kind == "close":
                assert received == [] and close_code == expect.close_code, context
                break
            if expect.close_code is not None:
                [error] = received
                check_error(error, context)
                assert error["code"] in expect.codes, context
                assert close_code == expect.close_code, context
                break
            assert close_code is None, f"the socket was closed: {context}"
            if expect.kind == "pong":
                assert received == [{"type": "pong"}], context
            elif expect.kind == "error":
                [error] = received
                check_error(error, context)
                assert error["code"] in expect.codes, context
                if expect.session is not None:  # the refusal ended the session
                    session = expect.session
            elif expect.kind == "ready":
                assert expect.session is not None
                session = expect.session
                ready, *rest = received
                assert ready == {
                    "type": "ready", "application_id": session.application_id,
                    "conversation_id": session.conversation_id, "user_id": session.user_id,
                }, context
                if expect.resume_id is None and not expect.history:
                    assert rest == [], context
                else:
                    found = expect.resume_id == ARCHIVED[0]["_id"]
                    archived = ARCHIVED[1:] if found else ARCHIVED
                    resume, *messages = rest
                    assert resume == {
                        "type": "resume", "last_message_id": expect.resume_id, "found": found,
                        "count": len(archived), "truncated": False,
                    }, context
                    assert [m["message_id"] for m in messages] == [d["_id"] for d in archived], context
            else:
                ack, typing = received
                assert ack["type"] == "ack" and ack["id"] == expect.message["client_message_id"], context
                assert isinstance(ack["event_id"], str), context
                assert typing == {"type": "typing", "state": "started", "in_reply_to": ack["event_id"]}, context
                acked.append(ack["event_id"])
                expected_events.append(expect.message)
                assert session.application_id is not None and session.conversation_id is not None
                owners.setdefault((session.application_id, session.conversation_id), session.user_id)
    produced = example.produced.events
    example.assert_clean()
    assert [e.event_id for e in produced] == acked
    got = [
        {"application_id": e.application_id, "conversation_id": e.conversation_id,
         "client_message_id": e.client_message_id, "text": e.text, "sender": e.sender}
        for e in produced
    ]
    assert got == expected_events
    assert all(e.channel == "websocket" for e in produced)


@fuzz_settings(120)
@given(connection=connections())
async def test_websocket_frames(example: Example, connection: Connection) -> None:
    await run_connection(example, connection)


@fuzz_settings(60)
@given(sequence=st.lists(st.one_of(raw_frames, binary_frames, message_frames(), other_frames), min_size=1, max_size=12))
async def test_websocket_garbage_after_hello(example: Example, sequence: list[Frame]) -> None:
    """Malformed frames only, on a session that has said hello: every one gets its error, the
    session survives them all and still takes a good message at the end."""
    hello = Frame("hello", payload={"type": "hello", "application_id": "demo", "conversation_id": "c-fuzz"})
    last = Frame("message", payload={"type": "message", "id": "m-last", "text": "still here"})
    await run_connection(example, Connection(None, None, None, [hello, *sequence, last]))
    assert example.produced.events[-1].text == "still here"
