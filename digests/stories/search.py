"""Full-text search over stored stories: /search's saved, paged results and inline mode's.

The reader's text is never handed to a database's query language. It is cut into words
(letters and digits; everything else separates them), and each word becomes a plain term:
on SQLite a double-quoted FTS5 string (so `NEAR`, `OR`, `*`, `:` or `(` are only text), on
PostgreSQL the input of plainto_tsquery, which ignores every operator character. All words
must match.

Order: relevance first (FTS5's bm25 with the title weighing four times the summary;
PostgreSQL's ts_rank over the title-A/summary-B vector), then newer first, then the higher
id, so equal ranks still order one way. A /search keeps its result ids (at most
MAX_RESULTS) in a `searches` row: paging walks that list by position, so it never skips or
repeats a story, whatever arrives or changes meanwhile, and works after a restart. See
migration 0007 for the indexes and the stemming each database offers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Integer, column, delete, func, literal_column, select, table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnClause

from digests.models import SEARCH_QUERY_MAX, Article, SavedSearch
from digests.stories.paging import TurnProblem
from digests.ui.buttons import Direction, SearchTurn

MAX_WORDS = 8
MAX_WORD = 40
MAX_INPUT = 1000  # characters of a query looked at: the rest is ignored
MAX_RESULTS = 100  # stories a /search keeps for paging
SEARCH_KEPT = timedelta(days=30)  # a search older than this is forgotten; its buttons go stale

_WORD = re.compile(r"[^\W_]+")
_FTS = table("articles_fts", column("rowid", Integer))
_FTS_TABLE: ColumnClause[Any] = literal_column("articles_fts")
_PG_CONFIG: ColumnClause[Any] = literal_column("'russian'::regconfig")
_PG_VECTOR: ColumnClause[Any] = literal_column("articles.search_vector")


def search_words(raw: str) -> tuple[str, ...]:
    """The words searched for: runs of letters and digits, lower-cased, each at most
    MAX_WORD characters, without repeats, at most MAX_WORDS; () when there are none."""
    words: list[str] = []
    for match in _WORD.finditer(raw[:MAX_INPUT]):
        word = match.group().casefold()[:MAX_WORD]
        if word not in words:
            words.append(word)
        if len(words) == MAX_WORDS:
            break
    return tuple(words)


def fts5_query(words: Sequence[str]) -> str:
    """An FTS5 MATCH expression with every word as a quoted string: all must match."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def tsquery_text(words: Sequence[str]) -> str:
    """plainto_tsquery's input: the words, space-separated (it ANDs them, no operators)."""
    return " ".join(words)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def find_ids(
    session: AsyncSession, words: Sequence[str], *, limit: int, offset: int = 0
) -> list[int]:
    """Ids of the stories matching every word, best first (see the module docstring)."""
    if not words:
        return []
    newest = (Article.published_at.desc(), Article.id.desc())
    published = Article.unpublished_at.is_(None)
    if _dialect(session) == "postgresql":
        query = func.plainto_tsquery(_PG_CONFIG, tsquery_text(words))
        rank: ColumnElement[float] = func.ts_rank(_PG_VECTOR, query)
        stmt = (
            select(Article.id)
            .where(_PG_VECTOR.op("@@")(query), published)
            .order_by(rank.desc(), *newest)
        )
    else:
        bm25: ColumnElement[float] = func.bm25(_FTS_TABLE, 4.0, 1.0)
        stmt = (
            select(Article.id)
            .join(_FTS, _FTS.c.rowid == Article.id)
            .where(_FTS_TABLE.op("MATCH")(fts5_query(words)), published)
            .order_by(bm25.asc(), *newest)
        )
    return list(await session.scalars(stmt.limit(limit).offset(offset)))


async def latest_ids(session: AsyncSession, *, limit: int, offset: int = 0) -> list[int]:
    """Ids of the newest (published) stories."""
    stmt = (
        select(Article.id)
        .where(Article.unpublished_at.is_(None))
        .order_by(Article.published_at.desc(), Article.id.desc())
    )
    return list(await session.scalars(stmt.limit(limit).offset(offset)))


async def articles_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Article]:
    """The stories with these ids, in this order (ids no longer stored or unpublished since
    are left out)."""
    if not ids:
        return []
    found = {
        a.id: a
        for a in await session.scalars(
            select(Article).where(Article.id.in_(ids), Article.unpublished_at.is_(None))
        )
    }
    return [found[i] for i in ids if i in found]


@dataclass(frozen=True)
class SearchPage:
    """One story of a saved search's results, at `position` (1 = best) of `total`."""

    search_id: int
    query: str
    article: Article
    position: int
    total: int

    @property
    def has_previous(self) -> bool:
        return self.position > 1

    @property
    def has_next(self) -> bool:
        return self.position < self.total

    def turn(self, direction: Direction) -> SearchTurn:
        """The button data that pages from this story towards `direction`."""
        step = 1 if direction is Direction.OLDER else -1
        return SearchTurn(self.search_id, self.position + step, direction)


@dataclass(frozen=True)
class SearchTurnResult:
    """The result a press turned to, or why there is none."""

    page: SearchPage | None
    problem: TurnProblem | None


def _ids(saved: SavedSearch) -> list[int]:
    return [int(part) for part in saved.article_ids.split(",") if part]


async def start_search(
    session: AsyncSession, *, chat_id: int, words: Sequence[str], now: datetime
) -> SearchPage | None:
    """Run a search, save its results for paging and return its first page; None when
    nothing matches (nothing is saved then). Searches older than SEARCH_KEPT are dropped."""
    await session.execute(delete(SavedSearch).where(SavedSearch.created_at < now - SEARCH_KEPT))
    ids = await find_ids(session, words, limit=MAX_RESULTS)
    articles = await articles_by_id(session, ids[:1])
    if not articles:
        return None
    saved = SavedSearch(
        chat_id=chat_id,
        query=" ".join(words)[:SEARCH_QUERY_MAX],
        article_ids=",".join(str(i) for i in ids),
        created_at=now,
    )
    session.add(saved)
    await session.flush()
    return SearchPage(saved.id, saved.query, articles[0], 1, len(ids))


async def turn_search(session: AsyncSession, *, chat_id: int, turn: SearchTurn) -> SearchTurnResult:
    """The story at the turn's position of a saved search; a story deleted since is passed
    over in the turn's direction. Never raises for stale or forged buttons."""
    saved = await session.get(SavedSearch, turn.search_id)
    if saved is None or saved.chat_id != chat_id:
        return SearchTurnResult(None, TurnProblem.SEARCH_EXPIRED)
    ids = _ids(saved)
    step = 1 if turn.direction is Direction.OLDER else -1
    position = turn.position
    while 1 <= position <= len(ids):
        found = await articles_by_id(session, [ids[position - 1]])
        if found:
            return SearchTurnResult(
                SearchPage(saved.id, saved.query, found[0], position, len(ids)), None
            )
        position += step
    return SearchTurnResult(None, TurnProblem.NO_MORE)


INLINE_PAGE = 20  # results per answerInlineQuery (Telegram allows up to 50)
INLINE_MAX = 200  # results reachable by scrolling: offsets beyond are refused


@dataclass(frozen=True)
class InlinePage:
    """Stories for one answer to an inline query, and the offset of the next answer."""

    articles: list[Article]
    next_offset: str  # "" when there are no more


def inline_offset(raw: str) -> int | None:
    """The offset Telegram hands back (ours: a position in ASCII digits); None if forged."""
    if raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 4:
        return None
    value = int(raw)
    return value if value < INLINE_MAX else None


async def inline_page(
    session: AsyncSession, raw_query: str, offset: int, *, per_page: int = INLINE_PAGE
) -> InlinePage:
    """Stories matching an inline query (the newest when it has no words), from `offset`."""
    words = search_words(raw_query)
    limit = min(per_page, INLINE_MAX - offset) + 1
    if words:
        ids = await find_ids(session, words, limit=limit, offset=offset)
    else:
        ids = await latest_ids(session, limit=limit, offset=offset)
    more = len(ids) > per_page and offset + per_page < INLINE_MAX
    ids = ids[:per_page]
    return InlinePage(await articles_by_id(session, ids), str(offset + len(ids)) if more else "")
