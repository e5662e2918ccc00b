"""The real python-telegram-bot against the emulator: over loopback HTTP and in-process.

Each outcome test runs twice, once through FakeBotApiServer (real HTTP, PTB's httpx transport)
and once through EmulatorRequest (no sockets), and must see exactly the same thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import pytest
import pytest_asyncio
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)
from telegram.request import HTTPXRequest

from fakebotapi.emulator import (
    ApiError,
    BotApiEmulator,
    NetworkFaults,
    Unanswered,
    too_many_requests,
)
from fakebotapi.request import EmulatorRequest
from fakebotapi.server import FakeBotApiServer

USER = 2001
GROUP = -5001
SUPERGROUP = -1005001000000


@dataclass
class Transport:
    """How PTB reaches the emulator: `configure` fills in an ApplicationBuilder."""

    name: str
    emulator: BotApiEmulator
    base_url: str | None

    def bot(self) -> Bot:
        if self.base_url is not None:
            return Bot(self.emulator.token, base_url=self.base_url)
        return Bot(
            self.emulator.token,
            request=EmulatorRequest(self.emulator),
            get_updates_request=EmulatorRequest(self.emulator),
        )

    def application(self) -> Application[Any, Any, Any, Any, Any, Any]:
        builder = ApplicationBuilder().token(self.emulator.token)
        if self.base_url is not None:
            builder = builder.base_url(self.base_url)
        else:
            builder = builder.request(EmulatorRequest(self.emulator)).get_updates_request(
                EmulatorRequest(self.emulator)
            )
        return builder.build()


@pytest_asyncio.fixture(params=["http", "local"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    if request.param == "http":
        async with FakeBotApiServer() as server:
            yield Transport("http", server.emulator, server.base_url)
    else:
        yield Transport("local", BotApiEmulator(), None)


@pytest_asyncio.fixture
async def bot(transport: Transport) -> AsyncIterator[Bot]:
    transport.emulator.add_user(USER, "Ada", "ada", started=True)
    async with transport.bot() as bot:
        yield bot


@contextlib.asynccontextmanager
async def polling(app: Application[Any, Any, Any, Any, Any, Any]) -> AsyncIterator[None]:
    """The Application running and polling, as in production; stopped however the test ends."""
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0)
        try:
            yield
        finally:
            await app.updater.stop()
            await app.stop()


# --- Bot calls and Telegram's refusals as PTB exceptions ----------------------------------------


async def test_send_message(bot: Bot, transport: Transport) -> None:
    message = await bot.send_message(USER, "<b>Top story</b> &amp; more", parse_mode="HTML")
    assert message.text == "Top story & more"
    assert message.chat.id == USER
    assert message.from_user is not None
    assert message.from_user.is_bot
    shown = transport.emulator.last_message(USER)
    assert shown is not None
    assert shown.text == "Top story & more"
    assert shown.raw_text == "<b>Top story</b> &amp; more"


async def test_keyboard_round_trips_through_ptb(bot: Bot, transport: Transport) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Next ▶", callback_data="page:2")]])
    message = await bot.send_message(USER, "Page 1", reply_markup=markup)
    assert message.reply_markup == markup
    shown = transport.emulator.last_message(USER)
    assert shown is not None
    assert shown.callback_data == ["page:2"]


async def test_broken_html_raises_bad_request(bot: Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(USER, "Fish & chips<br>", parse_mode="HTML")


async def test_oversized_callback_data_raises_bad_request(bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="é" * 33)]])
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.send_message(USER, "menu", reply_markup=markup)


async def test_blocked_user_raises_forbidden(bot: Bot, transport: Transport) -> None:
    transport.emulator.block(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "hi")


async def test_429_raises_retry_after(bot: Bot, transport: Transport) -> None:
    transport.emulator.fail_next("sendMessage", USER, error=too_many_requests(3))
    with pytest.raises(RetryAfter, match="Retry in 3 seconds"):
        await bot.send_message(USER, "hi")
    assert transport.emulator.too_many_requests == 1
    await bot.send_message(USER, "hi")


async def test_server_error_raises_network_error(bot: Bot, transport: Transport) -> None:
    from telegram.error import NetworkError

    transport.emulator.fail_next(error=ApiError(500, "Internal Server Error"))
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(USER, "hi")


async def test_migrated_group_raises_chat_migrated(bot: Bot, transport: Transport) -> None:
    transport.emulator.add_group(GROUP, "Readers", admins=[USER])
    transport.emulator.migrate_group(GROUP, SUPERGROUP)
    with pytest.raises(ChatMigrated) as caught:
        await bot.send_message(GROUP, "hi")
    assert caught.value.new_chat_id == SUPERGROUP


async def test_not_modified_edit_raises_bad_request(bot: Bot) -> None:
    message = await bot.send_message(USER, "Page 1")
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("Page 1", chat_id=USER, message_id=message.message_id)


async def test_chat_member_and_commands(bot: Bot, transport: Transport) -> None:
    transport.emulator.add_group(GROUP, "Readers", admins=[USER])
    member = await bot.get_chat_member(GROUP, USER)
    assert member.status == "creator"
    [admin] = await bot.get_chat_administrators(GROUP)
    assert admin.user.id == USER
    chat = await bot.get_chat(GROUP)
    assert chat.title == "Readers"
    await bot.set_my_commands([("start", "Subscribe"), ("digest", "Today's digest")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "digest"]


# --- a running Application ---------------------------------------------------------------------


async def test_start_command_reaches_its_handler(transport: Transport) -> None:
    emu = transport.emulator
    emu.add_user(USER, "Ada")

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_html("<b>Welcome</b>, choose sections")

    app = transport.application()
    app.add_handler(CommandHandler("start", start))
    async with polling(app):
        emu.user_sends(USER, "/start")
        reply = await emu.wait_for(lambda: emu.last_message(USER), timeout=5)
    assert reply.text == "Welcome, choose sections"
    assert emu.pending_updates == []


async def test_group_command_is_answered_as_a_reply(transport: Transport) -> None:
    emu = transport.emulator
    emu.add_group(GROUP, "Readers", admins=[USER])

    async def digest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Today's digest", do_quote=True)

    app = transport.application()
    app.add_handler(CommandHandler("digest", digest))
    async with polling(app):
        emu.user_sends(USER, "chatter the bot never sees", chat_id=GROUP)
        asked = emu.user_sends(USER, f"/digest@{emu.bot_username}", chat_id=GROUP)
        reply = await emu.wait_for(lambda: emu.last_message(GROUP), timeout=5)
    assert reply.text == "Today's digest"
    assert reply.reply_to_message_id == asked["message_id"]


async def test_button_press_reaches_its_handler_and_is_answered(transport: Transport) -> None:
    emu = transport.emulator
    emu.add_user(USER, "Ada", started=True)

    async def on_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Page 2")
        await query.edit_message_text("Page 2")

    app = transport.application()
    app.add_handler(CallbackQueryHandler(on_page, pattern="^page:"))
    async with polling(app):
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Next", callback_data="page:2")]])
        sent = await app.bot.send_message(USER, "Page 1", reply_markup=markup)
        query_id = emu.press_button(USER, sent.message_id, "page:2")
        await emu.wait_for(lambda: emu.message(USER, sent.message_id).edit_count == 1, timeout=5)
    assert emu.is_answered(query_id)
    assert emu.callback_answers[query_id]["text"] == "Page 2"
    assert emu.message(USER, sent.message_id).text == "Page 2"


async def test_local_request_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("EmulatorRequest must not open a connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", no_network)
    transport = Transport("local", BotApiEmulator(), None)
    emu = transport.emulator
    emu.add_user(USER, "Ada")

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome")

    app = transport.application()
    app.add_handler(CommandHandler("start", start))
    async with polling(app):
        emu.user_sends(USER, "/start")
        reply = await emu.wait_for(lambda: emu.last_message(USER), timeout=5)
    assert reply.text == "Welcome"
    emu.block(USER)
    async with transport.bot() as bot:
        with pytest.raises(Forbidden):
            await bot.send_message(USER, "hi")


# --- the HTTP contract of the fake server --------------------------------------------------------


async def post(
    server: FakeBotApiServer, method: str, token: str | None = None, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    url = f"{server.base_url}{token or server.emulator.token}/{method}"
    async with aiohttp.ClientSession() as session, session.post(url, **kwargs) as response:
        return response.status, await response.json()


async def test_http_accepts_json_form_and_multipart(fake_api: FakeBotApiServer) -> None:
    fake_api.emulator.add_user(USER, "Ada", started=True)
    markup = '{"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}'
    status, body = await post(fake_api, "sendMessage", json={"chat_id": USER, "text": "json"})
    assert (status, body["ok"], body["result"]["text"]) == (200, True, "json")
    status, body = await post(
        fake_api, "sendMessage", data={"chat_id": str(USER), "text": "form", "reply_markup": markup}
    )
    assert (status, body["result"]["reply_markup"]["inline_keyboard"][0][0]["text"]) == (200, "Go")
    form = aiohttp.FormData()
    form.add_field("chat_id", str(USER))
    form.add_field("text", "multipart")
    form.add_field("document", b"bytes", filename="a.txt")
    status, body = await post(fake_api, "sendMessage", data=form)
    assert (status, body["result"]["text"]) == (200, "multipart")


async def test_http_errors_have_telegrams_shape(fake_api: FakeBotApiServer) -> None:
    assert await post(fake_api, "sendMessage", json={"chat_id": 1, "text": "x"}) == (
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
    )
    fake_api.emulator.fail_next(error=too_many_requests(5))
    status, body = await post(fake_api, "getMe")
    assert (status, body["parameters"]) == (429, {"retry_after": 5})
    assert (await post(fake_api, "noSuchMethod"))[0] == 404
    assert await post(fake_api, "getMe", token="1:wrong") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )


async def test_wrong_token_raises_invalid_token(fake_api: FakeBotApiServer) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("1:wrong", base_url=fake_api.base_url):
            pass


async def test_stop_releases_a_waiting_long_poll(fake_api: FakeBotApiServer) -> None:
    url = f"{fake_api.base_url}{fake_api.emulator.token}/getUpdates"

    async def long_poll() -> None:
        async with aiohttp.ClientSession() as session, session.post(url, json={"timeout": 30}) as r:
            assert (r.status, await r.json()) == (200, {"ok": True, "result": []})

    task = asyncio.create_task(long_poll())
    await fake_api.emulator.wait_for(lambda: fake_api.emulator.calls, timeout=2)
    await asyncio.wait_for(fake_api.stop(), timeout=5)
    await asyncio.wait_for(task, timeout=5)


# --- a lossy network between the bot and Telegram ------------------------------------------------


@pytest_asyncio.fixture
async def http_bot(fake_api: FakeBotApiServer) -> AsyncIterator[Bot]:
    """PTB over real loopback HTTP, giving up on an answer after 0.3 s."""
    fake_api.emulator.add_user(USER, "Ada", started=True)
    request = HTTPXRequest(read_timeout=0.3)
    async with Bot(fake_api.emulator.token, base_url=fake_api.base_url, request=request) as bot:
        yield bot


async def test_bad_gateway_is_502_with_telegrams_body(fake_api: FakeBotApiServer) -> None:
    fake_api.emulator.add_user(USER, "Ada", started=True)
    fake_api.emulator.fail_next("sendMessage", error=ApiError(502, "Bad Gateway"))
    assert await post(fake_api, "sendMessage", json={"chat_id": USER, "text": "x"}) == (
        502,
        {"ok": False, "error_code": 502, "description": "Bad Gateway"},
    )
    assert fake_api.emulator.bad_gateways == 1
    assert fake_api.emulator.messages(USER) == []


async def test_bad_gateway_is_a_network_error_for_ptb(
    http_bot: Bot, fake_api: FakeBotApiServer
) -> None:
    emu = fake_api.emulator
    emu.set_faults(NetworkFaults(bad_gateway_rate=1.0))
    with pytest.raises(NetworkError, match="Bad Gateway") as caught:
        await http_bot.send_message(USER, "never stored")
    assert not isinstance(caught.value, TimedOut)
    assert (emu.bad_gateways, emu.messages(USER), emu.sent_log) == (1, [], [])


async def test_dropped_answer_is_a_network_error_but_the_message_arrived(
    http_bot: Bot, fake_api: FakeBotApiServer
) -> None:
    emu = fake_api.emulator
    emu.withhold_next("sendMessage", USER, mode="drop")
    with pytest.raises(NetworkError) as caught:
        await http_bot.send_message(USER, "Top story")
    assert not isinstance(caught.value, TimedOut)
    assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError | httpx.ReadError)
    shown = emu.last_message(USER)
    assert shown is not None and shown.text == "Top story"
    assert emu.unanswered == [Unanswered(USER, shown.message_id)]
    assert [record.answered for record in emu.sent_log] == [False]
    assert (await http_bot.send_message(USER, "answered again")).text == "answered again"


async def test_hanging_answer_times_out_but_the_message_arrived(
    http_bot: Bot, fake_api: FakeBotApiServer
) -> None:
    emu = fake_api.emulator
    emu.withhold_next("sendMessage", USER, mode="hang")
    with pytest.raises(TimedOut) as caught:
        await http_bot.send_message(USER, "Top story")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    shown = emu.last_message(USER)
    assert shown is not None and shown.text == "Top story"
    assert emu.unanswered == [Unanswered(USER, shown.message_id)]
    assert (await http_bot.send_message(USER, "answered again")).text == "answered again"


async def test_stop_ends_a_hanging_request(fake_api: FakeBotApiServer) -> None:
    emu = fake_api.emulator
    emu.add_user(USER, "Ada", started=True)
    emu.set_faults(NetworkFaults(unanswered_rate=1.0, unanswered_mode="hang"))
    request = HTTPXRequest(read_timeout=30)
    async with Bot(emu.token, base_url=fake_api.base_url, request=request) as bot:
        sending = asyncio.create_task(bot.send_message(USER, "held"))
        await emu.wait_for(lambda: emu.unanswered, timeout=5)
        await asyncio.wait_for(fake_api.stop(), timeout=10)
        with pytest.raises(NetworkError) as caught:
            await asyncio.wait_for(sending, timeout=10)
    assert not isinstance(caught.value, TimedOut)


async def test_drawn_faults_over_http_match_what_the_client_saw(fake_api: FakeBotApiServer) -> None:
    emu = fake_api.emulator
    emu.add_user(USER, "Ada", started=True)
    emu.set_faults(NetworkFaults(bad_gateway_rate=0.2, unanswered_rate=0.2, seed=11))
    outcomes: list[str] = []
    async with Bot(emu.token, base_url=fake_api.base_url) as bot:
        for n in range(40):
            try:
                await bot.send_message(USER, f"story {n}")
                outcomes.append("ok")
            except NetworkError as error:
                outcomes.append("502" if "Bad Gateway" in str(error) else "lost")
    assert outcomes.count("502") == emu.bad_gateways > 0
    assert outcomes.count("lost") == len(emu.unanswered) > 0
    assert len(emu.messages(USER)) == outcomes.count("ok") + outcomes.count("lost")
