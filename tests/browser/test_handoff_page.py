"""The chat page in Chromium (``parley dev``, echo model): during a human handoff the user sees
who joined, the operator's message under their name, and that the assistant is back; a message
resent after its answer shows no typing indicator."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.net import free_port
from tests.support.worker import ParleyProcess

KEY = "browser-handoff-admin-key"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParleyProcess]:
    tmp: Path = tmp_path_factory.mktemp("browser-handoff")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(PARLEY_APP_ID=f"parley-handoff-{port}", PARLEY_ADMIN_API_KEY=KEY)
    process = ParleyProcess(["dev", "--port", str(port), "--data-dir", str(tmp / "data")], env,
                            tmp / "dev.log", port, inherit_env=False).start()
    yield process
    process.stop()


def api(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def open_chat(page: Page, dev: ParleyProcess) -> str:
    """The chat page on a new conversation of the demo application, connected; its id."""
    conversation = f"c-{uuid.uuid4().hex[:10]}"
    page.goto(f"{dev.http}/?application=demo&conversation={conversation}")
    expect(page.locator("#status")).not_to_have_text("connecting")
    return conversation


def say(page: Page, text: str) -> None:
    """Send ``text`` and wait for the echo model's answer."""
    page.fill("#input", text)
    page.click("#send")
    expect(page.locator(".bubble.assistant").last).to_have_text(f"echo: {text}")


def test_the_chat_page_shows_the_operator_by_name_during_a_handoff(dev: ParleyProcess, page: Page) -> None:
    conversation = open_chat(page, dev)
    say(page, "hello")

    base = f"{dev.http}/v1/admin/applications/demo/conversations/{conversation}"
    api("POST", f"{base}/handoff")
    expect(page.locator(".sys", has_text="Administrator joined the conversation")).to_be_visible()
    api("POST", f"{base}/messages", {"text": "Hi, a person here."})
    operator = page.locator(".row.person").last  # a person's answer: their name beside it
    expect(operator.locator(".bubble")).to_contain_text("Hi, a person here.")
    expect(operator.locator(".who")).to_have_text("Administrator")
    # a reload during the handoff: the history, then who answers now
    page.reload()
    expect(page.locator(".row.person").last.locator(".bubble")).to_contain_text("Hi, a person here.")
    expect(page.locator(".sys", has_text="Administrator joined the conversation")).to_be_visible()

    api("DELETE", f"{base}/handoff")
    expect(page.locator(".sys", has_text="assistant again")).to_be_visible()
    say(page, "thanks")


def test_a_resent_message_that_was_answered_shows_no_typing(dev: ParleyProcess, page: Page) -> None:
    """A message resent after its answer (its ack was lost) is acked again and gets a ``typing``
    frame, but no second answer: the page knows it was answered and shows no "…" for it."""
    frames: list[dict[str, Any]] = []
    routes: list[Any] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        routes.append(ws)

        def forward(message: str | bytes) -> None:
            if isinstance(message, str):
                frames.append(json.loads(message))
            ws.send(message)

        server.on_message(forward)

    page.route_web_socket(lambda url: url.split("?")[0].endswith("/ws"), route)
    open_chat(page, dev)
    say(page, "hello")
    expect(page.locator(".typing")).to_have_count(0)
    [answer] = [f for f in frames if f.get("type") == "message" and f.get("role") == "assistant"]
    # what the gateway sends for the resend: ack, then typing for the same event id
    routes[-1].send(json.dumps({"type": "typing", "state": "started", "in_reply_to": answer["in_reply_to"]}))
    page.wait_for_timeout(300)
    expect(page.locator(".typing")).to_have_count(0)
    # a typing frame for a message not answered yet still shows
    routes[-1].send(json.dumps({"type": "typing", "state": "started", "in_reply_to": "not-answered-yet"}))
    expect(page.locator(".typing")).to_have_count(1)
