"""Keyword follows, alerts and mutes end to end: PTB over loopback HTTP to the fake Bot API."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.context import NewsApp
from bot.transport.sender import TelegramSender
from digests.db import make_engine, make_session_factory
from digests.delivery.config import delivery_config
from digests.digest.alerts import AlertRound, run_alert_round
from digests.models import Chat, Delivery, DeliveryKind, DeliveryStatus, KeywordKind, KeywordRule
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, button, e2e_settings, logged_errors, running_bot
from tests.e2e.test_digest_rhythms import Clock, add_story, digests_in, round_at
from tests.e2e.test_readers import seeded_db, story

START = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


async def add_titled(url: str, n: int, section: str, title: str, at: datetime) -> None:
    """A story published and stored at `at` (as feed polling would store it)."""
    await add_story(url, n, section, at, title=title, summary=f"Summary of story {n}", key="kw")


async def alert_round(app: NewsApp, clock: Clock, moment: datetime) -> AlertRound:
    clock.now = moment
    return await run_alert_round(
        app.bot_data.sessions,
        TelegramSender(app.bot),
        now=clock,
        config=delivery_config(app.bot_data.settings),
        per_hour=app.bot_data.settings.max_keyword_alerts_per_hour,
    )


async def test_follow_with_alert_mute_and_the_digest(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "Business"), story(3, "Sports"))
    fake_api.emulator.add_user(7701, "Kim")
    reader = Reader(fake_api, 7701)
    clock = Clock(START)
    settings = e2e_settings(fake_api, url)
    with logged_errors() as errors:
        async with running_bot(fake_api, settings, now=START) as app:
            app.bot_data.clock = clock
            await reader.send("/start")
            await reader.send("/subscribe world")
            await reader.send("/digest 08:00")
            [refused] = await reader.send("/follow ?!")
            assert "no words to look for" in refused.text
            [followed] = await reader.send("/follow Harbour Storm")
            assert "Following “Harbour Storm”" in followed.text
            answer = await reader.press(followed, button(followed, "🔕 Harbour Storm"))
            assert answer["text"] == "Alerts on for “Harbour Storm”"
            assert "🔔 Harbour Storm" in str(reader.current(followed).buttons)
            assert "alerts on" in reader.current(followed).text
            await reader.send("/follow election")  # digest only
            [muted] = await reader.send("/mute <Football>")  # the word, escaped as text
            assert "Muted “<Football>”" in muted.text

            # a story in a section the reader doesn't follow, matching the alert phrase
            at = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
            await add_titled(url, 1, "Business", "HARBOUR-STORM closes the port", at)
            await add_titled(url, 2, "Sports", "Election day in the league", at)
            await add_titled(url, 3, "World", "Football final moved", at)
            await add_titled(url, 4, "World", "Harbour storm and football chaos", at)
            await add_titled(url, 5, "World", "Quiet day in the world", at)
            done = await alert_round(app, clock, datetime(2026, 6, 1, 7, 1, tzinfo=UTC))
            assert (done.queued.queued, done.report.sent) == (1, 1)
            [alert] = [m for m in reader.bot_messages() if "Your keyword" in m.text]
            assert "🔔 Your keyword “Harbour Storm”" in alert.text
            assert "HARBOUR-STORM closes the port" in alert.text
            again = await alert_round(app, clock, datetime(2026, 6, 1, 7, 2, tzinfo=UTC))
            assert (again.queued.queued, again.report.sent) == (0, 0)

        async with running_bot(fake_api, settings, now=START) as app:  # a restart
            app.bot_data.clock = clock
            again = await alert_round(app, clock, datetime(2026, 6, 1, 7, 3, tzinfo=UTC))
            assert (again.queued.queued, again.report.sent) == (0, 0)
            assert len([m for m in reader.bot_messages() if "Your keyword" in m.text]) == 1

            assert (await round_at(app, clock, datetime(2026, 6, 1, 8, 0, 5, tzinfo=UTC))).sent
            [digest] = digests_in(reader)
            assert "🔎 “election”" in digest.text  # the followed word's own section
            assert "Election day in the league" in digest.text  # from an unfollowed section
            assert "Quiet day in the world" in digest.text
            assert "Football" not in digest.text  # muted, in a followed section too
            assert "HARBOUR-STORM" not in digest.text  # alerted already: not repeated
            assert digest.text.index("election") < digest.text.index("Quiet day")

            [listed] = await reader.send("/keywords")
            assert "Harbour Storm" in listed.text and "<Football>" in listed.text
            remove = button(listed, "Unmute")
            answer = await reader.press(listed, remove)
            assert answer["text"] == "Removed “<Football>”"
            assert "Football" not in reader.current(listed).text
            stale = await reader.press(reader.current(listed), remove, force=True)
            assert stale["text"] == "That keyword was already removed."
            shown = reader.current(listed)
            await reader.press(shown, button(shown, "✖"))  # the first follow's ✖
            [replied] = await reader.send("/unfollow ELECTION")
            assert "Stopped following “election”" in replied.text
            assert "/follow" in replied.text  # nothing left: how to follow again
            async with app.bot_data.sessions() as session:
                assert list(await session.scalars(select(KeywordRule))) == []
                statuses = list(
                    await session.scalars(
                        select(Delivery.status).where(Delivery.kind == DeliveryKind.ALERT)
                    )
                )
            assert statuses == [DeliveryStatus.SENT]
    assert errors == []


async def test_only_group_admins_change_its_keywords(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_group(-4701, "Harbour watchers", admins=[7711], members=[7712])
    admin = Reader(fake_api, 7711, chat_id=-4701)
    member = Reader(fake_api, 7712, chat_id=-4701)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=START) as app:
            [refused] = await member.send("/follow harbour")
            assert "Only the group's administrators" in refused.text
            [listed] = await admin.send("/follow harbour")
            assert "Following “harbour”" in listed.text
            answer = await member.press(listed, button(listed, "✖"))
            assert "administrators" in answer["text"]
            [shown] = await member.send("/keywords")  # reading them is for everyone
            assert "harbour" in shown.text
            async with app.bot_data.sessions() as session:
                assert [r.phrase for r in await session.scalars(select(KeywordRule))] == ["harbour"]
    assert errors == []


async def test_a_story_posted_through_the_api_alerts_its_followers_once(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    from tests.e2e.test_api import AUTH, api, sends
    from tests.e2e.test_api import story as api_story
    from tests.e2e.test_breaking import add_readers

    fake_api.emulator.add_user(7721, "Ana")
    fake_api.emulator.add_user(7722, "Ben")
    await add_readers(db_url, [7721, 7722], None)
    engine = make_engine(db_url)
    try:
        async with make_session_factory(engine).begin() as session:
            chats = {c.telegram_id: c for c in await session.scalars(select(Chat))}
            for telegram_id, alert in ((7721, True), (7722, False)):
                session.add(
                    KeywordRule(
                        chat_id=chats[telegram_id].id,
                        kind=KeywordKind.FOLLOW,
                        phrase="Tidal bore",
                        normalized="tidal bore",
                        alert=alert,
                        created_at=datetime.now(UTC) - timedelta(minutes=1),
                    )
                )
    finally:
        await engine.dispose()
    with logged_errors() as errors:
        async with api(fake_api, db_url) as http:
            body = api_story(1, title="The TIDAL-BORE season opens", sections=["Science"])
            assert (await http.post("/articles", json=body, headers=AUTH)).status_code == 201
            await fake_api.emulator.wait_for(lambda: sends(fake_api)[7721] == 1)
            updated = body | {"summary": "Now with times."}
            assert (await http.post("/articles", json=updated, headers=AUTH)).status_code == 200
            await asyncio.sleep(0.5)
    assert sends(fake_api) == {7721: 1}  # once; the digest-only follower waits for the digest
    [alert] = [
        str(call.params["text"])
        for call in fake_api.emulator.calls
        if call.method == "sendMessage" and int(call.params["chat_id"]) == 7721
    ]
    assert "Your keyword “Tidal bore”" in alert and "TIDAL-BORE season" in alert
    assert errors == []
