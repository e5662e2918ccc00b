"""The fake Bot API delivers webhooks as Telegram does, to a real HTTP endpoint on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from telegram import Bot, Update
from telegram.error import NetworkError
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from bench.fake_server import ServerProcess
from fakebotapi.server import SECRET_HEADER, FakeBotApiServer

USER = 3001
OTHER = 3002
PUBLIC = "https://bot.example"
HOOK = f"{PUBLIC}/tg/hook"
SECRET = "s3cret-token_1"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    update: dict[str, Any]


@dataclass
class Receiver:
    """A bot's webhook endpoint: keeps what arrives and answers with `answers` (then 200).

    While `gate` is clear, requests wait for it, so tests can hold deliveries in flight.
    """

    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    peak: int = 0
    on_update: Callable[[dict[str, Any]], Awaitable[None]] | None = None
    base_url: str = ""
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self.gate.set()

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            body = await request.read()
            update = json.loads(body)
            self.received.append(Received(request.path, dict(request.headers), update))
            async with self.changed:
                self.changed.notify_all()
            await self.gate.wait()
            status = self.answers.pop(0) if self.answers else 200
            if status == 200 and self.on_update is not None:
                await self.on_update(update)
            return web.Response(status=status)
        finally:
            self.in_flight -= 1

    async def wait_for(self, predicate: Callable[[], object]) -> None:
        """Waits (5 s at most) until `predicate()` holds, re-checking as requests arrive."""
        async with asyncio.timeout(5), self.changed:
            await self.changed.wait_for(predicate)

    def update_ids(self) -> list[int]:
        return [r.update["update_id"] for r in self.received]


@contextlib.asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield receiver
    finally:
        receiver.gate.set()
        await runner.cleanup()


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with receiving(Receiver()) as started:
        yield started


@pytest_asyncio.fixture
async def server(receiver: Receiver) -> AsyncIterator[FakeBotApiServer]:
    async with FakeBotApiServer(webhook_routes={PUBLIC: receiver.base_url}) as started:
        started.emulator.add_user(USER, "Ada", started=True)
        started.emulator.add_user(OTHER, "Bob", started=True)
        yield started


@pytest_asyncio.fixture
async def bot(server: FakeBotApiServer) -> AsyncIterator[Bot]:
    async with Bot(server.emulator.token, base_url=server.base_url) as started:
        yield started


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_update_is_posted_with_the_secret_as_get_updates_would_return_it(
    server: FakeBotApiServer, receiver: Receiver, bot: Bot
) -> None:
    emu = server.emulator
    emu.user_sends(USER, "/start")
    expected = emu.pending_updates
    assert await bot.set_webhook(HOOK, secret_token=SECRET)
    await emu.wait_for(lambda: not emu.pending_updates and server.webhook_deliveries)
    [got] = receiver.received
    assert got.path == "/tg/hook"
    assert got.headers[SECRET_HEADER] == SECRET
    assert got.headers["Content-Type"] == "application/json"
    assert [got.update] == expected
    [delivery] = server.webhook_deliveries
    assert (delivery.update_id, delivery.status, delivery.ok) == (
        expected[0]["update_id"],
        200,
        True,
    )
    assert delivery.url == f"{receiver.base_url}/tg/hook"
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.max_connections) == (HOOK, 0, 40)
    assert info.last_error_date is None


async def test_no_secret_header_without_a_secret(
    server: FakeBotApiServer, receiver: Receiver, bot: Bot
) -> None:
    await bot.set_webhook(HOOK)
    server.emulator.user_sends(USER, "hi")
    await server.emulator.wait_for(lambda: server.webhook_deliveries)
    assert SECRET_HEADER not in receiver.received[0].headers


async def test_ptb_application_answers_updates_arriving_by_webhook(
    server: FakeBotApiServer, receiver: Receiver
) -> None:
    emu = server.emulator

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome")

    app = ApplicationBuilder().token(emu.token).base_url(server.base_url).updater(None).build()
    app.add_handler(CommandHandler("start", start))

    async def feed(data: dict[str, Any]) -> None:
        await app.update_queue.put(Update.de_json(data, app.bot))

    receiver.on_update = feed
    async with app:
        await app.start()
        await app.bot.set_webhook(HOOK, secret_token=SECRET, allowed_updates=["message"])
        emu.user_sends(USER, "/start")
        reply = await emu.wait_for(lambda: emu.last_message(USER), timeout=5)
        await app.stop()
    assert reply.text == "Welcome"
    assert receiver.received[0].headers[SECRET_HEADER] == SECRET


async def test_failed_delivery_is_retried_and_reported(
    server: FakeBotApiServer, receiver: Receiver, bot: Bot
) -> None:
    emu = server.emulator
    receiver.answers = [500, 502]
    await bot.set_webhook(HOOK)
    emu.user_sends(USER, "/start")
    await emu.wait_for(lambda: not emu.pending_updates, timeout=10)
    assert [(d.status, d.ok) for d in server.webhook_deliveries] == [
        (500, False),
        (502, False),
        (200, True),
    ]
    assert len(set(receiver.update_ids())) == 1
    first, second, third = (d.time for d in server.webhook_deliveries)
    assert second - first >= 0.09 and third - second >= 0.19  # 0.1 s, then doubled
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 502 Bad Gateway"
    assert info.last_error_date is not None


async def test_unrouted_webhook_keeps_updates_pending_until_routed() -> None:
    async with FakeBotApiServer() as server, receiving(Receiver()) as receiver:
        emu = server.emulator
        emu.add_user(USER, "Ada", started=True)
        async with Bot(emu.token, base_url=server.base_url) as bot:
            await bot.set_webhook(HOOK)
            emu.user_sends(USER, "/start")
            info = await bot.get_webhook_info()
            assert info.pending_update_count == 1
            assert info.last_error_message is not None
            assert "no webhook route" in info.last_error_message
            server.route_webhook(PUBLIC, receiver.base_url)
            await emu.wait_for(lambda: not emu.pending_updates, timeout=5)
    assert receiver.received[0].update["message"]["text"] == "/start"


async def test_refused_connections_are_retried_until_the_bot_listens() -> None:
    nothing_there = f"http://127.0.0.1:{free_port()}"
    async with FakeBotApiServer(webhook_routes={PUBLIC: nothing_there}) as server:
        emu = server.emulator
        emu.add_user(USER, "Ada", started=True)
        await emu.call("setWebhook", {"url": HOOK})
        emu.user_sends(USER, "/start")
        await emu.wait_for(lambda: len(server.webhook_deliveries) >= 2, timeout=5)
        assert {(d.status, d.error) for d in server.webhook_deliveries} == {
            (None, "Connection refused")
        }
        info = await emu.call("getWebhookInfo", {})
        assert (info["last_error_message"], info["pending_update_count"]) == (
            "Connection refused",
            1,
        )
        async with receiving(Receiver()) as receiver:
            server.route_webhook(PUBLIC, receiver.base_url)  # the bot's port, known at last
            await emu.wait_for(lambda: not emu.pending_updates, timeout=5)
    assert len(receiver.received) == 1


async def test_slow_webhook_times_out_and_is_retried(receiver: Receiver) -> None:
    routes = {PUBLIC: receiver.base_url}
    async with FakeBotApiServer(webhook_routes=routes, webhook_timeout=0.2) as server:
        emu = server.emulator
        emu.add_user(USER, "Ada", started=True)
        receiver.gate.clear()
        await emu.call("setWebhook", {"url": HOOK})
        emu.user_sends(USER, "/start")
        await emu.wait_for(lambda: server.webhook_deliveries, timeout=5)
        receiver.gate.set()
        await emu.wait_for(lambda: not emu.pending_updates, timeout=5)
    assert server.webhook_deliveries[0].error == "Read timeout expired"
    assert server.webhook_deliveries[-1].ok


async def test_at_most_max_connections_in_flight(
    server: FakeBotApiServer, receiver: Receiver, bot: Bot
) -> None:
    emu = server.emulator
    readers = range(4001, 4007)
    for reader in readers:
        emu.add_user(reader, f"Reader {reader}", started=True)
    receiver.gate.clear()
    await bot.set_webhook(HOOK, max_connections=2)
    for reader in readers:
        emu.user_sends(reader, "/start")
    await receiver.wait_for(lambda: len(receiver.received) == 2)
    first_two = {u["update_id"] for u in emu.pending_updates[:2]}
    await asyncio.sleep(0.2)  # time enough for a third to arrive, were it sent
    assert receiver.in_flight == 2
    assert set(receiver.update_ids()) == first_two  # the oldest go first
    receiver.gate.set()
    await emu.wait_for(lambda: not emu.pending_updates, timeout=5)
    assert receiver.peak == 2
    assert len(receiver.received) == len(readers)


async def test_updates_of_one_chat_arrive_one_at_a_time_in_order(
    server: FakeBotApiServer, receiver: Receiver, bot: Bot
) -> None:
    emu = server.emulator
    receiver.gate.clear()
    await bot.set_webhook(HOOK)
    for text in ("one", "two", "three"):
        emu.user_sends(USER, text)
    emu.user_sends(OTHER, "other chat")
    await receiver.wait_for(lambda: len(receiver.received) == 2)
    await asyncio.sleep(0.2)  # "two" must not arrive while "one" is unanswered
    assert sorted(r.update["message"]["text"] for r in receiver.received) == ["one", "other chat"]
    receiver.gate.set()
    await emu.wait_for(lambda: not emu.pending_updates, timeout=5)
    texts = [r.update["message"]["text"] for r in receiver.received]
    assert [t for t in texts if t != "other chat"] == ["one", "two", "three"]


async def test_allowed_updates_are_respected(
    server: FakeBotApiServer, receiver: Receiver, bot: Bot
) -> None:
    emu = server.emulator
    menu = await bot.send_message(USER, "menu")
    await bot.set_webhook(HOOK, allowed_updates=["callback_query"])
    emu.user_sends(USER, "not wanted")
    emu.press_button(USER, menu.message_id, "page:2", force=True)
    await emu.wait_for(lambda: not emu.pending_updates and receiver.received, timeout=5)
    assert [list(r.update)[1] for r in receiver.received] == ["callback_query"]
    assert (await bot.get_webhook_info()).allowed_updates == ("callback_query",)


async def test_delete_webhook_stops_deliveries_and_polling_works_again(
    server: FakeBotApiServer, receiver: Receiver, bot: Bot
) -> None:
    emu = server.emulator
    receiver.answers = [500] * 1000
    await bot.set_webhook(HOOK, secret_token=SECRET)
    emu.user_sends(USER, "stuck")
    await emu.wait_for(lambda: server.webhook_deliveries, timeout=5)
    assert await bot.delete_webhook()
    deleted_at = time.monotonic()
    info = await bot.get_webhook_info()
    assert (info.url, info.max_connections, info.last_error_message) == ("", None, None)
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates if u.message] == ["stuck"]
    await asyncio.sleep(0.3)  # more than the backoff: a retry would have started by now
    assert all(d.time < deleted_at for d in server.webhook_deliveries)


async def test_stop_cancels_deliveries_in_flight(receiver: Receiver) -> None:
    server = FakeBotApiServer(webhook_routes={PUBLIC: receiver.base_url})
    await server.start()
    try:
        server.emulator.add_user(USER, "Ada", started=True)
        receiver.gate.clear()
        await server.emulator.call("setWebhook", {"url": HOOK})
        server.emulator.user_sends(USER, "/start")
        await receiver.wait_for(lambda: receiver.received)
    finally:
        await asyncio.wait_for(server.stop(), timeout=10)
    assert server.webhook_deliveries == []
    assert len(server.emulator.pending_updates) == 1


def test_routes_keep_the_path_and_prefer_the_longest_prefix() -> None:
    server = FakeBotApiServer(
        webhook_routes={
            "https://bot.example/": "http://127.0.0.1:8080",
            "https://bot.example/admin": "http://127.0.0.1:9090/base/",
        }
    )
    assert server.webhook_target("https://bot.example") == "http://127.0.0.1:8080"
    assert server.webhook_target("https://bot.example/tg?x=1") == "http://127.0.0.1:8080/tg?x=1"
    assert server.webhook_target("https://bot.example/admin/x") == "http://127.0.0.1:9090/base/x"
    assert server.webhook_target("https://bot.example.com/tg") is None
    assert server.webhook_target("https://other.example/tg") is None
    server.route_webhook("https://bot.example", "http://127.0.0.1:8081")
    assert server.webhook_target("https://bot.example/tg") == "http://127.0.0.1:8081/tg"
    with pytest.raises(ValueError, match="http"):
        server.route_webhook("https://bot.example", "127.0.0.1:8081")


# --- the benchmark's server process --------------------------------------------------------------


async def test_bench_server_process_options_and_controls(receiver: Receiver) -> None:
    first = 5_000_001
    async with ServerProcess(
        first_user=first,
        users=3,
        limited=True,
        private_burst=3,
        unanswered_rate=1.0,
        webhook_routes={"https://unused.example": "http://127.0.0.1:9"},
    ) as server:
        await server.route_webhook(PUBLIC, receiver.base_url)
        async with Bot(server.token, base_url=server.base_url) as bot:
            await bot.set_webhook(HOOK)
            sent_at = await server.users_send([first, first + 1], "/start", spread=0.2)
            assert sorted(sent_at) == [first, first + 1]
            assert sent_at[first] <= sent_at[first + 1]
            for _ in range(3):  # a burst of three is within the private burst
                with pytest.raises(NetworkError, match="(?i)disconnected|closed"):
                    await bot.send_message(first, "part")
        stats = await server.stats()
        for _ in range(100):
            if stats.webhook_delivered == 2:
                break
            await asyncio.sleep(0.05)
            stats = await server.stats()
    assert stats.webhook_delivered == 2
    assert stats.pending_updates == 0
    assert stats.sent == {first: 3}
    assert stats.unanswered == (first, first, first)
    assert stats.too_many_requests == 0
    assert list(stats.first_by_chat) == [first]
    assert stats.first is not None and stats.first_by_chat[first] == stats.first
    assert (stats.bad_gateway, stats.conflicts) == (0, 0)
