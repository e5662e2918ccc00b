"""A digest round's memory and database time at 10,000, 100,000 and 1,000,000 readers.

    python -m bench.scale [--db sqlite|postgres|both] [--readers 10000,100000] [--million]
                          [--stories 100000] [--sections 12]

On each database: seed it once for the most readers asked (bench/seed.py), then for each
reader count make exactly that many chats due (bench.scenarios._make_due, a vacuum on
PostgreSQL) and run one real digest round (`run_digest_round`, the product's configuration
with no rate limits) in a fresh child process, so that its peak memory is that round's alone.
The sender only records: each part "goes out" at once with a made-up message id (no HTTP,
no Telegram), so the round is the database's and the renderer's work only.

Per round it reports:

* memory: the child's peak resident set (VmHWM: imports and the connection pool included;
  not `ru_maxrss`, which Linux starts at the forking parent's size) and the round's own
  increase (VmHWM, reset through /proc/self/clear_refs right before the round, minus the
  resident set then); the slope in MB per 10,000 readers;
* database time per phase (schedule, claim with render, record, other): the time spent
  inside the database calls of that phase (SQLAlchemy cursor events, commits included)
  minus this thread's CPU meanwhile (so the time the event loop spent on other tasks while a
  query was out is not counted), summed over calls; the raw elapsed too, and the phase's
  wall time (summed over concurrent workers).

`--million` adds 1,000,000 readers on PostgreSQL. Writes bench/results-scale.json and prints
each figure beside its target. See bench/README.md, "Scale".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from digests.db import SessionFactory, make_engine, make_session_factory, upgrade
from digests.delivery import engine as delivery_engine
from digests.delivery.config import DeliveryConfig, delivery_config
from digests.delivery.journal import Journal
from digests.delivery.ports import BeforeSend, Outcome, Part, SendPriority, SendResult
from digests.digest import rounds
from digests.digest.rounds import run_digest_round
from digests.settings import Settings

RESULTS = Path(__file__).with_name("results-scale.json")
TARGET_PEAK_MB = 250.0
TARGET_DB_SECONDS = 60.0  # for a round of 1,000,000 readers
MILLION = 1_000_000
PHASES = ("schedule", "claim", "record", "other")
FIRST_TELEGRAM_ID = 1_000_001  # bench.seed's; not imported here to keep the child lean

_phase: contextvars.ContextVar[str] = contextvars.ContextVar("bench_scale_phase", default="other")


def _say(db: str, message: str) -> None:
    print(f"[{db}] {message}", flush=True)


# ---- a sender that only records ---------------------------------------------------------


class RecordingSender:
    """A `digests.delivery.ports.Sender` that sends nothing: every part "goes out" at once (after
    `before_send`, as the real sender does) with a made-up message id. Counts the sends per
    chat in a bytearray (one byte a chat, so that a million readers cost a megabyte)."""

    def __init__(self, *, first_id: int, chats: int) -> None:
        self.first_id = first_id
        self.sends = bytearray(chats)
        self.messages = 0
        self.withdrawn = 0
        self._last_id = 0

    async def send(
        self,
        chat_id: int,
        texts: Sequence[Part],
        *,
        priority: SendPriority,
        before_send: BeforeSend | None = None,
    ) -> SendResult:
        ids: list[int] = []
        for _ in texts:
            if before_send is not None and not await before_send():
                self.withdrawn += 1
                return SendResult(Outcome.WITHDRAWN, tuple(ids))
            self._last_id += 1
            ids.append(self._last_id)
        index = chat_id - self.first_id
        self.sends[index] = min(255, self.sends[index] + 1)
        self.messages += len(ids)
        return SendResult(Outcome.SENT, tuple(ids))

    def chats_sent_twice(self) -> int:
        return sum(1 for count in self.sends if count > 1)

    def chats_sent(self) -> int:
        return sum(1 for count in self.sends if count)


# ---- database time per phase --------------------------------------------------------------


@dataclass
class PhaseTime:
    db: float = 0.0  # inside database calls, minus this thread's CPU meanwhile
    db_elapsed: float = 0.0  # inside database calls, raw
    calls: int = 0  # statements (an executemany or an insertmanyvalues batch is one) and commits
    wall: float = 0.0  # inside the phase's code, summed over concurrent workers
    # PostgreSQL: CPU the server process used on the phase's calls (its schedstat, in ns)
    server_cpu: float = 0.0


def _schedstat(pid: int | None) -> int:
    """A process's CPU time in nanoseconds (Linux /proc/<pid>/schedstat); 0 if unknown."""
    if pid is None:
        return 0
    try:
        with open(f"/proc/{pid}/schedstat", "rb") as stat:
            return int(stat.read().split(maxsplit=1)[0])
    except (OSError, ValueError, IndexError):
        return 0


class BackendCpu:
    """PostgreSQL: the CPU time of the server processes serving this engine's connections
    (read from /proc, the server being on this machine), as a check on the database time
    seen from the client, which also counts waiting for a CPU on a busy machine."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: dict[int, float] = {}
        self.pids: dict[int, int] = {}  # id(DBAPI connection) -> its server process

    def pid_of(self, dbapi_connection: Any) -> int | None:
        return self.pids.get(id(dbapi_connection))

    @staticmethod
    def _cpu(pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def attach(self, engine: AsyncEngine) -> None:
        if engine.dialect.name != "postgresql":
            return

        def connected(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SELECT pg_backend_pid()")
            pid = int(cursor.fetchone()[0])
            cursor.close()
            record.info["backend_pid"] = pid
            self.pids[id(dbapi_connection)] = pid
            self._started[pid] = self._cpu(pid) or 0.0

        def closed(dbapi_connection: Any, record: Any) -> None:
            self.pids.pop(id(dbapi_connection), None)
            self.collect(record.info.get("backend_pid"))

        event.listen(engine.sync_engine.pool, "connect", connected)
        event.listen(engine.sync_engine.pool, "close", closed)

    def reset(self) -> None:
        for pid in self._started:
            self._started[pid] = self._cpu(pid) or 0.0
        self.seconds = 0.0

    def collect(self, pid: int | None = None) -> None:
        """Add the CPU used since its start by backend `pid` (by all of them with None)."""
        for backend in [pid] if pid is not None else list(self._started):
            started = self._started.pop(backend, None)
            now = self._cpu(backend)
            if started is not None and now is not None:
                self.seconds += now - started


@dataclass
class DbClock:
    """Sums the time spent in database calls by the phase (a context variable) they run in."""

    phases: dict[str, PhaseTime] = field(default_factory=lambda: {n: PhaseTime() for n in PHASES})
    # database time and calls by phase and statement (its first words), to see what grows
    statements: dict[str, list[float]] = field(default_factory=dict)

    def add(
        self, started: tuple[float, float, int], pid: int | None, statement: str = "COMMIT"
    ) -> None:
        elapsed = time.perf_counter() - started[0]
        cpu = time.thread_time() - started[1]
        server = (_schedstat(pid) - started[2]) / 1e9 if pid is not None and started[2] else 0.0
        name = _phase.get()
        phase = self.phases[name]
        phase.db_elapsed += elapsed
        phase.db += max(0.0, elapsed - cpu)
        phase.server_cpu += server
        phase.calls += 1
        key = f"{name}: {' '.join(statement.split()[:6])[:60]}"
        tally = self.statements.setdefault(key, [0.0, 0.0, 0.0])
        tally[0] += 1
        tally[1] += max(0.0, elapsed - cpu)
        tally[2] += server

    def attach(self, engine: AsyncEngine, backends: BackendCpu | None = None) -> None:
        """Count every statement and commit of `engine` (and, given the engine's `backends`
        on PostgreSQL, the CPU its server process spent on each)."""
        sync = engine.sync_engine

        def pid(conn: Connection) -> int | None:
            return None if backends is None else backends.pid_of(conn.connection.dbapi_connection)

        def before(conn: Connection, *_: object) -> None:
            conn.info.setdefault("bench_scale", []).append(
                (time.perf_counter(), time.thread_time(), _schedstat(pid(conn)))
            )

        def after(conn: Connection, _cursor: object, statement: str, *_: object) -> None:
            self.add(conn.info["bench_scale"].pop(), pid(conn), statement)

        event.listen(sync, "before_cursor_execute", before)
        event.listen(sync, "after_cursor_execute", after)
        dialect = sync.dialect
        commit = dialect.do_commit

        def timed_commit(dbapi_connection: Any) -> None:
            server = None if backends is None else backends.pid_of(dbapi_connection)
            started = (time.perf_counter(), time.thread_time(), _schedstat(server))
            try:
                commit(dbapi_connection)
            finally:
                self.add(started, server)

        dialect.do_commit = timed_commit  # type: ignore[method-assign]

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        token = _phase.set(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name].wall += time.perf_counter() - started
            _phase.reset(token)


def instrument(clock: DbClock) -> None:
    """Label the round's phases: the product's own functions, wrapped in place (this process
    only runs the measured round)."""
    schedule = rounds.schedule_due_digests
    claim = delivery_engine._claim
    flush = Journal._flush

    async def scheduled(*args: Any, **kwargs: Any) -> Any:
        with clock.phase("schedule"):
            return await schedule(*args, **kwargs)

    async def claimed(*args: Any, **kwargs: Any) -> Any:
        with clock.phase("claim"):
            return await claim(*args, **kwargs)

    async def flushed(journal: Journal) -> None:
        with clock.phase("record"):
            await flush(journal)

    rounds.schedule_due_digests = scheduled
    delivery_engine._claim = claimed
    Journal._flush = flushed  # type: ignore[method-assign,assignment]


# ---- the measured round, in a child process ---------------------------------------------------


def _status_kb(field_name: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise LookupError(field_name)


def _reset_peak() -> bool:
    """Reset VmHWM to the current resident set (Linux 4.0+); False where refused."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def round_config() -> DeliveryConfig:
    """The engine's configuration as `newsbot run` derives it with no rate limits."""
    settings = Settings(
        telegram_bot_token=None,
        send_rate_limit=0,
        private_chat_rate_limit=0,
        group_rate_limit_per_min=0,
    )
    return delivery_config(settings)


def _auto_explain(engine: AsyncEngine, min_ms: int) -> None:
    """PostgreSQL: log the plans of statements slower than `min_ms` to the server's log."""

    def connected(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("LOAD 'auto_explain'")
        cursor.execute(f"SET auto_explain.log_min_duration = {int(min_ms)}")
        cursor.execute("SET auto_explain.log_analyze = on")
        cursor.close()

    event.listen(engine.sync_engine.pool, "connect", connected)


async def measure_round(url: str, readers: int) -> dict[str, Any]:
    """One digest round for the due chats, with the recording sender; its figures."""
    engine = make_engine(url)
    if engine.dialect.name == "postgresql" and os.environ.get("BENCH_SCALE_EXPLAIN_MS"):
        _auto_explain(engine, int(os.environ["BENCH_SCALE_EXPLAIN_MS"]))
    backends = BackendCpu()
    backends.attach(engine)
    clock = DbClock()
    clock.attach(engine, backends)
    instrument(clock)
    factory = make_session_factory(engine)
    config = round_config()
    sender = RecordingSender(first_id=FIRST_TELEGRAM_ID, chats=readers)
    try:
        async with factory() as session:  # the pool's first connection, before the baseline
            await session.execute(select(1))
        clock.phases["other"] = PhaseTime()
        backends.reset()
        baseline_kb = _status_kb("VmRSS")
        startup_peak_kb = _status_kb("VmHWM")  # imports, the engine, the first connection
        reset = _reset_peak()
        started, cpu = time.perf_counter(), time.process_time()
        report = await run_digest_round(
            factory, sender, now=lambda: datetime.now(UTC), config=config
        )
        seconds, cpu_used = time.perf_counter() - started, time.process_time() - cpu
        hwm_kb = _status_kb("VmHWM")
        maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        backends.collect()
    finally:
        await engine.dispose()
    phases = {name: asdict(phase) for name, phase in clock.phases.items()}
    db_total = sum(phase.db for phase in clock.phases.values())
    return {
        "readers": readers,
        "config": {
            "batch": config.batch,
            "workers": config.workers,
            "claim_limit": config.claim_limit,
        },
        "report": {
            "scheduled": report.scheduled,
            "sent": report.sent,
            "empty": report.empty,
            "failed": report.failed,
            "lost_race": report.lost_race,
            "transactions": report.transactions,
            "errors": report.errors[:5],
        },
        "integrity": {
            "chats_sent": sender.chats_sent(),
            "chats_sent_twice": sender.chats_sent_twice(),
            "messages": sender.messages,
            "withdrawn": sender.withdrawn,
        },
        "seconds": seconds,
        "client_cpu": cpu_used,
        "db_seconds": db_total,
        "db_elapsed_seconds": sum(phase.db_elapsed for phase in clock.phases.values()),
        "db_server_cpu": backends.seconds if engine.dialect.name == "postgresql" else None,
        "phases": phases,
        "statements": {
            key: {"calls": int(calls), "db": seconds, "server_cpu": server}
            for key, (calls, seconds, server) in sorted(
                clock.statements.items(), key=lambda item: -max(item[1][1], item[1][2])
            )[:20]
        },
        "memory": {
            # this process's own peak (VmHWM counts from its exec): ru_maxrss is not used,
            # as Linux hands a child the RSS of the parent it was forked from (the seeding)
            "peak_rss_mb": max(startup_peak_kb, hwm_kb) / 1024,
            "rss_before_round_mb": baseline_kb / 1024,
            "peak_before_round_mb": startup_peak_kb / 1024,
            "round_increase_mb": (hwm_kb - baseline_kb) / 1024 if reset else None,
            "hwm_reset": reset,
            "ru_maxrss_mb": maxrss_kb / 1024,
        },
    }


def run_child(db: str, url: str, readers: int) -> dict[str, Any]:
    """`measure_round` in a fresh interpreter (its peak memory is the round's alone)."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, "-m", "bench.scale", "--child", url, str(readers), out.name]
        completed = subprocess.run(command, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"[{db}] the round for {readers:,} readers failed")
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
    return result


# ---- the parent: seed, make due, measure ------------------------------------------------


async def _vacuum(engine: AsyncEngine) -> None:
    """PostgreSQL: clear the dead rows of the previous round and its reset (autovacuum lags);
    SQLite: fresh statistics."""
    async with engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        if engine.dialect.name == "postgresql":
            await autocommit.execute(text("VACUUM (ANALYZE) deliveries, chats, subscriptions"))
        else:
            await autocommit.execute(text("ANALYZE"))


async def _seed(factory: SessionFactory, db: str, args: argparse.Namespace, chats: int) -> float:
    from bench.seed import seed

    _say(db, f"seeding {chats:,} chats, {args.stories:,} stories ...")
    started = time.monotonic()
    await seed(
        factory,
        subscribers=chats,
        stories=args.stories,
        sections=args.sections,
        now=datetime.now(UTC),
    )
    seconds = time.monotonic() - started
    _say(db, f"seeded in {seconds:.0f} s")
    return seconds


async def _make_due(factory: SessionFactory, engine: AsyncEngine, readers: int) -> None:
    from bench.scenarios import _make_due as make_due

    async with factory.begin() as session:
        await make_due(session, chats=readers, now=datetime.now(UTC))
    await _vacuum(engine)


def run_db(db: str, readers: list[int], args: argparse.Namespace) -> dict[str, Any]:
    """Seed one database for the most readers and measure a round for each count."""
    from bench.databases import database

    async def prepare(url: str, step: Callable[..., Any], *extra: Any) -> Any:
        engine = make_engine(url)
        try:
            return await step(make_session_factory(engine), engine, *extra)
        finally:
            await engine.dispose()

    async def seed_step(factory: SessionFactory, engine: AsyncEngine) -> float:
        await upgrade(engine)
        seconds = await _seed(factory, db, args, max(readers))
        await _vacuum(engine)
        return seconds

    rounds: list[dict[str, Any]] = []

    async def run() -> float:
        async with database(db, postgres_url=args.postgres_url) as url:
            seed_seconds: float = await prepare(url, seed_step)
            for count in readers:
                await prepare(url, _make_due, count)
                _say(db, f"round for {count:,} readers ...")
                figures = await asyncio.to_thread(run_child, db, url, count)
                rounds.append(figures)
                _say(db, _line(figures))
            return seed_seconds

    seed_seconds = asyncio.run(run())
    return {
        "db": db,
        "seeded_chats": max(readers),
        "seed_seconds": seed_seconds,
        "rounds": rounds,
        "memory_slope_mb_per_10k": _slope(rounds, "peak_rss_mb"),
        "round_increase_slope_mb_per_10k": _slope(rounds, "round_increase_mb"),
    }


def _slope(rounds: list[dict[str, Any]], key: str) -> float | None:
    """Least squares, MB per 10,000 readers, over the rounds up to 100,000 readers."""
    points = [
        (r["readers"] / 10_000, r["memory"][key])
        for r in rounds
        if r["readers"] <= 100_000 and r["memory"][key] is not None
    ]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return float(sum((x - mean_x) * (y - mean_y) for x, y in points) / spread)


def _line(r: dict[str, Any]) -> str:
    phases = r["phases"]
    return (
        f"{r['readers']:,} readers: {r['report']['sent']:,} sent, {r['report']['empty']:,} empty, "
        f"twice {r['integrity']['chats_sent_twice']}; {r['seconds']:.1f} s wall, "
        f"{r['client_cpu']:.1f} s CPU; db {r['db_seconds']:.1f} s (schedule "
        f"{phases['schedule']['db']:.1f}, claim {phases['claim']['db']:.1f}, record "
        f"{phases['record']['db']:.1f}, other {phases['other']['db']:.1f}; server CPU "
        f"{r['db_server_cpu'] or 0:.1f}); peak "
        f"{r['memory']['peak_rss_mb']:.0f} MB, "
        f"round +{r['memory']['round_increase_mb'] or 0:.0f} MB"
    )


def _print_table(runs: dict[str, Any]) -> None:
    print()
    print(
        f"{'db':<9}{'readers':>10}{'peak MB':>9}{'round +MB':>10}{'db s':>8}{'schedule':>10}"
        f"{'claim':>8}{'record':>8}{'wall s':>8}{'twice':>7}"
    )
    for db, run in runs.items():
        for r in run["rounds"]:
            p = r["phases"]
            print(
                f"{db:<9}{r['readers']:>10,}{r['memory']['peak_rss_mb']:>9.0f}"
                f"{r['memory']['round_increase_mb'] or 0:>10.0f}{r['db_seconds']:>8.1f}"
                f"{p['schedule']['db']:>10.1f}{p['claim']['db']:>8.1f}{p['record']['db']:>8.1f}"
                f"{r['seconds']:>8.1f}{r['integrity']['chats_sent_twice']:>7}"
            )
    print()
    for db, run in runs.items():
        hundred = [r for r in run["rounds"] if r["readers"] == 100_000]
        if hundred:
            peak = hundred[0]["memory"]["peak_rss_mb"]
            verdict = "ok" if peak <= TARGET_PEAK_MB else "FAIL"
            print(f"[{db}] peak at 100,000 readers {peak:.0f} MB (target <= 250 MB) {verdict}")
        slope = run["memory_slope_mb_per_10k"]
        if slope is not None:
            print(f"[{db}] slope {slope:+.2f} MB per 10,000 readers (target: flat)")
        million = [r for r in run["rounds"] if r["readers"] == MILLION]
        if million:
            seconds = million[0]["db_seconds"]
            verdict = "ok" if seconds < TARGET_DB_SECONDS else "FAIL"
            print(
                f"[{db}] database time at 1,000,000 readers {seconds:.1f} s (target < 60 s) "
                f"{verdict}"
            )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--readers", default="10000,100000")
    parser.add_argument("--million", action="store_true", help="and 1,000,000 on PostgreSQL")
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--sections", type=int, default=12)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--child", nargs=3, metavar=("URL", "READERS", "OUT"), help=argparse.SUPPRESS
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        url, readers, out = args.child
        Path(out).write_text(json.dumps(asyncio.run(measure_round(url, int(readers)))))
        return 0
    from bench.run import _environment

    readers = sorted(int(n) for n in args.readers.split(","))
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    runs: dict[str, Any] = {}
    for db in dbs:
        counts = readers + [MILLION] if args.million and db == "postgres" else readers
        runs[db] = run_db(db, counts, args)
    _print_table(runs)
    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.scale " + " ".join(sys.argv[1:] if argv is None else argv),
        "parameters": {"stories": args.stories, "sections": args.sections},
        "environment": _environment(),
        "targets": {"peak_mb_at_100k": TARGET_PEAK_MB, "db_seconds_at_1m": TARGET_DB_SECONDS},
        "runs": runs,
    }
    args.results.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
