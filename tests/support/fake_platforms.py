"""Fakes of the messaging platforms' send APIs (Telegram, WhatsApp Cloud, Slack) and of a generic
callback receiver, in one aiohttp server run in a thread, for end-to-end tests.

Point an application's ``channels.<name>.api_base`` at ``base(<name>)``:

- ``{base("telegram")}/bot<token>/<method>`` answers like the Bot API (``{"ok": true, ...}``);
- ``{base("whatsapp")}/<phone_number_id>/messages`` answers like the Cloud API;
- ``{base("slack")}/chat.postMessage`` answers like Slack's Web API;
- ``{base("generic")}/<anything>`` is a callback URL;
- files put in ``files`` (``{id: (bytes, content type)}``) are served as each platform serves
  what users send: Telegram ``getFile`` + ``/file/bot<token>/<path>``, WhatsApp
  ``GET /<media id>`` (a ``url``) + that url with the bearer token, Slack ``/files/<id>`` with the
  bot token (``slack_file_url(id)``). A file id not in ``files`` is a 404.

Every request is recorded with its method, path, headers and raw and decoded body.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.support.threaded import ThreadedServer

Request = dict[str, Any]


class FakePlatforms(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.received: list[Request] = []
        self.files: dict[str, tuple[bytes, str]] = {}

    def base(self, platform: str) -> str:
        return f"http://127.0.0.1:{self.port}/{platform}"

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{platform}/{tail:.*}", self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        platform = request.match_info["platform"]
        self.received.append({
            "platform": platform,
            "method": request.method,
            "path": request.path.removeprefix(f"/{platform}"),
            "headers": dict(request.headers),
            "raw": raw,
            "body": body,
        })
        if request.method == "GET":
            return self._serve_file(platform, request)
        if platform == "telegram":
            return web.json_response({"ok": True, "result": {"message_id": len(self.received)}})
        if platform == "whatsapp":
            to = body.get("to") if isinstance(body, dict) else None
            return web.json_response({
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": f"wamid.{uuid.uuid4().hex}"}],
            })
        if platform == "slack":
            channel = body.get("channel") if isinstance(body, dict) else None
            return web.json_response({"ok": True, "channel": channel, "ts": f"{time.time():.6f}"})
        return web.json_response({"ok": True})

    def slack_file_url(self, file_id: str) -> str:
        return f"{self.base('slack')}/files/{file_id}"

    def _serve_file(self, platform: str, request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if platform == "telegram" and tail.endswith("/getFile"):
            file_id = request.query.get("file_id", "")
            if file_id not in self.files:
                return web.json_response({"ok": False, "description": "Bad Request: invalid file_id"}, status=400)
            return web.json_response({"ok": True, "result": {"file_id": file_id, "file_path": f"files/{file_id}"}})
        if platform == "whatsapp" and "/" not in tail:  # media lookup
            if tail not in self.files:
                return web.json_response({"error": {"message": "unknown media"}}, status=404)
            return web.json_response({"url": f"{self.base('whatsapp')}/download/{tail}", "id": tail,
                                      "mime_type": self.files[tail][1]})
        file_id = tail.rsplit("/", 1)[-1]
        if file_id not in self.files:
            return web.json_response({"error": "no such file"}, status=404)
        data, content_type = self.files[file_id]
        return web.Response(body=data, content_type=content_type)

    def matching(self, predicate: Callable[[Request], bool]) -> list[Request]:
        return [r for r in list(self.received) if predicate(r)]

    def wait_for(self, predicate: Callable[[Request], bool], timeout_s: float = 20.0) -> list[Request]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            hits = self.matching(predicate)
            if hits:
                return hits
            time.sleep(0.05)
        raise TimeoutError(f"no matching platform call within {timeout_s}s; got {self.received!r}")


__all__ = ["FakePlatforms"]
