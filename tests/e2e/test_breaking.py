"""Editors' breaking pushes end to end, through the fake Bot API over loopback HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.transport.http import CONNECTIONS
from bot.transport.sender import TelegramSender
from digests.db import make_engine, make_session_factory
from digests.delivery.config import delivery_config
from digests.digest.rounds import run_digest_round
from digests.models import (
    BreakingPush,
    Chat,
    ChatKind,
    Delivery,
    DeliveryStatus,
    PushStatus,
    Section,
    Subscription,
)
from fakebotapi.emulator import BotApiEmulator, RateLimits, too_many_requests
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, button, e2e_settings, running_bot, running_service
from tests.e2e.test_readers import seeded_db, story

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
EDITOR = 900


async def add_readers(
    url: str, ids: list[int], section: str | None, *, alerts: bool = True
) -> None:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine).begin() as session:
            found = (
                await session.scalar(select(Section).where(Section.slug == section.lower()))
                if section
                else None
            )
            for telegram_id in ids:
                chat = Chat(
                    telegram_id=telegram_id,
                    kind=ChatKind.PRIVATE,
                    timezone="UTC",
                    digest_time="08:00",
                    next_digest_at=NOW + timedelta(days=1),
                    alerts=alerts,
                    active=True,
                    created_at=NOW,
                    updated_at=NOW,
                )
                session.add(chat)
                await session.flush()
                if found is not None:
                    session.add(Subscription(chat_id=chat.id, section_id=found.id, created_at=NOW))
    finally:
        await engine.dispose()


async def wait_for_push_done(url: str, limit: float = 60) -> None:
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        async with asyncio.timeout(limit):
            while True:
                async with factory() as session:
                    statuses = set(await session.scalars(select(BreakingPush.status)))
                if statuses and statuses <= {PushStatus.DONE, PushStatus.CANCELLED}:
                    return
                await asyncio.sleep(0.05)
    finally:
        await engine.dispose()


async def count_rows(url: str, status: DeliveryStatus) -> int:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            found = await session.scalar(select(func.count()).where(Delivery.status == status))
        return int(found or 0)
    finally:
        await engine.dispose()


async def push_status(url: str) -> PushStatus:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            [status] = await session.scalars(select(BreakingPush.status))
        return status
    finally:
        await engine.dispose()


async def wait_for_rows(url: str, status: DeliveryStatus, count: int) -> None:
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        async with asyncio.timeout(10):
            while True:
                async with factory() as session:
                    found = await session.scalar(
                        select(func.count()).where(Delivery.status == status)
                    )
                if (found or 0) >= count:
                    return
                await asyncio.sleep(0.02)
    finally:
        await engine.dispose()


async def test_non_admin_is_refused(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    fake_api.emulator.add_user(77, "Mallory")
    reader = Reader(fake_api, 77)
    async with running_bot(fake_api, e2e_settings(fake_api, url, admin_ids=(EDITOR,)), now=NOW):
        [reply] = await reader.send("/breaking world Fake news")
        assert "not allowed" in reply.text
        [reply] = await reader.send("/stats")
        assert "not allowed" in reply.text
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            assert list(await session.scalars(select(BreakingPush))) == []
    finally:
        await engine.dispose()


async def test_push_reaches_the_section_once_despite_double_send(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "Sports"))
    world, sports, muted = [1001, 1002, 1003], [2001, 2002], [3001]
    await add_readers(url, world, "World")
    await add_readers(url, sports, "Sports")
    await add_readers(url, muted, "World", alerts=False)
    for uid in world + sports + muted + [EDITOR]:
        fake_api.emulator.add_user(uid, f"U{uid}", started=True)
    fake_api.emulator.block(1003)
    editor = Reader(fake_api, EDITOR)
    async with running_bot(fake_api, e2e_settings(fake_api, url, admin_ids=(EDITOR,)), now=NOW):
        [usage] = await editor.send("/breaking")
        assert "Usage" in usage.text
        [preview] = await editor.send("/breaking world Quake hits the <coast> & ports")
        assert "reach 3 chats" in preview.text
        assert "Quake hits the <coast> & ports" in preview.text
        send = button(preview, "Send")
        first, second = await asyncio.gather(
            editor.press(preview, send), editor.press(preview, send)
        )
        assert sorted([first["text"], second["text"]]) == ["Already sent or cancelled.", "Sending…"]
        await wait_for_push_done(url)
        # the final report is edited in just after the push is marked done
        await editor.emulator.wait_for(lambda: "Push finished" in editor.current(preview).text)
        final = editor.current(preview)
        assert "Push finished" in final.text
        assert "Sent 2 · blocked 1 · failed 0 (of 3)" in final.text
        [page] = await editor.send("/latest world")
        assert "Quake hits the <coast> & ports" in page.text
    for uid in world[:2]:
        pushed = [m for m in fake_api.emulator.messages(uid) if "Breaking" in m.text]
        assert len(pushed) == 1
    for uid in sports + muted:
        assert fake_api.emulator.messages(uid) == []


async def test_cancel_sends_nothing(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    await add_readers(url, [1101], None)
    fake_api.emulator.add_user(1101, started=True)
    fake_api.emulator.add_user(EDITOR, started=True)
    editor = Reader(fake_api, EDITOR)
    async with running_bot(fake_api, e2e_settings(fake_api, url, admin_ids=(EDITOR,)), now=NOW):
        [preview] = await editor.send("/breaking Storm warning for the coast")
        assert "reach 1 chat " in preview.text
        await editor.press(preview, button(preview, "Cancel"))
        assert "Cancelled" in editor.current(preview).text
        answer = await editor.press(preview, "B:send:1", force=True)
        assert answer["text"] == "Already sent or cancelled."
    assert fake_api.emulator.messages(1101) == []


async def test_restart_mid_push_resumes_without_duplicates(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    readers = list(range(5001, 5121))
    await add_readers(url, readers, None)
    for uid in [*readers, EDITOR]:
        fake_api.emulator.add_user(uid, started=True)
    editor = Reader(fake_api, EDITOR)
    settings = e2e_settings(fake_api, url, admin_ids=(EDITOR,))
    emulator = fake_api.emulator
    real_call = emulator.call
    config = delivery_config(settings)
    stuck = asyncio.Event()
    hung: list[object] = []

    async def hanging_call(method: str, params: Any = None) -> Any:
        # after 5 readers got it, every send hangs: the process is about to die mid-push
        if method == "sendMessage" and len(emulator.sent_log) >= 5 + 1:
            stuck.set()
            hung.append(params)
            await asyncio.Event().wait()
        return await real_call(method, params)

    emulator.call = hanging_call  # type: ignore[method-assign]
    async with running_bot(fake_api, settings, now=NOW):
        [preview] = await editor.send("/breaking Bridge closed after crash")
        await editor.press(preview, button(preview, "Send"))
        await asyncio.wait_for(stuck.wait(), 10)
        # Every HTTP connection now holds a send that hangs, and no worker is inside a
        # transaction, as a process killed mid-send leaves it. Only those requests left:
        # they alone are SENDING; the rest of the claimed batches still wait their turn.
        in_flight = CONNECTIONS
        async with asyncio.timeout(10):
            while len(hung) < in_flight:
                await asyncio.sleep(0.01)
        await wait_for_rows(url, DeliveryStatus.SENDING, in_flight)
        await wait_for_rows(url, DeliveryStatus.SENT, 5)
        assert len(hung) == in_flight
        pushes = [t for t in asyncio.all_tasks() if t.get_name().startswith("push-")]
        for task in pushes:  # kill -9: the sends in flight never complete
            task.cancel()
        await asyncio.gather(*pushes, return_exceptions=True)
    emulator.call = real_call  # type: ignore[method-assign]
    left_sending = await count_rows(url, DeliveryStatus.SENDING)
    async with running_bot(fake_api, settings, now=NOW) as app:
        async with asyncio.timeout(30):
            await app.bot_data.pushes.run(1)  # what the resume job does at start
        # the rows the dead process was sending may have arrived: not finished yet
        assert await push_status(url) == PushStatus.SENDING
        assert "finished" not in editor.current(preview).text
        # once their lease is over, the digest round reports them uncertain; the push ends
        later = NOW + config.lease + timedelta(minutes=1)
        app.bot_data.clock = lambda: later
        await run_digest_round(
            app.bot_data.sessions, TelegramSender(app.bot), now=lambda: later, config=config
        )
        await app.bot_data.pushes.run(1)
        await wait_for_push_done(url)
        report = editor.current(preview).text
        assert f"Push interrupted, {left_sending} uncertain" in report, report
        assert "finished" not in report
    delivered = {uid: len(fake_api.emulator.messages(uid)) for uid in readers}
    assert max(delivered.values()) == 1  # never twice
    assert left_sending == in_flight  # the requests on the wire when it died
    assert len(readers) > in_flight
    assert sum(delivered.values()) >= len(readers) - in_flight  # only those may be missing


async def test_push_to_1000_chats_with_limits_on(tmp_path: Path) -> None:
    """Telegram's limits on (30/s overall, 1/s per chat): no 429, nobody missed or doubled."""
    # Telegram tolerates a short burst in a private chat (the editor's progress edits)
    limits = RateLimits(overall_per_sec=30, private_per_sec=1, group_per_min=20, private_burst=3)
    readers = list(range(10_001, 11_001))
    async with FakeBotApiServer(BotApiEmulator(limits=limits)) as server:
        url = await seeded_db(tmp_path, story(1, "World"))
        await add_readers(url, readers, None)
        for uid in [*readers, EDITOR]:
            server.emulator.add_user(uid, started=True)
        editor = Reader(server, EDITOR)
        settings = e2e_settings(
            server,
            url,
            admin_ids=(EDITOR,),
            send_rate_limit=29,
            private_chat_rate_limit=1,
            group_rate_limit_per_min=20,
        )
        async with running_bot(server, settings):
            [preview] = await editor.send("/breaking Election result declared")
            await editor.press(preview, button(preview, "Send"))
            await wait_for_push_done(url, limit=120)
            # the final report is edited in just after the push is marked done
            await editor.emulator.wait_for(lambda: "Push finished" in editor.current(preview).text)
            final = editor.current(preview)
        counts = [len(server.emulator.messages(uid)) for uid in readers]
        assert counts.count(1) == len(readers)
        assert server.emulator.too_many_requests == 0
        # the editor watched it go: progress edits on the way, then the final report
        assert final.edit_count >= 3
        assert "Sent 1000 · blocked 0 · failed 0 (of 1000)" in final.text


async def test_pushed_story_is_left_out_of_that_chats_next_digest(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World", "Ordinary world story"))
    await add_readers(url, [8101, 8102], "World")
    for uid in [8101, 8102, EDITOR]:
        fake_api.emulator.add_user(uid, started=True)
    fake_api.emulator.block(8102)  # 8102 never gets the push...
    editor = Reader(fake_api, EDITOR)
    settings = e2e_settings(fake_api, url, admin_ids=(EDITOR,))
    async with running_bot(fake_api, settings, now=NOW) as app:
        [preview] = await editor.send("/breaking world Dam breach forces evacuations")
        await editor.press(preview, button(preview, "Send"))
        await wait_for_push_done(url)
        fake_api.emulator.unblock(8102)  # ...and comes back before the digest
        engine = make_engine(url)
        try:
            async with make_session_factory(engine).begin() as session:
                for chat in await session.scalars(select(Chat)):
                    chat.active = True
                    chat.next_digest_at = NOW
        finally:
            await engine.dispose()
        services = app.bot_data
        await run_digest_round(
            services.sessions,
            TelegramSender(app.bot),
            now=lambda: NOW + timedelta(minutes=1),
            config=delivery_config(settings),
        )
    got = [m.text for m in fake_api.emulator.messages(8101)]
    assert any("Breaking" in text and "Dam breach" in text for text in got)
    [digest] = [t for t in got if "Your news digest" in t]
    assert "Ordinary world story" in digest
    assert "Dam breach" not in digest  # already pushed to this chat
    [other] = [m.text for m in fake_api.emulator.messages(8102) if "Your news digest" in m.text]
    assert "Dam breach" in other  # never reached 8102, so its digest has it


async def test_long_flood_wait_is_resumed_later_not_dropped(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    await add_readers(url, [8201, 8202], None)
    for uid in [8201, 8202, EDITOR]:
        fake_api.emulator.add_user(uid, started=True)
    # a flood wait longer than the limiter will sit through: the row waits in the database
    fake_api.emulator.fail_next("sendMessage", 8202, error=too_many_requests(120))
    editor = Reader(fake_api, EDITOR)
    settings = e2e_settings(fake_api, url, admin_ids=(EDITOR,))
    async with running_bot(fake_api, settings, now=NOW) as app:
        [preview] = await editor.send("/breaking Storm update")
        await editor.press(preview, button(preview, "Send"))
        await fake_api.emulator.wait_for(lambda: fake_api.emulator.messages(8201))
        await asyncio.sleep(0.3)
        assert fake_api.emulator.messages(8202) == []
        engine = make_engine(url)
        try:
            async with make_session_factory(engine)() as session:
                [status] = await session.scalars(select(BreakingPush.status))
        finally:
            await engine.dispose()
        assert status == PushStatus.SENDING  # not done while a reader still waits
        app.bot_data.clock = lambda: NOW + timedelta(minutes=3)
        await app.bot_data.pushes.run(1)  # what the periodic resume job does
        await wait_for_push_done(url)
    assert len(fake_api.emulator.messages(8201)) == 1
    assert len(fake_api.emulator.messages(8202)) == 1


async def test_stopping_mid_push_leaves_nothing_in_doubt(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    """SIGTERM while a push goes out at 30/s: the sends in flight are recorded, nothing new
    is claimed, and the rest waits PENDING for the next start (or another instance)."""
    url = await seeded_db(tmp_path, story(1, "World"))
    readers = list(range(9001, 9201))
    await add_readers(url, readers, None)
    for uid in [*readers, EDITOR]:
        fake_api.emulator.add_user(uid, started=True)
    editor = Reader(fake_api, EDITOR)
    settings = e2e_settings(
        fake_api, url, admin_ids=(EDITOR,), send_rate_limit=30, http_host="127.0.0.1", http_port=0
    )
    async with running_service(settings):
        [preview] = await editor.send("/breaking Levee holds after the night")
        await editor.press(preview, button(preview, "Send"))
        await fake_api.emulator.wait_for(
            lambda: sum(1 for uid in readers if fake_api.emulator.messages(uid)) >= 20
        )
    # serve() has returned: SIGINT/SIGTERM set the same stop event
    delivered = sum(len(fake_api.emulator.messages(uid)) for uid in readers)
    assert await count_rows(url, DeliveryStatus.SENDING) == 0  # nothing left in doubt
    assert await count_rows(url, DeliveryStatus.SENT) == delivered
    assert await count_rows(url, DeliveryStatus.PENDING) == len(readers) - delivered > 0
    assert await push_status(url) == PushStatus.SENDING  # resumed at the next start
