"""Markdown to safe HTML, with Pygments-highlighted code blocks.

Content is written by instructors, but it is still sanitised: an item's prompt
must never be able to run script in a learner's browser.
"""
from __future__ import annotations

from functools import lru_cache

import markdown as md
import nh3

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote", "ul", "ol",
    "li", "a", "span", "div", "table", "thead", "tbody", "tr", "th", "td", "sub", "sup", "del",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "div": {"class"}, "code": {"class"},
                      "pre": {"class"}, "th": {"align"}, "td": {"align"}}


@lru_cache(maxsize=512)
def render(text: str) -> str:
    html = md.markdown(
        text or "",
        extensions=["fenced_code", "codehilite", "tables", "sane_lists"],
        extension_configs={"codehilite": {"guess_lang": False, "css_class": "highlight"}},
    )
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES, link_rel="noopener noreferrer",
                     url_schemes={"http", "https", "mailto"})
