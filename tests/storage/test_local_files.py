"""LocalFileStore: files in a directory, read back through HMAC-signed links that expire.
(The web app serving those links is tested in tests/web/test_uploads.py.)"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from parley.storage.files import LinkError, LocalFileStore, is_valid_key, make_key

KEY = "demo/2026/01/" + "ab" * 16 + ".png"


@pytest.fixture
async def store(tmp_path: Path) -> LocalFileStore:
    store = LocalFileStore(tmp_path / "files", "http://127.0.0.1:8080/")
    await store.start()
    return store


def link_parts(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return unquote(parts.path.removeprefix("/v1/files/")), query["expires"][0], query["sig"][0]


async def test_put_stat_get_and_files_on_disk(store: LocalFileStore) -> None:
    assert await store.put(KEY, b"\x89PNG\r\n\x1a\nrest", "image/png", name="a.png", metadata={"user": "u1"}) == 12
    info = await store.stat(KEY)
    assert info is not None
    assert (info.content_type, info.size, info.name, dict(info.metadata)) == ("image/png", 12, "a.png", {"user": "u1"})
    assert await store.get(KEY) == b"\x89PNG\r\n\x1a\nrest"
    assert (store.root / KEY).read_bytes() == b"\x89PNG\r\n\x1a\nrest"
    assert [p.name for p in (store.root / KEY).parent.iterdir() if p.name.endswith(".tmp")] == []
    assert await store.stat("demo/2026/01/" + "cd" * 16 + ".png") is None


async def test_a_signed_link_verifies_until_it_expires(store: LocalFileStore) -> None:
    url = await store.presigned_url(KEY, 60)
    assert url.startswith("http://127.0.0.1:8080/v1/files/demo/2026/01/")
    key, expires, sig = link_parts(url)
    assert key == KEY and abs(int(expires) - (time.time() + 60)) < 5
    store.verify_link(key, expires, sig)
    with pytest.raises(LinkError, match="expired"):
        store.verify_link(key, expires, sig, now=int(expires))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda k, e, s: (k, e, "0" * 64),  # forged signature
        lambda k, e, s: (k, str(int(e) + 3600), s),  # expiry pushed back
        lambda k, e, s: ("demo/2026/01/" + "ef" * 16 + ".png", e, s),  # another file
        lambda k, e, s: ("other/2026/01/" + "ab" * 16 + ".png", e, s),  # another application
        lambda k, e, s: (k, None, s),
        lambda k, e, s: (k, e, None),
        lambda k, e, s: (k, "-5", s),
        lambda k, e, s: (k, e, s.upper()),
    ],
)
async def test_a_tampered_link_is_refused(store: LocalFileStore, tamper) -> None:
    key, expires, sig = link_parts(await store.presigned_url(KEY, 60))
    with pytest.raises(LinkError):
        store.verify_link(*tamper(key, expires, sig))


async def test_links_of_another_process_key_do_not_verify(store: LocalFileStore) -> None:
    other = LocalFileStore(store.root, "http://127.0.0.1:8080", signing_key=b"another key")
    key, expires, sig = link_parts(await other.presigned_url(KEY, 60))
    with pytest.raises(LinkError):
        store.verify_link(key, expires, sig)
    shared = LocalFileStore(store.root, "http://x", signing_key=b"another key")
    shared.verify_link(key, expires, sig)  # a shared PARLEY_FILES_SIGNING_KEY does


TRAVERSALS = [
    "../secret.txt",
    "demo/../../secret.txt",
    "demo/2026/01/../../../../etc/passwd",
    "/etc/passwd",
    "demo/2026/01/" + "ab" * 16 + ".png/../../x",
    "demo/2026/01/" + "ab" * 16 + ".png.meta.json",
    "..\\..\\secret.txt",
    "demo/2026/01/" + "ab" * 16 + "\x00.png",
    "demo//2026/01/" + "ab" * 16,
    "./demo/2026/01/" + "ab" * 16,
    "demo/2026/01/%2e%2e/" + "ab" * 16,
    "",
]


@pytest.mark.parametrize("key", TRAVERSALS)
async def test_keys_that_are_not_file_keys_are_refused(store: LocalFileStore, tmp_path: Path, key: str) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    assert not is_valid_key(key)
    with pytest.raises(ValueError):
        store.path_for(key)
    with pytest.raises(ValueError):
        await store.put(key, b"x", "text/plain")
    with pytest.raises(ValueError):
        await store.presigned_url(key, 60)
    assert await store.stat(key) is None


async def test_a_symlink_out_of_the_directory_is_refused(store: LocalFileStore, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    (store.root / "demo").mkdir(parents=True)
    (store.root / "demo" / "2026").symlink_to(tmp_path / "outside")
    with pytest.raises(ValueError, match="leaves"):
        store.path_for(KEY)


def test_made_keys_are_file_keys() -> None:
    key = make_key("my-app.v2", ".webp", now=0)
    assert key.startswith("my-app.v2/1970/01/") and key.endswith(".webp") and is_valid_key(key)
    assert make_key("demo", "") != make_key("demo", "")
    with pytest.raises(ValueError):
        make_key("../demo", ".png")
