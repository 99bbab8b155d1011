"""The console's pages and files as ``create_web_app`` serves them, and ``GET /v1/admin/tools``
(the browser tests in tests/browser/test_console.py drive the pages themselves)."""

from __future__ import annotations

import tomllib
from collections.abc import Awaitable, Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from parley.settings import Settings
from parley.web.app import create_web_app
from parley.web.ingress import Ingress
from tests.support.webdeps import web_deps

KEY = "console-test-key-0123456789"
ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "parley" / "web" / "static" / "console"
ClientFactory = Callable[[web.Application], Awaitable[TestClient]]


async def _never(key: str, value: bytes) -> None:
    raise AssertionError("the console produces nothing")


async def _ready() -> tuple[bool, dict[str, Any]]:
    return True, {}


@pytest.fixture
async def client(aiohttp_client: ClientFactory) -> TestClient:
    app = create_web_app(settings=Settings(admin_api_key=KEY), deps=web_deps(configs=object()),
                         ingress=Ingress(_never, timeout_s=1), readiness=_ready)
    return await aiohttp_client(app)


@pytest.mark.parametrize("path", ["/console/", "/console/signin", "/console/chatbots/support", "/console/conversations/shop/c-1"])
async def test_every_console_page_is_the_shell_with_a_strict_content_security_policy(client: TestClient, path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    page = await response.text()
    assert '<script type="module" src="/console/assets/app.js">' in page
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert "<script>" not in page  # no inline script: the policy would block it


async def test_console_without_a_slash_redirects(client: TestClient) -> None:
    response = await client.get("/console", allow_redirects=False)
    assert response.status == 301
    assert response.headers["Location"] == "/console/"


async def test_the_assets_are_served_with_their_types(client: TestClient) -> None:
    for name, kind in [("app.js", "text/javascript"), ("console.css", "text/css"), ("pages/chatbot.js", "text/javascript")]:
        response = await client.get(f"/console/assets/{name}")
        assert response.status == 200, name
        assert response.content_type == kind
        assert (await response.read()) == (STATIC / name).read_bytes()


@pytest.mark.parametrize("name", ["nope.js", "index.html", "pages/.hidden.js", "pages%2F..%2F..%2Fconsole.py", "..%2fconsole.py", "a/b/c.js", "APP.JS"])
async def test_anything_else_under_assets_is_404(client: TestClient, name: str) -> None:
    response = await client.get(f"/console/assets/{name}")
    assert response.status == 404


def test_every_console_file_is_in_the_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["parley"]
    files = [p.relative_to(ROOT / "parley").as_posix() for p in STATIC.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch(f, pattern) and "/" not in f[len(pattern) - 1:] for pattern in patterns)]
    assert missing == []


def test_every_module_a_page_imports_exists() -> None:
    """A typo in an import is a blank page in the browser: check the relative imports here."""
    import re

    for module in STATIC.rglob("*.js"):
        for target in re.findall(r"from '(\.{1,2}/[^']+)'", module.read_text()):
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports {target}"
    routed = re.findall(r"'/[^']*', '([a-z]+)'", (STATIC / "app.js").read_text())
    assert routed
    for page in routed:
        assert (STATIC / "pages" / f"{page}.js").is_file(), page


async def test_the_tool_names_need_the_admin_key(client: TestClient) -> None:
    assert (await client.get("/v1/admin/tools")).status == 401
    response = await client.get("/v1/admin/tools", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status == 200
    names = [item["name"] for item in (await response.json())["items"]]
    assert {"current_time", "calculate"} <= set(names)
    assert names == sorted(names)
