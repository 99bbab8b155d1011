"""``GET /ws``: the chat websocket. Protocol: docs/websocket-protocol.md.

Every client frame is validated; a bad one gets an ``error`` frame and the socket stays open,
except for the refusals that end the connection (an unauthorized ``hello``: 4401, a browser
origin the application does not allow: 4403, no client frame for
``PARLEY_WS_IDLE_TIMEOUT_S``: 4408), which send their ``error`` frame and then close.

Replies reach the socket over the bus: ``delta`` frames while the model streams, then the final
``message`` (delivered by the persister after archiving). A ``hello`` with ``last_message_id``
also gets what the client missed, read from the archive (``history: true``: the conversation
so far): the socket subscribes to the bus first, holds live frames back while it sends the
archived ones, then lets them through without those it already sent, so nothing is lost between
the two and nothing comes twice. A user message is also shown live on the conversation's other
sockets when it is accepted. A ``stop`` frame becomes a ``stop`` event on ``incoming`` for the
worker that owns the conversation (``parley.streams.turn_control``). Every error a ``message``
frame causes carries its ``id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from parley import metrics
from parley.attachments import StoredFile, parse_all
from parley.channels import refuse_other_platforms
from parley.frames import answer_html, frame_text, message_frame
from parley.ports import Owner
from parley.retry import ThrottledLog
from parley.settings import Settings
from parley.storage.bus import conversation_channel
from parley.streams.archive import documents_for_incoming
from parley.streams.handoff import handoff_state_frame
from parley.validation import InputError, optional_str, parse_json_object, require_id, require_text
from parley.web.auth import TokenError, origin_allowed, verify_user_token
from parley.web.ingress import IngressUnavailable, stop_event, user_event
from parley.web.keys import DEPS, INGRESS, SETTINGS, SOCKETS
from parley.web.outbox import send_texts
from parley.web.ratelimit import ApplicationBuckets, admit, per_minute_bucket
from parley.web.uploads import resolve_attachments

__all__ = [
    "websocket_handler",
    "add_websocket_routes",
    "APPLICATION_BUCKETS",
    "CLOSE_UNAUTHORIZED",
    "CLOSE_FORBIDDEN_ORIGIN",
    "CLOSE_IDLE",
    "RESUME_ROLES",
    "frame_limit",
]

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Close codes (4000-4999 are the application's): an HTTP status plus 4000.
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_IDLE = 4408
#: The archive could not be read for a resume: reconnect later and resume again.
CLOSE_TRY_AGAIN_LATER = 1013
#: Too many bad frames (RFC 6455 "policy violation").
CLOSE_POLICY_VIOLATION = 1008

#: Archived roles a resuming client is sent (tool calls and results stay server-side; an answer
#: names the tools its turn called in ``tools``).
RESUME_ROLES = ("user", "assistant", "operator")

APPLICATION_BUCKETS = web.AppKey("ws_application_buckets", ApplicationBuckets)
#: one warning per interval for failures many sockets share (a store outage)
FAILURES = web.AppKey("ws_failures", ThrottledLog)


def frame_limit(settings: Settings) -> int:
    """The largest frame a client may send; a larger one closes the socket with 1009."""
    return settings.max_text_bytes * 4 + 4096


class _Close(InputError):
    """A refusal that ends the connection: the ``error`` frame is sent, then the close code."""

    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(code, message, status=close_code - 4000 if close_code >= 4000 else 503)
        self.close_code = close_code


class RetryLater(InputError):
    """A refusal the client overcomes by sending the same frame again after ``retry_after``
    seconds; carries the client's ``id`` when a message caused it."""

    def __init__(self, code: str, message: str, status: int, retry_after: float, client_id: str | None) -> None:
        super().__init__(code, message, status=status)
        self.retry_after = retry_after
        self.client_id = client_id

    def body(self) -> dict[str, Any]:
        body = super().body()
        body["retry_after"] = round(self.retry_after, 3)
        if self.client_id is not None:
            body["id"] = self.client_id
        return body


class _RateLimited(RetryLater):
    def __init__(self, retry_after: float, client_id: str | None) -> None:
        super().__init__(
            "rate_limited", f"too many frames; retry in {retry_after:.2f}s", 429, retry_after, client_id
        )


class _OverFrameRate(_RateLimited):
    """A frame (of any kind) over the connection's frame rate: refused, and a bad frame."""


class Unavailable(RetryLater):
    """The document store (or another service) did not answer: retry the same frame later."""

    def __init__(self, message: str, retry_after: float, client_id: str | None = None) -> None:
        super().__init__("unavailable", message, 503, retry_after, client_id)


#: what a client is told to wait before retrying a frame the store could not serve
RETRY_AFTER_S = 1.0


def _signed_in_only(conversation_id: str | None) -> InputError:
    """What an anonymous client gets for a conversation a signed-in user wrote in."""
    return InputError(
        "forbidden_conversation",
        f"conversation {conversation_id!r} belongs to a signed-in user; connect with their token",
        status=403,
    )


def _not_theirs(conversation_id: str, owner: Owner) -> InputError:
    """What a client gets for a conversation that belongs to someone else."""
    if owner.signed_in:
        return _signed_in_only(conversation_id)
    return InputError(
        "forbidden_conversation",
        f"conversation {conversation_id!r} belongs to another user; start a new conversation",
        status=403,
    )


def _application_limit(config: Any, settings: Settings) -> float:
    """Messages per minute for the application: its chatbot's ``rate_limit_per_minute``, else
    the setting (0: unlimited)."""
    per_minute = getattr(getattr(config, "chatbot", None), "rate_limit_per_minute", None)
    return float(per_minute) if per_minute else settings.ws_app_messages_per_minute


#: unique across gateways (the bus is shared) and cheap: one random part per process
_SOCKET_IDS = (f"{uuid.uuid4().hex[:12]}-{n}" for n in itertools.count())

#: bus-only fields of a user message frame (never sent to clients): the socket it came from,
#: and whether its sender is signed in (an anonymous socket may not follow such a conversation)
ORIGIN = "_origin_socket"
SIGNED_IN = "_signed_in"
#: how long publishing a user message for the other sockets may hold the sending socket
SHOW_TIMEOUT_S = 1.0
#: At most this many frames waiting for a socket go out in one write.
FORWARD_BATCH = 64


def _archived_frame(doc: dict[str, Any]) -> dict[str, Any]:
    """An archived message as the frame a live client gets (``streams.delivery.websocket_frame``
    for replies); a user message also carries the client's own ``id``, the ``sender`` and, when
    it had files, their ``attachments`` (name, type and size only)."""
    role = str(doc.get("role"))
    frame = message_frame(
        message_id=doc["_id"], role=role, text=doc.get("text", ""),
        in_reply_to=doc.get("in_reply_to", "") if role != "user" else None, created_at=doc.get("created_at"),
    )
    operator = doc.get("operator")
    if role == "operator" and isinstance(operator, dict):
        frame["operator"] = {"name": str(operator.get("name") or "")}
    if role != "user":  # an answer (the assistant's, or a person's): rendered like every reply
        frame["html"] = answer_html(str(doc.get("text") or ""), doc.get("html"))
        frame["stopped"] = bool(doc.get("stopped", False))
        tools = [str(name) for name in doc.get("tools") or ()]
        if tools:
            frame["tools"] = tools
    if role == "user":
        frame["id"] = doc.get("client_message_id") or None
        frame["sender"] = doc.get("sender") or ""
        files = [a for a in doc.get("attachments") or () if isinstance(a, dict)]
        if files:
            frame["attachments"] = [a.described() for a in parse_all(files)]
    return frame


class _Session:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.deps = request.app[DEPS]
        self.settings = request.app[SETTINGS]
        self.ingress = request.app[INGRESS]
        self.application_buckets = request.app[APPLICATION_BUCKETS]
        self.failures = request.app[FAILURES]
        self.application_id: str | None = None
        self.conversation_id: str | None = None
        self.user_id: str | None = None  # None: anonymous
        self.claimed = False  # this socket's conversation is claimed for its identity
        # hello and message frames each have a bucket: switching conversations does not eat
        # into the messages a client may send, and hello spam (each may read the archive) is
        # limited on its own
        now = time.monotonic()
        self.hello_bucket = per_minute_bucket(
            self.settings.ws_messages_per_minute, self.settings.ws_message_burst, now
        )
        self.message_bucket = per_minute_bucket(
            self.settings.ws_messages_per_minute, self.settings.ws_message_burst, now
        )
        self.stop_bucket = per_minute_bucket(
            self.settings.ws_messages_per_minute, self.settings.ws_message_burst, now
        )
        # Every frame, whatever its kind, takes from the frame bucket; every bad one (invalid,
        # refused, or over the frame rate) from the bad-frame bucket, which closes the socket
        # when it runs dry: a client that keeps sending garbage costs one reply per frame for
        # a burst, not forever.
        self.frame_bucket = per_minute_bucket(
            self.settings.ws_frames_per_minute, self.settings.ws_frame_burst, now
        )
        self.bad_frame_bucket = per_minute_bucket(
            self.settings.ws_bad_frames_per_minute, self.settings.ws_bad_frame_burst, now
        )
        self._forwarder: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        self.socket_id = next(_SOCKET_IDS)  # marks this socket's own frames on the bus

    async def send(self, frame: dict[str, Any]) -> None:
        await self.send_all([frame])

    async def send_all(self, frames: list[dict[str, Any]]) -> None:
        """Send ``frames`` in order, in one write to the socket (``outbox.send_texts``)."""
        if self.ws.closed or not frames:
            return
        async with self._send_lock:
            try:
                await send_texts(self.ws, [frame_text(frame) for frame in frames])
            except (ConnectionResetError, RuntimeError) as exc:
                logger.debug("websocket send failed: %s", exc)

    def admit_frame(self) -> None:
        """Take a token for one received frame, of any kind; raise ``_RateLimited`` (a bad
        frame) when the connection is over its frame rate."""
        retry_after = admit([self.frame_bucket], time.monotonic())
        if retry_after:
            raise _OverFrameRate(retry_after, None)

    def bad_frame(self) -> None:
        """Count one bad frame; raise ``_Close`` (1008) when the connection has sent too many."""
        if admit([self.bad_frame_bucket], time.monotonic()):
            raise _Close(
                "too_many_bad_frames",
                "too many invalid or refused frames on this connection; fix the client and reconnect",
                CLOSE_POLICY_VIOLATION,
            )

    async def on_text(self, data: str) -> None:
        if len(data.encode("utf-8")) > frame_limit(self.settings):
            raise InputError("too_large", "frame is larger than the limit", status=413)
        frame = parse_json_object(data)
        kind = frame.get("type")
        if kind == "hello":
            await self.on_hello(frame)
        elif kind == "message":
            await self.on_message(frame)
        elif kind == "stop":
            await self.on_stop(frame)
        elif kind == "ping":
            await self.send({"type": "pong"})
        else:
            raise InputError("unknown_type", f"unknown frame type {kind!r}; expected hello, message, stop or ping")

    # --- hello ---------------------------------------------------------------------------
    async def on_hello(self, frame: dict[str, Any]) -> None:
        retry_after = admit([self.hello_bucket], time.monotonic())
        if retry_after:
            raise _RateLimited(retry_after, None)
        application_id = require_id(frame, "application_id")
        conversation_id = require_id(frame, "conversation_id")
        resume_from = self._resume_from(frame)
        history = frame.get("history")
        if history is None:
            history = False
        elif not isinstance(history, bool):
            raise InputError("invalid_field", "field 'history' must be true or false")
        refuse_other_platforms(conversation_id, "websocket")
        config = await self.deps.configs.application(application_id)
        if config is None:
            raise InputError("unknown_application", f"no application {application_id!r}", status=404)
        # ``config`` is an ``ApplicationConfig``; its policy fields are read with their defaults
        # so that any object standing for one (tests' stubs) means "no restrictions".
        origin = self.request.headers.get("Origin")
        if not origin_allowed(origin, getattr(config, "allowed_origins", ()), self.request.headers.get("Host")):
            raise _Close(
                "forbidden_origin",
                f"origin {origin!r} may not open a websocket to application {application_id!r}",
                CLOSE_FORBIDDEN_ORIGIN,
            )
        user_id = await self._authenticate(frame, application_id, getattr(config, "allow_anonymous", True))
        owner = await self._store(self.deps.owners.owner(application_id, conversation_id))
        if owner is not None and not owner.admits(user_id):
            raise _not_theirs(conversation_id, owner)
        await self._stop_forwarding()
        self.application_id, self.conversation_id, self.user_id = application_id, conversation_id, user_id
        self.claimed = False
        released: asyncio.Future[frozenset[str]] = asyncio.get_running_loop().create_future()
        await self._start_forwarding(released)
        sent: frozenset[str] = frozenset()
        try:
            await self.send({
                "type": "ready",
                "application_id": application_id,
                "conversation_id": conversation_id,
                "user_id": user_id,
            })
            if resume_from is not None or history:
                sent = await self._resume(resume_from)  # None: the whole (recent) conversation
        finally:
            released.set_result(sent)

    async def _store(self, call: Awaitable[T], client_id: str | None = None) -> T:
        """A document store call at the edge: bounded by ``PARLEY_STORE_EDGE_TIMEOUT_S``; a store
        that does not answer (or fails) becomes an ``unavailable`` frame, never a dropped socket."""
        try:
            async with asyncio.timeout(self.settings.store_edge_timeout_s):
                return await call
        except (InputError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - any store failure: the client retries
            self.failures.warning("websocket: the document store did not answer: %s: %s", type(exc).__name__, exc)
            raise Unavailable(
                "the document store did not answer; retry in a moment", RETRY_AFTER_S, client_id
            ) from exc

    @staticmethod
    def _resume_from(frame: dict[str, Any]) -> str | None:
        for name in ("last_message_id", "resume_from"):
            if frame.get(name) is not None:
                return require_id(frame, name)
        return None

    async def _authenticate(self, frame: dict[str, Any], application_id: str, allow_anonymous: bool) -> str | None:
        """The user id of a valid token; None for an anonymous client the application allows."""
        token = frame.get("token")
        if token is None:
            token = self.request.query.get("token") or None
        if token is None:
            if allow_anonymous:
                return None
            raise _Close(
                "unauthorized",
                f"application {application_id!r} requires a user token: send 'token' in the hello frame",
                CLOSE_UNAUTHORIZED,
            )
        application = await self._store(self.deps.configs.application_document(application_id)) or {}
        secret = application.get("secret")
        try:
            return verify_user_token(
                token, secret if isinstance(secret, str) else "", application_id,
                max_lifetime_s=self.settings.user_token_max_lifetime_s,
            )
        except TokenError as exc:
            raise _Close("unauthorized", str(exc), CLOSE_UNAUTHORIZED) from exc

    async def _resume(self, last_message_id: str | None) -> frozenset[str]:
        """Send the archived messages after ``last_message_id`` (all of them, up to the resume
        limit, for None); return their ids."""
        assert self.application_id is not None and self.conversation_id is not None
        try:
            async with asyncio.timeout(self.settings.store_edge_timeout_s):
                async with self.deps.store_reads:  # archive reads wait their turn
                    docs, found, truncated = await self.deps.archive.messages_after(
                        self.application_id, self.conversation_id, last_message_id,
                        roles=RESUME_ROLES, limit=self.settings.ws_resume_limit,
                    )
                    handoff = await self.deps.archive.handoff(self.application_id, self.conversation_id)
        except Exception as exc:  # noqa: BLE001 - any archive failure: let the client retry
            self.failures.warning("resume of %s failed: %s: %s", self.conversation_id, type(exc).__name__, exc)
            raise _Close(
                "unavailable", "the archive could not be read; reconnect and resume again",
                CLOSE_TRY_AGAIN_LATER,
            ) from exc
        await self.send({
            "type": "resume",
            "last_message_id": last_message_id,
            "found": found,
            "count": len(docs),
            "truncated": truncated,
        })
        for doc in docs:
            await self.send(await self._with_image_links(_archived_frame(doc), doc))
        if handoff is not None:  # a person has the conversation now: a reloaded page says so
            await self.send(handoff_state_frame(handoff.get("operator_name") or "", handoff.get("since")))
        return frozenset(str(doc["_id"]) for doc in docs)

    async def _with_image_links(self, frame: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
        """A resumed user message's uploaded images get a ``url`` (a presigned link, as an
        upload's answer has) so a client can show thumbnails; a link that cannot be made is
        left out, the file is still listed by name."""
        described = frame.get("attachments")
        if not described:
            return frame
        files = [a for a in doc.get("attachments") or () if isinstance(a, dict)]
        for shown, stored in zip(described, parse_all(files), strict=False):
            if isinstance(stored, StoredFile) and stored.is_image:
                try:
                    async with asyncio.timeout(self.settings.store_edge_timeout_s):
                        shown["url"] = await self.deps.files.presigned_url(
                            stored.file_id, self.settings.files_url_expiry_s
                        )
                except Exception as exc:  # noqa: BLE001 - no thumbnail, never a failed resume
                    self.failures.warning("no link for %s: %s: %s", stored.file_id, type(exc).__name__, exc)
        return frame

    # --- message -------------------------------------------------------------------------
    async def on_message(self, frame: dict[str, Any]) -> None:
        if self.application_id is None or self.conversation_id is None:
            raise InputError("not_ready", "send a hello frame before messages")
        client_id = require_id(frame, "id")
        # a message that carries files may have no text
        text = require_text(frame, "text", self.settings.max_text_bytes, allow_empty=bool(frame.get("attachments")))
        sender = self.user_id if self.user_id is not None else optional_str(frame, "sender")
        config = await self.deps.configs.application(self.application_id)
        if config is None:
            raise InputError("unknown_application", f"no application {self.application_id!r}", status=404)
        application_bucket = self.application_buckets.bucket(
            self.application_id, _application_limit(config, self.settings)
        )
        retry_after = admit([self.message_bucket, application_bucket], time.monotonic())
        if retry_after:
            raise _RateLimited(retry_after, client_id)
        if not self.claimed:
            await self._claim(client_id)
        attachments = await resolve_attachments(
            self.deps.files, self.deps.uploads, self.application_id, frame.get("attachments")
        )
        event = user_event(
            application_id=self.application_id,
            conversation_id=self.conversation_id,
            channel="websocket",
            client_message_id=client_id,
            text=text,
            sender=sender,
            signed_in=self.user_id is not None,
            attachments=attachments,
        )
        try:
            await self.ingress.submit(event)
        except IngressUnavailable as exc:
            raise Unavailable(f"{exc}; retry with the same id", RETRY_AFTER_S, client_id) from exc
        await self.send_all([
            {"type": "ack", "id": client_id, "event_id": event.event_id},
            # The gateway's part of a typing indicator: the message is in, an answer is coming.
            {"type": "typing", "state": "started", "in_reply_to": event.event_id},
        ])
        await self._show_to_other_sockets(event)

    # --- stop ----------------------------------------------------------------------------
    async def on_stop(self, frame: dict[str, Any]) -> None:
        """Stop the answer streaming in this conversation: a ``stop`` event on ``incoming``,
        keyed by the conversation, so the worker that owns it cancels the model call as it
        reads the event. Its final ``message`` (``stopped: true``) follows over the bus."""
        if self.application_id is None or self.conversation_id is None:
            raise InputError("not_ready", "send a hello frame before stop")
        target = require_id(frame, "message_id") if frame.get("message_id") is not None else ""
        retry_after = admit([self.stop_bucket], time.monotonic())
        if retry_after:
            raise _RateLimited(retry_after, None)
        event = stop_event(
            application_id=self.application_id, conversation_id=self.conversation_id, reply_id=target
        )
        try:
            await self.ingress.submit(event)
        except IngressUnavailable as exc:
            raise Unavailable(f"{exc}; send stop again", RETRY_AFTER_S) from exc

    async def _claim(self, client_id: str) -> None:
        """The socket's first message claims its conversation for its identity (the first
        message's sender owns a conversation). Another owner's conversation is left."""
        assert self.application_id is not None and self.conversation_id is not None
        owner = await self._store(
            self.deps.owners.claim(self.application_id, self.conversation_id, self.user_id), client_id
        )
        if not owner.admits(self.user_id):
            refusal = _not_theirs(self.conversation_id, owner)
            await self._stop_forwarding()
            self.application_id = self.conversation_id = None  # its next message gets not_ready
            raise refusal
        self.claimed = True

    async def _show_to_other_sockets(self, event: Any) -> None:
        """The user's other sockets on this conversation (other tabs and devices) show the
        message now, before any answer; the sender has its ack. Best effort, and bounded: a
        slow bus must not hold this socket's next frames (the bus logs its own failures)."""
        assert self.application_id is not None and self.conversation_id is not None
        frame = {
            **_archived_frame(documents_for_incoming(event)[0]),
            ORIGIN: self.socket_id, SIGNED_IN: event.signed_in,
        }
        channel = conversation_channel(self.application_id, self.conversation_id)
        try:
            await asyncio.wait_for(self.deps.bus.publish(channel, frame), SHOW_TIMEOUT_S)
        except TimeoutError:
            logger.warning("message %s not shown live on other sockets: the bus did not answer", event.event_id)

    # --- live frames from the bus --------------------------------------------------------
    async def _start_forwarding(self, released: asyncio.Future[frozenset[str]]) -> None:
        subscribed = asyncio.Event()
        self._forwarder = asyncio.create_task(self._forward(subscribed, released))
        waiter = asyncio.ensure_future(subscribed.wait())
        await asyncio.wait({self._forwarder, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if not subscribed.is_set():
            waiter.cancel()
            error = self._forwarder.exception() if not self._forwarder.cancelled() else None
            self._forwarder = None
            self.application_id = self.conversation_id = self.user_id = None
            logger.warning("websocket could not subscribe to the bus: %s", error)
            raise InputError("unavailable", "live delivery is unavailable; send hello again", status=503)

    async def _forward(self, subscribed: asyncio.Event, released: asyncio.Future[frozenset[str]]) -> None:
        assert self.application_id is not None and self.conversation_id is not None
        channel = conversation_channel(self.application_id, self.conversation_id)
        async with self.deps.bus.subscribe(channel) as subscription:
            subscribed.set()
            # Live frames wait in the subscription's queue while the archive is sent.
            already_sent = await released
            while True:
                # what waits in the queue goes out in one write (a model's burst of deltas)
                waiting = [await subscription.get(), *subscription.take_waiting(FORWARD_BATCH - 1)]
                outgoing: list[dict[str, Any]] = []
                for frame in waiting:
                    if already_sent and frame.get("message_id") in already_sent:
                        continue
                    if ORIGIN in frame:
                        if frame[ORIGIN] == self.socket_id:
                            continue  # this socket's own message: its client has the ack
                        if frame.get(SIGNED_IN) and self.user_id is None:
                            await self.send_all(outgoing)
                            await self._leave_signed_in_conversation()
                            return
                        frame = {k: v for k, v in frame.items() if k not in (ORIGIN, SIGNED_IN)}
                    outgoing.append(frame)
                await self.send_all(outgoing)

    async def _leave_signed_in_conversation(self) -> None:
        """An anonymous socket that joined a conversation before a signed-in user claimed it
        (the hello check reads the owner record) stops following it at the user's first live
        message."""
        conversation_id = self.conversation_id
        self.application_id = self.conversation_id = None  # its next message gets not_ready
        await self.send(_signed_in_only(conversation_id).body())

    async def _stop_forwarding(self) -> None:
        if self._forwarder is not None:
            self._forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._forwarder
            self._forwarder = None

    async def close(self) -> None:
        await self._stop_forwarding()


async def websocket_handler(request: web.Request) -> web.WebSocketResponse:
    settings = request.app[SETTINGS]
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat_s, max_msg_size=frame_limit(settings), compress=False
    )
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    session = _Session(request, ws)
    metrics.WEBSOCKET_CONNECTIONS.inc()
    loop = asyncio.get_running_loop()
    idle_deadline = loop.time() + settings.ws_idle_timeout_s
    try:
        while not ws.closed:
            try:
                # Not receive(timeout=...): that one restarts on every heartbeat pong. The idle
                # time counts from the last frame the client sent.
                async with asyncio.timeout_at(idle_deadline):
                    msg = await ws.receive()
            except TimeoutError:
                await session.send(InputError(
                    "idle_timeout", f"no frame for {settings.ws_idle_timeout_s:g}s; reconnect to go on"
                ).body())
                await ws.close(code=CLOSE_IDLE, message=b"idle timeout")
                break
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                break
            if msg.type == WSMsgType.ERROR:
                logger.info("websocket closed with error: %s", ws.exception())
                break
            idle_deadline = loop.time() + settings.ws_idle_timeout_s
            try:
                try:
                    session.admit_frame()
                    if msg.type == WSMsgType.TEXT:
                        await session.on_text(msg.data)
                    else:  # BINARY (aiohttp answers protocol pings itself)
                        raise InputError("invalid_frame", "binary frames are not supported; send JSON text")
                except _Close:
                    raise
                except _OverFrameRate as exc:
                    session.bad_frame()
                    await session.send(_about(exc.body(), msg))
                except RetryLater as exc:
                    await session.send(_about(exc.body(), msg))
                except InputError as exc:
                    session.bad_frame()
                    await session.send(_about(exc.body(), msg))
                except Exception as exc:  # noqa: BLE001 - a failed frame never drops the socket
                    session.failures.warning("websocket frame failed: %s: %s", type(exc).__name__, exc)
                    await session.send(Unavailable(
                        "the server could not handle this frame; retry in a moment", RETRY_AFTER_S,
                        _client_id(msg.data) if msg.type == WSMsgType.TEXT else None,
                    ).body())
            except _Close as exc:
                await session.send(exc.body())
                await ws.close(code=exc.close_code, message=exc.code.encode())
                break
    finally:
        metrics.WEBSOCKET_CONNECTIONS.dec()
        await session.close()
    return ws


def _about(body: dict[str, Any], msg: Any) -> dict[str, Any]:
    """An error frame with the client ``id`` of the ``message`` frame that caused it, so the
    client can mark that message failed (and never resend a refused one by itself)."""
    if "id" not in body and msg.type == WSMsgType.TEXT:
        client_id = _client_id(msg.data)
        if client_id is not None:
            body["id"] = client_id
    return body


def _client_id(data: str) -> str | None:
    """The ``id`` of a message frame, for an error about it (best effort)."""
    try:
        frame = parse_json_object(data)
    except InputError:
        return None
    value = frame.get("id")
    return value if isinstance(value, str) and frame.get("type") == "message" else None


def add_websocket_routes(app: web.Application) -> None:
    """``GET /ws`` and the state it shares across connections (per-application rate limits)."""
    app[APPLICATION_BUCKETS] = ApplicationBuckets()
    app[FAILURES] = ThrottledLog(logger)
    app.router.add_get("/ws", websocket_handler)
