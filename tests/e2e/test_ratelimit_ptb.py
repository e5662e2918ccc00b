"""PriorityRateLimiter plugged into a real PTB Application, with a fake Bot API behind it.

The fake is a ``BaseRequest``: PTB builds real requests and parses the canned JSON answers,
so ``rate_limit_args``, ``allow_paid_broadcast`` and 429 answers take PTB's own paths. Nothing
goes over a socket, so the tests run on virtual time (``looptime``), with exact send times.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from telegram.error import RetryAfter
from telegram.ext import Application, ApplicationBuilder
from telegram.request import BaseRequest, RequestData

from bot.transport.ratelimit import Priority, PriorityRateLimiter

pytestmark = pytest.mark.looptime

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "Newsbot", "username": "news_test_bot"}
_chat_ids = itertools.count(20_000)


def now() -> float:
    """The test's virtual time: seconds since its event loop started."""
    return asyncio.get_running_loop().time()


def make_limiter(**limits: Any) -> PriorityRateLimiter:
    return PriorityRateLimiter(clock=now, **limits)


class FakeBotAPI(BaseRequest):
    """Answers Bot API calls from memory; can answer a chat with 429 first."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any], float]] = []
        self.flood: dict[int, list[int]] = {}  # chat id -> retry_after seconds, in turn

    @property
    def read_timeout(self) -> float | None:
        return 1.0

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        endpoint = url.rsplit("/", 1)[-1]
        params = request_data.json_parameters if request_data else {}
        self.requests.append((endpoint, params, now()))
        if endpoint == "getMe":
            return self._ok(BOT_USER)
        if endpoint == "answerCallbackQuery":
            return self._ok(True)
        chat_id = int(params["chat_id"])
        waits = self.flood.get(chat_id)
        if waits:
            wait = waits.pop(0)
            return 429, json.dumps(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {wait}",
                    "parameters": {"retry_after": wait},
                }
            ).encode()
        message = {
            "message_id": len(self.requests),
            "date": 1_700_000_000,
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
            "text": params.get("text", ""),
        }
        return self._ok(message)

    @staticmethod
    def _ok(result: object) -> tuple[int, bytes]:
        return 200, json.dumps({"ok": True, "result": result}).encode()

    def sent(self, endpoint: str = "sendMessage") -> list[dict[str, Any]]:
        return [params for name, params, _ in self.requests if name == endpoint]


@pytest.fixture
def api() -> FakeBotAPI:
    return FakeBotAPI()


@asynccontextmanager
async def running_app(
    api: FakeBotAPI, limiter: PriorityRateLimiter
) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    app = (
        ApplicationBuilder()
        .token("123456:TEST-TOKEN")
        .request(api)
        .get_updates_request(FakeBotAPI())
        .rate_limiter(limiter)
        .updater(None)
        .build()
    )
    async with app:
        yield app


async def test_bulk_send_passes_through_the_limiter_with_paid_broadcast(api: FakeBotAPI) -> None:
    limiter = make_limiter(paid_broadcast=True)
    chat = next(_chat_ids)
    async with running_app(api, limiter) as app:
        bulk = await app.bot.send_message(chat, "digest", rate_limit_args=Priority.BULK)
        reply = await app.bot.send_message(chat, "reply")

    assert (bulk.chat.id, bulk.text, reply.text) == (chat, "digest", "reply")
    assert [p.get("allow_paid_broadcast") for p in api.sent()] == ["true", None]
    assert limiter.stats.sent_by_priority[Priority.BULK] == 1
    assert limiter.stats.sent_by_priority[Priority.INTERACTIVE] == 2  # getMe at start, the reply
    assert limiter.stats.paid_broadcast_sent == 1


async def test_interactive_reply_overtakes_a_queued_broadcast(api: FakeBotAPI) -> None:
    limiter = make_limiter(overall_per_sec=4)
    async with running_app(api, limiter) as app:
        broadcast = [
            asyncio.create_task(
                app.bot.send_message(next(_chat_ids), f"bulk{i}", rate_limit_args=Priority.BULK)
            )
            for i in range(10)
        ]
        await asyncio.sleep(0)
        await app.bot.answer_callback_query("cbq-1")
        await app.bot.send_message(next(_chat_ids), "reply")
        await asyncio.gather(*broadcast)

    # bulk0 took the first bot-wide slot before the reply was made; the reply takes the next
    # one, ahead of the other nine, and the callback answer waits for no slot at all.
    sent = [(name, params.get("text"), at) for name, params, at in api.requests]
    assert sent == [
        ("getMe", None, 0.0),
        ("sendMessage", "bulk0", 0.0),
        ("answerCallbackQuery", None, 0.0),
        ("sendMessage", "reply", 0.25),
        *(("sendMessage", f"bulk{i}", 0.25 * (i + 1)) for i in range(1, 10)),
    ]


async def test_a_429_from_the_bot_api_pauses_that_chat_and_is_retried(api: FakeBotAPI) -> None:
    limiter = make_limiter(private_per_sec=0)
    flooded, other = next(_chat_ids), next(_chat_ids)
    api.flood[flooded] = [1]
    async with running_app(api, limiter) as app:
        pending = asyncio.create_task(app.bot.send_message(flooded, "a"))
        await asyncio.sleep(0.05)
        await app.bot.send_message(other, "b")
        message = await pending

    assert message.chat.id == flooded
    times: dict[str, list[float]] = defaultdict(list)
    for name, params, at in api.requests:
        if name == "sendMessage":
            times[params["text"]].append(at)
    # a is refused at 0 s and retried when its chat's 1 s pause ends; b went meanwhile.
    assert times == {"a": [0.0, 1.0], "b": [0.05]}
    assert limiter.stats.retry_after_count == 1


async def test_a_long_429_reaches_the_caller(api: FakeBotAPI) -> None:
    limiter = make_limiter(max_retry_after=60)
    chat = next(_chat_ids)
    api.flood[chat] = [3600]
    async with running_app(api, limiter) as app:
        with pytest.raises(RetryAfter, match="3600"):
            await app.bot.send_message(chat, "x", rate_limit_args=Priority.BULK)

    assert len(api.sent()) == 1
    assert limiter.stats.retry_after_raised == 1
