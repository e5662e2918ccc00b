"""The fake Bot API in a process of its own, so its CPU time does not slow the measured client.

    python -m bench.fake_server --first-user 1000001 --users 10000 [--limits]

starts `FakeBotApiServer` (tests/fakes) around a `BotApiEmulator` that knows every subscriber as
a user who pressed Start, prints one JSON line (`base_url`, `token`, `stats_url`) and serves
until its stdin closes. `stats_url` is a second loopback server answering GET /stats?since=N:
per-chat counts and first/last times of the sendMessage calls logged from index N on, and the
number of 429s so far, and the server's own CPU time (to show when it, not the client, is
the bottleneck). Times are `time.monotonic()`, which on Linux is one clock for every
process, so the client can compare them with its own.

`ServerProcess` is the client's handle: start it, read stats, stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

import aiohttp
from aiohttp import web

from bot.emulator import BotApiEmulator, RateLimits
from tests.fakes.fake_bot_api import FakeBotApiServer

HOST = "127.0.0.1"


def _stats_handler(emulator: BotApiEmulator) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def stats(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        log = emulator.sent_log
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sends = [record for record in log[since:] if record.method == "sendMessage"]
        payload = {
            "log_len": len(log),
            "sent": {str(chat): n for chat, n in Counter(r.chat_id for r in sends).items()},
            "first": sends[0].time if sends else None,
            "last": sends[-1].time if sends else None,
            "too_many_requests": emulator.too_many_requests,
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }
        return web.json_response(payload)

    return stats


async def serve(*, first_user: int, users: int, limits: RateLimits | None) -> None:
    """Run the fake Bot API and its stats endpoint until stdin reaches end of file."""
    emulator = BotApiEmulator(limits=limits)
    for user_id in range(first_user, first_user + users):
        emulator.add_user(user_id, f"Reader {user_id}", started=True)
    api = FakeBotApiServer(emulator, host=HOST)
    await api.start()
    control = web.Application()
    control.router.add_get("/stats", _stats_handler(emulator))
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0).start()
    stats_port = int(runner.addresses[0][1])
    ready = {
        "base_url": api.base_url,
        "token": emulator.token,
        "stats_url": f"http://{HOST}:{stats_port}/stats",
    }
    print(json.dumps(ready), flush=True)
    try:
        # The parent holds our stdin: end of file means it is done with us (or died).
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    finally:
        await runner.cleanup()
        await api.stop()


@dataclass(frozen=True)
class Stats:
    """What the server saw since a given point of its send log."""

    log_len: int
    sent: dict[int, int]  # telegram chat id -> sendMessage calls that succeeded
    first: float | None
    last: float | None
    too_many_requests: int
    peak_rss_mb: float
    cpu_seconds: float  # the server process's CPU time so far (user + system)

    @property
    def messages(self) -> int:
        return sum(self.sent.values())


class ServerProcess:
    """A running `python -m bench.fake_server`, started and stopped by the benchmark."""

    def __init__(self, *, first_user: int, users: int, limited: bool) -> None:
        self._args = ["--first-user", str(first_user), "--users", str(users)]
        if limited:
            self._args.append("--limits")
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self.base_url = ""
        self.token = ""
        self._stats_url = ""

    async def __aenter__(self) -> ServerProcess:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.fake_server",
            *self._args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), timeout=60)
        if not line:
            raise RuntimeError("the fake Bot API server exited before it was ready")
        ready = json.loads(line)
        self.base_url, self.token, self._stats_url = (
            ready["base_url"],
            ready["token"],
            ready["stats_url"],
        )
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.close()
        process = self._process
        if process is None:
            return
        assert process.stdin is not None
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), timeout=10)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def stats(self, since: int = 0) -> Stats:
        assert self._http is not None
        async with self._http.get(self._stats_url, params={"since": str(since)}) as response:
            response.raise_for_status()
            raw = await response.json()
        return Stats(
            log_len=raw["log_len"],
            sent={int(chat): n for chat, n in raw["sent"].items()},
            first=raw["first"],
            last=raw["last"],
            too_many_requests=raw["too_many_requests"],
            peak_rss_mb=raw["peak_rss_mb"],
            cpu_seconds=raw["cpu_seconds"],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first-user", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument(
        "--limits",
        action="store_true",
        help="Telegram's flood limits: 30/s overall, 1/s per private chat, 20/min per group",
    )
    args = parser.parse_args()
    limits = RateLimits(overall_per_sec=30, private_per_sec=1, group_per_min=20, burst=0)
    asyncio.run(
        serve(
            first_user=args.first_user,
            users=args.users,
            limits=limits if args.limits else None,
        )
    )


if __name__ == "__main__":
    main()
