"""Feed fuzzing: hostile and random feeds through the ingest entry point, on a real database.

Each feed is served over loopback HTTP and ingested with `ingest_sources`, as the bot's feed
job does, into a database that already holds a good feed's stories. For every input:

- ingest returns a report and raises nothing (a crash is counted, then fails the test);
- time and memory stay bounded (time.monotonic, tracemalloc's peak): an entity expansion or
  a quadratic blowup would take gigabytes, the bound is tens of megabytes plus a multiple of
  the input's size;
- the good feed's stories are exactly as they were (every column, every section);
- the report is honest: the rows stored from the feed's source are the report's `new`;
- what was stored is clean (no control characters, within the columns, dated no later than
  now) and the sections stay within the configured limit;
- both databases store the same: each input's outcome is kept per database kind, and the
  second database to run the same input must match the first (the fixed corpus always; the
  random inputs too, as hypothesis draws them derandomized).

Counts go to `fuzz_counts["feeds"]`.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import resource
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from sqlalchemy import func, select

from digests.db import SessionFactory, make_engine, make_session_factory
from digests.feeds.clean import without_controls
from digests.feeds.ingest import IngestReport, ingest_sources
from digests.models import KEY_MAX, LINK_MAX, SECTION_NAME_MAX, TITLE_MAX, Article, Section
from tests.fakes.loopback import serving
from tests.fuzz.conftest import fuzz_scale
from tests.fuzz.feed_corpus import FEEDS, GOOD_FEED, XXE_PATH, corpus

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MAX_SECTIONS = 40  # the bot's default (Settings.max_sections)
DEFAULT_SECTION = "General"
FEED_HOST = "http://feeds.fuzz.test"
RANDOM_EXAMPLES = 300

MB = 1 << 20
# Generous, but far below what an expansion would need (the billion laughs: ~3 GB).
BASE_SECONDS, SECONDS_PER_MB = 10.0, 6.0
BASE_MEMORY, MEMORY_PER_INPUT_BYTE = 48 * MB, 40

_SKIPPED = re.compile(r"(\d+) entr(?:y|ies) (?:skipped|dropped)")
# outcome of each input on each database kind, to compare the two
_OUTCOMES: defaultdict[str, dict[tuple[str, int], Outcome]] = defaultdict(dict)


def _peak_rss() -> int:
    """The process's peak resident memory so far, in bytes (Linux reports kilobytes). Unlike
    tracemalloc it costs nothing to watch, and it rises only when an input takes more memory
    than any input before it, so its growth over one ingest bounds what that ingest took."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _digest(rows: list[tuple[object, ...]]) -> str:
    return hashlib.sha256(repr(rows).encode("utf-8", "surrogatepass")).hexdigest()


def clock() -> datetime:
    return NOW


@dataclass(frozen=True)
class Outcome:
    """What one input did, in terms that must not depend on the database."""

    error: str | None
    new: int
    updated: int
    unchanged: int
    warnings: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...] | str  # the stored rows, or a digest of many


@dataclass
class FeedServer:
    base: str  # the real loopback address
    pages: dict[str, bytes] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)


class _ToLoopback(httpx.AsyncBaseTransport):
    """Sends every request to the feed server's port over real HTTP. Sources are named
    http://feeds.fuzz.test/...: what is stored from them (links resolved against the source,
    keys hashed from those links) is then the same in every run, whatever the port."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._http = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(host="127.0.0.1", port=self._port)
        return await self._http.handle_async_request(request)

    async def aclose(self) -> None:
        await self._http.aclose()


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    """Loopback HTTP serving whatever bytes a test puts at a path; notes every path asked."""
    server = FeedServer(base="")

    async def serve(request: web.Request) -> web.Response:
        server.requested.append(request.path)
        body = server.pages.get(request.path)
        if body is None:
            return web.Response(status=404, text="missing")
        return web.Response(body=body, content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    async with serving(app) as base:
        server.base = base
        yield server


def _row(article: Article) -> tuple[object, ...]:
    return (
        article.key,
        article.link,
        article.title,
        article.summary,
        article.published_at.isoformat(),
        article.ingested_at.isoformat(),
        article.updated_at.isoformat(),
        article.is_breaking,
        article.date_known,
        tuple(section.name for section in article.sections),
    )


class FeedBench:
    """A database holding a good feed, and the checks every hostile input goes through."""

    def __init__(
        self,
        factory: SessionFactory,
        server: FeedServer,
        client: httpx.AsyncClient,
        kind: str,
        counts: Counter[str],
    ) -> None:
        self.factory = factory
        self.server = server
        self.client = client
        self.kind = kind
        self.counts = counts
        self.seen: Counter[str] = Counter()
        self.good_source = f"{FEED_HOST}/good"
        self.good: list[tuple[object, ...]] = []
        for name in ("feeds tried", "entries stored", "entries skipped (reported)", "crashes"):
            counts[name] += 0

    async def seed(self) -> None:
        self.server.pages["/good"] = GOOD_FEED
        [report] = await self._ingest(self.good_source)
        assert report.ok and report.new == 30, report.line()
        self.good = await self._rows(self.good_source)
        assert len(self.good) == 30

    async def _ingest(self, source: str) -> list[IngestReport]:
        return await ingest_sources(
            [source],
            session_factory=self.factory,
            now=clock,
            category_map={"soccer": "Sports"},
            default_section=DEFAULT_SECTION,
            max_sections=MAX_SECTIONS,
            client=self.client,
        )

    async def _rows(self, source: str) -> list[tuple[object, ...]]:
        async with self.factory() as session:
            articles = await session.scalars(
                select(Article).where(Article.source == source).order_by(Article.key)
            )
            return [_row(article) for article in articles]

    async def try_feed(self, name: str, data: bytes) -> Outcome:
        """Ingest `data` from a source of its own and check everything the module promises."""
        digest = hashlib.sha256(data).hexdigest()[:16]
        self.seen[digest] += 1
        occurrence = self.seen[digest]
        path = f"/feed/{digest}-{occurrence}"
        self.server.pages[path] = data
        source = FEED_HOST + path
        self.counts["feeds tried"] += 1

        megabytes = len(data) / MB
        allowed = BASE_SECONDS + SECONDS_PER_MB * megabytes
        peak_before = _peak_rss()
        started = time.monotonic()
        try:
            async with asyncio.timeout(allowed * 2):  # a hang fails rather than stalls the run
                reports = await self._ingest(source)
        except BaseException:
            self.counts["crashes"] += 1
            raise
        finally:
            elapsed = time.monotonic() - started
            grown = _peak_rss() - peak_before
            del self.server.pages[path]
        assert elapsed <= allowed, (name, elapsed)
        assert grown <= BASE_MEMORY + MEMORY_PER_INPUT_BYTE * len(data), (name, grown // MB)

        [report] = reports
        assert report.source == source
        stored = await self._rows(source)
        assert await self._rows(self.good_source) == self.good, f"{name}: a good story changed"
        self._check_stored(name, report, stored)
        self.counts["entries stored"] += report.new
        self.counts["entries skipped (reported)"] += sum(
            int(n) for warning in report.warnings for n in _SKIPPED.findall(warning)
        )
        if not report.ok:
            self.counts["feeds refused (reported)"] += 1

        outcome = Outcome(
            error=report.error,
            new=report.new,
            updated=report.updated,
            unchanged=report.unchanged,
            warnings=tuple(report.warnings),
            rows=tuple(stored) if len(stored) <= 50 else _digest(stored),
        )
        self._compare_with_the_other_database(name, (digest, occurrence), outcome)
        return outcome

    def _check_stored(
        self, name: str, report: IngestReport, stored: list[tuple[object, ...]]
    ) -> None:
        if report.error is not None:
            assert stored == [], f"{name}: a refused feed stored stories"
            assert "\n" not in report.error and report.error.strip(), repr(report.error)
            return
        # a source of its own: every entry is new, or another source's story left alone
        assert (report.updated, report.unchanged) == (0, 0), report.line()
        assert len(stored) == report.new, f"{name}: report says {report.new}, stored {len(stored)}"
        for key, link, title, summary, published, *_, sections in stored:
            assert isinstance(key, str) and 0 < len(key) <= KEY_MAX
            assert isinstance(title, str) and 0 < len(title) <= TITLE_MAX
            assert link is None or (
                isinstance(link, str)
                and len(link) <= LINK_MAX
                and link.lower().startswith(("http://", "https://"))
            )
            for text in (key, link or "", title, summary):
                assert isinstance(text, str) and without_controls(text) == text, (name, text[:80])
            assert isinstance(published, str) and published <= NOW.isoformat()
            assert isinstance(sections, tuple) and sections
            assert all(isinstance(s, str) and 0 < len(s) <= SECTION_NAME_MAX for s in sections)

    def _compare_with_the_other_database(
        self, name: str, key: tuple[str, int], outcome: Outcome
    ) -> None:
        _OUTCOMES[self.kind][key] = outcome
        for kind, outcomes in _OUTCOMES.items():
            other = outcomes.get(key)
            if kind != self.kind and other is not None:
                assert outcome == other, (
                    f"{name}: {self.kind} and {kind} stored differently:\n{outcome}\n{other}"
                )
                self.counts["inputs compared across databases"] += 1

    async def sections(self) -> int:
        async with self.factory() as session:
            return int(await session.scalar(select(func.count()).select_from(Section)) or 0)


@pytest.fixture
async def bench(
    db_url: str, feed_server: FeedServer, fuzz_counts: defaultdict[str, Counter[str]]
) -> AsyncIterator[FeedBench]:
    engine = make_engine(db_url)
    port = int(feed_server.base.rsplit(":", 1)[1])
    client = httpx.AsyncClient(transport=_ToLoopback(port), follow_redirects=True)
    try:
        made = FeedBench(
            make_session_factory(engine),
            feed_server,
            client,
            engine.dialect.name,
            fuzz_counts["feeds"],
        )
        await made.seed()
        yield made
    finally:
        await client.aclose()
        await engine.dispose()


async def test_the_hostile_corpus_is_reported_never_raised(bench: FeedBench) -> None:
    outcomes = {}
    for name, data in corpus(bench.server.base):
        outcomes[name] = await bench.try_feed(name, data)
    assert await bench.sections() <= MAX_SECTIONS + 1  # the default section is always allowed
    assert XXE_PATH not in bench.server.requested  # no external entity was ever fetched
    # a few outcomes that say the inputs did what they were meant to
    assert outcomes["huge-rss-20k"].new == 20_000
    assert outcomes["huge-atom-3k"].new == 3_000
    assert "larger than" in (outcomes["over-the-download-limit"].error or "")
    assert outcomes["empty"].error is not None and outcomes["garbage-5000"].error is not None
    assert outcomes["shared-guids"].new == 0
    assert any("another source" in w for w in outcomes["shared-guids"].warnings)
    assert outcomes["duplicate-guids"].new == 1
    assert outcomes["odd-dates-rss"].new == 13 and outcomes["long-guid"].new == 1


@settings(
    max_examples=RANDOM_EXAMPLES * fuzz_scale(),
    deadline=None,
    derandomize=True,  # the same inputs on every database, so their outcomes can be compared
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one database for all examples, on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=FEEDS)
async def test_random_feeds_are_reported_never_raised(bench: FeedBench, data: bytes) -> None:
    await bench.try_feed("random", data)
    assert await bench.sections() <= MAX_SECTIONS + 1
