"""The browser harness: Debian's Chromium, headless, chats on the page ``parley dev`` serves."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support.net import free_port
from tests.support.worker import ParleyProcess


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParleyProcess]:
    """`parley dev` as on a laptop (echo model, embedded servers), none of the caller's settings."""
    tmp: Path = tmp_path_factory.mktemp("browser-dev")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env["PARLEY_APP_ID"] = f"parley-browser-{port}"
    process = ParleyProcess(["dev", "--port", str(port), "--data-dir", str(tmp / "data")], env,
                            tmp / "dev.log", port, inherit_env=False).start()
    yield process
    process.stop()


def test_the_chat_page_answers_in_chromium(dev: ParleyProcess, page: Page) -> None:
    page.goto(f"{dev.http}/?application=demo")
    expect(page.locator("#status")).not_to_have_text("connecting")
    page.fill("#input", "hello from chromium")
    page.click("#send")
    expect(page.locator(".bubble.assistant").last).to_have_text("echo: hello from chromium")
