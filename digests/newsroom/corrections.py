"""Corrections and withdrawals of a sent breaking push: one pass over its delivered messages.

An action (`PushAction`) is requested once (`request_action`), then run (`ActionRunner`):
every SENT delivery row of the push whose `action_id` is NULL or older than the action is
edited (a correction: the story as stored now plus a "Corrected: ..." note) or deleted (a
withdrawal: Telegram lets a bot delete its messages for 48 hours only; an older one is
counted too old without asking Telegram).

Each row is handled at most once per action, by one worker, even with several instances:

    free --claim (CAS: claimed_by, not_before = now + lease)--> held --outcome--> done
                                                                  \\--429--> held until then

A claim is a compare-and-set UPDATE on the row (the same `claimed_by` / `not_before` columns
the delivery engine uses for PENDING rows; an action only touches SENT rows). The outcome
is recorded, with the action's counters, only by the claim that holds the row, and it sets
`action_id`, so a row is counted once. A claim whose process died is free again once its
lease is over: then the row is edited once more (harmless: an unchanged edit is "not
modified", counted edited) or its deletion is tried again (the message is then "not
found", counted failed). The counters of `PushAction` are the reports' only source.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n
from digests.db import SessionFactory
from digests.feeds.clean import without_controls
from digests.models import (
    TITLE_MAX,
    Article,
    BreakingPush,
    Chat,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    PushAction,
    PushActionKind,
    PushOrigin,
    PushStatus,
)
from digests.newsroom.render import CAPTION_MAX, breaking_story
from digests.running import OneAtATime
from digests.ui.render import truncate

log = logging.getLogger(__name__)

NOTE_MAX = 200
"""A correction note's length at most (characters): it is one line under the story."""
SUMMARY_MAX = 3000
"""A corrected story's text at most: with the title and the note it fits one message."""
DELETE_WINDOW = timedelta(hours=48)
"""Telegram lets a bot delete its own messages for this long after sending them."""
PHOTO = "photo"
"""`Delivery.media` of a message sent as a photo with a caption."""


# ---- requesting -----------------------------------------------------------------------------


class RefusalCode(enum.StrEnum):
    UNKNOWN_PUSH = "unknown_push"
    NOT_SENT = "not_sent"  # a draft, cancelled, or still going out
    WITHDRAWN = "withdrawn"
    EMPTY_NOTE = "empty_note"
    NOTE_TOO_LONG = "note_too_long"


@dataclass(frozen=True)
class Refusal:
    """Why an action was not started: a code for the HTTP API (newsroom/texts.py's refusal()
    says it in a plain sentence for people)."""

    code: RefusalCode


async def request_action(
    session: AsyncSession,
    push_id: int,
    kind: PushActionKind,
    *,
    note: str | None,
    origin: PushOrigin,
    created_by: int | None,
    admin_chat_id: int | None,
    now: datetime,
) -> PushAction | Refusal:
    """Record a correction or withdrawal of a sent push (the caller then runs it).

    A withdrawal marks the push withdrawn (once: of two racing, one is refused); nothing is
    done to a withdrawn push any more. A new action supersedes an unfinished one of the same
    push (it is marked done, and the new one does the rows it left). The caller owns the
    transaction."""
    cleaned = clean_note(note)
    if (refused := note_refusal(kind, cleaned)) is not None:
        return refused
    push = await actionable_push(session, push_id)
    if isinstance(push, Refusal):
        return push
    if kind is PushActionKind.WITHDRAW:
        won = await session.execute(
            update(BreakingPush)
            .where(BreakingPush.id == push_id, BreakingPush.withdrawn_at.is_(None))
            .values(withdrawn_at=now, updated_at=now)
            .returning(BreakingPush.id)
            .execution_options(synchronize_session=False)
        )
        if won.scalar_one_or_none() is None:
            return Refusal(RefusalCode.WITHDRAWN)
    await session.execute(
        update(PushAction)
        .where(PushAction.push_id == push_id, PushAction.done.is_(False))
        .values(done=True, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    action = PushAction(
        push_id=push_id,
        kind=kind,
        note=cleaned or None,
        done=False,
        edited=0,
        failed=0,
        too_old=0,
        origin=origin,
        created_by=created_by,
        admin_chat_id=admin_chat_id,
        created_at=now,
        updated_at=now,
    )
    session.add(action)
    await session.flush()
    return action


def clean_note(note: str | None) -> str:
    """The note as readers see it: one line, no control characters."""
    return " ".join(without_controls(note or "").split())


def note_refusal(kind: PushActionKind, note: str) -> Refusal | None:
    """Why this (cleaned) note will not do, if it will not: a correction needs one."""
    if kind is PushActionKind.CORRECT and not note:
        return Refusal(RefusalCode.EMPTY_NOTE)
    if len(note) > NOTE_MAX:
        return Refusal(RefusalCode.NOTE_TOO_LONG)
    return None


async def actionable_push(session: AsyncSession, push_id: int) -> BreakingPush | Refusal:
    """The push, if it may be corrected or withdrawn now (sent, and not withdrawn)."""
    push = await session.get(BreakingPush, push_id, populate_existing=True)
    if push is None:
        return Refusal(RefusalCode.UNKNOWN_PUSH)
    if push.status is not PushStatus.DONE:
        return Refusal(RefusalCode.NOT_SENT)
    if push.withdrawn_at is not None:
        return Refusal(RefusalCode.WITHDRAWN)
    return push


async def action_shown_in(
    session: AsyncSession, admin_chat_id: int, report_message_id: int
) -> PushAction | None:
    """The action an editor's message already reports, if any (a second press of its
    confirmation starts nothing)."""
    found = await session.scalars(
        select(PushAction)
        .where(
            PushAction.admin_chat_id == admin_chat_id,
            PushAction.report_message_id == report_message_id,
        )
        .limit(1)
    )
    return found.first()


async def messages_to_act_on(session: AsyncSession, push_id: int) -> int:
    """How many sent messages (delivery rows) an action on this push would go over."""
    article_id = await session.scalar(
        select(BreakingPush.article_id).where(BreakingPush.id == push_id)
    )
    if article_id is None:
        return 0
    found = await session.scalar(
        select(func.count()).where(*_of_article(article_id), Delivery.status == DeliveryStatus.SENT)
    )
    return int(found or 0)


# ---- a correction written by an editor in Telegram ------------------------------------------


@dataclass(frozen=True)
class CorrectionText:
    """An editor's /correct: the push, the corrected title and text (None: keep the story as
    it is stored now), and the note readers see."""

    push_id: int
    title: str | None
    summary: str | None
    note: str

    @property
    def digest(self) -> str:
        """12 hex digits naming this exact correction (carried by its confirm button)."""
        raw = json.dumps([self.push_id, self.title, self.summary, self.note])
        return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:12]

    def applied_to(self, article: Article) -> Article:
        """The story as readers will see it (a copy: the stored one is not touched)."""
        return Article(
            title=self.title if self.title is not None else article.title,
            summary=self.summary if self.summary is not None else article.summary,
            link=article.link,
        )


def parse_correction(text: str) -> CorrectionText | None:
    """Read `/correct <push> [title\\ntext...]\\nNote: ...` (the command word included or
    not); None when there is no push number or no note line."""
    body = without_controls(text.replace("\r\n", "\n")).strip()
    if body.startswith("/"):
        body = body.partition(" ")[2] if " " in body.split("\n", 1)[0] else ""
    head, _, rest = body.partition("\n")
    number, _, first_line = head.strip().partition(" ")
    if not number.isascii() or not number.isdigit() or len(number) > 10:
        return None
    lines = [line.strip() for line in [first_line, *rest.split("\n")]]
    lines = [line for line in lines if line]
    if not lines or not lines[-1].lower().startswith("note:"):
        return None
    note = clean_note(lines[-1][len("note:") :])
    story = lines[:-1]
    title = truncate(story[0], TITLE_MAX) if story else None
    summary = truncate("\n".join(story[1:]), SUMMARY_MAX) if story else None
    return CorrectionText(int(number), title, summary, note)


async def correct_story(
    session: AsyncSession,
    correction: CorrectionText,
    *,
    created_by: int | None,
    admin_chat_id: int | None,
    now: datetime,
) -> PushAction | Refusal:
    """Store the corrected story (when one was given) and request the correction."""
    action = await request_action(
        session,
        correction.push_id,
        PushActionKind.CORRECT,
        note=correction.note,
        origin=PushOrigin.TELEGRAM,
        created_by=created_by,
        admin_chat_id=admin_chat_id,
        now=now,
    )
    if isinstance(action, PushAction) and correction.title is not None:
        push = await session.get(BreakingPush, correction.push_id)
        assert push is not None
        article = push.article
        article.title = correction.title
        article.summary = correction.summary or ""
        article.updated_at = now
        await session.flush()
    return action


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
                            *_of_article(action.push.article_id), *_due(action_id)
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
                *_of_article(article_id),
                *_due(action_id),
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


# ---- feed updates of pushed stories ---------------------------------------------------------


async def pushes_of(session: AsyncSession, article_ids: list[int]) -> list[BreakingPush]:
    """The finished, not withdrawn pushes of these articles (to tell their editors that the
    story changed)."""
    if not article_ids:
        return []
    return list(
        await session.scalars(
            select(BreakingPush)
            .where(
                BreakingPush.article_id.in_(article_ids),
                BreakingPush.status == PushStatus.DONE,
                BreakingPush.withdrawn_at.is_(None),
            )
            .order_by(BreakingPush.id)
        )
    )


# ---- helpers --------------------------------------------------------------------------------


def _of_article(article_id: int) -> tuple[ColumnElement[bool], ...]:
    return (Delivery.kind == DeliveryKind.BREAKING, Delivery.ref == str(article_id))


def _due(action_id: int) -> tuple[ColumnElement[bool], ...]:
    return (
        Delivery.status == DeliveryStatus.SENT,
        or_(Delivery.action_id.is_(None), Delivery.action_id < action_id),
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
