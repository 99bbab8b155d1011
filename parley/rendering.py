"""Answers as HTML, safe for every client: the markdown an LLM writes, rendered once on the
server and sanitised with an allow-list.

``render_markdown`` is the one way Parley turns a reply's text into the ``html`` field of the
``message`` frame, the archive and the generic callback (docs/websocket-protocol.md):

1. markdown-it-py renders CommonMark plus tables and strikethrough, with raw HTML *off* (a
   ``<script>`` in the model's text becomes visible text, never a tag) and images off (a model
   cannot make a client fetch a URL: ``![x](url)`` stays a link);
2. nh3 (the Ammonia sanitiser) keeps only the tags and attributes below, links only with
   http, https or mailto URLs (no ``javascript:``, ``data:``, ``vbscript:``), and gives every
   link ``rel="noopener nofollow"`` and ``target="_blank"``.

The second step does not trust the first: whatever markdown-it lets through, only the
allow-list reaches a client.

Foundation layer: no Parley imports.
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt

__all__ = ["ALLOWED_TAGS", "LINK_REL", "render_markdown"]

#: the tags an answer may contain: what CommonMark, tables and strikethrough produce, less images
ALLOWED_TAGS = frozenset({
    "p", "br", "hr", "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "a",
})
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
_URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener nofollow"


@functools.cache
def _parser() -> MarkdownIt:
    # "commonmark" with html off: raw HTML in the text is escaped, not passed through
    return MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"]).disable("image")


def render_markdown(text: str) -> str:
    """The sanitised HTML of ``text`` (markdown); an empty string for an empty text."""
    if not text.strip():
        return ""
    html = _parser().render(text)
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        url_schemes=set(_URL_SCHEMES),
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    ).strip()
