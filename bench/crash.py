"""kill -9 in the middle of a breaking push with Telegram's limits on, then a restart.

    python -m bench.crash [--db sqlite|postgres] [--readers 1000] [--kill-at 0.33]
                          [--lease 30] [--runs 3] [--postgres-url URL] [--out FILE]

Each run: a fresh database (a SQLite file, or a PostgreSQL database of its own) with
`--readers` private chats following World, a fake Bot API in a process of its own with
Telegram's limits (30/s overall, 1/s per chat, a burst of 3), and one real `newsbot run`
process with the default limits. A breaking push is confirmed in the database, as the editor's
Send does; the instance picks it up at its next resume tick. Once `--kill-at` of the readers
have the story, the instance is killed with SIGKILL. The benchmark then reads the database as
the dead process left it (rows SENDING = requests that had left; rows claimed but still
PENDING = requests that were still waiting for their turn), starts `newsbot run` again and
waits until the push is closed: the claimed rows become free after their one-minute claim,
and the SENDING ones are reported uncertain once `SEND_LEASE_SECONDS` (`--lease`) is over.

Figures per run, all from the fake server's send log and the delivery rows:
- *duplicates*: readers who got the story more than once (target 0);
- *missing*: readers who never got it (target at most 2), and whether every one of them is
  reported UNCERTAIN (target yes);
- *in flight at death*: rows SENDING right after the kill, and how many of those did arrive;
- *claimed, waiting*: rows the dead process held but had not sent (sent after the restart);
- the editor's final report line, as `digests.newsroom.texts.push_progress` renders it.
Writes bench/results-crash-<db>.json.
"""

from __future__ import annotations

import argparse
import asyncio
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
    code_state,
    environment,
    newsbot_command,
    product_env,
    run_main,
    stop_all,
    table,
    verdict,
    write_results,
)
from bench.seed import FIRST_TELEGRAM_ID
from digests.db import SessionFactory
from digests.models import BreakingPush, Delivery, DeliveryKind, DeliveryStatus, PushStatus
from digests.newsroom import texts
from digests.newsroom.breaking import PushProgress, tally

HERE = Path(__file__).parent
MAX_MISSING = 2


def _say(tag: str, message: str) -> None:
    print(f"[{tag}] {message}", flush=True)


async def _claimed_waiting(factory: SessionFactory, article_id: int) -> int:
    """PENDING rows some process holds a claim on: requests that were waiting their turn."""
    async with factory() as session:
        return int(
            await session.scalar(
                select(func.count()).where(
                    Delivery.kind == DeliveryKind.BREAKING,
                    Delivery.article_id == article_id,
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.claimed_by.is_not(None),
                )
            )
            or 0
        )


async def _final_report(factory: SessionFactory, push_id: int, article_id: int) -> str:
    async with factory() as session:
        push = await session.get(BreakingPush, push_id)
        assert push is not None
        counts = await tally(session, article_id)
        progress = PushProgress(
            push_id=push_id,
            title=push.article.title,
            tally=counts,
            done=push.status == PushStatus.DONE,
            admin_chat_id=push.admin_chat_id,
            preview_message_id=push.preview_message_id,
        )
    text = texts.push_progress(progress)
    return " / ".join(line for line in text.replace("<b>", "").replace("</b>", "").splitlines())


async def one_run(number: int, args: argparse.Namespace) -> dict[str, Any]:
    tag = f"{args.db} run {number}"
    readers = args.readers
    bots: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="newsbot-crash-") as tmp:
        folder = Path(tmp)
        fresh = audience_database(args.db, readers, postgres_url=args.postgres_url)
        async with fresh as (url, factory):
            async with ServerProcess(
                first_user=FIRST_TELEGRAM_ID, users=readers, limited=True, private_burst=3
            ) as server:
                env = product_env(
                    TELEGRAM_BOT_TOKEN=server.token,
                    TELEGRAM_BASE_URL=server.base_url,
                    DATABASE_URL=url,
                    HTTP_HOST="127.0.0.1",
                    HTTP_PORT=0,
                    LOG_LEVEL="INFO",
                    SEND_LEASE_SECONDS=args.lease,
                )
                try:
                    return await _measure(tag, bots, env, folder, server, factory, args)
                finally:
                    await stop_all(bots)


async def _measure(
    tag: str,
    bots: list[Child],
    env: dict[str, str],
    folder: Path,
    server: ServerProcess,
    factory: SessionFactory,
    args: argparse.Namespace,
) -> dict[str, Any]:
    readers = args.readers
    first = Child("first", newsbot_command("run"), env=env, cwd=folder)
    bots.append(first)
    await first.start()
    await first.wait_for(RUNNING, within=90)
    before = await server.stats()
    push_id, article_id, audience = await confirm_push(factory)
    confirmed = time.monotonic()
    while True:
        seen = await server.stats(since=before.log_len)
        if seen.messages >= readers * args.kill_at:
            break
        if time.monotonic() - confirmed > 60 + readers / 10:
            raise BenchError(f"{tag}: only {seen.messages} messages went out")
        await asyncio.sleep(0.05)
    await first.kill()
    killed_at = time.monotonic()
    at_death = await server.stats(since=before.log_len)
    in_flight = await chats_in_status(factory, article_id, DeliveryStatus.SENDING)
    claimed = await _claimed_waiting(factory, article_id)
    rows_at_death = await row_statuses(factory, article_id)
    _say(
        tag,
        f"kill -9 after {at_death.messages} messages: {len(in_flight)} rows SENDING, "
        f"{claimed} claimed and waiting, rows {rows_at_death}",
    )

    second = Child("restarted", newsbot_command("run"), env=env, cwd=folder)
    bots.append(second)
    await second.start()
    await second.wait_for(RUNNING, within=90)
    limit = args.lease + 120 + readers / 20
    while (await push_status(factory, push_id)) != str(PushStatus.DONE):
        if time.monotonic() - killed_at > limit:
            raise BenchError(
                f"{tag}: the push was not closed {limit:.0f} s after the kill "
                f"(rows {await row_statuses(factory, article_id)})"
            )
        await asyncio.sleep(0.5)
    closed_after = time.monotonic() - killed_at
    await asyncio.sleep(1.0)  # anything still on its way reaches the server's log
    final = await server.stats(since=before.log_len)
    await stop_all(bots)

    audience_ids = await audience_chats(factory, article_id)
    uncertain = await chats_in_status(factory, article_id, DeliveryStatus.UNCERTAIN)
    missing = audience_ids - set(final.sent)
    duplicates = sorted(chat for chat, count in final.sent.items() if count > 1)
    result: dict[str, Any] = {
        "readers": readers,
        "audience": audience,
        "killed_after_messages": at_death.messages,
        "killed_after_seconds": killed_at - confirmed,
        "in_flight_at_death": len(in_flight),
        "in_flight_that_arrived": len(in_flight & set(at_death.sent)),
        "claimed_waiting_at_death": claimed,
        "rows_at_death": rows_at_death,
        "messages": final.messages,
        "duplicates": len(duplicates),
        "missing": len(missing),
        "missing_chats": sorted(missing),
        "missing_reported_uncertain": missing <= uncertain,
        "uncertain": len(uncertain),
        "rows": await row_statuses(factory, article_id),
        "too_many_requests": final.too_many_requests - before.too_many_requests,
        "kill_to_closed_seconds": closed_after,
        "editor_report": await _final_report(factory, push_id, article_id),
        "instances": {
            bot.name: {"exit_code": bot.returncode(), "killed": bot.killed, "log": bot.problems()}
            for bot in bots
        },
    }
    result["ok"] = (
        result["duplicates"] == 0
        and result["missing"] <= MAX_MISSING
        and result["missing_reported_uncertain"]
    )
    _say(
        tag,
        f"{final.messages} messages, {len(duplicates)} duplicates, {len(missing)} missing "
        f"({'all' if missing <= uncertain else 'NOT all'} reported uncertain), "
        f"{len(uncertain)} uncertain; closed {closed_after:.0f} s after the kill: "
        f"{verdict(result['ok'])}",
    )
    return result


async def run(args: argparse.Namespace) -> int:
    runs = []
    for number in range(1, args.runs + 1):
        runs.append(await one_run(number, args))
    rows = [
        [
            str(number),
            str(one["killed_after_messages"]),
            f"{one['in_flight_at_death']} ({one['in_flight_that_arrived']} arrived)",
            str(one["claimed_waiting_at_death"]),
            str(one["duplicates"]),
            str(one["missing"]),
            "yes" if one["missing_reported_uncertain"] else "NO",
            str(one["uncertain"]),
            verdict(one["ok"]),
        ]
        for number, one in enumerate(runs, 1)
    ]
    print()
    print(
        table(
            [
                "run",
                "killed after",
                "SENDING at death",
                "claimed, waiting",
                "dup",
                "missing",
                "missing reported",
                "uncertain",
                "verdict",
            ],
            rows,
        )
    )
    for one in runs:
        print(f"  editor's report: {one['editor_report']}")
    write_results(
        args.out,
        {
            "code": code_state(),
            "environment": environment(),
            "db": args.db,
            "lease_seconds": args.lease,
            "targets": {"duplicates": 0, "missing_at_most": MAX_MISSING},
            "runs": runs,
        },
    )
    print(f"\nwrote {args.out}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.crash", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--kill-at", type=float, default=0.33, help="fraction sent at the kill")
    parser.add_argument("--lease", type=int, default=30, help="SEND_LEASE_SECONDS (30 or more)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="an admin connection")
    parser.add_argument("--out", type=Path, help="default: bench/results-crash-<db>.json")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = HERE / f"results-crash-{args.db}.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_main(lambda: run(args))


if __name__ == "__main__":
    raise SystemExit(main())
