"""An API push to 1,000 readers against an editor's /breaking and a bare PTB loop, in one run.

    python -m bench.api_push [--readers 1000] [--db sqlite|postgres|both] [--runs 1]
                             [--bare-rate 30] [--postgres-url URL] [--timeout SECONDS]
                             [--keep-logs DIR] [--out bench/results-api-push.json]

Each run: a fresh database (a SQLite file, or a PostgreSQL database of its own) with
`--readers` private chats following World, alerts on (`bench.audience.prepare`); the fake Bot
API in a process of its own with Telegram's limits (30 messages/s overall, 1/s per private
chat), knowing every reader and one editor as users who pressed Start; one real `newsbot run`
(polling, default limits, `ADMIN_IDS` = the editor, `API_TOKENS` = a fresh token,
`HTTP_PORT=0`). In that one process, one after the other (the order alternates from run to
run), each measured from the server's send log:

- *API push*: a story is stored with `POST /api/v1/articles` (section World), then the clock
  starts and `POST /api/v1/pushes {"article_id": N}` is sent over HTTP (httpx);
- */breaking push*: the editor sends `/breaking world <text>`, the preview with Send arrives,
  then the clock starts and the editor presses Send (the fake's `POST /users/press`);
- *bare PTB loop*: a plain `telegram.Bot` in this process sends the story to every reader,
  one message every 1/`--bare-rate` s (waiting out a 429's retry_after, then going on).

Every time is `time.monotonic()`: on Linux that is CLOCK_MONOTONIC, one clock for every
process of the machine, so the server's send times and this process's request times compare
directly. Writes bench/results-api-push.json; see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import RetryAfter

from bench.audience import (
    audience_chats,
    audience_database,
    chats_in_status,
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
    code_state,
    environment,
    http_port_of,
    most_in_one_second,
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
from bot.transport.replies import NO_PREVIEW
from digests.db import SessionFactory
from digests.models import BreakingPush, DeliveryStatus, PushStatus
from digests.ui.buttons import PushChoice, decode

RESULTS = Path(__file__).with_name("results-api-push.json")
FIRST_DELIVERY_TARGET = 1.0  # seconds from the API request to the first delivery
RATE_TOLERANCE = 0.10  # the API push's msg/s within 10% of /breaking's
API_STORY = {
    "guid": "bench-api-push-1",
    "url": "https://news.example/2026/storm-warning-ferries",
    "title": "Storm warning for the coast: ferries suspended",
    "summary": "Schools close early as the storm reaches the coast tonight.",
    "sections": ["World"],
}
BREAKING_TEXT = "/breaking world Flood alert on the river: the old town is being evacuated"
API = "api"
BREAKING = "breaking"
BARE = "bare"
NAMES = {API: "API push", BREAKING: "/breaking push", BARE: "bare PTB loop"}


def _say(tag: str, message: str) -> None:
    print(f"[{tag}] {message}", flush=True)


# --- figures (pure) --------------------------------------------------------------------------


def delivery_timing(started_at: float, sends: Iterable[float]) -> dict[str, Any]:
    """When sends reached the server, against `started_at` (same clock): to the first and
    last, the sustained rate between them ((n - 1) / span) and the most in any one second."""
    ordered = sorted(sends)
    if not ordered:
        return {"messages": 0, "to_first_delivery_s": None, "to_last_delivery_s": None}
    span = ordered[-1] - ordered[0]
    return {
        "messages": len(ordered),
        "to_first_delivery_s": ordered[0] - started_at,
        "to_last_delivery_s": ordered[-1] - started_at,
        "send_span_s": span,
        "rate_msgs_per_s": (len(ordered) - 1) / span if span > 0 else None,
        "most_in_one_second": most_in_one_second(ordered),
    }


def exactly_once(
    audience: Collection[int],
    sent: Mapping[int, int],
    sent_rows: Collection[int] | None = None,
    *,
    ignore: Collection[int] = (),
) -> dict[str, Any]:
    """Did every audience chat get exactly one message? From the server's per-chat counts
    (`sent`) and, when given, the chats whose delivery row says SENT. Chats in `ignore` (the
    editor's) are left out of the "outside the audience" count."""
    wanted = set(audience)
    duplicates = sorted(chat for chat, count in sent.items() if count > 1)
    missing = sorted(wanted - set(sent))
    outside = sorted(set(sent) - wanted - set(ignore))
    result: dict[str, Any] = {
        "audience": len(wanted),
        "duplicates": len(duplicates),
        "missing": len(missing),
        "outside_audience": len(outside),
        "examples": {"duplicates": duplicates[:20], "missing": missing[:20]},
    }
    ok = not duplicates and not missing and not outside
    if sent_rows is not None:
        rows = set(sent_rows)
        not_sent_rows = sorted(wanted - rows)
        # a row SENT for a chat the server did not get exactly one message from, or the reverse
        disagree = sorted(chat for chat in wanted if (chat in rows) != (sent.get(chat) == 1))
        result |= {"rows_not_sent": len(not_sent_rows), "rows_disagree_with_server": len(disagree)}
        result["examples"]["rows_disagree"] = disagree[:20]
        ok = ok and not not_sent_rows and not disagree
    result["ok"] = ok
    return result


def rate_ratio(api: float | None, reference: float | None) -> float | None:
    """The API push's rate over /breaking's (None when either is unknown)."""
    if api is None or not reference:
        return None
    return api / reference


# --- one push, measured ------------------------------------------------------------------------


class Run:
    """One run's processes and database: the bot, the fake server, the editor, the token."""

    def __init__(
        self,
        tag: str,
        bot: Child,
        server: ServerProcess,
        factory: SessionFactory,
        *,
        number: int,
        editor: int,
        token: str,
        args: argparse.Namespace,
    ) -> None:
        self.tag = tag
        self.number = number
        self.bot = bot
        self.server = server
        self.factory = factory
        self.editor = editor
        self.token = token
        self.args = args

    async def follow(
        self,
        name: str,
        *,
        before: Stats,
        machine: MachineCpu,
        cpu_before: float | None,
        push_id: int,
        article_id: int,
        started_at: float,
    ) -> dict[str, Any]:
        """Wait until the push is done with no row open; then its figures."""

        async def finished() -> bool | None:
            if not self.bot.alive:
                raise BenchError(f"{self.bot.name} exited during the push:\n{self.bot.tail()}")
            statuses = await row_statuses(self.factory, article_id)
            open_rows = statuses.get("pending", 0) + statuses.get("sending", 0)
            done = await push_status(self.factory, push_id) == str(PushStatus.DONE)
            return True if done and open_rows == 0 else None

        limit = self.args.timeout
        await wait_until(finished, within=limit, every=0.25, what=f"{name} push {push_id} to end")
        done_seen = time.monotonic() - started_at
        cpu_after = self.bot.cpu()
        machine_used = machine.used()
        seen = await self.server.stats(since=before.log_len)
        audience = await audience_chats(self.factory, article_id)
        sent_rows = await chats_in_status(self.factory, article_id, DeliveryStatus.SENT)
        timing = delivery_timing(
            started_at, (at for chat, at in seen.first_by_chat.items() if chat in audience)
        )
        once = exactly_once(audience, seen.sent, sent_rows, ignore=(self.editor,))
        result = {
            "push_id": push_id,
            "article_id": article_id,
            **timing,
            "exactly_once": once,
            "rows": await row_statuses(self.factory, article_id),
            "push_status": await push_status(self.factory, push_id),
            "too_many_requests": seen.too_many_requests - before.too_many_requests,
            "editor_messages": seen.sent.get(self.editor, 0),
            "done_seen_after_s": done_seen,
            "client_cpu_seconds": (cpu_after or 0.0) - (cpu_before or 0.0),
            "server_cpu_seconds": seen.cpu_seconds - before.cpu_seconds,
            "machine": machine_used,
        }
        _say(
            self.tag,
            f"{NAMES[name]}: first delivery {seconds(timing['to_first_delivery_s'], 3)} s, "
            f"{timing['messages']:,} messages at {seconds(timing.get('rate_msgs_per_s'), 1)}/s, "
            f"{once['duplicates']} dup, {once['missing']} missing",
        )
        return result

    async def api_push(self, http: httpx.AsyncClient) -> dict[str, Any]:
        stored = await http.post("/api/v1/articles", json=API_STORY)
        if stored.status_code not in (200, 201):
            raise BenchError(f"POST /api/v1/articles: {stored.status_code} {stored.text}")
        article_id = int(stored.json()["id"])
        dry = await http.post("/api/v1/pushes", json={"article_id": article_id, "dry_run": True})
        if dry.status_code != 200:
            raise BenchError(f"POST /api/v1/pushes (dry_run): {dry.status_code} {dry.text}")
        before = await self.server.stats()
        machine = MachineCpu()
        cpu_before = self.bot.cpu()
        started_at = time.monotonic()
        answer = await http.post("/api/v1/pushes", json={"article_id": article_id})
        answered_at = time.monotonic()
        if answer.status_code != 202:
            raise BenchError(f"POST /api/v1/pushes: {answer.status_code} {answer.text}")
        body = answer.json()
        result = await self.follow(
            API,
            before=before,
            machine=machine,
            cpu_before=cpu_before,
            push_id=int(body["id"]),
            article_id=article_id,
            started_at=started_at,
        )
        report = await http.get(f"/api/v1/pushes/{body['id']}")
        return result | {
            "http_answer_s": answered_at - started_at,
            "http_status": answer.status_code,
            "answer": body,
            "dry_run_audience": dry.json()["audience"],
            "preview_html": dry.json()["preview_html"],
            "report_after": report.json(),
        }

    async def breaking_push(self) -> dict[str, Any]:
        mark = await self.server.stats()
        commanded = await self.server.users_send([self.editor], BREAKING_TEXT)

        async def preview() -> float | None:
            seen = await self.server.stats(since=mark.log_len)
            return seen.first_by_chat.get(self.editor)

        previewed_at = await wait_until(preview, within=30, every=0.1, what="the /breaking preview")
        before = await self.server.stats()
        machine = MachineCpu()
        cpu_before = self.bot.cpu()
        pressed = await self.server.users_press(self.editor, "Send", within=5)
        choice = decode(pressed.data)
        if not isinstance(choice, PushChoice) or not choice.send:
            raise BenchError(f"the editor's Send button carries {pressed.data!r}")
        async with self.factory() as session:
            push = await session.get(BreakingPush, choice.push_id)
            if push is None:
                raise BenchError(f"push {choice.push_id} is not in the database")
            article_id = push.article_id
        result = await self.follow(
            BREAKING,
            before=before,
            machine=machine,
            cpu_before=cpu_before,
            push_id=choice.push_id,
            article_id=article_id,
            started_at=pressed.at,
        )
        return result | {"command_to_preview_s": previewed_at - commanded[self.editor]}

    async def bare_loop(self, chats: Sequence[int], text: str, *, rate: float) -> dict[str, Any]:
        """A plain telegram.Bot, one message every 1/rate s, a 429 waited out and retried."""
        retries = 0
        async with Bot(self.server.token, base_url=self.server.base_url) as bot:
            before = await self.server.stats()
            machine = MachineCpu()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            started_at = time.monotonic()
            anchor = started_at
            for index, chat in enumerate(chats):
                delay = anchor + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                while True:
                    try:
                        await bot.send_message(
                            chat, text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
                        )
                        break
                    except RetryAfter as exc:
                        retries += 1
                        wait = exc.retry_after
                        await asyncio.sleep(
                            wait if isinstance(wait, int | float) else wait.total_seconds()
                        )
                        anchor = time.monotonic() - index / rate  # go on from here, no catch-up
            ended = resource.getrusage(resource.RUSAGE_SELF)
            machine_used = machine.used()
            seen = await self.server.stats(since=before.log_len)
        timing = delivery_timing(started_at, seen.first_by_chat.values())
        once = exactly_once(chats, seen.sent)
        result = {
            **timing,
            "exactly_once": once,
            "pacing_msgs_per_s": rate,
            "too_many_requests": seen.too_many_requests - before.too_many_requests,
            "retries_after_429": retries,
            "client_cpu_seconds": (ended.ru_utime + ended.ru_stime)
            - (usage.ru_utime + usage.ru_stime),
            "server_cpu_seconds": seen.cpu_seconds - before.cpu_seconds,
            "machine": machine_used,
        }
        _say(
            self.tag,
            f"{NAMES[BARE]} at {rate:g}/s: {timing['messages']:,} messages at "
            f"{seconds(timing.get('rate_msgs_per_s'), 1)}/s, {result['too_many_requests']} x 429",
        )
        return result

    async def measure(self, port: int) -> dict[str, Any]:
        """The two pushes (in the run's order) and the bare loop, one after the other."""
        number = self.number
        order = [API, BREAKING] if number % 2 == 1 else [BREAKING, API]
        results: dict[str, Any] = {"order": order}
        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as http:
            for name in order:
                if name == API:
                    results[API] = await self.api_push(http)
                else:
                    results[BREAKING] = await self.breaking_push()
                await asyncio.sleep(1.5)  # every reader's 1/s window is clear again
        chats = range(FIRST_TELEGRAM_ID, FIRST_TELEGRAM_ID + self.args.readers)
        results[BARE] = []
        for rate in self.args.bare_rate:
            await asyncio.sleep(1.5)
            results[BARE].append(
                await self.bare_loop(list(chats), results[API]["preview_html"], rate=rate)
            )
        return results


# --- a run: fresh database, fake server and bot ------------------------------------------------


def judge(run: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets for one run."""
    api, brk = run[API], run[BREAKING]
    first = api["to_first_delivery_s"]
    ratio = rate_ratio(api.get("rate_msgs_per_s"), brk.get("rate_msgs_per_s"))
    checks = {
        "api_first_delivery_within_1s": first is not None and first <= FIRST_DELIVERY_TARGET,
        "api_rate_within_10pct_of_breaking": ratio is not None
        and abs(ratio - 1.0) <= RATE_TOLERANCE,
        "api_exactly_once": bool(api["exactly_once"]["ok"]),
        "breaking_exactly_once": bool(brk["exactly_once"]["ok"]),
    }
    return {
        "api_over_breaking_rate": ratio,
        "checks": checks,
        "verdict": verdict(all(checks.values())),
    }


async def one_run(kind: str, number: int, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    tag = f"{kind} run {number}"
    readers = args.readers
    editor = FIRST_TELEGRAM_ID + readers  # a user the fake knows; not a reader
    token = secrets.token_urlsafe(32)
    work = folder / f"{kind}-{number}"
    work.mkdir()
    async with audience_database(kind, readers, postgres_url=args.postgres_url) as (url, factory):
        _say(tag, f"database ready: {readers:,} readers following World, alerts on")
        async with ServerProcess(
            first_user=FIRST_TELEGRAM_ID,
            users=readers + 1,
            limited=True,
            private_burst=args.private_burst,
        ) as server:
            env = product_env(
                TELEGRAM_BOT_TOKEN=server.token,
                TELEGRAM_BASE_URL=server.base_url,
                DATABASE_URL=url,
                HTTP_HOST="127.0.0.1",
                HTTP_PORT=0,
                LOG_LEVEL="INFO",
                ADMIN_IDS=editor,
                API_TOKENS=token,
            )
            bot = Child(f"newsbot-{kind}-{number}", newsbot_command("run"), env=env, cwd=work)
            code = code_state()
            try:
                await bot.start()
                await bot.wait_for(RUNNING, within=90)
                await bot.wait_for(POLLING, within=30)
                port = http_port_of(bot)
                if port is None:
                    raise BenchError(f"{bot.name} logged no HTTP port:\n{bot.tail()}")
                run = Run(
                    tag,
                    bot,
                    server,
                    factory,
                    number=number,
                    editor=editor,
                    token=token,
                    args=args,
                )
                result = await run.measure(port)
            finally:
                await bot.stop()
                bot.keep_log(args.keep_logs)
    result |= {
        "code": code,
        "bot": {
            "cpu_seconds_total": bot.cpu_at_end,
            "peak_rss_mb": bot.peak_rss_at_end,
            "exit_code": bot.returncode(),
            "log": bot.problems(),
        },
    }
    result |= judge(result)
    _say(tag, f"targets: {result['verdict']}")
    return result


# --- report -------------------------------------------------------------------------------------


def _parts(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """What one run measured, labelled: the two pushes, then a bare loop per pacing."""
    bare = [(f"{NAMES[BARE]} at {one['pacing_msgs_per_s']:g}/s", one) for one in run[BARE]]
    return [(NAMES[API], run[API]), (NAMES[BREAKING], run[BREAKING]), *bare]


def _rows(kind: str, number: int, run: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label, one in _parts(run):
        once = one["exactly_once"]
        rows.append(
            [
                f"{kind} #{number}: {label}",
                seconds(one["to_first_delivery_s"], 3),
                seconds(one.get("http_answer_s"), 3) if "http_answer_s" in one else "",
                seconds(one.get("rate_msgs_per_s"), 1),
                str(one.get("most_in_one_second", "")),
                seconds(one["to_last_delivery_s"], 1),
                f"{one['messages']:,}",
                str(once["duplicates"]),
                str(once["missing"]),
                str(one["too_many_requests"]),
                f"{one['client_cpu_seconds']:.1f}",
                f"{one['server_cpu_seconds']:.1f}",
            ]
        )
    return rows


def _medians(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per part (API push, /breaking push, each bare loop), the median of each figure."""
    keys = (
        "to_first_delivery_s",
        "http_answer_s",
        "rate_msgs_per_s",
        "most_in_one_second",
        "to_last_delivery_s",
        "client_cpu_seconds",
        "server_cpu_seconds",
    )
    parts: dict[str, list[dict[str, Any]]] = {}
    for one_run in runs:
        for label, one in _parts(one_run):
            parts.setdefault(label, []).append(one)
    medians: dict[str, dict[str, float | None]] = {}
    for label, measured in parts.items():
        medians[label] = {}
        for key in keys:
            values = [one[key] for one in measured if one.get(key) is not None]
            medians[label][key] = statistics.median(values) if values else None
    return medians


async def run(args: argparse.Namespace) -> int:
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {
        "benchmark": "api_push",
        "command": " ".join(["python -m bench.api_push", *sys.argv[1:]]),
        "environment": environment(("fastapi", "uvicorn", "python-telegram-bot", "httpx")),
        "clock": "every time is time.monotonic() (CLOCK_MONOTONIC on Linux): one clock for the "
        "benchmark, the fake server and newsbot, so the server's send times and the request "
        "and press times compare directly",
        "parameters": {
            "readers": args.readers,
            "runs": args.runs,
            "fake_server": "--limits (30 messages/s overall in any second, 1/s per private "
            f"chat) --private-burst {args.private_burst}",
            "newsbot": "one `newsbot run`, polling, default limits, HTTP_PORT=0, ADMIN_IDS = "
            "the editor, API_TOKENS = one fresh token",
            "bare_rates_msgs_per_s": args.bare_rate,
        },
        "targets": {
            "api_first_delivery_s_at_most": FIRST_DELIVERY_TARGET,
            "api_rate_within_fraction_of_breaking": RATE_TOLERANCE,
            "exactly_once": "every reader exactly one message, for the API push and /breaking",
        },
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="newsbot-api-push-") as folder:
        for kind in kinds:
            results["runs"][kind] = []
            for number in range(1, args.runs + 1):
                results["runs"][kind].append(await one_run(kind, number, args, Path(folder)))
                write_results(args.out, results)
    results["medians"] = {kind: _medians(runs) for kind, runs in results["runs"].items()}
    write_results(args.out, results)

    print()
    print(
        f"bench.api_push at commit {results['environment']['commit']}: a push to "
        f"{args.readers:,} readers, Telegram's limits on (30/s, 1/s per chat)"
    )
    print(
        table(
            [
                "",
                "to first s",
                "HTTP answer s",
                "msg/s",
                "max in 1 s",
                "to last s",
                "messages",
                "dup",
                "missing",
                "429s",
                "client CPU s",
                "server CPU s",
            ],
            [
                row
                for kind, runs in results["runs"].items()
                for number, one in enumerate(runs, 1)
                for row in _rows(kind, number, one)
            ],
        )
    )
    print(
        "\nto first / to last: from sending the POST (API), pressing Send (/breaking) or the "
        "loop's start (bare) to the server's first / last send; msg/s = (messages - 1) / "
        "(last - first); client CPU: newsbot's (the bare loop: this process's)."
    )
    print()
    print(
        table(
            ["run", "API first delivery <= 1 s", "API / breaking msg/s", "exactly once", "verdict"],
            [
                [
                    f"{kind} #{number}",
                    f"{seconds(one[API]['to_first_delivery_s'], 3)} s "
                    f"{verdict(one['checks']['api_first_delivery_within_1s'])}",
                    f"{seconds(one['api_over_breaking_rate'], 3)} "
                    f"{verdict(one['checks']['api_rate_within_10pct_of_breaking'])}",
                    f"API {verdict(one['checks']['api_exactly_once'])}, /breaking "
                    f"{verdict(one['checks']['breaking_exactly_once'])}",
                    one["verdict"],
                ]
                for kind, runs in results["runs"].items()
                for number, one in enumerate(runs, 1)
            ],
        )
    )
    for kind, runs in results["runs"].items():
        for number, one in enumerate(runs, 1):
            busy = ", ".join(
                f"{label} {part['machine']['busy_fraction_of_all_cores']:.0%}"
                for label, part in _parts(one)
            )
            log = one["bot"]["log"]
            print(f"{kind} #{number}: machine busy: {busy}; newsbot log {log['by_level']}")
    failed = [
        f"{kind} #{number}: {', '.join(name for name, ok in one['checks'].items() if not ok)}"
        for kind, runs in results["runs"].items()
        for number, one in enumerate(runs, 1)
        if one["verdict"] == "FAIL"
    ]
    for line in failed:
        print(f"FAIL: {line}")
    if not failed:
        print("\nAll targets met.")
    print(f"Wrote {args.out}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.api_push", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--runs", type=int, default=1, help="runs per database")
    parser.add_argument(
        "--bare-rate",
        type=float,
        nargs="+",
        default=[30.0, 29.0],
        help="the bare loop's pacing, messages/s: one loop per rate (default: Telegram's 30, "
        "and 29, about what newsbot's limiter paces at)",
    )
    parser.add_argument(
        "--private-burst",
        type=int,
        default=3,
        help="the fake's burst per private chat (newsbot's default PRIVATE_CHAT burst is 3)",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="an admin connection")
    parser.add_argument(
        "--timeout", type=float, help="seconds a push may take to end (default 60 + readers/15)"
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the bot's logs here")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.readers < 1 or args.runs < 1 or min(args.bare_rate) <= 0:
        parser.error("--readers and --runs must be at least 1, --bare-rate above 0")
    if args.timeout is None:
        args.timeout = 60 + args.readers / 15
    return args


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
