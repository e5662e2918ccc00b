"""Polite polling against a loopback HTTP server: conditional GET, backoff of a failing feed,
and the failure as editors see it in /stats."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from multidict import CIMultiDictProxy
from sqlalchemy import func, select

from digests.db import SessionFactory
from digests.feeds import ingest as ingest_module
from digests.feeds.ingest import IngestReport, ingest_sources
from digests.feeds.parse import ParsedFeed, parse_feed
from digests.feeds.state import Backoff
from digests.models import Article, FeedSource
from digests.newsroom import texts
from digests.newsroom.stats import collect_stats
from tests.fakes.loopback import serving

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BASE = timedelta(minutes=10)


def rss(*guids: str) -> bytes:
    items = "".join(
        f"<item><guid>{g}</guid><title>Story {g}</title><link>https://x.example/{g}</link>"
        "<pubDate>Mon, 30 Nov 2026 09:00:00 +0000</pubDate></item>"
        for g in guids
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://x.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


@dataclass
class Feed:
    url: str = ""
    body: bytes = b""
    etag: str = '"v1"'
    last_modified: str = "Mon, 30 Nov 2026 09:00:00 GMT"
    failing: bool = False
    requests: list[CIMultiDictProxy[str]] = field(default_factory=list)


@pytest.fixture
async def feed() -> AsyncIterator[Feed]:
    state = Feed()

    async def serve(request: web.Request) -> web.Response:
        state.requests.append(request.headers)
        if state.failing:
            return web.Response(status=500, text="database is down <again>")
        validators = {"ETag": state.etag, "Last-Modified": state.last_modified}
        if request.headers.get("If-None-Match") == state.etag:
            return web.Response(status=304, headers=validators)
        return web.Response(body=state.body, content_type="application/rss+xml", headers=validators)

    app = web.Application()
    app.router.add_get("/feed", serve)
    async with serving(app) as base:
        state.url = f"{base}/feed"
        yield state


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


async def poll(
    factory: SessionFactory, url: str, clock: Clock, *, respect_backoff: bool = True
) -> IngestReport:
    [report] = await ingest_sources(
        [url],
        session_factory=factory,
        now=clock,
        category_map={},
        default_section="General",
        backoff=Backoff(base=BASE),
        respect_backoff=respect_backoff,
    )
    return report


async def state_of(factory: SessionFactory, url: str) -> FeedSource:
    async with factory() as session:
        row = await session.scalar(select(FeedSource).where(FeedSource.url == url))
    assert row is not None
    return row


async def articles(factory: SessionFactory) -> int:
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Article)) or 0)


async def test_unchanged_feed_costs_one_304_and_no_parsing(
    session_factory: SessionFactory, feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []

    def counting_parse(
        data: bytes, *, source: str | None = None, content_type: str | None = None
    ) -> ParsedFeed:
        parsed.append(data)
        return parse_feed(data, source=source, content_type=content_type)

    monkeypatch.setattr(ingest_module, "parse_feed", counting_parse)
    feed.body = rss("a1", "a2")
    clock = Clock()
    first = await poll(session_factory, feed.url, clock)
    assert (first.new, first.not_modified) == (2, False)
    assert "If-None-Match" not in feed.requests[0]

    clock.now += timedelta(minutes=10)
    second = await poll(session_factory, feed.url, clock)
    assert feed.requests[1]["If-None-Match"] == '"v1"'
    assert feed.requests[1]["If-Modified-Since"] == "Mon, 30 Nov 2026 09:00:00 GMT"
    assert second.not_modified and second.ok
    assert (second.new, second.updated, second.unchanged) == (0, 0, 0)
    assert second.line() == f"{feed.url}: not modified"
    assert len(parsed) == 1  # the 304 was not parsed
    assert await articles(session_factory) == 2
    assert (await state_of(session_factory, feed.url)).last_success_at == clock.now


async def test_changed_feed_with_a_new_etag_is_ingested(
    session_factory: SessionFactory, feed: Feed
) -> None:
    feed.body = rss("b1")
    clock = Clock()
    await poll(session_factory, feed.url, clock)
    feed.body, feed.etag = rss("b1", "b2"), '"v2"'
    clock.now += timedelta(minutes=10)
    report = await poll(session_factory, feed.url, clock)
    assert feed.requests[1]["If-None-Match"] == '"v1"'
    assert (report.new, report.unchanged, report.not_modified) == (1, 1, False)
    assert await articles(session_factory) == 2
    assert (await state_of(session_factory, feed.url)).etag == '"v2"'
    clock.now += timedelta(minutes=10)
    assert (await poll(session_factory, feed.url, clock)).not_modified


async def test_failing_feed_backs_off_doubling_and_success_resets(
    session_factory: SessionFactory, feed: Feed
) -> None:
    feed.failing = True
    clock = Clock()
    first = await poll(session_factory, feed.url, clock)
    assert first.error == "HTTP 500 Internal Server Error"
    assert first.failures == 1
    assert (await state_of(session_factory, feed.url)).next_attempt_at == T0 + BASE

    clock.now = T0 + timedelta(minutes=9)
    waiting = await poll(session_factory, feed.url, clock)
    assert len(feed.requests) == 1  # the server was not asked
    assert waiting.line() == (
        f"{feed.url}: backing off until 12:10 UTC after 1 failure: HTTP 500 Internal Server Error"
    )
    assert (waiting.new, waiting.failures) == (0, 1)

    clock.now = T0 + BASE
    second = await poll(session_factory, feed.url, clock)
    assert (len(feed.requests), second.failures) == (2, 2)
    row = await state_of(session_factory, feed.url)
    assert row.next_attempt_at == clock.now + 2 * BASE  # the window doubled
    clock.now += 2 * BASE - timedelta(seconds=1)
    assert (await poll(session_factory, feed.url, clock)).backing_off is not None
    assert len(feed.requests) == 2

    clock.now += timedelta(seconds=1)
    feed.failing, feed.body = False, rss("c1")
    ok = await poll(session_factory, feed.url, clock)
    assert (ok.new, ok.failures, ok.error) == (1, 0, None)
    row = await state_of(session_factory, feed.url)
    assert (row.failures, row.last_error, row.next_attempt_at) == (0, None, None)

    feed.failing = True
    clock.now += timedelta(minutes=1)
    await poll(session_factory, feed.url, clock)
    row = await state_of(session_factory, feed.url)
    assert row.next_attempt_at == clock.now + BASE  # back to the first window


async def test_an_explicit_run_ignores_the_backoff(
    session_factory: SessionFactory, feed: Feed
) -> None:
    feed.failing = True
    clock = Clock()
    await poll(session_factory, feed.url, clock)
    clock.now += timedelta(minutes=1)
    report = await poll(session_factory, feed.url, clock, respect_backoff=False)
    assert len(feed.requests) == 2
    assert (report.error, report.failures) == ("HTTP 500 Internal Server Error", 2)


async def test_stats_show_the_failing_feed_and_its_error(
    session_factory: SessionFactory, feed: Feed
) -> None:
    feed.failing = True
    secret_url = feed.url.replace("http://", "http://user:hunter2@") + "?token=s3cret"
    await poll(session_factory, secret_url, Clock())
    async with session_factory() as session:
        found = await collect_stats(session, now=T0)
    [failing] = found.failing
    assert failing.url == feed.url
    assert (failing.failures, failing.last_error) == (1, "HTTP 500 Internal Server Error")
    text = texts.stats(found)
    assert "<b>Failing feeds</b>" in text
    assert f"• {feed.url}: 1 failure, next try 12:10 UTC: HTTP 500 Internal Server Error" in text
    assert "hunter2" not in text and "s3cret" not in text
