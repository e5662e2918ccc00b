"""Paging through stored stories with a stable cursor that survives restarts.

A cursor is the (published_at, id) of the story on screen plus its section: "next" means the
next older story, "previous" the next newer one. It needs no server-side state, so buttons
keep working after a restart and when new stories arrive meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests import messages as msg
from digests.buttons import Direction, PageTurn
from digests.models import Article, Section, article_sections


@dataclass(frozen=True)
class Page:
    article: Article
    section: Section | None  # the section being paged, None for all
    position: int  # 1 = newest
    total: int
    has_newer: bool
    has_older: bool

    def turn(self, direction: Direction) -> PageTurn:
        """The button data that pages from this story towards `direction`."""
        return PageTurn(
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


def _newer_than(published: datetime, article_id: int) -> ColumnElement[bool]:
    return or_(
        Article.published_at > published,
        and_(Article.published_at == published, Article.id > article_id),
    )


def _older_than(published: datetime, article_id: int) -> ColumnElement[bool]:
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
class TurnResult:
    """The page a press turned to, or why there is none (a short answer for the press)."""

    page: Page | None
    problem: str | None


async def turn_page(session: AsyncSession, cursor: PageTurn) -> TurnResult:
    """Move one story from the cursor; never raises for stale or odd cursors."""
    section: Section | None = None
    if cursor.section_id:
        section = await session.get(Section, cursor.section_id)
        if section is None:
            return TurnResult(None, msg.SECTION_GONE)
    current = await session.get(Article, cursor.article_id)
    if current is not None:
        published = current.published_at
    else:  # the story on screen was deleted: its stored time still places the cursor
        try:
            published = datetime.fromtimestamp(cursor.published_ts, UTC)
        except (OverflowError, OSError, ValueError):
            return TurnResult(None, msg.STALE_BUTTON)
    query = _stories(cursor.section_id)
    if cursor.direction is Direction.OLDER:
        query = query.where(_older_than(published, cursor.article_id)).order_by(
            Article.published_at.desc(), Article.id.desc()
        )
    else:
        query = query.where(_newer_than(published, cursor.article_id)).order_by(
            Article.published_at.asc(), Article.id.asc()
        )
    article = await session.scalar(query.limit(1))
    if article is None:
        return TurnResult(None, msg.NO_MORE_STORIES)
    return TurnResult(await _page_at(session, article, section), None)
