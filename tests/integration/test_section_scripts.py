"""Sections named in every script: distinct, stable slugs; existing databases re-slugged by
migration 0014 without losing a follow (issue 24, item 1 of the feeds)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Boolean, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from digests.db import SessionFactory
from digests.feeds.ingest import ingest_sources
from digests.models import Article, Chat, ChatKind, Section, Subscription, UTCDateTime
from digests.stories.sections import get_or_create_sections, resolve_section_args
from tests.migrations import downgrade_to, upgrade_to

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
_ids = itertools.count(7_000_000)

RUSSIAN_BLOG = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Блог</title><link>https://blog.example/</link>
<description>d</description>
{items}
</channel></rss>"""
CATEGORIES = ["Новости", "Игры", "Экономика", "Спорт", "Кино", "体育", "新闻", "Ελλάδα", "Igry"]


def _feed(tmp_path: Path) -> str:
    items = "".join(
        f"<item><guid>g{n}</guid><title>Пост {n}</title><link>https://blog.example/{n}</link>"
        f"<description>Текст</description><category>{name}</category>"
        "<pubDate>Mon, 07 Dec 2026 09:00:00 +0000</pubDate></item>"
        for n, name in enumerate(CATEGORIES)
    )
    path = tmp_path / "blog.xml"
    path.write_text(RUSSIAN_BLOG.format(items=items), encoding="utf-8")
    return str(path)


async def test_every_script_gets_its_own_section(
    session_factory: SessionFactory, tmp_path: Path
) -> None:
    await ingest_sources(
        [_feed(tmp_path)],
        session_factory=session_factory,
        now=lambda: NOW,
        category_map={},
        default_section="General",
    )
    async with session_factory() as session:
        rows = await session.execute(
            select(Article.key, Section.name, Section.slug).join(Article.sections)
        )
        by_story = {key: (name, slug) for key, name, slug in rows}
    assert {by_story[f"g{n}"][0] for n in range(len(CATEGORIES))} == set(CATEGORIES)
    slugs = {slug for _, slug in by_story.values()}
    assert len(slugs) == len(CATEGORIES)
    assert by_story["g0"][1] == "novosti"
    assert by_story["g1"][1] == "igry"
    assert by_story["g8"][1] == "igry-2"  # Latin "Igry" transliterates like "Игры"

    async with session_factory() as session:
        resolved = await resolve_section_args(session, ["Игры"])
        assert [section.name for section in resolved.sections] == ["Игры"]
        resolved = await resolve_section_args(session, ["igry-2"])
        assert [section.name for section in resolved.sections] == ["Igry"]
        resolved = await resolve_section_args(session, ["экономика,", "спорт"])
        assert [section.name for section in resolved.sections] == ["Экономика", "Спорт"]


async def test_a_second_ingest_and_other_spellings_find_the_same_sections(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        first = await get_or_create_sections(session, ["Игры", "World"], now=NOW)
    async with session_factory.begin() as session:
        again = await get_or_create_sections(session, ["ИГРЫ", "world", "Игры"], now=NOW)
    assert again["ИГРЫ"].id == first["Игры"].id
    assert again["world"].id == first["World"].id
    assert again["Игры"].id == first["Игры"].id


async def test_several_long_slugs_follow_every_section(session_factory: SessionFactory) -> None:
    names = [
        "International Relations and Global Diplomacy Today",
        "International Relations and Global Trade Reports",
    ]
    async with session_factory.begin() as session:
        made = await get_or_create_sections(session, names, now=NOW)
    slugs = [made[name].slug for name in names]
    assert len(set(slugs)) == 2
    async with session_factory() as session:
        resolved = await resolve_section_args(session, [slugs[0], slugs[1]])
    assert {section.name for section in resolved.sections} == set(names)


async def test_migration_0014_reslugs_collapsed_sections_and_keeps_follows(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to, "0013")
    async with session_factory.begin() as session:
        # what the old code stored: every Cyrillic name had the slug "section"
        await session.execute(
            text(
                "INSERT INTO sections (id, slug, name, created_at) VALUES "
                "(501, 'section', 'Новости', :now), (502, 'world', 'World', :now), "
                "(503, 'sci-tech', 'Sci-Tech', :now)"
            ),
            {"now": NOW},
        )
        chat = Chat(
            telegram_id=next(_ids),
            kind=ChatKind.PRIVATE,
            timezone="UTC",
            digest_time="08:00",
            next_digest_at=NOW,
            last_digest_at=NOW,
            alerts=True,
            active=True,
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(chat)
        await session.flush()
        for section_id in (501, 502):
            session.add(Subscription(chat_id=chat.id, section_id=section_id, created_at=NOW))
        chat_id = chat.id
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to)
    async with session_factory() as session:
        slugs = {sid: slug for sid, slug in await session.execute(select(Section.id, Section.slug))}
        follows = set(
            await session.scalars(
                select(Subscription.section_id).where(Subscription.chat_id == chat_id)
            )
        )
    assert slugs[501] == "novosti"
    assert slugs[502] == "world"
    assert slugs[503] == "sci-tech"
    assert follows == {501, 502}


async def test_migration_0014_marks_placeholder_dates_undated(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to, "0013")
    async with session_factory.begin() as session:
        # the columns of 0013's articles (the models may have more by now)
        for key, year in (("zero", 1), ("epoch", 1970), ("real", 2018)):
            await session.execute(
                text(
                    "INSERT INTO articles (key, link, title, summary, published_at, "
                    "ingested_at, updated_at, source, is_breaking, date_known) VALUES "
                    "(:key, NULL, :key, '', :published, :now, :now, 'f', :no, :yes)"
                ).bindparams(
                    bindparam("published", type_=UTCDateTime()),
                    bindparam("now", type_=UTCDateTime()),
                    bindparam("no", type_=Boolean()),
                    bindparam("yes", type_=Boolean()),
                ),
                {
                    "key": key,
                    "published": datetime(year, 1, 1, tzinfo=UTC),
                    "now": NOW,
                    "no": False,
                    "yes": True,
                },
            )
    async with engine.begin() as connection:
        await connection.run_sync(upgrade_to)
    async with session_factory() as session:
        known = dict(
            (key, date_known)
            for key, date_known in await session.execute(select(Article.key, Article.date_known))
        )
    assert known == {"zero": False, "epoch": False, "real": True}
