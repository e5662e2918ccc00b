"""Two and four `newsbot run` instances on one PostgreSQL and one Redis push to 3,000 readers.

    python -m bench.instances [--instances 2 4] [--readers 3000] [--kill | --no-kill]
                              [--postgres-url URL] [--redis-url redis://127.0.0.1:6379]
                              [--redis-db 15] [--keep-logs DIR]

For each N: a fresh, migrated PostgreSQL database with `--readers` private chats (alerts on,
all following World), a Redis database number of its own (FLUSHDB before and after), a fake
Bot API in a process of its own with Telegram's limits (`--limits --private-burst 3`), and N
real `newsbot run` processes with identical settings (REDIS_URL, default limits, polling). Once
all run, one breaking push is drafted and confirmed in the database; the instances pick it up
at their next resume tick. With --kill (the default runs both variants) the poller is killed
with SIGKILL once a third of the messages went out. Writes bench/results-instances.json; see
bench/README.md for every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import coredis

from bench.audience import (
    audience_chats,
    audience_database,
    chats_in_status,
    confirm_push,
    push_status,
    row_statuses,
)
from bench.databases import DEFAULT_POSTGRES
from bench.fake_server import ServerProcess, Stats
from bench.procs import (
    POLLING,
    RUNNING,
    BenchError,
    Child,
    MachineCpu,
    at_limit,
    code_state,
    environment,
    http_port_of,
    http_text,
    metric_values,
    most_in_one_second,
    newsbot_command,
    poll_for,
    product_env,
    run_main,
    seconds,
    spacing,
    stop_all,
    table,
    verdict,
    write_results,
)
from bench.seed import FIRST_TELEGRAM_ID
from digests.db import SessionFactory
from digests.models import DeliveryStatus, PushStatus

RESULTS = Path(__file__).with_name("results-instances.json")
MIN_RATE, MAX_RATE = 27.0, 30.0  # combined messages/s, limits on
TAKEOVER_WAIT = 20.0  # seconds after a poller's death to see another one take over


# --- Redis ---------------------------------------------------------------------------------------


async def flush_redis(url: str) -> int:
    """FLUSHDB on the benchmark's own Redis database; how many keys it held."""
    client: Any = coredis.Redis.from_url(url, connect_timeout=2, stream_timeout=2)
    try:
        keys = int(await client.dbsize())
        await client.flushdb()
    except Exception as exc:  # noqa: BLE001 - any failure: no usable Redis here
        raise BenchError(f"Redis at {url} is not usable: {type(exc).__name__}: {exc}") from exc
    return keys


# --- one run -------------------------------------------------------------------------------------


def _say(tag: str, message: str) -> None:
    print(f"[{tag}] {message}", flush=True)


def _pollers(bots: list[Child], *, after: float = 0.0) -> list[str]:
    return [bot.name for bot in bots if any(at >= after for at in bot.find(POLLING))]


async def _metrics(bot: Child) -> dict[str, Any]:
    port = http_port_of(bot)
    if port is None or not bot.alive:
        return {}
    try:
        text = await http_text(f"http://127.0.0.1:{port}/metrics")
    except (OSError, TimeoutError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "breaking_sent": metric_values(text, "newsbot_sends_total").get(
            'kind="breaking",outcome="sent"', 0.0
        ),
        "sends_total": metric_values(text, "newsbot_sends_total"),
        "telegram_429_total": metric_values(text, "newsbot_telegram_429_total"),
        "uncertain_sends_total": metric_values(text, "newsbot_uncertain_sends_total"),
        "is_poller": metric_values(text, "newsbot_is_poller").get("", None),
    }


async def one_run(n: int, *, kill: bool, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    tag = f"{n} instances{', kill -9' if kill else ''}"
    readers = args.readers
    redis_url = f"{args.redis_url.rstrip('/')}/{args.redis_db}"
    run_folder = folder / f"n{n}{'-kill' if kill else ''}"
    run_folder.mkdir()
    redis_keys_found = await flush_redis(redis_url)
    if redis_keys_found:
        _say(tag, f"note: Redis database {args.redis_db} held {redis_keys_found} keys (flushed)")
    bots: list[Child] = []
    try:
        fresh = audience_database("postgres", readers, postgres_url=args.postgres_url)
        async with fresh as (url, factory):
            _say(tag, f"database ready: {readers:,} readers following World")
            async with ServerProcess(
                first_user=FIRST_TELEGRAM_ID, users=readers, limited=True, private_burst=3
            ) as server:
                env = product_env(
                    TELEGRAM_BOT_TOKEN=server.token,
                    TELEGRAM_BASE_URL=server.base_url,
                    DATABASE_URL=url,
                    REDIS_URL=redis_url,
                    HTTP_HOST="127.0.0.1",
                    HTTP_PORT=0,
                    LOG_LEVEL="INFO",
                )
                for i in range(1, n + 1):
                    work = run_folder / f"instance-{i}"
                    work.mkdir()
                    bots.append(Child(f"instance-{i}", newsbot_command("run"), env=env, cwd=work))
                try:
                    result = await _measure(tag, bots, server, factory, kill=kill, args=args)
                finally:
                    await stop_all(bots)
                    if args.keep_logs is not None:
                        target = args.keep_logs / run_folder.name
                        target.mkdir(parents=True, exist_ok=True)
                        for bot in bots:
                            if bot.log_path.exists():
                                shutil.copy(bot.log_path, target / bot.log_path.name)
    finally:
        await stop_all(bots)
        await flush_redis(redis_url)
    for bot in bots:
        one = result["instances"][bot.name]
        one["exit_code"] = bot.returncode()
        one["killed"] = bot.killed
        one["peak_rss_mb"] = bot.peak_rss_at_end
        one["cpu_seconds_total"] = bot.cpu_at_end
        one["log"] = bot.problems()
    result["redis_keys_found_before"] = redis_keys_found
    return result


async def _measure(
    tag: str,
    bots: list[Child],
    server: ServerProcess,
    factory: SessionFactory,
    *,
    kill: bool,
    args: argparse.Namespace,
) -> dict[str, Any]:
    readers = args.readers
    code = code_state()
    launched = time.monotonic()
    await asyncio.gather(*(bot.start() for bot in bots))
    await asyncio.gather(*(bot.wait_for(RUNNING, within=90) for bot in bots))
    running_after = time.monotonic() - launched

    await poll_for(lambda: bool(_pollers(bots)), within=20)
    await asyncio.sleep(1.0)  # a second poller, if there were one, would show by now
    pollers_before = _pollers(bots)
    _say(
        tag,
        f"{len(bots)} instances running after {running_after:.1f} s; "
        f"poller: {', '.join(pollers_before) or 'none'}",
    )

    before = await server.stats()
    machine = MachineCpu()
    cpu_before = {bot.name: bot.cpu() for bot in bots}
    push_id, article_id, audience = await confirm_push(factory)
    confirmed = time.monotonic()
    _say(tag, f"push {push_id} confirmed to {audience:,} chats; waiting for the instances")

    victim: Child | None = None
    killed_at: float | None = None
    limit = args.timeout if args.timeout else 60 + readers / 15
    deadline = confirmed + limit
    seen: Stats = await server.stats(since=before.log_len)
    last_print = confirmed
    done_at: float | None = None
    stable_since: float | None = None
    last_shape: tuple[int, int] | None = None
    status: str | None = None
    statuses: dict[str, int] = {}
    while True:
        seen = await server.stats(since=before.log_len)
        now = time.monotonic()
        if kill and victim is None and seen.messages >= readers / 3:
            alive = [bot for bot in bots if bot.alive]
            pollers = [bot for bot in alive if bot.name in _pollers(alive)]
            victim = pollers[0] if pollers else alive[0]
            killed_at = await victim.kill()
            _say(
                tag,
                f"kill -9 {victim.name} (pid {victim.pid}"
                f"{', the poller' if victim.name in pollers_before else ''}) after "
                f"{seen.messages:,} messages",
            )
        statuses = await row_statuses(factory, article_id)
        status = await push_status(factory, push_id)
        finished = status == str(PushStatus.DONE) or statuses.get("pending", 0) == 0
        if finished and done_at is None:
            done_at = now
        if done_at is not None:
            # rows another instance still has in flight may land after the push is DONE:
            # wait until neither the server's count nor the rows in `sending` move for 3 s
            shape = (seen.messages, statuses.get("sending", 0))
            if shape != last_shape:
                last_shape, stable_since = shape, now
            settled = statuses.get("sending", 0) == 0 if victim is None else False
            if settled or (stable_since is not None and now - stable_since >= 3.0):
                break
        if now > deadline:
            raise BenchError(
                f"{tag}: the push was not finished {limit:.0f} s after confirming "
                f"(push {status}, rows {statuses}, {seen.messages:,} messages at the server)"
            )
        dead = [bot.name for bot in bots if not bot.alive and bot is not victim]
        if dead:
            raise BenchError(f"{tag}: {', '.join(dead)} exited during the push")
        if now - last_print >= 15:
            last_print = now
            _say(tag, f"{seen.messages:,} messages, rows {statuses}, push {status}")
        await asyncio.sleep(0.5)
    finished_after = time.monotonic() - confirmed
    cpu_after = {bot.name: bot.cpu() for bot in bots}
    machine_used = machine.used()

    takeover: float | None = None
    if victim is not None and killed_at is not None and victim.name in pollers_before:
        after = killed_at
        await poll_for(lambda: bool(_pollers(bots, after=after)), within=TAKEOVER_WAIT)
        new = [at for bot in bots for at in bot.find(POLLING) if at >= killed_at]
        takeover = min(new) - killed_at if new else None
    pollers_after = _pollers(bots, after=killed_at) if killed_at is not None else []
    metrics = {bot.name: await _metrics(bot) for bot in bots}
    final = await server.stats(since=before.log_len)

    audience_ids = await audience_chats(factory, article_id)
    in_flight = await chats_in_status(factory, article_id, DeliveryStatus.SENDING)
    statuses = await row_statuses(factory, article_id)
    status = await push_status(factory, push_id)
    lost = audience_ids - set(final.sent)
    duplicates = {chat for chat, count in final.sent.items() if count > 1}
    outsiders = set(final.sent) - audience_ids
    messages = final.messages
    span = final.last - final.first if final.first is not None and final.last else None
    rate = (messages - 1) / span if span else None

    # when each instance logged a 429, from the server's first send of the push
    refused_at = sorted(
        at - final.first
        for bot in bots
        for at in bot.find("429 on")
        if final.first is not None and at >= confirmed
    )
    instances: dict[str, Any] = {}
    for bot in bots:
        used = None
        if cpu_before[bot.name] is not None:
            end_cpu = cpu_after[bot.name] if bot.alive else bot.cpu_at_end
            used = (end_cpu or 0.0) - (cpu_before[bot.name] or 0.0)
        instances[bot.name] = {
            "pid": bot.pid,
            "polled": bool(bot.find(POLLING)),
            "cpu_seconds_during_push": used,
            "metrics": metrics[bot.name],
        }
    client_cpu = sum(one["cpu_seconds_during_push"] or 0.0 for one in instances.values())

    result: dict[str, Any] = {
        "code": code,
        "instances_started": len(bots),
        "kill": kill,
        "readers": readers,
        "audience": audience,
        "push_status": status,
        "rows": statuses,
        "messages": messages,
        "rate_msgs_per_sec": rate,
        "send_span_seconds": span,
        "most_sends_in_one_second": most_in_one_second(final.first_by_chat.values()),
        "sends_30th_within_one_second": at_limit(final.first_by_chat.values(), 30),
        "sends_29th_within_one_second": at_limit(final.first_by_chat.values(), 29),
        "send_spacing": spacing(final.first_by_chat.values()),
        "confirm_to_first_send": final.first - confirmed if final.first is not None else None,
        "confirm_to_last_send": final.last - confirmed if final.last is not None else None,
        "confirm_to_finished_seen": finished_after,
        "too_many_requests": final.too_many_requests - before.too_many_requests,
        "conflicts": final.conflicts - before.conflicts,
        "logged_429s_after_first_send": refused_at,
        "sends_in_first_second": sum(
            1
            for t in final.first_by_chat.values()
            if final.first is not None and t < final.first + 1
        ),
        "duplicates": len(duplicates),
        "messages_outside_audience": len(outsiders),
        "lost": len(lost),
        "lost_chats": sorted(lost)[:50],
        "client_cpu_seconds": client_cpu,
        "server_cpu_seconds": final.cpu_seconds - before.cpu_seconds,
        "server_peak_rss_mb": final.peak_rss_mb,
        "machine": machine_used,
        "instances_running_after_seconds": running_after,
        "pollers_at_start": pollers_before,
        "polling_log_lines": sum(len(bot.find(POLLING)) for bot in bots),
        "instances": instances,
    }
    if kill:
        assert victim is not None
        assert killed_at is not None
        result |= {
            "killed": victim.name,
            "killed_was_poller": victim.name in pollers_before,
            "killed_after_messages": sum(1 for t in final.first_by_chat.values() if t <= killed_at),
            "killed_after_seconds": killed_at - confirmed,
            "in_flight_at_death": len(in_flight),
            "in_flight_delivered": len(in_flight & set(final.sent)),
            "lost_outside_in_flight": len(lost - in_flight),
            "new_pollers_after_kill": pollers_after,
            "poller_takeover_seconds": takeover,
        }
    result |= _judge(result)
    _say(
        tag,
        f"{messages:,} messages at {rate or 0:.1f}/s, {result['too_many_requests']} x 429, "
        f"{len(duplicates)} duplicates, {len(lost)} lost"
        + (f", {result['in_flight_at_death']} in flight at death" if kill else "")
        + f": {result['verdict']}",
    )
    return result


def _judge(run: dict[str, Any]) -> dict[str, Any]:
    checks: dict[str, bool] = {
        "no_429": run["too_many_requests"] == 0,
        "no_duplicates": run["duplicates"] == 0 and run["messages_outside_audience"] == 0,
        "one_poller_at_start": len(run["pollers_at_start"]) == 1,
    }
    if run["kill"]:
        checks["lost_at_most_in_flight"] = run["lost"] <= run["in_flight_at_death"]
        if run["killed_was_poller"]:
            checks["another_took_over_polling"] = len(run["new_pollers_after_kill"]) == 1
    else:
        rate = run["rate_msgs_per_sec"]
        checks["rate_27_to_30"] = rate is not None and MIN_RATE <= rate <= MAX_RATE
        checks["none_lost"] = run["lost"] == 0
    return {"checks": checks, "verdict": verdict(all(checks.values()))}


def _row(run: dict[str, Any]) -> list[str]:
    kill = run["kill"]
    if kill:
        polling = (
            f"{run['pollers_at_start'][0] if run['pollers_at_start'] else 'none'} killed, "
            f"{'/'.join(run['new_pollers_after_kill']) or 'nobody'} took over "
            f"in {seconds(run['poller_takeover_seconds'], 1)} s"
            if run["killed_was_poller"]
            else f"{'/'.join(run['pollers_at_start']) or 'none'}"
        )
    else:
        polling = "/".join(run["pollers_at_start"]) or "none"
    target = "lost <= in flight, 0 dup, 0 x 429" if kill else "27-30/s, 0 x 429, 0 dup, 0 lost"
    return [
        f"{run['instances_started']}{' + kill -9' if kill else ''}",
        f"{run['messages']:,}",
        seconds(run["rate_msgs_per_sec"], 1),
        str(run["too_many_requests"]),
        str(run["duplicates"]),
        str(run["lost"]),
        str(run["in_flight_at_death"]) if kill else "",
        seconds(run["confirm_to_first_send"], 1),
        seconds(run["confirm_to_last_send"], 1),
        f"{run['client_cpu_seconds']:.1f}",
        f"{run['server_cpu_seconds']:.1f}",
        polling,
        target,
        run["verdict"],
    ]


async def run(args: argparse.Namespace) -> int:
    variants = [False, True] if args.kill is None else [args.kill]
    results: dict[str, Any] = {
        "benchmark": "instances",
        "command": " ".join(["python -m bench.instances", *sys.argv[1:]]),
        "environment": environment(),
        "parameters": {
            "instances": args.instances,
            "readers": args.readers,
            "variants": ["kill -9" if kill else "no kill" for kill in variants],
            "redis": f"{args.redis_url.rstrip('/')}/{args.redis_db}",
            "fake_server": "--limits --private-burst 3 (30/s overall, 1/s per private chat "
            "with a burst of 3, 20/min per group)",
            "newsbot": "N x `newsbot run`, polling, one PostgreSQL database, REDIS_URL, "
            "default limits, HTTP_PORT=0",
        },
        "targets": {
            "rate_msgs_per_sec": [MIN_RATE, MAX_RATE],
            "too_many_requests": 0,
            "duplicates": 0,
            "lost": "0 (kill -9: at most the rows in flight at death)",
            "pollers": "exactly one; after the poller's kill -9 another takes over",
        },
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="newsbot-instances-") as folder:
        for n in args.instances:
            for kill in variants:
                results["runs"].append(await one_run(n, kill=kill, args=args, folder=Path(folder)))
                write_results(args.out, results)  # a later crash keeps the runs done so far
    write_results(args.out, results)

    print()
    print(
        f"bench.instances at commit {results['environment']['commit']}: one push to "
        f"{args.readers:,} readers, limits on, one Redis budget"
    )
    print(
        table(
            [
                "instances",
                "messages",
                "msg/s",
                "429s",
                "dup",
                "lost",
                "in flight",
                "to first s",
                "to last s",
                "client CPU",
                "server CPU",
                "polling",
                "target",
                "",
            ],
            [_row(one) for one in results["runs"]],
        )
    )
    print(
        "\nmsg/s = (messages - 1) / (last - first send) at the server; 'to first/last' from "
        "confirming the push (the instances find it at their next resume tick, every 30 s)."
    )
    for one in results["runs"]:
        shares = {
            name: int(instance["metrics"].get("breaking_sent", 0))
            for name, instance in one["instances"].items()
        }
        problems = {
            name: instance["log"]["by_level"]
            for name, instance in one["instances"].items()
            if instance["log"]["by_level"] or instance["log"]["tracebacks"]
        }
        label = f"{one['instances_started']}{' + kill -9' if one['kill'] else ''}"
        print(
            f"{label}: sent per instance (its /metrics; a killed one reports none) {shares}; "
            f"server conflicts {one['conflicts']}; 30 sends within 1 s at the server "
            f"{one['sends_30th_within_one_second']} times; 429s logged at "
            f"{[round(t, 1) for t in one['logged_429s_after_first_send']]} s; machine busy "
            f"{one['machine']['busy_fraction_of_all_cores']:.0%}; log warnings/errors: "
            f"{problems or 'none'}"
        )
    failed = [one for one in results["runs"] if one["verdict"] == "FAIL"]
    for one in failed:
        missed = [name for name, ok in one["checks"].items() if not ok]
        label = f"{one['instances_started']}{' + kill -9' if one['kill'] else ''}"
        print(f"FAIL: {label}: {', '.join(missed)}")
    if not failed:
        print("\nAll targets met.")
    print(f"Wrote {args.out}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instances", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--instances", type=int, nargs="+", default=[2, 4], metavar="N")
    parser.add_argument("--readers", type=int, default=3000)
    kill = parser.add_mutually_exclusive_group()
    kill.add_argument(
        "--kill",
        dest="kill",
        action="store_const",
        const=True,
        help="only the kill -9 variant (default: both)",
    )
    kill.add_argument(
        "--no-kill", dest="kill", action="store_const", const=False, help="only without a kill"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="an admin connection")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    parser.add_argument(
        "--redis-db",
        type=int,
        default=15,
        help="a Redis database number for this benchmark alone (FLUSHDB before and after); "
        "the e2e tests use 1 to 14",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        help="seconds from confirming to the push's end before giving up (0: 60 + readers/15)",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the instances' logs here")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.instances):
        parser.error("--instances must be at least 1")
    if args.readers < 3:
        parser.error("--readers must be at least 3")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
