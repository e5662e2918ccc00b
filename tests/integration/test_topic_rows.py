"""Forum topics on real databases: the chat_topics table, topic creation, and digest
deliveries whose parts go to topics (and what Telegram's answers about them change)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, select, text

from digests.db import SessionFactory, make_engine, upgrade
from digests.delivery.config import DeliveryConfig
from digests.delivery.ports import BeforeSend, Outcome, Part, SendPriority, SendResult, Text
from digests.digest.rounds import run_digest_round
from digests.models import (
    Article,
    Chat,
    ChatKind,
    ChatTopic,
    Delivery,
    DeliveryStatus,
    Section,
    Subscription,
)
from digests.readers.topics import (
    TopicProblem,
    TopicRefusal,
    TopicTrouble,
    bind,
    ensure_topics,
    missing_topics,
    record_problems,
    routes_of,
    topic_lines,
)
from tests.migrations import chat_columns, downgrade_to, table_names

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
_ids = itertools.count(-1_000_000, -1)


async def seed(factory: SessionFactory, *, forum: bool = True) -> tuple[int, dict[str, int]]:
    """A forum chat due for its digest, following World and Sports, with a story in each."""
    async with factory.begin() as session:
        sections = {
            name: Section(slug=name.lower(), name=name, created_at=NOW)
            for name in ("Sports", "World", "Culture")
        }
        session.add_all(sections.values())
        await session.flush()
        for n, name in enumerate(("Sports", "World")):
            session.add(
                Article(
                    key=f"{name}-{n}",
                    link=f"https://x.example/{n}",
                    title=f"{name} story <{n}>",
                    summary="",
                    published_at=NOW - timedelta(hours=2),
                    ingested_at=NOW - timedelta(hours=1),
                    updated_at=NOW,
                    sections=[sections[name]],
                )
            )
        chat = Chat(
            telegram_id=next(_ids),
            kind=ChatKind.SUPERGROUP,
            timezone="UTC",
            digest_time="08:00",
            next_digest_at=NOW,
            last_digest_at=NOW - timedelta(days=1),
            alerts=True,
            active=True,
            is_forum=forum,
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(chat)
        await session.flush()
        for name in ("Sports", "World"):
            session.add(Subscription(chat_id=chat.id, section_id=sections[name].id, created_at=NOW))
        return chat.id, {name: s.id for name, s in sections.items()}


async def test_topic_rows_map_sections_and_follow_telegrams_answers(
    session_factory: SessionFactory,
) -> None:
    chat_id, sections = await seed(session_factory)
    async with session_factory.begin() as session:
        chat = await session.get(Chat, chat_id)
        assert chat is not None
        sports = await session.get(Section, sections["Sports"])
        world = await session.get(Section, sections["World"])
        assert sports is not None and world is not None
        assert [m.name for m in await missing_topics(session, [chat_id])] == ["Sports", "World"]
        await bind(session, chat, sports, 11, now=NOW)
        await bind(session, chat, world, 12, now=NOW, by_bot=True)
        await bind(session, chat, world, 13, now=NOW)  # rebound by an administrator
        assert await missing_topics(session, [chat_id]) == []
    async with session_factory.begin() as session:
        routes = (await routes_of(session, [chat_id]))[chat_id]
        assert {s: r.thread_id for s, r in routes.items()} == {
            sections["Sports"]: 11,
            sections["World"]: 13,
        }
        await record_problems(
            session,
            chat_id,
            [TopicProblem(11, TopicTrouble.CLOSED), TopicProblem(13, TopicTrouble.DELETED)],
            now=NOW,
        )
    async with session_factory() as session:
        chat = await session.get(Chat, chat_id)
        assert chat is not None
        lines = await topic_lines(session, chat)
        assert [(line.name, line.thread_id, line.closed) for line in lines] == [
            ("Sports", 11, True),
            ("World", None, False),
        ]
        assert [m.name for m in await missing_topics(session, [chat_id])] == ["World"]
    # a chat's topics go with it
    async with session_factory.begin() as session:
        await session.execute(delete(Chat).where(Chat.id == chat_id))
    async with session_factory() as session:
        assert list(await session.scalars(select(ChatTopic))) == []


class Maker:
    def __init__(self, answers: Sequence[int | TopicRefusal]) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def create_topic(self, chat_id: int, name: str) -> int | TopicRefusal:
        self.asked.append(name)
        return self.answers.pop(0)


async def test_missing_topics_are_made_once_and_a_refusal_stops_asking(
    session_factory: SessionFactory,
) -> None:
    chat_id, _sections = await seed(session_factory)
    maker = Maker([21, TopicRefusal.NO_RIGHTS])
    assert await ensure_topics(session_factory, maker, [chat_id], now=NOW) == 1
    assert await ensure_topics(session_factory, maker, [chat_id], now=NOW) == 0
    assert maker.asked == ["Sports", "World"]  # asked again only for the one not made
    async with session_factory() as session:
        chat = await session.get(Chat, chat_id)
        assert chat is not None and chat.topic_rights is False
        assert [t.thread_id for t in await session.scalars(select(ChatTopic))] == [21]
    # no rights: never asked again
    assert await ensure_topics(session_factory, Maker([]), [chat_id], now=NOW) == 0


class Recorder:
    """A Sender that records what it is asked to send and answers as told."""

    def __init__(self, answer: Outcome = Outcome.SENT, problems: tuple[TopicProblem, ...] = ()):
        self.sent: list[list[Part]] = []
        self.answer = answer
        self.problems = problems

    async def send(
        self,
        chat_id: int,
        texts: Sequence[Part],
        *,
        priority: SendPriority,
        before_send: BeforeSend | None = None,
    ) -> SendResult:
        if before_send is not None and not await before_send():
            return SendResult(Outcome.WITHDRAWN)
        self.sent.append(list(texts))
        if self.answer is Outcome.SENT:
            return SendResult(
                Outcome.SENT, tuple(range(1, len(texts) + 1)), topic_problems=self.problems
            )
        # the first part went out, the second was refused for good
        return SendResult(self.answer, (1,), error="400: Need administrator rights")


async def test_a_forum_digest_is_one_row_with_a_part_per_topic(
    session_factory: SessionFactory,
) -> None:
    chat_id, sections = await seed(session_factory)
    async with session_factory.begin() as session:
        chat = await session.get(Chat, chat_id)
        sports = await session.get(Section, sections["Sports"])
        assert chat is not None and sports is not None
        await bind(session, chat, sports, 31, now=NOW)
    sender = Recorder(problems=(TopicProblem(31, TopicTrouble.DELETED),))
    maker = Maker([TopicRefusal.FAILED])  # World's topic could not be made this time
    report = await run_digest_round(
        session_factory, sender, now=lambda: NOW, config=DeliveryConfig(), topics=maker
    )
    assert maker.asked == ["World"]
    assert report.sent == 1
    [parts] = sender.sent
    assert all(isinstance(p, Text) for p in parts)
    texts = [p for p in parts if isinstance(p, Text)]
    assert [(p.thread, "Sports story" in p.html, "World story" in p.html) for p in texts] == [
        (31, True, False),
        (None, False, True),
    ]
    assert "&lt;0&gt;" in texts[0].html  # story titles escaped as ever
    assert [bool(p.buttons) for p in texts] == [False, True]
    async with session_factory() as session:
        [row] = list(await session.scalars(select(Delivery)))
        assert (row.status, row.message_ids) == (DeliveryStatus.SENT, "1,2")
        # the deleted topic is forgotten: the next digest goes to General (or a new topic)
        assert list(await session.scalars(select(ChatTopic))) == []


async def test_lost_rights_midway_keep_the_parts_sent_and_stop_the_chat(
    session_factory: SessionFactory,
) -> None:
    chat_id, sections = await seed(session_factory)
    async with session_factory.begin() as session:
        chat = await session.get(Chat, chat_id)
        world = await session.get(Section, sections["World"])
        assert chat is not None and world is not None
        await bind(session, chat, world, 41, now=NOW)
    sender = Recorder(Outcome.BLOCKED)
    report = await run_digest_round(
        session_factory, sender, now=lambda: NOW, config=DeliveryConfig()
    )
    assert (report.sent, report.blocked) == (0, 1)
    later = NOW + timedelta(days=1)
    again = await run_digest_round(
        session_factory, sender, now=lambda: later, config=DeliveryConfig()
    )
    assert (again.scheduled, again.blocked) == (0, 0)
    assert len(sender.sent) == 1  # never retried
    async with session_factory() as session:
        [row] = list(await session.scalars(select(Delivery)))
        assert (row.status, row.message_ids) == (DeliveryStatus.BLOCKED, "1")
        chat = await session.get(Chat, chat_id)
        assert chat is not None and not chat.active


def _tables_and_columns(connection: Connection) -> tuple[set[str], set[str]]:
    return table_names(connection), chat_columns(connection)


async def test_migration_0011_keeps_chats_and_goes_down_cleanly(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(downgrade_to, "0008")
            tables, columns = await connection.run_sync(_tables_and_columns)
            assert "chat_topics" not in tables and "is_forum" not in columns
            await connection.execute(
                text(
                    "INSERT INTO chats (telegram_id, kind, timezone, digest_time, alerts, "
                    "active, created_at, updated_at) VALUES (4343, 'supergroup', 'UTC', "
                    "'08:00', :yes, :yes, :at, :at)"
                ),
                {"yes": True, "at": NOW.replace(tzinfo=None)},
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            tables, columns = await connection.run_sync(_tables_and_columns)
            assert "chat_topics" in tables and {"is_forum", "topic_rights"} <= columns
            row = (
                await connection.execute(
                    text("SELECT is_forum, topic_rights FROM chats WHERE telegram_id = 4343")
                )
            ).one()
        assert (bool(row[0]), bool(row[1])) == (False, True)
    finally:
        await engine.dispose()
