"""RSS/Atom documents parsed into plain-text entries, with what was wrong with them."""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import time
import xml.sax
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import feedparser

from digests.feeds.clean import html_to_text, plain_text
from digests.models import IMAGE_CAPTION_MAX, LINK_MAX

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
    image_url: str | None = None  # the lead photo: an absolute http(s) URL
    image_caption: str | None = None  # its caption or credit, plain text

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
    dates = _DateReader()
    parsed = [_entry(raw, base=base, dates=dates) for raw in raw_entries]
    skipped = sum(entry is None for entry in parsed)
    usable = _apart_when_guids_clash([entry for entry in parsed if entry is not None])
    entries: list[FeedEntry] = []
    seen: set[str] = set()
    duplicates = 0
    for entry in usable:
        if entry.key in seen:
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


def _apart_when_guids_clash(entries: list[FeedEntry]) -> list[FeedEntry]:
    """Entries of one feed that share a guid but differ in both title and link are two posts
    (a CMS that reuses ids): each is then keyed by its guid and its link, the same whatever
    their order. Entries that share a guid and a title or link are one post, repeated."""
    by_guid: dict[str, list[FeedEntry]] = {}
    for entry in entries:
        if entry.guid:
            by_guid.setdefault(entry.guid, []).append(entry)
    clashing = {
        guid
        for guid, group in by_guid.items()
        if len({entry.title for entry in group}) > 1
        and len({entry.link for entry in group}) == len(group)
        and all(entry.link for entry in group)
    }
    if not clashing:
        return entries
    return [
        replace(entry, guid=f"{entry.guid}#{entry.link}") if entry.guid in clashing else entry
        for entry in entries
    ]


# Dates before this are placeholders (Go's zero time 0001-01-01 in Hugo feeds, the Unix
# epoch), not publication dates: they count as no date.
_EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)


class _DateReader:
    """Dates feedparser cannot read (day and month names in the feed's language: "Seg, 03 Dez
    2018") read by dateparser; after a few misses in one feed it stops trying (a feed of
    garbage dates must not cost a dateparser call per entry)."""

    MISSES = 5

    def __init__(self) -> None:
        self.misses = 0

    def read(self, text: str) -> datetime | None:
        if self.misses >= self.MISSES or not text.strip() or len(text) > 100:
            return None
        import dateparser  # here: slow to import, and most feeds never need it

        try:
            found = dateparser.parse(
                text,
                settings={
                    "RETURN_AS_TIMEZONE_AWARE": True,
                    "TO_TIMEZONE": "UTC",
                    "STRICT_PARSING": True,
                    "PREFER_DATES_FROM": "past",
                },
            )
        except Exception:  # a date parser tripping over hostile text is a miss
            found = None
        if found is None:
            self.misses += 1
            return None
        return _plausible(found.astimezone(UTC).replace(microsecond=0))


def _published(raw: object, dates: _DateReader) -> datetime | None:
    for parsed, text in (("published_parsed", "published"), ("updated_parsed", "updated")):
        moment = _time(_get(raw, parsed))
        if moment is None and _get(raw, parsed) is None and (written := _text(raw, text)):
            moment = dates.read(written)
        if moment is not None:
            return moment
    return None


def _plausible(moment: datetime) -> datetime | None:
    return moment if moment >= _EARLIEST else None


def _entry(raw: object, *, base: str | None, dates: _DateReader) -> FeedEntry | None:
    link = _link(raw, base=base)
    title = _title(_text(raw, "title"), _text(_get(raw, "title_detail"), "type"))
    if not title and link is None:
        return None
    guid = (_text(raw, "id") or "").strip() or None
    image = lead_image(raw, base=link or base)
    return FeedEntry(
        guid=guid,
        link=link,
        title=title,
        summary=_summary(raw),
        published=_published(raw, dates),
        categories=_categories(raw),
        image_url=image.url if image else None,
        image_caption=image.caption if image else None,
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


@dataclass(frozen=True)
class LeadImage:
    """An entry's lead photo: an absolute http(s) URL, and its caption (plain text) if any."""

    url: str
    caption: str | None


_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp")


def lead_image(raw: object, *, base: str | None) -> LeadImage | None:
    """The entry's lead photo, from the first of: an image enclosure, a media:content image,
    a media:thumbnail, the first <img> of its content or summary. Relative URLs are resolved
    against `base` (the entry's link); only http(s) URLs within LINK_MAX are kept.

    The caption is the media:credit ("Photo: X"), else the img's alt or title when the photo
    is that img. (feedparser reads media:description as the entry's own description, so it
    cannot be told apart from the story's text and is not used.)
    """
    candidates = [
        _text(link, "href")
        for link in _list(raw, "links")
        if _text(link, "rel") == "enclosure" and _looks_like_image(link, "href")
    ]
    candidates += [
        _text(media, "url")
        for media in _list(raw, "media_content")
        if _looks_like_image(media, "url", medium=True)
    ]
    candidates += [_text(thumb, "url") for thumb in _list(raw, "media_thumbnail")]
    img = _first_img(raw)
    candidates.append(img.src if img else None)
    for href in candidates:
        url = _absolute_http_url(href, base=base)
        if url is None or len(url) > LINK_MAX:
            continue
        caption = _credit(raw)
        if caption is None and img is not None and href == img.src:
            caption = _caption_text(img.alt or img.title)
        return LeadImage(url, caption)
    return None


def _looks_like_image(media: object, key: str, *, medium: bool = False) -> bool:
    kind = (_text(media, "type") or "").strip().lower()
    if kind:
        return kind.startswith("image/")
    if medium and (given := (_text(media, "medium") or "").strip().lower()):
        return given == "image"
    try:
        path = urlsplit((_text(media, key) or "").strip()).path.lower()
    except ValueError:
        return False
    return path.endswith(_IMAGE_EXTENSIONS)


def _credit(raw: object) -> str | None:
    for credit in _list(raw, "media_credit"):
        name = _caption_text(_text(credit, "content"), prefix="Photo: ")
        if name:
            return name
    return None


def _caption_text(value: str | None, *, prefix: str = "") -> str | None:
    if not value or not value.strip():
        return None
    text = plain_text(prefix + value, limit=IMAGE_CAPTION_MAX)
    return text if text.strip() and text != prefix.strip() else None


@dataclass(frozen=True)
class _Img:
    src: str
    alt: str | None
    title: str | None


class _FirstImg(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: _Img | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.found is not None or tag != "img":
            return
        values = dict(attrs)
        src = (values.get("src") or "").strip()
        if src and not src.lower().startswith("data:"):
            self.found = _Img(src, values.get("alt"), values.get("title"))

    def parse_html_declaration(self, i: int) -> int:
        try:
            return super().parse_html_declaration(i)
        except AssertionError:  # Python before 3.13.4 on malformed "<![": skip it
            end = self.rawdata.find(">", i + 2)
            return -1 if end < 0 else end + 1


def _first_img(raw: object) -> _Img | None:
    values = [_text(part, "value") for part in _list(raw, "content")]
    values.append(_text(raw, "summary"))
    for value in values:
        if not value or "<img" not in value.lower():
            continue
        parser = _FirstImg()
        parser.feed(value)
        parser.close()
        if parser.found is not None:
            return parser.found
    return None


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
        return _plausible(datetime.fromtimestamp(calendar.timegm(value), tz=UTC))
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
