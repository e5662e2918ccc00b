"""1,000 new readers send /start within one second, Telegram's limits on.

    python -m bench.burst [--readers 1000] [--spread 1.0] [--timeout 180] [--stall 15]
                          [--skip-bare] [--keep-logs DIR]

Measures a real `newsbot run` process (polling, SQLite with the sample feed ingested, default
limits) against the fake Bot API in a process of its own (`--limits --private-burst 3`), then a
bare python-telegram-bot bot (bench/bare_bot.py) the same way on a fresh fake server. Each
reader's answer time is their chat's first bot message minus their /start, both read from the
server's time.monotonic(). Writes bench/results-burst.json; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bare_bot import READY
from bench.fake_server import ServerProcess
from bench.procs import (
    POLLING,
    RUNNING,
    SAMPLE_FEED,
    Child,
    MachineCpu,
    code_state,
    environment,
    finite,
    http_port_of,
    http_text,
    metric_values,
    most_in_one_second,
    newsbot_command,
    percentile,
    product_env,
    run_cli,
    run_main,
    seconds,
    spacing,
    table,
    verdict,
    write_results,
)
from bench.seed import FIRST_TELEGRAM_ID

RESULTS = Path(__file__).with_name("results-burst.json")
TELEGRAM_RATE = 30.0  # messages/s: the ideal sender of the floor
MAX_FLOOR_RATIO = 1.5  # target: p95 at most this times the floor's p95


def floor_times(starts: dict[int, float], rate: float = TELEGRAM_RATE) -> dict[int, float]:
    """Answer times of an ideal sender at exactly `rate` msg/s serving the /starts in arrival
    order from the first one: message k (from 0) leaves at max(t_k, t_0 + k / rate)."""
    order = sorted(starts, key=starts.__getitem__)
    t0 = starts[order[0]]
    return {user: max(starts[user], t0 + k / rate) - starts[user] for k, user in enumerate(order)}


def summary(times: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max over every reader (unanswered ones count as never: inf -> null)."""
    return {
        "p50": finite(percentile(times, 0.50)),
        "p95": finite(percentile(times, 0.95)),
        "p99": finite(percentile(times, 0.99)),
        "max": finite(max(times)) if times else None,
    }


async def _burst(
    server: ServerProcess, bot: Child, *, readers: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Make `readers` users send /start over `args.spread` s; wait for their first answers."""
    users = list(range(FIRST_TELEGRAM_ID, FIRST_TELEGRAM_ID + readers))
    before = await server.stats()
    machine = MachineCpu()
    cpu_before = bot.cpu()
    started = time.monotonic()
    starts = await asyncio.wait_for(
        server.users_send(users, "/start", spread=args.spread), timeout=args.spread + 60
    )
    print(
        f"  {len(starts):,} /starts sent in {max(starts.values()) - min(starts.values()):.2f} s;"
        " waiting for the answers ...",
        flush=True,
    )
    deadline = started + args.timeout
    answered, progress_at, reason = 0, time.monotonic(), ""
    while True:
        seen = await server.stats(since=before.log_len)
        now = time.monotonic()
        count = sum(1 for user in users if user in seen.first_by_chat)
        if count > answered:
            answered, progress_at = count, now
        if count == readers:
            reason = "every reader answered"
            break
        if now - progress_at > args.stall and seen.pending_updates == 0:
            reason = f"gave up: no new answer for {args.stall:.0f} s and no update left to fetch"
            break
        if now > deadline:
            reason = f"gave up: timeout of {args.timeout:.0f} s"
            break
        await asyncio.sleep(0.5)
    cpu_after = bot.cpu()
    machine_used = machine.used()
    wall = time.monotonic() - started

    answer = {
        user: seen.first_by_chat[user] - starts[user] if user in seen.first_by_chat else math.inf
        for user in users
    }
    times = list(answer.values())
    answered_times = [t for t in times if not math.isinf(t)]
    floor = floor_times(starts)
    floor_values = list(floor.values())
    first_start = min(starts.values())
    answer_sends = [seen.first_by_chat[user] for user in users if user in seen.first_by_chat]
    metrics: dict[str, Any] = {}
    port = http_port_of(bot)
    if port is not None and bot.alive:
        text = await http_text(f"http://127.0.0.1:{port}/metrics")
        metrics = {
            "newsbot_telegram_429_total": metric_values(text, "newsbot_telegram_429_total"),
            "newsbot_updates_total": metric_values(text, "newsbot_updates_total"),
            "newsbot_update_latency_seconds_count": metric_values(
                text, "newsbot_update_latency_seconds_count"
            ),
            "newsbot_update_latency_seconds_sum": metric_values(
                text, "newsbot_update_latency_seconds_sum"
            ),
        }
    return {
        "readers": readers,
        "starts_spread": max(starts.values()) - first_start,
        "answered": len(answered_times),
        "unanswered": readers - len(answered_times),
        "wait_ended": reason,
        "wall_seconds": wall,
        "answer_seconds": summary(times),
        "answer_seconds_answered_only": summary(answered_times) if answered_times else None,
        "floor_seconds": summary(floor_values),
        "first_answer_after_first_start": min(answer_sends) - first_start if answer_sends else None,
        "last_answer_after_first_start": max(answer_sends) - first_start if answer_sends else None,
        "most_answers_in_one_second": most_in_one_second(answer_sends),
        "answer_spacing": spacing(answer_sends),
        "messages": seen.messages,
        "chats_with_more_than_one_message": sum(1 for n in seen.sent.values() if n > 1),
        "too_many_requests": seen.too_many_requests - before.too_many_requests,
        "conflicts": seen.conflicts - before.conflicts,
        "client_cpu_seconds": (cpu_after or 0.0) - (cpu_before or 0.0),
        "client_cpu_seconds_total": cpu_after,
        "server_cpu_seconds": seen.cpu_seconds - before.cpu_seconds,
        "server_peak_rss_mb": seen.peak_rss_mb,
        "machine": machine_used,
        "metrics": metrics,
    }


def _server(readers: int) -> ServerProcess:
    return ServerProcess(first_user=FIRST_TELEGRAM_ID, users=readers, limited=True, private_burst=3)


async def measure_newsbot(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    work = folder / "newsbot"
    work.mkdir()
    url = f"sqlite:///{work / 'newsbot.db'}"
    print("newsbot: ingesting the sample feed into a fresh SQLite database ...", flush=True)
    ingest = await asyncio.to_thread(
        run_cli,
        ["ingest", str(SAMPLE_FEED)],
        env=product_env(DATABASE_URL=url),
        cwd=work,
        timeout=120,
    )
    async with _server(args.readers) as server:
        env = product_env(
            TELEGRAM_BOT_TOKEN=server.token,
            TELEGRAM_BASE_URL=server.base_url,
            DATABASE_URL=url,
            HTTP_HOST="127.0.0.1",
            HTTP_PORT=0,
            LOG_LEVEL="INFO",
        )
        bot = Child("newsbot", newsbot_command("run"), env=env, cwd=work)
        code = code_state()
        try:
            await bot.start()
            await bot.wait_for(RUNNING, within=60)
            await bot.wait_for(POLLING, within=30)
            print(f"newsbot: running (pid {bot.pid}) and polling", flush=True)
            result = await _burst(server, bot, readers=args.readers, args=args)
        finally:
            await bot.stop()
            bot.keep_log(args.keep_logs)
    return result | {
        "code": code,
        "ingest": ingest.strip().splitlines(),
        "peak_rss_mb": bot.peak_rss_at_end,
        "log": bot.problems(),
        "exit_code": bot.returncode(),
    }


async def measure_bare(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    work = folder / "bare"
    work.mkdir()
    async with _server(args.readers) as server:
        env = product_env(BARE_BOT_TOKEN=server.token, BARE_BOT_BASE_URL=server.base_url)
        bot = Child("bare-ptb", [sys.executable, "-m", "bench.bare_bot"], env=env, cwd=work)
        try:
            await bot.start()
            await bot.wait_for(READY, within=60)
            print(f"bare PTB bot: polling (pid {bot.pid})", flush=True)
            result = await _burst(server, bot, readers=args.readers, args=args)
        finally:
            await bot.stop()
            bot.keep_log(args.keep_logs)
    return result | {
        "peak_rss_mb": bot.peak_rss_at_end,
        "log": bot.problems(),
        "exit_code": bot.returncode(),
    }


def _judge(run: dict[str, Any]) -> dict[str, Any]:
    p95, floor_p95 = run["answer_seconds"]["p95"], run["floor_seconds"]["p95"]
    ratio = p95 / floor_p95 if p95 is not None and floor_p95 else None
    checks = {
        "all_answered": run["unanswered"] == 0,
        "p95_within_1.5x_floor": ratio is not None and ratio <= MAX_FLOOR_RATIO,
        "no_429": run["too_many_requests"] == 0,
    }
    return {"p95_over_floor_p95": ratio, "checks": checks, "verdict": verdict(all(checks.values()))}


def _row(name: str, run: dict[str, Any], *, target: str, judged: str) -> list[str]:
    answers = run["answer_seconds"]

    def shown(value: float | None) -> str:
        return seconds(math.inf if value is None else value, 1)

    return [
        name,
        f"{run['answered']:,}/{run['readers']:,}",
        shown(answers["p50"]),
        shown(answers["p95"]),
        shown(answers["max"]),
        str(run["too_many_requests"]),
        f"{run['client_cpu_seconds']:.1f}",
        f"{run['server_cpu_seconds']:.1f}",
        target,
        judged,
    ]


async def run(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {
        "benchmark": "burst",
        "command": " ".join(["python -m bench.burst", *sys.argv[1:]]),
        "environment": environment(),
        "parameters": {
            "readers": args.readers,
            "spread_seconds": args.spread,
            "timeout_seconds": args.timeout,
            "stall_seconds": args.stall,
            "fake_server": "--limits --private-burst 3 (30/s overall, 1/s per private chat "
            "with a burst of 3, 20/min per group)",
            "newsbot": "one `newsbot run`, polling, SQLite with the sample feed, default limits",
            "bare": "bench/bare_bot.py: default ApplicationBuilder, no rate limiter, "
            "sequential updates, polling; one reply per /start",
        },
        "targets": {
            "answered": "all",
            "p95_over_floor_p95": MAX_FLOOR_RATIO,
            "too_many_requests": 0,
        },
    }
    with tempfile.TemporaryDirectory(prefix="newsbot-burst-") as folder:
        newsbot = await measure_newsbot(args, Path(folder))
        newsbot |= _judge(newsbot)
        results["newsbot"] = newsbot
        if not args.skip_bare:
            bare = await measure_bare(args, Path(folder))
            bare |= _judge(bare)
            results["bare_ptb"] = bare
    write_results(args.out, results)

    floor = newsbot["floor_seconds"]
    rows = [
        _row(
            "newsbot run",
            newsbot,
            target=f"all, p95 <= {MAX_FLOOR_RATIO} x floor, 0 x 429",
            judged=newsbot["verdict"],
        )
    ]
    if "bare_ptb" in results:
        rows.append(_row("bare PTB bot", results["bare_ptb"], target="(reference)", judged=""))
    rows.append(
        [
            "floor: ideal 30 msg/s",
            f"{args.readers:,}/{args.readers:,}",
            seconds(floor["p50"], 1),
            seconds(floor["p95"], 1),
            seconds(floor["max"], 1),
            "0",
            "",
            "",
            "",
            "",
        ]
    )
    print()
    print(
        f"bench.burst at commit {results['environment']['commit']}: {args.readers:,} /starts "
        f"over {args.spread:.1f} s, answer time per reader (s)"
    )
    print(
        table(
            [
                "bot",
                "answered",
                "p50",
                "p95",
                "max",
                "429s",
                "client CPU",
                "server CPU",
                "target",
                "",
            ],
            rows,
        )
    )
    ratio = newsbot["p95_over_floor_p95"]
    print(f"\nnewsbot: p95 / floor p95 = {ratio:.2f}" if ratio is not None else "\nnewsbot: no p95")
    for name in ("newsbot", "bare_ptb"):
        if name in results:
            one = results[name]
            log = one["log"]
            tracebacks = f", {log['tracebacks']} tracebacks" if log["tracebacks"] else ""
            print(
                f"{name}: {one['wait_ended']}; {one['messages']:,} messages, "
                f"at most {one['most_answers_in_one_second']} answers in one second; "
                f"machine busy {one['machine']['busy_fraction_of_all_cores']:.0%}; "
                f"log: {log['by_level'] or 'no warnings'}{tracebacks}"
            )
    if newsbot["verdict"] == "FAIL":
        missed = [name for name, ok in newsbot["checks"].items() if not ok]
        print(f"\nFAIL: newsbot missed {', '.join(missed)}")
    else:
        print("\nAll targets met.")
    print(f"Wrote {args.out}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.burst", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--spread", type=float, default=1.0, help="seconds the /starts span")
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds to wait for every answer"
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=15.0,
        help="stop waiting once no new answer came for this long and no update is left",
    )
    parser.add_argument("--skip-bare", action="store_true", help="measure newsbot only")
    parser.add_argument("--keep-logs", type=Path, help="copy the bots' logs into this folder")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.readers < 1:
        parser.error("--readers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
