"""A breaking push over a lossy network: 5% of sends answered 502, 2% delivered but unanswered.

    python -m bench.faults [--readers 1000] [--db sqlite|postgres|both] [--limits]
                           [--postgres-url URL] [--keep-logs DIR]

One real `newsbot run` process (polling) on a fresh database (`--readers` private chats
following World, alerts on) against the fake Bot API in a process of its own started with
`--bad-gateway-rate 0.05 --unanswered-rate 0.02 --unanswered-mode drop --seed 1`. Limits are off
by default on both sides (the fake without `--limits`, the bot with SEND_RATE_LIMIT=0 and
PRIVATE_CHAT_RATE_LIMIT=0); `--limits` turns Telegram's on for both. Once the bot runs, one
breaking push is confirmed in the database; the bot picks it up at its next resume tick. The
server's per-chat counts and lost answers are compared with the delivery rows and with the
bot's GET /metrics. Writes bench/results-faults.json; see bench/README.md.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.audience import (
    audience_chats,
    audience_database,
    chats_in_status,
    confirm_push,
    push_status,
    row_statuses,
)
from bench.databases import DEFAULT_POSTGRES
from bench.fake_server import ServerProcess
from bench.procs import (
    RUNNING,
    BenchError,
    Child,
    MachineCpu,
    code_state,
    environment,
    free_port,
    http_text,
    metric_values,
    newsbot_command,
    product_env,
    run_main,
    seconds,
    table,
    verdict,
    wait_until,
    write_results,
)
from bench.seed import FIRST_TELEGRAM_ID
from digests.db import SessionFactory
from digests.models import Chat, Delivery, DeliveryKind, DeliveryStatus, PushStatus

RESULTS = Path(__file__).with_name("results-faults.json")
BAD_GATEWAY_RATE = 0.05
UNANSWERED_RATE = 0.02
SEED = 1
# bot/transport/sender.py logs each 5xx it retries:
# "chat 1000123: Bad Gateway (not sent); retry 1/3 ..."
_RETRIED = re.compile(r"chat (-?\d+): (.*) \(not sent\); retry")


async def _retried_rows(factory: SessionFactory, article_id: int) -> int:
    """Rows claimed more than once: handed back (RETRY_LATER) and sent at a later tick."""
    async with factory() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.kind == DeliveryKind.BREAKING,
                    Delivery.article_id == article_id,
                    Delivery.attempts > 1,
                )
            )
            or 0
        )


async def _rows_of(factory: SessionFactory, article_id: int, chats: set[int]) -> dict[int, str]:
    """Status and error of the rows of `chats` (for the lost ones)."""
    if not chats:
        return {}
    async with factory() as session:
        rows = await session.execute(
            select(Chat.telegram_id, Delivery.status, Delivery.error)
            .join(Delivery, Delivery.chat_id == Chat.id)
            .where(
                Delivery.kind == DeliveryKind.BREAKING,
                Delivery.article_id == article_id,
                Chat.telegram_id.in_(chats),
            )
        )
        return {chat: f"{status}: {error or ''}" for chat, status, error in rows}


async def one_db(kind: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    tag = kind
    readers = args.readers
    work = folder / kind
    work.mkdir()
    async with audience_database(kind, readers, postgres_url=args.postgres_url) as (url, factory):
        print(f"[{tag}] database ready: {readers:,} readers following World", flush=True)
        async with ServerProcess(
            first_user=FIRST_TELEGRAM_ID,
            users=readers,
            limited=args.limits,
            private_burst=3 if args.limits else 1,
            bad_gateway_rate=BAD_GATEWAY_RATE,
            unanswered_rate=UNANSWERED_RATE,
            unanswered_mode="drop",
            seed=SEED,
        ) as server:
            port = free_port()
            limits = {} if args.limits else {"SEND_RATE_LIMIT": 0, "PRIVATE_CHAT_RATE_LIMIT": 0}
            env = product_env(
                TELEGRAM_BOT_TOKEN=server.token,
                TELEGRAM_BASE_URL=server.base_url,
                DATABASE_URL=url,
                HTTP_HOST="127.0.0.1",
                HTTP_PORT=port,
                LOG_LEVEL="INFO",
                **limits,
            )
            bot = Child(f"newsbot-{kind}", newsbot_command("run"), env=env, cwd=work)
            code = code_state()
            try:
                result = await _measure(tag, bot, server, factory, port=port, args=args)
            finally:
                await bot.stop()
                bot.keep_log(args.keep_logs)
        article_id = result.pop("_article_id")
        result["rows"] = await row_statuses(factory, article_id)
        result["push_status"] = await push_status(factory, result.pop("_push_id"))
        uncertain = await chats_in_status(factory, article_id, DeliveryStatus.UNCERTAIN)
        audience = await audience_chats(factory, article_id)
        result["retried_rows"] = await _retried_rows(factory, article_id)
        sent: dict[int, int] = result.pop("_sent")
        unanswered: list[int] = result.pop("_unanswered")
        retried_chats: set[int] = result.pop("_retried_chats")
        lost = audience - set(sent)
        result["lost_rows"] = await _rows_of(factory, article_id, set(sorted(lost)[:20]))
    duplicates = {chat for chat, count in sent.items() if count > 1}
    server_unanswered = set(unanswered)
    result |= {
        "code": code,
        "audience": len(audience),
        "lost": len(lost),
        "lost_chats": sorted(lost)[:50],
        "duplicates": len(duplicates),
        "messages_outside_audience": len(set(sent) - audience),
        "chats_with_one_message": sum(1 for chat in audience if sent.get(chat) == 1),
        "server_unanswered": len(unanswered),
        "server_unanswered_chats": len(server_unanswered),
        "uncertain_rows": len(uncertain),
        "uncertain_match_unanswered": uncertain == server_unanswered,
        "uncertain_not_unanswered": sorted(uncertain - server_unanswered)[:50],
        "unanswered_not_uncertain": sorted(server_unanswered - uncertain)[:50],
        "unanswered_got_exactly_one": all(sent.get(chat) == 1 for chat in server_unanswered),
        "chats_retried_after_502": len(retried_chats),
        "chats_retried_after_502_got_exactly_one": sum(
            1 for chat in retried_chats if sent.get(chat) == 1
        ),
        "bot_uncertain_sends_total": result["metrics"]
        .get("newsbot_uncertain_sends_total", {})
        .get('kind="breaking"', 0.0),
        "bot": {
            "cpu_seconds_total": bot.cpu_at_end,
            "peak_rss_mb": bot.peak_rss_at_end,
            "exit_code": bot.returncode(),
            "log": bot.problems(),
        },
    }
    checks = {
        "no_duplicates": result["duplicates"] == 0 and result["messages_outside_audience"] == 0,
        "none_lost": result["lost"] == 0,
        "every_502_delivered": result["chats_retried_after_502_got_exactly_one"]
        == len(retried_chats)
        and not any("502" in row or "Bad Gateway" in row for row in result["lost_rows"].values()),
        "uncertain_rows_equal_unanswered": result["uncertain_match_unanswered"],
        "unanswered_got_it_once": result["unanswered_got_exactly_one"],
        "metric_counts_uncertain": int(result["bot_uncertain_sends_total"]) == len(uncertain),
    }
    result |= {"checks": checks, "verdict": verdict(all(checks.values()))}
    print(
        f"[{tag}] {result['messages']:,} messages, {result['bad_gateway']} x 502, "
        f"{len(server_unanswered)} unanswered / {len(uncertain)} uncertain rows, "
        f"{len(duplicates)} duplicates, {len(lost)} lost: {result['verdict']}",
        flush=True,
    )
    return result


async def _measure(
    tag: str,
    bot: Child,
    server: ServerProcess,
    factory: SessionFactory,
    *,
    port: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    await bot.start()
    await bot.wait_for(RUNNING, within=60)
    before = await server.stats()
    machine = MachineCpu()
    cpu_before = bot.cpu()
    push_id, article_id, audience = await confirm_push(factory)
    confirmed = time.monotonic()
    print(f"[{tag}] push confirmed to {audience:,} chats; waiting for the bot", flush=True)

    async def finished() -> dict[str, int] | None:
        if not bot.alive:
            raise BenchError(f"{bot.name} exited during the push:\n{bot.tail()}")
        statuses = await row_statuses(factory, article_id)
        status = await push_status(factory, push_id)
        busy = statuses.get("pending", 0) + statuses.get("sending", 0)
        return statuses if status == str(PushStatus.DONE) and busy == 0 else None

    await wait_until(finished, within=args.timeout, what=f"push {push_id} to finish ({tag})")
    done_after = time.monotonic() - confirmed
    metrics_text = await http_text(f"http://127.0.0.1:{port}/metrics")
    cpu_after = bot.cpu()
    machine_used = machine.used()
    seen = await server.stats(since=before.log_len)
    retried: set[int] = set()
    reasons: dict[str, int] = {}
    for at, line in bot.lines:
        match = _RETRIED.search(line)
        if match and at >= confirmed:
            retried.add(int(match.group(1)))
            reasons[match.group(2)] = reasons.get(match.group(2), 0) + 1
    span = seen.last - seen.first if seen.first is not None and seen.last is not None else None
    return {
        "_push_id": push_id,
        "_article_id": article_id,
        "_sent": seen.sent,
        "_unanswered": list(seen.unanswered),
        "_retried_chats": retried,
        "limits": args.limits,
        "messages": seen.messages,
        "bad_gateway": seen.bad_gateway - before.bad_gateway,
        "retries_logged": sum(reasons.values()),
        "retry_reasons": reasons,
        "too_many_requests": seen.too_many_requests - before.too_many_requests,
        "confirm_to_first_send": seen.first - confirmed if seen.first is not None else None,
        "confirm_to_last_send": seen.last - confirmed if seen.last is not None else None,
        "send_span_seconds": span,
        "rate_msgs_per_sec": (seen.messages - 1) / span if span else None,
        "confirm_to_done_seen": done_after,
        "client_cpu_seconds": (cpu_after or 0.0) - (cpu_before or 0.0),
        "server_cpu_seconds": seen.cpu_seconds - before.cpu_seconds,
        "server_peak_rss_mb": seen.peak_rss_mb,
        "machine": machine_used,
        "metrics": {
            name: metric_values(metrics_text, name)
            for name in (
                "newsbot_uncertain_sends_total",
                "newsbot_sends_total",
                "newsbot_telegram_429_total",
                "newsbot_bot_api_requests_total",
            )
        },
    }


def _row(kind: str, run: dict[str, Any]) -> list[str]:
    return [
        kind,
        f"{run['messages']:,}",
        str(run["bad_gateway"]),
        f"{run['chats_retried_after_502_got_exactly_one']}/{run['chats_retried_after_502']}",
        str(run["server_unanswered"]),
        str(run["uncertain_rows"]),
        "yes" if run["uncertain_match_unanswered"] else "NO",
        f"{run['bot_uncertain_sends_total']:.0f}",
        str(run["duplicates"]),
        str(run["lost"]),
        seconds(run["send_span_seconds"], 1),
        f"{run['client_cpu_seconds']:.1f}",
        f"{run['server_cpu_seconds']:.1f}",
        run["verdict"],
    ]


async def run(args: argparse.Namespace) -> int:
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {
        "benchmark": "faults",
        "command": " ".join(["python -m bench.faults", *sys.argv[1:]]),
        "environment": environment(),
        "parameters": {
            "readers": args.readers,
            "fake_server": f"--bad-gateway-rate {BAD_GATEWAY_RATE} --unanswered-rate "
            f"{UNANSWERED_RATE} --unanswered-mode drop --seed {SEED}"
            + (" --limits --private-burst 3" if args.limits else " (limits off)"),
            "newsbot": "one `newsbot run`, polling, "
            + ("default limits" if args.limits else "SEND_RATE_LIMIT=0 PRIVATE_CHAT_RATE_LIMIT=0"),
        },
        "targets": {
            "duplicates": 0,
            "lost": 0,
            "every_502_delivered": True,
            "uncertain_rows": "exactly the server's unanswered chats, each with one message",
            "newsbot_uncertain_sends_total": "equals the uncertain rows",
        },
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="newsbot-faults-") as folder:
        for kind in kinds:
            results["runs"][kind] = await one_db(kind, args, Path(folder))
            write_results(args.out, results)
    write_results(args.out, results)

    print()
    print(
        f"bench.faults at commit {results['environment']['commit']}: a push to "
        f"{args.readers:,} readers, 5% of sends answered 502, 2% delivered but unanswered, "
        f"limits {'on' if args.limits else 'off'}"
    )
    print(
        table(
            [
                "db",
                "messages",
                "502s",
                "502'd chats: 1 msg",
                "unanswered",
                "uncertain rows",
                "same chats",
                "metric",
                "dup",
                "lost",
                "push s",
                "client CPU",
                "server CPU",
                "",
            ],
            [_row(kind, one) for kind, one in results["runs"].items()],
        )
    )
    print(
        "\n502'd chats: chats the bot logged a 502 retry for, and how many of them got exactly "
        'one message; metric: newsbot_uncertain_sends_total{kind="breaking"} from /metrics.'
    )
    failed = False
    for kind, one in results["runs"].items():
        log = one["bot"]["log"]
        print(
            f"{kind}: rows {one['rows']}, push {one['push_status']}, "
            f"{one['retried_rows']} rows re-claimed at a later tick; machine busy "
            f"{one['machine']['busy_fraction_of_all_cores']:.0%}; log {log['by_level']}"
            f"{', ' + str(log['tracebacks']) + ' tracebacks' if log['tracebacks'] else ''}"
        )
        if one["verdict"] == "FAIL":
            failed = True
            missed = [name for name, ok in one["checks"].items() if not ok]
            print(f"FAIL: {kind}: {', '.join(missed)}")
    if not failed:
        print("\nAll targets met.")
    print(f"Wrote {args.out}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--limits",
        action="store_true",
        help="Telegram's limits on both sides (default: off on both, so it runs in seconds)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="an admin connection")
    parser.add_argument(
        "--timeout",
        type=float,
        default=150.0,
        help="seconds from confirming to the push's end before giving up",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the bot's logs here")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.readers < 1:
        parser.error("--readers must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
