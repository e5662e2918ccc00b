"""Running corrections and withdrawals: `ActionRunner` edits or deletes each delivered message
of a push once per action, through the `Editor` port (the Telegram adapter implements it).

The rules (who may ask, what a note may say, which messages an action goes over) are in
digests/newsroom/corrections.py; see its docstring for the claim protocol of the rows.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n
from digests.db import SessionFactory
from digests.models import (
    Chat,
    Delivery,
    PushAction,
    PushActionKind,
)
from digests.newsroom.corrections import (
    DELETE_WINDOW,
    PHOTO,
    due_rows,
    of_article,
)
from digests.newsroom.render import CAPTION_MAX, breaking_story
from digests.running import OneAtATime

log = logging.getLogger(__name__)

# ---- running --------------------------------------------------------------------------------


class EditOutcome(enum.StrEnum):
    EDITED = "edited"  # edited, or deleted for a withdrawal
    UNCHANGED = "unchanged"  # "message is not modified": it already shows this (edited)
    TOO_OLD = "too_old"  # Telegram no longer lets us delete it (48 hours)
    GONE = "gone"  # the message or the chat is gone (deleted, blocked the bot)
    FAILED = "failed"
    RETRY_LATER = "retry_later"  # a flood limit too long for the rate limiter to wait out


@dataclass(frozen=True)
class EditResult:
    outcome: EditOutcome
    retry_after: float | None = None
    error: str | None = None


class Editor(Protocol):
    """Edits and deletes sent messages; implemented by the Telegram adapter (at bulk
    priority, within the rate limits)."""

    async def edit(self, chat_id: int, message_id: int, text: str, *, photo: bool) -> EditResult:
        """Replace a text message's text, or a photo's caption (`photo`)."""
        ...

    async def delete(self, chat_id: int, message_id: int) -> EditResult: ...


@dataclass(frozen=True)
class ActionProgress:
    """Where an action stands, for the editor who asked for it (from its counters)."""

    action_id: int
    push_id: int
    kind: PushActionKind
    title: str
    edited: int
    failed: int
    too_old: int
    remaining: int  # rows not done yet (in flight, or waiting out a flood limit)
    done: bool
    admin_chat_id: int | None
    report_message_id: int | None

    @property
    def withdrawal(self) -> bool:
        return self.kind is PushActionKind.WITHDRAW


ActionReport = Callable[[ActionProgress], Awaitable[None]]


@dataclass(frozen=True)
class _Job:
    row_id: int
    telegram_id: int
    message_ids: tuple[int, ...]
    photo: bool
    sent_at: datetime
    active: bool
    language: str = i18n.SOURCE  # the chat's: the corrected story is rendered in it


class ActionRunner:
    """Runs corrections and withdrawals to the end: right after the editor's confirmation,
    from the resume job after a restart, or for the HTTP API. Each action runs at most once
    at a time in this process; each row is handled once per action in any case."""

    def __init__(
        self,
        sessions: SessionFactory,
        editor: Editor,
        *,
        clock: Callable[[], datetime],
        on_progress: ActionReport | None = None,
        stopping: asyncio.Event | None = None,
        batch: int = 10,
        lease: timedelta = timedelta(minutes=5),
        progress_every: float = 2.0,
    ) -> None:
        self._sessions = sessions
        self._editor = editor
        self._clock = clock
        self._on_progress = on_progress
        self._stopping = stopping
        self._batch = batch
        self._lease = lease
        self._progress_every = progress_every
        self._running = OneAtATime()

    async def unfinished(self) -> list[int]:
        """Actions not done (a restart interrupted them or a flood limit delayed some rows)
        and not running here now."""
        async with self._sessions() as session:
            ids = await session.scalars(
                select(PushAction.id).where(PushAction.done.is_(False)).order_by(PushAction.id)
            )
            return [action_id for action_id in ids if action_id not in self._running]

    async def run(self, action_id: int) -> ActionProgress | None:
        """Edit or delete every due message of the action, report progress as it goes, and
        mark it done when no row is left; None when it is unknown or already running here."""
        return await self._running.run(action_id, lambda: self._run(action_id))

    async def _run(self, action_id: int) -> ActionProgress | None:
        async with self._sessions() as session:
            action = await session.get(PushAction, action_id)
            if action is None:
                return None
            kind, note, done = action.kind, action.note, action.done
            article = action.push.article
            article_id = article.id
            texts: dict[tuple[str, bool], str] = {}
            for language in i18n.LANGUAGES:
                with i18n.use(language):
                    texts[language, False] = breaking_story(article, correction=note)
                    texts[language, True] = breaking_story(
                        article, correction=note, limit=CAPTION_MAX, credit=True
                    )
        claim = uuid.uuid4().hex
        last_report: list[datetime] = []
        worked = False  # a run that changed nothing does not report (a resume tick's)
        while not done:
            if self._stopping is not None and self._stopping.is_set():
                break
            jobs = await self._claim(action_id, article_id, claim)
            if jobs is None:  # superseded by a newer action (or withdrawn meanwhile)
                break
            if not jobs:
                break
            results = await asyncio.gather(
                *(self._act(job, kind, texts) for job in jobs), return_exceptions=True
            )
            outcomes: list[tuple[_Job, EditResult]] = []
            for job, result in zip(jobs, results, strict=True):
                if isinstance(result, BaseException):
                    if not isinstance(result, Exception):
                        raise result
                    log.error("action %s: chat %s failed: %r", action_id, job.telegram_id, result)
                    result = EditResult(EditOutcome.FAILED, error=repr(result))
                outcomes.append((job, result))
            await self._record(action_id, kind, claim, outcomes)
            worked = True
            now = self._clock()
            if self._on_progress is not None and (
                not last_report or (now - last_report[0]).total_seconds() >= self._progress_every
            ):
                last_report[:] = [now]
                if (state := await self.progress(action_id)) is not None:
                    await self._on_progress(state)
        state = await self.progress(action_id)
        if state is None:
            return None
        if not state.done and state.remaining == 0:
            async with self._sessions.begin() as session:
                await session.execute(
                    update(PushAction)
                    .where(PushAction.id == action_id, PushAction.done.is_(False))
                    .values(done=True, updated_at=self._clock())
                    .execution_options(synchronize_session=False)
                )
            state = await self.progress(action_id)
            assert state is not None
            worked = True
        if self._on_progress is not None and worked:
            await self._on_progress(state)
        return state

    async def progress(self, action_id: int) -> ActionProgress | None:
        """The action as its counters and the rows still to do show it."""
        async with self._sessions() as session:
            action = await session.get(PushAction, action_id)
            if action is None:
                return None
            remaining = 0
            if not action.done:
                remaining = int(
                    await session.scalar(
                        select(func.count()).where(
                            *of_article(action.push.article_id), *due_rows(action_id)
                        )
                    )
                    or 0
                )
            return ActionProgress(
                action_id=action.id,
                push_id=action.push_id,
                kind=action.kind,
                title=action.push.article.title,
                edited=action.edited,
                failed=action.failed,
                too_old=action.too_old,
                remaining=remaining,
                done=action.done,
                admin_chat_id=action.admin_chat_id,
                report_message_id=action.report_message_id,
            )

    async def _claim(self, action_id: int, article_id: int, claim: str) -> list[_Job] | None:
        """Claim the next batch of free rows; None when the action is done (superseded)."""
        now = self._clock()
        async with self._sessions.begin() as session:
            done = await session.scalar(select(PushAction.done).where(PushAction.id == action_id))
            if done is None or done:
                return None
            free = (
                *of_article(article_id),
                *due_rows(action_id),
                or_(
                    Delivery.claimed_by.is_(None),
                    Delivery.not_before.is_(None),
                    Delivery.not_before <= now,
                ),
            )
            ids = list(
                await session.scalars(
                    select(Delivery.id).where(*free).order_by(Delivery.id).limit(self._batch)
                )
            )
            if not ids:
                return []
            # compare-and-set: of two workers that read the same rows, one wins each
            won = await session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), *free)
                .values(claimed_by=claim, not_before=now + self._lease)
                .returning(Delivery.id)
                .execution_options(synchronize_session=False)
            )
            mine = list(won.scalars())
            rows = await session.execute(
                select(
                    Delivery.id,
                    Chat.telegram_id,
                    Delivery.message_ids,
                    Delivery.media,
                    Delivery.updated_at,
                    Chat.active,
                    Chat.language,
                )
                .join(Chat, Chat.id == Delivery.chat_id)
                .where(Delivery.id.in_(mine))
                .order_by(Delivery.id)
            )
            return [
                _Job(row_id, telegram_id, _parse_ids(raw), media == PHOTO, sent_at, active, lang)
                for row_id, telegram_id, raw, media, sent_at, active, lang in rows
            ]

    async def _act(
        self, job: _Job, kind: PushActionKind, texts: dict[tuple[str, bool], str]
    ) -> EditResult:
        if not job.message_ids:
            return EditResult(EditOutcome.FAILED, error="no message id was recorded")
        if not job.active:
            return EditResult(EditOutcome.GONE, error="chat is inactive")
        if kind is PushActionKind.WITHDRAW:
            if self._clock() - job.sent_at >= DELETE_WINDOW:
                return EditResult(EditOutcome.TOO_OLD)
            results = [
                await self._editor.delete(job.telegram_id, message_id)
                for message_id in job.message_ids
            ]
            return _worst(results)
        # A breaking story is one message (a photo's caption, or a text); parts after the
        # first, if a future sender splits one, keep their text.
        return await self._editor.edit(
            job.telegram_id,
            job.message_ids[0],
            texts.get((job.language, job.photo), texts[i18n.SOURCE, job.photo]),
            photo=job.photo,
        )

    async def _record(
        self,
        action_id: int,
        kind: PushActionKind,
        claim: str,
        outcomes: list[tuple[_Job, EditResult]],
    ) -> None:
        """Write the batch's outcomes and add them to the action's counters, in one
        transaction; only rows this claim still holds count."""
        now = self._clock()
        groups: dict[str, list[int]] = {"edited": [], "failed": [], "too_old": []}
        later: list[tuple[int, float]] = []
        for job, result in outcomes:
            match result.outcome:
                case EditOutcome.EDITED | EditOutcome.UNCHANGED:
                    groups["edited"].append(job.row_id)
                case EditOutcome.TOO_OLD:
                    groups["too_old"].append(job.row_id)
                case EditOutcome.RETRY_LATER:
                    later.append((job.row_id, result.retry_after or 30.0))
                case _:
                    log.warning(
                        "%s of push action %s in chat %s: %s (%s)",
                        kind.value,
                        action_id,
                        job.telegram_id,
                        result.outcome.value,
                        result.error,
                    )
                    groups["failed"].append(job.row_id)
        async with self._sessions.begin() as session:
            counts: dict[str, int] = {}
            for name, ids in groups.items():
                if not ids:
                    continue
                written = await session.execute(
                    update(Delivery)
                    .where(Delivery.id.in_(ids), Delivery.claimed_by == claim)
                    .values(action_id=action_id, claimed_by=None, not_before=None)
                    .returning(Delivery.id)
                    .execution_options(synchronize_session=False)
                )
                counts[name] = len(list(written.scalars()))
            for row_id, wait in later:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.id == row_id, Delivery.claimed_by == claim)
                    .values(not_before=now + timedelta(seconds=wait))
                    .execution_options(synchronize_session=False)
                )
            if counts:
                await session.execute(
                    update(PushAction)
                    .where(PushAction.id == action_id)
                    .values(
                        edited=PushAction.edited + counts.get("edited", 0),
                        failed=PushAction.failed + counts.get("failed", 0),
                        too_old=PushAction.too_old + counts.get("too_old", 0),
                        updated_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
        if later:
            log.warning("push action %s: %d messages wait out a flood limit", action_id, len(later))


async def set_report_message(session: AsyncSession, action_id: int, message_id: int) -> None:
    """Note the editor's message that shows the action's progress."""
    await session.execute(
        update(PushAction)
        .where(PushAction.id == action_id)
        .values(report_message_id=message_id)
        .execution_options(synchronize_session=False)
    )


_SEVERITY = (
    EditOutcome.EDITED,
    EditOutcome.UNCHANGED,
    EditOutcome.TOO_OLD,
    EditOutcome.GONE,
    EditOutcome.FAILED,
    EditOutcome.RETRY_LATER,
)


def _worst(results: list[EditResult]) -> EditResult:
    return max(results, key=lambda result: _SEVERITY.index(result.outcome))


def _parse_ids(raw: str | None) -> tuple[int, ...]:
    if not raw:
        return ()
    return tuple(int(part) for part in raw.split(",") if part.strip().isdigit())
