"""Paging through stored stories with a stable cursor that survives restarts.

A cursor is the (published_at, id) of the story on screen plus its section: "next" means the
next older story, "previous" the next newer one. It needs no server-side state, so buttons
keep working after a restart and when new stories arrive meanwhile.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, and_, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from digests.models import Article, Section, StoryCount, article_sections
from digests.ui.buttons import Direction, PageTurn


@dataclass(frozen=True)
class Page:
    article: Article
    section: Section | None  # the section being paged, None for all
    position: int  # 1 = newest; with position_exact False, "past this one" (shown "10,000+")
    total: int
    has_newer: bool
    has_older: bool
    position_exact: bool = True

    def turn(self, direction: Direction) -> PageTurn:
        """The button data that pages from this story towards `direction`."""
        return PageTurn(
            self.section.id if self.section else 0,
            int(self.article.published_at.timestamp()),
            self.article.id,
            direction,
        )


_Order = tuple[ColumnElement[datetime], ColumnElement[int]]


def _order(section_id: int) -> _Order:
    """The (published_at, id) columns stories are ordered by: a section's come from its
    article_sections rows (their index), all stories from articles."""
    if section_id:
        return article_sections.c.published_at, article_sections.c.article_id
    return Article.published_at.expression, Article.id.expression


def _where(section_id: int) -> list[ColumnElement[bool]]:
    """A section's rows, or all published stories (an unpublished story has no section rows;
    ix_articles_published_at_id carries unpublished_at, so this too reads the index alone)."""
    if section_id:
        return [article_sections.c.section_id == section_id]
    return [Article.unpublished_at.is_(None)]


def _stories(section_id: int) -> Select[Article]:
    query = select(Article).where(Article.unpublished_at.is_(None))
    if section_id:
        query = query.join(
            article_sections,
            and_(
                article_sections.c.article_id == Article.id,
                article_sections.c.section_id == section_id,
            ),
        )
    return query


# A story's position is counted from the index, one entry per newer story: up to this many
# on every page (a few milliseconds at most); past it the position shows as "10,000+". The
# total is read from story_counts, which the database keeps (migration 0012).
EXACT_COUNT_LIMIT = 10_000


def _count(section_id: int, *where: ColumnElement[bool], limit: int) -> Select[int]:
    """How many stories (of a section, or all) match `where`, from the index alone, counting
    no further than `limit`."""
    if section_id:
        rows = select(literal(1)).select_from(article_sections).where(*_where(section_id))
    else:
        rows = select(literal(1)).select_from(Article).where(*_where(section_id))
    return select(func.count()).select_from(rows.where(*where).limit(limit).subquery())


async def _page_at(session: AsyncSession, article: Article, section: Section | None) -> Page:
    section_id = section.id if section else 0
    published, ident = _order(section_id)
    here = tuple_(published, ident)
    cursor = (article.published_at, article.id)
    counted = await session.execute(  # one round trip
        select(
            _count(section_id, here > cursor, limit=EXACT_COUNT_LIMIT + 1).scalar_subquery(),
            _count(section_id, here < cursor, limit=1).scalar_subquery(),
            select(StoryCount.stories).where(StoryCount.scope == section_id).scalar_subquery(),
        )
    )
    newer, older, total = (int(n or 0) for n in counted.one())
    position_exact = newer <= EXACT_COUNT_LIMIT
    position = newer + 1 if position_exact else EXACT_COUNT_LIMIT
    return Page(
        article=article,
        section=section,
        position=position,
        total=max(total, position + older),
        has_newer=newer > 0,
        has_older=older > 0,
        position_exact=position_exact,
    )


async def first_page(session: AsyncSession, section: Section | None) -> Page | None:
    """The newest story (in `section`, or anywhere), or None when there are none."""
    section_id = section.id if section else 0
    published, ident = _order(section_id)
    article = await session.scalar(
        _stories(section_id).order_by(published.desc(), ident.desc()).limit(1)
    )
    if article is None:
        return None
    return await _page_at(session, article, section)


class TurnProblem(enum.StrEnum):
    """Why a ◀ Previous / Next ▶ press turned to no story (stories/texts.py says it)."""

    SECTION_GONE = "section_gone"
    STALE = "stale"  # a cursor that cannot be read
    NO_MORE = "no_more"  # no story further that way
    SEARCH_EXPIRED = "search_expired"  # the saved search is gone (or another chat's)


@dataclass(frozen=True)
class TurnResult:
    """The page a press turned to, or why there is none."""

    page: Page | None
    problem: TurnProblem | None


async def turn_page(session: AsyncSession, cursor: PageTurn) -> TurnResult:
    """Move one story from the cursor; never raises for stale or odd cursors."""
    section: Section | None = None
    if cursor.section_id:
        section = await session.get(Section, cursor.section_id)
        if section is None:
            return TurnResult(None, TurnProblem.SECTION_GONE)
    current = await session.get(Article, cursor.article_id)
    if current is not None:
        published = current.published_at
    else:  # the story on screen was deleted: its stored time still places the cursor
        try:
            published = datetime.fromtimestamp(cursor.published_ts, UTC)
        except (OverflowError, OSError, ValueError):
            return TurnResult(None, TurnProblem.STALE)
    query = _stories(cursor.section_id)
    order, ident = _order(cursor.section_id)
    here = tuple_(order, ident)
    there = (published, cursor.article_id)
    if cursor.direction is Direction.OLDER:
        query = query.where(here < there).order_by(order.desc(), ident.desc())
    else:
        query = query.where(here > there).order_by(order.asc(), ident.asc())
    article = await session.scalar(query.limit(1))
    if article is None:
        return TurnResult(None, TurnProblem.NO_MORE)
    return TurnResult(await _page_at(session, article, section), None)
