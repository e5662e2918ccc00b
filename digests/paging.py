"""Paging through stored stories with a stable cursor that survives restarts.

A cursor is the (published_at, id) of the story on screen plus its section: "next" means the
next older story, "previous" the next newer one. It needs no server-side state, so buttons
keep working after a restart and when new stories arrive meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Select, and_, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from digests import messages as msg
from digests.buttons import Direction, PageTurn
from digests.models import Article, Section, article_sections


@dataclass(frozen=True)
class Page:
    article: Article
    section: Section | None  # the section being paged, None for all
    position: int  # 1 = newest; with position_exact False, "more than position - 1"
    total: int  # with total_exact False, a count at most TOTAL_CACHE_TTL old
    has_newer: bool
    has_older: bool
    position_exact: bool = True
    total_exact: bool = True

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
    return [article_sections.c.section_id == section_id] if section_id else []


def _stories(section_id: int) -> Select[Article]:
    query = select(Article)
    if section_id:
        query = query.join(
            article_sections,
            and_(
                article_sections.c.article_id == Article.id,
                article_sections.c.section_id == section_id,
            ),
        )
    return query


# Counting a story's position and its section's size reads index entries, one per story
# counted: up to this many they are counted on every page (a few milliseconds at most); past
# it the position shows as "20,000+" and the total comes from a count kept for a minute.
EXACT_COUNT_LIMIT = 20_000
TOTAL_CACHE_TTL = 60.0  # seconds


def _count(section_id: int, *where: ColumnElement[bool], limit: int | None = None) -> Select[int]:
    """How many stories (of a section, or all) match `where`, from the index alone; with
    `limit`, counting stops there."""
    if section_id:
        rows = select(literal(1)).select_from(article_sections).where(*_where(section_id))
    else:
        rows = select(literal(1)).select_from(Article)
    rows = rows.where(*where)
    if limit is not None:
        rows = rows.limit(limit)
    return select(func.count()).select_from(rows.subquery())


class _Totals:
    """Large counts of stories per section (0 = all), kept for TOTAL_CACHE_TTL seconds: a
    full count of a million index entries takes tens of milliseconds, a page must not."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], tuple[int, float]] = {}

    async def total(self, session: AsyncSession, section_id: int, bounded: int) -> tuple[int, bool]:
        """The number of stories and whether it is exact, given their count up to
        EXACT_COUNT_LIMIT + 1."""
        if bounded <= EXACT_COUNT_LIMIT:
            return bounded, True
        key = (str(session.get_bind().engine.url), section_id)
        cached = self._counts.get(key)
        now = self._clock()
        if cached is None or now - cached[1] > TOTAL_CACHE_TTL:
            cached = (int(await session.scalar(_count(section_id)) or 0), now)
            self._counts[key] = cached
        return cached[0], False


_totals = _Totals()


async def _page_at(session: AsyncSession, article: Article, section: Section | None) -> Page:
    section_id = section.id if section else 0
    published, ident = _order(section_id)
    here = tuple_(published, ident)
    cursor = (article.published_at, article.id)
    limit = EXACT_COUNT_LIMIT + 1
    counted = await session.execute(  # one round trip: three index range counts
        select(
            _count(section_id, here > cursor, limit=limit).scalar_subquery(),
            _count(section_id, here < cursor, limit=1).scalar_subquery(),
            _count(section_id, limit=limit).scalar_subquery(),
        )
    )
    newer, older, bounded_total = (int(n or 0) for n in counted.one())
    has_older = older > 0
    total, total_exact = await _totals.total(session, section_id, bounded_total)
    position = newer + 1
    position_exact = newer <= EXACT_COUNT_LIMIT
    if position_exact:
        # a story stored after the total was counted, or a cached total: never below
        total = max(total, position + int(has_older))
    return Page(
        article=article,
        section=section,
        position=position,
        total=total,
        has_newer=newer > 0,
        has_older=has_older,
        position_exact=position_exact,
        total_exact=total_exact,
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
    order, ident = _order(cursor.section_id)
    here = tuple_(order, ident)
    there = (published, cursor.article_id)
    if cursor.direction is Direction.OLDER:
        query = query.where(here < there).order_by(order.desc(), ident.desc())
    else:
        query = query.where(here > there).order_by(order.asc(), ident.asc())
    article = await session.scalar(query.limit(1))
    if article is None:
        return TurnResult(None, msg.NO_MORE_STORIES)
    return TurnResult(await _page_at(session, article, section), None)
