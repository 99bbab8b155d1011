"""The channel interface every messaging platform implements, and what they share.

A channel turns a platform's webhook into Parley messages and Parley's replies into calls of the
platform's HTTP API:

- ``verify(headers, body, application)`` checks the request came from the platform (a signature
  or a shared secret from the application document) and raises ``ChannelAuthError`` otherwise;
- ``parse(body)`` turns the raw body into ``Inbound`` messages (and delivery receipts), or into a
  ``DirectAnswer`` the webhook returns as is (URL verification challenges);
- ``send(session, application, reply, policy)`` delivers a reply through the platform's API with
  bounded retries; a refusal that retrying cannot fix raises ``DeliveryRefused``;
- ``typing(...)`` shows a typing indicator where the platform has one (best effort);
- ``download(session, application, attachment, ...)`` fetches a file the user sent (the
  ``attachments`` of an ``InboundMessage``) through the platform's API; the worker stores it.

Credentials live on the application document under ``channels.<name>``; ``api_base`` there
overrides the platform's API endpoint (tests point it at local fakes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn, TypeVar

import aiohttp
from multidict import CIMultiDict

from parley.channels.egress import policy_of
from parley.egress import EgressRefused
from parley.records import ReplyEvent
from parley.retry import backoff_delay

__all__ = [
    "SIGNATURE_TOLERANCE_S",
    "Channel",
    "ChannelAuthError",
    "ChannelNotConfigured",
    "DeliveryError",
    "DeliveryRefused",
    "DirectAnswer",
    "Download",
    "DownloadError",
    "Inbound",
    "InboundMessage",
    "Receipt",
    "RetryableResponse",
    "accepted_text",
    "SendPolicy",
    "check_timestamp",
    "fits",
    "get_bytes",
    "get_json",
    "header",
    "hmac_sha256_hex",
    "post_json",
    "same",
    "split_text",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How far a signed request's timestamp may be from now (Slack's and the generic webhook's window).
SIGNATURE_TOLERANCE_S = 300.0


class ChannelAuthError(Exception):
    """The request is not from the platform: wrong secret, forged signature, stale timestamp."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ChannelNotConfigured(LookupError):
    """The application has no credentials for this channel (``channels.<name>`` is missing)."""


class DeliveryError(RuntimeError):
    """The platform did not accept the reply after every attempt."""


class DeliveryRefused(DeliveryError):
    """The platform refused the reply for good (a 4xx other than 429, or a missing credential):
    retrying will not help."""

    permanent = True  # parley.streams.deadletters.guarded dead-letters it without retrying


class DownloadError(RuntimeError):
    """A user's file could not be fetched from the platform (the message says why)."""


@dataclass(frozen=True)
class Download:
    """A file fetched from a platform: its bytes and the type the platform gave (may be "")."""

    data: bytes
    content_type: str = ""


class RetryableResponse(Exception):
    """Raised by a response check: the platform answered 2xx but asks to try again."""


@dataclass(frozen=True)
class InboundMessage:
    """One user message from a platform.

    ``message_id`` is the platform's own id (the idempotency key); ``conversation_id`` is enough
    to address the reply (see each channel); ``attachments`` are the platform's references to the
    files (ids, names, MIME types), which ``Channel.download`` fetches. ``text`` may be empty
    when there are attachments.
    """

    message_id: str
    conversation_id: str
    sender: str
    text: str
    attachments: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Receipt:
    """A platform's delivery status for a message Parley sent (sent / delivered / read / failed)."""

    platform_message_id: str
    recipient: str
    status: str
    timestamp: float = 0.0


@dataclass(frozen=True)
class Inbound:
    """What a webhook delivery carried. ``ignored`` says why events were skipped (for logs)."""

    messages: tuple[InboundMessage, ...] = ()
    receipts: tuple[Receipt, ...] = ()
    ignored: tuple[str, ...] = ()


@dataclass(frozen=True)
class DirectAnswer:
    """An HTTP answer the platform expects as is (a URL verification challenge)."""

    status: int = 200
    text: str | None = None
    json: dict[str, Any] | None = None


@dataclass(frozen=True)
class SendPolicy:
    """Timeouts and retries of one delivery."""

    timeout_s: float = 10.0
    max_attempts: int = 4
    base_backoff_s: float = 0.25
    max_backoff_s: float = 5.0
    #: the longest ``Retry-After`` honoured; longer waits are cut to this (the persister holds
    #: the conversation while it waits)
    max_retry_after_s: float = 10.0


class Channel(ABC):
    """One messaging platform."""

    name: ClassVar[str]
    default_api_base: ClassVar[str] = ""
    supports_typing: ClassVar[bool] = False

    def credentials(self, application: Mapping[str, Any]) -> dict[str, Any]:
        """``channels.<name>`` of the application document."""
        channels = application.get("channels")
        config = channels.get(self.name) if isinstance(channels, dict) else None
        if not isinstance(config, dict):
            raise ChannelNotConfigured(
                f"application {application.get('_id')!r} has no channels.{self.name} credentials"
            )
        return config

    def api_base(self, config: Mapping[str, Any]) -> str:
        return str(config.get("api_base") or self.default_api_base).rstrip("/")

    def file_ref(self, attachment: Mapping[str, Any], name: str) -> str:
        """The platform's reference ``name`` of a user's file (an id or URL); ``DownloadError``
        when the parsed attachment lacks it."""
        value = attachment.get(name)
        if not isinstance(value, str) or not value:
            raise DownloadError(f"the {self.name} attachment has no {name}")
        return value

    def required(self, config: Mapping[str, Any], name: str) -> str:
        value = config.get(name)
        if not isinstance(value, str) or not value:
            raise ChannelNotConfigured(f"channels.{self.name}.{name} is not set")
        return value

    @abstractmethod
    def verify(
        self, headers: Mapping[str, str], body: bytes, application: Mapping[str, Any], *, now: float | None = None
    ) -> None:
        """Raise ``ChannelAuthError`` unless the request comes from the platform."""

    @abstractmethod
    def parse(self, body: bytes, *, max_text_bytes: int) -> Inbound | DirectAnswer:
        """The messages in a verified body; raise ``parley.validation.InputError`` when the
        body is malformed."""

    def unsent_reason(self, application: Mapping[str, Any]) -> str | None:
        """Why this application's replies are archived and not sent (an optional address it
        does not have), or None: they are sent."""
        return None

    @abstractmethod
    async def send(
        self, session: aiohttp.ClientSession, application: Mapping[str, Any], reply: ReplyEvent, policy: SendPolicy
    ) -> None:
        """Deliver ``reply``; raise ``DeliveryError`` (``DeliveryRefused`` when final)."""

    async def typing(
        self,
        session: aiohttp.ClientSession,
        application: Mapping[str, Any],
        message: InboundMessage,
        policy: SendPolicy,
    ) -> None:
        """Show a typing indicator in ``message``'s conversation (no-op where unsupported)."""
        return None

    async def download(
        self,
        session: aiohttp.ClientSession,
        application: Mapping[str, Any],
        attachment: Mapping[str, Any],
        *,
        max_bytes: int,
        policy: SendPolicy,
    ) -> Download:
        """Fetch the file ``attachment`` (one of ``InboundMessage.attachments``) refers to; raise
        ``DownloadError``."""
        raise DownloadError(f"{self.name} files cannot be fetched")


# --- signatures -------------------------------------------------------------------------------
def hmac_sha256_hex(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), data, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two strings. A header value with bytes that are not UTF-8
    arrives with surrogate escapes: ``surrogatepass`` encodes those too (they never match)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def check_timestamp(value: str | None, *, now: float | None = None, tolerance_s: float = SIGNATURE_TOLERANCE_S) -> int:
    """A signed request's unix timestamp, if within ``tolerance_s`` of now."""
    if not value:
        raise ChannelAuthError("missing_timestamp", "the request carries no signature timestamp")
    try:
        stamp = int(value)
    except ValueError:
        raise ChannelAuthError("invalid_timestamp", "the signature timestamp is not a unix time") from None
    now = time.time() if now is None else now
    try:
        skew = abs(now - stamp)
    except OverflowError:  # an integer too large for a float: as stale as it gets
        skew = float("inf")
    if skew > tolerance_s:
        raise ChannelAuthError(
            "stale_timestamp",
            f"the signature timestamp is more than {tolerance_s:g}s from now: check the sender's "
            "clock, and never replay a request",
        )
    return stamp


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header, case-insensitively, from any mapping."""
    if not isinstance(headers, CIMultiDict):
        headers = CIMultiDict(headers)
    value = headers.get(name)
    return value if isinstance(value, str) else None


# --- text -----------------------------------------------------------------------------------
def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-16 code units (how Telegram and WhatsApp count),
    cut at a newline or a space where one is near the end of a piece."""
    if _utf16_len(text) <= limit:
        return [text]
    pieces: list[str] = []
    rest = text
    while _utf16_len(rest) > limit:
        # longest prefix that fits
        lo, hi = 1, min(len(rest), limit)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _utf16_len(rest[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        for sep in ("\n", " "):
            at = rest.rfind(sep, 0, cut)
            if at >= cut // 2:
                cut = at + 1
                break
        pieces.append(rest[:cut].rstrip() or rest[:cut])
        rest = rest[cut:]
    if rest.strip():
        pieces.append(rest)
    return pieces


def accepted_text(text: Any, attachments: tuple[dict[str, Any], ...], max_bytes: int) -> str | None:
    """A message's text if Parley takes the message: non-blank text within ``max_bytes``, or no
    text ("") when the message carries files; None when it is ignored."""
    if isinstance(text, str) and fits(text, max_bytes):
        return text
    if attachments and (not isinstance(text, str) or not text.strip()):
        return ""
    return None


def fits(text: str, max_bytes: int) -> bool:
    return bool(text.strip()) and len(text.encode("utf-8")) <= max_bytes


# --- HTTP -----------------------------------------------------------------------------------
Headers = Mapping[str, str] | Callable[[], Mapping[str, str]]


def _retry_after(response: aiohttp.ClientResponse, data: Any) -> float | None:
    value: Any = response.headers.get("Retry-After")
    if value is None and isinstance(data, dict):
        parameters = data.get("parameters")  # Telegram: {"parameters": {"retry_after": 3}}
        if isinstance(parameters, dict):
            value = parameters.get("retry_after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class _TryAgain(Exception):
    """One attempt failed in a way another attempt may not (5xx, 429, a transient answer)."""

    def __init__(self, error: str, retry_after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after


def _failed(status: int, error: str, retry_after: float | None, refused: Exception) -> NoReturn:
    """An HTTP answer of ``status`` >= 300: 429 and 5xx may pass on another attempt (a 429 after
    ``retry_after``); any other status raises ``refused`` at once."""
    if status == 429:
        raise _TryAgain(error, retry_after)
    if status < 500:
        raise refused
    raise _TryAgain(error)


def _json_or_none(raw: bytes) -> Any:
    """``raw`` decoded as JSON; None when it is empty, not JSON, or pathologically nested."""
    try:
        return json.loads(raw) if raw else None
    except (ValueError, RecursionError):
        return None


def _backoff(policy: SendPolicy, attempt: int, retry_after: float | None = None) -> float:
    """Jittered exponential backoff before attempt ``attempt + 1``, at least a ``Retry-After``
    (cut to ``policy.max_retry_after_s``)."""
    delay = backoff_delay(attempt, policy.base_backoff_s, policy.max_backoff_s)
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.max_retry_after_s))
    return delay


#: client errors no other attempt can fix: a URL aiohttp cannot call, a redirect (never followed)
_PERMANENT_CLIENT_ERRORS: tuple[type[Exception], ...] = (
    aiohttp.InvalidURL, aiohttp.TooManyRedirects, aiohttp.NonHttpUrlClientError,
)


async def _with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: SendPolicy,
    what: str,
    secrets: tuple[str, ...],
    failure: Callable[[str], Exception],
    refused: Callable[[str], Exception],
) -> T:
    """Run ``attempt`` until it returns, at most ``policy.max_attempts`` times: connection errors,
    timeouts and ``_TryAgain`` are retried with backoff; anything else it raises is final. Raises
    ``failure(message)`` when the attempts are spent, ``refused(message)`` at once when the
    egress guard refuses the URL or aiohttp cannot call it; ``secrets`` never reach logs or
    errors."""
    last_error = ""
    for number in range(1, policy.max_attempts + 1):
        retry_after: float | None = None
        try:
            return await attempt()
        except _TryAgain as exc:
            last_error, retry_after = exc.error, exc.retry_after
        except EgressRefused as exc:
            raise refused(_scrub(f"{what} refused by the egress guard: {exc.reason}", secrets)) from None
        except _PERMANENT_CLIENT_ERRORS as exc:
            raise refused(_scrub(f"{what} cannot be called: {type(exc).__name__}: {exc}", secrets)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        last_error = _scrub(last_error, secrets)
        if number < policy.max_attempts:
            delay = _backoff(policy, number, retry_after)
            logger.warning("%s failed (%s), retry %d in %.2fs", what, last_error, number, delay)
            await asyncio.sleep(delay)
    raise failure(f"{what} failed after {policy.max_attempts} attempts: {last_error}")


def _guarded(session: aiohttp.ClientSession, url: str) -> None:
    """Refuse ``url`` before any attempt unless the session carries the egress guard and the
    guard allows it (the guard's resolver checks the addresses again on every connection)."""
    guard = policy_of(session)
    if guard is None:
        raise EgressRefused(url, "the HTTP session has no egress guard (parley.channels.egress.guarded_session)")
    guard.check_url(url)


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any] | bytes,
    *,
    policy: SendPolicy,
    what: str,
    headers: Headers | None = None,
    check: Callable[[Any], None] | None = None,
    secrets: Iterable[str] = (),
) -> Any:
    """POST ``payload`` (a JSON object, or JSON bytes sent as is) and return the decoded answer.

    ``url`` must pass the session's egress guard (``parley.channels.egress``); redirects are not
    followed. Connection errors, timeouts, 429 and 5xx are retried with jittered exponential
    backoff (a 429's ``Retry-After`` is honoured up to ``policy.max_retry_after_s``); any other
    status (a 3xx, a 4xx) and a refusal of the guard raise ``DeliveryRefused`` at once. ``check`` sees a 2xx answer's JSON and may raise
    ``DeliveryRefused`` or ``RetryableResponse``. ``headers`` may be a function, called per
    attempt (signatures carry a timestamp). ``what`` names the call in logs and errors instead
    of ``url``, and ``secrets`` are scrubbed from them (a Telegram URL holds the bot token).
    """
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
    hidden = tuple(secrets)

    async def attempt() -> Any:
        _guarded(session, url)
        extra = headers() if callable(headers) else (headers or {})
        request_headers = {"Content-Type": "application/json; charset=utf-8", **extra}
        # never follow a redirect: a 3xx is the receiver's refusal (a followed 307 would carry the
        # body, its signature and any token to wherever it points)
        async with session.post(
            url, data=body, headers=request_headers, allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=policy.timeout_s),
        ) as response:
            raw = await response.read()
        data = _json_or_none(raw)
        if response.status < 300:
            try:
                if check is not None:
                    check(data)
            except RetryableResponse as exc:
                raise _TryAgain(str(exc)) from None
            return data
        error = f"HTTP {response.status}: {raw[:300].decode('utf-8', 'replace')}"
        refused = DeliveryRefused(_scrub(f"{what} refused the reply: {error}", hidden))
        _failed(response.status, error, _retry_after(response, data), refused)

    return await _with_retries(
        attempt, policy=policy, what=what, secrets=hidden, failure=DeliveryError, refused=DeliveryRefused
    )


async def get_bytes(
    session: aiohttp.ClientSession,
    url: str,
    *,
    policy: SendPolicy,
    what: str,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> Download:
    """GET ``url`` and return its body, at most ``max_bytes`` of it (a larger file raises
    ``DownloadError`` without being read). Connection errors, timeouts, 429 and 5xx are retried
    like ``post_json``; other 4xx fail at once. ``secrets`` are scrubbed from errors."""
    hidden = tuple(secrets)

    async def attempt() -> Download:
        _guarded(session, url)
        async with session.get(
            url, headers=dict(headers or {}), allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=policy.timeout_s),
        ) as response:
            if response.status < 300:
                too_large = DownloadError(f"{what}: the file is larger than {max_bytes} bytes")
                if response.content_length is not None and response.content_length > max_bytes:
                    raise too_large
                data = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > max_bytes:
                        raise too_large
                if response.content_length is not None and len(data) != response.content_length:
                    raise _TryAgain(f"the file ended after {len(data)} of {response.content_length} bytes")
                return Download(bytes(data), response.headers.get("Content-Type", ""))
            error = f"HTTP {response.status}: {(await response.content.read(300)).decode('utf-8', 'replace')}"
            refused = DownloadError(_scrub(f"{what} refused: {error}", hidden))
            _failed(response.status, error, _retry_after(response, None), refused)

    return await _with_retries(
        attempt, policy=policy, what=what, secrets=hidden, failure=DownloadError, refused=DownloadError
    )


async def get_json(
    session: aiohttp.ClientSession,
    url: str,
    *,
    policy: SendPolicy,
    what: str,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """GET a JSON object (a platform's file metadata) with ``get_bytes``'s retries."""
    body = await get_bytes(session, url, policy=policy, what=what, max_bytes=1 << 20, headers=headers, secrets=secrets)
    data = _json_or_none(body.data)
    if not isinstance(data, dict):
        raise DownloadError(f"{what}: the answer is not a JSON object")
    return data
