"""PriorityRateLimiter against a fake Bot API callback that records when each request left.

Every test runs on virtual time (the ``looptime`` plugin): the event loop's clock starts at 0
and jumps straight to the next timer whenever every task waits, so a test of a 1/s limit takes
milliseconds and asserts exact send times, however loaded the machine. The limiter, the fake
Bot API and the shared budgets all read that clock (``now``). Rates are Telegram's own or
have intervals that are exact binary fractions (0.25 s, 0.125 s), so the times add up exactly.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dtm
import itertools
import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import limits.aio.storage.memory
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from limits.aio.storage import MemoryStorage
from telegram.error import Forbidden, RetryAfter

from bot.transport.budget import SharedBudget, bot_id_from_token, storage_url
from bot.transport.ratelimit import (
    PAID_BURST,
    PAID_PACE,
    PAID_PER_SEC,
    PAID_TICK,
    Priority,
    PriorityArg,
    PriorityRateLimiter,
    RateLimiterClosedError,
    parse_priority,
    retry_after_seconds,
)

pytestmark = pytest.mark.looptime

# A request stuck this long (virtual seconds) is a bug: fail instead of hanging the suite.
HANG = 60.0
_chat_ids = itertools.count(10_000)


def now() -> float:
    """The test's virtual time: seconds since its event loop started."""
    return asyncio.get_running_loop().time()


@pytest.fixture(autouse=True)
def storage_on_virtual_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """limits' in-memory storage stamps sends with time.time(): give it the virtual clock."""
    monkeypatch.setattr(limits.aio.storage.memory, "time", SimpleNamespace(time=now))


def make_limiter(**limits: Any) -> PriorityRateLimiter:
    return PriorityRateLimiter(clock=now, **limits)


def private_chat() -> int:
    return next(_chat_ids)


def group_chat() -> int:
    return -1_000_000_000_000 - next(_chat_ids)


@dataclass
class Call:
    endpoint: str
    data: dict[str, Any]
    at: float
    tag: str


@dataclass
class FakeBotAPI:
    """Stands in for ``Bot._do_post``: records each request and can answer 429 first."""

    calls: list[Call] = field(default_factory=list)
    # chat id (or inline_message_id) -> retry_after values to answer with, in turn
    flood: dict[object, list[float]] = field(default_factory=dict)
    latency: float = 0.0

    async def post(self, endpoint: str, data: dict[str, Any], tag: str = "") -> dict[str, Any]:
        self.calls.append(Call(endpoint, dict(data), now(), tag))
        await asyncio.sleep(self.latency)
        key = data.get("chat_id", data.get("inline_message_id"))
        waits = self.flood.get(key)
        if waits:
            raise RetryAfter(dtm.timedelta(seconds=waits.pop(0)))
        return {"message_id": len(self.calls), "chat": {"id": data.get("chat_id")}}

    def tags(self) -> list[str]:
        return [call.tag for call in self.calls]

    def times_for(self, chat_id: object) -> list[float]:
        return [call.at for call in self.calls if call.data.get("chat_id") == chat_id]


async def send(
    limiter: PriorityRateLimiter,
    api: FakeBotAPI,
    chat_id: object | None = None,
    *,
    endpoint: str = "sendMessage",
    priority: PriorityArg | None = None,
    tag: str = "",
    **extra: Any,
) -> Any:
    data: dict[str, Any] = dict(extra)
    if chat_id is not None:
        data["chat_id"] = chat_id
    data.setdefault("text", "x")
    async with asyncio.timeout(HANG):
        return await limiter.process_request(
            callback=api.post,
            args=(endpoint, data),
            kwargs={"tag": tag},
            endpoint=endpoint,
            data=data,
            rate_limit_args=priority,
        )


def spawn(*coros: Any) -> list[asyncio.Task[Any]]:
    return [asyncio.create_task(coro) for coro in coros]


def every(interval: float, count: int, start: float = 0.0) -> list[float]:
    """``count`` send times ``interval`` apart from ``start``."""
    return [start + i * interval for i in range(count)]


# --- priorities -------------------------------------------------------------------------


async def test_interactive_queued_after_bulk_overtakes_it() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=4, private_per_sec=0)
    bulk = spawn(
        *(
            send(limiter, api, private_chat(), priority=Priority.BULK, tag=f"bulk{i}")
            for i in range(20)
        )
    )
    await asyncio.sleep(0)  # bulk0 has gone, the other bulk requests are queued
    urgent = spawn(
        send(limiter, api, private_chat(), priority={"priority": Priority.BREAKING}, tag="brk0"),
        send(limiter, api, private_chat(), tag="int0"),
        send(limiter, api, private_chat(), priority=int(Priority.BREAKING), tag="brk1"),
        send(limiter, api, private_chat(), priority=Priority.INTERACTIVE, tag="int1"),
    )
    await asyncio.gather(*bulk, *urgent)

    urgent_tags = ["int0", "int1", "brk0", "brk1"]
    assert api.tags() == ["bulk0", *urgent_tags, *(f"bulk{i}" for i in range(1, 20))]
    assert [call.at for call in api.calls] == every(0.25, 24)
    assert limiter.stats.sent == 24
    assert limiter.stats.sent_by_priority == {
        Priority.INTERACTIVE: 2,
        Priority.BREAKING: 2,
        Priority.BULK: 20,
    }


async def test_urgent_request_promotes_the_bulk_one_ahead_of_it_in_the_same_chat() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=8, private_per_sec=1)
    reader = private_chat()
    others = spawn(
        *(
            send(limiter, api, private_chat(), priority=Priority.BULK, tag=f"bulk{i}")
            for i in range(30)
        )
    )
    # The reader's digest part waits for a bot-wide slot behind the other 30 ...
    digest = spawn(send(limiter, api, reader, priority=Priority.BULK, tag="digest"))
    await asyncio.sleep(0)
    # ... and their reply must not wait for all 30 too.
    reply = spawn(send(limiter, api, reader, tag="reply"))
    await asyncio.gather(*others, *digest, *reply)

    tags = api.tags()
    assert tags[:2] == ["bulk0", "digest"]
    # The reply keeps to the chat's 1/s, counted from when the digest part left at 0.125 s.
    # At 1.125 s its chat is free just as a bot-wide slot goes to a bulk request already
    # waiting for it, so the reply takes the next slot, the 11th, not the 32nd.
    assert api.times_for(reader) == [0.125, 1.25]
    assert tags.index("reply") == 10


# --- per-chat limits --------------------------------------------------------------------


async def test_private_chat_gets_at_most_its_rate_while_other_chats_go_at_once() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=1)
    one = private_chat()
    await asyncio.gather(*(send(limiter, api, one) for _ in range(5)))

    many = [private_chat() for _ in range(5)]
    await asyncio.gather(*(send(limiter, api, chat) for chat in many))

    assert api.times_for(one) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [api.times_for(chat) for chat in many] == [[4.0]] * 5
    assert len(api.calls) == 10


async def test_private_burst_lets_the_first_few_through_at_once() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=1, private_burst=3)
    chat = private_chat()
    await asyncio.gather(*(send(limiter, api, chat) for _ in range(5)))

    # A burst of 3 at once; the 4th and 5th keep to 1/s counted from the first send.
    assert api.times_for(chat) == [0.0, 0.0, 0.0, 1.0, 2.0]


@pytest.mark.parametrize("chat_id", [group_chat(), "@newsroom_channel"])
async def test_groups_and_channels_are_spaced_by_the_per_minute_limit(chat_id: object) -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=0, group_per_min=20)
    await asyncio.gather(*(send(limiter, api, chat_id) for _ in range(4)))

    assert api.times_for(chat_id) == [0.0, 3.0, 6.0, 9.0]


async def test_edits_count_against_the_chat_but_other_methods_only_overall() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=1)
    chat = private_chat()
    await send(limiter, api, chat)
    await send(limiter, api, chat, endpoint="editMessageText", message_id=1)
    await asyncio.gather(
        *(send(limiter, api, chat, endpoint="deleteMessage", message_id=i) for i in range(5))
    )

    assert [(call.endpoint, call.at) for call in api.calls] == [
        ("sendMessage", 0.0),
        ("editMessageText", 1.0),
        *[("deleteMessage", 1.0)] * 5,
    ]


async def test_a_busy_chat_does_not_slow_other_chats() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=8, private_per_sec=1)
    busy, quiet = private_chat(), [private_chat() for _ in range(5)]
    backlog = spawn(*(send(limiter, api, busy, tag="busy") for _ in range(5)))
    await asyncio.sleep(0)
    await asyncio.gather(*(send(limiter, api, chat, tag="quiet") for chat in quiet))
    await asyncio.gather(*backlog)

    # The quiet chats take the next five bot-wide slots, not one per busy-chat second.
    assert [call.at for call in api.calls if call.tag == "quiet"] == every(0.125, 5, 0.125)
    assert api.times_for(busy) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert api.tags()[:6] == ["busy", *["quiet"] * 5]


# --- overall limit ----------------------------------------------------------------------


async def test_overall_limit_holds_in_every_window() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=8, private_per_sec=0)
    await asyncio.gather(
        *(send(limiter, api, private_chat(), priority=Priority.BULK) for _ in range(30))
    )

    # Evenly spaced at the limit: never faster, and not slower either.
    assert [call.at for call in api.calls] == every(0.125, 30)


# --- RetryAfter -------------------------------------------------------------------------


async def test_retry_after_pauses_only_that_chat(caplog: pytest.LogCaptureFixture) -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=2)
    flooded, other = private_chat(), private_chat()
    api.flood[flooded] = [5.0]

    with caplog.at_level(logging.WARNING, logger="bot.transport.ratelimit"):
        first = spawn(send(limiter, api, flooded, tag="a1"))
        await asyncio.sleep(1)
        # Sent to the flooded chat during its pause: must wait for the pause to end.
        second = spawn(send(limiter, api, flooded, tag="a2"))
        await asyncio.gather(*(send(limiter, api, other, tag="b") for _ in range(5)))
        results = await asyncio.gather(*first, *second)

    # a1 refused at 0 s and retried when the 5 s pause ends; a2 half a second after it.
    assert api.times_for(flooded) == [0.0, 5.0, 5.5]
    # Chat B's five sends went at its own 2/s while chat A was paused.
    assert api.times_for(other) == every(0.5, 5, 1.0)
    assert api.tags() == ["a1", *["b"] * 5, "a1", "a2"]
    assert all(result["chat"]["id"] == flooded for result in results)
    assert limiter.stats.retry_after_count == 1
    assert limiter.stats.sent == 7
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert str(flooded) in caplog.text
    assert "5.0 s" in caplog.text


async def test_request_already_waiting_when_its_chat_is_paused_waits_out_the_pause() -> None:
    api = FakeBotAPI(latency=0.25)
    limiter = make_limiter(overall_per_sec=2, private_per_sec=8)
    flooded = private_chat()
    api.flood[flooded] = [1.0]
    await send(limiter, api, private_chat())  # the next bot-wide slot is at 0.5 s
    # a1 leaves at 0.5 s and is refused at 0.75 s (pausing the chat until 1.75 s), while a2
    # holds the chat's turn from 0.625 s and gets the bot-wide slot at 1 s, mid-pause.
    await asyncio.gather(
        send(limiter, api, flooded, tag="a1"), send(limiter, api, flooded, tag="a2")
    )

    # a2 gave its turn up: a1 is retried when the pause ends, a2 at the next bot-wide slot.
    assert api.times_for(flooded) == [0.5, 1.75, 2.25]
    assert api.tags()[1:] == ["a1", "a1", "a2"]


async def test_retry_after_without_chat_pauses_the_overall_limit() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=4, private_per_sec=0)
    api.flood["inline-1"] = [2.0]

    edit = spawn(send(limiter, api, endpoint="editMessageText", inline_message_id="inline-1"))
    await asyncio.sleep(1)
    chat = private_chat()
    await send(limiter, api, chat)
    await asyncio.gather(*edit)

    assert [(call.endpoint, call.at) for call in api.calls] == [
        ("editMessageText", 0.0),  # refused: every request waits until 2 s
        ("editMessageText", 2.0),
        ("sendMessage", 2.25),
    ]


async def test_retry_after_longer_than_max_retry_after_is_reraised_at_once() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(max_retry_after=1.0)
    chat = private_chat()
    api.flood[chat] = [3600.0]

    with pytest.raises(RetryAfter) as raised:
        await send(limiter, api, chat)

    assert retry_after_seconds(raised.value) == 3600.0
    assert now() == 0.0  # raised without waiting at all
    assert len(api.calls) == 1
    assert limiter.stats.retry_after_count == 1
    assert limiter.stats.retry_after_raised == 1
    assert limiter.stats.sent == 0


async def test_retry_after_is_reraised_once_retries_are_exhausted() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(max_retries=2, private_per_sec=0)
    chat = private_chat()
    api.flood[chat] = [0.01, 0.01, 0.01, 0.01]

    with pytest.raises(RetryAfter):
        await send(limiter, api, chat)

    assert len(api.calls) == 3  # the first try and two retries
    assert limiter.stats.retry_after_count == 3
    assert limiter.stats.retry_after_raised == 1


async def test_max_retries_zero_reraises_the_first_retry_after() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(max_retries=0)
    chat = private_chat()
    api.flood[chat] = [0.01]

    with pytest.raises(RetryAfter):
        await send(limiter, api, chat)
    assert len(api.calls) == 1


async def test_other_errors_pass_through_untouched() -> None:
    limiter = make_limiter()
    calls = 0

    async def blocked(endpoint: str, data: dict[str, Any]) -> bool:
        nonlocal calls
        calls += 1
        raise Forbidden("Forbidden: bot was blocked by the user")

    data = {"chat_id": private_chat(), "text": "x"}
    with pytest.raises(Forbidden):
        await limiter.process_request(blocked, ("sendMessage", data), {}, "sendMessage", data, None)
    assert calls == 1
    assert limiter.stats.sent == 0


def test_retry_after_seconds_reads_int_and_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    as_int = RetryAfter(5)
    as_fraction = RetryAfter(dtm.timedelta(seconds=1.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the helper hides PTB's int-deprecation warning
        assert retry_after_seconds(as_int) == 5.0
        assert retry_after_seconds(as_fraction) == 1.5
        monkeypatch.setenv("PTB_TIMEDELTA", "true")  # .retry_after is now a timedelta
        assert isinstance(as_fraction.retry_after, dtm.timedelta)
        assert retry_after_seconds(as_int) == 5.0
        assert retry_after_seconds(as_fraction) == 1.5


# --- methods that are never limited ----------------------------------------------------


async def test_answer_callback_query_and_getters_are_never_delayed() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=4, private_per_sec=1)
    chat = private_chat()
    api.flood[chat] = [5.0]
    # Saturate everything: a queue of bulk sends, a 429 on the chat, and the same chat again.
    backlog = spawn(
        send(limiter, api, chat),
        *(send(limiter, api, private_chat(), priority=Priority.BULK) for _ in range(5)),
    )
    await asyncio.sleep(0.125)

    for endpoint in ("answerCallbackQuery", "getMe", "getChatMember", "setMyCommands"):
        await send(limiter, api, chat, endpoint=endpoint, priority=Priority.BULK)
    for task in backlog:
        task.cancel()
    await asyncio.gather(*backlog, return_exceptions=True)

    # Each went out the moment it was made; only the chat's first send (refused with 429)
    # went before them, while the bulk queue waits for the next bot-wide slot at 0.25 s.
    assert [(c.endpoint, c.at) for c in api.calls] == [
        ("sendMessage", 0.0),
        ("answerCallbackQuery", 0.125),
        ("getMe", 0.125),
        ("getChatMember", 0.125),
        ("setMyCommands", 0.125),
    ]


# --- paid broadcast ---------------------------------------------------------------------


async def test_paid_broadcast_marks_only_broadcast_send_message() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(paid_broadcast=True, overall_per_sec=0, private_per_sec=0)
    chat = private_chat()
    await send(limiter, api, chat, priority=Priority.BULK, tag="bulk")
    await send(limiter, api, chat, priority=Priority.BREAKING, tag="breaking")
    await send(limiter, api, chat, tag="interactive")
    await send(limiter, api, chat, endpoint="editMessageText", priority=Priority.BULK, tag="edit")
    await send(limiter, api, chat, endpoint="sendPhoto", priority=Priority.BULK, tag="photo")

    marked = {c.tag: c.data.get("allow_paid_broadcast") for c in api.calls}
    assert marked == {
        "bulk": True,
        "breaking": True,  # an editor's push is a broadcast too
        "interactive": None,  # a reply to a reader never costs Stars
        "edit": None,
        "photo": None,
    }
    assert limiter.stats.paid_broadcast_sent == 2


async def test_without_paid_broadcast_bulk_is_not_marked() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=0)
    await send(limiter, api, private_chat(), priority=Priority.BULK)
    assert "allow_paid_broadcast" not in api.calls[0].data
    assert limiter.stats.paid_broadcast_sent == 0


async def test_paid_broadcast_raises_the_overall_ceiling_for_bulk() -> None:
    chats = [private_chat() for _ in range(10)]

    async def run(paid: bool) -> list[float]:
        api = FakeBotAPI()
        limiter = make_limiter(overall_per_sec=4, private_per_sec=0, paid_broadcast=paid)
        start = now()
        await asyncio.gather(*(send(limiter, api, c, priority=Priority.BULK) for c in chats))
        return [call.at - start for call in api.calls]

    # Free: 0.25 s apart (4/s). Paid: a delivery batch at once (PAID_BURST is 50).
    assert await run(paid=False) == every(0.25, 10)
    assert await run(paid=True) == [0.0] * 10


async def test_paid_broadcasts_go_in_batches_and_never_above_1000_in_a_second() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=4, private_per_sec=0, paid_broadcast=True)
    chats = [private_chat() for _ in range(3000)]
    start = now()
    await asyncio.gather(*(send(limiter, api, c, priority=Priority.BULK) for c in chats))
    times = sorted(call.at - start for call in api.calls)

    assert times[:PAID_BURST] == [0.0] * PAID_BURST  # a whole batch leaves together
    # the busiest one-second window (to within the virtual clock's µs) holds at most 1000
    busiest = max(bisect.bisect_right(times, t + 1.0 - 1e-6) - i for i, t in enumerate(times))
    assert busiest == PAID_PER_SEC == 1000
    # within a second the sends are paced, not sent all at once: after the first batch, no
    # 100 ms holds more than the pace allows (and a tick's worth let through together)
    paced = max(bisect.bisect_right(times, t + 0.1 - 1e-6) - i for i, t in enumerate(times))
    assert paced <= PAID_BURST + PAID_PACE * (0.1 + PAID_TICK)
    # and the broadcast keeps Telegram's full rate: 1000 in each second, a send that left
    # late made up within its second
    assert (len(times) - 1) / times[-1] >= PAID_PER_SEC
    assert times[-1] == pytest.approx(2 + (1000 - PAID_BURST) / PAID_PACE, abs=3 * PAID_TICK)


# --- zero disables a limit --------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "chat_ids"),
    [
        ({"overall_per_sec": 0}, [private_chat() for _ in range(10)]),
        ({"overall_per_sec": 0, "private_per_sec": 0}, [private_chat()] * 10),
        ({"overall_per_sec": 0, "group_per_min": 0}, [group_chat()] * 10),
    ],
    ids=["overall", "private", "group"],
)
async def test_zero_disables_a_limit(limits: dict[str, Any], chat_ids: list[int]) -> None:
    # Left at its default, each of these limits would stretch ten sends over seconds.
    api = FakeBotAPI()
    limiter = make_limiter(**limits)
    await asyncio.gather(*(send(limiter, api, chat) for chat in chat_ids))
    assert [call.at for call in api.calls] == [0.0] * 10


# --- rate_limit_args --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        (None, Priority.INTERACTIVE),
        (Priority.BULK, Priority.BULK),
        (1, Priority.BREAKING),
        ({"priority": 2}, Priority.BULK),
        ({"priority": Priority.BREAKING}, Priority.BREAKING),
        ({}, Priority.INTERACTIVE),
    ],
)
def test_parse_priority(arg: PriorityArg | None, expected: Priority) -> None:
    assert parse_priority(arg) is expected


@pytest.mark.parametrize("arg", [7, -1])
def test_parse_priority_rejects_unknown_values(arg: int) -> None:
    with pytest.raises(ValueError, match="is not a valid Priority"):
        parse_priority(arg)


def test_parse_priority_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="rate_limit_args"):
        parse_priority({"priority": "BULK"})


def test_negative_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="private_per_sec"):
        make_limiter(private_per_sec=-1)
    with pytest.raises(ValueError, match="private_burst"):
        make_limiter(private_burst=0)


# --- lifecycle, cancellation, memory ----------------------------------------------------


async def test_shutdown_fails_waiting_requests_and_initialize_reopens() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(private_per_sec=1)
    await limiter.initialize()
    chat = private_chat()
    waiting = spawn(*(send(limiter, api, chat) for _ in range(4)))
    await asyncio.sleep(0.5)

    await limiter.shutdown()
    results = await asyncio.gather(*waiting, return_exceptions=True)

    assert now() == 0.5  # failed at once, not when the chat's next second came
    assert sum(isinstance(r, dict) for r in results) == 1
    assert sum(isinstance(r, RateLimiterClosedError) for r in results) == 3
    with pytest.raises(RateLimiterClosedError):
        await send(limiter, api, private_chat())

    await limiter.initialize()
    assert (await send(limiter, api, chat))["chat"]["id"] == chat
    assert len(api.calls) == 2


async def test_cancelled_waiters_do_not_block_their_chat() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=4, private_per_sec=1)
    chat = private_chat()
    await send(limiter, api, private_chat(), tag="first")  # the next bot-wide slot is at 0.25 s
    # holder: has the chat's slot, waits for a bot-wide one; queued: waits for the chat.
    holder, queued = spawn(send(limiter, api, chat, tag="h"), send(limiter, api, chat, tag="q"))
    await asyncio.sleep(0.125)
    holder.cancel()
    queued.cancel()
    await asyncio.gather(holder, queued, return_exceptions=True)

    result = await send(limiter, api, chat, tag="after")

    assert result["chat"]["id"] == chat
    # The chat was never sent to, so only the bot-wide slot is waited for.
    assert [(call.tag, call.at) for call in api.calls] == [("first", 0.0), ("after", 0.25)]


async def test_request_cancelled_just_as_its_turn_comes_hands_the_turn_on() -> None:
    limiter = make_limiter(overall_per_sec=4, private_per_sec=0)
    chat = private_chat()
    sent: list[str] = []
    tasks: dict[str, asyncio.Task[Any]] = {}

    async def post(endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        sent.append(data["text"])
        if data["text"] == "first":
            # "second" has just been handed the chat's turn but has not run yet.
            tasks["second"].cancel()
        return {"message_id": len(sent)}

    async def send_text(chat_id: int, text: str) -> Any:
        data = {"chat_id": chat_id, "text": text}
        async with asyncio.timeout(HANG):
            return await limiter.process_request(
                post, ("sendMessage", data), {}, "sendMessage", data, None
            )

    await send_text(private_chat(), "warm-up")  # the next bot-wide slot is at 0.25 s
    tasks["first"] = asyncio.create_task(send_text(chat, "first"))
    tasks["second"] = asyncio.create_task(send_text(chat, "second"))
    await tasks["first"]
    with pytest.raises(asyncio.CancelledError):
        await tasks["second"]

    await send_text(chat, "third")
    assert sent == ["warm-up", "first", "third"]


async def test_idle_chats_are_forgotten() -> None:
    api = FakeBotAPI()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=1)
    # 3000 new readers, 100 a second: a chat is idle once its 1 s spacing has run out.
    for i in range(3000):
        await send(limiter, api, private_chat())
        if i % 100 == 99:
            await asyncio.sleep(1)
    await send(limiter, api, private_chat())

    assert len(api.calls) == 3001
    assert limiter.tracked_chats <= 1024


# --- random interleavings ---------------------------------------------------------------

PRIVATE_PER_SEC = 4  # 0.25 s apart
GROUP_PER_MIN = 120  # 0.5 s apart


@st.composite
def workloads(draw: st.DrawFn) -> tuple[int, list[tuple[int, Priority, bool, float]]]:
    burst = draw(st.integers(1, 2))
    chats = [1, 2, 3, -1, -2]
    requests = draw(
        st.lists(
            st.tuples(
                st.sampled_from(chats),
                st.sampled_from(Priority),
                st.booleans(),  # answered with one 429 first
                st.sampled_from([0.0, 0.0, 0.125]),  # delay before it is submitted
            ),
            min_size=1,
            max_size=14,
        )
    )
    return burst, requests


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workload=workloads())
async def test_random_interleavings_send_each_once_and_keep_chat_spacing(
    workload: tuple[int, list[tuple[int, Priority, bool, float]]],
) -> None:
    burst, requests = workload
    limiter = make_limiter(
        overall_per_sec=16,
        private_per_sec=PRIVATE_PER_SEC,
        private_burst=burst,
        group_per_min=GROUP_PER_MIN,
    )
    sent: dict[int, list[float]] = defaultdict(list)
    attempts: dict[int, int] = defaultdict(int)
    succeeded: list[int] = []

    def callback_for(rid: int, chat: int, flaky: bool) -> Any:
        async def post(endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
            sent[chat].append(now())
            attempts[rid] += 1
            if flaky and attempts[rid] == 1:
                raise RetryAfter(dtm.timedelta(milliseconds=125))
            await asyncio.sleep(0)
            succeeded.append(rid)
            return {"message_id": rid}

        return post

    async def one(rid: int, chat: int, priority: Priority, flaky: bool, delay: float) -> Any:
        await asyncio.sleep(delay)
        data = {"chat_id": chat, "text": str(rid)}
        return await limiter.process_request(
            callback_for(rid, chat, flaky), ("sendMessage", data), {}, "sendMessage", data, priority
        )

    async with asyncio.timeout(HANG):
        results = await asyncio.gather(*(one(i, *req) for i, req in enumerate(requests)))

    assert [r["message_id"] for r in results] == list(range(len(requests)))
    assert sorted(succeeded) == list(range(len(requests)))
    assert sum(attempts.values()) == len(requests) + sum(flaky for _, _, flaky, _ in requests)
    assert limiter.stats.sent == len(requests)
    # Every chat's send times conform to its GCRA limit (spacing, plus the burst in private).
    for chat, times in sent.items():
        interval = 1 / PRIVATE_PER_SEC if chat > 0 else 60 / GROUP_PER_MIN
        tolerance = (burst - 1) * interval if chat > 0 else 0.0
        tat = -1e9
        for at in times:
            assert at >= tat - tolerance, (chat, times)
            tat = max(tat, at) + interval


# --- a send budget shared by several limiters (processes) -------------------------------
# The shared windows run on limits' in-memory storage, stamped with the same virtual clock
# (``storage_on_virtual_time``), so windows are counted exactly too.

_prefixes = itertools.count()


class FlakyStorage(MemoryStorage):
    """limits' in-memory storage that can refuse to answer like an unreachable Redis."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.calls = 0

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        self.calls += 1
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await super().acquire_entry(key, limit, expiry, amount)

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        self.calls += 1
        if self.down:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return await super().get_moving_window(key, limit, expiry)


def budgets(n: int, storage: MemoryStorage | None = None, **limits: Any) -> list[SharedBudget]:
    """n budgets of one bot on one storage, as n processes would have them on one Redis."""
    storage = storage if storage is not None else MemoryStorage()
    prefix = f"test:{next(_prefixes)}"
    return [
        SharedBudget(storage, key_prefix=prefix, wall_clock=now, clock=now, **limits)
        for _ in range(n)
    ]


def most_in_any_window(times: list[float], width: float) -> int:
    times = sorted(times)
    return max(sum(t <= s < t + width for s in times) for t in times)


async def test_two_limiters_on_one_budget_keep_the_overall_limit_together() -> None:
    api = FakeBotAPI()
    limiters = [
        make_limiter(overall_per_sec=8, private_per_sec=0, shared=budget)
        for budget in budgets(2, overall_per_sec=8)
    ]
    # Each limiter alone would send its 8 in one second: together they must take two windows.
    await asyncio.gather(
        *(
            send(limiter, api, private_chat(), priority=Priority.BULK)
            for limiter in limiters
            for _ in range(8)
        )
    )

    times = sorted(call.at for call in api.calls)
    assert len(times) == 16
    assert most_in_any_window(times, 1) <= 8
    # Together they fill the first window; the other 8 wait for its sends to leave it.
    assert times[8] - times[0] >= 1
    assert sum(limiter.stats.shared_waits for limiter in limiters) > 0
    assert sum(limiter.stats.sent for limiter in limiters) == 16


async def test_two_limiters_on_one_budget_keep_a_chat_limit_together() -> None:
    api = FakeBotAPI()
    limiters = [
        make_limiter(overall_per_sec=0, private_per_sec=1, shared=budget)
        for budget in budgets(2, private_per_sec=1)
    ]
    reader = private_chat()
    await asyncio.gather(*(send(limiter, api, reader) for limiter in limiters for _ in range(3)))

    times = api.times_for(reader)
    assert len(times) == 6
    # One send a second between them, each as soon as the window frees (within its 5 ms step).
    assert all(1 <= b - a < 1.01 for a, b in itertools.pairwise(times))
    assert sum(limiter.stats.shared_chat_waits for limiter in limiters) > 0


async def test_a_chat_spent_by_another_process_delays_only_that_chat() -> None:
    api = FakeBotAPI()
    other, ours = budgets(2, private_per_sec=1)
    limiter = make_limiter(overall_per_sec=0, private_per_sec=4, shared=ours)
    busy, quiet = private_chat(), [private_chat() for _ in range(3)]
    assert await other.take_chat(busy) == 0.0  # the other process has just sent to busy
    spent_at = now()

    await asyncio.gather(
        send(limiter, api, busy, tag="busy"), *(send(limiter, api, q, tag="quiet") for q in quiet)
    )

    # busy waits until the other process's send leaves its chat's window at 1 s, then 5 ms
    # more: the budget's shortest wait, as a send exactly 1 s old still counts in the window.
    assert spent_at == 0.0
    assert [(call.tag, call.at) for call in api.calls] == [("quiet", 0.0)] * 3 + [("busy", 1.005)]
    assert limiter.stats.shared_chat_waits == 2
    assert limiter.stats.sent == 4


async def test_priorities_hold_while_the_shared_budget_is_the_bottleneck() -> None:
    api = FakeBotAPI()
    other, ours = budgets(2, overall_per_sec=8)
    for _ in range(8):
        assert await other.take_send() == 0.0  # the other process spent this second's budget
    limiter = make_limiter(overall_per_sec=0, private_per_sec=0, shared=ours)

    bulk = spawn(
        *(
            send(limiter, api, private_chat(), priority=Priority.BULK, tag=f"bulk{i}")
            for i in range(5)
        )
    )
    await asyncio.sleep(0.05)  # every bulk request now waits for the shared budget
    urgent = spawn(
        send(limiter, api, private_chat(), tag="int0"),
        send(limiter, api, private_chat(), priority=Priority.BREAKING, tag="brk0"),
        send(limiter, api, private_chat(), tag="int1"),
    )
    await asyncio.gather(*bulk, *urgent)

    assert api.tags() == ["int0", "int1", "brk0", "bulk0", "bulk1", "bulk2", "bulk3", "bulk4"]
    # All wait for the other process's sends to leave the window (at 1 s, plus the budget's
    # 5 ms step), then go out at the shared rate, 1/8 s apart.
    assert [c.at for c in api.calls] == pytest.approx(every(0.125, 8, 1.005), abs=1e-6)
    assert limiter.stats.shared_waits == 8


async def test_a_readers_reply_promotes_their_digest_waiting_for_the_shared_budget() -> None:
    api = FakeBotAPI()
    other, ours = budgets(2, overall_per_sec=8)
    for _ in range(8):
        await other.take_send()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=0, shared=ours)
    reader = private_chat()
    bulk = spawn(
        *(
            send(limiter, api, private_chat(), priority=Priority.BULK, tag=f"bulk{i}")
            for i in range(5)
        )
    )
    digest = spawn(send(limiter, api, reader, priority=Priority.BULK, tag="digest"))
    await asyncio.sleep(0.05)  # all six wait for the shared budget, the digest last
    reply = spawn(send(limiter, api, reader, tag="reply"))  # waits behind it for the chat
    await asyncio.gather(*bulk, *digest, *reply)

    assert api.tags()[0] == "digest"
    # The reply then waits for the chat's own shared window: one send a second.
    assert api.times_for(reader) == [1.005, 2.01]
    assert sorted(api.tags()) == sorted(["digest", "reply", *(f"bulk{i}" for i in range(5))])


async def test_unreachable_budget_falls_back_to_local_limits_logs_once_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeBotAPI()
    storage = FlakyStorage()
    (budget,) = budgets(1, storage, overall_per_sec=1, retry_every=0.2)
    limiter = make_limiter(overall_per_sec=0, private_per_sec=0, shared=budget)
    storage.down = True

    with caplog.at_level(logging.INFO, logger="bot.transport.budget"):
        # At the budget's 1/s these would take 10 s; with the budget down they go at once.
        await asyncio.gather(*(send(limiter, api, private_chat()) for _ in range(10)))
        assert [call.at for call in api.calls] == [0.0] * 10
        assert limiter.stats.shared_waits == 0
        assert budget.degraded
        assert storage.calls == 1  # one request found it down; the others did not ask

        storage.down = False
        await asyncio.sleep(0.25)
        await send(limiter, api, private_chat())
        assert not budget.degraded
        # That send took the budget's one send of this second, so the budget counts again.
        assert await budget.take_send() > 0

    assert [(r.name, r.levelno) for r in caplog.records] == [
        ("bot.transport.budget", logging.WARNING),
        ("bot.transport.budget", logging.INFO),
    ]
    assert "ConnectionError" in caplog.records[0].getMessage()
    assert "reachable again" in caplog.records[1].getMessage()
    assert len(api.calls) == 11


async def test_getters_answers_and_setters_never_touch_the_budget() -> None:
    api = FakeBotAPI()
    storage = FlakyStorage()
    (budget,) = budgets(1, storage)
    limiter = make_limiter(shared=budget)
    chat = private_chat()
    for endpoint in ("answerCallbackQuery", "getMe", "getChatMember", "setMyCommands"):
        await send(limiter, api, chat, endpoint=endpoint)
    assert storage.calls == 0

    await send(limiter, api, chat)
    assert storage.calls == 2  # one bot-wide send, one for the chat
    assert len(api.calls) == 5


async def test_paid_broadcasts_draw_from_their_own_shared_window() -> None:
    api = FakeBotAPI()
    (budget,) = budgets(1, overall_per_sec=1)
    limiter = make_limiter(overall_per_sec=0, private_per_sec=0, paid_broadcast=True, shared=budget)
    # At the budget's 1/s these would take 10 s; paid, they share the 1000/s window.
    await asyncio.gather(
        *(send(limiter, api, private_chat(), priority=Priority.BULK) for _ in range(10))
    )

    # Paid broadcasts leave at once: within the paid gate's burst and the window's 1000/s.
    assert [c.at for c in api.calls] == [0.0] * 10
    assert limiter.stats.paid_broadcast_sent == 10
    assert await budget.take_send() == 0.0  # the free bot-wide send is still there


async def test_shutdown_fails_requests_waiting_for_the_shared_budget() -> None:
    api = FakeBotAPI()
    other, ours = budgets(2, overall_per_sec=3)
    for _ in range(3):
        await other.take_send()
    limiter = make_limiter(overall_per_sec=0, private_per_sec=0, shared=ours)
    waiting = spawn(*(send(limiter, api, private_chat()) for _ in range(3)))
    await asyncio.sleep(0.05)

    await limiter.shutdown()
    results = await asyncio.gather(*waiting, return_exceptions=True)

    assert all(isinstance(r, RateLimiterClosedError) for r in results)
    assert api.calls == []
    await limiter.initialize()
    chat = private_chat()
    assert (await send(limiter, api, chat))["chat"]["id"] == chat


async def test_retry_after_still_pauses_only_that_chat_with_a_shared_budget() -> None:
    api = FakeBotAPI()
    (budget,) = budgets(1, private_per_sec=4)
    limiter = make_limiter(overall_per_sec=0, private_per_sec=4, shared=budget)
    flooded, other = private_chat(), private_chat()
    api.flood[flooded] = [2.0]

    await asyncio.gather(send(limiter, api, flooded, tag="a"), send(limiter, api, other, tag="b"))

    assert api.times_for(flooded) == [0.0, 2.0]  # refused, then retried after the pause
    assert api.tags() == ["a", "b", "a"]
    assert limiter.stats.retry_after_count == 1
    assert limiter.stats.sent == 2


async def test_budget_windows_express_telegram_limits_in_whole_sends() -> None:
    (budget,) = budgets(
        1, overall_per_sec=29.1, private_per_sec=0.97, private_burst=3, group_per_min=19.4
    )
    assert [await budget.take_send() for _ in range(29)] == [0.0] * 29
    assert await budget.take_send() == 1.0  # when the first of this second's sends leaves

    reader = private_chat()
    assert [await budget.take_chat(reader) for _ in range(3)] == [0.0] * 3
    assert await budget.take_chat(reader) == 3.0  # a burst of 3, then 3 s for the next

    for group in (group_chat(), "@newsroom_channel"):
        assert [await budget.take_chat(group) for _ in range(19)] == [0.0] * 19
        assert await budget.take_chat(group) == 60.0

    assert await budget.take_chat(private_chat()) == 0.0  # other chats are untouched


async def test_zero_disables_a_shared_window_as_it_disables_a_gate() -> None:
    storage = FlakyStorage()
    (budget,) = budgets(1, storage, overall_per_sec=0, private_per_sec=0, group_per_min=0)
    assert [await budget.take_send() for _ in range(50)] == [0.0] * 50
    assert [await budget.take_chat(private_chat()) for _ in range(5)] == [0.0] * 5
    assert [await budget.take_chat(group_chat()) for _ in range(5)] == [0.0] * 5
    assert storage.calls == 0
    assert await budget.take_send(paid=True) == 0.0
    assert storage.calls == 1  # the paid window is still on


async def test_two_bots_on_one_storage_do_not_share_a_budget() -> None:
    storage = MemoryStorage()
    one = SharedBudget(storage, key_prefix="newsbot:111", overall_per_sec=1)
    two = SharedBudget(storage, key_prefix="newsbot:222", overall_per_sec=1)
    assert await one.take_send() == 0.0
    assert await one.take_send() > 0
    assert await two.take_send() == 0.0


def test_from_url_keys_the_budget_by_bot_id() -> None:
    budget = SharedBudget.from_url("memory://", bot_id=bot_id_from_token("123456:AAH-secret"))
    assert budget.key_prefix == "newsbot:123456"
    assert not budget.degraded


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/2", "async+redis://127.0.0.1:6379/2"),
        ("redis://:pw@redis.internal:6379/0", "async+redis://:pw@redis.internal:6379/0"),
        ("rediss://redis.internal:6380", "async+rediss://redis.internal:6380"),
        ("async+redis://localhost", "async+redis://localhost"),
        ("memory://", "async+memory://"),
    ],
)
def test_storage_url_converts_operator_urls(url: str, expected: str) -> None:
    assert storage_url(url) == expected


@pytest.mark.parametrize("url", ["http://:secretpw@host", "127.0.0.1:6379"])
def test_storage_url_refuses_other_urls_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError, match="redis://") as raised:
        storage_url(url)
    assert "secretpw" not in str(raised.value)


@pytest.mark.parametrize("token", ["no-colon-secret", "abc:secret", ":secret"])
def test_bot_id_from_token_refuses_malformed_tokens_without_echoing_them(token: str) -> None:
    with pytest.raises(ValueError, match="numeric id") as raised:
        bot_id_from_token(token)
    assert "secret" not in str(raised.value)


# --- even slots: the processes' bot-wide sends spread over each second ------------------


async def test_even_budget_gives_each_time_slot_to_one_process_only() -> None:
    first, second = budgets(2, overall_per_sec=3, even=True)  # slots of 0.25 s
    await asyncio.sleep(0.125)
    assert await first.take_send() == 0.0
    wait = await second.take_send()  # the same slot, from another process
    assert wait == 0.125  # until the next slot starts, not a whole second
    await asyncio.sleep(wait)
    assert await second.take_send() == 0.0  # the next slot is free


async def test_even_budget_still_caps_the_window() -> None:
    [budget] = budgets(1, overall_per_sec=3, even=True)  # 3 a second, in slots of 0.25 s
    taken: list[float] = []
    while now() < 3:
        wait = await budget.take_send()
        if wait == 0:
            taken.append(now())
        await asyncio.sleep(min(wait, 0.01) if wait else 0)

    slots = [int(at // 0.25) for at in taken]
    assert len(set(slots)) == len(slots)  # never two sends in one slot
    assert most_in_any_window(taken, 1) == 3  # and the window still caps them at 3 a second
