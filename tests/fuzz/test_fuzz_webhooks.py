"""Property-based fuzzing of the webhooks, ``/v1/webhooks/{channel}/{application_id}``.

For every channel (generic signed and unsigned, telegram, whatsapp, slack) hypothesis sends
bodies (valid payloads, the same with mutated fields, random JSON, JSON nested deeper than the
interpreter's recursion limit, integers over Python's digit limit, lone surrogates, random and
non-UTF-8 bytes, bodies around the size limit) with header sets (correct signatures, random hex,
wrong secrets, timestamps now / near the window's edges / stale / absurd, missing headers,
unicode, content types and encodings). On every example:

- the status is below 500 and no error is logged (nothing escaped a handler);
- a 4xx is a JSON ``{"type": "error", "code", "message"}`` and nothing was produced;
- every produced event is a valid ``IncomingEvent`` (``ProducedRecorder``), of the channel and
  application of the URL, and the answer lists exactly the produced event ids;
- a correctly signed, valid payload is accepted and produces exactly the messages it carries;
  a forged, stale or unsigned one (where the application signs) is 401 and produces nothing.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import hypothesis
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from tests.fuzz.conftest import (
    BODY_LIMIT,
    CHANNEL_GENERIC_SECRET,
    GENERIC_SECRET,
    ID,
    MAX_TEXT,
    SLACK_SIGNING_SECRET,
    TELEGRAM_SECRET,
    WHATSAPP_APP_SECRET,
    WHATSAPP_VERIFY_TOKEN,
    Example,
    chars,
    deep_values,
    dumps,
    fuzz_settings,
    header_bytes,
    huge_int_literals,
    ids,
    json_values,
    long_ids,
    near_ids,
    one_in,
    raw_request,
    scalars,
    server_stack,
    settle,
    tricky_ids,
    valid_texts,
)


# --- cases --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """A message an accepted request must produce."""

    conversation_id: str
    client_message_id: str
    text: str
    sender: str


@dataclass
class Case:
    channel: str
    application_id: str
    body: bytes
    headers: dict[str, str]
    #: "accept": 2xx producing exactly ``messages`` (or answering ``challenge``);
    #: "refuse": 401 (forged / stale / unsigned); "too_large": 413; "any": no 5xx
    outcome: str = "any"
    messages: tuple[Expected, ...] = ()
    challenge: str | None = None
    path_id: str | None = None  # a fuzzed application id segment instead of ``application_id``

    @property
    def corrupt_encoding(self) -> bool:
        """``Content-Encoding: gzip|deflate`` over a body that is not: aiohttp's parser may answer
        ``400 text/plain`` itself, before any handler runs, and closes the connection."""
        return bool(self.body) and self.headers.get("Content-Encoding") in ("gzip", "deflate")

    @property
    def url(self) -> URL:
        segment = self.path_id if self.path_id is not None else self.application_id
        return URL.build(path=f"/v1/webhooks/{self.channel}/{segment}")


def _hmac_hex(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


hex64 = st.text("0123456789abcdef", min_size=64, max_size=64)
#: header values the HTTP client can send (no control characters), unicode included
header_texts = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=40
).map(str.strip)
_SIGNED_HEADERS = {
    "x-parley-signature", "x-telegram-bot-api-secret-token", "x-hub-signature-256", "x-slack-signature",
    "x-slack-request-timestamp",
}
header_names = st.from_regex(r"X-[A-Za-z0-9-]{1,20}", fullmatch=True).filter(lambda n: n.lower() not in _SIGNED_HEADERS)
content_types = st.sampled_from([
    None, "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz", "application/octet-stream", "ünïcode/type", "",
])
#: (header value, whether the body can still be read as sent)
content_encodings = st.sampled_from([
    (None, True), (None, True), (None, True), (None, True), ("identity", True), ("x-unknown", True),
    ("gzip", False), ("deflate", False),
])


# --- mutations ----------------------------------------------------------------------------------
DEEP = "\x00__deep__\x00"
HUGE_INT = "\x00__huge_int__\x00"


def _containers(value: Any) -> list[Any]:
    """Every dict and list inside ``value`` (``value`` included), without recursion."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (dict, list)):
            found.append(item)
            stack.extend(item.values() if isinstance(item, dict) else item)
    return found


wrong_values = st.one_of(
    json_values,
    tricky_ids,
    scalars,
    st.just(DEEP),
    st.just(HUGE_INT),
    st.integers(MAX_TEXT - 2, BODY_LIMIT).map(lambda n: "x" * n),
    st.sampled_from([True, False, 0, -1, 1.5, 1e308, "", " ", [], {}, None, "\ud800", "😀" * 70]),
)


@st.composite
def mutated(draw: st.DrawFn, payload: dict[str, Any]) -> Any:
    value = copy.deepcopy(payload)
    for _ in range(draw(st.integers(1, 3))):
        container = draw(st.sampled_from(_containers(value)))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if isinstance(container, dict):
            keys = sorted(container)
            if action == "add" or not keys:
                container[draw(st.text(max_size=10))] = draw(wrong_values)
            elif action == "delete":
                del container[draw(st.sampled_from(keys))]
            else:
                container[draw(st.sampled_from(keys))] = draw(wrong_values)
        else:
            if action == "add" or not container:
                container.append(draw(wrong_values))
            elif action == "delete":
                container.pop(draw(st.integers(0, len(container) - 1)))
            else:
                container[draw(st.integers(0, len(container) - 1))] = draw(wrong_values)
    if draw(one_in(10)):
        return draw(wrong_values)  # the whole body replaced
    return value


def render(value: Any, deep: str, huge: str) -> bytes:
    """JSON bytes of ``value``, with the sentinels replaced by raw JSON text."""
    text = dumps(value)
    text = text.replace(json.dumps(DEEP), deep).replace(json.dumps(HUGE_INT), huge)
    return text.encode("utf-8")


@st.composite
def bodies(draw: st.DrawFn, valid: st.SearchStrategy[tuple[Any, Any]]) -> tuple[bytes, Any]:
    """(body, what the valid payload expects, or None when the body is not a valid payload)."""
    kind = draw(st.sampled_from(
        ["valid", "valid", "valid", "mutated", "mutated", "mutated", "json", "deep", "huge_int",
         "bytes", "non_utf8", "size"]
    ))
    deep, huge = draw(deep_values), draw(huge_int_literals)
    if kind == "valid":
        payload, expected = draw(valid)
        return render(payload, deep, huge), expected
    if kind == "mutated":
        payload, _ = draw(valid)
        return render(draw(mutated(payload)), deep, huge), None
    if kind == "json":
        return render(draw(json_values), deep, huge), None
    if kind == "deep":
        return deep.encode(), None
    if kind == "huge_int":
        template = draw(st.sampled_from(['{"x": %s}', "[%s]", "%s", '{"update_id": %s}', '{"id": %s, "text": "hi"}']))
        return (template % huge).encode(), None
    if kind == "bytes":
        return draw(st.binary(max_size=200)), None
    if kind == "non_utf8":
        payload, _ = draw(valid)
        raw = render(payload, deep, huge)
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xfe\xff"])) + raw[at:], None
    # size: a JSON string body just under, at or just over the limit
    size = BODY_LIMIT + draw(st.integers(-3, 3))
    return b'"' + b"x" * (size - 2) + b'"', None


def common_headers(draw: st.DrawFn) -> tuple[dict[str, str], bool]:
    """Random extra headers, content type and encoding; whether the body arrives as sent."""
    headers = draw(st.dictionaries(header_names, header_texts, max_size=3))
    content_type = draw(content_types)
    if content_type is not None:
        headers["Content-Type"] = content_type
    encoding, readable = draw(content_encodings)
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return headers, readable


def finish(case: Case, valid_payload: Any, authentic: bool, readable: bool, draw: st.DrawFn) -> Case:
    """Set ``case.outcome`` from what the request is."""
    if draw(one_in(20)):
        # a fuzzed application id in the path (an unknown or malformed one)
        case.path_id = draw(st.one_of(
            st.text(chars, min_size=1, max_size=30), st.text("abcxyz09:-_.@", min_size=1, max_size=130),
        # (aiohttp's router itself answers a segment with "/", "{" or "}", or "." / "..")
        ).filter(lambda s: not set(s) & set("/{}") and s not in (".", "..") and s.strip() == s))
        if case.path_id != case.application_id:
            return case
    if not readable and case.body:
        return case
    if len(case.body) > BODY_LIMIT:
        case.outcome = "too_large"
    elif not authentic:
        case.outcome = "refuse"
    elif valid_payload is not None:
        case.outcome = "accept"
        if isinstance(valid_payload, str):
            case.challenge = valid_payload
        else:
            case.messages = tuple(valid_payload)
    return case


# --- generic ------------------------------------------------------------------------------------
clean_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              st.text(chars, max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(chars, max_size=6), children, max_size=3)),
    max_leaves=6,
)


@st.composite
def generic_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], list[Expected]]:
    conversation = draw(st.one_of(ids, long_ids, near_ids))
    message_id = draw(st.one_of(ids, st.integers(0, 10**30), near_ids))
    text = draw(valid_texts)
    payload: dict[str, Any] = {"conversation_id": conversation, "id": message_id, "text": text}
    sender = draw(st.one_of(st.none(), st.text(chars, max_size=256)))
    if sender is not None:
        payload["sender"] = sender
    extra = draw(st.dictionaries(st.text(chars, max_size=8), clean_json, max_size=3))
    payload = {**extra, **payload}
    if not ID.fullmatch(conversation) or not ID.fullmatch(str(message_id)):
        return payload, None  # refused (400): not a valid payload after all
    return payload, [Expected(conversation, str(message_id), text, sender or "")]


def generic_signature(secret: str, body: bytes, stamp: str) -> str:
    return f"t={stamp},v1={_hmac_hex(secret, stamp.encode() + b'.' + body)}"


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[str, bool]:
    """(a signature timestamp, whether it is within the five-minute window)."""
    now = int(time.time())
    kind = draw(st.sampled_from(["now", "now", "edge", "stale", "far", "huge", "text", "empty"]))
    if kind == "now":
        return str(now), True
    if kind == "edge":
        return str(now + draw(st.integers(-290, 290))), True
    if kind == "stale":
        return str(now + draw(st.sampled_from([-1, 1])) * draw(st.integers(310, 10**9))), False
    if kind == "far":
        return str(draw(st.sampled_from([-1, 1])) * draw(st.integers(10**12, 10**40))), False
    if kind == "huge":
        return draw(st.sampled_from(["", "-"])) + "9" * draw(st.integers(309, 2000)), False
    if kind == "text":
        return draw(header_texts.filter(lambda s: not s.strip().lstrip("+-").isdigit())), False
    return "", False


@st.composite
def generic_cases(draw: st.DrawFn) -> Case:
    application_id = draw(st.sampled_from(["plain", "signed", "chsigned"]))
    secret = {"plain": None, "signed": GENERIC_SECRET, "chsigned": CHANNEL_GENERIC_SECRET}[application_id]
    body, valid = draw(bodies(generic_payloads()))
    headers, readable = common_headers(draw)
    stamp, in_window = draw(timestamps())
    mode = draw(st.sampled_from(
        ["good", "good", "good", "rotated", "random_hex", "wrong_secret", "missing", "garbage", "no_v1", "v1_only"]
    ))
    signature: str | None
    if mode in ("good", "rotated"):
        signature = generic_signature(secret or "unused", body, stamp)
        if mode == "rotated":
            other = f"v1={draw(hex64)}"
            signature = f"{signature},{other}" if draw(st.booleans()) else f"t={stamp},{other},{signature.split(',')[1]}"
    elif mode == "random_hex":
        signature = f"t={stamp},v1={draw(hex64)}"
    elif mode == "wrong_secret":
        signature = generic_signature("not-" + (secret or "x"), body, stamp)
    elif mode == "garbage":
        signature = draw(header_texts)
    elif mode == "no_v1":
        signature = f"t={stamp}"
    elif mode == "v1_only":
        signature = f"v1={_hmac_hex(secret or 'x', body)}"
    else:
        signature = None
    if signature is not None:
        headers[draw(st.sampled_from(["X-Parley-Signature", "x-parley-signature"]))] = signature
    authentic = secret is None or (mode in ("good", "rotated") and in_window)
    case = Case("generic", application_id, body, headers)
    return finish(case, valid, authentic, readable, draw)


# --- telegram -----------------------------------------------------------------------------------
@st.composite
def telegram_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], list[Expected]]:
    update_id = draw(st.integers(0, 2**40))
    kind = draw(st.sampled_from(["text", "text", "caption", "photo_only", "ignored", "no_text"]))
    if kind == "ignored":
        other = draw(st.sampled_from(["edited_message", "channel_post", "callback_query", "my_chat_member"]))
        return {"update_id": update_id, other: draw(clean_json)}, []
    chat_id = draw(st.integers(-(10**13), 10**13))
    message_id = draw(st.integers(-(2**63), 2**63))
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": draw(st.integers(0, 2**33)),
        "chat": {"id": chat_id, "type": draw(st.sampled_from(["private", "group", "supergroup"]))},
    }
    sender = ""
    if draw(st.booleans()):
        from_id = draw(st.integers(1, 10**12))
        message["from"] = {"id": from_id, "is_bot": False, "first_name": draw(st.text(chars, max_size=20))}
        sender = str(from_id)
    text = draw(valid_texts)
    if kind == "text":
        message["text"] = text
    elif kind in ("caption", "photo_only"):
        if kind == "caption":
            message["caption"] = text
        else:
            text = ""  # a photo alone is taken, with no text
        message["photo"] = [{"file_id": draw(ids), "file_size": 100}, {"file_id": draw(ids), "file_size": 900}]
    else:
        message["sticker"] = {"file_id": draw(ids)}
    payload = {"update_id": update_id, "message": message}
    if kind == "no_text":
        return payload, []
    return payload, [Expected(f"telegram:{chat_id}", str(message_id), text, sender)]


@st.composite
def telegram_cases(draw: st.DrawFn) -> Case:
    application_id = draw(st.sampled_from(["tg"] * 6 + ["tg-nosecret", "plain"]))
    body, valid = draw(bodies(telegram_payloads()))
    headers, readable = common_headers(draw)
    mode = draw(st.sampled_from(["good", "good", "good", "wrong", "missing", "empty", "prefix"]))
    name = draw(st.sampled_from(["X-Telegram-Bot-Api-Secret-Token", "x-telegram-bot-api-secret-token"]))
    value = {
        "good": TELEGRAM_SECRET,
        "wrong": draw(header_texts.filter(lambda s: s != TELEGRAM_SECRET)),
        "missing": None,
        "empty": "",
        "prefix": TELEGRAM_SECRET[:-1],
    }[mode]
    if value is not None:
        headers[name] = value
    case = Case("telegram", application_id, body, headers)
    if application_id != "tg":
        # 404 channel_not_configured / 401 not_configured: never accepted
        return finish(case, None, False, readable, draw) if application_id == "tg-nosecret" else case
    return finish(case, valid, mode == "good", readable, draw)


# --- whatsapp -----------------------------------------------------------------------------------
wamids = st.one_of(
    st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", min_size=8, max_size=60).map(
        lambda s: "wamid." + s
    ),
    st.text(chars, min_size=1, max_size=80),
)
phone_numbers = st.from_regex(r"[0-9]{1,32}", fullmatch=True)


@st.composite
def whatsapp_messages(draw: st.DrawFn) -> tuple[dict[str, Any], Expected | None]:
    number, wamid, text = draw(phone_numbers), draw(wamids), draw(valid_texts)
    message: dict[str, Any] = {"from": number, "id": wamid, "timestamp": str(draw(st.integers(0, 2**33)))}
    kind = draw(st.sampled_from(["text", "text", "image", "document", "button", "interactive", "reaction"]))
    message["type"] = kind
    if kind == "text":
        message["text"] = {"body": text}
    elif kind in ("image", "document"):
        message[kind] = {"id": draw(ids), "mime_type": "image/jpeg", "sha256": draw(hex64), "caption": text}
    elif kind == "button":
        message["button"] = {"payload": "p", "text": text}
    elif kind == "interactive":
        reply = draw(st.sampled_from(["button_reply", "list_reply"]))
        message["interactive"] = {"type": reply, reply: {"id": draw(ids), "title": text}}
    else:
        message["reaction"] = {"message_id": "wamid.x", "emoji": "👍"}
        return message, None
    return message, Expected("whatsapp:" + number, wamid, text, number)


@st.composite
def whatsapp_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], list[Expected]]:
    if draw(one_in(10)):
        return {"object": draw(st.sampled_from(["page", "instagram", "user"])), "entry": []}, []
    expected: list[Expected] = []
    entries = []
    for _ in range(draw(st.integers(1, 2))):
        changes = []
        for _ in range(draw(st.integers(1, 2))):
            drawn = draw(st.lists(whatsapp_messages(), max_size=3))
            messages = [m for m, _ in drawn]
            expected.extend(e for _, e in drawn if e is not None)
            statuses = [
                {"id": draw(wamids), "status": draw(st.sampled_from(["sent", "delivered", "read", "failed"])),
                 "timestamp": str(draw(st.integers(0, 2**33))), "recipient_id": draw(phone_numbers)}
                for _ in range(draw(st.integers(0, 2)))
            ]
            value: dict[str, Any] = {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            }
            if messages:
                value["contacts"] = [{"profile": {"name": "Kerry"}, "wa_id": m["from"]} for m in messages]
                value["messages"] = messages
            if statuses:
                value["statuses"] = statuses
            changes.append({"value": value, "field": "messages"})
        entries.append({"id": "102290129340398", "changes": changes})
    return {"object": "whatsapp_business_account", "entry": entries}, expected


@st.composite
def whatsapp_cases(draw: st.DrawFn) -> Case:
    application_id = draw(st.sampled_from(["wa"] * 6 + ["wa-nosecret", "broken"]))
    body, valid = draw(bodies(whatsapp_payloads()))
    headers, readable = common_headers(draw)
    good = "sha256=" + _hmac_hex(WHATSAPP_APP_SECRET, body)
    mode = draw(st.sampled_from(["good", "good", "good", "upper", "random_hex", "wrong_secret", "sha1", "missing", "garbage"]))
    value = {
        "good": good,
        "upper": "sha256=" + good[7:].upper(),
        "random_hex": "sha256=" + draw(hex64),
        "wrong_secret": "sha256=" + _hmac_hex("wrong-app-secret", body),
        "sha1": "sha1=" + hashlib.sha1(body).hexdigest(),
        "missing": None,
        "garbage": draw(header_texts),
    }[mode]
    if value is not None:
        headers[draw(st.sampled_from(["X-Hub-Signature-256", "x-hub-signature-256"]))] = value
    case = Case("whatsapp", application_id, body, headers)
    if application_id != "wa":
        return case
    authentic = mode == "good" or (mode == "upper" and good[7:] == good[7:].upper())
    return finish(case, valid, authentic, readable, draw)


# --- slack --------------------------------------------------------------------------------------
slack_channels = st.from_regex(r"[A-Za-z0-9]{1,40}", fullmatch=True)
slack_ts = st.from_regex(r"[0-9]{1,20}\.[0-9]{1,10}", fullmatch=True)


@st.composite
def slack_payloads(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    kind = draw(st.sampled_from(["message", "message", "message", "url_verification", "bot", "other_event", "other_type"]))
    if kind == "url_verification":
        challenge = draw(st.text(chars, min_size=1, max_size=80))
        return {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"}, challenge
    if kind == "other_type":
        return {"type": draw(st.text(max_size=20).filter(lambda t: t not in ("url_verification", "event_callback")))}, []
    channel, ts, text = draw(slack_channels), draw(slack_ts), draw(valid_texts)
    event: dict[str, Any] = {"type": "message", "channel": channel, "text": text, "ts": ts, "event_ts": ts,
                             "channel_type": "channel"}
    if kind == "other_event":
        event["type"] = draw(st.sampled_from(["app_mention", "reaction_added", "member_joined_channel"]))
    elif kind == "bot":
        event.update(draw(st.sampled_from([{"subtype": "bot_message", "bot_id": "B1"}, {"bot_id": "B1"},
                                           {"subtype": "message_changed"}])))
    user = draw(st.one_of(st.none(), st.from_regex(r"U[A-Z0-9]{8,10}", fullmatch=True)))
    if user is not None:
        event["user"] = user
    thread = draw(st.one_of(st.none(), slack_ts))
    if thread is not None:
        event["thread_ts"] = thread
    payload = {"token": "XXYYZZ", "team_id": "T123ABC456", "api_app_id": "A123ABC456", "event": event,
               "type": "event_callback", "event_id": "Ev123ABC456", "event_time": 1355517523}
    if kind != "message":
        return payload, []
    conversation = f"slack:{channel}" + (f":{thread}" if thread else "")
    return payload, [Expected(conversation, ts, text, user or "")]


@st.composite
def slack_cases(draw: st.DrawFn) -> Case:
    application_id = draw(st.sampled_from(["sl"] * 6 + ["sl-nosecret", "signed"]))
    body, valid = draw(bodies(slack_payloads()))
    headers, readable = common_headers(draw)
    stamp, in_window = draw(timestamps())
    mode = draw(st.sampled_from(["good", "good", "good", "random_hex", "wrong_secret", "no_prefix", "missing_sig", "missing_ts"]))
    digest = _hmac_hex(SLACK_SIGNING_SECRET, f"v0:{stamp}:".encode() + body)
    signature = {
        "good": f"v0={digest}",
        "random_hex": f"v0={draw(hex64)}",
        "wrong_secret": "v0=" + _hmac_hex("wrong-signing-secret", f"v0:{stamp}:".encode() + body),
        "no_prefix": digest,
        "missing_sig": None,
        "missing_ts": f"v0={digest}",
    }[mode]
    if signature is not None:
        headers["X-Slack-Signature"] = signature
    if mode != "missing_ts":
        headers["X-Slack-Request-Timestamp"] = stamp
    case = Case("slack", application_id, body, headers)
    if application_id != "sl":
        return case
    return finish(case, valid, mode == "good" and in_window, readable, draw)


# --- the property -------------------------------------------------------------------------------
async def run_case(example: Example, case: Case) -> None:
    with server_stack():
        await _run_case(example, case)


async def _run_case(example: Example, case: Case) -> None:
    example.reset()
    headers = dict(case.headers)
    if case.corrupt_encoding:
        headers["Connection"] = "close"  # never reuse that connection for the next example
    response = await example.client.post(case.url, data=case.body, headers=headers)
    raw = await response.read()
    status = response.status
    context = f"{case.channel} {case.url} -> {status} {raw[:300]!r} (outcome {case.outcome})"
    hypothesis.event(f"{case.channel}: {case.outcome} -> {status}")
    assert status < 500, context
    produced = example.produced.events
    if status >= 400 and case.corrupt_encoding and response.content_type == "text/plain":
        assert status == 400 and produced == [], context  # aiohttp's parser refused the body
        body = None
    elif status >= 400:
        assert response.content_type == "application/json", context
        body = json.loads(raw)
        assert body["type"] == "error", context
        assert isinstance(body["code"], str) and body["code"], context
        assert isinstance(body["message"], str) and body["message"], context
        assert produced == [], f"{context}: an error but {len(produced)} event(s) produced"
    else:
        assert 200 <= status < 300, context
        assert response.content_type == "application/json", context
        body = json.loads(raw)
        for event in produced:
            assert (event.channel, event.application_id) == (case.channel, case.application_id), context
        if case.channel == "generic":
            assert status == 202, context
            [event] = produced
            assert body == {"event_id": event.event_id}, context
        elif "challenge" in body:
            assert case.channel == "slack" and produced == [], context
        else:
            assert body == {"ok": True, "event_ids": [e.event_id for e in produced]}, context
    if case.outcome == "accept":
        assert 200 <= status < 300, context
        if case.challenge is not None:
            assert body == {"challenge": case.challenge}, context
        got = [Expected(e.conversation_id, e.client_message_id, e.text, e.sender) for e in produced]
        assert got == list(case.messages), context
    elif case.outcome == "refuse":
        assert status == 401, context
    elif case.outcome == "too_large":
        assert status == 413, context
    await settle()
    example.assert_clean()


@fuzz_settings(150)
@given(case=generic_cases())
async def test_generic_webhook(example: Example, case: Case) -> None:
    await run_case(example, case)


@fuzz_settings(100)
@given(case=telegram_cases())
async def test_telegram_webhook(example: Example, case: Case) -> None:
    await run_case(example, case)


@fuzz_settings(150)
@given(case=whatsapp_cases())
async def test_whatsapp_webhook(example: Example, case: Case) -> None:
    await run_case(example, case)


@fuzz_settings(150)
@given(case=slack_cases())
async def test_slack_webhook(example: Example, case: Case) -> None:
    await run_case(example, case)


# --- WhatsApp's GET subscription challenge --------------------------------------------------------
query_values = st.one_of(st.text(chars, max_size=30), st.sampled_from(["", " ", "subscribe", WHATSAPP_VERIFY_TOKEN]))


@st.composite
def subscription_queries(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]] | str, str | None]:
    """(application id, query (pairs, or a raw encoded string), the challenge to expect or None)."""
    application_id = draw(st.sampled_from(["wa", "wa", "wa", "wa-nosecret", "plain", "nope", "broken"]))
    if draw(one_in(5)):
        raw = draw(st.lists(st.sampled_from([
            "hub.mode=subscribe", f"hub.verify_token={WHATSAPP_VERIFY_TOKEN}", "hub.challenge=%ff%fe",
            "hub.challenge=%ED%A0%80", "hub.verify_token=%zz", "hub.mode", "=", "&&", "hub.challenge=a+b%20c",
            "hub.verify_token=meaty%68amhock", "hub.challenge=" + "9" * 3000, "%00=%00",
        ]), max_size=5, unique=True))  # (unique: under aiohttp's 8190-byte request line)
        return application_id, "&".join(raw), None
    mode = draw(st.one_of(st.none(), st.just("subscribe"), query_values))
    token = draw(st.one_of(st.none(), st.just(WHATSAPP_VERIFY_TOKEN), query_values))
    challenge = draw(st.one_of(st.none(), st.from_regex(r"[0-9]{1,12}", fullmatch=True), query_values))
    pairs = [(k, v) for k, v in (("hub.mode", mode), ("hub.verify_token", token), ("hub.challenge", challenge)) if v is not None]
    pairs += draw(st.lists(st.tuples(st.sampled_from(["hub.mode", "hub.challenge", "x"]), query_values), max_size=2))
    pairs = draw(st.permutations(pairs))
    first = {}
    for key, value in pairs:
        first.setdefault(key, value)
    ok = (
        application_id == "wa" and first.get("hub.mode") == "subscribe"
        and first.get("hub.verify_token") == WHATSAPP_VERIFY_TOKEN and bool(first.get("hub.challenge"))
    )
    return application_id, pairs, first["hub.challenge"] if ok else None


@fuzz_settings(75)
@given(query=subscription_queries())
async def test_whatsapp_subscription(example: Example, query: tuple[str, Any, str | None]) -> None:
    with server_stack():
        await _subscription(example, query)


async def _subscription(example: Example, query: tuple[str, Any, str | None]) -> None:
    example.reset()
    application_id, params, challenge = query
    path = f"/v1/webhooks/whatsapp/{application_id}"
    if isinstance(params, str):
        response = await example.client.get(URL(path + "?" + params, encoded=True))
    else:
        response = await example.client.get(path, params=params)
    text = await response.text()
    context = f"{application_id} {params!r} -> {response.status} {text[:200]!r}"
    assert response.status < 500, context
    if response.status == 200:
        assert response.content_type == "text/plain" and text, context
        assert application_id == "wa", context
        if challenge is not None:
            assert text == challenge, context
    else:
        assert challenge is None, context
        assert response.status in (400, 403, 404), context
        assert response.content_type == "application/json", context
        assert json.loads(text)["type"] == "error", context
    example.assert_clean()


# --- headers that are not UTF-8 (sent on a raw connection: clients refuse to) ----------------------
AUTH_HEADERS = {
    "generic/signed": [b"X-Parley-Signature"],
    "telegram/tg": [b"X-Telegram-Bot-Api-Secret-Token"],
    "whatsapp/wa": [b"X-Hub-Signature-256"],
    "slack/sl": [b"X-Slack-Signature", b"X-Slack-Request-Timestamp"],
}


@fuzz_settings(60)
@given(
    target=st.sampled_from(sorted(AUTH_HEADERS)),
    values=st.lists(header_bytes, min_size=2, max_size=2),
    prefix=st.sampled_from([b"", b"t=1,v1=", b"sha256=", b"v0=", b"\xff", b"t=\xff\xfe,v1=\xc3"]),
)
async def test_non_utf8_auth_headers_are_refused(example: Example, target: str, values: list[bytes], prefix: bytes) -> None:
    """Signature and secret headers with bytes that are not UTF-8 (aiohttp hands them over with
    surrogate escapes) are a forged request: 401, not a crash in the constant-time compare."""
    example.reset()
    names = AUTH_HEADERS[target]
    headers = [(name, prefix + value) for name, value in zip(names, values, strict=False)]
    body = b'{"conversation_id": "c1", "id": "m1", "text": "hi"}'
    status, _, payload = await raw_request(example.client, "POST", f"/v1/webhooks/{target}", headers, body)
    context = f"{target} {headers!r} -> {status} {payload[:200]!r}"
    assert status == 401, context
    assert json.loads(payload)["type"] == "error", context
    assert example.produced.events == [], context
    example.assert_clean()
