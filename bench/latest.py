"""How long /latest and its ◀ / ▶ page turns take inside the bot, at 100,000 stories and more.

    python -m bench.latest [--db sqlite|postgres|both] [--stories 100000] [--sections 12]
                           [--samples 300] [--postgres-url URL] [--results PATH]

Server-side time: from the domain call to the rendered reply (`service.latest` and
`service.turn_page_button`, each in its own session as a handler runs it), without
Telegram; PostgreSQL is vacuumed after the bulk load, as autovacuum keeps it. It seeds a
fresh database (bench/seed.py), then times, per database:

* first page: /latest (all stories) and /latest <section> for every section, in turn;
* turn near the top: Next ▶ from the first page and the few after it;
* turn anywhere: ◀ / ▶ from a story at a random depth of a random section (or of all);

and prints p50 / p99 / max in milliseconds beside the 20 ms p99 target; figures go to
bench/results-latest.json. It measures; a missed target prints FAIL, the exit status stays 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from bench.databases import DEFAULT_POSTGRES, database
from bench.seed import seed
from digests.db import SessionFactory, make_engine, make_session_factory, upgrade
from digests.models import Article, Section, article_sections
from digests.stories import service
from digests.ui.buttons import Direction, PageTurn
from digests.ui.shapes import ReaderRequest

RESULTS = Path(__file__).with_name("results-latest.json")
TARGET_P99_MS = 20.0


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def _timed(
    session_factory: SessionFactory, call: Callable[[Any], Awaitable[object]]
) -> float:
    started = time.perf_counter()
    async with session_factory.begin() as session:
        await call(session)
    return time.perf_counter() - started


async def _measure(url: str, *, stories: int, sections: int, samples: int) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        await upgrade(engine)
        session_factory = make_session_factory(engine)
        now = datetime.now(UTC)
        started = time.perf_counter()
        await seed(session_factory, subscribers=10, stories=stories, sections=sections, now=now)
        seeded_s = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            # the steady state autovacuum keeps: visibility maps set, so that counts are
            # index-only scans (right after a bulk load every row is still checked)
            async with engine.connect() as connection:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM (ANALYZE)"))
        request = ReaderRequest(now=now)
        rng = random.Random(7)
        async with session_factory() as session:
            slugs = list(await session.scalars(select(Section.slug).order_by(Section.id)))
            members: dict[int, list[tuple[int, int]]] = {0: []}
            rows = await session.execute(
                select(article_sections.c.section_id, Article.id, Article.published_at).join(
                    Article, Article.id == article_sections.c.article_id
                )
            )
            seen: set[int] = set()
            for section_id, article_id, published in rows:
                members.setdefault(section_id, []).append((article_id, int(published.timestamp())))
                if article_id not in seen:
                    seen.add(article_id)
                    members[0].append((article_id, int(published.timestamp())))
        for _ in range(3):  # warm the caches and the connection pool
            await _timed(session_factory, lambda s: service.latest(s, None, request))

        first: list[float] = []
        for n in range(samples):
            slug = None if n % (len(slugs) + 1) == 0 else slugs[n % (len(slugs) + 1) - 1]
            args = (slug,) if slug else ()
            wanted = ReaderRequest(now=now, args=args)
            first.append(
                await _timed(session_factory, lambda s, r=wanted: service.latest(s, None, r))
            )

        near_top: list[float] = []
        anywhere: list[float] = []
        section_ids = sorted(members)
        for _ in range(samples):
            section_id = rng.choice(section_ids)
            listed = members[section_id]
            ordered = sorted(listed, key=lambda m: (m[1], m[0]), reverse=True)
            top = ordered[rng.randrange(min(5, len(ordered)))]
            deep = rng.choice(ordered)
            for bucket, (article_id, ts) in ((near_top, top), (anywhere, deep)):
                direction = rng.choice((Direction.OLDER, Direction.NEWER))
                if bucket is near_top:
                    direction = Direction.OLDER
                turn = PageTurn(section_id, ts, article_id, direction)
                bucket.append(
                    await _timed(
                        session_factory,
                        lambda s, t=turn: service.turn_page_button(s, None, t, request),
                    )
                )
        return {
            "stories": stories,
            "sections": sections,
            "seed_s": round(seeded_s, 1),
            "first_page": _ms(first),
            "turn_near_top": _ms(near_top),
            "turn_anywhere": _ms(anywhere),
        }
    finally:
        await engine.dispose()


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {}
    for kind in kinds:
        async with database(kind, postgres_url=args.postgres_url) as url:
            print(f"[{kind}] seeding {args.stories:,} stories…", flush=True)
            results[kind] = await _measure(
                url, stories=args.stories, sections=args.sections, samples=args.samples
            )
        _print(kind, results[kind])
    return results


def _print(kind: str, found: dict[str, Any]) -> None:
    print(f"[{kind}] {found['stories']:,} stories, {found['sections']} sections")
    for name in ("first_page", "turn_near_top", "turn_anywhere"):
        row = found[name]
        verdict = "ok" if row["p99_ms"] <= TARGET_P99_MS else "FAIL"
        print(
            f"  {name:<14} p50 {row['p50_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms  "
            f"max {row['max_ms']:7.2f} ms  (target p99 ≤ {TARGET_P99_MS:.0f} ms: {verdict})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--sections", type=int, default=12)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    results = asyncio.run(_run(args))
    args.results.write_text(
        json.dumps({"machine": platform.platform(), "results": results}, indent=2) + "\n"
    )
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
