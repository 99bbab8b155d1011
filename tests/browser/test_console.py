"""The operators' console (/console/) in Debian's Chromium against a real `parley dev`: what an
operator sees while signing in, making a chatbot and an application, correcting a field the
API refused, and chatting in the try-it panel (a tool call through the fake model).

Each test starts from a fresh browser context (no cookies, no stored key). Screenshots of the
main pages go to docs/images/ (docs/console.md embeds them).
"""

from __future__ import annotations

import json
import os
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import SCREENSHOTS
from tests.support.fake_llm import FakeLLM
from tests.support.net import free_port
from tests.support.worker import ParleyProcess

KEY = "console-browser-key-0123456789abcdef"


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Iterator[ParleyProcess]:
    """`parley dev` with an admin key and the fake model (which calls tools when asked the time)."""
    tmp: Path = tmp_path_factory.mktemp("browser-console")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env.update({
        "PARLEY_APP_ID": f"parley-console-{port}",
        "PARLEY_ADMIN_API_KEY": KEY,
        "PARLEY_LLM_BASE_URL": fake_llm.base_url,
        "PARLEY_LLM_API_KEY": "test-key",
        "PARLEY_LLM_MODEL": "fake-model",
        # the applications made in the tests call back to a loopback receiver
        "PARLEY_EGRESS_ALLOW": "127.0.0.0/8",
        # a model failure is a dead letter quickly
        "PARLEY_LLM_MAX_ATTEMPTS": "1",
    })
    process = ParleyProcess(["dev", "--port", str(port), "--data-dir", str(tmp / "data")], env,
                            tmp / "dev.log", port, inherit_env=False).start()
    yield process
    process.stop()


def admin(process: ParleyProcess, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The admin API with the key (setting up what a test is not about)."""
    request = urllib.request.Request(
        process.http + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 - loopback
        raw = response.read()
    return json.loads(raw) if raw else None


def chatbot_and_application(process: ParleyProcess, name: str) -> None:
    admin(process, "POST", "/v1/admin/chatbots", {"id": name, "system_prompt": "You tell the time.", "tools": ["current_time"]})
    admin(process, "POST", "/v1/admin/applications", {"id": name, "name": name.title(), "chatbot_id": name})


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"console-{name}.png"), full_page=True)


def sign_in_with_key(page: Page, base: str, key: str = KEY) -> None:
    page.goto(f"{base}/console/")
    expect(page).to_have_url(re.compile(r"/console/signin"))
    page.get_by_text("Sign in with the admin key instead").click()
    page.fill("#admin-key", key)
    page.get_by_role("button", name="Use the admin key").click()


def test_signing_in_with_a_wrong_key_says_so_and_the_right_one_opens_the_console(console: ParleyProcess, page: Page) -> None:
    page.goto(f"{console.http}/console/chatbots")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    shot(page, "signin")
    page.get_by_text("Sign in with the admin key instead").click()
    page.fill("#admin-key", "not-the-key")
    page.get_by_role("button", name="Use the admin key").click()
    expect(page.locator(".key-form .form-errors")).to_contain_text("wrong admin key")

    page.fill("#admin-key", KEY)
    page.get_by_role("button", name="Use the admin key").click()
    # back where the operator was going, signed in
    expect(page).to_have_url(f"{console.http}/console/chatbots")
    expect(page.get_by_role("heading", name="Chatbots")).to_be_visible()
    expect(page.locator("#who-role")).to_have_text("owner · admin key")
    expect(page.locator("tr[data-id=demo]")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{console.http}/console/chatbots")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_the_sign_in_link_parley_dev_prints_opens_the_console_as_the_dev_owner(console: ParleyProcess, page: Page) -> None:
    found = re.search(r"(http://\S+/v1/auth/link/\S+)", console.log_path.read_text())
    assert found, console.log_tail()
    page.goto(found.group(1))  # opening the link signs nobody in: its button does
    expect(page.get_by_role("heading", name="Sign in to Parley")).to_be_visible()
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{console.http}/console/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#who-role")).to_have_text("owner")
    expect(page.get_by_role("link", name="Users")).to_be_visible()
    # the link works once
    page.context.clear_cookies()
    page.goto(found.group(1))
    expect(page.locator("body")).to_contain_text("used already or has expired")


def test_a_chatbot_and_an_application_are_made_field_errors_shown_and_the_bot_tried(console: ParleyProcess, page: Page) -> None:
    sign_in_with_key(page, console.http)
    page.get_by_role("link", name="Chatbots").click()
    page.get_by_role("link", name="New chatbot").click()
    page.fill("#f-id", "timekeeper")
    page.fill("#f-system_prompt", "You tell the time.")
    page.fill("#f-temperature", "5")
    page.locator("#f-tools-all").uncheck()
    page.locator("input[data-tool=current_time]").check()
    page.get_by_role("button", name="Create chatbot").click()
    # the API's 422 names the field; the form shows it next to the field and keeps the input
    temperature = page.locator(".field[data-field=temperature]")
    expect(temperature.locator(".field-error")).to_have_text("must be at most 2")
    expect(page.locator(".form-errors")).to_contain_text("Not saved")
    expect(page.locator("#f-temperature")).to_have_value("5")
    shot(page, "field-error")

    page.fill("#f-temperature", "0.2")
    page.get_by_role("button", name="Create chatbot").click()
    expect(page).to_have_url(f"{console.http}/console/chatbots/timekeeper")
    expect(page.locator("#flash")).to_contain_text("Chatbot timekeeper created")
    expect(page.locator("input[data-tool=current_time]")).to_be_checked()
    expect(page.locator("input[data-tool=calculate]")).not_to_be_checked()
    expect(page.get_by_test_id("try-it")).to_contain_text("No application uses this chatbot")

    page.get_by_role("link", name="Applications").click()
    page.get_by_role("link", name="New application").click()
    page.fill("#f-id", "clock")
    page.fill("#f-name", "The clock shop")
    page.select_option("#f-chatbot_id", "timekeeper")
    page.fill("#f-callback_url", "ftp://clock.example/replies")
    page.fill("#f-allowed_origins", "https://clock.example/with/a/path")
    page.get_by_role("button", name="Create application").click()
    expect(page.locator(".field[data-field=callback_url] .field-error")).not_to_be_empty()
    expect(page.locator(".field[data-field=allowed_origins] .field-error")).to_contain_text("origin")
    page.fill("#f-callback_url", "")
    page.fill("#f-allowed_origins", "")
    page.get_by_role("button", name="Create application").click()
    expect(page).to_have_url(f"{console.http}/console/applications/clock")
    expect(page.locator("#flash")).to_contain_text("Application clock created")

    page.goto(f"{console.http}/console/chatbots/timekeeper")
    panel = page.get_by_test_id("try-it")
    expect(panel.get_by_test_id("tryit-status")).to_have_text("online")
    expect(page.locator("#tryit-app")).to_have_value("clock")
    page.fill("#tryit-input", "what is the time in Europe/Paris?")
    page.keyboard.press("Enter")
    log = panel.get_by_test_id("tryit-log")
    expect(log.locator(".bubble.user")).to_have_text("what is the time in Europe/Paris?")
    expect(log.locator(".bubble.tool").first).to_contain_text("current_time")
    expect(log.locator(".bubble.assistant.final")).to_contain_text("The tool said:", timeout=30_000)
    expect(log.locator(".bubble.assistant.final")).to_contain_text("Europe/Paris")
    shot(page, "chatbot-try-it")


def test_an_applications_write_only_secret_and_channel_credentials_are_set_and_cleared(console: ParleyProcess, page: Page) -> None:
    sign_in_with_key(page, console.http)
    page.goto(f"{console.http}/console/applications/new")
    page.fill("#f-id", "vault")
    page.fill("#f-name", "Vault")
    page.select_option("#f-chatbot_id", "demo")
    page.fill("#f-secret", "short")
    page.get_by_role("button", name="Create application").click()
    expect(page.locator(".field[data-field=secret] .field-error")).to_contain_text("8")

    page.fill("#f-secret", "a-long-shared-secret")
    page.select_option("#f-channel-platform", "telegram")
    page.fill("#f-channel-credentials", "not json")
    page.get_by_role("button", name="Create application").click()
    expect(page.locator(".field[data-field='channels.credentials'] .field-error")).to_contain_text("JSON object")
    page.fill("#f-channel-credentials", '{"bot_token": "123:abc", "webhook_secret": "s3cret-s3cret"}')
    page.get_by_role("button", name="Create application").click()
    expect(page).to_have_url(f"{console.http}/console/applications/vault")
    # never shown back: only that they are set
    expect(page.get_by_test_id("secret-state")).to_have_text("set")
    expect(page.locator("li[data-channel=telegram]")).to_contain_text("set")
    expect(page.locator("body")).not_to_contain_text("a-long-shared-secret")
    expect(page.locator("body")).not_to_contain_text("123:abc")
    shot(page, "application")

    page.locator("li[data-channel=telegram]").get_by_role("button", name="Clear").click()
    page.locator("#clear-secret").check()
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#flash")).to_contain_text("Application vault saved")
    expect(page.get_by_test_id("secret-state")).to_have_text("not set")
    expect(page.locator("li[data-channel=telegram]")).to_have_count(0)
    expect(page.locator(".channels")).to_contain_text("No channel credentials stored")

    page.get_by_role("link", name="Applications").click()
    row = page.locator("tr[data-id=vault]")
    expect(row).to_contain_text("Vault")
    shot(page, "applications")


def try_it(page: Page, base: str, chatbot: str) -> tuple[Any, str]:
    """The chatbot's try-it panel, connected: (its log, its conversation id)."""
    page.goto(f"{base}/console/chatbots/{chatbot}")
    panel = page.get_by_test_id("try-it")
    expect(panel.get_by_test_id("tryit-status")).to_have_text("online")
    return panel.get_by_test_id("tryit-log"), panel.get_by_test_id("tryit-conversation").inner_text()


def say(page: Page, text: str) -> None:
    page.fill("#tryit-input", text)
    page.keyboard.press("Enter")


def test_an_operator_finds_the_conversation_reads_the_tool_call_takes_over_and_answers(
    console: ParleyProcess, browser_context: Any
) -> None:
    chatbot_and_application(console, "handover")
    user = browser_context.new_page()
    user.set_default_timeout(15_000)
    sign_in_with_key(user, console.http)
    expect(user.get_by_role("heading", name="Overview")).to_be_visible()
    log, conversation = try_it(user, console.http, "handover")
    say(user, "what is the time in Asia/Tokyo?")
    expect(log.locator(".bubble.assistant.final").last).to_contain_text("The tool said:", timeout=30_000)

    operator = browser_context.new_page()  # a tab of its own (the key is kept per tab)
    operator.set_default_timeout(15_000)
    sign_in_with_key(operator, console.http)
    operator.get_by_role("link", name="Conversations").click()
    operator.select_option("#conv-app", "handover")
    expect(operator).to_have_url(re.compile(r"/console/conversations/handover$"))
    operator.fill("#conv-q", conversation)
    operator.get_by_role("button", name="Search").click()
    row = operator.locator(f"tr[data-conversation='{conversation}']")
    expect(row).to_contain_text("The tool said:")
    expect(operator.locator("tr[data-conversation]")).to_have_count(1)
    shot(operator, "conversations")
    row.get_by_role("link", name=conversation).click()

    transcript = operator.get_by_test_id("transcript")
    expect(transcript.locator("[data-role=user]").first).to_contain_text("what is the time in Asia/Tokyo?")
    call = transcript.get_by_test_id("tool-call").first
    expect(call).to_contain_text("current_time")
    expect(call).to_contain_text("Asia/Tokyo")
    expect(transcript.get_by_test_id("tool-result").first).to_contain_text("current_time")
    expect(transcript.locator("[data-role=assistant]").last).to_contain_text("The tool said:")
    expect(transcript.get_by_test_id("delivery").last).to_contain_text("delivery:")
    expect(operator.get_by_test_id("handoff-state")).to_contain_text("bot answering")
    shot(operator, "transcript")

    operator.get_by_role("button", name="Take over").click()
    expect(operator.get_by_test_id("handoff-state")).to_contain_text("taken over by Administrator")
    operator.fill("#operator-text", "Hello, a human here. How can I help?")
    operator.get_by_role("button", name="Send as operator").click()
    expect(operator.locator("#flash")).to_contain_text("Sent to the user")
    # the user sees it in the chat, named
    answer = log.locator(".bubble.assistant[data-operator]")
    expect(answer).to_have_text("Hello, a human here. How can I help?", timeout=30_000)
    expect(answer).to_have_attribute("data-operator", "Administrator")
    expect(transcript.locator("[data-role=operator]")).to_contain_text("Hello, a human here.", timeout=15_000)
    shot(operator, "handoff")

    operator.get_by_role("button", name="Hand back to the bot").click()
    expect(operator.get_by_test_id("handoff-state")).to_contain_text("bot answering")
    say(user, "and the time in Europe/Paris?")
    expect(log.locator(".bubble.assistant.final").last).to_contain_text("Europe/Paris", timeout=30_000)


def test_a_dead_letter_is_inspected_and_replayed(console: ParleyProcess, page: Page) -> None:
    chatbot_and_application(console, "fragile")
    sign_in_with_key(page, console.http)
    log, conversation = try_it(page, console.http, "fragile")
    say(page, "llm-down: this one fails")
    expect(log.locator(".bubble.assistant.final")).to_be_visible(timeout=30_000)  # the error reply

    page.get_by_role("link", name="Dead letters").click()
    page.fill("#dl-app", "fragile")
    page.get_by_role("button", name="Filter").click()
    row = page.locator("tr[data-dead-letter]").first
    expect(row).to_contain_text(conversation, timeout=30_000)
    shot(page, "dead-letters")
    row.locator("a").first.click()
    expect(page.get_by_test_id("dl-error")).not_to_be_empty()
    expect(page.get_by_test_id("dl-decoded")).to_contain_text("llm-down: this one fails")
    expect(page.get_by_test_id("dl-status")).to_have_text("new")
    page.get_by_role("button", name="Replay").click()
    expect(page.locator("#flash")).to_contain_text("Replayed")
    expect(page.get_by_test_id("dl-status")).to_contain_text("replayed")
    shot(page, "dead-letter")


def test_the_overview_shows_the_charts_and_the_gauges(console: ParleyProcess, page: Page) -> None:
    sign_in_with_key(page, console.http)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("svg.chart")).to_have_count(2)
    expect(page.get_by_test_id("stat-sockets").locator(".stat-value")).to_have_text(re.compile(r"^\d+$"))
    expect(page.get_by_test_id("stat-turns").locator(".stat-value")).to_have_text(re.compile(r"^\d+$"))
    shot(page, "overview")


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/console/signin")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_an_owner_signs_in_makes_a_viewer_and_the_audit_log_shows_who_did_it(console: ParleyProcess, page: Page) -> None:
    admin(console, "POST", "/v1/admin/users",
          {"email": "olga@example.com", "name": "Olga Owner", "role": "owner", "password": "correct horse battery"})
    sign_in(page, console.http, "olga@example.com", "a wrong password")
    expect(page.locator("form.signin .form-errors")).to_be_visible()
    expect(page.locator("#nav")).to_be_hidden()
    sign_in(page, console.http, "olga@example.com", "correct horse battery")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator("#who-name")).to_have_text("Olga Owner")
    expect(page.locator("#who-role")).to_have_text("owner")

    page.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="New user").click()
    page.fill("#f-email", "victor@example.com")
    page.fill("#f-name", "Victor Viewer")
    page.select_option("#f-role", "viewer")
    page.fill("#f-password", "short")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator(".field[data-field=password] .field-error")).to_contain_text("at least 10")
    page.fill("#f-password", "a viewer's long password")
    page.get_by_role("button", name="Create user").click()
    expect(page.locator("#flash")).to_contain_text("User victor@example.com saved")
    page.get_by_role("link", name="Users").click()
    expect(page.locator("tr[data-user='victor@example.com']")).to_contain_text("viewer")
    shot(page, "users")

    # a write through the session (CSRF header sent by the console): the audit log names Olga
    page.goto(f"{console.http}/console/chatbots/demo")
    page.fill("#f-system_prompt", "You are Parley's demo assistant, edited by Olga.")
    page.get_by_role("button", name="Save changes").click()
    expect(page.locator("#flash")).to_contain_text("Chatbot demo saved")
    page.get_by_role("link", name="Audit log").click()
    page.locator("input[data-filter=kind]").fill("chatbot")
    page.get_by_role("button", name="Filter").click()
    entry = page.locator("tbody tr").first
    expect(entry).to_contain_text("olga@example.com")
    expect(entry).to_contain_text("demo")
    expect(entry).to_contain_text("session")
    shot(page, "audit")

    # a personal API token: the secret shown once, then listed and revoked
    page.get_by_role("link", name="API tokens").click()
    page.fill("#f-name", "nightly export")
    page.get_by_role("button", name="Make a token").click()
    expect(page.get_by_test_id("token-secret")).to_contain_text("pat_")
    row = page.locator("tr[data-token='nightly export']")
    expect(row).to_contain_text("viewer")
    page.once("dialog", lambda dialog: dialog.accept())  # "Revoke token nightly export?"
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)


def test_a_viewer_reads_everything_and_can_change_nothing(console: ParleyProcess, page: Page) -> None:
    admin(console, "POST", "/v1/admin/users",
          {"email": "vera@example.com", "name": "Vera Viewer", "role": "viewer", "password": "only reading here"})
    sign_in(page, console.http, "vera@example.com", "only reading here")
    expect(page.locator("#who-role")).to_have_text("viewer")
    expect(page.get_by_role("link", name="Users")).to_be_hidden()
    expect(page.get_by_role("link", name="Audit log")).to_be_hidden()

    page.get_by_role("link", name="Chatbots").click()
    expect(page.locator("tr[data-id=demo]")).to_be_visible()
    expect(page.get_by_role("link", name="New chatbot")).to_have_count(0)
    page.locator("tr[data-id=demo] a").first.click()
    expect(page.get_by_test_id("read-only")).to_be_visible()
    expect(page.locator("#f-system_prompt")).to_be_disabled()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    shot(page, "viewer")

    page.goto(f"{console.http}/console/applications/demo")
    expect(page.locator("#f-name")).to_be_disabled()
    expect(page.get_by_role("button", name="Save changes")).to_have_count(0)

    # and the API refuses anyway, even with the session's CSRF token
    status = page.evaluate("""async () => {
        const s = await (await fetch('/v1/auth/session')).json();
        const r = await fetch('/v1/admin/chatbots/demo', {method: 'PATCH', headers: {
            'Content-Type': 'application/json', 'X-CSRF-Token': s.csrf_token}, body: '{"temperature": 1}'});
        return [r.status, (await r.json()).code];
    }""")
    assert status == [403, "forbidden"]


def test_a_transcript_lists_the_files_a_user_attached(console: ParleyProcess, browser_context: Any) -> None:
    chatbot_and_application(console, "papers")
    user = browser_context.new_page()
    user.set_default_timeout(15_000)
    user.goto(f"{console.http}/?app=papers&conversation=c-with-a-file")
    expect(user.locator("#status")).to_have_attribute("data-state", "online")
    user.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"twenty-one bytes here"}])
    # uploaded (a message sent while a file still uploads is held back with "wait for the uploads")
    expect(user.locator(".chip:not(.uploading)")).to_contain_text("notes.txt")
    user.fill("#input", "please read my notes")
    user.click("#send")
    expect(user.locator(".bubble.assistant").last).to_contain_text("You said", timeout=30_000)

    operator = browser_context.new_page()
    operator.set_default_timeout(15_000)
    sign_in_with_key(operator, console.http)
    operator.goto(f"{console.http}/console/conversations/papers/c-with-a-file")
    files = operator.get_by_test_id("transcript").locator("[data-role=user]").get_by_test_id("attachments")
    expect(files).to_contain_text("notes.txt")
    expect(files).to_contain_text("text/plain, 21 bytes")
