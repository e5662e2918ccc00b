"""/latest paging on SQLite and PostgreSQL: a section's order comes from article_sections'
copy of published_at, which the database keeps right (migration 0012), and large counts are
bounded and labelled."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from digests.db import SessionFactory
from digests.models import Article, Section, StoryCount, article_sections
from digests.stories import paging, texts
from digests.stories.paging import Page, first_page, turn_page
from digests.ui.buttons import Direction
from tests.migrations import downgrade_to, table_names, upgrade_to

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_keys = itertools.count(1)


def story(title: str, *, hours_ago: float, sections: list[Section]) -> Article:
    n = next(_keys)
    when = NOW - timedelta(hours=hours_ago)
    return Article(
        key=f"page-{n}",
        link=f"https://meridian.example/{n}",
        title=title,
        summary="",
        published_at=when,
        ingested_at=when,
        updated_at=when,
        sections=sections,
    )


async def walk(session_factory: SessionFactory, section: Section | None) -> list[Page]:
    """Every page from the newest, by Next ▶, as a reader would."""
    async with session_factory() as session:
        page = await first_page(session, section)
        pages = []
        while page is not None:
            pages.append(page)
            if not page.has_older:
                break
            page = (await turn_page(session, page.turn(Direction.OLDER))).page
        return pages


async def walk_back(session_factory: SessionFactory, last: Page) -> list[str]:
    async with session_factory() as session:
        titles = [last.article.title]
        page: Page | None = last
        while page is not None and page.has_newer:
            page = (await turn_page(session, page.turn(Direction.NEWER))).page
            assert page is not None
            titles.append(page.article.title)
        return titles


async def test_a_section_pages_newest_first_with_exact_positions(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        world, sport = (
            Section(slug="world", name="World", created_at=NOW),
            Section(slug="sport", name="Sport", created_at=NOW),
        )
        session.add_all([world, sport])
        session.add_all(
            [
                story("w3", hours_ago=1, sections=[world]),
                story("s2", hours_ago=2, sections=[sport]),
                story("ws1", hours_ago=3, sections=[world, sport]),
                # two stories published at the same instant: the id breaks the tie
                story("w0a", hours_ago=5, sections=[world]),
                story("w0b", hours_ago=5, sections=[world]),
            ]
        )
    pages = await walk(session_factory, world)
    assert [p.article.title for p in pages] == ["w3", "ws1", "w0b", "w0a"]
    assert [(p.position, p.total) for p in pages] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(p.position_exact for p in pages)
    assert await walk_back(session_factory, pages[-1]) == ["w0a", "w0b", "ws1", "w3"]
    everything = await walk(session_factory, None)
    assert [p.article.title for p in everything] == ["w3", "s2", "ws1", "w0b", "w0a"]


async def test_the_database_keeps_the_sections_copy_of_published_at(
    session_factory: SessionFactory,
) -> None:
    """Rows written through the ORM's relationship get the story's time, and a story whose
    publication time changes (a feed or the API corrects it) moves in every section."""
    async with session_factory.begin() as session:
        world = Section(slug="world", name="World", created_at=NOW)
        session.add(world)
        early = story("early", hours_ago=10, sections=[world])
        late = story("late", hours_ago=1, sections=[world])
        session.add_all([early, late])
    async with session_factory() as session:
        rows = await session.execute(
            select(article_sections.c.article_id, article_sections.c.published_at)
        )
        copies = {article_id: published for article_id, published in rows}
    assert copies == {early.id: early.published_at, late.id: late.published_at}
    assert [p.article.title for p in await walk(session_factory, world)] == ["late", "early"]

    async with session_factory.begin() as session:
        await session.execute(
            update(Article).where(Article.id == early.id).values(published_at=NOW)
        )
    assert [p.article.title for p in await walk(session_factory, world)] == ["early", "late"]

    async with session_factory.begin() as session:  # a story added to a second section later
        sport = Section(slug="sport", name="Sport", created_at=NOW)
        session.add(sport)
        moved = await session.get(Article, late.id)
        assert moved is not None
        moved.sections = [*moved.sections, sport]
    sport_pages = await walk(session_factory, sport)
    assert [p.article.title for p in sport_pages] == ["late"]
    async with session_factory() as session:
        missing = await session.scalar(
            select(text("count(*)"))
            .select_from(article_sections)
            .where(article_sections.c.published_at.is_(None))
        )
    assert missing == 0


async def test_past_the_exact_limit_the_position_is_labelled(
    session_factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past EXACT_COUNT_LIMIT newer stories the position shows as "N+"; the total stays exact."""
    monkeypatch.setattr(paging, "EXACT_COUNT_LIMIT", 3)
    async with session_factory.begin() as session:
        world = Section(slug="world", name="World", created_at=NOW)
        session.add(world)
        session.add_all([story(f"n{i}", hours_ago=i + 1, sections=[world]) for i in range(8)])
    pages = await walk(session_factory, world)
    assert [p.article.title for p in pages] == [f"n{i}" for i in range(8)]
    assert [p.position for p in pages[:4]] == [1, 2, 3, 4]
    assert all(p.position_exact for p in pages[:4])
    assert not any(p.position_exact for p in pages[4:])
    assert {p.total for p in pages} == {8}
    assert "World: 1 / 8" in texts.story_page(pages[0], tz="UTC").text
    assert "World: 3+ / 8" in texts.story_page(pages[5], tz="UTC").text
    assert not pages[-1].has_older and pages[-1].has_newer


async def counts(session_factory: SessionFactory) -> dict[int, int]:
    async with session_factory() as session:
        return {c.scope: c.stories for c in await session.scalars(select(StoryCount))}


async def test_story_counts_follow_every_insert_and_delete(
    session_factory: SessionFactory,
) -> None:
    """The totals under a page are read from story_counts: stories added through the ORM,
    moved between sections, deleted, and a deleted section's rows, all keep it exact."""
    async with session_factory.begin() as session:
        world = Section(slug="world", name="World", created_at=NOW)
        sport = Section(slug="sport", name="Sport", created_at=NOW)
        session.add_all([world, sport])
        first = story("a", hours_ago=1, sections=[world, sport])
        second = story("b", hours_ago=2, sections=[world])
        session.add_all([first, second, story("c", hours_ago=3, sections=[sport])])
    assert await counts(session_factory) == {0: 3, world.id: 2, sport.id: 2}

    async with session_factory.begin() as session:
        moved = await session.get(Article, first.id)
        assert moved is not None
        moved.sections = [s for s in moved.sections if s.id != world.id]  # out of World
        gone = await session.get(Article, second.id)
        await session.delete(gone)
    assert await counts(session_factory) == {0: 2, world.id: 0, sport.id: 2}

    async with session_factory.begin() as session:
        await session.execute(delete(Section).where(Section.id == sport.id))
    found = await counts(session_factory)
    assert found[0] == 2 and found[sport.id] == 0
    async with session_factory() as session:
        top = await first_page(session, None)
    assert top is not None and (top.position, top.total) == (1, 2)


async def test_the_migration_fills_the_copies_and_counts_of_existing_stories(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    """Going down one step and up again (as an existing database meets this migration): the
    stories already stored get their copies of published_at and their counts."""
    async with session_factory.begin() as session:
        world = Section(slug="world", name="World", created_at=NOW)
        session.add(world)
        session.add_all([story(f"old{i}", hours_ago=i + 1, sections=[world]) for i in range(3)])
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to, "0011")
        tables = await connection.run_sync(table_names)
    assert "story_counts" not in tables
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to)
        tables = await connection.run_sync(table_names)
    assert "story_counts" in tables
    assert await counts(session_factory) == {0: 3, world.id: 3}
    pages = await walk(session_factory, world)
    assert [(p.article.title, p.position, p.total) for p in pages] == [
        ("old0", 1, 3),
        ("old1", 2, 3),
        ("old2", 3, 3),
    ]
    async with session_factory.begin() as session:  # and the triggers are back
        session.add(story("new", hours_ago=0, sections=[world]))
    assert await counts(session_factory) == {0: 4, world.id: 4}
