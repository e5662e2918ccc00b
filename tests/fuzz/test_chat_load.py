"""Chat under load: one reader sending 60 commands does not delay another reader's answer
beyond a second.

The real bot, on a real database (SQLite, and PostgreSQL when TEST_DATABASE_URL is set), with
its production rate limits (30/s overall, 1/s per private chat after a burst of 3, 20/min per
group), against the fake Bot API enforcing Telegram's. Reader A fires 60 commands and button
presses as fast as a client can; the bot may answer them only about one a second, so A's
replies queue for a minute. Meanwhile reader B sends /help and /latest, twice, and each
reply must reach Telegram within a second of B's message, timed on the fake server's clock.
A's commands are all answered in the end, with no 429 and no other request refused; A's own
presses answered too late for Telegram are counted (see the end of the test).

The worst of B's waits goes to `fuzz_counts["chat load"]`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import pytest

from digests.settings import Settings
from fakebotapi.emulator import QUERY_TOO_OLD, BotApiEmulator, RateLimits
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, e2e_settings, logged_errors, running_bot
from tests.fuzz.chat_world import NOW, seed

BUSY, OTHER = 31_001, 31_002
COMMANDS = 60
BOUND = 1.0  # seconds from B's message to the bot's reply reaching Telegram
# The production defaults, not the e2e harness's "no limits".
PRODUCTION_LIMITS = {
    name: Settings.model_fields[name].default
    for name in (
        "send_rate_limit",
        "private_chat_rate_limit",
        "group_rate_limit_per_min",
        "private_chat_burst",
    )
}


def settled_queries(emulator: BotApiEmulator) -> set[str]:
    """Callback queries answered, or whose answer Telegram refused."""
    refused = {
        str(c.params.get("callback_query_id"))
        for c in emulator.calls
        if c.method == "answerCallbackQuery" and c.error is not None
    }
    return refused | set(emulator.callback_answers)


@pytest.fixture
async def limited_api() -> AsyncIterator[FakeBotApiServer]:
    """The fake Bot API with Telegram's flood limits, a private chat's short burst included."""
    limits = RateLimits(
        overall_per_sec=30,
        private_per_sec=1,
        group_per_min=20,
        private_burst=PRODUCTION_LIMITS["private_chat_burst"],
    )
    async with FakeBotApiServer(BotApiEmulator(limits=limits, clock=time.monotonic)) as server:
        yield server


async def test_a_busy_reader_does_not_delay_another_beyond_a_second(
    limited_api: FakeBotApiServer, db_url: str, fuzz_counts: defaultdict[str, Counter[str]]
) -> None:
    assert PRODUCTION_LIMITS["send_rate_limit"] == 30
    assert PRODUCTION_LIMITS["private_chat_rate_limit"] == 1
    emulator = limited_api.emulator
    await seed(db_url)
    for user in (BUSY, OTHER):
        emulator.add_user(user, f"Reader {user}")
    busy = Reader(limited_api, BUSY)
    settings = e2e_settings(limited_api, db_url, **PRODUCTION_LIMITS)
    waits: list[float] = []

    async def timed(text: str) -> None:
        """B sends `text`; the time until the bot's reply reached the fake server."""
        sent_before = len(emulator.sent_log)
        start = time.monotonic()
        emulator.user_sends(OTHER, text)
        try:
            record = await emulator.wait_for(
                lambda: next(
                    (r for r in emulator.sent_log[sent_before:] if r.chat_id == OTHER), None
                ),
                timeout=10,
            )
        except TimeoutError:
            pytest.fail(f"B's {text} was not answered within 10 s (earlier waits: {waits})")
        waits.append(record.time - start)

    with logged_errors() as errors:
        async with running_bot(limited_api, settings, now=NOW):
            [page] = await busy.send("/latest")
            next_data = next(d for d in page.callback_data if d.endswith(":n"))
            started = time.monotonic()
            expected = 0  # messages A's commands send (presses may only edit or answer)
            queries: list[str] = []
            for n in range(COMMANDS):
                match n % 6:
                    case 0 | 3:
                        emulator.user_sends(BUSY, "/help")
                        expected += 1
                    case 1:
                        emulator.user_sends(BUSY, "/latest")
                        expected += 1
                    case 2:
                        emulator.user_sends(BUSY, "/sections")
                        expected += 1
                    case 4:  # Next ▶ on the first page: the first press edits it to page
                        # 2 (an edit counts like a message); the others find it there
                        queries.append(
                            emulator.press_button(BUSY, page.message_id, next_data, force=True)
                        )
                    case 5:  # a stale button: only the press's answer
                        queries.append(
                            emulator.press_button(BUSY, page.message_id, "L:stale", force=True)
                        )
            for text, pause in (("/help", 0.3), ("/latest", 1.2), ("/help", 3.0), ("/latest", 1.2)):
                await asyncio.sleep(pause)
                await timed(text)
            in_flight = len(busy.bot_messages()) - 1
            # A's replies go out at about one a second: wait for the last of them, and for
            # each press to be answered, or refused as too old (see below).
            await emulator.wait_for(
                lambda: (
                    len(busy.bot_messages()) >= 1 + expected
                    and all(q in settled_queries(emulator) for q in queries)
                ),
                timeout=COMMANDS * 2,
            )
            drained = time.monotonic() - started

    worst = max(waits)
    counts = fuzz_counts["chat load"]
    key = "ms worst reply for the other reader"
    counts[key] = max(counts[key], round(worst * 1000))
    # The busy reader's own presses wait behind their earlier replies (a chat's updates are
    # handled in order, each reply spaced by the chat's limit), so those pressed more than
    # 15 s of replies into the backlog are answered after Telegram stopped waiting, and
    # Telegram refuses the answer. Counted, not failed: it is the flooding reader's own wait.
    too_old = [
        c for c in emulator.calls if c.error is not None and c.error.description == QUERY_TOO_OLD
    ]
    counts["presses of the busy reader answered too late"] += len(too_old)
    refused = [
        (c.method, c.error) for c in emulator.calls if c.error is not None and c not in too_old
    ]
    assert refused == []
    assert errors == []
    assert emulator.too_many_requests == 0
    assert in_flight < expected, "A's replies were all sent before B's: no load to speak of"
    assert drained > 10, f"A's {expected} replies took {drained:.1f} s: not limited to 1/s"
    assert all(wait < BOUND for wait in waits), f"B waited {[round(w, 3) for w in waits]} s"
