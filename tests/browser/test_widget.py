"""The embeddable widget in Chromium, as a site's visitor meets it: one script tag on a page of
ANOTHER origin (a small aiohttp server on its own port), the application's allowed origins
naming that page. Parley is `parley dev` against the fake OpenAI-compatible model
(tests/support/fake_llm.py: "You said: <text>", or ``drip-N`` for an answer slow enough to stop).

Screenshots go to docs/images/ (docs/widget.md shows them). The tests run in file order: the
last one restarts the server.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import Browser, FrameLocator, Page, expect

from parley.web.auth import make_user_token
from tests.conftest import ADMIN_KEY
from tests.support.browser import SCREENSHOTS
from tests.support.fake_llm import FakeLLM
from tests.support.net import free_port
from tests.support.threaded import ThreadedServer
from tests.support.worker import ParleyProcess

HOSTILE = (
    "Look:\n\n<script>window.__pwned = 'script'</script>\n\n"
    "<img src=x onerror=\"window.__pwned = 'onerror'\">\n\n"
    "[click me](javascript:window.__pwned='link') and [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) "
    "and <a href=\"javascript:window.__pwned='a'\">raw</a> and ![pixel](https://tracker.example/p.png) "
    "and [a real one](https://example.com/docs)"
)
MEMBERS_SECRET = "members-secret-0123456789"
#: a 1x1 PNG
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
MARKDOWN = (
    "here is a list:\n\n- **bold** item\n- `inline` item\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "```\nprint('hi')\n```"
)


class HostSite(ThreadedServer):
    """Another origin: a shop's page carrying the one script tag."""

    def __init__(self, parley: str) -> None:
        super().__init__()
        self.parley = parley

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        async def page(request: web.Request) -> web.Response:
            application = request.query.get("application", "shop")
            token = request.query.get("token")
            extra = f" data-user-token='{token}'" if token else ""
            return web.Response(content_type="text/html", text=(
                "<!doctype html><html><head><meta name=viewport content='width=device-width, initial-scale=1'>"
                "<title>A shop</title><style>body{font:16px serif;background:#fafafa} button{color:red !important}</style>"
                "</head><body><h1>A shop selling things</h1><p>Content of the host page.</p>"
                f"<script src='{self.parley}/widget.js' data-application='{application}'{extra} async></script>"
                "</body></html>"
            ))

        app.router.add_get("/", page)


def admin(base: str, method: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{base}{path}", data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test's own server
        assert response.status in (200, 201)


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def parley(tmp_path_factory: pytest.TempPathFactory, llm: FakeLLM) -> Iterator[ParleyProcess]:
    tmp: Path = tmp_path_factory.mktemp("widget-dev")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update(PARLEY_APP_ID=f"parley-widget-{port}", PARLEY_LLM_BASE_URL=llm.base_url,
               PARLEY_LLM_API_KEY="test-key", PARLEY_LLM_MODEL="fake", PARLEY_ADMIN_API_KEY=ADMIN_KEY)
    process = ParleyProcess(["dev", "--port", str(port), "--data-dir", str(tmp / "data")], env,
                            tmp / "dev.log", port, inherit_env=False).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def site(parley: ParleyProcess) -> Iterator[HostSite]:
    host = HostSite(parley.http)
    host.start()
    admin(parley.http, "PUT", "/v1/admin/chatbots/shop-bot", {"system_prompt": "You help shoppers."})
    admin(parley.http, "PUT", "/v1/admin/chatbots/slow-bot", {"system_prompt": "You talk a lot.", "model": "drip-40"})
    branding = {"display_name": "Shop helper", "accent_color": "#0a7d4f", "welcome_message": "Welcome to the shop!",
                "placeholder": "Ask about an order…", "language": "en"}
    admin(parley.http, "PUT", "/v1/admin/applications/shop", {
        "name": "Shop", "chatbot_id": "shop-bot", "allowed_origins": [host.origin], "widget": branding})
    admin(parley.http, "PUT", "/v1/admin/chatbots/strict-bot", {"system_prompt": "One a minute.", "rate_limit_per_minute": 1})
    admin(parley.http, "PUT", "/v1/admin/applications/members", {
        "name": "Members", "chatbot_id": "shop-bot", "allowed_origins": [host.origin], "allow_anonymous": False,
        "secret": MEMBERS_SECRET})
    admin(parley.http, "PUT", "/v1/admin/applications/strict", {
        "name": "Strict", "chatbot_id": "strict-bot", "allowed_origins": [host.origin]})
    admin(parley.http, "PUT", "/v1/admin/applications/slow", {
        "name": "Slow", "chatbot_id": "slow-bot", "allowed_origins": [host.origin],
        "widget": {"display_name": "Boutique", "language": "fr"}})
    yield host
    host.stop()


def open_widget(page: Page, site: HostSite, application: str = "shop", token: str | None = None) -> FrameLocator:
    page.goto(f"{site.origin}/?application={application}" + (f"&token={token}" if token else ""))
    launcher = page.locator("[data-parley-widget] >> css=.launcher")
    launcher.click()
    panel = page.frame_locator("[data-parley-widget] >> css=iframe")
    return panel


def new_conversation(browser: Browser, site: HostSite) -> tuple[Page, FrameLocator]:
    """A desktop-size page of the host site with the widget open on a new conversation."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    panel = open_widget(page, site)
    expect(panel.locator("#status")).to_have_text("Online")
    panel.locator("#new-conv").click()
    expect(panel.locator("#status")).to_have_text("Online")
    return page, panel


def send(panel: FrameLocator, text: str) -> None:
    panel.locator("#input").fill(text)
    panel.locator("#input").press("Enter")


def test_a_page_on_another_origin_gets_a_branded_widget_that_chats(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    panel = open_widget(page, site)
    expect(panel.locator("#title")).to_have_text("Shop helper")
    expect(panel.locator("#status")).to_have_text("Online")
    expect(panel.locator(".row.welcome .bubble")).to_have_text("Welcome to the shop!")
    expect(panel.locator("#input")).to_have_attribute("placeholder", "Ask about an order…")
    assert panel.locator("header").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(10, 125, 79)"
    expect(panel.locator("#input")).to_be_focused()
    send(panel, "where is my parcel?")
    answer = panel.locator(".row.theirs:not(.welcome) .bubble").last
    expect(answer).to_have_text("You said: where is my parcel?")
    expect(panel.locator(".row.mine .tick").last).to_have_text("✓✓")  # sent, then answered
    expect(panel.locator(".row.mine time").last).to_have_text(re.compile(r"\d\d:\d\d"))
    page.screenshot(path=str(SCREENSHOTS / "widget-desktop.png"))
    # an answer that arrives while the panel is closed raises the launcher's unread badge
    page.locator("[data-parley-widget] >> css=.launcher").click()  # closes the panel
    panel.locator("body").evaluate("() => window.parley.send('one more')")
    expect(page.locator("[data-parley-widget] >> css=.badge")).to_have_text("1")
    page.locator("[data-parley-widget] >> css=.launcher").click()  # opening it clears the badge
    expect(page.locator("[data-parley-widget] >> css=.badge")).to_be_hidden()
    assert not [url for url in failed if "favicon" in url or "widget" in url], failed
    context.close()


def test_answers_are_rendered_markdown_with_copy_buttons(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    panel = open_widget(page, site)
    expect(panel.locator("#status")).to_have_text("Online")
    send(panel, MARKDOWN)
    answer = panel.locator(".row.theirs:not(.welcome) .bubble").last
    expect(answer.locator("li")).to_have_count(2)
    expect(answer.locator("strong")).to_have_text("bold")
    expect(answer.locator("table td").first).to_have_text("1")
    expect(answer.locator("pre code")).to_have_text("print('hi')\n")
    expect(answer.locator("pre .copy")).to_have_text("Copy")
    page.screenshot(path=str(SCREENSHOTS / "widget-markdown.png"))
    page.close()


def test_tool_activity_is_a_compact_line_also_after_a_reload(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page, panel = new_conversation(browser, site)
    send(panel, "what is the time in Europe/Paris?")
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_contain_text("The tool said")
    expect(panel.locator(".sys.tool")).to_have_text(["⚙ Used current_time"])
    page.reload()
    page.locator("[data-parley-widget] >> css=.launcher").click()
    panel = page.frame_locator("[data-parley-widget] >> css=iframe")
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_contain_text("The tool said")
    expect(panel.locator(".sys.tool")).to_have_text(["⚙ Used current_time"])
    page.close()


@pytest.mark.parametrize("upload", ["succeeds", "fails"])
def test_a_message_sent_while_its_file_uploads_waits_for_the_upload(
    browser: Browser, parley: ParleyProcess, site: HostSite, upload: str
) -> None:
    page, panel = new_conversation(browser, site)
    held: list[Any] = []

    def hold(route: Any) -> None:  # the upload waits until the test lets it through
        held.append(route)

    page.route("**/uploads", hold)
    panel.locator("#file").set_input_files(files=[{"name": "late.png", "mimeType": "image/png", "buffer": PNG}])
    expect(panel.locator(".chip.uploading")).to_contain_text("late.png")
    send(panel, "with the picture")
    expect(panel.locator(".sys", has_text="Sending once the files are uploaded")).to_be_visible()
    expect(panel.locator("#input")).to_have_value("")
    expect(panel.locator(".row.mine")).to_have_count(0)  # held, not sent without its file
    page.wait_for_function("() => true")  # let the routed request reach the handler
    assert len(held) == 1
    if upload == "fails":
        held[0].abort()
        expect(panel.locator(".sys", has_text="Could not attach late.png")).to_be_visible()
        expect(panel.locator("#input")).to_have_value("with the picture")  # back, for the user to decide
        expect(panel.locator(".row.mine")).to_have_count(0)
        page.close()
        return
    held[0].continue_()
    expect(panel.locator(".row.mine .bubble").last).to_contain_text("with the picture")
    expect(panel.locator(".row.mine .thumbs img")).to_have_count(1)
    # (the fake model answers with the prompt's content parts: the text and the image's link)
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_contain_text("image_url")
    page.close()


def test_attached_images_show_as_thumbnails_also_after_a_reload(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page, panel = new_conversation(browser, site)
    panel.locator("#file").set_input_files(files=[{"name": "dot.png", "mimeType": "image/png", "buffer": PNG}])
    expect(panel.locator(".chip:not(.uploading)")).to_contain_text("dot.png")
    send(panel, "this one")
    # (the fake model answers with the prompt's content parts: the text and the image's link)
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_contain_text("image_url")
    thumb = panel.locator(".row.mine .thumbs img")
    expect(thumb).to_have_count(1)
    page.reload()
    page.locator("[data-parley-widget] >> css=.launcher").click()
    panel = page.frame_locator("[data-parley-widget] >> css=iframe")
    thumb = panel.locator(".row.mine .thumbs img")
    expect(thumb).to_have_count(1)
    expect(thumb).to_have_attribute("src", re.compile(r"^http://127\.0\.0\.1:\d+/v1/files/"))
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth)") == 1  # the link loads the image
    page.close()


def test_hostile_markdown_runs_nothing_and_links_are_safe(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    panel = open_widget(page, site)
    expect(panel.locator("#status")).to_have_text("Online")
    send(panel, HOSTILE)
    answer = panel.locator(".row.theirs:not(.welcome) .bubble").last
    expect(answer.locator("a")).to_have_count(2)  # the pixel (as a link) and the real one: no javascript:, no data:
    assert answer.locator("script, img, iframe, [onerror]").count() == 0
    for link in answer.locator("a").all():
        href = link.get_attribute("href") or ""
        assert href.startswith("https://"), href
        assert set((link.get_attribute("rel") or "").split()) >= {"noopener", "nofollow"}
    expect(answer).to_contain_text("<script>window.__pwned = 'script'</script>")  # shown as text
    answer.get_by_text("click me", exact=False).click()  # not a link: nothing happens
    frame = page.frame_locator("[data-parley-widget] >> css=iframe").locator("body")
    assert frame.evaluate("() => window.__pwned === undefined")
    assert page.evaluate("() => window.__pwned === undefined")
    assert dialogs == []
    page.close()


def test_stop_keeps_the_partial_answer_and_the_next_message_is_answered(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    panel = open_widget(page, site, "slow")
    expect(panel.locator("#status")).to_have_text("En ligne")  # this application speaks French
    send(panel, "tell me everything")
    streaming = panel.locator(".bubble.streaming")
    expect(streaming).to_contain_text("word3")
    panel.locator("#stop").click()  # "Arrêter"
    stopped = panel.locator(".bubble.stopped")
    expect(stopped).to_have_count(1)
    expect(panel.locator(".stopped-label")).to_have_text("Arrêté")
    text = stopped.inner_text()
    shown = len(text.split())
    assert 3 < shown < 40, text
    page.wait_for_timeout(1500)  # nothing more streams into it
    assert stopped.inner_text() == text
    page.screenshot(path=str(SCREENSHOTS / "widget-stopped.png"))
    # the archive keeps it marked stopped: a reload shows it from the history
    page.reload()
    page.locator("[data-parley-widget] >> css=.launcher").click()
    panel = page.frame_locator("[data-parley-widget] >> css=iframe")
    expect(panel.locator(".bubble.stopped")).to_have_text(text)
    # the next message is answered normally (all 40 words)
    send(panel, "and now?")
    expect(panel.locator(".row.theirs .bubble:not(.stopped):not(.streaming)").last).to_contain_text("word39", timeout=30_000)
    page.close()


def test_a_signed_in_user_chats_with_the_token_the_site_minted(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    panel = open_widget(page, site, "members", make_user_token(MEMBERS_SECRET, "members", "alice", 600))
    expect(panel.locator("#status")).to_have_text("Online")
    send(panel, "it is me")
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_have_text("You said: it is me")
    assert not [url for url in requests if "widget/panel" in url and "token" in url]  # the fragment stays in the browser
    # without a token, this application takes nobody: the visitor is told, in words
    anonymous = open_widget(page, site, "members")
    expect(anonymous.locator("#banner")).to_have_text("Please sign in again to chat.")
    page.close()


def test_a_refused_message_is_marked_failed_and_not_sent_again_by_itself(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    panel = open_widget(page, site, "strict")  # its chatbot takes one message a minute
    expect(panel.locator("#status")).to_have_text("Online")
    send(panel, "first")
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_have_text("You said: first")
    send(panel, "second")
    failed = panel.locator(".row.mine.failed")
    expect(failed).to_have_count(1)
    expect(failed.locator(".tick")).to_contain_text("You are sending too fast. You can retry in")
    expect(failed.locator("button.retry")).to_be_disabled()  # until the wait is over
    page.wait_for_timeout(1500)
    assert panel.locator(".row.theirs:not(.welcome) .bubble").count() == 1  # nothing resent, nothing answered
    # a message over the text limit is caught before it is sent
    panel.locator("#input").fill("x" * 20_000)
    expect(panel.locator("#count")).to_contain_text("This message is too long")
    expect(panel.locator("#send")).to_be_disabled()
    page.close()


def test_keyboard_only_and_dark_mode(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{site.origin}/?application=shop")
    launcher = page.locator("[data-parley-widget] >> css=.launcher")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.focus()
    page.keyboard.press("Enter")  # opens, and the focus moves into the panel's input
    expect(launcher).to_have_attribute("aria-expanded", "true")
    panel = page.frame_locator("[data-parley-widget] >> css=iframe")
    expect(panel.locator("#status")).to_have_text("Online")
    expect(panel.locator("#input")).to_be_focused()
    panel.locator("#expand").click()  # larger, on a desktop
    box = page.locator("[data-parley-widget] >> css=iframe").bounding_box()
    assert box is not None and box["width"] > 600, box
    panel.locator("#input").focus()
    page.keyboard.type("typed with the keyboard")
    page.keyboard.press("Enter")
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_have_text("You said: typed with the keyboard")
    assert panel.locator("body").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(20, 23, 28)"  # dark
    expect(panel.locator("#log")).to_have_attribute("role", "log")
    page.screenshot(path=str(SCREENSHOTS / "widget-dark.png"))
    page.keyboard.press("Escape")  # closes, and the focus goes back to the launcher
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()
    context.close()


def test_an_unknown_application_says_so(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(20_000)
    panel = open_widget(page, site, "no-such-shop")
    expect(panel.locator("#unknown")).to_contain_text("unknown application")
    expect(panel.locator("#input")).to_be_disabled()
    page.close()


def test_on_a_phone_the_panel_fills_the_screen(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(20_000)
    panel = open_widget(page, site)
    expect(panel.locator("#status")).to_have_text("Online")
    box = page.locator("[data-parley-widget] >> css=iframe").bounding_box()
    assert box is not None and box["width"] >= 389 and box["height"] >= 843, box
    expect(panel.locator("#expand")).to_be_hidden()  # already as large as it gets
    send(panel, "hello from a phone")
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_have_text("You said: hello from a phone")
    page.screenshot(path=str(SCREENSHOTS / "widget-phone.png"))
    panel.locator("#close").click()
    expect(page.locator("[data-parley-widget] >> css=.launcher")).to_be_visible()
    context.close()


def test_the_widget_reconnects_after_the_server_restarts(browser: Browser, parley: ParleyProcess, site: HostSite) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(30_000)
    panel = open_widget(page, site)
    expect(panel.locator("#status")).to_have_text("Online")
    send(panel, "before the restart")
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_have_text("You said: before the restart")
    parley.stop()
    expect(panel.locator("#banner")).to_contain_text("Connection lost")
    parley.start()
    expect(panel.locator("#status")).to_have_text("Online", timeout=60_000)
    send(panel, "after the restart")
    expect(panel.locator(".row.theirs:not(.welcome) .bubble").last).to_have_text("You said: after the restart", timeout=30_000)
    page.close()
