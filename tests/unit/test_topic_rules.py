"""Forum topic rules, Telegram's answers about topics and rights, and the fake server's
forums: pure logic, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from telegram import Bot, ChatMemberAdministrator, ChatMemberRestricted, ChatMemberUpdated

from digests.models import ChatTopic
from digests.readers.texts import topic_list
from digests.readers.topics import (
    GENERAL,
    Membership,
    Route,
    TopicLine,
    TopicTrouble,
    membership,
    route_of,
    story_route,
    topic_trouble,
)
from fakebotapi.emulator import ApiError, BotApiEmulator

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("description", "trouble"),
    [
        ("Bad Request: message thread not found", TopicTrouble.DELETED),
        ("400: Bad Request: TOPIC_DELETED", TopicTrouble.DELETED),
        ("Bad Request: TOPIC_CLOSED", TopicTrouble.CLOSED),
        ("Bad Request: topic_closed", TopicTrouble.CLOSED),
        ("Bad Request: chat not found", None),
        ("Bad Request: can't parse entities", None),
    ],
)
def test_topic_answers_are_sorted_by_kind(description: str, trouble: TopicTrouble | None) -> None:
    assert topic_trouble(description) is trouble


def topic(thread: int | None, *, closed: bool = False) -> ChatTopic:
    return ChatTopic(chat_id=1, section_id=1, thread_id=thread, closed=closed)


def test_a_section_goes_to_its_topic_unless_it_is_closed_or_general() -> None:
    assert route_of(None) == GENERAL
    assert route_of(topic(None)) == GENERAL  # /topic off
    assert route_of(topic(42)) == Route(42)
    assert route_of(topic(42, closed=True)) == Route(None, closed=True)


def test_a_story_goes_to_the_topic_of_its_first_followed_section() -> None:
    routes = {1: Route(10), 2: Route(20), 3: Route(None, closed=True)}
    assert story_route([1, 2], {2}, routes) == Route(20)
    assert story_route([2, 1], {1, 2}, routes) == Route(20)
    assert story_route([3, 1], {1, 3}, routes) == Route(None, closed=True)
    # followed through no section (an alert to every reader): its first section's topic
    assert story_route([1, 2], set(), routes) == Route(10)
    assert story_route([4], {4}, routes) == GENERAL
    assert story_route([], set(), routes) == GENERAL


@pytest.mark.parametrize(
    ("kind", "status", "can_post", "can_send", "expected"),
    [
        ("channel", "administrator", True, None, Membership.POSTS),
        ("channel", "administrator", False, None, Membership.MUTED),
        ("channel", "member", None, None, Membership.MUTED),
        ("channel", "left", None, None, Membership.GONE),
        ("channel", "kicked", None, None, Membership.GONE),
        ("supergroup", "member", None, None, Membership.POSTS),
        ("supergroup", "administrator", None, None, Membership.POSTS),
        ("supergroup", "restricted", None, False, Membership.MUTED),
        ("supergroup", "restricted", None, True, Membership.POSTS),
        ("group", "kicked", None, None, Membership.GONE),
    ],
)
def test_the_bots_membership_decides_whether_a_chat_is_served(
    kind: str, status: str, can_post: bool | None, can_send: bool | None, expected: Membership
) -> None:
    assert membership(kind, status, can_post=can_post, can_send=can_send) is expected


def test_the_topic_list_escapes_section_names() -> None:
    text = topic_list(
        [
            TopicLine("<Tech> & Co", "tech", 7, closed=False, chosen_general=False),
            TopicLine("World", "world", 9, closed=True, chosen_general=False),
            TopicLine("Sports", "sports", None, closed=False, chosen_general=True),
        ]
    )
    assert "&lt;Tech&gt; &amp; Co: its topic (#7)" in text
    assert "/topic world in it" in text
    assert "Sports: General (chosen with /topic off)" in text


# ---- the fake server's forums ---------------------------------------------------------------


async def call(emulator: BotApiEmulator, method: str, **params: Any) -> Any:
    return await emulator.call(method, params)


async def test_the_fake_server_creates_topics_only_with_the_right() -> None:
    emulator = BotApiEmulator()
    emulator.add_group(-100, "Forum", admins=[1], forum=True, bot_is_admin=True)
    emulator.add_group(-200, "Plain", admins=[1], supergroup=True, bot_is_admin=True)
    emulator.add_group(
        -300, "Managed", admins=[1], forum=True, bot_is_admin=True, bot_can_manage_topics=True
    )
    with pytest.raises(ApiError, match="not enough rights to create a topic"):
        await call(emulator, "createForumTopic", chat_id=-100, name="World")
    with pytest.raises(ApiError, match="the chat is not a forum"):
        await call(emulator, "createForumTopic", chat_id=-200, name="World")
    made = await call(emulator, "createForumTopic", chat_id=-300, name="World")
    assert made["name"] == "World" and emulator.topic_names(-300) == {
        made["message_thread_id"]: "World"
    }


async def test_the_fake_server_refuses_deleted_and_closed_topics() -> None:
    emulator = BotApiEmulator()
    emulator.add_group(-100, "Forum", admins=[1], forum=True, bot_is_admin=True)
    open_, closed, gone = (emulator.create_topic(-100, name) for name in ("a", "b", "c"))
    emulator.close_topic(-100, closed)
    emulator.delete_topic(-100, gone)
    sent = await call(emulator, "sendMessage", chat_id=-100, text="hi", message_thread_id=open_)
    assert sent["message_thread_id"] == open_ and sent["is_topic_message"] is True
    assert sent["chat"]["is_forum"] is True
    with pytest.raises(ApiError, match="TOPIC_CLOSED"):
        await call(emulator, "sendMessage", chat_id=-100, text="hi", message_thread_id=closed)
    with pytest.raises(ApiError, match="message thread not found"):
        await call(emulator, "sendPhoto", chat_id=-100, photo="https://x.example/p.jpg",
                   message_thread_id=gone)  # fmt: skip
    with pytest.raises(ApiError, match="message thread not found"):
        await call(emulator, "sendMessage", chat_id=-100, text="hi", message_thread_id=999)
    general = await call(emulator, "sendMessage", chat_id=-100, text="hi")
    assert "message_thread_id" not in general
    assert [m.text for m in emulator.topic_messages(-100, open_)] == ["hi"]


async def test_the_fake_server_reports_the_bots_rights_as_ptb_reads_them() -> None:
    emulator = BotApiEmulator()
    bot = Bot(emulator.token)
    emulator.add_channel(-100, "Channel", admins=[1])
    emulator.add_group(-200, "Group", admins=[1], supergroup=True, bot_is_admin=True)
    demoted = ChatMemberUpdated.de_json(emulator.demote_bot(-100), bot)
    assert isinstance(demoted.new_chat_member, ChatMemberAdministrator)
    assert demoted.new_chat_member.can_post_messages is False
    with pytest.raises(ApiError, match="need administrator rights in the channel chat"):
        await call(emulator, "sendMessage", chat_id=-100, text="hi")
    restricted = ChatMemberUpdated.de_json(emulator.demote_bot(-200), bot)
    assert isinstance(restricted.new_chat_member, ChatMemberRestricted)
    with pytest.raises(ApiError, match="not enough rights to send text messages"):
        await call(emulator, "sendMessage", chat_id=-200, text="hi")
    emulator.remove_bot(-100, ban=False)
    with pytest.raises(ApiError, match="bot is not a member of the channel chat"):
        await call(emulator, "sendMessage", chat_id=-100, text="hi")
    updates = [u["my_chat_member"] for u in emulator.pending_updates]
    assert [u["new_chat_member"]["status"] for u in updates] == [
        "administrator",
        "restricted",
        "left",
    ]
