"""Digest rhythms and pauses on real databases: the scheduler's rows, and migration 0008."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from digests.db import SessionFactory, make_engine, upgrade
from digests.delivery.config import DeliveryConfig
from digests.digest.rounds import schedule_due_digests
from digests.models import Chat, ChatKind, Delivery, DeliveryKind
from digests.schedule import Rhythm
from tests.migrations import chat_columns, downgrade_to

NOW = datetime(2026, 3, 22, 8, 0, tzinfo=UTC)  # Sunday 09:00 CET in Berlin
_ids = itertools.count(900_000)


async def add_chat(
    factory: SessionFactory,
    *,
    rhythm: Rhythm,
    digest_time: str,
    next_at: datetime,
    tz: str = "Europe/Berlin",
    weekday: int | None = None,
    second: str | None = None,
    paused_until: datetime | None = None,
    last_at: datetime | None = None,
) -> int:
    async with factory.begin() as session:
        chat = Chat(
            telegram_id=next(_ids),
            kind=ChatKind.PRIVATE,
            timezone=tz,
            digest_time=digest_time,
            rhythm=rhythm,
            digest_weekday=weekday,
            second_digest_time=second,
            paused_until=paused_until,
            next_digest_at=next_at,
            last_digest_at=last_at,
            alerts=True,
            active=True,
            created_at=NOW - timedelta(days=30),
            updated_at=NOW - timedelta(days=30),
        )
        session.add(chat)
        await session.flush()
        return chat.id


async def rows_of(factory: SessionFactory, chat_id: int) -> list[Delivery]:
    async with factory() as session:
        return list(
            await session.scalars(
                select(Delivery)
                .where(Delivery.chat_id == chat_id, Delivery.kind == DeliveryKind.DIGEST)
                .order_by(Delivery.window_end)
            )
        )


async def chat_of(factory: SessionFactory, chat_id: int) -> Chat:
    async with factory() as session:
        chat = await session.get(Chat, chat_id)
        assert chat is not None
        return chat


async def test_one_row_per_due_slot_for_every_rhythm_and_none_while_paused(
    session_factory: SessionFactory,
) -> None:
    config = DeliveryConfig()
    weekly = await add_chat(
        session_factory,
        rhythm=Rhythm.WEEKLY,
        digest_time="09:00",
        weekday=6,
        next_at=NOW,
        last_at=NOW - timedelta(days=7),
    )
    twice = await add_chat(
        session_factory,
        rhythm=Rhythm.TWICE_DAILY,
        digest_time="09:00",
        second="18:00",
        next_at=NOW,
    )
    # Sunday: a weekdays chat due "now" (say its stored slot was Friday's, the bot was down)
    weekdays = await add_chat(
        session_factory,
        rhythm=Rhythm.WEEKDAYS,
        digest_time="09:00",
        next_at=datetime(2026, 3, 20, 8, 0, tzinfo=UTC),
    )
    paused = await add_chat(
        session_factory,
        rhythm=Rhythm.DAILY,
        digest_time="09:00",
        next_at=NOW,
        paused_until=NOW + timedelta(days=3),
    )

    report = await schedule_due_digests(session_factory, now=NOW, config=config)
    assert report.scheduled == 2
    again = await schedule_due_digests(session_factory, now=NOW, config=config)
    assert again.scheduled == 0

    [row] = await rows_of(session_factory, weekly)
    assert (row.window_start, row.window_end) == (NOW - timedelta(days=7), NOW)
    # next Sunday 09:00 is CEST: an hour earlier in UTC
    assert (await chat_of(session_factory, weekly)).next_digest_at == datetime(
        2026, 3, 29, 7, 0, tzinfo=UTC
    )
    # a first twice-daily digest covers the half day since the slot before it
    [row] = await rows_of(session_factory, twice)
    assert row.window_start == datetime(2026, 3, 21, 17, 0, tzinfo=UTC)
    assert (await chat_of(session_factory, twice)).next_digest_at == datetime(
        2026, 3, 22, 17, 0, tzinfo=UTC
    )
    # Friday's digest is two days stale: skipped; Monday is next, never Saturday or Sunday
    assert await rows_of(session_factory, weekdays) == []
    assert (await chat_of(session_factory, weekdays)).next_digest_at == datetime(
        2026, 3, 23, 8, 0, tzinfo=UTC
    )
    # paused: no row, and its next slot is the first after the pause
    assert await rows_of(session_factory, paused) == []
    assert (await chat_of(session_factory, paused)).next_digest_at == datetime(
        2026, 3, 26, 8, 0, tzinfo=UTC
    )

    # the rest of the week, round after round: each slot once, the paused one after its pause
    moment = NOW
    while moment < NOW + timedelta(days=7):
        moment += timedelta(minutes=30)
        await schedule_due_digests(session_factory, now=moment, config=config)
    weekly_rows = await rows_of(session_factory, weekly)
    assert [r.window_end for r in weekly_rows] == [NOW, datetime(2026, 3, 29, 7, 0, tzinfo=UTC)]
    assert weekly_rows[1].window_start == NOW  # the week since the last digest
    twice_ends = [r.window_end for r in await rows_of(session_factory, twice)]
    # 09:00 and 18:00 from Sunday's second to next Sunday's first: 1 + 6 * 2 + 1, plus the first
    assert len(twice_ends) == 15 and len(set(twice_ends)) == 15
    weekday_ends = [r.window_end for r in await rows_of(session_factory, weekdays)]
    assert [e.astimezone(UTC).weekday() for e in weekday_ends] == [0, 1, 2, 3, 4]
    paused_ends = [r.window_end for r in await rows_of(session_factory, paused)]
    assert paused_ends[0] == datetime(2026, 3, 26, 8, 0, tzinfo=UTC)
    assert len(paused_ends) == 4  # 26th to 29th, once each (the 29th at 09:00 CEST)


async def test_migration_0008_keeps_existing_chats_daily_and_goes_down_cleanly(
    db_url: str,
) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0007")
            assert "rhythm" not in await connection.run_sync(chat_columns)
            await connection.execute(
                text(
                    "INSERT INTO chats (telegram_id, kind, timezone, digest_time, alerts, "
                    "active, created_at, updated_at) VALUES (4242, 'private', 'UTC', '08:00', "
                    ":yes, :yes, :at, :at)"
                ),
                {"yes": True, "at": NOW.replace(tzinfo=None)},
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            assert {"rhythm", "second_digest_time", "digest_weekday", "paused_until"} <= (
                await connection.run_sync(chat_columns)
            )
            row = (
                await connection.execute(
                    text(
                        "SELECT rhythm, second_digest_time, digest_weekday, paused_until "
                        "FROM chats WHERE telegram_id = 4242"
                    )
                )
            ).one()
        assert tuple(row) == ("daily", None, None, None)
    finally:
        await engine.dispose()
