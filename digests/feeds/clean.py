"""Plain text from HTML fragments: tags and hidden content dropped, capped at a word boundary."""

from __future__ import annotations

import re
from html.parser import HTMLParser

ELLIPSIS = "…"

# Control characters but line breaks and tabs: none belongs in a story (and PostgreSQL
# refuses NUL in text).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def without_controls(text: str) -> str:
    """The text with its control characters (but line breaks and tabs) removed."""
    return _CONTROL.sub("", text)


_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
# Elements whose content is never shown as text to a reader.
_HIDDEN_TAGS = frozenset({"script", "style", "template", "noscript", "svg"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._current: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        elif tag in _BLOCK_TAGS:
            self._break()
        elif tag in _CELL_TAGS:
            self._current.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self._break()
        elif tag in _CELL_TAGS:
            self._current.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self._current.append(data)

    def close(self) -> None:
        super().close()
        self._break()

    def parse_html_declaration(self, i: int) -> int:
        try:
            return super().parse_html_declaration(i)
        except AssertionError:
            # Python before 3.13.4 asserts on malformed "<![" and "<!DOCTYPE" input; skip it to
            # the next ">" like a browser skips a bogus comment
            end = self.rawdata.find(">", i + 2)
            return -1 if end < 0 else end + 1

    def _break(self) -> None:
        line = " ".join("".join(self._current).split())
        self._current.clear()
        if line:
            self.blocks.append(line)


def html_to_text(html: str, *, limit: int) -> str:
    """Plain text of an HTML fragment: tags and hidden content dropped, entities decoded.

    Block elements (p, br, li, div, h1-h6, ...) become line breaks; every other run of
    whitespace becomes one space. A longer text is cut at a word boundary and ends with
    "…"; the result, ellipsis included, is never longer than `limit`.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return _truncate("\n".join(extractor.blocks), limit)


def plain_text(text: str, *, limit: int) -> str:
    """Like html_to_text for text that is already plain: whitespace collapsed, then capped."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return _truncate(" ".join(text.split()), limit)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    room = limit - len(ELLIPSIS)
    head = text[:room]
    if not text[room].isspace():
        # mid-word: go back to the last space, unless that would throw away most of the text
        cut = max(head.rfind(" "), head.rfind("\n"))
        if cut > room // 2:
            head = head[:cut]
    return head.rstrip(" \n,;:-–—") + ELLIPSIS
