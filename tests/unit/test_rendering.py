"""Answers rendered on the server: markdown in, allow-listed HTML out, nothing that runs."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from parley.rendering import ALLOWED_TAGS, render_markdown

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](vbscript:msgbox)",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    '<iframe src="https://evil.example"></iframe>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<svg onload=alert(1)>",
    '[x](https://ok.example "t" onclick="alert(1)")',
    "<<script>script>alert(1)<</script>/script>",
]


class Elements(HTMLParser):
    """The elements and attributes a browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_yields_no_markup_that_runs(text: str) -> None:
    html = render_markdown(text)
    parser = Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in ALLOWED_TAGS, html
        assert not [name for name in attrs if name.startswith("on") or name == "style"], html
        if tag == "a":
            href = attrs.get("href")  # a refused URL leaves a link that goes nowhere
            assert href is None or href.startswith(("http://", "https://", "mailto:")), html
            assert attrs.get("rel") == "noopener nofollow", html


def test_markdown_renders_what_models_write() -> None:
    html = render_markdown("# Title\n\n**bold** _em_ ~~gone~~\n\n- a\n- b\n\n1. one\n\n| x | y |\n|---|---|\n| 1 | 2 |\n\n```python\nprint(1)\n```")
    for fragment in ("<h1>Title</h1>", "<strong>bold</strong>", "<em>em</em>", "<s>gone</s>", "<li>a</li>", "<ol>",
                     "<td>1</td>", "<pre><code>print(1)\n</code></pre>"):
        assert fragment in html, html


def test_links_open_safely() -> None:
    html = render_markdown("[docs](https://example.com/a?b=1)")
    assert html == '<p><a href="https://example.com/a?b=1" target="_blank" rel="noopener nofollow">docs</a></p>'


def test_raw_html_is_shown_as_text() -> None:
    assert render_markdown("<b>hi</b>") == "<p>&lt;b&gt;hi&lt;/b&gt;</p>"


def test_an_empty_text_has_no_html() -> None:
    assert render_markdown("  \n") == ""
