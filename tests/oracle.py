"""The digest's rules as one straightforward query: the oracle DigestBuilder is checked against.

It was the production path for `/digest now` until both commands shared the builder; it
stays here because it states the rules in one place, independently of the builder's caches.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.digest.builder import LATE_ARRIVAL, DigestSection, DigestStory
from digests.models import (
    Article,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Section,
    Subscription,
    article_sections,
)

# A breaking push in these states may have reached the chat: don't repeat the story.
PUSHED = (DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN, DeliveryStatus.SENDING)


async def collect_digest(
    session: AsyncSession,
    *,
    chat_id: int,
    window_start: datetime,
    window_end: datetime,
    per_section: int,
) -> list[DigestSection]:
    """The stories chat `chat_id` (db id) gets for the window (start, end], by section.

    A story counts if it was ingested in the window and published no more than a day before
    it opened, is in a section the chat follows, and was not already pushed to the chat as
    breaking news. It is listed once, under the first of those sections by name. Sections come
    by name, stories newest first, at most `per_section` each (`more` counts the rest).
    """
    if per_section < 1:
        raise ValueError(f"per_section must be at least 1, got {per_section}")

    pushed = select(Delivery.article_id).where(
        Delivery.chat_id == chat_id,
        Delivery.kind == DeliveryKind.BREAKING,
        Delivery.status.in_(PUSHED),
        Delivery.article_id.is_not(None),  # a NULL would make NOT IN match nothing
    )
    # EXISTS, not a join, so that SQLite (which has no statistics unless ANALYZE ran) starts
    # from the window's stories rather than from every story ever filed in the chat's sections.
    followed = exists().where(
        Subscription.chat_id == chat_id,
        Subscription.section_id == article_sections.c.section_id,
    )
    # Every (story, followed section) pair; `pick` = 1 marks the section a story is listed under.
    candidates = (
        select(
            Article.id.label("article_id"),
            Article.published_at,
            Section.id.label("section_id"),
            Section.name,
            func.row_number()
            .over(partition_by=Article.id, order_by=(Section.name, Section.id))
            .label("pick"),
        )
        .join(article_sections, article_sections.c.article_id == Article.id)
        .join(Section, Section.id == article_sections.c.section_id)
        .where(
            Article.ingested_at > window_start,
            Article.ingested_at <= window_end,
            Article.published_at > window_start - LATE_ARRIVAL,
            Article.id.not_in(pushed),
            followed,
        )
        .subquery()
    )
    c = candidates.c
    ranked = (
        select(
            c.article_id,
            c.section_id,
            c.name,
            func.row_number()
            .over(partition_by=c.section_id, order_by=(c.published_at.desc(), c.article_id.desc()))
            .label("rank"),
            func.count().over(partition_by=c.section_id).label("total"),
        )
        .where(c.pick == 1)
        .subquery()
    )
    r = ranked.c
    # Titles and links are read for the stories shown only, not carried through the sorts.
    rows = await session.execute(
        select(
            Article.id,
            Article.title,
            Article.link,
            Article.published_at,
            Article.date_known,
            Section.id,
            Section.slug,
            Section.name,
            r.total,
        )
        .select_from(ranked)
        .join(Article, Article.id == r.article_id)
        .join(Section, Section.id == r.section_id)
        .where(r.rank <= per_section)
        .order_by(r.name, r.section_id, r.rank)
    )

    sections: list[DigestSection] = []
    current_id: int | None = None
    for article_id, title, url, published_at, known, section_id, slug, name, total in rows:
        if section_id != current_id:
            current_id = section_id
            stories: list[DigestStory] = []
            shown = min(int(total), per_section)
            sections.append(DigestSection(slug, name, stories, more=int(total) - shown))
        stories.append(DigestStory(article_id, title, url, published_at, known))
    return sections
