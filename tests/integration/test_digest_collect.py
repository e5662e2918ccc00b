"""Which stories a chat's digest holds, read from a real database (SQLite, and PostgreSQL).

Every rule is checked on the production DigestBuilder and on the reference query in
tests/oracle.py, which test_digest_batch then trusts to compare the builder against.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from digests.db import SessionFactory
from digests.digest.builder import DigestBuilder, DigestRequest, DigestSection
from digests.models import (
    Article,
    Chat,
    ChatKind,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Section,
    Subscription,
)
from tests.oracle import collect_digest

START = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
END = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
IN_WINDOW = START + timedelta(hours=12)

_ids = itertools.count(1)


def _unique() -> int:
    return next(_ids)


async def add_section(session: AsyncSession, name: str) -> Section:
    section = Section(slug=f"{name.lower()}-{_unique()}", name=name, created_at=START)
    session.add(section)
    await session.flush()
    return section


async def add_article(
    session: AsyncSession,
    title: str,
    sections: Iterable[Section],
    *,
    published_at: datetime = IN_WINDOW,
    ingested_at: datetime | None = None,
) -> Article:
    n = _unique()
    article = Article(
        key=f"test:{n}",
        link=f"https://news.example/{n}",
        title=title,
        summary="",
        published_at=published_at,
        ingested_at=ingested_at or published_at,
        updated_at=ingested_at or published_at,
        source="https://news.example/feed",
        is_breaking=False,
        sections=list(sections),
    )
    session.add(article)
    await session.flush()
    return article


async def add_chat(session: AsyncSession, follows: Iterable[Section] = ()) -> Chat:
    chat = Chat(
        telegram_id=1_000_000 + _unique(),
        kind=ChatKind.PRIVATE,
        timezone="Europe/Berlin",
        digest_time="08:00",
        created_at=START,
        updated_at=START,
    )
    session.add(chat)
    await session.flush()
    for section in follows:
        session.add(Subscription(chat_id=chat.id, section_id=section.id, created_at=START))
    await session.flush()
    return chat


async def add_breaking_push(
    session: AsyncSession, chat: Chat, article: Article, status: DeliveryStatus
) -> None:
    session.add(
        Delivery(
            chat_id=chat.id,
            kind=DeliveryKind.BREAKING,
            ref=str(article.id),
            article_id=article.id,
            status=status,
            attempts=1,
            created_at=IN_WINDOW,
            updated_at=IN_WINDOW,
        )
    )
    await session.flush()


Collect = Callable[..., Awaitable[list[DigestSection]]]


async def collect_by_oracle(
    session_factory: SessionFactory,
    chat: Chat,
    *,
    start: datetime = START,
    end: datetime = END,
    per_section: int = 10,
) -> list[DigestSection]:
    async with session_factory() as session:
        return await collect_digest(
            session, chat_id=chat.id, window_start=start, window_end=end, per_section=per_section
        )


async def collect_by_builder(
    session_factory: SessionFactory,
    chat: Chat,
    *,
    start: datetime = START,
    end: datetime = END,
    per_section: int = 10,
) -> list[DigestSection]:
    builder = DigestBuilder(per_section=per_section)
    async with session_factory() as session:
        found = await builder.collect(session, [DigestRequest(chat.id, start, end, chat.timezone)])
    return found[chat.id]


@pytest.fixture(params=[collect_by_builder, collect_by_oracle], ids=["builder", "oracle"])
def collect(request: pytest.FixtureRequest) -> Collect:
    """The production builder, then the reference query: both must follow every rule."""
    found: Collect = request.param
    return found


def titles(sections: list[DigestSection]) -> dict[str, list[str]]:
    return {section.name: [story.title for story in section.stories] for section in sections}


async def test_only_followed_sections_in_name_order(
    session_factory: SessionFactory, collect: Collect
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        business = await add_section(session, "Business")
        sport = await add_section(session, "Sport")
        await add_article(session, "Summit opens", [world])
        await add_article(session, "Markets rally", [business])
        await add_article(session, "Cup final", [sport])
        chat = await add_chat(session, follows=[world, sport])
        await add_chat(session, follows=[business])

    sections = await collect(session_factory, chat)

    assert titles(sections) == {"Sport": ["Cup final"], "World": ["Summit opens"]}
    assert [section.name for section in sections] == ["Sport", "World"]
    assert [section.slug for section in sections] == [sport.slug, world.slug]


async def test_chat_following_nothing_gets_nothing(
    session_factory: SessionFactory, collect: Collect
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        await add_article(session, "Summit opens", [world])
        chat = await add_chat(session)

    assert await collect(session_factory, chat) == []


async def test_story_in_several_followed_sections_is_listed_once_under_the_first(
    session_factory: SessionFactory, collect: Collect
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        politics = await add_section(session, "Politics")
        business = await add_section(session, "Business")
        await add_article(session, "Trade deal", [world, politics, business])
        await add_article(session, "Election", [world, politics])
        chat = await add_chat(session, follows=[world, politics])

    sections = await collect(session_factory, chat)

    # Business comes first by name but the chat does not follow it.
    assert titles(sections) == {"Politics": ["Election", "Trade deal"]}


async def test_window_is_open_at_start_and_closed_at_end(
    session_factory: SessionFactory, collect: Collect
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        await add_article(session, "At start", [world], published_at=START)
        await add_article(
            session, "Just after start", [world], published_at=START + timedelta(seconds=1)
        )
        await add_article(session, "At end", [world], published_at=END)
        await add_article(session, "After end", [world], published_at=END + timedelta(seconds=1))
        chat = await add_chat(session, follows=[world])

    sections = await collect(session_factory, chat)

    assert titles(sections) == {"World": ["At end", "Just after start"]}


async def test_late_arrival_counts_but_old_backfill_does_not(
    session_factory: SessionFactory, collect: Collect
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        await add_article(
            session,
            "Late",
            [world],
            published_at=START - timedelta(hours=20),
            ingested_at=IN_WINDOW,
        )
        await add_article(
            session,
            "Backfill",
            [world],
            published_at=START - timedelta(hours=30),
            ingested_at=IN_WINDOW,
        )
        await add_article(
            session,
            "Just a day old",
            [world],
            published_at=START - timedelta(hours=24),
            ingested_at=IN_WINDOW,
        )
        # Ingested before the window: it was in the previous digest.
        await add_article(
            session,
            "Already sent",
            [world],
            published_at=START - timedelta(hours=2),
            ingested_at=START - timedelta(hours=1),
        )
        chat = await add_chat(session, follows=[world])

    sections = await collect(session_factory, chat)

    assert titles(sections) == {"World": ["Late"]}


async def test_newest_first_capped_with_count_of_the_rest(
    session_factory: SessionFactory, collect: Collect
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        sport = await add_section(session, "Sport")
        for hour in range(5):
            await add_article(
                session, f"World {hour}", [world], published_at=START + timedelta(hours=hour + 1)
            )
        same_time = START + timedelta(hours=10)
        first = await add_article(session, "Sport a", [sport], published_at=same_time)
        second = await add_article(session, "Sport b", [sport], published_at=same_time)
        await add_article(session, "Sport c", [sport], published_at=same_time - timedelta(hours=1))
        chat = await add_chat(session, follows=[world, sport])

    sections = await collect(session_factory, chat, per_section=3)

    assert second.id > first.id
    assert titles(sections) == {
        "Sport": ["Sport b", "Sport a", "Sport c"],
        "World": ["World 4", "World 3", "World 2"],
    }
    assert [section.more for section in sections] == [0, 2]
    stories = sections[1].stories
    assert stories[0].published_at == START + timedelta(hours=5)
    assert stories[0].published_at.tzinfo is not None
    assert stories[0].link is not None
    assert stories[0].link.startswith("https://news.example/")


async def test_dedupe_happens_before_the_cap(
    session_factory: SessionFactory, collect: Collect
) -> None:
    async with session_factory.begin() as session:
        business = await add_section(session, "Business")
        world = await add_section(session, "World")
        for n in range(3):
            await add_article(
                session, f"Both {n}", [business, world], published_at=START + timedelta(hours=n + 1)
            )
        await add_article(session, "World only", [world])
        chat = await add_chat(session, follows=[business, world])

    sections = await collect(session_factory, chat, per_section=2)

    assert titles(sections) == {"Business": ["Both 2", "Both 1"], "World": ["World only"]}
    assert [section.more for section in sections] == [1, 0]


@pytest.mark.parametrize(
    ("status", "excluded"),
    [
        (DeliveryStatus.SENT, True),
        (DeliveryStatus.UNCERTAIN, True),
        (DeliveryStatus.SENDING, True),
        (DeliveryStatus.PENDING, False),
        (DeliveryStatus.FAILED, False),
        (DeliveryStatus.BLOCKED, False),
    ],
)
async def test_story_already_pushed_as_breaking_news_is_left_out(
    session_factory: SessionFactory, collect: Collect, status: DeliveryStatus, excluded: bool
) -> None:
    async with session_factory.begin() as session:
        world = await add_section(session, "World")
        pushed = await add_article(session, "Breaking", [world])
        await add_article(session, "Ordinary", [world], published_at=IN_WINDOW - timedelta(hours=1))
        chat = await add_chat(session, follows=[world])
        other = await add_chat(session, follows=[world])
        await add_breaking_push(session, chat, pushed, status)

    expected = ["Ordinary"] if excluded else ["Breaking", "Ordinary"]
    assert titles(await collect(session_factory, chat)) == {"World": expected}
    # Pushed to one chat only: the other still gets it in its digest.
    assert titles(await collect(session_factory, other)) == {"World": ["Breaking", "Ordinary"]}


async def test_reference_query_is_one_statement_whatever_the_number_of_sections(
    session_factory: SessionFactory, engine: AsyncEngine
) -> None:
    async with session_factory.begin() as session:
        sections = [await add_section(session, f"Section {n}") for n in range(8)]
        for n, section in enumerate(sections):
            await add_article(session, f"Story {n}", [section])
        chat = await add_chat(session, follows=sections)

    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        result = await collect_by_oracle(session_factory, chat)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)

    assert len(result) == 8
    assert len([s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]) <= 2


async def test_per_section_must_be_positive(
    session_factory: SessionFactory, collect: Collect
) -> None:
    async with session_factory.begin() as session:
        chat = await add_chat(session)
    with pytest.raises(ValueError, match="per_section"):
        await collect(session_factory, chat, per_section=0)
