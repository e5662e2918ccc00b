"""Forum topics: which topic of a forum supergroup gets each section's digest part and pushes.

A forum chat's section goes to the topic stored for it in `chat_topics`:

- no row: the General topic, until the bot creates one (`ensure_topics`: right after the chat
  follows the section, and again before a delivery when it is still missing) if Telegram
  lets it (`chats.topic_rights`, cleared when Telegram refuses and set again when an
  administrator gives the bot the right);
- a row with a thread: that topic, chosen by an administrator (`/topic <section>` sent inside
  it) or created by the bot;
- a row without a thread: the General topic by an administrator's choice (`/topic off`),
  never replaced by a topic of the bot's;
- a closed row: Telegram answered TOPIC_CLOSED, so the General topic, with a note telling
  administrators how to fix it, until /topic binds a topic again.

Telegram's answers are applied by `record_problems`: a deleted topic ("message thread not
found") forgets the row, so the bot creates a new topic once before the next delivery (if it
may); a closed one marks the row closed. Neither is ever retried in a loop: the message that
met it went to the General topic in the same send.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests.db import SessionFactory
from digests.models import Chat, ChatTopic, Section, Subscription
from digests.stories.sections import resolve_sections

log = logging.getLogger(__name__)


class TopicTrouble(enum.StrEnum):
    """What Telegram said about a message sent into a topic."""

    DELETED = "deleted"  # "Bad Request: message thread not found"
    CLOSED = "closed"  # "Bad Request: TOPIC_CLOSED"


@dataclass(frozen=True)
class TopicProblem:
    thread_id: int
    trouble: TopicTrouble


_DELETED = ("message thread not found", "topic_deleted", "topic_id_invalid")
_CLOSED = ("topic_closed",)


def topic_trouble(description: str) -> TopicTrouble | None:
    """Sort a 400 answering a message sent into a topic: None when it is not about the topic."""
    reason = description.lower()
    if any(marker in reason for marker in _DELETED):
        return TopicTrouble.DELETED
    if any(marker in reason for marker in _CLOSED):
        return TopicTrouble.CLOSED
    return None


@dataclass(frozen=True)
class Route:
    """Where a section's messages go in a forum chat."""

    thread_id: int | None  # None: the General topic
    closed: bool = False  # its topic is closed: General, with a note for administrators


GENERAL = Route(None)


def route_of(topic: ChatTopic | None) -> Route:
    if topic is None or topic.thread_id is None:
        return GENERAL
    if topic.closed:
        return Route(None, closed=True)
    return Route(topic.thread_id)


def story_route(
    story_sections: Sequence[int], followed: set[int], routes: dict[int, Route]
) -> Route:
    """A breaking story's place in a forum: the topic of its first section the chat follows
    (the story's sections in their order), else of its first section, else General."""
    chosen = next((s for s in story_sections if s in followed), None)
    if chosen is None and story_sections:
        chosen = story_sections[0]
    if chosen is None:
        return GENERAL
    return routes.get(chosen, GENERAL)


async def routes_of(session: AsyncSession, chat_ids: Sequence[int]) -> dict[int, dict[int, Route]]:
    """Each forum chat's routes by section id (db chat ids in, sections without a row left
    out: they go to General)."""
    found: dict[int, dict[int, Route]] = {}
    if not chat_ids:
        return found
    for topic in await session.scalars(
        select(ChatTopic).where(ChatTopic.chat_id.in_(list(chat_ids)))
    ):
        found.setdefault(topic.chat_id, {})[topic.section_id] = route_of(topic)
    return found


async def bind(
    session: AsyncSession,
    chat: Chat,
    section: Section,
    thread_id: int | None,
    *,
    now: datetime,
    by_bot: bool = False,
) -> ChatTopic:
    """Send the section's messages to the topic `thread_id` (None: the General topic)."""
    topic = await session.get(ChatTopic, (chat.id, section.id))
    if topic is None:
        topic = ChatTopic(chat_id=chat.id, section_id=section.id, created_at=now)
        session.add(topic)
    topic.thread_id = thread_id
    topic.closed = False
    topic.by_bot = by_bot
    topic.updated_at = now
    await session.flush()
    return topic


@dataclass(frozen=True)
class TopicLine:
    """One followed section in /topic's list."""

    name: str
    slug: str
    thread_id: int | None
    closed: bool
    chosen_general: bool  # an administrator chose the General topic


async def topic_lines(session: AsyncSession, chat: Chat) -> list[TopicLine]:
    """The chat's followed sections by name, with where each goes."""
    rows = await session.execute(
        select(Section, ChatTopic)
        .join(Subscription, Subscription.section_id == Section.id)
        .outerjoin(ChatTopic, (ChatTopic.section_id == Section.id) & (ChatTopic.chat_id == chat.id))
        .where(Subscription.chat_id == chat.id)
        .order_by(Section.name, Section.id)
    )
    return [
        TopicLine(
            section.name,
            section.slug,
            topic.thread_id if topic is not None else None,
            bool(topic is not None and topic.closed),
            topic is not None and topic.thread_id is None,
        )
        for section, topic in rows
    ]


async def record_problems(
    session: AsyncSession, chat_db_id: int, problems: Sequence[TopicProblem], *, now: datetime
) -> None:
    """Apply what Telegram said about topics: forget deleted ones, mark closed ones."""
    deleted = [p.thread_id for p in problems if p.trouble is TopicTrouble.DELETED]
    closed = [p.thread_id for p in problems if p.trouble is TopicTrouble.CLOSED]
    if deleted:
        await session.execute(
            delete(ChatTopic).where(
                ChatTopic.chat_id == chat_db_id, ChatTopic.thread_id.in_(deleted)
            )
        )
    if closed:
        await session.execute(
            update(ChatTopic)
            .where(ChatTopic.chat_id == chat_db_id, ChatTopic.thread_id.in_(closed))
            .values(closed=True, updated_at=now)
            .execution_options(synchronize_session=False)
        )


# ---- creating topics ------------------------------------------------------------------------


class TopicRefusal(enum.StrEnum):
    NO_RIGHTS = "no_rights"  # the bot may not manage topics here
    NOT_FORUM = "not_forum"  # the chat is no forum (any more)
    GONE = "gone"  # the chat is gone for the bot (kicked, deleted)
    FAILED = "failed"  # anything else: try again before a later delivery


class TopicMaker(Protocol):
    """Creates forum topics; implemented by the Telegram adapter (createForumTopic)."""

    async def create_topic(self, chat_id: int, name: str) -> int | TopicRefusal: ...


@dataclass(frozen=True)
class MissingTopic:
    chat_db_id: int
    telegram_id: int
    section_id: int
    name: str


async def missing_topics(session: AsyncSession, chat_ids: Sequence[int]) -> list[MissingTopic]:
    """Followed sections of these forum chats (db ids) that have no topic row, where the bot
    may create topics."""
    if not chat_ids:
        return []
    rows = await session.execute(
        select(Chat.id, Chat.telegram_id, Section.id, Section.name)
        .join(Subscription, Subscription.chat_id == Chat.id)
        .join(Section, Section.id == Subscription.section_id)
        .outerjoin(
            ChatTopic,
            (ChatTopic.chat_id == Chat.id) & (ChatTopic.section_id == Section.id),
        )
        .where(
            Chat.id.in_(list(chat_ids)),
            Chat.is_forum.is_(True),
            Chat.active.is_(True),
            Chat.topic_rights.is_(True),
            ChatTopic.chat_id.is_(None),
        )
        .order_by(Chat.id, Section.name, Section.id)
    )
    return [MissingTopic(*row) for row in rows]


async def ensure_topics(
    sessions: SessionFactory, maker: TopicMaker, chat_ids: Sequence[int], *, now: datetime
) -> int:
    """Create the missing topics of these forum chats (db ids); returns how many were made.

    Telegram is asked outside any transaction; each answer is stored at once, so a topic
    made is never made twice. A chat where the bot may not manage topics is marked so
    (`topic_rights`) and asked no more until an administrator gives the right.
    """
    async with sessions() as session:
        missing = await missing_topics(session, chat_ids)
    made = 0
    refused: set[int] = set()
    for item in missing:
        if item.chat_db_id in refused:
            continue
        answer = await maker.create_topic(item.telegram_id, item.name)
        async with sessions.begin() as session:
            if isinstance(answer, int):
                chat = await session.get(Chat, item.chat_db_id)
                section = await session.get(Section, item.section_id)
                if chat is not None and section is not None:
                    await bind(session, chat, section, answer, now=now, by_bot=True)
                    made += 1
                continue
            refused.add(item.chat_db_id)
            log.info("chat %s: no topic for %s (%s)", item.telegram_id, item.name, answer)
            if answer is TopicRefusal.NO_RIGHTS:
                values: dict[str, object] = {"topic_rights": False}
            elif answer is TopicRefusal.NOT_FORUM:
                values = {"is_forum": False}
            else:
                continue
            await session.execute(
                update(Chat)
                .where(Chat.id == item.chat_db_id)
                .values(**values, updated_at=now)
                .execution_options(synchronize_session=False)
            )
    return made


# ---- /topic ---------------------------------------------------------------------------------


class TopicOutcome(enum.StrEnum):
    """What /topic did (readers/texts.py's topic_answer says it)."""

    NOT_FORUM = "not_forum"  # topics exist only in forum groups: nothing changed
    LIST = "list"  # /topic alone: where each followed section goes (`lines`)
    NO_SECTION = "no_section"  # /topic off without a section
    UNKNOWN_SECTION = "unknown_section"  # no one section by that name (`unknown`)
    TO_GENERAL = "to_general"  # `section` now goes to the General topic
    OUTSIDE = "outside"  # /topic <section> sent in General, not inside a topic
    BOUND = "bound"  # `section` now goes into this topic


@dataclass(frozen=True)
class TopicResult:
    outcome: TopicOutcome
    section: str = ""  # the section's name (TO_GENERAL, BOUND)
    lines: Sequence[TopicLine] = ()  # LIST
    unknown: Sequence[str] = ()  # UNKNOWN_SECTION: the names not understood


async def topic_request(
    session: AsyncSession,
    chat: Chat,
    args: Sequence[str],
    *,
    thread_id: int | None,
    now: datetime,
) -> TopicResult:
    """/topic in a forum: alone, where each section goes; `/topic <section>` inside a topic,
    send that section there; `/topic off <section>`, send it to the General topic."""
    if not chat.is_forum:
        return TopicResult(TopicOutcome.NOT_FORUM)
    if not args:
        return TopicResult(TopicOutcome.LIST, lines=await topic_lines(session, chat))
    off = args[0].casefold() == "off"
    words = args[1:] if off else args
    if not words:
        return TopicResult(TopicOutcome.NO_SECTION)
    found = await resolve_sections(session, [" ".join(words)])
    if found.unknown or len(found.sections) != 1:
        return TopicResult(TopicOutcome.UNKNOWN_SECTION, unknown=found.unknown or [" ".join(words)])
    section = found.sections[0]
    if off:
        await bind(session, chat, section, None, now=now)
        return TopicResult(TopicOutcome.TO_GENERAL, section=section.name)
    if thread_id is None:
        return TopicResult(TopicOutcome.OUTSIDE)
    await bind(session, chat, section, thread_id, now=now)
    return TopicResult(TopicOutcome.BOUND, section=section.name)


# ---- the bot's own membership: channels and groups that add, demote or remove it -----------


class Membership(enum.StrEnum):
    """What a my_chat_member update leaves the bot able to do in a chat."""

    POSTS = "posts"  # it may post: (re)activate the chat
    MUTED = "muted"  # still in it, but may not post (a channel admin without can_post_messages)
    GONE = "gone"  # left, kicked or removed


def membership(
    chat_kind: str, status: str, *, can_post: bool | None, can_send: bool | None
) -> Membership:
    """Sort the bot's new member status: `can_post` is a channel administrator's
    can_post_messages, `can_send` a restricted member's can_send_messages (None: not given)."""
    if status in ("left", "kicked"):
        return Membership.GONE
    if chat_kind == "channel":
        return Membership.POSTS if status == "administrator" and can_post else Membership.MUTED
    if status == "restricted" and can_send is False:
        return Membership.MUTED
    return Membership.POSTS


async def lose_rights(session: AsyncSession, chat: Chat, reason: str, *, now: datetime) -> None:
    """The bot may no longer post here: the chat gets nothing more, like a blocked reader's,
    until its rights come back."""
    chat.active = False
    chat.deactivated_reason = reason[:200]
    chat.updated_at = now
