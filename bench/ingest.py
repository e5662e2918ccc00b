"""How long a feed takes to ingest: feedparser's parse, ours, and our store, on the same files.

    python -m bench.ingest [--db sqlite|postgres|both] [--repeat 3] [--big 20000]
                           [--probe 36000] [--skip-probe] [--postgres-url URL] [--results PATH]

Inputs: the real-shape corpus (tests/data/feeds/real/*.xml, tests/data/feeds/*.xml), the
bundled digests/data/sample_feed.xml, a generated podcast-like feed of about 1.6 MB (long
content:encoded, enclosures, itunes:image) and a generated feed of `--big` entries. Per feed:

* **feedparser**: `feedparser.parse` on the bytes (with the same response headers we give it);
* **parse**: ours, `digests.feeds.parse.parse_feed` (feedparser's parse and our reading of
  its entries);
* **store**: `digests.feeds.ingest.store_feed` storing the parsed entries (everything after
  parsing: the entries bounded and keyed, sections, the transactions of `STORE_CHUNK`), first
  into a fresh migrated database, then a second time unchanged.

Each figure is the median of `--repeat` runs (the store on a fresh database each run), in
wall and client CPU seconds (the whole process: SQLite works in aiosqlite's thread; on
PostgreSQL the server's CPU is not counted). Targets (issue 24): the store costs at most 0.3×
feedparser's parse on the corpus (every feed but the big one), and the big feed stores within
1.3× its feedparser parse, first and second ingest, wall time, on both databases.

**The probe** (`--probe` entries, a reliability probe's poll): a fresh child process runs the
product's `ingest_source` on a generated feed of 36,000 entries twice (the bot's poll: fetch,
parse off the event loop, store), while a reader task in that process and a reader in another
process each ask for /latest (`stories.service.latest`, one session each, as a handler) every
0.1 s against the same database. Reported: each reader's p50 / p95 / worst latency and errors
(target: every /latest within 1 s), and the child's peak resident set (VmHWM) with the bot's
modules imported (target: at most 200 MB). Writes bench/results-ingest.json; a missed target
prints FAIL, the exit status stays 0. See bench/README.md, "Ingest".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import feedparser

from bench.databases import DEFAULT_POSTGRES, database
from bench.run import _environment
from digests.db import SessionFactory, make_engine, make_session_factory, upgrade
from digests.feeds.ingest import store_feed
from digests.feeds.parse import ParsedFeed, parse_feed

RESULTS = Path(__file__).with_name("results-ingest.json")
ROOT = Path(__file__).resolve().parent.parent
TARGET_STORE_RATIO = 0.3  # store / feedparser's parse, the corpus
TARGET_BIG_RATIO = 1.3  # store / feedparser's parse, the big feed
TARGET_READER_S = 1.0  # every /latest during the probe's ingest
TARGET_PEAK_MB = 200.0  # the probe's process
PODCAST_BYTES = 1_600_000
READER_EVERY = 0.1
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CONTENT_TYPES = {"cp1251_no_declaration.xml": "application/rss+xml; charset=windows-1251"}
CATEGORY_MAP: dict[str, str] = {}
DEFAULT_SECTION = "General"
MAX_SECTIONS = 40  # the setting's default


def _say(message: str) -> None:
    print(message, flush=True)


# ---- the generated feeds --------------------------------------------------------------------


def _words(rng: random.Random) -> list[str]:
    letters = "abcdefghiklmnoprstuvwy"
    return ["".join(rng.choices(letters, k=rng.randint(2, 9))) for _ in range(400)]


def _sentence(rng: random.Random, words: list[str], n: int) -> str:
    return " ".join(rng.choices(words, k=n)).capitalize() + "."


def podcast_feed(size: int = PODCAST_BYTES) -> bytes:
    """A podcast's feed of about `size` bytes: long show notes in content:encoded, an MP3
    enclosure and episode art (itunes:image) per episode, as podcast hosts write them."""
    rng = random.Random(24)
    words = _words(rng)
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">\n<channel>\n'
        "<title>The Long Listen</title><link>https://podcast.example/</link>\n"
        "<description>A generated podcast feed.</description>\n"
        '<itunes:image href="https://cdn.podcast.example/show.jpg"/>\n'
        '<itunes:category text="Society &amp; Culture"/>\n'
    )
    items: list[str] = []
    total = len(head)
    n = 0
    while total < size:
        n += 1
        when = NOW - timedelta(days=n)
        notes = "".join(
            f"<p>{_sentence(rng, words, rng.randint(20, 60))} "
            f'<a href="https://podcast.example/links/{n}/{k}">{rng.choice(words)}</a></p>'
            for k in range(rng.randint(12, 24))
        )
        item = (
            f"<item><title>Episode {n}: {_sentence(rng, words, 6)}</title>\n"
            f"<link>https://podcast.example/episodes/{n}</link>\n"
            f'<guid isPermaLink="false">long-listen-{n}</guid>\n'
            f"<pubDate>{format_datetime(when)}</pubDate>\n"
            f"<category>{rng.choice(['Society &amp; Culture', 'History', 'Science'])}</category>\n"
            f"<description>{escape(_sentence(rng, words, 30))}</description>\n"
            f"<content:encoded><![CDATA[{notes}]]></content:encoded>\n"
            f'<enclosure url="https://cdn.podcast.example/audio/{n}.mp3" '
            f'length="{rng.randint(10**7, 9 * 10**7)}" type="audio/mpeg"/>\n'
            f'<itunes:image href="https://cdn.podcast.example/art/{n}.jpg"/>\n'
            f"<itunes:duration>00:{rng.randint(10, 59)}:{rng.randint(10, 59)}</itunes:duration>\n"
            f"<itunes:summary>{escape(_sentence(rng, words, 40))}</itunes:summary>\n"
            "<itunes:explicit>no</itunes:explicit></item>\n"
        )
        items.append(item)
        total += len(item.encode())
    return (head + "".join(items) + "</channel></rss>\n").encode()


def news_feed(entries: int, *, seed: int = 20, lean: bool = False) -> bytes:
    """A news site's RSS 2.0 feed of `entries` items: one or two categories of twelve, a
    paragraph of HTML, a media:content photo on half of them, a date each. `lean`: a
    sentence of text and no photo (36,000 of them fit the fetch's 10 MB limit)."""
    rng = random.Random(seed)
    words = _words(rng)
    sections = [
        "World",
        "Politics",
        "Business",
        "Technology",
        "Science",
        "Health",
        "Sport",
        "Culture",
        "Opinion",
        "Travel",
        "Climate",
        "Education",
    ]
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">\n<channel>\n'
        "<title>The Generated Times</title><link>https://news.example/</link>\n"
        "<description>A generated news feed.</description>\n"
    ]
    for n in range(entries):
        when = NOW - timedelta(minutes=7 * n)
        if lean:  # title, link, date, a category and a short text: about 250 bytes
            parts.append(
                f"<item><title>{_sentence(rng, words, 6)}</title>"
                f"<link>https://news.example/{n}</link><pubDate>{format_datetime(when)}</pubDate>"
                f"<category>{rng.choice(sections)}</category>"
                f"<description>{_sentence(rng, words, 10)}</description></item>\n"
            )
            continue
        link = f"https://news.example/{n // 1000}/{n}/{rng.choice(words)}-{rng.choice(words)}"
        categories = "".join(
            f"<category>{name}</category>" for name in rng.sample(sections, rng.randint(1, 2))
        )
        photo = (
            f'<media:content url="https://img.news.example/{n}.jpg" medium="image" '
            'width="1200" height="800"/>'
            if n % 2
            else ""
        )
        text = (
            f"<p>{_sentence(rng, words, rng.randint(25, 50))}</p>"
            f"<p>{_sentence(rng, words, rng.randint(10, 30))}</p>"
        )
        parts.append(
            f"<item><title>{_sentence(rng, words, rng.randint(6, 12))}</title>"
            f"<link>{link}</link><guid>{link}</guid>"
            f"<pubDate>{format_datetime(when)}</pubDate>{categories}"
            f"<description><![CDATA[{text}]]></description>{photo}</item>\n"
        )
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


@dataclass(frozen=True)
class Feed:
    name: str
    data: bytes
    content_type: str | None = None
    big: bool = False  # the big feed, apart from the corpus


def corpus(big: int) -> list[Feed]:
    """The files: the real-shape corpus, the sample, the podcast and the big feed. Files that
    are no feed at all (parse_feed refuses them) are left out: there is nothing to store."""
    files = sorted((ROOT / "tests/data/feeds/real").glob("*.xml"))
    files += sorted((ROOT / "tests/data/feeds").glob("*.xml"))
    files.append(ROOT / "digests/data/sample_feed.xml")
    feeds = [Feed(path.name, path.read_bytes(), CONTENT_TYPES.get(path.name)) for path in files]
    feeds.append(Feed("generated-podcast.xml", podcast_feed()))
    feeds.append(Feed(f"generated-{big}.xml", news_feed(big), big=True))
    return feeds


# ---- timing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float

    @staticmethod
    def median(runs: list[Timing]) -> Timing:
        return Timing(
            statistics.median(run.wall for run in runs), statistics.median(run.cpu for run in runs)
        )

    def as_dict(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 5), "cpu_s": round(self.cpu, 5)}


@contextlib.contextmanager
def _clock(into: list[Timing]) -> Iterator[None]:
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    into.append(Timing(time.perf_counter() - wall, time.process_time() - cpu))


def _headers(feed: Feed) -> dict[str, str]:
    return {"content-type": feed.content_type} if feed.content_type else {}


async def _run_once(url: str, feeds: list[Feed]) -> dict[str, dict[str, Any]]:
    """Per feed, one after the other (so that the machine's load is alike for all three):
    feedparser's parse, ours, our store into this fresh database, and the store again."""
    engine = make_engine(url)
    try:
        await upgrade(engine)
        factory = make_session_factory(engine)
        # a running bot's engine has its connections open and its statements compiled
        await _store(factory, "warm-up", parse_feed(news_feed(20, seed=1), source="warm-up"))
        found: dict[str, dict[str, Any]] = {}
        for feed in feeds:
            timings: list[Timing] = []
            with _clock(timings):
                feedparser.parse(io.BytesIO(feed.data), response_headers=_headers(feed))
            with _clock(timings):
                parsed = parse_feed(feed.data, source=feed.name, content_type=feed.content_type)
            reports = []
            for _ in ("first", "second"):
                with _clock(timings):
                    reports.append(await _store(factory, feed.name, parsed))
            found[feed.name] = {
                "feedparser": timings[0],
                "parse": timings[1],
                **{
                    phase: {
                        "timing": timing,
                        "new": report.new,
                        "updated": report.updated,
                        "unchanged": report.unchanged,
                    }
                    for phase, timing, report in zip(
                        ("first", "second"), timings[2:], reports, strict=True
                    )
                },
            }
            del parsed
        return found
    finally:
        await engine.dispose()


async def _store(factory: SessionFactory, name: str, feed: ParsedFeed) -> Any:
    return await store_feed(
        factory,
        feed.entries,
        now=lambda: NOW,
        category_map=CATEGORY_MAP,
        default_section=DEFAULT_SECTION,
        source=f"https://feeds.example/{name}",
        max_sections=MAX_SECTIONS,
        feeds=(),
    )


async def time_feeds(
    kind: str, feeds: list[Feed], *, repeat: int, postgres_url: str
) -> dict[str, dict[str, Any]]:
    """Each figure of each feed: the median of `repeat` runs, each on a fresh database."""
    runs: list[dict[str, dict[str, Any]]] = []
    for n in range(repeat):
        _say(f"[{kind}] run {n + 1} of {repeat} ...")
        async with database(kind, postgres_url=postgres_url) as url:
            runs.append(await _run_once(url, feeds))
    found: dict[str, dict[str, Any]] = {}
    for feed in feeds:
        name = feed.name
        found[name] = {
            "feedparser": Timing.median([run[name]["feedparser"] for run in runs]),
            "parse": Timing.median([run[name]["parse"] for run in runs]),
        }
        for phase in ("first", "second"):
            last = runs[-1][name][phase]
            found[name][phase] = {
                "timing": Timing.median([run[name][phase]["timing"] for run in runs]),
                "new": last["new"],
                "updated": last["updated"],
                "unchanged": last["unchanged"],
            }
    return found


# ---- the probe: readers during a 36,000-entry poll, and its memory -----------------------------


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(field_name)


@dataclass
class Reader:
    """Asks for /latest every READER_EVERY seconds, as a handler would, and times each."""

    factory: SessionFactory
    latencies: list[float]
    errors: list[str]

    async def ask(self) -> None:
        from digests.stories import service
        from digests.ui.shapes import ReaderRequest

        started = time.perf_counter()
        try:
            async with self.factory() as session:
                replies = await service.latest(session, None, ReaderRequest(now=NOW))
            if not replies:
                raise RuntimeError("no reply")
        except Exception as exc:  # the bot would answer "temporarily unavailable"
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
        self.latencies.append(time.perf_counter() - started)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.ask()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), READER_EVERY)


def _latency(latencies: list[float], errors: list[str]) -> dict[str, Any]:
    ordered = sorted(latencies) or [0.0]
    return {
        "asked": len(latencies),
        "p50_s": round(statistics.median(ordered), 4),
        "p95_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 4),
        "worst_s": round(ordered[-1], 4),
        "over_1s": sum(1 for seconds in latencies if seconds > TARGET_READER_S),
        "errors": len(errors),
        "error_examples": sorted(set(errors))[:3],
    }


async def _reader_process(url: str) -> dict[str, Any]:
    """The reader in another process: asks until its stdin closes."""
    engine = make_engine(url)
    reader = Reader(make_session_factory(engine), [], [])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not sys.stdin.read(1) else None)
    print("ready", flush=True)
    try:
        await reader.run(stop)
    finally:
        await engine.dispose()
    return _latency(reader.latencies, reader.errors)


async def _probe_process(url: str, feed_path: Path) -> dict[str, Any]:
    """The bot's poll of a large feed, twice, with a reader task alongside; its memory."""
    import httpx

    import bot.app  # noqa: F401 - the bot's modules, so that the baseline is the bot's
    from digests.feeds.ingest import ingest_source

    engine = make_engine(url)
    factory = make_session_factory(engine)
    results: dict[str, Any] = {"entries": int(feed_path.stem.rsplit("-", 1)[-1])}
    try:
        reader = Reader(factory, [], [])
        await reader.ask()  # the pool's first connection, before the baseline
        reader.latencies.clear()
        gc.collect()
        results["rss_before_mb"] = _status_kb("VmRSS") / 1024
        results["peak_before_mb"] = _status_kb("VmHWM") / 1024
        async with httpx.AsyncClient() as client:
            for phase in ("first", "second"):
                reader = Reader(factory, [], [])
                stop = asyncio.Event()
                task = asyncio.create_task(reader.run(stop))
                wall, cpu = time.perf_counter(), time.process_time()
                report = await ingest_source(
                    str(feed_path),
                    session_factory=factory,
                    client=client,
                    now=lambda: NOW,
                    category_map=CATEGORY_MAP,
                    default_section=DEFAULT_SECTION,
                    max_sections=MAX_SECTIONS,
                )
                seconds, cpu_used = time.perf_counter() - wall, time.process_time() - cpu
                stop.set()
                await task
                results[phase] = {
                    "wall_s": round(seconds, 3),
                    "cpu_s": round(cpu_used, 3),
                    "report": report.line(),
                    "reader_in_process": _latency(reader.latencies, reader.errors),
                    "peak_mb": _status_kb("VmHWM") / 1024,
                    "rss_after_mb": _status_kb("VmRSS") / 1024,
                }
    finally:
        await engine.dispose()
    results["peak_mb"] = _status_kb("VmHWM") / 1024
    return results


def _child(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def probe(kind: str, *, entries: int, postgres_url: str) -> dict[str, Any]:
    """The sample stored, then the probe's process and the other process's reader."""
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-ingest-") as folder:
        feed_path = Path(folder) / f"probe-{entries}.xml"
        feed_path.write_bytes(news_feed(entries, seed=36, lean=True))
        reader_out = Path(folder) / "reader.json"
        probe_out = Path(folder) / "probe.json"
        async with database(kind, postgres_url=postgres_url) as url:
            engine = make_engine(url)
            try:
                await upgrade(engine)
                sample = (ROOT / "digests/data/sample_feed.xml").read_bytes()
                await _store(make_session_factory(engine), "sample", parse_feed(sample, source="s"))
            finally:
                await engine.dispose()
            _say(f"[{kind}] probe: polling a {entries:,}-entry feed twice, readers alongside ...")
            reader = _child(["--reader-child", url, str(reader_out)])
            try:
                assert reader.stdout is not None
                reader.stdout.readline()  # "ready"
                completed = await asyncio.to_thread(
                    subprocess.run,
                    [
                        sys.executable,
                        "-m",
                        "bench.ingest",
                        "--probe-child",
                        url,
                        str(feed_path),
                        str(probe_out),
                    ],
                    check=False,
                )
            finally:
                assert reader.stdin is not None
                reader.stdin.close()
                reader.wait(timeout=60)
            if completed.returncode != 0:
                raise RuntimeError(f"[{kind}] the probe's process failed")
            found: dict[str, Any] = json.loads(probe_out.read_text())
            found["reader_other_process"] = json.loads(reader_out.read_text())
    return found


# ---- the report ---------------------------------------------------------------------------


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 3) if whole else float("inf")


def summarise(feeds: list[Feed], timed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per feed and in total: the timings and the store's ratios to feedparser's parse."""
    per_feed: dict[str, Any] = {}
    totals: dict[str, dict[str, float]] = {}
    for feed in feeds:
        parse = store = timed[feed.name]
        row: dict[str, Any] = {
            "bytes": len(feed.data),
            "entries": store["first"]["new"],
            "feedparser": parse["feedparser"].as_dict(),
            "parse": parse["parse"].as_dict(),
        }
        for phase in ("first", "second"):
            timing: Timing = store[phase]["timing"]
            row[f"store_{phase}"] = timing.as_dict() | {
                key: store[phase][key] for key in ("new", "updated", "unchanged")
            }
            row[f"store_{phase}_ratio"] = _ratio(timing.wall, parse["feedparser"].wall)
            row[f"store_{phase}_cpu_ratio"] = _ratio(timing.cpu, parse["feedparser"].cpu)
        per_feed[feed.name] = row
        group = "big" if feed.big else "corpus"
        total = totals.setdefault(group, {})
        for column in ("feedparser", "parse", "store_first", "store_second"):
            for unit in ("wall_s", "cpu_s"):
                total[f"{column}_{unit}"] = total.get(f"{column}_{unit}", 0.0) + row[column][unit]
        total["entries"] = total.get("entries", 0) + row["entries"]
        total["feeds"] = total.get("feeds", 0) + 1
    verdicts = {}
    for group, limit in (("corpus", TARGET_STORE_RATIO), ("big", TARGET_BIG_RATIO)):
        total = totals[group]
        for phase in ("first", "second"):
            ratio = _ratio(total[f"store_{phase}_wall_s"], total["feedparser_wall_s"])
            total[f"store_{phase}_ratio"] = ratio
            total[f"store_{phase}_cpu_ratio"] = _ratio(
                total[f"store_{phase}_cpu_s"], total["feedparser_cpu_s"]
            )
            verdicts[f"{group}_{phase}"] = {
                "ratio": ratio,
                "target": limit,
                "ok": ratio <= limit,
            }
    return {"feeds": per_feed, "totals": totals, "verdicts": verdicts}


def _print_run(kind: str, found: dict[str, Any]) -> None:
    _say(f"[{kind}] seconds, wall (client CPU); store ratio = store wall / feedparser wall")
    _say(
        f"  {'feed':<28}{'entries':>8}{'feedparser':>17}{'our parse':>17}"
        f"{'store first':>17}{'ratio':>7}{'store again':>17}{'ratio':>7}"
    )

    def cell(row: dict[str, float]) -> str:
        return f"{row['wall_s']:8.4f} ({row['cpu_s']:6.4f})"

    for name, row in found["feeds"].items():
        _say(
            f"  {name[:27]:<28}{row['entries']:>8}{cell(row['feedparser']):>17}"
            f"{cell(row['parse']):>17}{cell(row['store_first']):>17}"
            f"{row['store_first_ratio']:>7.2f}{cell(row['store_second']):>17}"
            f"{row['store_second_ratio']:>7.2f}"
        )
    for group, total in found["totals"].items():

        def pair(column: str, total: dict[str, float] = total) -> str:
            return f"{total[f'{column}_wall_s']:8.4f} ({total[f'{column}_cpu_s']:6.4f})"

        label = f"total {group} ({int(total['feeds'])})"
        _say(
            f"  {label:<28}{int(total['entries']):>8}{pair('feedparser'):>17}"
            f"{pair('parse'):>17}{pair('store_first'):>17}{total['store_first_ratio']:>7.2f}"
            f"{pair('store_second'):>17}{total['store_second_ratio']:>7.2f}"
        )
    for name, verdict in found["verdicts"].items():
        ok = "ok" if verdict["ok"] else "FAIL"
        _say(f"  {name}: store / feedparser {verdict['ratio']:.2f} ≤ {verdict['target']}: {ok}")


def _print_probe(kind: str, found: dict[str, Any]) -> None:
    peak = found["peak_mb"]
    ok = "ok" if peak <= TARGET_PEAK_MB else "FAIL"
    _say(
        f"[{kind}] probe, {found['entries']:,} entries: process before {found['rss_before_mb']:.0f}"
        f" MB, peak {peak:.0f} MB (target ≤ {TARGET_PEAK_MB:.0f} MB: {ok})"
    )
    readers = [
        (f"{phase} poll, reader task", found[phase]["reader_in_process"])
        for phase in ("first", "second")
    ]
    readers.append(("other process, both polls", found["reader_other_process"]))
    for phase in ("first", "second"):
        row = found[phase]
        _say(
            f"  {phase} poll: {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU; {row['report']}"
        )
    for label, row in readers:
        ok = "ok" if row["worst_s"] <= TARGET_READER_S and not row["errors"] else "FAIL"
        _say(
            f"  /latest, {label}: {row['asked']} asked, p50 {row['p50_s']:.3f} s, "
            f"p95 {row['p95_s']:.3f} s, worst {row['worst_s']:.3f} s, {row['errors']} errors "
            f"(target within {TARGET_READER_S:.0f} s: {ok})"
        )


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    feeds = corpus(args.big)
    usable: list[Feed] = []
    for feed in feeds:
        try:
            parse_feed(feed.data, source=feed.name, content_type=feed.content_type)
        except Exception as exc:  # a file that is no feed: nothing to store
            _say(f"  {feed.name}: left out ({exc})")
            continue
        usable.append(feed)
    _say(f"timing feedparser's parse, ours and our store on {len(usable)} feeds ...")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {kind: {} for kind in kinds}
    for kind in kinds if not args.probe_only else ():
        timed = await time_feeds(kind, usable, repeat=args.repeat, postgres_url=args.postgres_url)
        results[kind] = summarise(usable, timed)
        _print_run(kind, results[kind])
    gc.collect()
    if not args.skip_probe:
        for kind in kinds:
            results[kind]["probe"] = await probe(
                kind, entries=args.probe, postgres_url=args.postgres_url
            )
            _print_probe(kind, results[kind]["probe"])
    return results


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--reader-child":
        found = asyncio.run(_reader_process(sys.argv[2]))
        Path(sys.argv[3]).write_text(json.dumps(found))
        return
    if len(sys.argv) == 5 and sys.argv[1] == "--probe-child":
        found = asyncio.run(_probe_process(sys.argv[2], Path(sys.argv[3])))
        Path(sys.argv[4]).write_text(json.dumps(found))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big", type=int, default=20_000, help="entries of the big feed")
    parser.add_argument("--probe", type=int, default=36_000, help="entries of the probe's feed")
    parser.add_argument("--skip-probe", action="store_true")
    parser.add_argument("--probe-only", action="store_true", help="only the probe")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    started = time.monotonic()
    results = asyncio.run(_run(args))
    args.results.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": " ".join(["python -m bench.ingest", *sys.argv[1:]]),
                "environment": _environment(),
                "targets": {
                    "store_over_feedparser_corpus": TARGET_STORE_RATIO,
                    "store_over_feedparser_big": TARGET_BIG_RATIO,
                    "reader_latest_s": TARGET_READER_S,
                    "probe_peak_mb": TARGET_PEAK_MB,
                },
                "seconds": round(time.monotonic() - started, 1),
                "results": results,
            },
            indent=2,
            default=lambda value: value.as_dict() if isinstance(value, Timing) else str(value),
        )
        + "\n"
    )
    _say(f"wrote {args.results}")


if __name__ == "__main__":
    main()
