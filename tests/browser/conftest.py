"""Fixtures of the browser tests: one headless Chromium per module, a fresh context per test.

Playwright's sync API runs its own event loop in a thread, so browser tests are plain (sync)
test functions; the Parley under test runs as a child process (``tests/support/worker.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.support.browser import CHROMIUM_ARGS, chromium_path


# Module scope, not session: while Playwright's sync API is running it holds an event loop in
# this thread, and every asyncio test collected after the browser tests (tests/web, …) then
# fails with "Runner.run() cannot be called from a running event loop". Stopping it after each
# module costs one Chromium start per module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # (so a browser test module holds sync tests only)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def browser_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context
    context.close()


@pytest.fixture
def page(browser_context: BrowserContext) -> Page:
    page = browser_context.new_page()
    page.set_default_timeout(15_000)
    return page
