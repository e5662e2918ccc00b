"""Digest rhythms and the buttons under a digest, through PTB and the fake Bot API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.context import NewsApp
from bot.transport.sender import TelegramSender
from digests.db import make_engine, make_session_factory
from digests.delivery.config import delivery_config
from digests.delivery.ports import RoundReport
from digests.digest.rounds import run_digest_round
from digests.feeds.ingest import store_entries
from digests.feeds.parse import FeedEntry
from digests.models import Chat
from fakebotapi.emulator import StoredMessage
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, button, e2e_settings, logged_errors, running_bot
from tests.e2e.test_readers import seeded_db, story


class Clock:
    """The bot's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def add_story(
    url: str,
    n: int,
    section: str,
    at: datetime,
    *,
    title: str | None = None,
    summary: str = "s",
    key: str = "later",
) -> None:
    """A story published and ingested at `at` (as feed polling would store it)."""
    entry = FeedEntry(
        guid=f"{key}{n}",
        link=f"https://meridian.example/{key}/{n}",
        title=title if title is not None else f"Later story {n}",
        summary=summary,
        published=at,
        categories=(section,),
    )
    engine = make_engine(url)
    try:
        async with make_session_factory(engine).begin() as session:
            await store_entries(
                session, [entry], now=at, category_map={}, default_section="General"
            )
    finally:
        await engine.dispose()


async def stored_chat(app: NewsApp, telegram_id: int) -> Chat:
    async with app.bot_data.sessions() as session:
        chat = await session.scalar(select(Chat).where(Chat.telegram_id == telegram_id))
    assert chat is not None
    return chat


async def round_at(app: NewsApp, clock: Clock, moment: datetime) -> RoundReport:
    clock.now = moment
    return await run_digest_round(
        app.bot_data.sessions,
        TelegramSender(app.bot),
        now=clock,
        config=delivery_config(app.bot_data.settings),
    )


def digests_in(reader: Reader) -> list[StoredMessage]:
    return [m for m in reader.bot_messages() if "Your news digest" in m.text]


async def test_weekly_digest_across_the_spring_forward_change(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    """A weekly Sunday 02:30 digest in Berlin: 02:30 CET one week, the next Sunday 02:30
    does not exist and it comes at 03:00 CEST, with only the week's new stories."""
    start = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)  # Friday
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "Sports"))
    fake_api.emulator.add_user(7601, "Wim")
    reader = Reader(fake_api, 7601)
    clock = Clock(start)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=start) as app:
            app.bot_data.clock = clock
            await reader.send("/start")
            await reader.send("/subscribe world")
            await reader.send("/timezone europe/berlin")
            [reply] = await reader.send("/digest weekly SUN 02:30")
            assert "weekly on Sunday at 02:30 (Europe/Berlin)" in reply.text
            assert "Sun 22 Mar 2026, 02:30" in reply.text
            [shown] = await reader.send("/settings")
            assert "Digest: weekly on Sunday at 02:30" in shown.text

            await add_story(url, 101, "World", datetime(2026, 3, 21, 9, 0, tzinfo=UTC))
            await add_story(url, 102, "Sports", datetime(2026, 3, 21, 9, 0, tzinfo=UTC))
            first_slot = datetime(2026, 3, 22, 1, 30, tzinfo=UTC)  # 02:30 CET
            assert (await round_at(app, clock, first_slot - timedelta(minutes=1))).sent == 0
            assert (await round_at(app, clock, first_slot + timedelta(seconds=30))).sent == 1
            [first] = digests_in(reader)
            assert "Later story 101" in first.text and "Later story 102" not in first.text
            labels = [b["text"] for b in first.buttons]
            assert labels == ["⏸ Pause for a week", "Sections", "🛑 Stop digests"]

            await add_story(url, 10, "World", datetime(2026, 3, 25, 9, 0, tzinfo=UTC))
            for day in range(23, 29):  # every day of the week: nothing more
                moment = datetime(2026, 3, day, 12, 0, tzinfo=UTC)
                assert (await round_at(app, clock, moment)).sent == 0
            # 2026-03-29 02:00 CET jumps to 03:00 CEST (01:00 UTC): 02:30 is due at the jump
            assert (await round_at(app, clock, datetime(2026, 3, 29, 0, 59, tzinfo=UTC))).sent == 0
            gap = datetime(2026, 3, 29, 1, 0, 30, tzinfo=UTC)
            assert (await round_at(app, clock, gap)).sent == 1
            assert (await round_at(app, clock, gap + timedelta(hours=1))).sent == 0
            _, second = digests_in(reader)
            assert "Later story 10" in second.text
            assert "Later story 101" not in second.text  # the week since the last digest only
            assert "Sun 29 Mar" in second.text
            chat = await stored_chat(app, 7601)
            assert chat.next_digest_at == datetime(2026, 4, 5, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert errors == []


async def test_pause_button_under_a_digest_skips_a_week_then_digests_resume(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    start = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_user(7602, "Pia")
    reader = Reader(fake_api, 7602)
    clock = Clock(start)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=start) as app:
            app.bot_data.clock = clock
            await reader.send("/start")
            await reader.send("/subscribe world")
            await reader.send("/digest 08:00")  # UTC, daily
            await add_story(url, 1, "World", datetime(2026, 6, 1, 7, 0, tzinfo=UTC))
            assert (await round_at(app, clock, datetime(2026, 6, 1, 8, 0, 5, tzinfo=UTC))).sent
            [digest] = digests_in(reader)

            clock.now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
            answer = await reader.press(digest, button(digest, "Pause for a week"))
            assert answer["text"] == "Paused until Mon 08 Jun 2026"
            chat = await stored_chat(app, 7602)
            assert chat.paused_until == datetime(2026, 6, 8, 9, 0, tzinfo=UTC)
            assert chat.next_digest_at == datetime(2026, 6, 9, 8, 0, tzinfo=UTC)
            # a second press: answered, the same pause (a week from this press)
            again = await reader.press(digest, button(digest, "Pause for a week"))
            assert again["text"] == "Paused until Mon 08 Jun 2026"
            assert (await stored_chat(app, 7602)).paused_until == chat.paused_until
            [shown] = await reader.send("/settings")
            assert "Paused until Mon 08 Jun 2026" in shown.text
            assert "▶ Resume digests" in [b["text"] for b in shown.buttons]

            # a story every day of the pause; no digest goes out
            for day in range(2, 9):
                moment = datetime(2026, 6, day, 7, 0, tzinfo=UTC)
                await add_story(url, day, "World", moment)
                due = moment + timedelta(hours=1, seconds=5)
                assert (await round_at(app, clock, due)).sent == 0
            assert len(digests_in(reader)) == 1
            # after the pause: one digest (not one per missed day), holding the pause's stories
            assert (await round_at(app, clock, datetime(2026, 6, 9, 8, 0, 5, tzinfo=UTC))).sent == 1
            _, after = digests_in(reader)
            assert all(f"Later story {day}" in after.text for day in range(4, 9))
            assert (await round_at(app, clock, datetime(2026, 6, 9, 9, 0, tzinfo=UTC))).sent == 0
    assert errors == []


async def test_stop_and_sections_buttons_and_tampered_data(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    start = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_user(7603, "Sol")
    reader = Reader(fake_api, 7603)
    clock = Clock(start)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=start) as app:
            app.bot_data.clock = clock
            await reader.send("/start")
            await reader.send("/subscribe world")
            await reader.send("/alerts on")
            [reply] = await reader.send("/digest twice 08:00")
            assert "twice a day at 08:00 and 20:00" in reply.text
            [bad] = await reader.send("/digest weekly someday 09:00")
            assert "'someday' is not a day of the week" in bad.text
            assert "Nothing changed" in bad.text
            assert (await stored_chat(app, 7603)).rhythm == "twice_daily"
            await add_story(url, 1, "World", datetime(2026, 6, 1, 7, 0, tzinfo=UTC))
            assert (await round_at(app, clock, datetime(2026, 6, 1, 8, 0, 5, tzinfo=UTC))).sent
            [digest] = digests_in(reader)

            # tampered or unknown data: refused, answered, nothing changed
            for data in ("D:pause:-100123", "D:PAUSE", "D:snooze"):
                refused = await reader.press(digest, data, force=True)
                assert refused["text"] == "This button no longer works."
            assert (await stored_chat(app, 7603)).paused_until is None

            # Sections: the section chooser, as a new message
            before = len(reader.bot_messages())
            answer = await reader.press(digest, button(digest, "Sections"))
            assert answer.get("text") is None
            await fake_api.emulator.wait_for(lambda: len(reader.bot_messages()) > before)
            chooser = reader.bot_messages()[-1]
            assert "Tap a section" in chooser.text
            assert "✓ World" in [b["text"] for b in chooser.buttons]

            clock.now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
            stopped = await reader.press(digest, button(digest, "Stop digests"))
            assert stopped["text"].startswith("Digests stopped")
            chat = await stored_chat(app, 7603)
            assert (chat.digest_time, chat.next_digest_at, chat.alerts) == (None, None, True)
            again = await reader.press(digest, button(digest, "Stop digests"))
            assert again["text"] == "Digests are already off."
            for hours in (11, 24, 24 * 8):
                moment = datetime(2026, 6, 1, 9, 0, tzinfo=UTC) + timedelta(hours=hours)
                await add_story(url, hours, "World", moment - timedelta(minutes=5))
                assert (await round_at(app, clock, moment)).sent == 0
            assert len(digests_in(reader)) == 1
    assert errors == []
