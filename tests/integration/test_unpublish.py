"""An unpublished story (digests/newsroom/cms.py `unpublish`, migration 0015) on SQLite and
PostgreSQL: gone from /latest's pages and counts, search, inline mode's newest, digests not
yet built and alerts not yet queued; a feed that still lists it never brings it back; the
CMS publishing it again does."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from digests.db import SessionFactory
from digests.digest.alerts import queue_alerts
from digests.digest.builder import DigestBuilder, DigestRequest
from digests.feeds.ingest import store_entries
from digests.feeds.parse import FeedEntry
from digests.models import (
    Article,
    Chat,
    ChatKind,
    KeywordKind,
    KeywordRule,
    Section,
    StoryCount,
    Subscription,
)
from digests.newsroom import cms
from digests.stories.paging import first_page
from digests.stories.search import find_ids, latest_ids
from tests.integration.test_paging_order import walk
from tests.migrations import downgrade_to, upgrade_to
from tests.oracle import collect_digest

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_n = itertools.count(1)


def entry(n: int, title: str, *, hours_ago: int) -> FeedEntry:
    return FeedEntry(
        guid=f"unpub-{n}",
        link=f"https://meridian.example/u/{n}",
        title=title,
        summary=f"{title}, in full.",
        published=NOW - timedelta(hours=hours_ago),
        categories=("World",),
    )


async def stored(session_factory: SessionFactory) -> dict[str, Article]:
    async with session_factory.begin() as session:
        await store_entries(
            session,
            [
                entry(1, "Harbour storm damage", hours_ago=1),
                entry(2, "Minister resigns over memo", hours_ago=2),
                entry(3, "Harbour repairs begin", hours_ago=3),
            ],
            now=NOW,
            category_map={},
            default_section="General",
        )
    async with session_factory() as session:
        return {a.title: a for a in await session.scalars(select(Article))}


async def counts(session_factory: SessionFactory) -> dict[int, int]:
    async with session_factory() as session:
        return {c.scope: int(c.stories) for c in await session.scalars(select(StoryCount))}


async def test_an_unpublished_story_is_nowhere_a_reader_looks(
    session_factory: SessionFactory,
) -> None:
    articles = await stored(session_factory)
    memo = articles["Minister resigns over memo"]
    async with session_factory.begin() as session:
        world = await session.scalar(select(Section).where(Section.slug == "world"))
        assert world is not None
        chat = Chat(
            telegram_id=4242,
            kind=ChatKind.PRIVATE,
            timezone="UTC",
            digest_time="08:00",
            created_at=NOW - timedelta(days=1),
            updated_at=NOW - timedelta(days=1),
        )
        session.add(chat)
        await session.flush()
        session.add(Subscription(chat_id=chat.id, section_id=world.id, created_at=NOW))
        session.add(
            KeywordRule(
                chat_id=chat.id,
                kind=KeywordKind.FOLLOW,
                phrase="minister",
                normalized="minister",
                alert=True,
                created_at=NOW - timedelta(days=1),
            )
        )
        article = await session.get(Article, memo.id)
        assert article is not None
        done = await cms.unpublish(session, article, now=NOW)
        assert done.withdrawal is None  # never pushed: nothing to withdraw
        again = await cms.unpublish(session, article, now=NOW + timedelta(minutes=5))
        assert again.article.unpublished_at == NOW  # the first time stands
    assert await counts(session_factory) == {0: 2, world.id: 2}

    for section in (None, world):
        pages = await walk(session_factory, section)
        assert [p.article.title for p in pages] == ["Harbour storm damage", "Harbour repairs begin"]
        assert [(p.position, p.total) for p in pages] == [(1, 2), (2, 2)]
    async with session_factory() as session:
        assert await find_ids(session, ["minister"], limit=10) == []
        assert len(await find_ids(session, ["harbour"], limit=10)) == 2
        assert memo.id not in await latest_ids(session, limit=10)
        builder = DigestBuilder(per_section=10)
        window = (NOW - timedelta(days=1), NOW)
        built = await builder.collect(session, [DigestRequest(chat.id, *window, "UTC")])
        by_oracle = await collect_digest(
            session, chat_id=chat.id, window_start=window[0], window_end=window[1], per_section=10
        )
        for digest in (built[chat.id], by_oracle):
            assert [s.title for section in digest for s in section.stories] == [
                "Harbour storm damage",
                "Harbour repairs begin",
            ]
    async with session_factory.begin() as session:
        queued = await queue_alerts(session, now=NOW, per_hour=10)
    assert queued.queued == 0  # "minister" matched only the unpublished story

    # the feed still lists it: it stays unpublished, in no section
    async with session_factory.begin() as session:
        report = await store_entries(
            session,
            [entry(2, "Minister resigns over memo (updated)", hours_ago=2)],
            now=NOW + timedelta(hours=1),
            category_map={},
            default_section="General",
        )
        assert (report.new, report.updated) == (0, 0)
    async with session_factory() as session:
        kept = await session.get(Article, memo.id)
        assert kept is not None and kept.unpublished_at is not None and kept.sections == []
        assert kept.title == "Minister resigns over memo"

    # the CMS publishes it again
    async with session_factory.begin() as session:
        saved = await cms.save_article(
            session,
            cms.Story(
                key="unpub-2",
                url="https://meridian.example/u/2",
                title="Minister resigns over memo",
                summary="",
                sections=("World",),
                published_at=None,
                image_url=None,
                image_caption=None,
                author=None,
            ),
            now=NOW + timedelta(hours=2),
            default_section="General",
            max_sections=10,
        )
        assert not saved.created and saved.article.unpublished_at is None
    assert await counts(session_factory) == {0: 3, world.id: 3}
    assert [p.article.title for p in await walk(session_factory, world)][1] == (
        "Minister resigns over memo"
    )

    # deleting an unpublished story leaves the counts of published ones as they are
    async with session_factory.begin() as session:
        article = await session.get(Article, memo.id)
        assert article is not None
        await cms.unpublish(session, article, now=NOW + timedelta(hours=3))
        await session.delete(article)
    assert await counts(session_factory) == {0: 2, world.id: 2}


async def test_the_migration_counts_published_stories_only(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    """Down one step (the column goes, every story counts) and up again (counts recomputed)."""
    articles = await stored(session_factory)
    async with session_factory.begin() as session:
        article = await session.get(Article, articles["Harbour repairs begin"].id)
        assert article is not None
        await cms.unpublish(session, article, now=NOW)
    assert (await counts(session_factory))[0] == 2
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to, "0014")
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to)
    async with session_factory() as session:
        top = await first_page(session, None)
    assert top is not None and top.total == 3  # the column went: the story is published again
    assert (await counts(session_factory))[0] == 3
