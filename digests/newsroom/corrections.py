"""Corrections and withdrawals of a sent breaking push: one pass over its delivered messages.

An action (`PushAction`) is requested once (`request_action`, here), then run (`ActionRunner`,
in digests/newsroom/actions.py): every SENT delivery row of the push whose `action_id` is NULL
or older than the action is edited (a correction: the story as stored now plus a
"Corrected: ..." note) or deleted (a withdrawal: Telegram lets a bot delete its messages for
48 hours only; an older one is counted too old without asking Telegram).

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

import enum
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests.feeds.clean import without_controls
from digests.models import (
    TITLE_MAX,
    Article,
    BreakingPush,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    PushAction,
    PushActionKind,
    PushOrigin,
    PushStatus,
)
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
        select(func.count()).where(*of_article(article_id), Delivery.status == DeliveryStatus.SENT)
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


def of_article(article_id: int) -> tuple[ColumnElement[bool], ...]:
    return (Delivery.kind == DeliveryKind.BREAKING, Delivery.ref == str(article_id))


def due_rows(action_id: int) -> tuple[ColumnElement[bool], ...]:
    return (
        Delivery.status == DeliveryStatus.SENT,
        or_(Delivery.action_id.is_(None), Delivery.action_id < action_id),
    )
