"""The content checks every stored file passes read a declared type as aiohttp does (the web
layer used ``aiohttp.helpers.parse_mimetype`` before the checks moved down to layer 0)."""

from __future__ import annotations

import pytest
from aiohttp.helpers import parse_mimetype

from parley.filetypes import checked_content_type, media_type
from parley.validation import InputError

ALLOWED = ("image/png", "text/plain", "application/pdf")
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels"


@pytest.mark.parametrize(
    "declared",
    ["", " ", "image/png", "IMAGE/PNG", " image/png ; charset=x", "image/svg+xml", "text/plain;charset=utf-8",
     "*", "image", "/png", ";", "application/octet-stream", "a/b/c", "x/y+z+w; q=1"],
)
def test_a_declared_type_reads_as_aiohttp_reads_it(declared: str) -> None:
    mime = parse_mimetype(declared)
    assert media_type(declared) == (f"{mime.type}/{mime.subtype}".lower() if mime.type else "")


def test_the_declared_type_is_checked_against_the_content() -> None:
    assert checked_content_type("image/png; x=1", PNG, ALLOWED) == "image/png"
    assert checked_content_type("", PNG, ALLOWED) == "image/png"
    assert checked_content_type("text/plain", b"hello", ALLOWED) == "text/plain"
    for declared, data, code in [
        ("image/png", b"not a png", "type_mismatch"),
        ("text/plain", PNG, "type_mismatch"),
        ("image/gif", PNG, "unsupported_type"),
        ("", b"hello", "unsupported_type"),
    ]:
        with pytest.raises(InputError) as refused:
            checked_content_type(declared, data, ALLOWED)
        assert (refused.value.code, refused.value.status) == (code, 415), declared
