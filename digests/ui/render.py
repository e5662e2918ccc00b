"""Telegram-HTML building blocks: every piece of article or user text goes through here."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

MAX_MESSAGE = 4096


def escape(text: str) -> str:
    """Escape text for Telegram HTML (`<`, `>`, `&`; quotes too, harmless in text)."""
    return html.escape(text, quote=True)


def bold(text: str) -> str:
    return f"<b>{escape(text)}</b>"


def italic(text: str) -> str:
    return f"<i>{escape(text)}</i>"


def link(url: str | None, text: str) -> str:
    """A link to `url` showing `text`; plain escaped text when there is no usable URL."""
    if not url or not url.lower().startswith(("http://", "https://")):
        return escape(text)
    return f'<a href="{escape(url)}">{escape(text)}</a>'


def visible_length(text: str) -> int:
    """Length Telegram counts for an HTML message: entities decoded, tags removed (UTF-16)."""
    plain = _strip_tags(text)
    return len(plain.encode("utf-16-le")) // 2


def visible_text(text: str) -> str:
    """What a reader sees of an HTML message: the text without its tags and entities."""
    return _strip_tags(text)


_TAG = re.compile(r"<[^>]*>")


def _strip_tags(text: str) -> str:
    # escape() turns every < and > of text and attribute values into entities, so a raw
    # "<" always opens one of our tags and the next ">" closes it
    return html.unescape(_TAG.sub("", text))


def truncate(text: str, limit: int) -> str:
    """Cut plain text to at most `limit` characters at a word boundary, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 1)]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-") + "…"


MAX_CAPTION = 1024


def fit_visible(build: Callable[[str], str], text: str, limit: int) -> str | None:
    """`build(text)`, with the plain `text` cut (at a word, with an ellipsis) as little as
    needed for the result to show at most `limit` characters as Telegram counts them; `text`
    is cut before `build` escapes it, so no tag or entity is ever cut. `build("")` must leave
    the text out; None when even that is too long."""
    whole = build(text)
    if visible_length(whole) <= limit:
        return whole
    if visible_length(build("")) > limit:
        return None
    # the longest cut that fits (a binary search: cuts at words are only roughly monotonic,
    # so only a cut that was seen to fit is ever kept)
    fits, low, high = build(""), 1, len(text) - 1
    while low <= high:
        keep = (low + high) // 2
        candidate = build(truncate(text, keep))
        if visible_length(candidate) <= limit:
            fits, low = candidate, keep + 1
        else:
            high = keep - 1
    return fits


def split_messages(blocks: list[str], *, header: str = "", limit: int = MAX_MESSAGE) -> list[str]:
    """Join HTML blocks into as few messages as fit `limit`, splitting only between blocks.

    Each block must be balanced HTML on its own; a block too long on its own is cut as text.
    """
    messages: list[str] = []
    current, current_length = header, visible_length(header)
    for block in blocks:
        length = visible_length(block)
        if length > limit - 10:
            block = escape(truncate(_strip_tags(block), limit - 10))
            length = visible_length(block)
        # lengths add up: every block is balanced, so nothing spans a join
        joined = current_length + 1 + length if current else length
        if joined <= limit:
            current = f"{current}\n{block}" if current else block
            current_length = joined
            continue
        if current:
            messages.append(current)
        current, current_length = block, length
    if current:
        messages.append(current)
    return messages
