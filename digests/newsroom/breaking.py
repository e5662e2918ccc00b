"""Editors' breaking news: draft a story, preview it, confirm it once, and the rules of who
gets it; digests/newsroom/push.py runs the confirmed push."""

from __future__ import annotations

import enum
import logging
import re
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests.delivery.engine import (
    INTERRUPTED,
    insert_deliveries,
)
from digests.feeds.clean import without_controls
from digests.feeds.ingest import source_identity
from digests.models import (
    API_SOURCE,
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
from digests.readers.keywords import muted_phrases_matching
from digests.stories.sections import get_or_create_sections, resolve_sections
from digests.ui.buttons import PushChoice
from digests.ui.render import truncate

log = logging.getLogger(__name__)

_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)


@dataclass(frozen=True)
class Draft:
    push: BreakingPush
    audience: int
    # other stored stories with the same link (another feed may carry the publisher's URL
    # under its own title): the preview then says whose story this is
    same_link: int = 0


async def draft_breaking(
    session: AsyncSession,
    args: Sequence[str],
    *,
    admin_id: int,
    admin_chat_id: int,
    now: datetime,
    default_section: str,
    feeds: Collection[str] = (),
) -> Draft | None:
    """Store the story and a DRAFT push; None when there is nothing to push. A link names the
    stored story with that link, the publisher's own first (the API's, or a story of one of
    `feeds`, the configured FEED_URLS) when several stories share it."""
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
    same_link = 0
    if is_link:
        stored = list(
            await session.scalars(
                select(Article).where(Article.link == text, Article.unpublished_at.is_(None))
            )
        )
        if stored:
            configured = {source_identity(feed) for feed in feeds}
            article = min(stored, key=lambda story: (_trust(story, configured), story.id))
            same_link = len(stored) - 1
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
    return Draft(push, await count_audience(session, push.section_id), same_link)


def _trust(story: Article, configured: set[str]) -> int:
    """Which of several stories with one link an editor means: the API's or one of the
    publisher's `configured` feeds (their identities) (0), an editor's earlier /breaking (1),
    any other feed (2)."""
    if story.source == API_SOURCE:
        return 0
    if story.source is not None and story.source != "breaking":
        if source_identity(story.source) in configured:
            return 0
        return 2
    return 1


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


# ---- where a confirmed push stands (digests/newsroom/push.py runs it) -----------------------


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
