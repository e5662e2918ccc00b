"""Read RSS/Atom feeds: fetch bytes, parse them into plain-text entries, name their sections."""

from __future__ import annotations

import asyncio
import calendar
import errno
import hashlib
import io
import re
import socket
import time
import unicodedata
import xml.sax
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

import feedparser
import httpx

TITLE_MAX = 300
SUMMARY_MAX = 600
SLUG_MAX = 40
USER_AGENT = "newsbot/0.1 (+feed reader)"

ELLIPSIS = "…"


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


# --- plain text from HTML -------------------------------------------------------------------

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


def _plain_text(text: str, *, limit: int) -> str:
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


# --- parsing --------------------------------------------------------------------------------

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
        text = _plain_text(value, limit=TITLE_MAX)
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
            text = _plain_text(value, limit=SUMMARY_MAX)
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
    if base is not None:
        url = urljoin(base, url)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a malformed IPv6 host
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


# --- sections -------------------------------------------------------------------------------

_PARENTHESISED = re.compile(r"^(.*?)\s*\(([^()]*)\)$")
_HIERARCHY = re.compile(r"\s*(?:/|>|»|›|\|)\s*")
_WORD_START = re.compile(r"(^|[\s\-/&])(\w)")


def section_names(
    categories: Sequence[str], *, mapping: Mapping[str, str], default: str
) -> list[str]:
    """Section display names for an entry's categories, in order, without repeats.

    "News (World)", "news/world", "News > World" all give "World"; a category found in
    `mapping` (any case, as written or once cleaned) gives the mapped name. Names that
    share a slug count as one, so callers can key sections by slugify(name).
    """
    lookup = {" ".join(key.split()).casefold(): value for key, value in mapping.items()}
    names: dict[str, str] = {}
    for category in categories:
        name = _section_name(category, lookup)
        if name:
            names.setdefault(slugify(name), name)
    return list(names.values()) or [default]


def _section_name(category: str, lookup: Mapping[str, str]) -> str:
    raw = " ".join(category.split())
    if not raw:
        return ""
    mapped = lookup.get(raw.casefold())
    if mapped is not None:
        return " ".join(mapped.split())
    name = _clean_section(raw)
    mapped = lookup.get(name.casefold())
    if mapped is not None:
        return " ".join(mapped.split())
    return name


def _clean_section(raw: str) -> str:
    name = raw
    parenthesised = _PARENTHESISED.match(name)
    if parenthesised and parenthesised.group(2).strip():
        name = parenthesised.group(2).strip()
    parts = [part for part in _HIERARCHY.split(name) if part.strip()]
    if parts:
        name = parts[-1].strip()
    if name.islower() or name.isupper():
        name = _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), name.lower())
    return name or raw


_ASCII_FOLD = str.maketrans({"æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th"})


def slugify(name: str) -> str:
    """ASCII slug of a section name: "Culture & Arts" -> "culture-arts"; "section" if empty."""
    folded = unicodedata.normalize("NFKD", name.casefold().translate(_ASCII_FOLD))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")
    if len(slug) > SLUG_MAX:
        cut = slug[:SLUG_MAX]
        if slug[SLUG_MAX] != "-" and "-" in cut:
            cut = cut[: cut.rfind("-")]
        slug = cut.strip("-")
    return slug or "section"


def parse_category_map(raw: str) -> dict[str, str]:
    """Parse "Soccer=Sports, Op-Ed=Opinion" into {"soccer": "Sports", "op-ed": "Opinion"}.

    Keys are casefolded with whitespace collapsed. Raises ValueError naming the bad pair.
    """
    result: dict[str, str] = {}
    for pair in raw.split(","):
        if not pair.strip():
            continue
        if pair.count("=") != 1:
            raise ValueError(f"category map: expected CATEGORY=SECTION, got {pair.strip()!r}")
        key, value = (" ".join(part.split()) for part in pair.split("="))
        if not key:
            raise ValueError(f"category map: empty category in {pair.strip()!r}")
        if not value:
            raise ValueError(f"category map: empty section in {pair.strip()!r}")
        folded = key.casefold()
        if result.get(folded, value) != value:
            raise ValueError(f"category map: {key!r} maps to both {result[folded]!r} and {value!r}")
        result[folded] = value
    return result


# --- fetching -------------------------------------------------------------------------------


# ASYNC109 would have callers wrap this in asyncio.timeout; the agreed interface takes the
# number instead, and the whole download is bounded by asyncio.timeout inside.
async def fetch_source(
    source: str,
    *,
    client: httpx.AsyncClient,
    timeout: float = 20.0,  # noqa: ASYNC109
    max_bytes: int = 10_000_000,
) -> bytes:
    """Bytes of an http(s) URL, a file:// URL or a local path; FeedError says what went wrong."""
    if not source.strip():
        raise FeedError("empty source: give an http(s) URL or a file path")
    try:
        parts = urlsplit(source)
    except ValueError as exc:  # e.g. "http://[::1/feed"
        raise FeedError(f"invalid URL: {exc}: {source}") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise FeedError(f"invalid URL (no host): {source}")
        try:
            # httpx's timeout is per network operation; asyncio's bounds the whole download
            async with asyncio.timeout(timeout):
                return await _download(
                    source, client=client, limits=httpx.Timeout(timeout), max_bytes=max_bytes
                )
        except (TimeoutError, httpx.TimeoutException):
            raise FeedError(f"timed out after {timeout:g} s") from None
        except httpx.InvalidURL as exc:  # not an HTTPError
            raise FeedError(f"invalid URL: {_describe(exc)}") from None
        except httpx.HTTPError as exc:
            raise _http_failure(exc) from None
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise FeedError(f"file URL must be on this machine: {source}")
        path = url2pathname(parts.path)
    elif len(scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise FeedError(f"unsupported source {source!r}: use an http(s) URL or a file path")
    else:
        path = source
    return await asyncio.to_thread(_read_file, path, max_bytes)


def _read_file(name: str, max_bytes: int) -> bytes:
    path = Path(name).expanduser()
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        raise FeedError(f"file not found: {path}") from None
    except IsADirectoryError:
        raise FeedError(f"is a directory, not a feed file: {path}") from None
    except PermissionError:
        raise FeedError(f"permission denied: {path}") from None
    except OSError as exc:
        raise FeedError(f"could not read {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise FeedError(f"file larger than {max_bytes} bytes: {path}")
    return data


async def _download(
    url: str, *, client: httpx.AsyncClient, limits: httpx.Timeout, max_bytes: int
) -> bytes:
    async with client.stream(
        "GET",
        url,
        headers={"User-Agent": USER_AGENT},
        timeout=limits,
        follow_redirects=True,
    ) as response:
        if not response.is_success:
            raise FeedError(_status_line(response))
        too_big = FeedError(f"response larger than {max_bytes} bytes")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise too_big
        body = bytearray()
        # aiter_bytes decompresses, so the limit also holds against compression bombs
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise too_big
        return bytes(body)


def _http_failure(exc: httpx.HTTPError) -> FeedError:
    if isinstance(exc, httpx.TooManyRedirects):
        return FeedError("too many redirects")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FeedError(f"invalid URL: {_describe(exc)}")
    if isinstance(exc, httpx.ConnectError):
        return FeedError(f"could not connect: {_connect_reason(exc)}")
    return FeedError(f"download failed: {_describe(exc)}")


def _status_line(response: httpx.Response) -> str:
    phrase = response.reason_phrase
    if not phrase:
        try:
            phrase = HTTPStatus(response.status_code).phrase
        except ValueError:
            phrase = ""
    return f"HTTP {response.status_code} {phrase}".rstrip()


def _connect_reason(exc: httpx.ConnectError) -> str:
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return "host not found"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
    return _describe(exc)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            for inner in current.exceptions:
                yield from _causes(inner)
        current = current.__cause__ or current.__context__
