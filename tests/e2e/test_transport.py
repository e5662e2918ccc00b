"""The product's transport (`bot.transport.http.LeanRequest`, aiohttp and orjson) under PTB,
over real loopback HTTP: the same Bot API results and errors as PTB's own httpx transport, each
failure sorted by whether Telegram may have received the request
(`bot.transport.sender.reach_of`)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

from bot.transport.http import ANNOUNCE, LeanRequest, SendWithdrawn
from bot.transport.ratelimit import retry_after_seconds
from bot.transport.sender import Reach, reach_of
from fakebotapi.emulator import NetworkFaults, too_many_requests
from fakebotapi.server import FakeBotApiServer

USER = 2001


@pytest_asyncio.fixture
async def lean_bot(fake_api: FakeBotApiServer) -> AsyncIterator[Bot]:
    """PTB on the product's transport, giving up on an answer after 0.3 s."""
    fake_api.emulator.add_user(USER, "Ada", started=True)
    request = LeanRequest(read_timeout=0.3, pool_timeout=1.0)
    async with Bot(fake_api.emulator.token, base_url=fake_api.base_url, request=request) as bot:
        yield bot


async def test_messages_and_buttons_arrive_as_sent(
    lean_bot: Bot, fake_api: FakeBotApiServer
) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Next ▶", callback_data="p:2")]])
    sent = await lean_bot.send_message(
        USER, "<b>Storm</b> &amp; «rain»", parse_mode="HTML", reply_markup=markup
    )

    shown = fake_api.emulator.last_message(USER)
    assert shown is not None
    assert (sent.message_id, sent.text) == (shown.message_id, "Storm & «rain»")
    assert shown.text == "Storm & «rain»"
    assert sent.reply_markup == markup  # PTB parsed the answer as it does from httpx


async def test_telegrams_refusals_keep_ptbs_errors(
    lean_bot: Bot, fake_api: FakeBotApiServer
) -> None:
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await lean_bot.send_message(424242, "nobody")
    fake_api.emulator.fail_next("sendMessage", error=too_many_requests(7))
    with pytest.raises(RetryAfter) as caught:
        await lean_bot.send_message(USER, "later")
    assert retry_after_seconds(caught.value) == 7


async def test_a_bad_gateway_certainly_did_not_arrive(
    lean_bot: Bot, fake_api: FakeBotApiServer
) -> None:
    fake_api.emulator.set_faults(NetworkFaults(bad_gateway_rate=1.0))
    with pytest.raises(NetworkError, match="Bad Gateway") as caught:
        await lean_bot.send_message(USER, "never stored")
    assert reach_of(caught.value) is Reach.NOT_SENT
    assert fake_api.emulator.messages(USER) == []


@pytest.mark.parametrize("mode", ["drop", "hang"])
async def test_a_lost_answer_may_have_arrived(
    lean_bot: Bot, fake_api: FakeBotApiServer, mode: str
) -> None:
    emu = fake_api.emulator
    emu.withhold_next("sendMessage", USER, mode=mode)  # type: ignore[arg-type]
    with pytest.raises(NetworkError) as caught:
        await lean_bot.send_message(USER, "Top story")
    assert isinstance(caught.value, TimedOut) is (mode == "hang")
    assert reach_of(caught.value) is Reach.MAYBE_SENT  # and it did arrive:
    assert [m.text for m in emu.messages(USER)] == ["Top story"]
    assert (await lean_bot.send_message(USER, "answered again")).text == "answered again"


async def test_no_server_certainly_did_not_arrive() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    request = LeanRequest(connect_timeout=1.0)
    await request.initialize()
    try:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot1:x/getMe")
    finally:
        await request.shutdown()
    assert reach_of(caught.value) is Reach.NOT_SENT


async def test_waiting_for_a_connection_too_long_certainly_did_not_arrive(
    fake_api: FakeBotApiServer,
) -> None:
    emu = fake_api.emulator
    emu.add_user(USER, "Ada", started=True)
    emu.set_faults(NetworkFaults(unanswered_rate=1.0, unanswered_mode="hang"))
    request = LeanRequest(connections=1, read_timeout=2.0, pool_timeout=0.2)
    async with Bot(emu.token, base_url=fake_api.base_url, request=request) as bot:
        holding = asyncio.create_task(bot.send_message(USER, "held"))
        await emu.wait_for(lambda: emu.unanswered, timeout=5)
        with pytest.raises(TimedOut, match="Pool timeout") as caught:
            await bot.send_message(USER, "waits for the only connection")
        assert reach_of(caught.value) is Reach.NOT_SENT
        with pytest.raises(TimedOut):
            await holding
    assert [m.text for m in emu.messages(USER)] == ["held"]


async def test_a_withdrawn_send_never_leaves(lean_bot: Bot, fake_api: FakeBotApiServer) -> None:
    asked: list[str] = []

    async def refuse() -> bool:
        asked.append("asked")
        return False

    token = ANNOUNCE.set(refuse)
    try:
        with pytest.raises(SendWithdrawn):
            await lean_bot.send_message(USER, "not any more")
    finally:
        ANNOUNCE.reset(token)
    assert asked == ["asked"]
    assert fake_api.emulator.messages(USER) == []


async def test_files_go_as_multipart_forms() -> None:
    """Uploads take PTB's multipart form; everything else is one JSON body."""
    seen: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        entry: dict[str, Any] = {"type": request.content_type}
        if request.content_type == "multipart/form-data":
            form = await request.post()
            upload = form["document"]
            assert isinstance(upload, web.FileField)
            entry |= {"caption": form["caption"], "file": upload.file.read()}
        else:
            entry |= await request.json()
        seen.append(entry)
        message = {"message_id": 1, "date": 0, "chat": {"id": USER, "type": "private"}}
        return web.json_response({"ok": True, "result": message})

    app = web.Application()
    app.router.add_post("/bot1:x/{method}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    request = LeanRequest()
    bot = Bot("1:x", base_url=f"http://127.0.0.1:{port}/bot", request=request)
    await request.initialize()
    try:
        await bot.send_document(USER, InputFile(b"%PDF-1.4 report", filename="r.pdf"), caption="€")
        await bot.send_message(USER, "plain", disable_notification=True)
    finally:
        await request.shutdown()
        await runner.cleanup()
    assert seen[0] == {"type": "multipart/form-data", "caption": "€", "file": b"%PDF-1.4 report"}
    assert seen[1] == {
        "type": "application/json",
        "chat_id": USER,
        "text": "plain",
        "disable_notification": True,
    }
