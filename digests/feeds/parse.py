"""RSS/Atom documents parsed into plain-text entries, with what was wrong with them."""

from __future__ import annotations

import calendar
import hashlib
import io
import re
import time
import xml.sax
from collections.abc import Iterator
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


def parse_feed(data: bytes, *, source: str, content_type: str | None = None) -> ParsedFeed:
    """Parse RSS or Atom bytes; usable entries of a half-broken feed come back with a warning.

    Raises FeedError when the document is not a feed at all. Relative links are resolved
    against `source` when it is an http(s) URL. `content_type` is the HTTP Content-Type the
    feed was served with: its charset counts when the XML declares none.
    """
    headers = {}
    if content_type and "charset=" in content_type.lower():
        headers["content-type"] = content_type
    base = source if _is_http_url(source) else None
    dates = _DateReader()
    warnings: list[str] = []
    title = ""
    parsed: list[FeedEntry | None] = []
    comments = protected = 0
    # A large feed is read in pieces of _PIECE_ITEMS items, each converted to entries before
    # the next is parsed: feedparser's reading of a whole 36,000-entry feed holds over 100 MB.
    for n, document in enumerate(_pieces(data) if len(data) > _PIECE_BYTES else [data]):
        try:
            # A BytesIO, never bare bytes: feedparser would try bytes as a file name first.
            result: object = feedparser.parse(io.BytesIO(document), response_headers=headers)
        except Exception as exc:  # feedparser can trip over hostile input in many ways
            raise FeedError(f"could not parse feed: {_describe(exc)}") from exc
        raw_entries = _list(result, "entries")
        if n == 0:
            version = _text(result, "version")
            if not version and (not raw_entries or _HTML_START.match(data[:4096])):
                raise FeedError(_not_a_feed(data, result))
            feed = _get(result, "feed")
            title = _title(_text(feed, "title"), _text(_get(feed, "title_detail"), "type"))
        if _get(result, "bozo") and not warnings:
            problem = _get(result, "bozo_exception")
            detail = _describe(problem) if isinstance(problem, BaseException) else "unknown problem"
            warnings.append(f"feed is not valid ({detail}); kept what could be read")
        stories = [raw for raw in raw_entries if not _comment(raw) and not _protected(raw)]
        piece_comments = sum(_comment(raw) for raw in raw_entries)
        comments += piece_comments
        protected += len(raw_entries) - len(stories) - piece_comments
        parsed += [_entry(raw, base=base, dates=dates) for raw in stories]
        del result, raw_entries, stories  # this piece's reading goes before the next is read
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
    if comments:
        warnings.append(f"{_count(comments, 'entry', 'entries')} skipped: comments, not stories")
    if protected:
        warnings.append(f"{_count(protected, 'entry', 'entries')} skipped: protected by a password")
    if duplicates:
        warnings.append(f"{_count(duplicates, 'entry', 'entries')} dropped: repeated guid or link")
    return ParsedFeed(title=title, entries=tuple(entries), warnings=tuple(warnings))


_PIECE_BYTES = 4_000_000  # a feed larger than this is read in pieces
_PIECE_ITEMS = 1_000
# what can hold an item's tag without being one (CDATA, a comment), and items' own tags
_ITEM_TAGS = re.compile(
    rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->|<(/?)((?:[A-Za-z_][\w.-]*:)?(?:item|entry))(?=[\s/>])([^>]*)>",
    re.S,
)


def _pieces(data: bytes) -> Iterator[bytes]:
    """The document as documents of _PIECE_ITEMS items each: what comes before the first
    item (the declaration, the channel) and after the last one around each run of items.
    A document whose items cannot be told apart for sure (nested, unclosed, self-closed,
    UTF-16 or UTF-32) is the one piece."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    name = b""
    for match in _ITEM_TAGS.finditer(data) if b"\x00" not in data[:4] else ():
        closing, tag, rest = match.group(1, 2, 3)
        if tag is None:
            continue  # CDATA or a comment
        if rest.endswith(b"/") or bool(closing) != (start is not None):
            spans = []  # a self-closed item, an item in an item, a stray end tag
            break
        if not closing:
            start, name = match.start(), tag
        elif tag == name and start is not None:
            spans.append((start, match.end()))
            start = None
        else:
            spans = []
            break
    if start is not None or len(spans) <= _PIECE_ITEMS:
        yield data
        return
    head, tail = data[: spans[0][0]], data[spans[-1][1] :]
    for first in range(0, len(spans), _PIECE_ITEMS):
        group = spans[first : first + _PIECE_ITEMS]
        yield head + data[group[0][0] : group[-1][1]] + tail


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
                    # written dates only: "4 years ago" or a bare number would be read
                    # against the machine's clock, a different date at every ingest
                    "PARSERS": ["absolute-time"],
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


_COMMENT = re.compile(r"#comment-\d+$")
# WordPress's form for a password-protected post, and the excerpt it gives such a post
_PASSWORD_FORM = re.compile(
    r"post-password-form|wp-login\.php\?action=postpass|this is a protected post", re.I
)


def _comment(raw: object) -> bool:
    """A comments feed's entry (WordPress: guid and link end in #comment-N), not a story."""
    return any(_COMMENT.search((_text(raw, key) or "").strip()) for key in ("id", "link"))


def _protected(raw: object) -> bool:
    """A post behind a password: the feed carries the password form, not the story."""
    values = [_text(raw, "summary")] + [_text(part, "value") for part in _list(raw, "content")]
    return any(value and _PASSWORD_FORM.search(value) for value in values)


def _entry(raw: object, *, base: str | None, dates: _DateReader) -> FeedEntry | None:
    link = _link(raw, base=base)
    title = _title(_text(raw, "title"), _text(_get(raw, "title_detail"), "type"))
    if not title and link is None:
        return None
    summary = _summary(raw)
    title = title or _first_words(summary)
    guid = (_text(raw, "id") or "").strip() or None
    image = lead_image(raw, base=link or base, title=title)
    return FeedEntry(
        guid=guid,
        link=link,
        title=title,
        summary=summary,
        published=_published(raw, dates),
        categories=_categories(raw),
        image_url=image.url if image else None,
        image_caption=image.caption if image else None,
    )


HEADLINE_WORDS = 80  # characters of an untitled post's text that stand in for its headline


def _first_words(text: str) -> str:
    """An untitled post (a micro-blog's) headlined by the first words of its text."""
    line = " ".join(text.split())
    if len(line) <= HEADLINE_WORDS:
        return line
    cut = line[:HEADLINE_WORDS]
    if " " in cut[HEADLINE_WORDS // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.-–—") + "…"


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
    """The story's text: WordPress's teaser (the content before its <!--more--> mark) first;
    else the summary, unless it is WordPress's automatic excerpt ("… […]") and the full
    content is there; else the content. A summary marked as plain text that holds HTML or
    entities ("&nbsp;", an Atom summary with no type) is read as HTML."""
    summary = (_text(raw, "summary"), _text(_get(raw, "summary_detail"), "type"))
    contents = [(_text(part, "value"), _text(part, "type")) for part in _list(raw, "content")]
    teasers = [
        (value[: more.start()], kind)
        for value, kind in contents
        if value and (more := _MORE.search(value)) and value[: more.start()].strip()
    ]
    excerpt = bool(summary[0] and _AUTO_EXCERPT.search(summary[0]))
    candidates = teasers + (contents + [summary] if excerpt else [summary] + contents)
    for value, content_type in candidates:
        if not value or not value.strip():
            continue
        if content_type is None or content_type in _HTML_TYPES or _LOOKS_HTML.search(value):
            text = html_to_text(value, limit=SUMMARY_MAX)
        else:
            text = plain_text(value, limit=SUMMARY_MAX)
        if text:
            return text
    return ""


_MORE = re.compile(r"<span\s+id=[\"']more-\d+[\"']\s*>\s*</span>|<!--more(?:\s[^>]*)?-->", re.I)
_AUTO_EXCERPT = re.compile(r"\[(?:…|&#8230;|&hellip;|\.\.\.)\]\s*(?:</p>)?\s*$")
_LOOKS_HTML = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*[\s/>]|&(?:#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+\d*);")


@dataclass(frozen=True)
class LeadImage:
    """An entry's lead photo: an absolute http(s) URL, and its caption (plain text) if any."""

    url: str
    caption: str | None


_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp")


def lead_image(raw: object, *, base: str | None, title: str = "") -> LeadImage | None:
    """The entry's lead photo: the image the feed names for the item first (an image
    enclosure, a media:content image, a media:thumbnail, the episode's itunes:image), else the
    first <img> of its content or summary that is a photo. Tracking pixels, share buttons,
    emoji, icons and images marked tiny are never the photo: no photo beats a wrong one.
    Relative URLs are resolved against `base` (the entry's link); only http(s) URLs within
    LINK_MAX are kept.

    The caption is the media:credit ("Photo: X"), else the img's alt or title when the photo
    is that img; never a repeat of the headline. (feedparser reads media:description as the
    entry's own description, so it cannot be told apart from the story's text.)
    """
    named: list[str | None] = [
        _text(link, "href")
        for link in _list(raw, "links")
        if _text(link, "rel") == "enclosure" and _looks_like_image(link, "href")
    ]
    named += [
        _text(media, "url")
        for media in _list(raw, "media_content")
        if _looks_like_image(media, "url", medium=True) and not _marked_tiny(media)
    ]
    named += [
        _text(thumb, "url") for thumb in _list(raw, "media_thumbnail") if not _marked_tiny(thumb)
    ]
    named.append(_text(_get(raw, "image"), "href"))  # itunes:image of a podcast episode
    for href in named:
        url = _photo_url(href, base=base)
        if url is not None:
            return LeadImage(url, _credit(raw, title))
    for img in _imgs(raw):
        url = _photo_url(img.src, base=base)
        if url is not None and not img.tiny and not img.decoration:
            caption = _credit(raw, title) or _caption_text(img.alt or img.title, title=title)
            return LeadImage(url, caption)
    return None


# Images that are never a story's photo, by where they come from: trackers and counters,
# share and subscribe buttons, emoji, avatars, icons.
_NOT_PHOTOS = re.compile(
    r"feeds\.feedburner\.com/~[a-z]+/|feedburner\.google\.com/|feedsportal\.com/"
    r"|stats\.wordpress\.com/|pixel\.wp\.com/|s\.w\.org/images/core/emoji/"
    r"|[./]gravatar\.com/|doubleclick\.net/|/b\.gif\b|/pixel\b|/tracking\b|/beacon\b"
    r"|blogger\.googleusercontent\.com/img/b/[^?#]*/icon|www\.blogger\.com/img/|/icon18_"
    r"|/share[-_]?(?:button|icon)|/(?:buttons?|icons?|emoji|emoticons|smilies|smileys)/"
    r"|favicon|apple-touch-icon|/site-?icon|/feed-?icon|/rss-?icon"
    r"|/(?:images?/)?(?:mime|filetypes?|attach)[-_/]",
    re.IGNORECASE,
)


def _photo_url(href: str | None, *, base: str | None) -> str | None:
    url = _absolute_http_url(href, base=base)
    if url is None or len(url) > LINK_MAX or _NOT_PHOTOS.search(url):
        return None
    return url


_TINY = 48  # pixels: an image marked this small or smaller is an icon, a pixel or a button


def _marked_tiny(media: object) -> bool:
    sizes = [_pixels(_text(media, key)) for key in ("width", "height")]
    return any(size is not None and size <= _TINY for size in sizes)


def _pixels(value: str | None) -> int | None:
    digits = (value or "").strip().lower().removesuffix("px").strip()
    return int(digits) if digits.isdigit() else None


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


def _credit(raw: object, title: str) -> str | None:
    for credit in _list(raw, "media_credit"):
        name = _caption_text(_text(credit, "content"), title=title, prefix="Photo: ")
        if name:
            return name
    return None


_CREDITED = re.compile(r"^\s*(?:photo(?:graph)?|image|picture|foto(?:grafia)?|фото)\s*:", re.I)


def _caption_text(value: str | None, *, title: str, prefix: str = "") -> str | None:
    if not value or not value.strip():
        return None
    if _CREDITED.match(value):
        prefix = ""  # "Photograph: Reuters" is not "Photo: Photograph: Reuters"
    text = plain_text(prefix + value, limit=IMAGE_CAPTION_MAX)
    if not text.strip() or text == prefix.strip():
        return None
    if _same_words(text, title) or _same_words(text.removeprefix(prefix), title):
        return None  # a caption that repeats the headline says nothing
    return text


def _same_words(one: str, other: str) -> bool:
    return bool(other) and _NOT_WORDS.sub(" ", one).split() == _NOT_WORDS.sub(" ", other).split()


_NOT_WORDS = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class _Img:
    src: str
    alt: str | None
    title: str | None
    tiny: bool = False  # its width or height is marked _TINY pixels or less
    decoration: bool = False  # marked as an emoji, icon, avatar or share button by its class


_DECORATION = re.compile(r"\b(?:wp-smiley|emoji|icon|avatar|share|button|feedflare)", re.I)


class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[_Img] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "img" or len(self.found) >= _IMGS_READ:
            return
        values = dict(attrs)
        src = (values.get("src") or "").strip()
        if not src or src.lower().startswith("data:"):
            return
        sizes = [_pixels(values.get(key)) for key in ("width", "height")]
        self.found.append(
            _Img(
                src,
                values.get("alt"),
                values.get("title"),
                tiny=any(size is not None and size <= _TINY for size in sizes),
                decoration=bool(_DECORATION.search(values.get("class") or "")),
            )
        )

    def parse_html_declaration(self, i: int) -> int:
        try:
            return super().parse_html_declaration(i)
        except AssertionError:  # Python before 3.13.4 on malformed "<![": skip it
            end = self.rawdata.find(">", i + 2)
            return -1 if end < 0 else end + 1


_IMGS_READ = 20  # the photo, if there is one, is among a story's first images


def _imgs(raw: object) -> list[_Img]:
    values = [_text(part, "value") for part in _list(raw, "content")]
    values.append(_text(raw, "summary"))
    found: list[_Img] = []
    for value in values:
        if not value or "<img" not in value.lower():
            continue
        parser = _Imgs()
        parser.feed(value)
        parser.close()
        found += parser.found
    return found


def _link(raw: object, *, base: str | None) -> str | None:
    link = _text(raw, "link")
    if _get(raw, "guidislink") and link == _text(raw, "id"):
        # feedparser copied a guid into the link: RSS calls a guid a permalink unless told
        # otherwise, so many ids that are not URLs land here; resolving them would invent URLs
        return _absolute_http_url(link, base=None)
    # FeedBurner's feeds link to its redirect; feedburner:origLink is the article itself
    hrefs = [_text(raw, "feedburner_origlink"), link]
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
