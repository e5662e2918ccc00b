"""Keyword alerts: a story stored just now that matches a reader's /follow with its alert on
goes to that reader at once, once, through the delivery engine (digests/delivery/engine.py).

Each (chat, story) is an ALERT delivery row, unique like every delivery row, written before
anything is sent; the engine then sends it as it sends breaking news (flood limits, blocked
chats, uncertain sends alike). Rows are made by a scan of the stories stored in the last
ALERT_LOOKBACK, repeated every tick: a story whose scan a restart interrupted is found by the
next one, and a second scan, or a second instance, finds the rows already there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests.db import SessionFactory
from digests.delivery.config import DeliveryConfig
from digests.delivery.engine import deliver, insert_deliveries, pending_ids
from digests.delivery.ports import Part, RoundReport, Sender, SendPriority
from digests.digest import texts
from digests.models import (
    Article,
    Chat,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    KeywordKind,
    KeywordRule,
)
from digests.readers.keywords import StoryIndex

log = logging.getLogger(__name__)

ALERT_LOOKBACK = timedelta(hours=1)  # stories stored this recently may still be alerted
# An alert row for a story left to the digest (over the hourly cap): recorded, never sent.
OVER_CAP = "over the hourly alert cap: left for the digest"

# ---- alerts ----------------------------------------------------------------------------------

_LIVE = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.UNCERTAIN,
)


@dataclass(frozen=True)
class AlertsQueued:
    queued: int = 0  # PENDING alert rows written
    over_cap: int = 0  # stories left to the digest by the hourly cap


async def queue_alerts(
    session: AsyncSession,
    *,
    now: datetime,
    per_hour: int,
    lookback: timedelta = ALERT_LOOKBACK,
) -> AlertsQueued:
    """Write an ALERT delivery row for each (chat, story) where a story stored in the last
    `lookback` (and after the follow was made) matches an alert-enabled follow of an active
    chat, no mute of that chat matches it, and it was not pushed to the chat as breaking news.
    At most `per_hour` alerts a chat an hour: the rest are recorded EMPTY and wait for the
    digest. Safe to repeat and to run on several instances: rows are unique per (chat, kind,
    story)."""
    phrases = list(
        await session.scalars(
            select(KeywordRule.normalized)
            .where(KeywordRule.kind == KeywordKind.FOLLOW, KeywordRule.alert.is_(True))
            .distinct()
        )
    )
    if not phrases:
        return AlertsQueued()
    stories = list(
        await session.execute(
            select(Article.id, Article.title, Article.summary, Article.ingested_at)
            .where(
                Article.ingested_at > now - lookback,
                Article.ingested_at <= now,
                Article.unpublished_at.is_(None),
            )
            .order_by(Article.ingested_at, Article.id)
        )
    )
    if not stories:
        return AlertsQueued()
    index = StoryIndex((story_id, title, summary) for story_id, title, summary, _ in stories)
    matched = {phrase: found for phrase in phrases if (found := index.match(phrase))}
    if not matched:
        return AlertsQueued()
    stored = {story_id: ingested for story_id, _, _, ingested in stories}
    wanted: dict[int, set[int]] = {}  # chat -> stories to alert
    for chat_id, normalized, created in await session.execute(
        select(KeywordRule.chat_id, KeywordRule.normalized, KeywordRule.created_at)
        .join(Chat, Chat.id == KeywordRule.chat_id)
        .where(
            KeywordRule.kind == KeywordKind.FOLLOW,
            KeywordRule.alert.is_(True),
            KeywordRule.normalized.in_(list(matched)),
            Chat.active.is_(True),
        )
    ):
        fresh = {story for story in matched[normalized] if stored[story] >= created}
        if fresh:
            wanted.setdefault(chat_id, set()).update(fresh)
    if not wanted:
        return AlertsQueued()
    alerting = select(KeywordRule.chat_id).where(
        KeywordRule.kind == KeywordKind.FOLLOW,
        KeywordRule.alert.is_(True),
        KeywordRule.normalized.in_(list(matched)),
    )
    for chat_id, normalized in await session.execute(
        select(KeywordRule.chat_id, KeywordRule.normalized).where(
            KeywordRule.kind == KeywordKind.MUTE, KeywordRule.chat_id.in_(alerting)
        )
    ):
        if chat_id in wanted:
            wanted[chat_id] -= index.match(normalized)
    for chat_id, article_id in await session.execute(
        select(Delivery.chat_id, Delivery.article_id).where(
            Delivery.kind.in_([DeliveryKind.ALERT, DeliveryKind.BREAKING]),
            Delivery.article_id.in_(list(stored)),
            Delivery.chat_id.in_(alerting),
        )
    ):
        if chat_id in wanted and article_id is not None:
            wanted[chat_id].discard(article_id)
    sent_lately = dict(
        (chat_id, int(count))
        for chat_id, count in await session.execute(
            select(Delivery.chat_id, func.count())
            .where(
                Delivery.kind == DeliveryKind.ALERT,
                Delivery.created_at > now - timedelta(hours=1),
                Delivery.status.in_(_LIVE),
                Delivery.chat_id.in_(alerting),
            )
            .group_by(Delivery.chat_id)
        )
    )
    order = {story_id: at for at, (story_id, *_rest) in enumerate(stories)}
    rows: list[dict[str, object]] = []
    capped: list[dict[str, object]] = []
    for chat_id, story_ids in wanted.items():
        room = max(0, per_hour - sent_lately.get(chat_id, 0))
        for position, story_id in enumerate(sorted(story_ids, key=order.__getitem__)):
            row = {
                "chat_id": chat_id,
                "kind": DeliveryKind.ALERT,
                "ref": str(story_id),
                "article_id": story_id,
                "window_start": None,
                "window_end": None,
            }
            (rows if position < room else capped).append(row)
    queued = await insert_deliveries(session, rows, now=now)
    left = await insert_deliveries(session, capped, now=now)
    if left:
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(left))
            .values(status=DeliveryStatus.EMPTY, error=OVER_CAP)
            .execution_options(synchronize_session=False)
        )
    return AlertsQueued(queued=len(queued), over_cap=len(left))


async def alert_phrases(
    session: AsyncSession, pairs: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], str]:
    """For each (chat, story) the phrase the alert names: the first alert-enabled follow of
    the chat that matches the story, if no mute of the chat matches it. Missing when none
    does any more (the reader unfollowed or muted meanwhile, or the story was unpublished):
    then nothing is sent."""
    if not pairs:
        return {}
    chat_ids = sorted({chat for chat, _ in pairs})
    story_ids = sorted({story for _, story in pairs})
    index = StoryIndex(
        await session.execute(
            select(Article.id, Article.title, Article.summary).where(
                Article.id.in_(story_ids), Article.unpublished_at.is_(None)
            )
        )
    )
    follows: dict[int, list[tuple[str, str]]] = {}
    mutes: dict[int, list[str]] = {}
    for chat_id, kind, phrase, normalized, alert in await session.execute(
        select(
            KeywordRule.chat_id,
            KeywordRule.kind,
            KeywordRule.phrase,
            KeywordRule.normalized,
            KeywordRule.alert,
        )
        .where(KeywordRule.chat_id.in_(chat_ids))
        .order_by(KeywordRule.id)
    ):
        if kind == KeywordKind.MUTE:
            mutes.setdefault(chat_id, []).append(normalized)
        elif alert:
            follows.setdefault(chat_id, []).append((phrase, normalized))
    named: dict[tuple[int, int], str] = {}
    for chat_id, story_id in pairs:
        if any(story_id in index.match(m) for m in mutes.get(chat_id, ())):
            continue
        for phrase, normalized in follows.get(chat_id, ()):
            if story_id in index.match(normalized):
                named[(chat_id, story_id)] = phrase
                break
    return named


async def render_alerts(
    session: AsyncSession, pairs: list[tuple[Delivery, Chat]]
) -> dict[int, list[Part]]:
    """An alert row's message: the story under the followed phrase it matches; nothing (the
    row ends EMPTY) when the reader unfollowed, turned the alert off or muted it meanwhile."""
    wanted = [(chat.id, row.article_id) for row, chat in pairs if row.article_id is not None]
    named = await alert_phrases(session, wanted)
    articles = {
        article.id: article
        for article in await session.scalars(
            select(Article).where(Article.id.in_(sorted({story for _, story in wanted})))
        )
    }
    rendered: dict[int, list[Part]] = {}
    for row, chat in pairs:
        phrase = named.get((chat.id, row.article_id)) if row.article_id is not None else None
        article = articles.get(row.article_id) if row.article_id is not None else None
        rendered[row.id] = [texts.keyword_alert(article, phrase)] if article and phrase else []
    return rendered


@dataclass(frozen=True)
class AlertRound:
    queued: AlertsQueued
    report: RoundReport


async def run_alert_round(
    session_factory: SessionFactory,
    sender: Sender,
    *,
    now: Callable[[], datetime],
    config: DeliveryConfig,
    per_hour: int,
    stopping: asyncio.Event | None = None,
) -> AlertRound:
    """Queue the alerts that new stories call for, then send every due ALERT row (ours or
    left by anyone: a restart, a flood limit), as urgently as breaking news."""
    queued = AlertsQueued()
    if per_hour > 0:
        async with session_factory.begin() as session:
            queued = await queue_alerts(session, now=now(), per_hour=per_hour)
    ids = await pending_ids(session_factory, now=now(), kind=DeliveryKind.ALERT)
    report = RoundReport()
    if ids:
        report = await deliver(
            session_factory,
            sender,
            ids,
            now=now,
            config=config,
            render=render_alerts,
            priority=SendPriority.BREAKING,
            stopping=stopping,
        )
    return AlertRound(queued, report)
