"""Store feed entries as articles: dedupe by guid or link, update changed stories."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit
from urllib.request import url2pathname

import httpx
from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from digests.db import SessionFactory
from digests.feeds.clean import without_controls
from digests.feeds.fetch import fetch_conditional
from digests.feeds.parse import FeedEntry, FeedError, parse_feed
from digests.feeds.state import Backoff, load_state, record_failure, record_success, tracked
from digests.models import (
    API_SOURCE,
    IMAGE_CAPTION_MAX,
    KEY_MAX,
    LINK_MAX,
    SECTION_NAME_MAX,
    TITLE_MAX,
    Article,
    Section,
    article_sections,
)
from digests.stories.naming import distinct_slug, section_key, section_names, slugify

log = logging.getLogger(__name__)

_CHUNK = 500


def _clean(text: str, limit: int | None = None) -> str:
    text = without_controls(text)
    return text if limit is None else text[:limit]


def _hashed(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def bounded(entry: FeedEntry) -> FeedEntry:
    """The entry as it can be stored on every database: control characters removed, text cut
    to its column's size; a guid or link too long to be a key becomes a stable hash of it
    (dedupe still works), and a link or image URL too long to store is dropped rather than
    cut (so is an image URL that is not http(s)); an image caption is cut to its column."""
    guid = _clean(entry.guid) if entry.guid else None
    link = _clean(entry.link) if entry.link else None
    if guid and len(guid) > KEY_MAX:
        guid = _hashed(guid)
    if link and len(link) > KEY_MAX and not guid:
        guid = _hashed(link)  # the key a long link would have been
    if link and len(link) > LINK_MAX:
        link = None
    image_url = _clean(entry.image_url).strip() if entry.image_url else None
    if image_url and (
        len(image_url) > LINK_MAX or not image_url.lower().startswith(("http://", "https://"))
    ):
        image_url = None
    caption = _clean(entry.image_caption, IMAGE_CAPTION_MAX).strip() if entry.image_caption else ""
    return dataclasses.replace(
        entry,
        guid=guid or None,
        link=link or None,
        title=_clean(entry.title, TITLE_MAX),
        summary=_clean(entry.summary),
        categories=tuple(
            cleaned
            for category in entry.categories
            if (cleaned := _clean(category, SECTION_NAME_MAX).strip())
        ),
        image_url=image_url or None,
        image_caption=(caption or None) if image_url else None,
    )


@dataclass
class IngestReport:
    """What one source gave: counts, or the one line that says why it failed."""

    source: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    not_modified: bool = False  # the server answered 304 to our validators: nothing parsed
    backing_off: str | None = None  # not fetched: the feed failed lately and waits
    failures: int = 0  # failures in a row, as of this report
    # stored stories whose title or summary this source changed (their editors may want to
    # correct a push of them)
    rewritten: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        if self.error is not None:
            return f"{self.source}: error: {self.error}"
        if self.backing_off is not None:
            return f"{self.source}: {self.backing_off}"
        if self.not_modified:
            return f"{self.source}: not modified"
        text = f"{self.source}: {self.new} new, {self.updated} updated, {self.unchanged} unchanged"
        if self.warnings:
            text += " (warning: " + "; ".join(self.warnings) + ")"
        return text


async def store_entries(
    session: AsyncSession,
    entries: Sequence[FeedEntry],
    *,
    now: datetime,
    category_map: Mapping[str, str],
    default_section: str,
    source: str | None = None,
    max_sections: int | None = None,
    undated_at: datetime | None = None,
    feeds: Collection[str] = (),
) -> IngestReport:
    """Insert new entries and update changed ones; the caller owns the transaction.

    `undated_at` places entries with no date (worked out here when not given: the caller
    that stores a feed in parts gives the same place to every part, and the entries in the
    order `_undated_reversed` makes). `feeds` are the sources configured now: a story whose
    feed is no longer among them is adopted by the feed that carries it (a feed that moved
    to https or to a new address keeps its stories)."""
    report = IngestReport(source=source or "")
    unique: dict[str, FeedEntry] = {}
    for entry in map(bounded, entries):
        unique.setdefault(entry.key, entry)

    # entries of a feed share a few category lists: each list is read once
    names_of: dict[tuple[str, ...], list[str]] = {}
    names_by_key = {
        key: names_of.get(entry.categories)
        or names_of.setdefault(
            entry.categories,
            section_names(entry.categories, mapping=category_map, default=default_section),
        )
        for key, entry in unique.items()
    }
    every = (
        await session.execute(select(Section.id, Section.name, Section.slug).order_by(Section.id))
    ).all()
    # sections by the key of their names, the first by id where two share one (as
    # get_or_create_sections finds them)
    by_key: dict[str, int] = {}
    for section_id, name, _slug in every:
        by_key.setdefault(_section_key(name), section_id)
    if max_sections is not None:
        names_by_key, over = _within_section_cap(
            by_key,
            len(every),
            names_by_key,
            max_sections=max_sections,
            default_section=default_section,
        )
        if over:
            report.warnings.append(
                f"{over} {'category' if over == 1 else 'categories'} filed under "
                f"{default_section}: the limit of {max_sections} sections is reached"
            )
    section_ids = await _section_ids(
        session,
        by_key,
        {slug for _id, _name, slug in every},
        (name for names in names_by_key.values() for name in names),
        now=now,
    )

    stored = await _stored(session, list(unique))

    if undated_at is None:
        if any(entry.published is None for entry in unique.values()):
            undated_at = await _undated_place(session, unique.values(), now=now)
        # Undated entries go in last to first: ids then rise towards the feed's first entry,
        # and at one published_at a higher id is the newer story.
        order = _undated_reversed(unique)
    else:
        order = list(unique.items())
    configured = {source_identity(feed) for feed in feeds}
    foreign = 0
    new_rows: list[dict[str, object]] = []
    new_sections: list[list[int]] = []
    changed_rows: list[dict[str, object]] = []
    unlinked: list[dict[str, int]] = []
    linked: list[dict[str, int]] = []
    for key, entry in order:
        wanted = list(dict.fromkeys(section_ids[name] for name in names_by_key[key]))
        article = stored.get(key)
        if article is None:
            published = entry.published or undated_at
            if published is None:
                raise AssertionError("an undated entry with no place")
            new_rows.append(
                {
                    "key": key,
                    "link": entry.link,
                    "title": _headline(entry) or "(untitled)",
                    "summary": entry.summary,
                    "published_at": min(published, now).replace(microsecond=0),
                    "ingested_at": now,
                    "updated_at": now,
                    "source": source,
                    "is_breaking": False,
                    "date_known": entry.published is not None,
                    "image_url": entry.image_url,
                    "image_caption": entry.image_caption,
                }
            )
            new_sections.append(wanted)
            report.new += 1
            continue
        adopted = False
        if not _owns(source, article.source):
            if not _adopts(source, article.source, configured):
                foreign += 1  # another feed's story: never rewritten from here
                continue
            adopted = True
        if article.unpublished:
            report.unchanged += 1  # the publisher took it back: only the API publishes it again
            continue
        row: dict[str, object] = {"article_id": article.id}  # the columns that change
        if adopted:
            row["source"] = source
        changed = False
        title = _headline(entry) or article.title
        if (title, entry.summary) != (article.title, article.summary):
            row["title"] = title
            row["summary"] = entry.summary
            report.rewritten.append(article.id)
            changed = True
        if entry.link and entry.link != article.link:
            row["link"] = entry.link
            changed = True
        if (entry.image_url, entry.image_caption) != (article.image_url, article.image_caption):
            # the feed's photo as it is now: a new one, a new caption, or none any more
            row["image_url"] = entry.image_url
            row["image_caption"] = entry.image_caption
            changed = True
        if entry.published is not None:
            published = min(entry.published, now).replace(microsecond=0)
            if (published, True) != (article.published_at, article.date_known):
                # the feed moved the story's date (an editor rescheduled it): as the API does
                row["published_at"] = published
                row["date_known"] = True
                changed = True
        if set(article.sections) != set(wanted):
            unlinked += [_link_row(article.id, gone) for gone in article.sections - set(wanted)]
            linked += [
                _link_row(article.id, added) for added in wanted if added not in article.sections
            ]
            changed = True
        if changed:
            row["updated_at"] = now
            report.updated += 1
        else:
            report.unchanged += 1
        if changed or adopted:
            changed_rows.append(row)
    await _write(session, new_rows, new_sections, changed_rows, unlinked, linked)
    await session.flush()
    if foreign:
        report.warnings.append(
            f"{foreign} {'entry' if foreign == 1 else 'entries'} skipped: "
            "their id belongs to a story of another source"
        )
    return report


_articles = Article.metadata.tables["articles"]
_sections = Article.metadata.tables["sections"]
_KEYS_PER_QUERY = 500


@dataclass(frozen=True)
class _Stored:
    """What a stored story is compared with: its row's columns that a feed can change."""

    id: int
    source: str | None
    link: str | None
    title: str
    summary: str
    published_at: datetime
    date_known: bool
    image_url: str | None
    image_caption: str | None
    sections: frozenset[int]
    unpublished: bool = False  # taken back through the API: a feed never brings it back


async def _stored(session: AsyncSession, keys: Sequence[str]) -> dict[str, _Stored]:
    """The stored stories with these keys, with their sections' ids: plain rows, read in two
    queries per _KEYS_PER_QUERY keys (no ORM objects: a large feed's second ingest compares
    thousands). Not one outer join: PostgreSQL planned that as a scan of every link."""
    found: dict[str, _Stored] = {}
    postgresql = session.bind is not None and session.bind.dialect.name == "postgresql"
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        if postgresql:  # for this query only (the triggers of the inserts keep their plans)
            await session.execute(_plan_cache_mode("force_custom_plan"))
        rows = (
            await session.execute(
                select(
                    _articles.c.key,
                    _articles.c.id,
                    _articles.c.source,
                    _articles.c.link,
                    _articles.c.title,
                    _articles.c.summary,
                    _articles.c.published_at,
                    _articles.c.date_known,
                    _articles.c.image_url,
                    _articles.c.image_caption,
                    _articles.c.unpublished_at,
                ).where(_articles.c.key.in_(chunk))
            )
        ).all()
        if postgresql:
            await session.execute(_plan_cache_mode("auto"))
        if not rows:
            continue
        linked: dict[int, set[int]] = {row.id: set() for row in rows}
        pairs = await session.execute(
            select(article_sections.c.article_id, article_sections.c.section_id).where(
                article_sections.c.article_id.in_(list(linked))
            )
        )
        for article_id, section_id in pairs:
            linked[article_id].add(section_id)
        for row in rows:
            found[row.key] = _Stored(
                id=row.id,
                source=row.source,
                link=row.link,
                title=row.title,
                summary=row.summary,
                published_at=row.published_at,
                date_known=row.date_known,
                image_url=row.image_url,
                image_caption=row.image_caption,
                sections=frozenset(linked[row.id]),
                unpublished=row.unpublished_at is not None,
            )
    return found


def _plan_cache_mode(mode: str) -> Select[tuple[str]]:
    """PostgreSQL: how this transaction plans its prepared statements. The generic plan it
    keeps for the stored stories' query, made while the table was small, read every stored
    story for each part (0.5 s a part at 36,000 stories): that query gets a plan for its keys."""
    return select(func.set_config("plan_cache_mode", mode, True))


def _link_row(article_id: int, section_id: int) -> dict[str, int]:
    return {"link_article": article_id, "link_section": section_id}


async def _write(
    session: AsyncSession,
    new_rows: list[dict[str, object]],
    new_sections: list[list[int]],
    changed_rows: list[dict[str, object]],
    unlinked: list[dict[str, int]],
    linked: list[dict[str, int]],
) -> None:
    """New stories inserted (ids in the order given) with their sections; changed ones
    updated, and their sections' links removed and added; a few statements in all."""
    if new_rows:
        # RETURNING the key with the id: asked for in the parameters' order, SQLite would be
        # sent one row per statement
        returned = await session.execute(
            insert(_articles).returning(_articles.c.key, _articles.c.id), new_rows
        )
        ids: dict[str, int] = {key: article_id for key, article_id in returned}
        for row, wanted in zip(new_rows, new_sections, strict=True):
            linked += [_link_row(ids[str(row["key"])], section_id) for section_id in wanted]
    by_columns: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for row in changed_rows:  # an UPDATE sets only the columns that changed
        by_columns.setdefault(tuple(name for name in row if name != "article_id"), []).append(row)
    for columns, rows in by_columns.items():
        await session.execute(
            update(_articles)
            .where(_articles.c.id == bindparam("article_id"))
            .values({name: bindparam(name) for name in columns}),
            rows,
        )
    if unlinked:
        await session.execute(
            delete(article_sections).where(
                article_sections.c.article_id == bindparam("link_article"),
                article_sections.c.section_id == bindparam("link_section"),
            ),
            unlinked,
        )
    if linked:
        await session.execute(
            insert(article_sections).values(
                article_id=bindparam("link_article"), section_id=bindparam("link_section")
            ),
            linked,
        )
    _refresh_loaded(session, changed_rows, {pair["link_article"] for pair in linked + unlinked})


def _refresh_loaded(
    session: AsyncSession, changed_rows: list[dict[str, object]], relinked: set[int]
) -> None:
    """Stories the caller's session had loaded, brought in step with their rows: the changed
    columns set in place (as the ORM would have), their sections expired (to be read again)."""
    if not session.identity_map:
        return
    for row in changed_rows:
        loaded = session.identity_map.get(identity_key(Article, row["article_id"]))
        if loaded is not None:
            for name, value in row.items():
                if name != "article_id":
                    set_committed_value(loaded, name, value)
    for article_id in relinked:
        loaded = session.identity_map.get(identity_key(Article, article_id))
        if loaded is not None:
            session.expire(loaded, ["sections"])


async def _undated_place(
    session: AsyncSession, entries: Iterable[FeedEntry], *, now: datetime
) -> datetime:
    """Where stories with no readable date go: a second before the oldest dated story (of this
    feed or stored), so they never outrank a dated story; among themselves they keep the
    order in which they were first seen and, within a feed, the feed's order."""
    oldest = await session.scalar(
        select(func.min(Article.published_at)).where(Article.date_known.is_(True))
    )
    dated = [entry.published for entry in entries if entry.published is not None]
    candidates = [now, *dated] + ([oldest] if oldest is not None else [])
    return (min(candidates) - timedelta(seconds=1)).replace(microsecond=0)


def _undated_reversed(unique: dict[str, FeedEntry]) -> list[tuple[str, FeedEntry]]:
    dated = [(key, entry) for key, entry in unique.items() if entry.published is not None]
    undated = [(key, entry) for key, entry in unique.items() if entry.published is None]
    return dated + undated[::-1]


def _within_section_cap(
    by_key: Mapping[str, int],
    count: int,
    names_by_key: dict[str, list[str]],
    *,
    max_sections: int,
    default_section: str,
) -> tuple[dict[str, list[str]], int]:
    """Entries' section names with those that would make a section beyond `max_sections`
    replaced by the default section; and how many distinct names were replaced. `by_key`
    are the `count` sections there are, by the key of their names."""
    taken = set(by_key)
    room = max(0, max_sections - count)
    allowed: set[str] = set()
    refused: set[str] = set()
    keys: dict[str, str] = {}  # each distinct name's section_key, in the entries' order
    for names in names_by_key.values():
        for name in names:
            if name not in keys:
                keys[name] = _section_key(name)
    for name, slug in keys.items():
        if slug in taken or slug in allowed or slug in refused or name == default_section:
            continue
        if room > 0:
            allowed.add(slug)
            room -= 1
        else:
            refused.add(slug)
    if not refused:
        return names_by_key, 0
    capped = {
        key: list(dict.fromkeys(default_section if keys[n] in refused else n for n in names))
        for key, names in names_by_key.items()
    }
    return capped, len(refused)


_section_key = functools.lru_cache(maxsize=4096)(section_key)  # pure, and asked per chunk


async def _section_ids(
    session: AsyncSession,
    by_key: dict[str, int],
    slugs: set[str],
    names: Iterable[str],
    *,
    now: datetime,
) -> dict[str, int]:
    """Each name's section id: found in `by_key` (the sections there are, by the key of their
    names, and their `slugs`), or a new section, as `get_or_create_sections` makes it (the
    transliterated slug of its name, distinct from every other) in one INSERT for all."""
    wanted = list(dict.fromkeys(names))
    missing: dict[str, dict[str, object]] = {}
    for name in wanted:
        key = _section_key(name)
        if key not in by_key and key not in missing:
            slug = distinct_slug(slugify(name), slugs)
            slugs.add(slug)
            missing[key] = {"slug": slug, "name": name, "created_at": now}
    if missing:
        created = await session.execute(
            insert(_sections).returning(_sections.c.slug, _sections.c.id), list(missing.values())
        )
        by_slug: dict[str, int] = {slug: section_id for slug, section_id in created}
        for key, row in missing.items():
            by_key[key] = by_slug[str(row["slug"])]
    return {name: by_key[_section_key(name)] for name in wanted}


def _headline(entry: FeedEntry) -> str:
    """The entry's title, or its link standing in for a missing one, within the column."""
    return (entry.title or entry.link or "")[:TITLE_MAX]


def _owns(source: str | None, stored: str | None) -> bool:
    """A story belongs to the source that first stored it, however its address was written
    (`source_identity`); one stored without a source (the sample, a test) can be updated by
    any."""
    return (
        source is None
        or stored is None
        or stored == source
        or source_identity(stored) == source_identity(source)
    )


def _adopts(source: str | None, stored: str | None, configured: set[str]) -> bool:
    """A feed takes over a story whose feed is configured no more (it moved to a new address
    and carries the same stories); never one of the API's, nor one of a feed still polled."""
    return (
        source is not None
        and bool(configured)
        and stored is not None
        and stored != API_SOURCE
        and source_identity(source) in configured
        and source_identity(stored) not in configured
    )


_LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]", "ip6-localhost"}


def source_identity(source: str) -> str:
    """One name for one feed however its address is written: a path relative or absolute
    ("./a.xml", "a.xml", "/srv/a.xml") or as a file:// URL; a URL by http or https, with or
    without "www.", a default port, a trailing slash, or loopback by any of its names."""
    raw = source.strip()
    if raw == API_SOURCE:
        return raw
    try:
        parts = urlsplit(raw)
    except ValueError:
        return raw
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.hostname:
        host = parts.hostname.lower().removeprefix("www.")
        host = "localhost" if host in _LOOPBACK else host
        try:
            port = parts.port
        except ValueError:
            port = None
        netloc = host if port in (None, 80, 443) else f"{host}:{port}"
        path = parts.path.rstrip("/")
        return f"//{netloc}{path}" + (f"?{parts.query}" if parts.query else "")
    if scheme == "file":
        raw = url2pathname(parts.path)
    elif scheme and len(scheme) > 1:
        return raw  # another kind of source ("api"): as it is
    return "file:" + os.path.realpath(os.path.abspath(os.path.expanduser(raw)))


async def ingest_source(
    source: str,
    *,
    session_factory: SessionFactory,
    client: httpx.AsyncClient,
    now: Callable[[], datetime],
    category_map: Mapping[str, str],
    default_section: str,
    max_sections: int | None = None,
    backoff: Backoff = Backoff(),  # noqa: B008 - frozen, so sharing the default is safe
    respect_backoff: bool = True,
    feeds: Collection[str] = (),
) -> IngestReport:
    """Fetch, parse and store one source; a failure is reported, never raised. An http(s)
    feed is fetched conditionally, and while it backs off after failures it is skipped unless
    respect_backoff is False (an operator's explicit run)."""
    kept = tracked(source)
    state = await load_state(session_factory, source) if kept else None
    if state is not None and respect_backoff and state.next_attempt_at is not None:
        if now() < state.next_attempt_at:
            return IngestReport(
                source=source,
                failures=state.failures,
                backing_off=(
                    f"backing off until {state.next_attempt_at:%H:%M} UTC after "
                    f"{state.failures} {'failure' if state.failures == 1 else 'failures'}: "
                    f"{state.last_error}"
                ),
            )
    try:
        fetched = await fetch_conditional(
            source,
            client=client,
            etag=state.etag if state else None,
            last_modified=state.last_modified if state else None,
        )
        # A large feed takes seconds to parse: off the event loop, replies go on meanwhile.
        if fetched.body is not None:
            parsed = await asyncio.to_thread(
                parse_feed, fetched.body, source=source, content_type=fetched.content_type
            )
    except FeedError as exc:
        if not kept:
            return IngestReport(source=source, error=str(exc))
        failed = await record_failure(
            session_factory, source, now=now(), error=str(exc), backoff=backoff
        )
        return IngestReport(source=source, error=str(exc), failures=failed.failures)
    remember = functools.partial(
        record_success,
        session_factory,
        source,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
    )
    if fetched.body is None:
        await remember(now=now())
        return IngestReport(source=source, not_modified=True)
    store = functools.partial(
        store_feed,
        session_factory,
        now=now,
        category_map=category_map,
        default_section=default_section,
        source=source,
        max_sections=max_sections,
        feeds=feeds,
    )
    for attempt in (1, 2):
        try:
            report = await store(parsed.entries)
        except IntegrityError:
            # another process stored some of the same stories at the same moment: retry once
            if attempt == 2:
                log.exception("ingest of %s conflicted twice", source)
                return IngestReport(source=source, error="conflicting concurrent ingest")
            continue
        except DBAPIError as exc:
            # an entry the database refuses although it was cleaned: store the others
            log.warning("ingest of %s: storing entry by entry: %s", source, exc.orig)
            report = await _store_each(store, parsed.entries, source=source)
        report.warnings.extend(parsed.warnings)
        if kept:  # only once stored: a validator must not stand for stories we lack
            await remember(now=now())
        return report
    raise AssertionError("unreachable")


STORE_CHUNK = 500
"""Entries stored per transaction: a large feed is written in short transactions, so readers
are answered meanwhile (on SQLite a writer holds the whole database) and memory stays flat."""

SQLITE_PAUSE = 0.1
"""Seconds between two parts on SQLite. Every transaction there takes the write lock at BEGIN,
a reader's too, and one that waits for it is retried by SQLite's busy handler at most every
100 ms: a writer that starts its next part as soon as the last one commits can keep it out
for seconds. A pause that long between parts lets every waiting transaction in."""


async def store_feed(
    session_factory: SessionFactory,
    entries: Sequence[FeedEntry],
    *,
    now: Callable[[], datetime],
    category_map: Mapping[str, str],
    default_section: str,
    source: str,
    max_sections: int | None,
    feeds: Collection[str] = (),
) -> IngestReport:
    """Store a parsed feed's entries in transactions of STORE_CHUNK entries each."""
    unique: dict[str, FeedEntry] = {}
    for entry in entries:
        unique.setdefault(entry.key, entry)
    undated_at = None
    if any(entry.published is None for entry in unique.values()):
        async with session_factory() as session:
            undated_at = await _undated_place(session, unique.values(), now=now())
    ordered = [entry for _, entry in _undated_reversed(unique)]
    report = IngestReport(source=source)
    sqlite = False
    for start in range(0, len(ordered), STORE_CHUNK):
        if start and sqlite:
            await asyncio.sleep(SQLITE_PAUSE)
        async with session_factory.begin() as session:
            sqlite = session.bind is not None and session.bind.dialect.name == "sqlite"
            part = await store_entries(
                session,
                ordered[start : start + STORE_CHUNK],
                now=now(),
                category_map=category_map,
                default_section=default_section,
                source=source,
                max_sections=max_sections,
                undated_at=undated_at,
                feeds=feeds,
            )
        report.new += part.new
        report.updated += part.updated
        report.unchanged += part.unchanged
        report.rewritten.extend(part.rewritten)
        report.warnings.extend(w for w in part.warnings if w not in report.warnings)
    return report


async def _store_each(
    store: Callable[[Sequence[FeedEntry]], Awaitable[IngestReport]],
    entries: Sequence[FeedEntry],
    *,
    source: str,
) -> IngestReport:
    """Each entry in a transaction of its own: one the database refuses is skipped and
    reported, and every other one is stored."""
    report = IngestReport(source=source)
    skipped: list[str] = []
    for entry in entries:
        try:
            one = await store([entry])
        except DBAPIError as exc:
            reason = (str(exc.orig or exc).splitlines() or ["refused"])[0][:120]
            skipped.append(f"{entry.title[:60]!r}: {reason}")
            continue
        report.new += one.new
        report.updated += one.updated
        report.unchanged += one.unchanged
        report.rewritten.extend(one.rewritten)
        report.warnings.extend(one.warnings)
    if skipped:
        noun = "entry" if len(skipped) == 1 else "entries"
        report.warnings.append(f"{len(skipped)} {noun} skipped: " + "; ".join(skipped[:3]))
    return report


async def ingest_sources(
    sources: Sequence[str],
    *,
    session_factory: SessionFactory,
    now: Callable[[], datetime],
    category_map: Mapping[str, str],
    default_section: str,
    client: httpx.AsyncClient | None = None,
    on_report: Callable[[IngestReport], None] | None = None,
    max_sections: int | None = None,
    backoff: Backoff = Backoff(),  # noqa: B008 - frozen, so sharing the default is safe
    respect_backoff: bool = True,
    feeds: Collection[str] = (),
) -> list[IngestReport]:
    """Ingest each source in turn; one broken source never stops the others. The scheduled
    poll respects each feed's backoff; an operator's run (respect_backoff=False) tries all.
    `feeds` are the configured feeds (FEED_URLS): a story of a feed no longer among them is
    taken over by a configured feed that carries it."""
    owned = client is None
    http = client or httpx.AsyncClient(follow_redirects=True)
    reports = []
    try:
        for source in sources:
            report = await ingest_source(
                source,
                session_factory=session_factory,
                client=http,
                now=now,
                category_map=category_map,
                default_section=default_section,
                max_sections=max_sections,
                backoff=backoff,
                respect_backoff=respect_backoff,
                feeds=feeds,
            )
            if report.ok:
                log.info("ingest %s", report.line())
            else:
                log.warning("ingest %s", report.line())
            if on_report is not None:
                on_report(report)
            reports.append(report)
    finally:
        if owned:
            await http.aclose()
    return reports
