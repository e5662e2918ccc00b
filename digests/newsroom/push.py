"""The push service: every breaking push starts and runs here, whoever asked for it.

An editor's /breaking Send (once digests/newsroom/breaking.py confirmed the draft), the API's
POST /pushes (`open_push`, then the push is started once its transaction committed), the
resume job after a restart or a flood limit, and the benchmark all go through one
`PushRunner`: `start` runs a push in the background, `run` runs it to the end and returns
what happened. It renders the story once per language and hands it to the send engine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n
from digests.db import SessionFactory
from digests.delivery.config import DeliveryConfig
from digests.delivery.engine import deliver, pending_ids, prepare_topics
from digests.delivery.ports import Part, Photo, RoundReport, Sender, SendPriority, Text
from digests.models import (
    Article,
    BreakingPush,
    Chat,
    Delivery,
    DeliveryKind,
    PushOrigin,
    PushStatus,
    Subscription,
)
from digests.newsroom.breaking import PushProgress, create_rows, finish, tally, unfinished
from digests.newsroom.render import breaking_message
from digests.readers.topics import TopicMaker, routes_of, story_route
from digests.running import OneAtATime

log = logging.getLogger(__name__)


# ---- opening a push of a stored story (the API's) -------------------------------------------


@dataclass(frozen=True)
class Started:
    push: BreakingPush
    audience: int


class AlreadyPushed(Exception):
    def __init__(self, push_id: int) -> None:
        super().__init__(f"this story was pushed already (push {push_id})")
        self.push_id = push_id


async def open_push(session: AsyncSession, article: Article, *, now: datetime) -> Started:
    """Confirm a push of the story to its sections' readers with alerts on, and write its
    delivery rows (sending starts once the caller commits). A story is pushed once: a second
    request gets AlreadyPushed with the first push's id."""
    earlier = await session.scalar(
        select(BreakingPush.id)
        .where(
            BreakingPush.article_id == article.id,
            BreakingPush.status.in_([PushStatus.SENDING, PushStatus.DONE]),
        )
        .order_by(BreakingPush.id)
        .limit(1)
    )
    if earlier is not None:
        raise AlreadyPushed(earlier)
    article.is_breaking = True
    push = BreakingPush(
        article_id=article.id,
        section_id=None,
        status=PushStatus.SENDING,
        created_by=None,
        admin_chat_id=None,
        origin=PushOrigin.API,
        to_article_sections=True,
        created_at=now,
        updated_at=now,
    )
    session.add(push)
    await session.flush()
    await create_rows(session, push, now=now)
    audience = await tally(session, article.id)
    return Started(push, audience.total)


# ---- running a confirmed push ---------------------------------------------------------------


@dataclass(frozen=True)
class PushOutcome:
    report: RoundReport
    rows: int  # delivery rows that were due when the run began
    remaining: int  # rows not settled at its end (waiting out a flood limit, or in flight)


ProgressReport = Callable[[PushProgress], Awaitable[None]]


class Spawn(Protocol):
    """Runs a coroutine in the background (the bot's: the application's create_task, which
    waits for it at shutdown)."""

    def __call__(self, coroutine: Coroutine[Any, Any, Any], *, name: str) -> object: ...


class PushRunner:
    """The push service: runs confirmed pushes to the end, for the editor's Send, the API,
    the resume job after a restart and the benchmark alike. Each push runs at most once at a
    time in this process, and each chat gets the story at most once in any case (the
    delivery log sees to that)."""

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
        spawn: Spawn | None = None,
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
        self._spawn = spawn or self._spawn_here
        self._background: set[asyncio.Task[Any]] = set()

    def start(self, push_id: int) -> None:
        """Run a confirmed push in the background: the editor's Send, the API's push once its
        transaction committed, the resume job."""
        self._spawn(self.run(push_id), name=f"push-{push_id}")

    async def resume(self) -> list[int]:
        """Start the pushes a restart interrupted or a flood limit delayed; each chat still
        gets the story at most once. Returns their ids."""
        push_ids = await self.unfinished()
        for push_id in push_ids:
            log.info("resuming breaking push %s", push_id)
            self.start(push_id)
        return push_ids

    def _spawn_here(self, coroutine: Coroutine[Any, Any, Any], *, name: str) -> object:
        """A background task of this runner's own (when no spawn was given), kept until done."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

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
