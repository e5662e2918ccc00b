"""Benchmark the delivery engine against a loopback fake Bot API.

    python -m bench.run [--db sqlite|postgres|both] [--subscribers 20000] [--stories 100000]
                        [--sections 12] [--push 5000] [--paid 20000] [--limited-chats 900]
                        [--limited-push 1000]

Each database runs in a child process of its own (`--worker`), so each peak memory figure is
that run's alone; this process only collects their JSON, prints the table and writes
bench/results.json. See bench/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text

from bench import report
from bench.databases import DEFAULT_POSTGRES, database
from bench.scenarios import (
    PAID_LATENCY,
    breaking_push,
    digest_limited,
    digest_vs_bare,
    paid_broadcast,
    product_config,
    push_vs_bare,
)
from bench.seed import seed
from digests.db import make_engine, make_session_factory, upgrade

RESULTS = Path(__file__).with_name("results.json")
_T = TypeVar("_T")


def peak_rss_mb() -> float:
    """This process's peak resident set so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _say(db: str, message: str) -> None:
    print(f"[{db}] {message}", flush=True)


def _versus_line(name: str, phase: dict[str, Any], compared: dict[str, Any]) -> str:
    best = compared["bare"]["loops"][compared["bare"]["best"]]
    return (
        f"{name}: {phase['messages']:,} messages at {phase['rate']:,.0f}/s, "
        f"{phase['client_us_per_message']:,.0f} µs CPU each; best bare PTB loop "
        f"{best['rate']:,.0f}/s, {best['client_us_per_message']:,.0f} µs each"
    )


async def _guarded(name: str, work: Coroutine[Any, Any, _T], *, stuck_after: float) -> _T:
    """Run one scenario; if it still runs after `stuck_after` seconds, show where each task
    waits (a stuck benchmark should say why) and give up."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=stuck_after)
    if not done:
        print(f"{name} still running after {stuck_after:.0f} s; where each task waits:", flush=True)
        for other in asyncio.all_tasks():
            other.print_stack(limit=25, file=sys.stdout)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise TimeoutError(f"{name} did not finish within {stuck_after:.0f} s")
    return task.result()


async def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Seed one database and run every scenario on it; the figures as JSON-ready data."""
    db: str = args.db
    unlimited, limited_config = product_config(limited=False), product_config(limited=True)
    code = _code_version()  # what this worker imported; another worker may see later edits
    limit: float = args.scenario_timeout
    memory: dict[str, float] = {"at_start": peak_rss_mb()}
    async with database(db, postgres_url=args.postgres_url) as url:
        engine = make_engine(url)
        try:
            await upgrade(engine)
            async with engine.connect() as connection:
                version_sql = "SELECT version()" if db == "postgres" else "SELECT sqlite_version()"
                server_version = str(await connection.scalar(text(version_sql)))
            factory = make_session_factory(engine)

            _say(db, f"seeding {args.subscribers:,} chats, {args.stories:,} stories ...")
            started = time.monotonic()
            seeded = await seed(
                factory,
                subscribers=args.subscribers,
                stories=args.stories,
                sections=args.sections,
                now=datetime.now(UTC),
            )
            seed_seconds = time.monotonic() - started
            memory["after_seed"] = peak_rss_mb()
            _say(
                db,
                f"seeded in {seed_seconds:.1f} s: {seeded.subscriptions:,} subscriptions, "
                f"{seeded.stories_last_24h:,} stories in the last 24 h",
            )

            _say(db, "digest round, no limits, and the bare PTB loops ...")
            scenario1 = await _guarded(
                "digest round", digest_vs_bare(factory, seeded, config=unlimited), stuck_after=limit
            )
            memory["after_digest_round"] = peak_rss_mb()
            _say(db, _versus_line("digest round", scenario1["digest_round"], scenario1))

            _say(db, f"breaking push to {args.push:,} chats, no limits, and the bare loops ...")
            fast_push = await _guarded(
                "push, no limits",
                push_vs_bare(factory, seeded, chats=args.push, config=unlimited),
                stuck_after=limit,
            )
            memory["after_push"] = peak_rss_mb()
            _say(db, _versus_line("push", fast_push["push"], fast_push))

            _say(
                db,
                f"paid broadcast: push to {args.paid:,} chats, answers after "
                f"{PAID_LATENCY * 1000:.0f} ms, readers asking /latest meanwhile ...",
            )
            paid = await _guarded(
                "paid broadcast",
                paid_broadcast(factory, seeded, database_url=url, chats=args.paid),
                stuck_after=limit,
            )
            memory["after_paid"] = peak_rss_mb()
            _say(
                db,
                f"paid: {paid['sustained_rate'] or 0:,.0f} msg/s sustained, replies p99 "
                f"{(paid['probes']['p99'] or 0) * 1000:.0f} ms",
            )

            _say(db, f"digest round for {args.limited_chats} chats, limits on ...")
            limited = await _guarded(
                "digest round, limits on",
                digest_limited(factory, seeded, chats=args.limited_chats, config=limited_config),
                stuck_after=limit,
            )
            memory["after_limited"] = peak_rss_mb()
            _say(
                db,
                f"limits on: {limited['span_rate'] or 0:.1f} msg/s, "
                f"{limited['too_many_requests']} x 429",
            )

            _say(db, f"breaking push to {args.limited_push:,} chats, limits on ...")
            push = await _guarded(
                "breaking push, limits on",
                breaking_push(factory, seeded, chats=args.limited_push, config=limited_config),
                stuck_after=limit,
            )
            memory["after_breaking"] = peak_rss_mb()
            _say(db, f"push: last delivery after {push['time_to_last_delivery'] or 0:.1f} s")
        finally:
            await engine.dispose()
    memory["peak_mb"] = peak_rss_mb()
    return {
        "db": db,
        "code": code,
        "server_version": server_version,
        "seed": {
            "seconds": seed_seconds,
            "sections": seeded.sections,
            "stories": seeded.stories,
            "story_sections": seeded.story_sections,
            "chats": seeded.chats,
            "subscriptions": seeded.subscriptions,
            "stories_last_24h": seeded.stories_last_24h,
        },
        "delivery_config": {
            name: {"batch": c.batch, "workers": c.workers, "per_section": c.per_section}
            for name, c in (
                ("no limits", unlimited),
                ("limits on", limited_config),
                ("paid broadcast", product_config(limited=True, paid=True)),
            )
        },
        "scenario1": scenario1,
        "push_no_limits": fast_push,
        "paid": paid,
        "limited": limited,
        "breaking": push,
        "memory": memory,
    }


def _worker_command(args: argparse.Namespace, db: str, result_file: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "bench.run",
        "--worker",
        "--db",
        db,
        "--subscribers",
        str(args.subscribers),
        "--stories",
        str(args.stories),
        "--sections",
        str(args.sections),
        "--push",
        str(args.push),
        "--paid",
        str(args.paid),
        "--limited-push",
        str(args.limited_push),
        "--limited-chats",
        str(args.limited_chats),
        "--postgres-url",
        args.postgres_url,
        "--scenario-timeout",
        str(args.scenario_timeout),
        "--result-file",
        str(result_file),
    ]


def _code_version() -> dict[str, Any]:
    """The commit measured, and which engine files differed from it (teammates edit live)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = [
        line.strip() for line in git("status", "--porcelain", "--", "digests", "bot").splitlines()
    ]
    return {"commit": git("rev-parse", "HEAD") or None, "uncommitted": changed}


def _environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("python-telegram-bot", "SQLAlchemy", "aiosqlite", "asyncpg", "httpx"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "code": _code_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


def orchestrate(args: argparse.Namespace) -> int:
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    runs: dict[str, Any] = {}
    crashed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as folder:
        for db in dbs:
            result_file = Path(folder) / f"{db}.json"
            started = time.monotonic()
            completed = subprocess.run(_worker_command(args, db, result_file), check=False)
            if completed.returncode != 0 or not result_file.exists():
                print(f"[{db}] worker failed with exit code {completed.returncode}", flush=True)
                crashed.append(db)
                continue
            runs[db] = json.loads(result_file.read_text())
            runs[db]["worker_seconds"] = time.monotonic() - started

    rows = [row for db, run in runs.items() for row in report.rows_for(db, run)]
    targets = report.TARGETS
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench.run", *sys.argv[1:]]),
        "parameters": {
            "subscribers": args.subscribers,
            "stories": args.stories,
            "sections": args.sections,
            "push": args.push,
            "paid": args.paid,
            "limited_push": args.limited_push,
            "limited_chats": args.limited_chats,
        },
        "environment": _environment(),
        "targets": targets,
        "runs": runs,
        "verdicts": [
            {"scenario": row.scenario, "db": row.db, "target": row.target, "verdict": row.verdict}
            for row in rows
            if row.verdict
        ],
        "crashed": crashed,
    }
    args.out.write_text(json.dumps(results, indent=2) + "\n")

    print()
    for db, run in runs.items():
        code = run["code"]
        dirty = f" + uncommitted {', '.join(code['uncommitted'])}" if code["uncommitted"] else ""
        print(f"{db}: measured at commit {str(code['commit'])[:10]}{dirty}")
    if rows:
        print(report.format_table(rows))
    print()
    for db, run in runs.items():
        best = run["push_no_limits"]["bare"]["best"].replace("_", " ")
        print(
            f"{db}: ratios are against the faster bare PTB loop ({best}); "
            "client and server CPU are per message the server received."
        )
    failed = report.failures(rows)
    if failed:
        print(f"\nFAIL: {len(failed)} target(s) missed:")
        for row in failed:
            print(f"  FAIL  {row.db}: {row.scenario}: {row.target}")
    elif rows:
        print("\nAll targets met.")
    print(f"\nWrote {args.out}")
    # A missed target is a measurement, not an error; a crashed worker is.
    return 1 if crashed else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--sections", type=int, default=12)
    parser.add_argument(
        "--push", type=int, default=5_000, help="chats the push with no limits reaches"
    )
    parser.add_argument(
        "--paid", type=int, default=20_000, help="chats the paid broadcast push reaches"
    )
    parser.add_argument(
        "--limited-push", type=int, default=1_000, help="chats the push with limits on reaches"
    )
    parser.add_argument(
        "--limited-chats",
        type=int,
        default=900,
        help="chats due in the limits-on round (900 messages take about 30 s at 30/s)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="an admin connection")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--scenario-timeout",
        type=float,
        default=1800.0,
        help="seconds before a scenario counts as stuck: task stacks are printed, the run fails",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sections < 1 or args.subscribers < 1 or args.stories < 1:
        parser.error("--sections, --subscribers and --stories must be at least 1")
    for name in ("push", "paid", "limited_push"):
        if not 1 <= getattr(args, name) <= args.subscribers:
            parser.error(f"--{name.replace('_', '-')} must be between 1 and --subscribers")
    if not 1 <= args.limited_chats <= args.subscribers:
        parser.error("--limited-chats must be between 1 and --subscribers")
    if args.worker and (args.db == "both" or args.result_file is None):
        parser.error("--worker needs one --db and --result-file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.worker:
        result = asyncio.run(run_worker(args))
        args.result_file.write_text(json.dumps(result))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
