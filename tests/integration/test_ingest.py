"""Ingest on real databases: dedupe, updates, broken sources, sections from categories."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import func, select

from digests.db import SessionFactory
from digests.digest import texts as digest_texts
from digests.digest.builder import DigestSection, DigestStory
from digests.feeds import ingest as ingest_module
from digests.feeds.ingest import ingest_sources, source_identity, store_entries
from digests.feeds.parse import FeedEntry, ParsedFeed
from digests.models import KEY_MAX, SECTION_NAME_MAX, TITLE_MAX, Article, Section
from digests.stories import texts as stories_texts
from digests.stories.paging import Page, first_page
from digests.stories.sections import SectionInfo, list_sections

SAMPLE = Path(__file__).parents[2] / "digests" / "data" / "sample_feed.xml"
FEEDS = Path(__file__).parents[1] / "data" / "feeds"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def rss(items: list[tuple[str, str, str, str]]) -> bytes:
    """items: (guid, title, description, category)"""
    body = "".join(
        f"<item><guid>{g}</guid><title>{t}</title><link>https://x.example/{g}</link>"
        f"<description>{d}</description><category>{c}</category>"
        "<pubDate>Mon, 30 Nov 2026 09:00:00 +0000</pubDate></item>"
        for g, t, d, c in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://x.example/</link><description>d</description>{body}</channel></rss>"
    ).encode()


async def count(factory: SessionFactory, model: type[Article] | type[Section]) -> int:
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def ingest(  # type: ignore[no-untyped-def]
    factory: SessionFactory,
    *sources: str,
    mapping: dict[str, str] | None = None,
    feeds: tuple[str, ...] = (),
):
    return await ingest_sources(
        list(sources),
        session_factory=factory,
        now=clock,
        category_map=mapping or {},
        default_section="General",
        feeds=feeds,
    )


async def test_sample_feed_twice_stores_each_story_once(session_factory: SessionFactory) -> None:
    first = await ingest(session_factory, str(SAMPLE))
    second = await ingest(session_factory, str(SAMPLE))
    assert first[0].ok and first[0].new >= 25
    assert (second[0].new, second[0].updated) == (0, 0)
    assert second[0].unchanged == first[0].new
    assert await count(session_factory, Article) == first[0].new
    async with session_factory() as session:
        sections = await list_sections(session)
    assert len([s for s in sections if s.stories]) >= 5
    names = {s.name for s in sections}
    assert {"World", "Politics", "Sports", "Culture"} <= names


async def test_sample_stories_are_plain_text_in_utc(session_factory: SessionFactory) -> None:
    await ingest(session_factory, str(SAMPLE))
    async with session_factory() as session:
        articles = list(await session.scalars(select(Article)))
    for article in articles:
        assert "<p>" not in article.summary and "&amp;" not in article.summary
        assert article.published_at.tzinfo is not None
        assert article.published_at.utcoffset() == timedelta(0)
        assert article.published_at <= NOW
        assert article.sections


@pytest.fixture
async def feed_server() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    """A loopback HTTP server serving whatever bytes the test puts at a path."""
    pages: dict[str, bytes] = {}

    async def serve(request: web.Request) -> web.Response:
        body = pages.get(request.path)
        if body is None:
            return web.Response(status=404, text="missing")
        if request.path.endswith(".cp1251"):  # the charset only in the HTTP header
            return web.Response(
                body=body, headers={"Content-Type": "application/rss+xml; charset=windows-1251"}
            )
        return web.Response(body=body, content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", pages
    finally:
        await runner.cleanup()


async def test_changed_entry_updates_the_stored_story(
    session_factory: SessionFactory, feed_server: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_server
    pages["/feed"] = rss([("a1", "Old title", "Old", "World"), ("a2", "Same", "Same", "World")])
    await ingest(session_factory, f"{base}/feed")
    pages["/feed"] = rss(
        [("a1", "New title", "New &amp; better", "World"), ("a2", "Same", "Same", "World")]
    )
    [report] = await ingest(session_factory, f"{base}/feed")
    assert (report.new, report.updated, report.unchanged) == (0, 1, 1)
    async with session_factory() as session:
        article = await session.scalar(select(Article).where(Article.key == "a1"))
    assert article is not None
    assert (article.title, article.summary) == ("New title", "New & better")
    assert await count(session_factory, Article) == 2


async def test_broken_sources_report_and_others_still_import(
    session_factory: SessionFactory, feed_server: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_server
    pages["/good"] = rss([("g1", "Good story", "Fine", "Sports")])
    await ingest(session_factory, f"{base}/good")
    pages["/good"] = rss([("g2", "Another", "Fine", "Sports")])
    pages["/html"] = b"<html><body><h1>Hello</h1></body></html>"
    reports = await ingest(
        session_factory,
        f"{base}/missing",
        f"{base}/html",
        str(FEEDS / "broken_half.xml"),
        f"{base}/good",
        "/no/such/file.xml",
    )
    by_source = {r.source.rsplit("/", 1)[-1]: r for r in reports}
    assert "404" in (by_source["missing"].error or "")
    assert "not a RSS/Atom feed" in (by_source["html"].error or "")
    assert by_source["broken_half.xml"].ok and by_source["broken_half.xml"].new > 0
    assert by_source["broken_half.xml"].warnings
    assert by_source["good"].new == 1
    assert "not found" in (by_source["file.xml"].error or "")
    async with session_factory() as session:
        keys = set(await session.scalars(select(Article.key)))
    assert {"g1", "g2"} <= keys  # nothing stored before was lost


async def test_categories_map_to_sections(
    session_factory: SessionFactory, feed_server: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_server
    pages["/feed"] = rss(
        [
            ("c1", "One", "x", "News &gt; World"),
            ("c2", "Two", "x", "Soccer"),
            ("c3", "Three", "x", "world"),
        ]
    )
    await ingest(session_factory, f"{base}/feed", mapping={"soccer": "Sports"})
    async with session_factory() as session:
        rows = await session.execute(
            select(Article.key, Section.slug).join(Article.sections).order_by(Article.key)
        )
        pairs = [tuple(row) for row in rows]
    assert pairs == [("c1", "world"), ("c2", "sports"), ("c3", "world")]


async def test_oversized_and_control_characters_store_alike_on_every_database(
    session_factory: SessionFactory,
) -> None:
    long_guid = "g" * 700
    long_link = "https://x.example/" + "a" * 2500
    entries = [
        FeedEntry(
            guid="nul\x00guid",
            link="https://x.example/nul",
            title="Bad\x00 title\x07",
            summary="Line one\nline\x00 two",
            published=NOW - timedelta(hours=1),
            categories=("World\x00",),
        ),
        FeedEntry(long_guid, "https://x.example/g", "T" * 900, "s", None, ("C" * 120,)),
        FeedEntry(None, long_link, "Long link", "s", None, ("World",)),
    ]
    async with session_factory.begin() as session:
        report = await store_entries(
            session, entries, now=NOW, category_map={}, default_section="General", source="f"
        )
    assert (report.new, report.updated) == (3, 0)
    async with session_factory.begin() as session:  # the same feed again: recognised
        again = await store_entries(
            session, entries, now=NOW, category_map={}, default_section="General", source="f"
        )
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)
    async with session_factory() as session:
        stored = {a.title: a for a in await session.scalars(select(Article))}
    bad = stored["Bad title"]
    assert (bad.key, bad.summary) == ("nulguid", "Line one\nline two")
    assert [s.name for s in bad.sections] == ["World"]
    long = stored["T" * TITLE_MAX]
    assert long.key.startswith("sha256:") and len(long.key) <= KEY_MAX
    assert all(len(s.name) <= SECTION_NAME_MAX for s in long.sections)
    linked = stored["Long link"]
    assert linked.link is None and linked.key.startswith("sha256:")


async def test_a_second_source_never_rewrites_another_sources_story(
    session_factory: SessionFactory, feed_server: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_server
    pages["/main"] = rss([("shared-1", "Real headline", "Real", "World")])
    pages["/other"] = rss(
        [("shared-1", "Click here", "Phish", "Offers"), ("own-1", "Own story", "Fine", "Sports")]
    )
    await ingest(session_factory, f"{base}/main")
    [report] = await ingest(session_factory, f"{base}/other")
    assert report.ok and report.new == 1
    assert any("another source" in warning for warning in report.warnings), report.warnings
    async with session_factory() as session:
        article = await session.scalar(select(Article).where(Article.key == "shared-1"))
    assert article is not None
    assert (article.title, article.link, article.source) == (
        "Real headline",
        "https://x.example/shared-1",
        f"{base}/main",
    )
    assert [s.name for s in article.sections] == ["World"]


async def test_a_feed_is_parsed_off_the_event_loop(
    session_factory: SessionFactory,
    feed_server: tuple[str, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parsing waits for the event loop to run something else meanwhile: on the loop itself
    it would wait in vain (a large feed would hold every reply up for seconds)."""
    base, pages = feed_server
    pages["/feed"] = rss([("p1", "Parsed", "Fine", "World")])
    parsing, loop_ran = threading.Event(), threading.Event()
    real_parse = ingest_module.parse_feed

    def parse_while_the_loop_runs(
        data: bytes, *, source: str, content_type: str | None = None
    ) -> ParsedFeed:
        parsing.set()
        assert loop_ran.wait(10), "the event loop was blocked while the feed was parsed"
        return real_parse(data, source=source, content_type=content_type)

    monkeypatch.setattr(ingest_module, "parse_feed", parse_while_the_loop_runs)
    task = asyncio.create_task(ingest(session_factory, f"{base}/feed"))
    while not parsing.is_set():
        await asyncio.sleep(0.01)
    loop_ran.set()  # the loop got here while parsing was under way
    [report] = await task
    assert report.ok and report.new == 1


async def test_an_undated_story_is_labelled_and_never_the_newest(
    session_factory: SessionFactory,
) -> None:
    entries = [
        FeedEntry("d1", None, "Dated newer", "s", NOW - timedelta(hours=1), ("World",)),
        FeedEntry("u1", None, "No date", "s", None, ("World",)),
        FeedEntry("d2", None, "Dated older", "s", NOW - timedelta(hours=5), ("World",)),
    ]
    async with session_factory.begin() as session:
        await store_entries(
            session, entries, now=NOW, category_map={}, default_section="General", source="f"
        )
    async with session_factory() as session:
        newest = await first_page(session, None)
        undated = await session.scalar(select(Article).where(Article.key == "u1"))
    assert newest is not None and newest.article.title == "Dated newer"
    assert undated is not None and not undated.date_known
    # a second before the oldest dated story: never above a dated one
    assert undated.published_at == NOW - timedelta(hours=5, seconds=1)
    page = Page(undated, None, position=3, total=3, has_newer=True, has_older=False)
    assert "World · date unknown" in stories_texts.story_page(page, tz="UTC").text
    story = DigestStory(undated.id, undated.title, None, undated.published_at, date_known=False)
    digest = digest_texts.digest(
        [DigestSection("world", "World", [story], 0)], tz="UTC", window_end=NOW
    )
    assert "No date · date unknown" in digest[0]


async def test_an_entry_the_database_refuses_is_skipped_and_the_rest_stored(
    session_factory: SessionFactory,
    feed_server: tuple[str, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cleaning stops what we know of; should an entry still be refused, it alone is lost."""
    base, pages = feed_server
    pages["/feed"] = rss(
        [
            ("e1", "First", "Fine", "World"),
            ("e2", "NUL", "x", "World"),
            ("e3", "Third", "", "World"),
        ]
    )
    real_bounded = ingest_module.bounded

    def let_a_nul_through(entry: FeedEntry) -> FeedEntry:
        cleaned = real_bounded(entry)
        return replace(cleaned, title="Bad\x00title") if entry.title == "NUL" else cleaned

    monkeypatch.setattr(ingest_module, "bounded", let_a_nul_through)
    [report] = await ingest(session_factory, f"{base}/feed")
    assert report.ok
    async with session_factory() as session:
        keys = set(await session.scalars(select(Article.key)))
    assert {"e1", "e3"} <= keys
    engine = session_factory.kw["bind"]
    if engine.dialect.name == "postgresql":  # PostgreSQL refuses NUL in text; SQLite keeps it
        assert report.new == 2 and "e2" not in keys
        assert any(w.startswith("1 entry skipped: 'NUL'") for w in report.warnings), report
    else:
        assert report.new == 3


async def test_categories_beyond_the_section_limit_go_to_the_default_section(
    session_factory: SessionFactory,
) -> None:
    entries = [
        FeedEntry(f"c{i}", None, f"Story {i}", "s", NOW, (f"Topic {i}",)) for i in range(1, 6)
    ]
    async with session_factory.begin() as session:
        report = await store_entries(
            session,
            entries,
            now=NOW,
            category_map={},
            default_section="General",
            source="f",
            max_sections=3,
        )
    assert report.new == 5
    assert report.warnings == [
        "2 categories filed under General: the limit of 3 sections is reached"
    ]
    async with session_factory() as session:
        sections = {s.name: s.stories for s in await list_sections(session)}
    assert sections == {"Topic 1": 1, "Topic 2": 1, "Topic 3": 1, "General": 2}


async def test_an_untitled_story_with_a_long_link_is_titled_within_the_column(
    session_factory: SessionFactory,
) -> None:
    """The link stands in for a missing title, cut to the title's size: PostgreSQL refused
    the whole entry and SQLite kept a title longer than its column (found by the feed fuzzer)."""
    link = "https://x.example/" + "w" * 1000
    entries = [FeedEntry("untitled", link, "", "s", NOW, ("World",))]
    async with session_factory.begin() as session:
        report = await store_entries(
            session, entries, now=NOW, category_map={}, default_section="General", source="f"
        )
    assert (report.new, report.warnings) == (1, [])
    changed = [replace(entries[0], link=link + "/moved")]
    async with session_factory.begin() as session:
        again = await store_entries(
            session, changed, now=NOW, category_map={}, default_section="General", source="f"
        )
    assert again.updated == 1
    async with session_factory() as session:
        article = await session.scalar(select(Article).where(Article.key == "untitled"))
    assert article is not None
    assert article.link == link + "/moved"
    assert article.title == (link + "/moved")[:TITLE_MAX]


def photo_item(guid: str, image: str | None, credit: str | None = None) -> str:
    media = ""
    if image is not None:
        credit_xml = f"<media:credit>{credit}</media:credit>" if credit else ""
        media = f'<media:content url="{image}" medium="image">{credit_xml}</media:content>'
    return (
        f"<item><guid>{guid}</guid><title>Story {guid}</title>"
        f"<link>https://x.example/{guid}</link><description>Text</description>{media}"
        "<pubDate>Mon, 30 Nov 2026 09:00:00 +0000</pubDate></item>"
    )


def photo_feed(*items: str) -> bytes:
    return (
        '<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">'
        "<channel><title>T</title><link>https://x.example/</link><description>d</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


async def images(factory: SessionFactory) -> dict[str, tuple[str | None, str | None]]:
    async with factory() as session:
        rows = await session.execute(select(Article.key, Article.image_url, Article.image_caption))
        return {key: (url, caption) for key, url, caption in rows}


async def test_ingest_stores_lead_photos_and_refreshes_them_on_update(
    session_factory: SessionFactory, feed_server: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_server
    pages["/photos"] = photo_feed(
        photo_item("p1", "https://img.example/1.jpg", "Ana"),
        photo_item("p2", "https://img.example/2.jpg"),
        photo_item("p3", None),
    )
    [first] = await ingest(session_factory, f"{base}/photos")
    assert first.new == 3
    assert await images(session_factory) == {
        "p1": ("https://img.example/1.jpg", "Photo: Ana"),
        "p2": ("https://img.example/2.jpg", None),
        "p3": (None, None),
    }

    pages["/photos"] = photo_feed(
        photo_item("p1", "https://img.example/1.jpg", "Ana"),  # unchanged
        photo_item("p2", "https://img.example/2-new.jpg", "Bo"),  # a new photo and credit
        photo_item("p3", "https://img.example/3.jpg"),  # a photo added
    )
    [second] = await ingest(session_factory, f"{base}/photos")
    assert (second.new, second.updated, second.unchanged) == (0, 2, 1)
    assert await images(session_factory) == {
        "p1": ("https://img.example/1.jpg", "Photo: Ana"),
        "p2": ("https://img.example/2-new.jpg", "Photo: Bo"),
        "p3": ("https://img.example/3.jpg", None),
    }

    pages["/photos"] = photo_feed(photo_item("p1", None))  # the photo was taken down
    [third] = await ingest(session_factory, f"{base}/photos")
    assert third.updated == 1
    assert (await images(session_factory))["p1"] == (None, None)


async def test_image_fields_are_bounded_before_storing(session_factory: SessionFactory) -> None:
    from digests.models import IMAGE_CAPTION_MAX, LINK_MAX

    base = FeedEntry(
        guid="img-bounds",
        link="https://x.example/b",
        title="Bounds",
        summary="",
        published=NOW,
        categories=(),
    )
    entries = [
        replace(base, image_url="https://x.example/ok.jpg", image_caption="C\x00" * 400),
        replace(base, guid="img-long", image_url="https://x.example/" + "a" * LINK_MAX),
        replace(base, guid="img-scheme", image_url="javascript:alert(1)", image_caption="x"),
    ]
    async with session_factory.begin() as session:
        await store_entries(session, entries, now=NOW, category_map={}, default_section="General")
    stored = await images(session_factory)
    url, caption = stored["img-bounds"]
    assert url == "https://x.example/ok.jpg"
    assert caption is not None and len(caption) == IMAGE_CAPTION_MAX and "\x00" not in caption
    assert stored["img-long"] == (None, None)
    assert stored["img-scheme"] == (None, None)


async def test_a_feed_without_dates_never_outranks_dated_stories(
    session_factory: SessionFactory, tmp_path: Path
) -> None:
    dated = tmp_path / "dated.xml"
    dated.write_bytes(rss([("d1", "Dated one", "x", "World"), ("d2", "Dated two", "x", "World")]))
    # RSS 0.90 (RDF): no dates at all
    undated = tmp_path / "rss090.xml"
    undated.write_text(
        '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://my.netscape.com/rdf/simple/0.9/"><channel><title>Old</title>'
        "<link>https://old.example/</link><description>d</description></channel>"
        + "".join(
            f"<item><title>Old {n}</title><link>https://old.example/{n}</link></item>"
            for n in range(5)
        )
        + "</rdf:RDF>"
    )
    await ingest(session_factory, str(dated))
    await ingest(session_factory, str(undated))
    async with session_factory() as session:
        first = await first_page(session, None)
        order = [
            title
            for (title,) in await session.execute(
                select(Article.title).order_by(Article.published_at.desc(), Article.id.desc())
            )
        ]
    assert first is not None and first.article.title.startswith("Dated")
    assert order[:2] == ["Dated one", "Dated two"] or order[:2] == ["Dated two", "Dated one"]
    assert order[2:] == [f"Old {n}" for n in range(5)]  # the feed's own order


async def test_the_charset_of_the_http_header_counts_over_http(
    session_factory: SessionFactory, feed_server: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_server
    real = Path(__file__).parent.parent / "data" / "feeds" / "real" / "cp1251_no_declaration.xml"
    pages["/quotes.cp1251"] = real.read_bytes()
    [report] = await ingest(session_factory, f"{base}/quotes.cp1251")
    assert report.ok and report.new == 1
    async with session_factory() as session:
        titles = list(await session.scalars(select(Article.title)))
    assert titles == ["Цитата дня"]


async def test_a_date_the_feed_moves_is_applied(
    session_factory: SessionFactory, feed_server: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_server
    pages["/feed"] = rss([("m1", "Moved", "x", "World")])
    await ingest(session_factory, f"{base}/feed")
    pages["/feed"] = pages["/feed"].replace(b"09:00:00", b"07:30:00")
    [report] = await ingest(session_factory, f"{base}/feed")
    assert report.updated == 1
    async with session_factory() as session:
        story = await session.scalar(select(Article).where(Article.key == "m1"))
    assert story is not None
    assert story.published_at == datetime(2026, 11, 30, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("a.xml", "./a.xml"),
        ("a.xml", "file://{cwd}/a.xml"),
        ("http://localhost:8080/feed", "http://127.0.0.1:8080/feed/"),
        ("http://news.example/rss", "https://www.news.example:443/rss"),
    ],
)
def test_one_feed_has_one_identity_however_written(
    one: str, other: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert source_identity(one) == source_identity(other.format(cwd=tmp_path))


def test_different_feeds_have_different_identities(tmp_path: Path) -> None:
    assert source_identity("http://news.example/rss") != source_identity("http://news.example/a")
    assert source_identity("http://a.example/rss") != source_identity("http://b.example/rss")
    assert source_identity(str(tmp_path / "a.xml")) != source_identity(str(tmp_path / "b.xml"))
    assert source_identity("api") == "api"


async def test_a_feed_that_moved_keeps_its_stories_and_another_never_takes_them(
    session_factory: SessionFactory, feed_server: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_server
    old, new = f"{base}/old", f"{base.replace('127.0.0.1', 'localhost')}/new"
    pages["/old"] = rss([("mv1", "Before", "x", "World")])
    pages["/new"] = rss([("mv1", "After the move", "x", "World")])
    pages["/other"] = rss([("mv1", "Phishing title", "x", "World")])
    await ingest(session_factory, old, feeds=(old,))
    # the same feed written another way still owns its story
    [again] = await ingest(session_factory, f"{base.replace('127.0.0.1', 'localhost')}/old/")
    assert not again.warnings
    # while the old address is still configured, another feed never rewrites its story
    [report] = await ingest(session_factory, f"{base}/other", feeds=(old, f"{base}/other"))
    assert any("another source" in warning for warning in report.warnings)
    # the old address dropped from FEED_URLS, the new one there: it takes the story over
    [moved] = await ingest(session_factory, new, feeds=(new,))
    assert moved.updated == 1
    async with session_factory() as session:
        story = await session.scalar(select(Article).where(Article.key == "mv1"))
    assert story is not None and story.title == "After the move" and story.source == new


async def test_changes_of_every_kind_in_one_ingest_each_reach_their_story(
    session_factory: SessionFactory,
) -> None:
    def entry(guid: str, title: str, *categories: str, **changes: object) -> FeedEntry:
        fields: dict[str, object] = {
            "guid": guid,
            "link": f"https://x.example/{guid}",
            "title": title,
            "summary": f"About {title}",
            "published": NOW - timedelta(hours=1),
            "categories": categories,
            "image_url": None,
            "image_caption": None,
        } | changes
        return FeedEntry(**fields)  # type: ignore[arg-type]

    first = [
        entry("k-title", "Old headline", "World"),
        entry("k-link", "Link moves", "World"),
        entry("k-photo", "Photo comes", "World"),
        entry("k-section", "Section moves", "World", "Sport"),
        entry("k-date", "Date moves", "World"),
        entry("k-same", "Nothing moves", "World"),
    ]
    second = [
        entry("k-title", "New headline", "World"),
        entry("k-link", "Link moves", "World", link="https://x.example/moved"),
        entry("k-photo", "Photo comes", "World", image_url="https://x.example/p.jpg"),
        entry("k-section", "Section moves", "Sport", "Culture"),
        entry("k-date", "Date moves", "World", published=NOW - timedelta(hours=3)),
        entry("k-same", "Nothing moves", "World"),
        entry("k-new", "A new one", "Culture"),
    ]
    store = {"now": NOW, "category_map": {}, "default_section": "General", "source": "f"}
    async with session_factory.begin() as session:
        await store_entries(session, first, **store)  # type: ignore[arg-type]
    async with session_factory.begin() as session:
        loaded = await session.scalar(select(Article).where(Article.key == "k-title"))
        report = await store_entries(session, second, **store)  # type: ignore[arg-type]
        assert loaded is not None and loaded.title == "New headline"  # not the stale row
    assert (report.new, report.updated, report.unchanged) == (1, 5, 1)
    assert report.rewritten == [loaded.id]
    async with session_factory() as session:
        stored = {a.key: a for a in await session.scalars(select(Article))}
    assert (stored["k-title"].title, stored["k-title"].summary) == (
        "New headline",
        "About New headline",
    )
    assert stored["k-link"].link == "https://x.example/moved"
    assert stored["k-photo"].image_url == "https://x.example/p.jpg"
    assert [s.name for s in stored["k-section"].sections] == ["Sport", "Culture"]
    assert stored["k-date"].published_at == NOW - timedelta(hours=3)
    assert stored["k-same"].updated_at == stored["k-new"].ingested_at == NOW
    assert [s.name for s in stored["k-new"].sections] == ["Culture"]
    assert {s.name: s.stories for s in await _sections(session_factory)} == {
        "World": 5,
        "Sport": 1,
        "Culture": 2,
    }


async def _sections(factory: SessionFactory) -> list[SectionInfo]:
    async with factory() as session:
        return list(await list_sections(session))
