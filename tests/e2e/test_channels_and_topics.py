"""Channels and forum topics end to end, through the fake Bot API over loopback HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.context import NewsApp
from bot.transport.sender import TelegramSender
from bot.transport.topics import TelegramTopicMaker
from digests.db import make_engine, make_session_factory
from digests.delivery.config import delivery_config
from digests.delivery.ports import RoundReport
from digests.digest.rounds import run_digest_round
from digests.feeds.ingest import store_entries
from digests.feeds.parse import FeedEntry
from digests.models import Chat, ChatTopic, Delivery, DeliveryStatus
from fakebotapi.emulator import StoredMessage
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import button, e2e_settings, logged_errors, running_bot
from tests.e2e.test_breaking import wait_for_push_done
from tests.e2e.test_readers import seeded_db, story

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FIRST_DIGEST = datetime(2026, 12, 1, 8, 1, tzinfo=UTC)  # the default 08:00 UTC, next morning
EDITOR = 900


async def round_at(app: NewsApp, when: datetime) -> RoundReport:
    """One digest round as the job runs it, at `when`."""
    return await run_digest_round(
        app.bot_data.sessions,
        TelegramSender(app.bot),
        now=lambda: when,
        config=delivery_config(app.bot_data.settings),
        topics=TelegramTopicMaker(app.bot),
    )


async def stored_chat(url: str, telegram_id: int) -> Chat | None:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            return await session.scalar(select(Chat).where(Chat.telegram_id == telegram_id))
    finally:
        await engine.dispose()


async def topics_of(url: str, telegram_id: int) -> list[ChatTopic]:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            return list(
                await session.scalars(
                    select(ChatTopic)
                    .join(Chat, Chat.id == ChatTopic.chat_id)
                    .where(Chat.telegram_id == telegram_id)
                    .order_by(ChatTopic.section_id)
                )
            )
    finally:
        await engine.dispose()


async def deliveries(url: str) -> list[Delivery]:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            return list(await session.scalars(select(Delivery).order_by(Delivery.id)))
    finally:
        await engine.dispose()


async def add_stories(url: str, *entries: FeedEntry, at: datetime) -> None:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine).begin() as session:
            await store_entries(
                session, list(entries), now=at, category_map={}, default_section="General"
            )
    finally:
        await engine.dispose()


async def wait_until(check: object, limit: float = 5.0) -> None:
    async with asyncio.timeout(limit):
        while not await check():  # type: ignore[operator]
            await asyncio.sleep(0.02)


def digests_in(messages: list[StoredMessage]) -> list[StoredMessage]:
    return [m for m in messages if "Your news digest" in m.text]


async def post(server: FakeBotApiServer, channel: int, text: str) -> StoredMessage:
    """An administrator posts a command in the channel; returns the bot's reply."""
    emulator = server.emulator
    before = {m.message_id for m in emulator.messages(channel)}
    emulator.post_in_channel(channel, text)

    def reply() -> StoredMessage | None:
        fresh = [m for m in emulator.messages(channel) if m.message_id not in before]
        return fresh[-1] if fresh else None

    answer = await emulator.wait_for(reply)
    # the command post is deleted right after the reply
    await emulator.wait_for(
        lambda: all(m.from_bot for m in emulator.messages(channel, include_user=True))
    )
    return answer


async def test_a_channel_configured_by_posts_gets_its_digest(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "Sports"))
    channel = -1001500
    emulator = fake_api.emulator
    emulator.add_channel(channel, "Meridian Daily", admins=[700], subscribers=[701, 702])
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW) as app:
            welcome = await post(fake_api, channel, "/start")
            assert "Welcome to The Daily Meridian" in welcome.text
            # the chooser's buttons work for the channel's administrators, not its readers
            sports = button(welcome, "Sports")
            refused = emulator.press_button(701, welcome.message_id, sports, chat_id=channel)
            await emulator.wait_for(lambda: emulator.is_answered(refused))
            assert "administrators" in emulator.callback_answers[refused].get("text", "")
            pressed = emulator.press_button(700, welcome.message_id, sports, chat_id=channel)
            await emulator.wait_for(lambda: emulator.is_answered(pressed))
            await emulator.wait_for(
                lambda: "✓ Sports" in str(emulator.message(channel, welcome.message_id).buttons)
            )
            await post(fake_api, channel, "/unsubscribe sports")
            followed = await post(fake_api, channel, "/subscribe world")
            assert "World" in followed.text
            await post(fake_api, channel, "/digest 08:00")
            # the commands were deleted at once (see post); the replies stay a while
            assert app.job_queue is not None
            assert len([j for j in app.job_queue.jobs() if j.name.startswith("tidy-")]) == 4
            report = await round_at(app, FIRST_DIGEST)
            assert report.sent == 1
            [digest] = digests_in(emulator.messages(channel))
            assert "Story 1" in digest.text
            assert "Story 2" not in digest.text
            # again: nothing twice
            assert (await round_at(app, FIRST_DIGEST)).sent == 0
        assert errors == []
    chat = await stored_chat(url, channel)
    assert chat is not None and chat.active and chat.kind == "channel"


async def test_a_forum_gets_each_section_in_its_topic(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "Sports"), story(3, "Culture"))
    forum, admin = -1001600, 801
    emulator = fake_api.emulator
    emulator.add_group(
        forum, "Meridian readers", admins=[admin], members=[802],
        forum=True, bot_is_admin=True, bot_can_manage_topics=True,
    )  # fmt: skip
    emulator.add_user(EDITOR, "Editor", started=True)
    settings = e2e_settings(fake_api, url, admin_ids=(EDITOR,))
    with logged_errors() as errors:
        async with running_bot(fake_api, settings, now=NOW) as app:
            emulator.user_sends(admin, "/start", chat_id=forum)
            await emulator.wait_for(lambda: emulator.messages(forum))
            emulator.user_sends(admin, "/subscribe world sports culture", chat_id=forum)
            # the bot opens a topic per section it follows, named after it
            await emulator.wait_for(lambda: len(emulator.topic_names(forum)) == 3)
            made = {name: thread for thread, name in emulator.topic_names(forum).items()}
            assert set(made) == {"World", "Sports", "Culture"}
            # an administrator sends Sports to a topic of the forum's own instead
            football = emulator.create_topic(forum, "Football talk")
            emulator.user_sends_in_topic(admin, forum, football, "/topic sports")
            [bound] = await emulator.wait_for(lambda: emulator.topic_messages(forum, football))
            assert "Sports comes into this topic" in bound.text
            # ... and Culture to the General topic
            emulator.user_sends(admin, "/topic off culture", chat_id=forum)
            await emulator.wait_for(
                lambda: any("General topic" in m.text for m in emulator.messages(forum))
            )
            report = await round_at(app, FIRST_DIGEST)
            assert report.sent == 1
            world = digests_in(emulator.topic_messages(forum, made["World"]))
            sports = digests_in(emulator.topic_messages(forum, football))
            general = digests_in(emulator.topic_messages(forum, None))
            assert [("Story 1" in m.text, "Story 2" in m.text) for m in world] == [(True, False)]
            assert [("Story 2" in m.text, "Story 1" in m.text) for m in sports] == [(True, False)]
            assert ["Story 3" in m.text for m in general] == [True]
            assert digests_in(emulator.topic_messages(forum, made["Sports"])) == []
            # one delivery row for the whole digest, with every part's message id
            [row] = await deliveries(url)
            assert row.status == DeliveryStatus.SENT
            assert row.message_ids is not None and len(row.message_ids.split(",")) == 3
            # the one-tap buttons sit under the last part only
            parts = sorted(world + sports + general, key=lambda m: m.message_id)
            assert [bool(m.buttons) for m in parts] == [False, False, True]
            # a breaking push lands in the topic of its section
            editor_chat = EDITOR
            emulator.user_sends(EDITOR, "/breaking sports Cup final tonight")
            await emulator.wait_for(lambda: any(m.buttons for m in emulator.messages(editor_chat)))
            preview = emulator.messages(editor_chat)[-1]
            send = next(b["callback_data"] for b in preview.buttons if "Send" in b["text"])
            emulator.press_button(EDITOR, preview.message_id, send)
            await wait_for_push_done(url)
            pushed = [m for m in emulator.topic_messages(forum, football) if "Cup final" in m.text]
            assert len(pushed) == 1
            assert not any("Cup final" in m.text for m in emulator.topic_messages(forum, None))
        assert errors == []


async def test_deleted_and_closed_topics_go_to_general_once(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"), story(2, "Sports"))
    forum, admin = -1001700, 811
    emulator = fake_api.emulator
    # the bot is an administrator that may not manage topics: the admins choose them
    emulator.add_group(forum, "Forum", admins=[admin], forum=True, bot_is_admin=True)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW) as app:
            emulator.user_sends(admin, "/subscribe world sports", chat_id=forum)
            await emulator.wait_for(lambda: emulator.messages(forum))
            world = emulator.create_topic(forum, "World news")
            sports = emulator.create_topic(forum, "Sports news")
            for thread, name in ((world, "world"), (sports, "sports")):
                emulator.user_sends_in_topic(admin, forum, thread, f"/topic {name}")
                await emulator.wait_for(lambda t=thread: emulator.topic_messages(forum, t))
            assert emulator.topic_names(forum) == {world: "World news", sports: "Sports news"}
            emulator.delete_topic(forum, world)
            emulator.close_topic(forum, sports)
            calls = len(emulator.calls)
            report = await round_at(app, FIRST_DIGEST)
            assert (report.sent, report.failed, report.retry_later) == (1, 0, 0)
            general = digests_in(emulator.topic_messages(forum, None))
            # sections by name: Sports, then World
            assert [("Story 1" in m.text, "Story 2" in m.text) for m in general] == [
                (False, True),
                (True, False),
            ]
            sends = [c for c in emulator.calls[calls:] if c.method == "sendMessage"]
            # each refused topic is tried once, then its part goes to General
            assert [c.error.description if c.error else None for c in sends] == [
                "Bad Request: TOPIC_CLOSED",
                None,
                "Bad Request: message thread not found",
                None,
            ]
            # the deleted topic is forgotten (the bot may not make another), the closed marked
            [closed] = await topics_of(url, forum)
            assert closed.thread_id == sports and closed.closed
            chat = await stored_chat(url, forum)
            assert chat is not None and not chat.topic_rights
            # the next digest goes straight to General, with a word for the admins
            await add_stories(url, story(4, "Sports"), story(5, "World"), at=FIRST_DIGEST)
            calls = len(emulator.calls)
            assert (await round_at(app, FIRST_DIGEST + timedelta(days=1))).sent == 1
            assert all(c.error is None for c in emulator.calls[calls:])
            *_, sports_part, world_part = digests_in(emulator.topic_messages(forum, None))
            assert "topic for Sports is closed" in sports_part.text
            assert "Story 4" in sports_part.text
            assert "Story 5" in world_part.text and "closed" not in world_part.text
            emulator.user_sends(admin, "/topic", chat_id=forum)
            await emulator.wait_for(
                lambda: "Where each section goes" in emulator.messages(forum)[-1].text
            )
            assert "reopen it" in emulator.messages(forum)[-1].text
            # reopened and bound again: back in its topic
            emulator.reopen_topic(forum, sports)
            emulator.user_sends_in_topic(admin, forum, sports, "/topic sports")
            await emulator.wait_for(lambda: len(emulator.topic_messages(forum, sports)) == 2)
            await add_stories(
                url, story(6, "Sports", hours_ago=-24), at=FIRST_DIGEST + timedelta(days=1)
            )
            assert (await round_at(app, FIRST_DIGEST + timedelta(days=2))).sent == 1
            assert digests_in(emulator.topic_messages(forum, sports))
            # given the right to manage topics, the bot makes the one World lacks
            emulator.promote_bot(forum, can_manage_topics=True)
            await emulator.wait_for(lambda: len(emulator.topic_names(forum)) == 2)
            assert sorted(emulator.topic_names(forum).values()) == ["Sports news", "World"]
        assert errors == []


async def test_a_channel_that_takes_the_bots_rights_is_deactivated(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    watched, unseen = -1001800, -1001801
    emulator = fake_api.emulator
    for channel in (watched, unseen):
        emulator.add_channel(channel, f"Channel {channel}", admins=[720])
    settings = e2e_settings(fake_api, url)
    async with running_bot(fake_api, settings, now=NOW):
        for channel in (watched, unseen):
            await post(fake_api, channel, "/subscribe world")
    # while the bot is away, one channel takes its right to post: the update is lost
    emulator.demote_bot(unseen, notify=False)
    async with running_bot(fake_api, settings, now=NOW) as app:
        # the other does it while the bot watches: a my_chat_member update
        emulator.demote_bot(watched)

        async def watched_off() -> bool:
            chat = await stored_chat(url, watched)
            return chat is not None and not chat.active

        await wait_until(watched_off)
        calls = len(emulator.calls)
        report = await round_at(app, FIRST_DIGEST)
        # the unseen one is found out by the send: deactivated, never retried
        assert (report.sent, report.blocked, report.retry_later) == (0, 1, 0)
        sends = [c for c in emulator.calls[calls:] if c.method == "sendMessage"]
        assert [
            (int(c.params["chat_id"]), c.error.error_code if c.error else 0) for c in sends
        ] == [(unseen, 400)]
        chat = await stored_chat(url, unseen)
        assert chat is not None and not chat.active
        assert "need administrator rights" in (chat.deactivated_reason or "").lower()
        assert (await round_at(app, FIRST_DIGEST + timedelta(days=1))).blocked == 0
        # the right comes back: the channel is active again
        emulator.promote_bot(watched)

        async def watched_on() -> bool:
            chat = await stored_chat(url, watched)
            return chat is not None and chat.active

        await wait_until(watched_on)
    # a bot removed from a channel: deactivated as well
    async with running_bot(fake_api, settings, now=NOW):
        emulator.remove_bot(watched)
        await wait_until(watched_off)
    assert [m for m in emulator.messages(unseen) if "Your news digest" in m.text] == []


async def test_a_channel_that_adds_the_bot_is_registered(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    channel = -1001900
    emulator = fake_api.emulator
    emulator.add_channel(channel, "New channel", admins=[730])
    emulator.demote_bot(channel, notify=False)  # a plain subscriber until made an admin
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        emulator.promote_bot(channel)

        async def registered() -> bool:
            chat = await stored_chat(url, channel)
            return chat is not None and chat.active

        await wait_until(registered)
    chat = await stored_chat(url, channel)
    assert chat is not None and chat.kind == "channel" and chat.title == "New channel"
    assert chat.next_digest_at is not None  # the default digest time, like any new chat


async def test_topic_outside_a_forum_changes_nothing(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    emulator = fake_api.emulator
    emulator.add_user(740, "Reader", started=True)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        emulator.user_sends(740, "/topic world")
        [reply] = await emulator.wait_for(lambda: emulator.messages(740))
    assert "only in groups with topics" in reply.text
    assert await stored_chat(url, 740) is None
