"""Corrections and withdrawals of a sent push end to end, through the fake Bot API over
loopback HTTP: the editor's buttons and /correct, readers' messages edited or deleted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from digests.db import make_engine, make_session_factory
from digests.models import Chat, Delivery, PushAction
from fakebotapi.emulator import StoredMessage
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, button, e2e_settings, running_bot
from tests.e2e.test_breaking import EDITOR, NOW, add_readers, wait_for_push_done
from tests.e2e.test_readers import seeded_db, story
from tests.fakes.loopback import serving


async def pushed(fake_api: FakeBotApiServer, url: str, editor: Reader, text: str) -> StoredMessage:
    """Push `text` as breaking news to every reader; the finished report."""
    [preview] = await editor.send(f"/breaking {text}")
    await editor.press(preview, button(preview, "Send"))
    await wait_for_push_done(url)
    await editor.emulator.wait_for(lambda: "Correct" in str(editor.current(preview).buttons))
    return editor.current(preview)


def breaking_message(fake_api: FakeBotApiServer, uid: int) -> StoredMessage:
    [message] = [m for m in fake_api.emulator.messages(uid) if "Breaking" in m.text]
    return message


async def actions(url: str) -> list[PushAction]:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            return list(await session.scalars(select(PushAction)))
    finally:
        await engine.dispose()


async def test_a_correction_edits_every_sent_message(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    readers = [1201, 1202, 1203, 1204, 1205]
    await add_readers(url, readers, None)
    for uid in [*readers, EDITOR]:
        fake_api.emulator.add_user(uid, f"U{uid}", started=True)
    editor = Reader(fake_api, EDITOR)
    async with running_bot(fake_api, e2e_settings(fake_api, url, admin_ids=(EDITOR,)), now=NOW):
        report = await pushed(fake_api, url, editor, "Bridge closed after crash")
        sent = {uid: breaking_message(fake_api, uid).message_id for uid in readers}
        before = len(editor.bot_messages())
        await editor.press(report, button(report, "Correct"))
        [how] = editor.bot_messages()[before:]
        assert "/correct 1 " in how.text
        [preview] = await editor.send(
            "/correct 1 Bridge <reopened> & cleared\nTraffic flows again.\n"
            "Note: an earlier version said the bridge <b>stays</b> closed"
        )
        assert "Bridge <reopened> & cleared" in preview.text
        assert "5 sent messages will be edited" in preview.text
        go = button(preview, "Edit 5 messages")
        answer = await editor.press(preview, go)
        assert answer["text"] == "Started."
        await editor.emulator.wait_for(
            lambda: editor.current(preview).text.startswith("✏️ Corrected")
        )
        final = editor.current(preview).text
        assert "✏️ Corrected" in final and "5 edited, 0 failed, 0 too old" in final, final
        for uid in readers:
            message = breaking_message(fake_api, uid)
            assert message.message_id == sent[uid]  # the same message, edited in place
            assert message.edit_count == 1
            assert "Bridge <reopened> & cleared" in message.text
            assert "Traffic flows again." in message.text
            assert message.text.endswith(
                "✏️ Corrected: an earlier version said the bridge <b>stays</b> closed"
            )
            assert len(fake_api.emulator.messages(uid)) == 1  # nothing new was sent
        # a second press starts nothing; a forged digest applies nothing
        again = await editor.press(preview, go, force=True)  # a stale client
        assert again["text"] == "Already sent or cancelled."
        [empty] = await editor.send("/correct 1 New title\nNote:  ")
        assert empty.text == "A correction needs a note saying what changed."
        [other] = await editor.send("/correct 1 Note: typo")
        forged = await editor.press(other, "K:cy:1:0123456789ab", force=True)
        assert forged["text"] == "That correction was changed or deleted: send /correct again."
        assert all(breaking_message(fake_api, uid).edit_count == 1 for uid in readers)
    [action] = await actions(url)
    assert (action.done, action.edited, action.failed, action.too_old) == (True, 5, 0, 0)
    assert action.note == "an earlier version said the bridge <b>stays</b> closed"


async def test_a_withdrawal_deletes_what_telegram_allows(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    readers = [1301, 1302, 1303, 1304]
    await add_readers(url, readers, None)
    for uid in [*readers, EDITOR]:
        fake_api.emulator.add_user(uid, f"U{uid}", started=True)
    editor = Reader(fake_api, EDITOR)
    async with running_bot(fake_api, e2e_settings(fake_api, url, admin_ids=(EDITOR,)), now=NOW):
        report = await pushed(fake_api, url, editor, "Dam breach downstream")
        # Telegram's clock: one reader's copy is 49 hours old; the log: another one's row
        aged = breaking_message(fake_api, 1303)
        fake_api.emulator.age_message(1303, aged.message_id, 49 * 3600)
        await age_delivery(url, 1304, timedelta(hours=49))
        before = len(editor.bot_messages())
        await editor.press(report, button(report, "Withdraw"))
        [confirm] = editor.bot_messages()[before:]
        assert "Delete 4 messages?" in confirm.text
        yes = button(confirm, "Yes")
        answer = await editor.press(confirm, yes)
        assert answer["text"] == "Started."
        await editor.emulator.wait_for(lambda: "Withdrawn" in editor.current(confirm).text)
        final = editor.current(confirm).text
        assert "2 deleted, 0 failed, 2 too old" in final, final
        assert fake_api.emulator.messages(1301) == []
        assert fake_api.emulator.messages(1302) == []
        assert breaking_message(fake_api, 1303).message_id == aged.message_id  # too old
        assert breaking_message(fake_api, 1304)  # its row said too old: Telegram not asked
        deletes = [
            int(c.params["chat_id"]) for c in fake_api.emulator.calls if c.method == "deleteMessage"
        ]
        assert sorted(deletes) == [1301, 1302, 1303]
        # withdrawn: nothing more can be done to it
        assert editor.current(report).buttons == []  # the report offers nothing more
        answer = await editor.press(report, "K:c:1", force=True)
        assert answer["text"] == "That push was withdrawn."
        answer = await editor.press(confirm, yes, force=True)
        assert answer["text"] == "Already sent or cancelled."
    [action] = await actions(url)
    assert (action.done, action.edited, action.failed, action.too_old) == (True, 2, 0, 2)


async def age_delivery(url: str, telegram_id: int, age: timedelta) -> None:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine).begin() as session:
            chat = await session.scalar(select(Chat.id).where(Chat.telegram_id == telegram_id))
            row = await session.scalar(select(Delivery).where(Delivery.chat_id == chat))
            assert row is not None
            row.updated_at = NOW - age
    finally:
        await engine.dispose()


async def test_a_non_editor_cannot_correct_or_withdraw(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    await add_readers(url, [1401], None)
    for uid in [1401, EDITOR]:
        fake_api.emulator.add_user(uid, f"U{uid}", started=True)
    editor, mallory = Reader(fake_api, EDITOR), Reader(fake_api, 1401)
    async with running_bot(fake_api, e2e_settings(fake_api, url, admin_ids=(EDITOR,)), now=NOW):
        await pushed(fake_api, url, editor, "Storm warning")
        story_message = breaking_message(fake_api, 1401)
        for data in ("K:c:1", "K:w:1", "K:wy:1", "K:cy:1:0123456789ab"):
            answer = await mallory.press(story_message, data, force=True)
            assert answer["text"] == "Not allowed.", data
        [reply] = await mallory.send("/correct 1 Note: fake")
        assert "not allowed" in reply.text
        tampered = await editor.press(editor.bot_messages()[0], "K:wy:01", force=True)
        assert tampered["text"] == "This button no longer works."
        assert breaking_message(fake_api, 1401).edit_count == 0
    assert await actions(url) == []


async def test_a_feed_update_of_a_pushed_story_is_offered_for_correction(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World", title="Bridge closed"))
    await add_readers(url, [1501], None)
    for uid in [1501, EDITOR]:
        fake_api.emulator.add_user(uid, f"U{uid}", started=True)
    editor = Reader(fake_api, EDITOR)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>M</title>'
        "<item><guid>s1</guid><link>https://meridian.example/1</link>"
        "<title>Bridge reopened &lt;today&gt;</title><description>Summary 1</description>"
        "<pubDate>Mon, 30 Nov 2026 11:00:00 GMT</pubDate></item></channel></rss>"
    )

    async def feed(_request: web.Request) -> web.Response:
        return web.Response(body=body.encode(), content_type="application/rss+xml")

    site = web.Application()
    site.router.add_get("/feed.xml", feed)
    settings = e2e_settings(fake_api, url, admin_ids=(EDITOR,))
    async with running_bot(fake_api, settings, now=NOW):
        await pushed(fake_api, url, editor, "https://meridian.example/1")
        assert "Bridge closed" in breaking_message(fake_api, 1501).text
    before = len(editor.bot_messages())
    async with serving(site) as base:
        polling = e2e_settings(fake_api, url, admin_ids=(EDITOR,), feed_urls=(f"{base}/feed.xml",))
        async with running_bot(fake_api, polling, now=NOW, with_jobs=True):
            await editor.emulator.wait_for(lambda: len(editor.bot_messages()) > before, timeout=15)
            [told] = editor.bot_messages()[before:]
            assert told.text == "This pushed story changed in the feed: Bridge reopened <today>"
            answer = await editor.press(told, button(told, "Correct"))
            assert answer.get("text") is None
            assert "/correct 1 " in editor.bot_messages()[-1].text
