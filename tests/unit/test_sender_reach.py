"""Which failed sends may have reached Telegram: the rule that keeps "never twice" on a bad
network. Each error is built the way python-telegram-bot builds it from httpx."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import pytest
from telegram.error import NetworkError, TimedOut

from bot.transport.sender import Reach, TelegramSender, reach_of
from digests.delivery.ports import Outcome, SendPriority


def wrapped(cause: BaseException | None, error: NetworkError) -> NetworkError:
    error.__cause__ = cause
    return error


REQUEST = httpx.Request("POST", "http://127.0.0.1/bot1:x/sendMessage")


@pytest.mark.parametrize(
    ("error", "reach"),
    [
        (wrapped(httpx.ConnectError("refused", request=REQUEST), NetworkError("x")), "not"),
        (wrapped(httpx.ConnectTimeout("slow", request=REQUEST), TimedOut()), "not"),
        (wrapped(httpx.PoolTimeout("busy", request=REQUEST), TimedOut()), "not"),
        (NetworkError("Bad Gateway"), "not"),  # a 5xx answer: PTB raises it with no cause
        (wrapped(httpx.ReadTimeout("no answer", request=REQUEST), TimedOut()), "maybe"),
        (
            wrapped(httpx.RemoteProtocolError("disconnected", request=REQUEST), NetworkError("x")),
            "maybe",
        ),
        (wrapped(httpx.ReadError("reset", request=REQUEST), NetworkError("x")), "maybe"),
        (wrapped(httpx.WriteTimeout("half", request=REQUEST), TimedOut()), "maybe"),
        (wrapped(httpx.WriteError("half", request=REQUEST), NetworkError("x")), "maybe"),
        (wrapped(RuntimeError("unknown"), NetworkError("Unknown error")), "maybe"),
    ],
)
def test_reach_of_each_error_class(error: NetworkError, reach: str) -> None:
    assert reach_of(error) is (Reach.NOT_SENT if reach == "not" else Reach.MAYBE_SENT)


class FlakyBot:
    """A bot whose send_message raises the given errors first, then succeeds."""

    def __init__(self, errors: Sequence[BaseException | None]) -> None:
        self.errors = list(errors)  # None: that call succeeds
        self.calls = 0

    async def send_message(self, chat_id: int, text: str, **_: Any) -> Any:
        self.calls += 1
        error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error

        class Sent:
            message_id = 100 + self.calls

        return Sent()


async def test_a_read_timeout_is_uncertain_and_never_retried() -> None:
    bot = FlakyBot([wrapped(httpx.ReadTimeout("x", request=REQUEST), TimedOut())])
    seen: list[Outcome] = []
    sender = TelegramSender(bot, backoff=0, observe=lambda _p, o: seen.append(o))  # type: ignore[arg-type]
    result = await sender.send(5, ["one", "two"], priority=SendPriority.BREAKING)
    assert result.outcome is Outcome.UNCERTAIN
    assert bot.calls == 1
    assert seen == [Outcome.UNCERTAIN]


async def test_second_part_uncertain_keeps_the_first_part_id() -> None:
    err = wrapped(httpx.RemoteProtocolError("gone", request=REQUEST), NetworkError("x"))
    bot = FlakyBot([None, err])
    sender = TelegramSender(bot, backoff=0)  # type: ignore[arg-type]
    result = await sender.send(5, ["one", "two", "three"], priority=SendPriority.BULK)
    assert result.outcome is Outcome.UNCERTAIN
    assert result.message_ids == (101,)  # part one went out; part three was never tried
    assert bot.calls == 2


async def test_connect_errors_and_5xx_are_retried_until_sent() -> None:
    bot = FlakyBot(
        [
            wrapped(httpx.ConnectError("refused", request=REQUEST), NetworkError("x")),
            NetworkError("Bad Gateway"),
        ]
    )
    sender = TelegramSender(bot, backoff=0)  # type: ignore[arg-type]
    result = await sender.send(5, ["hello"], priority=SendPriority.BULK)
    assert result.outcome is Outcome.SENT
    assert bot.calls == 3


async def test_retries_used_up_on_unsent_requests_come_back_later() -> None:
    bot = FlakyBot([NetworkError("Bad Gateway")] * 4)
    sender = TelegramSender(bot, retries=3, backoff=0)  # type: ignore[arg-type]
    result = await sender.send(5, ["hello"], priority=SendPriority.BULK)
    assert result.outcome is Outcome.RETRY_LATER
    assert result.retry_after is not None and result.retry_after > 0
    assert bot.calls == 4
