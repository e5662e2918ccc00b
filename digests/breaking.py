"""Editors' breaking news: draft a story, preview it, push it once to the right chats."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests.delivery import insert_deliveries
from digests.messages import Button, Reply
from digests.models import (
    Article,
    BreakingPush,
    Chat,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    PushStatus,
    Section,
    Subscription,
)
from digests.render import bold, escape, link, truncate
from digests.sections import get_or_create_sections, resolve_sections

SEND = "B:send:"
CANCEL = "B:cancel:"
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)

USAGE = f"{bold('Usage')}: /breaking [section] text or URL\n\n" + escape(
    "Examples:\n/breaking world Earthquake hits the coast; rescue under way\n"
    "/breaking https://news.example/story (a stored article's link)\n\n"
    "You get a preview with the number of chats it will reach, then Send or Cancel."
)


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
    words = [word for word in args if word.strip()]
    if not words:
        return None
    section: Section | None = None
    found = await resolve_sections(session, [words[0]])
    if found.sections and len(words) > 1 and words[0].lower() != "all":
        section = found.sections[0]
        words = words[1:]
    text = " ".join(words).strip()
    article = None
    if _URL.match(text):
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
            link=text if _URL.match(text) else None,
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


def _audience(section_id: int | None) -> Select[int]:
    query = select(Chat.id).where(Chat.active.is_(True), Chat.alerts.is_(True))
    if section_id is not None:
        query = query.where(
            Chat.id.in_(select(Subscription.chat_id).where(Subscription.section_id == section_id))
        )
    return query


async def count_audience(session: AsyncSession, section_id: int | None) -> int:
    """Active chats with alerts on that follow the section (every such chat with none)."""
    subquery = _audience(section_id).subquery()
    return int(await session.scalar(select(func.count()).select_from(subquery)) or 0)


def render_breaking(article: Article) -> str:
    """The message readers get."""
    parts = [f"🚨 {bold('Breaking')}", "", bold(article.title)]
    if article.summary:
        parts += [escape(article.summary)]
    if article.link:
        parts += ["", link(article.link, "Read more")]
    return "\n".join(parts)


def preview(draft: Draft) -> Reply:
    push = draft.push
    scope = push.section.name if push.section else "all sections"
    text = (
        f"{escape('Preview — readers will see:')}\n\n{render_breaking(push.article)}\n\n"
        + escape(
            f"It will reach {draft.audience} chat{'s' if draft.audience != 1 else ''} ({scope})."
        )
    )
    return Reply(
        text,
        [[Button("Send", data=f"{SEND}{push.id}"), Button("Cancel", data=f"{CANCEL}{push.id}")]],
    )


async def confirm(session: AsyncSession, push_id: int, *, now: datetime) -> BreakingPush | None:
    """DRAFT -> SENDING exactly once (double press, two admins); writes the delivery rows.

    Returns the push for the caller that won, None for everyone else.
    """
    moved = await session.execute(
        update(BreakingPush)
        .where(BreakingPush.id == push_id, BreakingPush.status == PushStatus.DRAFT)
        .values(status=PushStatus.SENDING, updated_at=now)
        .returning(BreakingPush.id)
        .execution_options(synchronize_session=False)
    )
    if moved.scalar_one_or_none() is None:
        return None
    push = await session.get(BreakingPush, push_id)
    assert push is not None
    await session.refresh(push)
    await create_rows(session, push, now=now)
    return push


async def create_rows(session: AsyncSession, push: BreakingPush, *, now: datetime) -> None:
    """A PENDING row per target chat; the unique key makes this safe to repeat."""
    chat_ids = list(await session.scalars(_audience(push.section_id)))
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
    moved = await session.execute(
        update(BreakingPush)
        .where(BreakingPush.id == push_id, BreakingPush.status == PushStatus.DRAFT)
        .values(status=PushStatus.CANCELLED, updated_at=now)
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
    )


def progress_text(push: BreakingPush, counts: PushTally, *, done: bool) -> str:
    head = "✅ Push finished" if done else "📤 Pushing…"
    lines = [
        bold(head),
        bold(push.article.title),
        "",
        escape(
            f"Sent {counts.sent} · blocked {counts.blocked} · failed {counts.failed}"
            + (f" · pending {counts.pending}" if counts.pending else "")
            + (f" · uncertain {counts.uncertain}" if counts.uncertain else "")
            + f" (of {counts.total})"
        ),
    ]
    return "\n".join(lines)
