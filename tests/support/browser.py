"""Debian's Chromium, headless, driven by Playwright for the browser tests.

Never a downloaded browser: ``make test`` installs Debian's ``chromium`` (``make system-deps``)
and Playwright is pointed at ``/usr/bin/chromium`` (``PARLEY_TEST_CHROMIUM`` overrides).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["CHROMIUM_ARGS", "chromium_path", "SCREENSHOTS"]

#: the flags every headless start uses (no sandbox inside containers, no background traffic)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: where tests write their screenshots: the ones docs/ embeds (docs/images/) with
#: PARLEY_UPDATE_SCREENSHOTS=1 (`make screenshots`), else a temporary directory, so a test run
#: leaves the checkout as it was
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "images"
    if os.environ.get("PARLEY_UPDATE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "parley-screenshots"
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def chromium_path() -> str:
    """The Chromium binary, or a clear error naming how to get it."""
    path = os.environ.get("PARLEY_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError(
            f"no Chromium at {path}: `make system-deps` installs Debian's chromium "
            "(or set PARLEY_TEST_CHROMIUM to a Chromium binary)"
        )
    return path
