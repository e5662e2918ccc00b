"""Benchmark a digest round with keyword follows and mutes against the same round without.

    python -m bench.keywords [--db sqlite|postgres|both] [--subscribers 100000]
                             [--stories 100000] [--sections 12] [--share 0.2] [--repeat 2]

On each database: seed it (bench/seed.py), run one digest round of the product for every
chat with no keyword rules, then give `--share` of the chats 1 to 5 rules each (follows and
mutes drawn from a vocabulary of words and word pairs that occur in the seeded stories of
the last 24 hours, so they really match) and run the same round again; `--repeat` rounds of
each kind, alternated. Every round goes through the product's bot (`build_application`, no
rate limits) to the fake Bot API in its own process (bench/fake_server.py). It reports the
median rate of each kind in digests per second, their ratio (target: at least 0.9), the
client CPU per digest of each (less sensitive to whatever else the machine runs) and writes
bench/results-keywords.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.databases import DEFAULT_POSTGRES, database
from bench.fake_server import ServerProcess
from bench.run import _environment
from bench.scenarios import _make_due, _timed_round, product_config
from bench.seed import FIRST_TELEGRAM_ID, Seeded, seed
from digests.db import SessionFactory, make_engine, make_session_factory, upgrade
from digests.digest.builder import DigestBuilder, DigestRequest
from digests.models import Article, KeywordKind, KeywordRule
from digests.readers.keywords import normalize, tokens

RESULTS = Path(__file__).with_name("results-keywords.json")
TARGET_RATIO = 0.9
VOCABULARY = 300  # words and word pairs readers pick their rules from
RULES_PER_CHAT = (1, 5)
FOLLOW_SHARE = 0.6  # of the rules; the rest are mutes
ALERT_SHARE = 0.3  # of the follows
CHUNK = 5_000
SAMPLE = 1_000  # rule chats whose digests are checked for keyword sections


def _say(db: str, message: str) -> None:
    print(f"[{db}] {message}", flush=True)


async def vocabulary(session_factory: SessionFactory, *, now: datetime, size: int) -> list[str]:
    """The words and word pairs most common in the titles of the last 24 hours."""
    words: collections.Counter[str] = collections.Counter()
    pairs: collections.Counter[str] = collections.Counter()
    async with session_factory() as session:
        titles = await session.scalars(
            select(Article.title).where(Article.ingested_at > now - timedelta(hours=24))
        )
        for title in titles:
            found = [token for token in tokens(title) if not token.isdigit()]
            words.update(found)
            pairs.update(f"{a} {b}" for a, b in zip(found, found[1:], strict=False))
    chosen = [word for word, _ in words.most_common(size)]
    chosen += [pair for pair, _ in pairs.most_common(size - len(chosen))]
    return chosen


async def add_rules(
    session_factory: SessionFactory,
    *,
    chats: int,
    share: float,
    words: list[str],
    now: datetime,
    rng_seed: int = 20261201,
) -> dict[str, int]:
    """Give `share` of chats 1..`chats` their rules; the counts written."""
    rng = random.Random(rng_seed)
    with_rules = sorted(rng.sample(range(1, chats + 1), k=int(chats * share)))
    rows: list[dict[str, Any]] = []
    counts = collections.Counter[str]()
    for chat_id in with_rules:
        for phrase in rng.sample(words, k=rng.randint(*RULES_PER_CHAT)):
            follow = rng.random() < FOLLOW_SHARE
            alert = follow and rng.random() < ALERT_SHARE
            counts["follows" if follow else "mutes"] += 1
            rows.append(
                {
                    "chat_id": chat_id,
                    "kind": (KeywordKind.FOLLOW if follow else KeywordKind.MUTE).value,
                    "phrase": phrase,
                    "normalized": normalize(phrase),
                    "alert": alert,
                    "created_at": now,
                }
            )
    for start in range(0, len(rows), CHUNK):
        async with session_factory.begin() as session:
            await session.execute(insert(KeywordRule), rows[start : start + CHUNK])
    return {"chats": len(with_rules), "rules": len(rows), **counts}


async def keyword_sections(
    session_factory: SessionFactory, chat_ids: list[int], *, now: datetime
) -> dict[str, float]:
    """How much the rules change a sample of digests: chats with a keyword section, and the
    average stories listed under keywords."""
    builder = DigestBuilder(per_section=product_config(limited=False).per_section)
    requests = [DigestRequest(c, now - timedelta(hours=24), now, "UTC") for c in chat_ids]
    async with session_factory() as session:
        found = await builder.collect(session, requests)
    listed = [
        sum(len(s.stories) for s in sections if s.keyword is not None)
        for sections in found.values()
    ]
    return {
        "sampled_chats": len(listed),
        "with_keyword_section": sum(1 for n in listed if n),
        "keyword_stories_per_chat": sum(listed) / len(listed) if listed else 0.0,
    }


async def _vacuum(session_factory: SessionFactory) -> None:
    """On PostgreSQL, clear the dead rows the reset before a round leaves (100,000 deleted
    deliveries and updated chats), as autovacuum would in time: else each round pays for the
    previous one's, and the second kind measured always runs slower."""
    engine: AsyncEngine = session_factory.kw["bind"]
    if engine.dialect.name != "postgresql":
        return
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(text("VACUUM (ANALYZE) deliveries, chats, keyword_rules"))


async def _round(
    server: ServerProcess, session_factory: SessionFactory, *, chats: int
) -> dict[str, Any]:
    async with session_factory.begin() as session:
        await _make_due(session, chats=chats, now=datetime.now(UTC))
    await _vacuum(session_factory)
    phase, report, _seen, _ = await _timed_round(
        server, session_factory, config=product_config(limited=False), limited=False
    )
    return phase.to_json() | {
        "digests_sent": report.sent,
        "empty": report.empty,
        "failed": report.failed,
        "digests_per_second": report.sent / phase.seconds if phase.seconds else 0.0,
    }


async def run_one(db: str, args: argparse.Namespace) -> dict[str, Any]:
    """Seed one database and measure both rounds on it."""
    async with database(db, postgres_url=args.postgres_url) as url:
        engine = make_engine(url)
        try:
            await upgrade(engine)
            factory = make_session_factory(engine)
            now = datetime.now(UTC)
            _say(db, f"seeding {args.subscribers:,} chats, {args.stories:,} stories ...")
            started = time.monotonic()
            seeded: Seeded = await seed(
                factory,
                subscribers=args.subscribers,
                stories=args.stories,
                sections=args.sections,
                now=now,
            )
            _say(db, f"seeded in {time.monotonic() - started:.1f} s")
            words = await vocabulary(factory, now=now, size=VOCABULARY)
            plain_runs: list[dict[str, Any]] = []
            keyed_runs: list[dict[str, Any]] = []
            rules: dict[str, int] = {}
            async with ServerProcess(
                first_user=FIRST_TELEGRAM_ID, users=seeded.chats, limited=False
            ) as server:
                # alternated, so that a busy moment of the machine hits both kinds alike
                for turn in range(args.repeat):
                    async with factory.begin() as session:
                        await session.execute(delete(KeywordRule))
                    _say(db, f"round {turn + 1}/{args.repeat} without keyword rules ...")
                    plain_runs.append(await _round(server, factory, chats=seeded.chats))
                    _say(db, f"  {plain_runs[-1]['digests_per_second']:.0f} digests/s")
                    rules = await add_rules(
                        factory, chats=seeded.chats, share=args.share, words=words, now=now
                    )
                    _say(db, f"added {rules['rules']:,} rules for {rules['chats']:,} chats")
                    _say(db, f"round {turn + 1}/{args.repeat} with keyword rules ...")
                    keyed_runs.append(await _round(server, factory, chats=seeded.chats))
                    _say(db, f"  {keyed_runs[-1]['digests_per_second']:.0f} digests/s")
            async with factory() as session:
                sample = sorted(set(await session.scalars(select(KeywordRule.chat_id))))[:SAMPLE]
            effect = await keyword_sections(factory, sample, now=datetime.now(UTC))
        finally:
            await engine.dispose()
    plain, keyed = _summary(plain_runs), _summary(keyed_runs)
    ratio = keyed["digests_per_second"] / plain["digests_per_second"]
    return {
        "db": db,
        "seed": seeded.__dict__,
        "vocabulary": {"size": len(words), "examples": words[:5] + words[-5:]},
        "rules": rules,
        "without_rules": plain,
        "with_rules": keyed,
        "ratio": ratio,
        # client CPU per digest: what the rules cost this process, whatever else ran meanwhile
        "cpu_ratio": plain["client_cpu_per_digest"] / keyed["client_cpu_per_digest"],
        "meets_target": ratio is not None and ratio >= TARGET_RATIO,
        "keyword_effect_sample": effect,
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median rate of the rounds of one kind (each round kept too)."""
    rates = sorted(run["digests_per_second"] for run in runs)
    sent = sum(run["digests_sent"] for run in runs)
    return {
        "digests_per_second": statistics.median(rates),
        "client_cpu_per_digest": sum(run["client_cpu"] for run in runs) / sent,
        "server_cpu_per_digest": sum(run["server_cpu"] for run in runs) / sent,
        "rounds": runs,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.keywords", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--sections", type=int, default=12)
    parser.add_argument("--share", type=float, default=0.2, help="chats with keyword rules")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of each kind, alternated")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--results", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    runs = {db: asyncio.run(run_one(db, args)) for db in dbs}
    print()
    print(
        f"{'db':<9}{'no rules /s':>13}{'with rules /s':>15}{'ratio':>8}{'cpu ratio':>11}"
        f"  target >= {TARGET_RATIO}"
    )
    for db, run in runs.items():
        print(
            f"{db:<9}{run['without_rules']['digests_per_second']:>13.0f}"
            f"{run['with_rules']['digests_per_second']:>15.0f}{run['ratio']:>8.3f}"
            f"{run['cpu_ratio']:>11.3f}  {'ok' if run['meets_target'] else 'FAIL'}"
        )
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.keywords " + " ".join(sys.argv[1:] if argv is None else argv),
        "parameters": {
            "subscribers": args.subscribers,
            "stories": args.stories,
            "sections": args.sections,
            "share": args.share,
        },
        "environment": _environment(),
        "target_ratio": TARGET_RATIO,
        "runs": runs,
    }
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
