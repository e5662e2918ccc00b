"""Chat fuzzing through the real bot: random commands, texts, edits and button data in private
chats, groups and channels, from editors and readers, administrators and not.

Each test starts the bot once (on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set)
against the strict fake Bot API, and hypothesis plays its examples against it: every action
is handled to the end before the next (see tests/fuzz/chat_world.py). Whatever came in:

- our code logs no ERROR,
- every button press is answered,
- Telegram refuses none of the bot's requests (a 400 "message is not modified" included),
- a chat's settings change only by its administrators, and breaking pushes only by editors.

Counts go to `fuzz_counts["chat"]`; FUZZ_SCALE multiplies the examples.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fakebotapi.server import FakeBotApiServer
from tests.fuzz.chat_world import (
    BOT,
    COUNT_KEYS,
    Action,
    Tally,
    World,
    edits,
    presses,
    running_world,
    says,
    scenario,
)
from tests.fuzz.conftest import fuzz_scale

SCALE = fuzz_scale()
# Shrinking replays an example's actions hundreds of times against the running bot (minutes);
# a failure reports the whole example instead, each action noted, the failing one named.
# FUZZ_SHRINK=1 asks hypothesis to shrink it.
SHRINK = os.environ.get("FUZZ_SHRINK", "").strip() not in ("", "0")
PHASES = (
    tuple(Phase) if SHRINK else tuple(p for p in Phase if p not in (Phase.shrink, Phase.explain))
)


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        print_blob=True,
        phases=PHASES,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,  # one bot for all of a test's examples
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


@pytest.fixture
async def world(
    fake_api: FakeBotApiServer, db_url: str, fuzz_counts: defaultdict[str, Counter[str]]
) -> AsyncIterator[tuple[World, Tally]]:
    counts = fuzz_counts["chat"]
    for key in COUNT_KEYS:
        counts[key] += 0
    tally = Tally()
    try:
        async with running_world(fake_api, db_url) as w:
            yield w, tally
            errors_before_stop = len(w.errors)
        assert w.errors[errors_before_stop:] == [], "errors while the bot stopped"
    finally:
        counts["inputs tried"] += tally.inputs
        counts["crashes"] += tally.crashes
        counts["unanswered callbacks"] += tally.unanswered
        counts["refused requests"] += tally.refused


@fuzz_settings(examples=200)
@given(actions=st.lists(st.one_of(says(BOT), says(BOT), edits(BOT)), min_size=1, max_size=25))
async def test_commands_and_texts(world: tuple[World, Tally], actions: list[Action]) -> None:
    """Commands known and unknown, addressed to us or not, with any arguments; any text;
    edits of either; in private chats, groups and channels."""
    w, tally = world
    await w.play(actions, tally)


@fuzz_settings(examples=200)
@given(actions=scenario(presses(), presses(), says(BOT), max_size=20))
async def test_button_presses(world: tuple[World, Tally], actions: list[Action]) -> None:
    """Buttons pressed with their own data, tampered data or junk, once or twice at once,
    on any of the bot's messages, by anyone who can see them."""
    w, tally = world
    await w.play(actions, tally)


@fuzz_settings(examples=200)
@given(actions=scenario(says(BOT), edits(BOT), presses(), max_size=20))
async def test_everything_together(world: tuple[World, Tally], actions: list[Action]) -> None:
    """All of it interleaved: editors drafting and sending pushes while readers page,
    subscribe and press forged buttons."""
    w, tally = world
    await w.play(actions, tally)
