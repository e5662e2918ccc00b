"""Many readers at once: one busy reader delays only themself, and each chat keeps its order."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, e2e_settings, running_bot
from tests.e2e.test_readers import NOW, seeded_db

ZONES = [
    "Europe/Paris",
    "Asia/Tokyo",
    "America/Chicago",
    "Africa/Lagos",
    "Europe/Oslo",
    "Asia/Kolkata",
    "America/Lima",
    "Australia/Perth",
]


async def test_a_flooding_reader_stalls_nobody_and_keeps_their_order(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    settings = e2e_settings(
        fake_api,
        await seeded_db(tmp_path),
        send_rate_limit=30,
        private_chat_rate_limit=1,  # Telegram's spacing: the flood's replies take seconds
        private_chat_burst=3,
    )
    for uid in (901, 902, 903):
        fake_api.emulator.add_user(uid, f"Reader {uid}")
    busy, calm, presser = Reader(fake_api, 901), Reader(fake_api, 902), Reader(fake_api, 903)
    async with running_bot(fake_api, settings, now=NOW):
        [chooser] = await presser.send("/start")
        await busy.send("/start")
        for zone in ZONES:  # eight commands in a row, without waiting for answers
            fake_api.emulator.user_sends(busy.user_id, f"/timezone {zone}")

        [hint] = await calm.send("/help")
        answer = await presser.press(chooser, chooser.buttons[0]["callback_data"])
        replies_so_far = len(busy.bot_messages()) - 1
        assert "/latest" in hint.text
        assert answer["text"] in {"Following", "Not following"}
        assert replies_so_far < len(ZONES)  # the others were answered in the middle of it

        await fake_api.emulator.wait_for(
            lambda: len(busy.bot_messages()) >= 1 + len(ZONES), timeout=60
        )
        said = [m.text for m in busy.bot_messages()[1:]]
        assert [next(z for z in ZONES if z in text) for text in said] == ZONES
        [shown] = await busy.send("/settings")
        assert ZONES[-1] in shown.text


async def test_a_reply_whose_answer_is_lost_is_sent_once_and_logged_as_one_line(
    fake_api: FakeBotApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake_api.emulator.add_user(904, "Lin")
    reader = Reader(fake_api, 904)
    fake_api.emulator.withhold_next("sendMessage", 904, mode="drop")
    async with running_bot(fake_api, e2e_settings(fake_api, await seeded_db(tmp_path)), now=NOW):
        [hint] = await reader.send("/help")  # delivered; its answer never came back
        [again] = await reader.send("/help")  # the next command is answered as usual
    assert "/latest" in hint.text and "/latest" in again.text
    assert len(reader.bot_messages()) == 2  # the lost answer was not resent
    ours = [r for r in caplog.records if r.name.startswith(("bot", "digests"))]
    assert not [r for r in ours if r.levelno >= logging.ERROR]
    assert any("not confirmed" in r.getMessage() and "904" in r.getMessage() for r in ours)
