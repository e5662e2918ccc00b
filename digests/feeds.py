"""RSS/Atom documents parsed into plain-text entries, with what was wrong with them."""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import time
import xml.sax
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import feedparser

from digests.htmltext import html_to_text, plain_text

TITLE_MAX = 300
SUMMARY_MAX = 600


class FeedError(Exception):
    """A source that cannot be read as a feed; str() is one line meant for people."""


@dataclass(frozen=True)
class FeedEntry:
    """One story from a feed, as plain text; published is aware UTC or None."""

    guid: str | None
    link: str | None
    title: str
    summary: str
    published: datetime | None
    categories: tuple[str, ...]

    @property
    def key(self) -> str:
        """Dedupe key: the guid, else the link, else "title:" and a SHA-256 prefix of the title.

        The hash is of the exact title text, so it is the same across runs and machines.
        """
        if self.guid:
            return self.guid
        if self.link:
            return self.link
        digest = hashlib.sha256(self.title.encode("utf-8")).hexdigest()
        return f"title:{digest[:32]}"


@dataclass(frozen=True)
class ParsedFeed:
    """A feed's title (may be empty), its usable entries and what was wrong with it."""

    title: str
    entries: tuple[FeedEntry, ...]
    warnings: tuple[str, ...]


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_HTML_START = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.I | re.S
)


def parse_feed(data: bytes, *, source: str) -> ParsedFeed:
    """Parse RSS or Atom bytes; usable entries of a half-broken feed come back with a warning.

    Raises FeedError when the document is not a feed at all. Relative links are resolved
    against `source` when it is an http(s) URL.
    """
    try:
        # A BytesIO, never bare bytes: feedparser would try bytes as a file name first.
        result: object = feedparser.parse(io.BytesIO(data))
    except Exception as exc:  # feedparser can trip over hostile input in many ways
        raise FeedError(f"could not parse feed: {_describe(exc)}") from exc

    version = _text(result, "version")
    raw_entries = _list(result, "entries")
    if not version and (not raw_entries or _HTML_START.match(data[:4096])):
        raise FeedError(_not_a_feed(data, result))

    warnings: list[str] = []
    if _get(result, "bozo"):
        problem = _get(result, "bozo_exception")
        detail = _describe(problem) if isinstance(problem, BaseException) else "unknown problem"
        warnings.append(f"feed is not valid ({detail}); kept what could be read")

    base = source if _is_http_url(source) else None
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    skipped = duplicates = 0
    for raw in raw_entries:
        entry = _entry(raw, base=base)
        if entry is None:
            skipped += 1
        elif entry.key in seen:
            duplicates += 1
        else:
            seen.add(entry.key)
            entries.append(entry)
    if skipped:
        warnings.append(f"{_count(skipped, 'entry', 'entries')} skipped: no title or link")
    if duplicates:
        warnings.append(f"{_count(duplicates, 'entry', 'entries')} dropped: repeated guid or link")

    feed = _get(result, "feed")
    title = _title(_text(feed, "title"), _text(_get(feed, "title_detail"), "type"))
    return ParsedFeed(title=title, entries=tuple(entries), warnings=tuple(warnings))


def _not_a_feed(data: bytes, result: object) -> str:
    if not data.strip():
        return "not a RSS/Atom feed (empty document)"
    if _HTML_START.match(data[:4096]):
        return "not a RSS/Atom feed (got HTML page)"
    problem = _get(result, "bozo_exception")
    if isinstance(problem, BaseException):
        return f"not a RSS/Atom feed ({_describe(problem)})"
    return "not a RSS/Atom feed (no RSS or Atom root element)"


def _entry(raw: object, *, base: str | None) -> FeedEntry | None:
    link = _link(raw, base=base)
    title = _title(_text(raw, "title"), _text(_get(raw, "title_detail"), "type"))
    if not title and link is None:
        return None
    guid = (_text(raw, "id") or "").strip() or None
    return FeedEntry(
        guid=guid,
        link=link,
        title=title,
        summary=_summary(raw),
        published=_time(_get(raw, "published_parsed")) or _time(_get(raw, "updated_parsed")),
        categories=_categories(raw),
    )


def _title(value: str | None, content_type: str | None) -> str:
    if not value:
        return ""
    if content_type is None or content_type in _HTML_TYPES:
        text = html_to_text(value, limit=TITLE_MAX)
    else:
        text = plain_text(value, limit=TITLE_MAX)
    # one line; each break is a single character, so the length stays within the cap
    return text.replace("\n", " ")


def _summary(raw: object) -> str:
    candidates: list[tuple[str | None, str | None]] = [
        (_text(raw, "summary"), _text(_get(raw, "summary_detail"), "type"))
    ]
    candidates += [(_text(part, "value"), _text(part, "type")) for part in _list(raw, "content")]
    for value, content_type in candidates:
        if not value or not value.strip():
            continue
        if content_type is None or content_type in _HTML_TYPES:
            text = html_to_text(value, limit=SUMMARY_MAX)
        else:
            text = plain_text(value, limit=SUMMARY_MAX)
        if text:
            return text
    return ""


def _link(raw: object, *, base: str | None) -> str | None:
    link = _text(raw, "link")
    if _get(raw, "guidislink") and link == _text(raw, "id"):
        # feedparser copied a guid into the link: RSS calls a guid a permalink unless told
        # otherwise, so many ids that are not URLs land here; resolving them would invent URLs
        return _absolute_http_url(link, base=None)
    hrefs = [link]
    hrefs += [
        _text(link, "href")
        for link in _list(raw, "links")
        if (_text(link, "rel") or "alternate") == "alternate"
    ]
    for href in hrefs:
        url = _absolute_http_url(href, base=base)
        if url is not None:
            return url
    return None


def _absolute_http_url(href: str | None, *, base: str | None) -> str | None:
    if not href or not href.strip():
        return None
    url = href.strip()
    try:
        if base is not None:
            url = urljoin(base, url)
        parts = urlsplit(url)
    except ValueError:  # e.g. a malformed IPv6 host, which urljoin trips over too
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _is_http_url(text: str) -> bool:
    try:
        return urlsplit(text).scheme.lower() in ("http", "https")
    except ValueError:
        return False


def _time(value: object) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        # feedparser gives UTC struct_times; timegm also copes with leap seconds
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _categories(raw: object) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for tag in _list(raw, "tags"):
        # Atom's label is the human name; its term is often a machine id
        name = " ".join((_text(tag, "label") or _text(tag, "term") or "").split())
        if name:
            found.setdefault(name)
    return tuple(found)


# feedparser returns untyped FeedParserDicts. dict.get reads what it stored and skips its
# key aliases (and the deprecation warning that one of them raises).
def _get(obj: object, key: str) -> object:
    return dict.get(obj, key) if isinstance(obj, dict) else None


def _text(obj: object, key: str) -> str | None:
    value = _get(obj, key)
    return value if isinstance(value, str) else None


def _list(obj: object, key: str) -> list[object]:
    value = _get(obj, key)
    return list(value) if isinstance(value, list) else []


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, xml.sax.SAXParseException):
        return f"{exc.getMessage()} at line {exc.getLineNumber()}, column {exc.getColumnNumber()}"
    return " ".join(str(exc).split()) or type(exc).__name__
