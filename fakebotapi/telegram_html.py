"""Telegram's HTML subset (parse_mode HTML) read strictly: what it accepts, what it refuses.

`parse_html` gives the plain text a reader sees, `parse_html_entities` also the MessageEntity
dicts; both raise ValueError, worded like Telegram's "can't parse entities", for HTML Telegram
refuses. The emulator reads every HTML message with it; tests use it to check rendered HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

JSONDict = dict[str, Any]


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


# --- Telegram's HTML subset -------------------------------------------------------------------

_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(?:#([0-9]{1,8})|#[xX]([0-9a-fA-F]{1,7})|([a-zA-Z][a-zA-Z0-9]*));")
_TAG_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_:-]*")
_UNQUOTED_VALUE_RE = re.compile(r"[^\s\"'=<>`]+")
_TEXT_RUN_RE = re.compile(r"[^<&]+")


def _skip_space(src: str, i: int) -> int:
    while i < len(src) and src[i].isspace():
        i += 1
    return i


@dataclass
class _OpenTag:
    name: str
    entity: JSONDict | None
    start: int  # UTF-16 offset in the output


class _HtmlParser:
    """A strict reader of Telegram's HTML: anything Telegram may refuse raises ValueError."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.out: list[str] = []
        self.out16 = 0
        self.stack: list[_OpenTag] = []
        self.entities: list[JSONDict] = []

    def fail(self, message: str, at: int | None = None) -> ValueError:
        if at is None:
            return ValueError(message)
        return ValueError(f"{message} at byte offset {self.byte_offset(at)}")

    def byte_offset(self, at: int) -> int:
        return len(self.src[:at].encode("utf-8", "surrogatepass"))

    def emit(self, text: str) -> None:
        self.out.append(text)
        self.out16 += utf16_len(text)

    def parse(self) -> tuple[str, list[JSONDict]]:
        src, i, n = self.src, 0, len(self.src)
        while i < n:
            run = _TEXT_RUN_RE.match(src, i)
            if run is not None:
                self.emit(run.group())
                i = run.end()
            elif src[i] == "&":
                char, i = self.entity(i)
                self.emit(char)
            elif src.startswith("</", i):
                i = self.end_tag(i)
            else:
                i = self.start_tag(i)
        if self.stack:
            name = self.stack[-1].name
            raise self.fail(f'Can\'t find end tag corresponding to start tag "{name}"')
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.out), self.entities

    def entity(self, i: int) -> tuple[str, int]:
        match = _ENTITY_RE.match(self.src, i)
        if match is None:
            raise self.fail('Character "&" must be escaped as "&amp;"', i)
        decimal, hexadecimal, name = match.groups()
        if name is not None:
            if name not in _NAMED_ENTITIES:
                raise self.fail(f'Unsupported HTML entity "&{name};"', i)
            return _NAMED_ENTITIES[name], match.end()
        code = int(decimal) if decimal is not None else int(hexadecimal, 16)
        if not 0 < code <= 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise self.fail(f'Invalid numeric HTML entity "{match.group()}"', i)
        return chr(code), match.end()

    def unescape(self, start: int, end: int) -> str:
        """Decodes an attribute value, with the same strictness as text."""
        parts: list[str] = []
        i = start
        while i < end:
            amp = self.src.find("&", i, end)
            if amp < 0:
                parts.append(self.src[i:end])
                break
            parts.append(self.src[i:amp])
            char, i = self.entity(amp)
            if i > end:
                raise self.fail('Character "&" must be escaped as "&amp;"', amp)
            parts.append(char)
        return "".join(parts)

    def start_tag(self, at: int) -> int:
        src, n = self.src, len(self.src)
        name_match = _TAG_NAME_RE.match(src, at + 1)
        if name_match is None:
            raise self.fail('Character "<" must be escaped as "&lt;"', at)
        name = name_match.group().lower()
        if name not in _TAG_TYPES:
            raise self.fail(f'Unsupported start tag "{name}"', at)
        attrs: dict[str, str] = {}
        i = name_match.end()
        while True:
            i = _skip_space(src, i)
            if i >= n:
                raise self.fail("Unclosed start tag", at)
            if src[i] == ">":
                i += 1
                break
            attr_match = _ATTR_NAME_RE.match(src, i)
            if attr_match is None:
                raise self.fail(f'Unexpected character "{src[i]}" in the tag "{name}"', i)
            attr = attr_match.group().lower()
            i = _skip_space(src, attr_match.end())
            value = ""
            if i < n and src[i] == "=":
                i = _skip_space(src, i + 1)
                if i >= n:
                    raise self.fail("Unclosed start tag", at)
                if src[i] in "\"'":
                    close = src.find(src[i], i + 1)
                    if close < 0:
                        raise self.fail("Unclosed start tag", at)
                    value = self.unescape(i + 1, close)
                    i = close + 1
                else:
                    value_match = _UNQUOTED_VALUE_RE.match(src, i)
                    if value_match is None:
                        raise self.fail(f'Expected a value of attribute "{attr}"', i)
                    value = self.unescape(i, value_match.end())
                    i = value_match.end()
            attrs[attr] = value
        self.open(name, attrs, at)
        return i

    def open(self, name: str, attrs: dict[str, str], at: int) -> None:
        entity: JSONDict | None = {"type": _TAG_TYPES[name]}
        parent = self.stack[-1] if self.stack else None
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise self.fail('Tag "span" must have class "tg-spoiler"', at)
        if name == "a":
            href = attrs.get("href", "").strip()
            if not href:
                raise self.fail('Tag "a" must have a non-empty attribute "href"', at)
            entity = {"type": "text_link", "url": href}
        elif name == "tg-emoji":
            emoji_id = attrs.get("emoji-id", "")
            if not emoji_id.isdigit():
                raise self.fail('Tag "tg-emoji" must have a numeric attribute "emoji-id"', at)
            entity = {"type": "custom_emoji", "custom_emoji_id": emoji_id}
        elif name == "tg-time":
            unix = attrs.get("unix", "")
            if not unix.isdigit():
                raise self.fail('Tag "tg-time" must have a numeric attribute "unix"', at)
            entity = {"type": "date_time", "unix_time": int(unix)}
            if attrs.get("format"):
                entity["date_time_format"] = attrs["format"]
        elif name == "blockquote" and "expandable" in attrs:
            entity = {"type": "expandable_blockquote"}
        elif name == "code" and parent is not None and parent.name == "pre":
            language = attrs.get("class", "")
            if (
                language.startswith("language-")
                and parent.entity is not None
                and parent.start == self.out16
            ):
                parent.entity["language"] = language.removeprefix("language-")
                entity = None
        if any(tag.name in ("code", "pre") for tag in self.stack):
            entity = None  # Telegram keeps no entities inside code and pre
        self.stack.append(_OpenTag(name, entity, self.out16))

    def end_tag(self, at: int) -> int:
        src = self.src
        name_match = _TAG_NAME_RE.match(src, at + 2)
        name = name_match.group().lower() if name_match else ""
        i = _skip_space(src, name_match.end() if name_match else at + 2)
        if i >= len(src) or src[i] != ">":
            raise self.fail("Unclosed end tag", at)
        if not self.stack:
            raise self.fail(f'Unexpected end tag "</{name}>"', at)
        top = self.stack.pop()
        if top.name != name:
            raise ValueError(
                f"Unmatched end tag at byte offset {self.byte_offset(at)}, "
                f'expected "</{top.name}>", found "</{name}>"'
            )
        if top.entity is not None and self.out16 > top.start:
            length = self.out16 - top.start
            self.entities.append({**top.entity, "offset": top.start, "length": length})
        return i + 1


def parse_html_entities(text: str) -> tuple[str, list[JSONDict]]:
    """Text and MessageEntity dicts (UTF-16 offsets) of a message sent with parse_mode HTML.

    Raises ValueError, worded like Telegram's "can't parse entities" reasons, for anything outside
    Telegram's HTML subset: unknown tags (including <br>), bare "<" or "&", named entities other
    than &lt; &gt; &amp; &quot;, unclosed or mis-nested tags.
    """
    return _HtmlParser(text).parse()


def parse_html(text: str) -> str:
    """The plain text Telegram shows for `text` sent with parse_mode HTML; ValueError if refused."""
    return parse_html_entities(text)[0]


def strip_entities(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    """Trims surrounding whitespace as Telegram does, clipping the entities to what is left."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    head = utf16_len(text[: len(text) - len(text.lstrip())])
    end = head + utf16_len(stripped)
    kept: list[JSONDict] = []
    for entity in entities:
        start = max(entity["offset"], head)
        stop = min(entity["offset"] + entity["length"], end)
        if stop > start:
            kept.append({**entity, "offset": start - head, "length": stop - start})
    return stripped, kept
