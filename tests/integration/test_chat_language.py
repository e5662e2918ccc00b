"""A chat's language on real databases: migration 0009, first contact, /language, and one
digest round rendering each chat in its own language."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from digests.db import SessionFactory, make_engine, upgrade
from digests.digest.builder import DigestRequest
from digests.digest.rounds import DigestWriter
from digests.models import Article, Chat, ChatKind, Section, Subscription
from digests.readers.chats import follow_telegram_language, register_chat, set_language
from digests.ui.shapes import Defaults
from tests.migrations import chat_columns, downgrade_to

NOW = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # Monday
_ids = itertools.count(700_000)


async def test_migration_0009_gives_existing_chats_english_and_goes_down_cleanly(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0008")
            assert "language" not in await connection.run_sync(chat_columns)
            await connection.execute(
                text(
                    "INSERT INTO chats (telegram_id, kind, timezone, digest_time, alerts, "
                    "active, created_at, updated_at) VALUES (4343, 'private', 'UTC', '08:00', "
                    ":yes, :yes, :at, :at)"
                ),
                {"yes": True, "at": NOW.replace(tzinfo=None)},
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            row = (
                await connection.execute(
                    text("SELECT language, language_chosen FROM chats WHERE telegram_id = 4343")
                )
            ).one()
        assert tuple(row) == ("en", False)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0008")
            assert not {"language", "language_chosen"} & await connection.run_sync(chat_columns)
        await upgrade(engine)
    finally:
        await engine.dispose()


async def test_first_contact_sets_the_language_and_telegram_leads_until_chosen(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        chat, created = await register_chat(
            session,
            telegram_id=next(_ids),
            kind=ChatKind.PRIVATE,
            title="Ivan",
            now=NOW,
            defaults=Defaults(),
            language="ru",
        )
        assert created and chat.language == "ru" and not chat.language_chosen
        assert not follow_telegram_language(chat, "de", now=NOW)  # not ours: stays Russian
        assert follow_telegram_language(chat, "en-GB", now=NOW)
        assert chat.language == "en"
        set_language(chat, "ru", now=NOW)
        assert not follow_telegram_language(chat, "en", now=NOW)  # the reader's choice wins
        chat_id = chat.id
    async with session_factory() as session:
        stored = await session.get(Chat, chat_id)
        assert stored is not None
        assert (stored.language, stored.language_chosen) == ("ru", True)
        with pytest.raises(ValueError, match="unsupported"):
            set_language(stored, "de", now=NOW)


async def test_a_group_keeps_its_language_whoever_writes(session_factory: SessionFactory) -> None:
    async with session_factory.begin() as session:
        chat, _ = await register_chat(
            session,
            telegram_id=-next(_ids),
            kind=ChatKind.SUPERGROUP,
            title="Newsroom",
            now=NOW,
            defaults=Defaults(),
            language="ru",
        )
        assert not follow_telegram_language(chat, "en", now=NOW)
        assert chat.language == "ru"


async def test_one_round_renders_each_chat_in_its_language(
    session_factory: SessionFactory,
) -> None:
    async with session_factory.begin() as session:
        section = Section(slug=f"world{next(_ids)}", name="World", created_at=NOW)
        story = Article(
            key=f"lang-{next(_ids)}",
            link="https://news.example/quake",
            title="Quake hits coast",
            summary="",
            published_at=NOW - timedelta(hours=1),
            ingested_at=NOW - timedelta(minutes=30),
            updated_at=NOW - timedelta(minutes=30),
            sections=[section],
        )
        chats = [
            Chat(
                telegram_id=next(_ids),
                kind=ChatKind.PRIVATE,
                timezone="Europe/Moscow",
                digest_time="08:00",
                language=language,
                created_at=NOW,
                updated_at=NOW,
            )
            for language in ("en", "ru", "ru")
        ]
        session.add_all([section, story, *chats])
        await session.flush()
        for chat in chats:
            session.add(Subscription(chat_id=chat.id, section_id=section.id, created_at=NOW))
        await session.flush()
        requests = [
            DigestRequest(chat.id, NOW - timedelta(days=1), NOW, chat.timezone, chat.language)
            for chat in chats
        ]
        built = await DigestWriter(per_section=5).build(session, requests)
    english, russian, russian_too = (built[chat.id] for chat in chats)
    assert english[0].startswith("📰 <b>Your news digest</b> · Mon 2 Mar")
    assert russian[0].startswith("📰 <b>Ваш дайджест новостей</b> · понедельник, 2 марта")
    assert "Quake hits coast" in english[0] and "Quake hits coast" in russian[0]
    assert russian_too is russian  # same sections, window, zone and language: rendered once
