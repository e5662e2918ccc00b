"""Delivery statistics for editors."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.feeds.state import failing_feeds, public_url
from digests.models import Chat, Delivery, DeliveryKind, Subscription
from digests.stories.sections import list_sections


@dataclass(frozen=True)
class Stats:
    active_chats: int
    inactive_chats: int
    sections: list[tuple[str, int, int]]  # name, subscribers (active chats), stories
    last_day: dict[str, dict[str, int]]  # kind -> status -> count
    failing: list[FailingFeed] = field(default_factory=list)


@dataclass(frozen=True)
class FailingFeed:
    url: str  # without user, password or query
    failures: int
    last_error: str
    next_attempt_at: datetime | None


async def collect_stats(session: AsyncSession, *, now: datetime) -> Stats:
    chats = dict(
        (bool(active), int(n))
        for active, n in await session.execute(
            select(Chat.active, func.count()).group_by(Chat.active)
        )
    )
    subscribers = dict(
        (section_id, int(n))
        for section_id, n in await session.execute(
            select(Subscription.section_id, func.count())
            .join(Chat, Chat.id == Subscription.chat_id)
            .where(Chat.active.is_(True))
            .group_by(Subscription.section_id)
        )
    )
    sections = [
        (info.name, subscribers.get(info.id, 0), info.stories)
        for info in await list_sections(session)
    ]
    last_day: dict[str, dict[str, int]] = {kind.value: {} for kind in DeliveryKind}
    for kind, status, n in await session.execute(
        select(Delivery.kind, Delivery.status, func.count())
        .where(Delivery.created_at >= now - timedelta(hours=24))
        .group_by(Delivery.kind, Delivery.status)
    ):
        last_day[str(kind)][str(status)] = int(n)
    failing = [
        FailingFeed(public_url(row.url), row.failures, row.last_error or "", row.next_attempt_at)
        for row in await failing_feeds(session)
    ]
    return Stats(chats.get(True, 0), chats.get(False, 0), sections, last_day, failing)
