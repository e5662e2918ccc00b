"""What polling remembers of each http(s) feed: validators for conditional GET, and the
backoff of a feed that keeps failing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from digests.db import SessionFactory
from digests.models import LINK_MAX, VALIDATOR_MAX, FeedSource

MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class Backoff:
    """A failing feed waits base * 2^(failures-1) before it is fetched again, at most cap."""

    base: timedelta = timedelta(minutes=10)
    cap: timedelta = MAX_BACKOFF

    def delay(self, failures: int) -> timedelta:
        if failures <= 0:
            return timedelta(0)
        # the exponent is bounded so a feed failing for months cannot overflow timedelta
        return min(self.cap, self.base * (1 << min(failures - 1, 30)))


def tracked(source: str) -> bool:
    """Whether polling keeps state for this source: http(s) URLs that fit the column."""
    try:
        scheme = urlsplit(source).scheme.lower()
    except ValueError:
        return False
    return scheme in ("http", "https") and len(source) <= LINK_MAX


def public_url(url: str) -> str:
    """The URL without user, password, query or fragment: fit for a label or a chat."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


async def load_state(session_factory: SessionFactory, url: str) -> FeedSource | None:
    """The stored state of a feed, detached; None if it was never polled."""
    async with session_factory() as session:
        return await session.scalar(select(FeedSource).where(FeedSource.url == url))


def _validator(value: str | None) -> str | None:
    return value if value and len(value) <= VALIDATOR_MAX else None


async def record_success(
    session_factory: SessionFactory,
    url: str,
    *,
    now: datetime,
    etag: str | None,
    last_modified: str | None,
) -> None:
    """The feed answered (200 stored, or 304): remember its validators, forget its failures."""

    def change(row: FeedSource) -> None:
        row.etag = _validator(etag)
        row.last_modified = _validator(last_modified)
        row.failures = 0
        row.next_attempt_at = None
        row.last_error = None
        row.last_success_at = now
        row.last_attempt_at = now

    await _update(session_factory, url, now=now, change=change)


async def record_failure(
    session_factory: SessionFactory, url: str, *, now: datetime, error: str, backoff: Backoff
) -> FeedSource:
    """The feed failed: count it and put off the next attempt; returns the new state."""

    def change(row: FeedSource) -> None:
        row.failures += 1
        row.last_error = error
        row.next_attempt_at = now + backoff.delay(row.failures)
        row.last_attempt_at = now

    return await _update(session_factory, url, now=now, change=change)


async def _update(
    session_factory: SessionFactory,
    url: str,
    *,
    now: datetime,
    change: Callable[[FeedSource], None],
) -> FeedSource:
    for attempt in (1, 2):
        try:
            async with session_factory.begin() as session:
                row = await session.scalar(
                    select(FeedSource).where(FeedSource.url == url).with_for_update()
                )
                if row is None:
                    row = FeedSource(url=url, failures=0, updated_at=now)
                    session.add(row)
                change(row)
                row.updated_at = now
            return row
        except IntegrityError:
            # another instance created the row at the same moment: it exists now
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def failing_feeds(session: AsyncSession) -> list[FeedSource]:
    """Feeds whose last attempt failed, most failures first."""
    rows = await session.scalars(
        select(FeedSource)
        .where(FeedSource.failures > 0)
        .order_by(FeedSource.failures.desc(), FeedSource.url)
    )
    return list(rows)
