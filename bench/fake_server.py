"""The fake Bot API in a process of its own, so its CPU time does not slow the measured client.

    python -m bench.fake_server --first-user 1000001 --users 10000 [--limits [--private-burst 3]]
        [--bad-gateway-rate P] [--unanswered-rate Q] [--unanswered-mode drop|hang] [--seed N]
        [--webhook-route https://bot.example=http://127.0.0.1:8080 ...]

starts `FakeBotApiServer` (fakebotapi) around a `BotApiEmulator` that knows every subscriber as
a user who pressed Start, prints one JSON line (`base_url`, `token`, `stats_url`, `control_url`)
and serves until its stdin closes. The control server answers:

- GET /stats?since=N: per-chat counts and first/last times of the sendMessage calls logged from
  index N on (`first_by_chat`: each chat's first), the chats among them whose answer the network
  lost (`unanswered`), and totals so far: 429s, 502s (`bad_gateway`), getUpdates conflicts,
  webhook deliveries, pending updates, and the server's own CPU time (to show when it, not the
  client, is the bottleneck).
- POST /users/send {"users": [ids], "text": "/start", "spread": seconds}: those users send the
  text, spread evenly over `spread` seconds; answers each user's send time once all are sent.
- POST /users/press {"user": id, "button": "Send", "within": seconds}: waits up to `within`
  seconds for the bot's latest message in that user's private chat to show an inline button
  labelled `button`, then the user presses it (a callback_query update); answers the button's
  callback data, the message id and the press time.
- POST /webhook/route {"public": prefix, "local": base}: adds a webhook route after start.

Times are `time.monotonic()`, which on Linux is one clock for every process, so the client can
compare them with its own. `ServerProcess` is the client's handle: start it, read stats, stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from fakebotapi.emulator import BotApiEmulator, NetworkFaults, RateLimits, WithholdMode
from fakebotapi.server import FakeBotApiServer

HOST = "127.0.0.1"

_Handler = Callable[[web.Request], Awaitable[web.Response]]


def _stats_handler(api: FakeBotApiServer) -> _Handler:
    emulator = api.emulator

    async def stats(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        log = emulator.sent_log
        usage = resource.getrusage(resource.RUSAGE_SELF)
        sends = [record for record in log[since:] if record.method == "sendMessage"]
        first_by_chat: dict[int, float] = {}
        for record in sends:
            first_by_chat.setdefault(record.chat_id, record.time)
        deliveries = api.webhook_deliveries
        delivered = sum(1 for delivery in deliveries if delivery.ok)
        payload = {
            "log_len": len(log),
            "sent": {str(chat): n for chat, n in Counter(r.chat_id for r in sends).items()},
            "first": sends[0].time if sends else None,
            "last": sends[-1].time if sends else None,
            "first_by_chat": {str(chat): t for chat, t in first_by_chat.items()},
            "unanswered": [r.chat_id for r in sends if not r.answered],
            "too_many_requests": emulator.too_many_requests,
            "bad_gateway": emulator.bad_gateways,
            "conflicts": emulator.conflicts,
            "webhook_delivered": delivered,
            "webhook_failed": len(deliveries) - delivered,
            "pending_updates": sum(1 for _ in emulator.updates_for_delivery()),
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
        }
        return web.json_response(payload)

    return stats


def _users_send_handler(emulator: BotApiEmulator) -> _Handler:
    async def users_send(request: web.Request) -> web.Response:
        body = await request.json()
        users = [int(user) for user in body.get("users", [])]
        text = str(body.get("text", "/start"))
        spread = float(body.get("spread", 0.0))
        unknown = [user for user in users if not emulator.has_user(user)]
        if unknown:
            raise web.HTTPBadRequest(text=f"unknown users: {unknown[:10]}")
        started = time.monotonic()
        step = spread / len(users) if users else 0.0
        sent: dict[str, float] = {}
        failed: dict[str, str] = {}
        for index, user in enumerate(users):
            delay = started + index * step - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                emulator.user_sends(user, text)
            except ValueError as error:  # e.g. a deactivated user
                failed[str(user)] = str(error)
                continue
            sent[str(user)] = time.monotonic()
        return web.json_response({"sent": sent, "failed": failed})

    return users_send


def _users_press_handler(emulator: BotApiEmulator) -> _Handler:
    async def users_press(request: web.Request) -> web.Response:
        body = await request.json()
        user = int(body["user"])
        label = str(body.get("button", ""))
        within = float(body.get("within", 0.0))
        if not emulator.has_user(user):
            raise web.HTTPBadRequest(text=f"unknown user: {user}")

        def button() -> tuple[int, str] | None:
            message = emulator.last_message(user)
            if message is None:
                return None
            for shown in message.buttons:
                if shown.get("text") == label and "callback_data" in shown:
                    return message.message_id, str(shown["callback_data"])
            return None

        try:
            message_id, data = await emulator.wait_for(button, timeout=max(within, 0.001))
        except TimeoutError as error:
            raise web.HTTPNotFound(text=f"no button {label!r} for user {user}: {error}") from None
        query_id = emulator.press_button(user, message_id, data)
        pressed_at = time.monotonic()
        return web.json_response(
            {"query_id": query_id, "message_id": message_id, "data": data, "pressed_at": pressed_at}
        )

    return users_press


def _route_handler(api: FakeBotApiServer) -> _Handler:
    async def route(request: web.Request) -> web.Response:
        body = await request.json()
        try:
            api.route_webhook(str(body["public"]), str(body["local"]))
        except (KeyError, ValueError) as error:
            raise web.HTTPBadRequest(text=str(error)) from None
        return web.json_response({"routes": api.webhook_routes})

    return route


async def serve(
    *,
    first_user: int,
    users: int,
    limits: RateLimits | None,
    faults: NetworkFaults | None = None,
    webhook_routes: Mapping[str, str] | None = None,
) -> None:
    """Run the fake Bot API and its control endpoints until stdin reaches end of file."""
    emulator = BotApiEmulator(limits=limits, faults=faults)
    for user_id in range(first_user, first_user + users):
        emulator.add_user(user_id, f"Reader {user_id}", started=True)
    api = FakeBotApiServer(emulator, host=HOST, webhook_routes=webhook_routes)
    await api.start()
    control = web.Application()
    control.router.add_get("/stats", _stats_handler(api))
    control.router.add_post("/users/send", _users_send_handler(emulator))
    control.router.add_post("/users/press", _users_press_handler(emulator))
    control.router.add_post("/webhook/route", _route_handler(api))
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0).start()
    control_url = f"http://{HOST}:{int(runner.addresses[0][1])}"
    ready = {
        "base_url": api.base_url,
        "token": emulator.token,
        "stats_url": f"{control_url}/stats",
        "control_url": control_url,
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
    first_by_chat: dict[int, float] = field(default_factory=dict)  # chat -> its first send
    unanswered: tuple[int, ...] = ()  # chats of sends carried out whose answer was lost
    bad_gateway: int = 0  # 502s so far
    conflicts: int = 0  # getUpdates 409 "terminated by other getUpdates request" so far
    webhook_delivered: int = 0  # webhook deliveries answered 2xx so far
    webhook_failed: int = 0  # webhook delivery attempts that failed so far
    pending_updates: int = 0  # updates the bot has not received (or confirmed) yet

    @property
    def messages(self) -> int:
        return sum(self.sent.values())


@dataclass(frozen=True)
class Pressed:
    """A button a fake user pressed: its callback data, and when (the server's monotonic)."""

    query_id: str
    message_id: int
    data: str
    at: float


class ServerProcess:
    """A running `python -m bench.fake_server`, started and stopped by the benchmark; with
    `lean=True`, `python -m bench.lean_server` (canned answers, optional `latency`) instead."""

    def __init__(
        self,
        *,
        first_user: int,
        users: int,
        limited: bool,
        private_burst: int = 1,
        bad_gateway_rate: float = 0.0,
        unanswered_rate: float = 0.0,
        unanswered_mode: WithholdMode = "drop",
        seed: int = 0,
        webhook_routes: Mapping[str, str] | None = None,
        lean: bool = False,
        latency: float = 0.0,
    ) -> None:
        self._args = ["--first-user", str(first_user), "--users", str(users)]
        self._module = "bench.lean_server" if lean else "bench.fake_server"
        if lean:
            # canned answers only: no limits, faults or webhooks to emulate
            if limited or bad_gateway_rate or unanswered_rate or webhook_routes:
                raise ValueError("the lean server emulates no limits, faults or webhooks")
            self._args += ["--latency", repr(latency)]
            self._init_client()
            return
        if latency:
            raise ValueError("latency needs lean=True")
        if limited:
            self._args.append("--limits")
            if private_burst != 1:
                self._args += ["--private-burst", str(private_burst)]
        elif private_burst != 1:
            raise ValueError("private_burst needs limited=True")
        if bad_gateway_rate:
            self._args += ["--bad-gateway-rate", repr(bad_gateway_rate)]
        if unanswered_rate:
            self._args += ["--unanswered-rate", repr(unanswered_rate)]
        self._args += ["--unanswered-mode", unanswered_mode, "--seed", str(seed)]
        for public, local in (webhook_routes or {}).items():
            self._args += ["--webhook-route", f"{public}={local}"]
        self._init_client()

    def _init_client(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self.base_url = ""
        self.token = ""
        self._stats_url = ""
        self._control_url = ""

    async def __aenter__(self) -> ServerProcess:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self._module,
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
        self._control_url = ready["control_url"]
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
            first_by_chat={int(chat): t for chat, t in raw["first_by_chat"].items()},
            unanswered=tuple(raw["unanswered"]),
            bad_gateway=raw["bad_gateway"],
            conflicts=raw["conflicts"],
            webhook_delivered=raw["webhook_delivered"],
            webhook_failed=raw["webhook_failed"],
            pending_updates=raw["pending_updates"],
        )

    async def users_send(
        self, users: Sequence[int], text: str = "/start", *, spread: float = 0.0
    ) -> dict[int, float]:
        """Makes `users` send `text`, spread evenly over `spread` seconds; each one's send time."""
        payload: dict[str, Any] = {"users": list(users), "text": text, "spread": spread}
        raw = await self._post("/users/send", payload)
        if raw["failed"]:
            raise RuntimeError(f"some users could not send: {raw['failed']}")
        return {int(user): t for user, t in raw["sent"].items()}

    async def users_press(self, user: int, button: str, *, within: float = 10.0) -> Pressed:
        """Once the bot's latest message to `user` shows a button labelled `button` (waiting up
        to `within` s), the user presses it."""
        payload = {"user": user, "button": button, "within": within}
        raw = await self._post("/users/press", payload)
        return Pressed(
            query_id=str(raw["query_id"]),
            message_id=int(raw["message_id"]),
            data=str(raw["data"]),
            at=float(raw["pressed_at"]),
        )

    async def route_webhook(self, public_prefix: str, local_base: str) -> None:
        """Delivers webhooks under `public_prefix` to `local_base` (see FakeBotApiServer)."""
        await self._post("/webhook/route", {"public": public_prefix, "local": local_base})

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        assert self._http is not None
        async with self._http.post(f"{self._control_url}{path}", json=payload) as response:
            if response.status >= 400:
                raise RuntimeError(f"{path}: {response.status} {await response.text()}")
            return await response.json()


def _route(value: str) -> tuple[str, str]:
    public, sep, local = value.partition("=")
    if not sep or not public or not local:
        raise argparse.ArgumentTypeError(f"expected PUBLIC=LOCAL, got {value!r}")
    return public, local


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first-user", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument(
        "--limits",
        action="store_true",
        help="Telegram's flood limits: 30/s overall, 1/s per private chat, 20/min per group",
    )
    parser.add_argument(
        "--private-burst",
        type=int,
        default=1,
        metavar="N",
        help="with --limits: a private chat may send N messages at once (a token bucket)",
    )
    parser.add_argument("--bad-gateway-rate", type=float, default=0.0, metavar="P")
    parser.add_argument("--unanswered-rate", type=float, default=0.0, metavar="Q")
    parser.add_argument("--unanswered-mode", choices=("drop", "hang"), default="drop")
    parser.add_argument("--seed", type=int, default=0, metavar="N")
    parser.add_argument(
        "--webhook-route",
        type=_route,
        action="append",
        default=[],
        metavar="PUBLIC=LOCAL",
        help="deliver webhooks set under the public URL prefix to the local base URL",
    )
    args = parser.parse_args()
    if args.private_burst != 1 and not args.limits:
        parser.error("--private-burst needs --limits")
    limits = RateLimits(
        overall_per_sec=30,
        private_per_sec=1,
        group_per_min=20,
        burst=0,
        private_burst=args.private_burst,
    )
    try:
        faults = NetworkFaults(
            bad_gateway_rate=args.bad_gateway_rate,
            unanswered_rate=args.unanswered_rate,
            unanswered_mode=args.unanswered_mode,
            seed=args.seed,
        )
    except ValueError as error:
        parser.error(str(error))
    asyncio.run(
        serve(
            first_user=args.first_user,
            users=args.users,
            limits=limits if args.limits else None,
            faults=faults,
            webhook_routes=dict(args.webhook_route),
        )
    )


if __name__ == "__main__":
    main()
