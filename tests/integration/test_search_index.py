"""Full-text search on SQLite (FTS5) and PostgreSQL (tsvector): what a search finds, in
which order, after which changes, and the saved searches /search pages through."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from digests.db import SessionFactory
from digests.models import Article, SavedSearch
from digests.stories import texts
from digests.stories.paging import TurnProblem
from digests.stories.search import (
    SEARCH_KEPT,
    find_ids,
    inline_page,
    search_words,
    start_search,
    turn_search,
)
from digests.ui.buttons import Direction, SearchTurn
from tests.migrations import downgrade_to, table_names, upgrade_to

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
_keys = itertools.count(1)


def article(title: str, summary: str = "", *, hours_ago: float = 1) -> Article:
    n = next(_keys)
    when = NOW - timedelta(hours=hours_ago)
    return Article(
        key=f"search-{n}",
        link=f"https://meridian.example/{n}",
        title=title,
        summary=summary,
        published_at=when,
        ingested_at=when,
        updated_at=when,
    )


async def stored(session_factory: SessionFactory, *articles: Article) -> list[int]:
    async with session_factory.begin() as session:
        session.add_all(articles)
        await session.flush()
        return [a.id for a in articles]


async def found(session_factory: SessionFactory, text: str) -> list[int]:
    async with session_factory() as session:
        return await find_ids(session, search_words(text), limit=100)


def dialect(engine: AsyncEngine) -> str:
    return engine.dialect.name


async def test_finds_a_word_in_the_title_or_the_summary(session_factory: SessionFactory) -> None:
    title, summary, neither = await stored(
        session_factory,
        article("Harbour reopens after storm"),
        article("Port news", "The harbour was closed for a week"),
        article("Weather", "Sunny all week"),
    )
    assert set(await found(session_factory, "harbour")) == {title, summary}
    assert await found(session_factory, "harbour storm") == [title]  # every word must match
    assert await found(session_factory, "HARBOUR!!") == await found(session_factory, "harbour")
    assert neither not in await found(session_factory, "harbour")
    assert await found(session_factory, "volcano") == []


async def test_stems_where_the_database_can(
    session_factory: SessionFactory, engine: AsyncEngine
) -> None:
    [english] = await stored(session_factory, article("Councils running elections"))
    [russian] = await stored(session_factory, article("Главные новости недели"))
    assert await found(session_factory, "election") == [english]  # porter / english_stem
    assert await found(session_factory, "run") == [english]
    assert await found(session_factory, "новости") == [russian]
    # Russian stemming: PostgreSQL's 'russian' configuration; SQLite's porter is English only
    other_form = await found(session_factory, "новостями")
    assert other_form == ([russian] if dialect(engine) == "postgresql" else [])


async def test_hostile_input_is_only_words(session_factory: SessionFactory) -> None:
    [near] = await stored(session_factory, article("Near the border", "Or not: a story"))
    for hostile in [
        'NEAR("border" OR *',
        "border*",
        "title:border",
        "(border) AND NOT -",
        "border & | ! <-> :* '\"",
        '"border',
        "border " + "x" * 5000,
    ]:
        result = await found(session_factory, hostile)
        assert result in ([near], []), hostile
    assert await found(session_factory, "near border") == [near]
    assert await found(session_factory, "border " + "y" * 5000) == []  # the long word must match


async def test_order_is_relevance_then_newest_then_id(session_factory: SessionFactory) -> None:
    ids = await stored(
        session_factory,
        article("Markets", "Shares fell as the central bank spoke", hours_ago=1),
        article("Bank holiday traffic", "Roads are busy", hours_ago=5),
        article("Markets again", "Shares fell as the central bank spoke", hours_ago=3),
        article("Markets too", "Shares fell as the central bank spoke", hours_ago=3),
    )
    summary_new, title_old, same_a, same_b = ids
    first = await found(session_factory, "bank")
    assert first[0] == title_old  # the word in the title weighs more than in a summary
    assert first[1:] == [summary_new, same_b, same_a]  # then newest, then the higher id
    assert await found(session_factory, "bank") == first  # and it is the same every time


async def test_index_follows_updates_and_deletes(session_factory: SessionFactory) -> None:
    [story] = await stored(session_factory, article("Bridge closed", "Repairs start today"))
    async with session_factory.begin() as session:
        stored_story = await session.get(Article, story)
        assert stored_story is not None
        stored_story.title = "Bridge reopened"
        stored_story.summary = "Traffic flows again"
    assert await found(session_factory, "closed") == []
    assert await found(session_factory, "repairs") == []
    assert await found(session_factory, "reopened traffic") == [story]
    async with session_factory.begin() as session:
        await session.execute(delete(Article).where(Article.id == story))
    assert await found(session_factory, "bridge") == []


async def test_saved_search_pages_forward_and_back(session_factory: SessionFactory) -> None:
    ids = await stored(
        session_factory,
        *(article(f"Derby report {n}", hours_ago=n) for n in range(1, 5)),
    )
    async with session_factory.begin() as session:
        page = await start_search(session, chat_id=42, words=("derby",), now=NOW)
        assert page is not None
        assert (page.position, page.total, page.article.id) == (1, 4, ids[0])
        assert not page.has_previous and page.has_next
        search_id = page.search_id
        assert await start_search(session, chat_id=42, words=("nothing",), now=NOW) is None
    async with session_factory.begin() as session:  # a later story does not shift the pages
        session.add(article("Derby report fresh", hours_ago=0))
    async with session_factory.begin() as session:
        await session.execute(delete(Article).where(Article.id == ids[2]))
    async with session_factory() as session:
        two = await turn_search(session, chat_id=42, turn=SearchTurn(search_id, 2, Direction.OLDER))
        assert two.page is not None and two.page.article.id == ids[1]
        # the third was deleted: Next passes over it, Previous from the fourth too
        four = await turn_search(session, chat_id=42, turn=two.page.turn(Direction.OLDER))
        assert four.page is not None and (four.page.article.id, four.page.position) == (ids[3], 4)
        assert not four.page.has_next
        back = await turn_search(session, chat_id=42, turn=four.page.turn(Direction.NEWER))
        assert back.page is not None and back.page.article.id == ids[1]
        beyond = await turn_search(
            session, chat_id=42, turn=SearchTurn(search_id, 5, Direction.OLDER)
        )
        assert beyond == type(beyond)(None, TurnProblem.NO_MORE)
        assert texts.turn_problem(TurnProblem.NO_MORE) == texts.no_more_stories()
        other_chat = await turn_search(
            session, chat_id=43, turn=SearchTurn(search_id, 2, Direction.OLDER)
        )
        assert other_chat.problem is TurnProblem.SEARCH_EXPIRED
        assert texts.turn_problem(other_chat.problem) == texts.search_expired()
        unknown = await turn_search(
            session, chat_id=42, turn=SearchTurn(search_id + 99, 2, Direction.OLDER)
        )
        assert unknown.problem is TurnProblem.SEARCH_EXPIRED
        assert texts.turn_problem(unknown.problem) == texts.search_expired()


async def test_old_searches_are_forgotten(session_factory: SessionFactory) -> None:
    await stored(session_factory, article("Regatta results"))
    async with session_factory.begin() as session:
        old = await start_search(session, chat_id=7, words=("regatta",), now=NOW)
        assert old is not None
    later = NOW + SEARCH_KEPT + timedelta(minutes=1)
    async with session_factory.begin() as session:
        assert await start_search(session, chat_id=7, words=("regatta",), now=later) is not None
    async with session_factory() as session:
        assert await session.get(SavedSearch, old.search_id) is None
        gone = await turn_search(
            session, chat_id=7, turn=SearchTurn(old.search_id, 1, Direction.OLDER)
        )
        assert gone.problem is TurnProblem.SEARCH_EXPIRED
        assert texts.turn_problem(gone.problem) == texts.search_expired()


async def test_inline_pages_with_offsets(session_factory: SessionFactory) -> None:
    ids = await stored(
        session_factory, *(article(f"Comet sighting {n}", hours_ago=n) for n in range(1, 6))
    )
    async with session_factory() as session:
        first = await inline_page(session, "comet", 0, per_page=2)
        assert [a.id for a in first.articles] == ids[:2] and first.next_offset == "2"
        last = await inline_page(session, "comet", 4, per_page=2)
        assert [a.id for a in last.articles] == ids[4:] and last.next_offset == ""
        latest = await inline_page(session, "  ", 0, per_page=50)
        newest = list(
            await session.scalars(
                select(Article.id).order_by(Article.published_at.desc(), Article.id.desc())
            )
        )
        assert [a.id for a in latest.articles] == newest


async def test_migration_downgrades_and_upgrades_again(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    [story] = await stored(session_factory, article("Lighthouse restored"))
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to, "0006")
        tables = await connection.run_sync(table_names)
    assert "searches" not in tables and "articles_fts" not in tables
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to)
        tables = await connection.run_sync(table_names)
    assert "searches" in tables
    assert await found(session_factory, "lighthouse") == [story]  # existing stories indexed
