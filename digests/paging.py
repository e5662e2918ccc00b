"""Paging through stored stories with a stable cursor that survives restarts.

A cursor is the (published_at, id) of the story on screen plus its section: "next" means the
next older story, "previous" the next newer one. It needs no server-side state, so buttons
keep working after a restart and when new stories arrive meanwhile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.models import Article, Section, article_sections

_CURSOR = re.compile(r"^L:(\d{1,9}):(\d{1,12}):(\d{1,12}):([np])$")


@dataclass(frozen=True)
class Cursor:
    section_id: int  # 0 means every section
    published_ts: int  # seconds since the epoch, UTC
    article_id: int
    direction: str  # "n" older, "p" newer

    def encode(self) -> str:
        data = f"L:{self.section_id}:{self.published_ts}:{self.article_id}:{self.direction}"
        assert len(data.encode()) <= 64
        return data

    @classmethod
    def decode(cls, data: str) -> Cursor | None:
        """Parse button data; None for anything malformed or tampered."""
        match = _CURSOR.match(data)
        if not match:
            return None
        section_id, ts, article_id, direction = match.groups()
        return cls(int(section_id), int(ts), int(article_id), direction)


@dataclass(frozen=True)
class Page:
    article: Article
    section: Section | None  # the section being paged, None for all
    position: int  # 1 = newest
    total: int
    has_newer: bool
    has_older: bool

    def cursor(self, direction: str) -> Cursor:
        return Cursor(
            self.section.id if self.section else 0,
            int(self.article.published_at.timestamp()),
            self.article.id,
            direction,
        )


def _stories(section_id: int) -> Select[Article]:
    query = select(Article)
    if section_id:
        query = query.where(
            Article.id.in_(
                select(article_sections.c.article_id).where(
                    article_sections.c.section_id == section_id
                )
            )
        )
    return query


def _newer_than(published: datetime, article_id: int):  # type: ignore[no-untyped-def]
    return or_(
        Article.published_at > published,
        and_(Article.published_at == published, Article.id > article_id),
    )


def _older_than(published: datetime, article_id: int):  # type: ignore[no-untyped-def]
    return or_(
        Article.published_at < published,
        and_(Article.published_at == published, Article.id < article_id),
    )


async def _page_at(session: AsyncSession, article: Article, section: Section | None) -> Page:
    section_id = section.id if section else 0
    base = _stories(section_id).subquery()
    newer = await session.scalar(
        select(func.count())
        .select_from(base)
        .where(
            or_(
                base.c.published_at > article.published_at,
                and_(base.c.published_at == article.published_at, base.c.id > article.id),
            )
        )
    )
    total = await session.scalar(select(func.count()).select_from(base))
    position = int(newer or 0) + 1
    total_n = int(total or 0)
    return Page(
        article=article,
        section=section,
        position=position,
        total=total_n,
        has_newer=position > 1,
        has_older=position < total_n,
    )


async def first_page(session: AsyncSession, section: Section | None) -> Page | None:
    """The newest story (in `section`, or anywhere), or None when there are none."""
    article = await session.scalar(
        _stories(section.id if section else 0)
        .order_by(Article.published_at.desc(), Article.id.desc())
        .limit(1)
    )
    if article is None:
        return None
    return await _page_at(session, article, section)


@dataclass(frozen=True)
class Turn:
    page: Page | None
    problem: str | None  # a short answer for the button press when there is no page


async def turn_page(session: AsyncSession, cursor: Cursor) -> Turn:
    """Move one story from the cursor; never raises for stale or odd cursors."""
    section: Section | None = None
    if cursor.section_id:
        section = await session.get(Section, cursor.section_id)
        if section is None:
            return Turn(None, "That section no longer exists.")
    current = await session.get(Article, cursor.article_id)
    if current is not None:
        published = current.published_at
    else:  # the story on screen was deleted: its stored time still places the cursor
        try:
            published = datetime.fromtimestamp(cursor.published_ts, UTC)
        except (OverflowError, OSError, ValueError):
            return Turn(None, "That button is no longer valid.")
    query = _stories(cursor.section_id)
    if cursor.direction == "n":
        query = query.where(_older_than(published, cursor.article_id)).order_by(
            Article.published_at.desc(), Article.id.desc()
        )
    else:
        query = query.where(_newer_than(published, cursor.article_id)).order_by(
            Article.published_at.asc(), Article.id.asc()
        )
    article = await session.scalar(query.limit(1))
    if article is None:
        return Turn(None, "No more stories.")
    return Turn(await _page_at(session, article, section), None)
