"""Scheduled digests through the whole stack: JobQueue, delivery engine, PTB, fake Bot API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.transport.sender import TelegramSender
from digests.db import make_engine, make_session_factory
from digests.delivery.config import delivery_config
from digests.digest.rounds import run_digest_round
from digests.models import Article, Chat, ChatKind, FeedSource, Section, Subscription
from fakebotapi.emulator import ApiError, too_many_requests
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import e2e_settings, running_bot
from tests.e2e.test_readers import seeded_db, story

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def add_due_chats(url: str, ids: list[int], sections: list[str]) -> None:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine).begin() as session:
            found = list(await session.scalars(select(Section).where(Section.name.in_(sections))))
            for telegram_id in ids:
                chat = Chat(
                    telegram_id=telegram_id,
                    kind=ChatKind.PRIVATE if telegram_id > 0 else ChatKind.GROUP,
                    timezone="UTC",
                    digest_time="12:00",
                    next_digest_at=NOW,
                    alerts=True,
                    active=True,
                    created_at=NOW,
                    updated_at=NOW,
                )
                session.add(chat)
                await session.flush()
                for section in found:
                    session.add(
                        Subscription(chat_id=chat.id, section_id=section.id, created_at=NOW)
                    )
    finally:
        await engine.dispose()


async def chat_state(url: str, telegram_id: int) -> Chat | None:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            return await session.scalar(select(Chat).where(Chat.telegram_id == telegram_id))
    finally:
        await engine.dispose()


def digests_of(server: FakeBotApiServer, chat_id: int) -> list[str]:
    return [m.text for m in server.emulator.messages(chat_id) if "Your news digest" in m.text]


async def test_scheduled_digest_arrives_once_through_the_job_queue(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "Sports"), story(3, "Culture"))
    readers = [7001, 7002]
    await add_due_chats(url, readers, ["World", "Sports"])
    for uid in readers:
        fake_api.emulator.add_user(uid, started=True)
    settings = e2e_settings(fake_api, url)
    async with running_bot(fake_api, settings, now=NOW, with_jobs=True) as app:
        await fake_api.emulator.wait_for(
            lambda: all(digests_of(fake_api, uid) for uid in readers), timeout=10
        )
        # another round at the same moment (a second tick, or a restart) sends nothing more
        services = app.bot_data
        report = await run_digest_round(
            services.sessions,
            TelegramSender(app.bot),
            now=lambda: NOW,
            config=delivery_config(settings),
        )
        assert report.sent == 0
    for uid in readers:
        [digest] = digests_of(fake_api, uid)
        assert "World" in digest and "Sports" in digest
        assert "Culture" not in digest  # section filtering
    chat = await chat_state(url, readers[0])
    assert chat is not None
    assert chat.next_digest_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_flood_limits_and_server_errors_are_retried_once_each(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    readers = [7101, 7102, 7103]
    await add_due_chats(url, readers, ["World"])
    for uid in readers:
        fake_api.emulator.add_user(uid, started=True)
    fake_api.emulator.fail_next("sendMessage", 7101, error=too_many_requests(1))
    fake_api.emulator.fail_next(
        "sendMessage", 7102, error=ApiError(500, "Internal Server Error"), times=2
    )
    fake_api.emulator.fail_next("sendMessage", 7103, error=ApiError(502, "Bad Gateway"))
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW) as app:
        report = await run_digest_round(
            app.bot_data.sessions,
            TelegramSender(app.bot, backoff=0.05),
            now=lambda: NOW,
            config=delivery_config(app.bot_data.settings),
        )
    assert report.sent == 3
    for uid in readers:
        assert len(digests_of(fake_api, uid)) == 1
    assert fake_api.emulator.too_many_requests == 1


async def test_blocked_reader_is_deactivated_and_the_rest_still_served(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    readers = [7201, 7202, 7203]
    await add_due_chats(url, readers, ["World"])
    for uid in readers:
        fake_api.emulator.add_user(uid, started=True)
    fake_api.emulator.block(7202)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW) as app:
        report = await run_digest_round(
            app.bot_data.sessions,
            TelegramSender(app.bot),
            now=lambda: NOW,
            config=delivery_config(app.bot_data.settings),
        )
    assert (report.sent, report.blocked) == (2, 1)
    blocked = await chat_state(url, 7202)
    assert blocked is not None
    assert not blocked.active
    assert digests_of(fake_api, 7201)
    assert digests_of(fake_api, 7203)


async def test_long_digest_is_split_into_messages_telegram_accepts(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    long_title = "Very long headline about the council budget " * 6
    stories = [story(n, name, f"{long_title} #{n}") for n in range(60) for name in ["World"]]
    stories += [story(100 + n, s, f"{long_title} {s} #{n}") for n in range(40) for s in ["Sports"]]
    url = await seeded_db(tmp_path, *stories)
    await add_due_chats(url, [7301], ["World", "Sports"])
    fake_api.emulator.add_user(7301, started=True)
    settings = e2e_settings(fake_api, url, digest_stories_per_section=50)
    async with running_bot(fake_api, settings, now=NOW) as app:
        report = await run_digest_round(
            app.bot_data.sessions,
            TelegramSender(app.bot),
            now=lambda: NOW,
            config=delivery_config(settings),
        )
    assert report.sent == 1
    parts = fake_api.emulator.messages(7301)
    assert len(parts) >= 3
    text = "\n".join(m.text for m in parts)
    shown = [line for line in text.splitlines() if line.startswith("• ")]
    assert len(shown) == 90  # 50 World + 40 Sports, none lost, none repeated
    assert len(set(shown)) == 90
    assert "+10 more: /latest world" in text
    refused = [c for c in fake_api.emulator.calls if c.error is not None]
    assert refused == []


@pytest.fixture
async def feed_site() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    pages: dict[str, bytes] = {}

    async def serve(request: web.Request) -> web.Response:
        body = pages.get(request.path)
        if body is None:
            return web.Response(status=404)
        return web.Response(body=body, content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", pages
    finally:
        await runner.cleanup()


async def test_feed_polling_job_ingests_feed_urls(
    fake_api: FakeBotApiServer, tmp_path: Path, feed_site: tuple[str, dict[str, bytes]]
) -> None:
    base, pages = feed_site
    pages["/rss"] = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><guid>p1</guid><title>Polled story</title><link>https://x.example/p1</link>"
        b"<category>World</category></item></channel></rss>"
    )
    url = await seeded_db(tmp_path, story(1, "World"))
    settings = e2e_settings(
        fake_api, url, feed_urls=(f"{base}/rss", f"{base}/missing"), feed_poll_minutes=1
    )
    async with running_bot(fake_api, settings, now=NOW, with_jobs=True):
        engine = make_engine(url)
        try:
            factory = make_session_factory(engine)

            async def polled() -> bool:
                async with factory() as session:
                    found = await session.scalar(
                        select(func.count()).select_from(Article).where(Article.key == "p1")
                    )
                return bool(found)

            async with asyncio.timeout(10):
                while not await polled():
                    await asyncio.sleep(0.1)

            # the missing feed is remembered as failing, its next try put off by one poll
            # interval; the working one is not
            async def sources() -> dict[str, FeedSource]:
                async with factory() as session:
                    return {row.url: row for row in await session.scalars(select(FeedSource))}

            async with asyncio.timeout(10):
                while f"{base}/missing" not in (found := await sources()):
                    await asyncio.sleep(0.1)
            missing = found[f"{base}/missing"]
            assert missing.failures == 1 and "404" in (missing.last_error or "")
            assert missing.next_attempt_at == NOW + timedelta(minutes=1)
            assert found[f"{base}/rss"].failures == 0
        finally:
            await engine.dispose()
