"""Shared helpers of the end-to-end benchmarks (bench.burst, bench.instances, bench.faults).

They measure real `newsbot run` processes, so this module starts them, reads their logs, their
CPU time and peak memory from /proc while they live, and makes sure none outlives the benchmark:
each child is started with PR_SET_PDEATHSIG (the kernel kills it if the benchmark dies) and is
stopped, or killed after a bounded wait, in a `finally`. It also has the pieces every report
shares: the commit and package versions, percentiles, an aligned table and the results file.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from digests.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SAMPLE_FEED = REPO / "digests" / "data" / "sample_feed.xml"
RUNNING = "newsbot is running"
POLLING = "this instance now polls Telegram for updates"
_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_T = TypeVar("_T")


class BenchError(Exception):
    """A benchmark could not go on (a process died, a wait timed out); the message says why."""


# --- the product's environment --------------------------------------------------------------


def product_env(**settings: object) -> dict[str, str]:
    """This process's environment without any newsbot setting, plus `settings` (upper-cased),
    so an operator's REDIS_URL or WEBHOOK_URL in the shell cannot leak into a run."""
    names = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key.upper() not in names}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{path}" if path else str(REPO)
    env["PYTHONUNBUFFERED"] = "1"
    env.update({key.upper(): str(value) for key, value in settings.items()})
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def newsbot_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


def run_cli(args: Sequence[str], *, env: dict[str, str], cwd: Path, timeout: float) -> str:
    """Run a short `newsbot` command (ingest, db upgrade) to completion; its output."""
    try:
        done = subprocess.run(
            newsbot_command(*args),
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`newsbot {' '.join(args)}` did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(
            f"`newsbot {' '.join(args)}` exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
    return done.stdout


# --- /proc ---------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process (None once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set (VmHWM) of a live process, in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


class MachineCpu:
    """The whole machine's CPU use (every core, every process: PostgreSQL and Redis too) over a
    stretch of time, from /proc/stat: busy seconds and the busy fraction of all cores."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        total = sum(fields[:8])  # guest time is already counted in user
        return total - idle, total

    def used(self) -> dict[str, float]:
        busy, total = self._read()
        busy_delta, total_delta = busy - self._start[0], total - self._start[1]
        return {
            "busy_cpu_seconds": busy_delta / _CLOCK_TICKS,
            "busy_fraction_of_all_cores": busy_delta / total_delta if total_delta else 0.0,
        }


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGKILL it when the benchmark dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# --- a child process with its log ----------------------------------------------------------------

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ")
_NUMBERS = re.compile(r"\d+(\.\d+)?")


class Child:
    """A benchmark's child process (a `newsbot run`, the bare bot): its output line by line,
    stamped with time.monotonic() as it arrives, kept in memory and in `log_path`."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = env
        self.cwd = cwd
        self.log_path = cwd / f"{name}.log"
        self.lines: list[tuple[float, str]] = []
        self.process: asyncio.subprocess.Process | None = None
        self.started_at = 0.0
        self.cpu_at_end: float | None = None  # read just before it was stopped or killed
        self.peak_rss_at_end: float | None = None
        self.killed = False
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self.started_at = time.monotonic()
        self._reader = asyncio.create_task(self._read(), name=f"log-{self.name}")

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        with self.log_path.open("w") as log:
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    return
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append((time.monotonic(), line))
                log.write(line + "\n")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def cpu(self) -> float | None:
        """CPU seconds so far; after the end, as read just before it."""
        if self.alive:
            return cpu_seconds(self.pid)
        return self.cpu_at_end

    def find(self, text: str) -> list[float]:
        """When each line containing `text` arrived."""
        return [at for at, line in self.lines if text in line]

    async def wait_for(self, text: str, *, within: float) -> float:
        """When the first line containing `text` arrived; BenchError after `within` seconds
        or if the process exits first."""
        deadline = time.monotonic() + within
        while True:
            found = self.find(text)
            if found:
                return found[0]
            if not self.alive:
                raise BenchError(
                    f"{self.name} exited ({self.returncode()}) before logging {text!r}:\n"
                    + self.tail()
                )
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{self.name} did not log {text!r} within {within:.0f} s:\n" + self.tail()
                )
            await asyncio.sleep(0.05)

    def returncode(self) -> int | None:
        return self.process.returncode if self.process is not None else None

    def keep_log(self, folder: Path | None) -> None:
        """Copy its log into `folder` (--keep-logs), if one was asked for."""
        if folder is not None and self.log_path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log_path, folder / self.log_path.name)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(f"    {line}" for _, line in self.lines[-lines:])

    def _note_end(self) -> None:
        if self.alive:
            self.cpu_at_end = cpu_seconds(self.pid)
            self.peak_rss_at_end = peak_rss_mb(self.pid)

    async def kill(self) -> float:
        """kill -9 now (CPU and memory read just before); returns when it was sent."""
        self._note_end()
        at = time.monotonic()
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.killed = True
        await self._reap(grace=10)
        return at

    async def stop(self, *, grace: float = 20) -> None:
        """SIGTERM (CPU and memory read just before), then SIGKILL if it is not gone in time."""
        self._note_end()
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
        await self._reap(grace=grace)

    async def _reap(self, *, grace: float) -> None:
        process = self.process
        if process is None:
            return
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            print(f"  {self.name} did not stop within {grace:.0f} s: killing it", flush=True)
            process.kill()
            self.killed = True
            await asyncio.wait_for(process.wait(), 10)
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 5)

    def problems(self, examples: int = 5) -> dict[str, Any]:
        """WARNING and ERROR lines and tracebacks of its log, counted by kind."""
        kinds: Counter[str] = Counter()
        first: dict[str, str] = {}
        levels: Counter[str] = Counter()
        tracebacks = 0
        for _, line in self.lines:
            if line.startswith("Traceback (most recent call last)"):
                tracebacks += 1
            level = next(
                (name for name in ("CRITICAL", "ERROR", "WARNING") if f" {name} " in line[:40]),
                None,
            )
            if level is None:
                continue
            levels[level] += 1
            message = _TIMESTAMP.sub("", line)
            kind = _NUMBERS.sub("N", message)[:160]
            kinds[kind] += 1
            first.setdefault(kind, message[:400])
        return {
            "lines": len(self.lines),
            "by_level": dict(levels),
            "tracebacks": tracebacks,
            "kinds": [
                {"count": count, "example": first[kind]}
                for kind, count in kinds.most_common(examples)
            ],
        }


async def stop_all(children: Sequence[Child], *, grace: float = 20) -> None:
    """Stop every child still alive, all at once; never raises for one that misbehaves."""
    results = await asyncio.gather(
        *(child.stop(grace=grace) for child in children), return_exceptions=True
    )
    for child, result in zip(children, results, strict=False):
        if isinstance(result, BaseException):
            print(f"  stopping {child.name} failed: {result!r}", flush=True)


# --- polling with a bound -----------------------------------------------------------------------


async def wait_until(
    check: Callable[[], Awaitable[_T | None]],
    *,
    within: float,
    every: float = 0.5,
    what: str,
) -> _T:
    """Call `check` every `every` s until it returns something other than None; BenchError
    naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(every)


async def poll_for(check: Callable[[], bool], *, within: float, every: float = 0.1) -> bool:
    """Whether `check()` came true within `within` seconds (asked every `every` s)."""
    deadline = time.monotonic() + within
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)


async def http_text(url: str, *, within: float = 5) -> str:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=within)) as http:
        async with http.get(url) as response:
            return await response.text()


def metric_values(text: str, name: str) -> dict[str, float]:
    """Every sample of metric `name` in Prometheus text, by its label string ("" if none)."""
    values: dict[str, float] = {}
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", re.MULTILINE)
    for labels, value in pattern.findall(text):
        values[labels.strip("{}")] = float(value)
    return values


def http_port_of(child: Child) -> int | None:
    """The port a `newsbot run` logged ("newsbot is running: ..., HTTP on host:PORT")."""
    for _, line in child.lines:
        if RUNNING in line:
            match = re.search(r"HTTP on \S+:(\d+)", line)
            if match:
                return int(match.group(1))
    return None


# --- figures ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `fraction` of all at or
    below it. `inf` stands for "never" and sorts last."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def at_limit(times: Iterable[float], limit: int) -> int:
    """How many events were the `limit`-th within one second (the next one would be refused
    by a limit of `limit` per second)."""
    ordered = sorted(times)
    return sum(
        1 for i in range(limit - 1, len(ordered)) if ordered[i] - ordered[i - limit + 1] < 1.0
    )


def spacing(times: Iterable[float]) -> dict[str, Any]:
    """How evenly events are spread: gaps between consecutive ones (median, and the share
    under 5 ms, i.e. back to back), and how many fall in each tenth of a second counted from
    the first (an even stream fills the ten bins alike; a stream that bunches at one phase of
    every second does not)."""
    ordered = sorted(times)
    if len(ordered) < 2:
        return {"median_gap_ms": None, "gaps_under_5ms": 0, "phase_bins": []}
    gaps = [b - a for a, b in zip(ordered, ordered[1:], strict=False)]
    bins = [0] * 10
    for at in ordered:
        bins[min(9, int(((at - ordered[0]) % 1.0) * 10))] += 1
    return {
        "median_gap_ms": 1000 * sorted(gaps)[len(gaps) // 2],
        "gaps_under_5ms": sum(1 for gap in gaps if gap < 0.005),
        "gaps": len(gaps),
        "phase_bins": bins,
    }


def most_in_one_second(times: Iterable[float]) -> int:
    """The most events in any window of one second."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def seconds(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "never"
    return f"{value:.{digits}f}"


def finite(value: float | None) -> float | None:
    """JSON has no infinity: "never" becomes null."""
    return None if value is None or math.isinf(value) else value


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Aligned columns; the first column left, the others right."""
    cells = [list(headers), *([str(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def environment(
    packages: Sequence[str] = (
        "python-telegram-bot",
        "SQLAlchemy",
        "aiosqlite",
        "asyncpg",
        "httpx",
        "limits",
        "coredis",
        "APScheduler",
        "uvicorn",
        "aiohttp",
    ),
) -> dict[str, Any]:
    """The commit measured (and the product files that differ from it), Python, packages."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False, cwd=REPO)
        return done.stdout.strip() if done.returncode == 0 else ""

    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "uncommitted_product_files": git("status", "--porcelain", "--", "bot", "digests")
        .strip()
        .splitlines(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


def code_state() -> dict[str, Any]:
    """The commit and the uncommitted changes under bot/ and digests/ right now (a fingerprint
    of the diff): what a `newsbot run` started now imports, as teammates edit live."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False, cwd=REPO)
        return done.stdout if done.returncode == 0 else ""

    diff = git("diff", "HEAD", "--", "bot", "digests")
    return {
        "commit": git("rev-parse", "--short", "HEAD").strip() or None,
        "uncommitted": git("status", "--porcelain", "--", "bot", "digests").strip().splitlines(),
        "diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else None,
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    results = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), **results}
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")


def run_main(work: Callable[[], Awaitable[int]]) -> int:
    """asyncio.run(work()), with SIGTERM cancelling it like Ctrl-C, so every `finally` (child
    processes, databases, Redis keys) runs; a crash exits 1 with its message."""

    async def main() -> int:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await work()

    try:
        return asyncio.run(main())
    except BenchError as exc:
        print(f"\nbenchmark stopped: {exc}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted: everything started was stopped and removed", file=sys.stderr)
        return 130
