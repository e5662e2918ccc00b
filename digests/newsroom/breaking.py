"""Editors' breaking news: draft a story, preview it, push it once to the right chats."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n
from digests.db import SessionFactory
from digests.delivery.engine import (
    INTERRUPTED,
    DeliveryConfig,
    Part,
    Photo,
    RoundReport,
    Sender,
    SendPriority,
    Text,
    deliver,
    insert_deliveries,
    pending_ids,
    prepare_topics,
)
from digests.feeds.clean import without_controls
from digests.models import (
    LINK_MAX,
    Article,
    BreakingPush,
    Chat,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    KeywordKind,
    KeywordRule,
    PushStatus,
    Section,
    Subscription,
    article_sections,
)
from digests.newsroom.render import breaking_message
from digests.readers.keywords import muted_phrases_matching
from digests.readers.topics import TopicMaker, routes_of, story_route
from digests.running import OneAtATime
from digests.stories.sections import get_or_create_sections, resolve_sections
from digests.ui.buttons import PushChoice
from digests.ui.render import truncate

log = logging.getLogger(__name__)

_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class Draft:
    push: BreakingPush
    audience: int


async def draft_breaking(
    session: AsyncSession,
    args: Sequence[str],
    *,
    admin_id: int,
    admin_chat_id: int,
    now: datetime,
    default_section: str,
) -> Draft | None:
    """Store the story and a DRAFT push; None when there is nothing to push."""
    words = [cleaned for word in args if (cleaned := without_controls(word).strip())]
    if not words:
        return None
    section: Section | None = None
    found = await resolve_sections(session, [words[0]])
    if found.sections and len(words) > 1 and words[0].lower() != "all":
        section = found.sections[0]
        words = words[1:]
    text = " ".join(words).strip()
    is_link = bool(_URL.match(text)) and len(text) <= LINK_MAX  # a longer one cannot be stored
    article = None
    if is_link:
        article = await session.scalar(select(Article).where(Article.link == text).limit(1))
    if article is None:
        home = section
        if home is None:
            home = (await get_or_create_sections(session, [default_section], now=now))[
                default_section
            ]
        title, _, rest = text.partition("\n")
        article = Article(
            key=f"breaking:{uuid.uuid4().hex}",
            link=text if is_link else None,
            title=truncate(title.strip(), 300),
            summary=truncate(rest.strip(), 600),
            published_at=now.replace(microsecond=0),
            ingested_at=now,
            updated_at=now,
            source="breaking",
            is_breaking=True,
            sections=[home],
        )
        session.add(article)
        await session.flush()
    else:
        article.is_breaking = True
    push = BreakingPush(
        article_id=article.id,
        section_id=section.id if section else None,
        status=PushStatus.DRAFT,
        created_by=admin_id,
        admin_chat_id=admin_chat_id,
        created_at=now,
        updated_at=now,
    )
    session.add(push)
    await session.flush()
    await session.refresh(push, ["article", "section"])
    return Draft(push, await count_audience(session, push.section_id))


def _audience(section_ids: Sequence[int] | Select[int] | None) -> Select[int]:
    """Active chats with alerts on that follow one of the sections (every such chat when
    `section_ids` is None)."""
    query = select(Chat.id).where(Chat.active.is_(True), Chat.alerts.is_(True))
    if section_ids is not None:
        query = query.where(
            Chat.id.in_(
                select(Subscription.chat_id).where(Subscription.section_id.in_(section_ids))
            )
        )
    return query


def _audience_of_push(push: BreakingPush) -> Select[int]:
    if push.to_article_sections:  # a push made through the API: the story's own sections
        return _audience(
            select(article_sections.c.section_id).where(
                article_sections.c.article_id == push.article_id
            )
        )
    return _audience(None if push.section_id is None else [push.section_id])


async def _count(session: AsyncSession, query: Select[int]) -> int:
    return int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)


async def count_audience(session: AsyncSession, section_id: int | None) -> int:
    """Active chats with alerts on that follow the section (every such chat with none)."""
    return await _count(session, _audience(None if section_id is None else [section_id]))


async def count_audience_of(session: AsyncSession, *, article_sections: Sequence[int]) -> int:
    """Active chats with alerts on that follow any of these sections."""
    return await _count(session, _audience(list(article_sections)))


async def confirm(session: AsyncSession, push_id: int, *, now: datetime) -> BreakingPush | None:
    """DRAFT -> SENDING exactly once (double press, two admins); writes the delivery rows.

    Returns the push for the caller that won, None for everyone else.
    """
    if not await _move(session, push_id, PushStatus.DRAFT, PushStatus.SENDING, now=now):
        return None
    push = await session.get(BreakingPush, push_id)
    assert push is not None
    await session.refresh(push)
    await create_rows(session, push, now=now)
    return push


async def create_rows(session: AsyncSession, push: BreakingPush, *, now: datetime) -> None:
    """A PENDING row per target chat; the unique key makes this safe to repeat. Chats that
    /mute a phrase the story matches are left out (the distinct muted phrases are matched
    once against the story, not each reader's)."""
    audience = _audience_of_push(push)
    article = await session.get(Article, push.article_id)
    muted = await muted_phrases_matching(session, article.title, article.summary) if article else []
    if muted:
        audience = audience.where(
            Chat.id.not_in(
                select(KeywordRule.chat_id).where(
                    KeywordRule.kind == KeywordKind.MUTE, KeywordRule.normalized.in_(muted)
                )
            )
        )
    chat_ids = list(await session.scalars(audience))
    await insert_deliveries(
        session,
        [
            {
                "chat_id": chat_id,
                "kind": DeliveryKind.BREAKING,
                "ref": str(push.article_id),
                "article_id": push.article_id,
                "window_start": None,
                "window_end": None,
            }
            for chat_id in chat_ids
        ],
        now=now,
    )


async def cancel(session: AsyncSession, push_id: int, *, now: datetime) -> bool:
    """DRAFT -> CANCELLED; False when it was sent or cancelled already."""
    return await _move(session, push_id, PushStatus.DRAFT, PushStatus.CANCELLED, now=now)


async def _move(
    session: AsyncSession, push_id: int, old: PushStatus, new: PushStatus, *, now: datetime
) -> bool:
    """One atomic status change: of two callers racing, only one sees True."""
    moved = await session.execute(
        update(BreakingPush)
        .where(BreakingPush.id == push_id, BreakingPush.status == old)
        .values(status=new, updated_at=now)
        .returning(BreakingPush.id)
        .execution_options(synchronize_session=False)
    )
    return moved.scalar_one_or_none() is not None


async def finish(session: AsyncSession, push_id: int, *, now: datetime) -> None:
    await session.execute(
        update(BreakingPush)
        .where(BreakingPush.id == push_id, BreakingPush.status == PushStatus.SENDING)
        .values(status=PushStatus.DONE, updated_at=now)
        .execution_options(synchronize_session=False)
    )


async def unfinished(session: AsyncSession) -> list[BreakingPush]:
    """Pushes confirmed but not finished: interrupted by a restart, to be resumed."""
    return list(
        await session.scalars(select(BreakingPush).where(BreakingPush.status == PushStatus.SENDING))
    )


@dataclass(frozen=True)
class PushTally:
    sent: int
    blocked: int
    failed: int
    pending: int
    uncertain: int
    interrupted: int = 0  # of the uncertain: in flight when their process died

    @property
    def total(self) -> int:
        return self.sent + self.blocked + self.failed + self.pending + self.uncertain


async def tally(session: AsyncSession, article_id: int) -> PushTally:
    rows = dict(
        (status, int(count))
        for status, count in await session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.kind == DeliveryKind.BREAKING, Delivery.ref == str(article_id))
            .group_by(Delivery.status)
        )
    )
    return PushTally(
        sent=rows.get(DeliveryStatus.SENT, 0),
        blocked=rows.get(DeliveryStatus.BLOCKED, 0),
        failed=rows.get(DeliveryStatus.FAILED, 0) + rows.get(DeliveryStatus.EMPTY, 0),
        pending=rows.get(DeliveryStatus.PENDING, 0) + rows.get(DeliveryStatus.SENDING, 0),
        uncertain=rows.get(DeliveryStatus.UNCERTAIN, 0),
        interrupted=await session.scalar(
            select(func.count()).where(
                Delivery.kind == DeliveryKind.BREAKING,
                Delivery.ref == str(article_id),
                Delivery.status == DeliveryStatus.UNCERTAIN,
                Delivery.error.startswith(INTERRUPTED),
            )
        )
        or 0,
    )


async def remember_preview(session: AsyncSession, push_id: int, message_id: int) -> None:
    """Note the editor's preview message: the push's progress is shown by editing it."""
    push = await session.get(BreakingPush, push_id)
    if push is not None:
        push.preview_message_id = message_id


class PressOutcome(enum.StrEnum):
    """What Send or Cancel under a preview did (newsroom/texts.py says it)."""

    CANCELLED = "cancelled"
    SENDING = "sending"  # this press confirmed the push
    ALREADY_DECIDED = "already_decided"  # sent or cancelled before (a double press, two editors)


@dataclass(frozen=True)
class Pressed:
    """What Send or Cancel under a preview did; `start` is true for the one press that
    confirmed the push (the caller then runs it)."""

    outcome: PressOutcome
    start: bool = False


async def press(session: AsyncSession, choice: PushChoice, *, now: datetime) -> Pressed:
    """Send or Cancel on a preview: only one press ever starts a push (double press, two
    editors), and a cancelled or sent push stays so."""
    if not choice.send:
        if not await cancel(session, choice.push_id, now=now):
            return Pressed(PressOutcome.ALREADY_DECIDED)
        return Pressed(PressOutcome.CANCELLED)
    if await confirm(session, choice.push_id, now=now) is None:
        return Pressed(PressOutcome.ALREADY_DECIDED)
    return Pressed(PressOutcome.SENDING, start=True)


# ---- running a confirmed push ---------------------------------------------------------------


@dataclass(frozen=True)
class PushProgress:
    """Where a push stands, for the editor who sent it."""

    push_id: int
    title: str
    tally: PushTally
    done: bool
    admin_chat_id: int | None  # None for a push made through the HTTP API
    preview_message_id: int | None
    withdrawn: bool = False


@dataclass(frozen=True)
class PushOutcome:
    report: RoundReport
    rows: int  # delivery rows that were due when the run began
    remaining: int  # rows not settled at its end (waiting out a flood limit, or in flight)


ProgressReport = Callable[[PushProgress], Awaitable[None]]


class PushRunner:
    """Runs confirmed pushes to the end: from the editor's Send, from the resume job after a
    restart, from a benchmark. Each push runs at most once at a time in this process, and
    each chat gets the story at most once in any case (the delivery log sees to that)."""

    def __init__(
        self,
        sessions: SessionFactory,
        sender: Sender,
        *,
        clock: Callable[[], datetime],
        config: DeliveryConfig,
        on_progress: ProgressReport | None = None,
        progress_every: float = 2.0,
        stopping: asyncio.Event | None = None,
        topics: TopicMaker | None = None,
    ) -> None:
        self._topics = topics  # creates forum chats' missing topics before sending
        self._sessions = sessions
        self._sender = sender
        self._clock = clock
        self._config = config
        self._on_progress = on_progress
        self._progress_every = progress_every
        self._stopping = stopping  # set: claim no more rows (the process is stopping)
        self._running = OneAtATime()

    async def unfinished(self) -> list[int]:
        """Confirmed pushes not finished (a restart interrupted them or a flood limit delayed
        some of their chats) and not running here now."""
        async with self._sessions() as session:
            return [push.id for push in await unfinished(session) if push.id not in self._running]

    async def run(self, push_id: int) -> PushOutcome | None:
        """Deliver every due row of the push, report progress as it goes, and mark it done
        when no row is left; None when the push is unknown or already running here."""
        return await self._running.run(push_id, lambda: self._run(push_id))

    async def _run(self, push_id: int) -> PushOutcome | None:
        async with self._sessions() as session:
            push = await session.get(BreakingPush, push_id)
            if push is None:
                return None
            # rendered once per language, each chat gets its own
            by_language: dict[str, Part] = {}
            for language in i18n.LANGUAGES:
                with i18n.use(language):
                    by_language[language] = breaking_message(push.article)
            article_id = push.article_id
            # a forum gets it in the topic of the story's first section it follows
            story_sections = [
                *([push.section_id] if push.section_id is not None else []),
                *(section.id for section in push.article.sections),
            ]
        ids = await pending_ids(
            self._sessions, now=self._clock(), kind=DeliveryKind.BREAKING, article_id=article_id
        )
        if ids and self._topics is not None:
            await prepare_topics(
                self._sessions,
                self._topics,
                now=self._clock(),
                kind=DeliveryKind.BREAKING,
                article_id=article_id,
            )

        async def render(
            _session: AsyncSession, pairs: list[tuple[Delivery, Chat]]
        ) -> dict[int, list[Part]]:
            default = by_language[i18n.SOURCE]
            forums = [chat.id for _row, chat in pairs if chat.is_forum]
            threads = await story_threads(_session, forums, story_sections)
            return {
                row.id: [in_thread(by_language.get(chat.language, default), threads.get(chat.id))]
                for row, chat in pairs
            }

        last_report: list[datetime] = []

        async def progress(_report: RoundReport) -> None:
            now = self._clock()
            if last_report and (now - last_report[0]).total_seconds() < self._progress_every:
                return
            last_report[:] = [now]
            await self._report(push_id)

        report = await deliver(
            self._sessions,
            self._sender,
            ids,
            now=self._clock,
            config=self._config,
            render=render,
            priority=SendPriority.BREAKING,
            progress=progress if self._on_progress else None,
            stopping=self._stopping,
        )
        # Rows still open are waiting out a flood limit (a later resume sends them), another
        # instance's sends in flight, or a crashed one's that may have arrived: the push ends
        # once they are settled (the digest round reports a dead process's rows uncertain
        # when their lease is over).
        state = await self._state(push_id, done=False)
        if state is None:
            return None
        done = state.tally.pending == 0
        if done:
            async with self._sessions.begin() as session:
                await finish(session, push_id, now=self._clock())
        if self._on_progress is not None:
            await self._on_progress(dataclasses.replace(state, done=done))
        return PushOutcome(report, rows=len(ids), remaining=state.tally.pending)

    async def _report(self, push_id: int) -> None:
        if self._on_progress is not None and (state := await self._state(push_id, done=False)):
            await self._on_progress(state)

    async def _state(self, push_id: int, *, done: bool) -> PushProgress | None:
        async with self._sessions() as session:
            push = await session.get(BreakingPush, push_id)
            if push is None:
                return None
            return PushProgress(
                push_id=push_id,
                title=push.article.title,
                tally=await tally(session, push.article_id),
                done=done,
                admin_chat_id=push.admin_chat_id,
                preview_message_id=push.preview_message_id,
                withdrawn=push.withdrawn_at is not None,
            )


async def story_threads(
    session: AsyncSession, forum_chats: Sequence[int], story_sections: Sequence[int]
) -> dict[int, int]:
    """The topic (message_thread_id) each forum chat (db id) gets a story in; chats whose
    story goes to the General topic are left out."""
    if not forum_chats:
        return {}
    followed: dict[int, set[int]] = {}
    for chat_id, section_id in await session.execute(
        select(Subscription.chat_id, Subscription.section_id).where(
            Subscription.chat_id.in_(list(forum_chats))
        )
    ):
        followed.setdefault(chat_id, set()).add(section_id)
    routes = await routes_of(session, forum_chats)
    found: dict[int, int] = {}
    for chat_id in forum_chats:
        route = story_route(story_sections, followed.get(chat_id, set()), routes.get(chat_id, {}))
        if route.thread_id is not None:
            found[chat_id] = route.thread_id
    return found


def in_thread(part: Part, thread: int | None) -> Part:
    """The part sent into a forum topic (as it is for the General topic or any other chat)."""
    if thread is None:
        return part
    if isinstance(part, Photo):
        return dataclasses.replace(part, thread=thread)
    if isinstance(part, Text):
        return dataclasses.replace(part, thread=thread)
    return Text(part, thread=thread)
