"""TelegramEditor over real HTTP: each Telegram answer to an edit or a deletion sorted by kind."""

from __future__ import annotations

from pathlib import Path

from bot.transport.edits import TelegramEditor
from digests.newsroom.actions import EditOutcome
from fakebotapi.emulator import ApiError, too_many_requests
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import e2e_settings, running_bot
from tests.e2e.test_breaking import NOW
from tests.e2e.test_readers import seeded_db, story

READER = 1601


async def test_edit_and_delete_outcomes(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    url = await seeded_db(tmp_path, story(1, "World"))
    emulator = fake_api.emulator
    emulator.add_user(READER, "Ada", started=True)
    emulator.add_user(READER + 1, "Bob", started=True)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW) as app:
        editor = TelegramEditor(app.bot, backoff=0.01)
        sent = await app.bot.send_message(READER, "old <b>story</b>", parse_mode="HTML")
        mid = sent.message_id
        text = "new <b>story</b> &amp; <i>note</i>"
        assert (await editor.edit(READER, mid, text, photo=False)).outcome is EditOutcome.EDITED
        assert emulator.message(READER, mid).text == "new story & note"
        again = await editor.edit(READER, mid, text, photo=False)
        assert again.outcome is EditOutcome.UNCHANGED  # "message is not modified"
        missing = await editor.edit(READER, mid + 100, text, photo=False)
        assert missing.outcome is EditOutcome.GONE
        emulator.fail_next("editMessageText", error=too_many_requests(600))
        flood = await editor.edit(READER, mid, "x", photo=False)
        assert (flood.outcome, flood.retry_after) == (EditOutcome.RETRY_LATER, 600)
        emulator.fail_next("editMessageText", error=ApiError(502, "Bad Gateway"), times=2)
        assert (await editor.edit(READER, mid, "y", photo=False)).outcome is EditOutcome.EDITED
        assert emulator.message(READER, mid).text == "y"  # retried: an edit is idempotent
        emulator.fail_next(
            "editMessageText", error=ApiError(400, "Bad Request: message can't be edited")
        )
        assert (await editor.edit(READER, mid, "z", photo=False)).outcome is EditOutcome.FAILED

        old = await app.bot.send_message(READER, "aged")
        emulator.age_message(READER, old.message_id, 48 * 3600)
        assert (await editor.delete(READER, old.message_id)).outcome is EditOutcome.TOO_OLD
        assert (await editor.delete(READER, mid)).outcome is EditOutcome.EDITED
        assert (await editor.delete(READER, mid)).outcome is EditOutcome.GONE
        blocked = await app.bot.send_message(READER + 1, "hi")
        emulator.block(READER + 1)
        gone = await editor.edit(READER + 1, blocked.message_id, "edited", photo=False)
        assert gone.outcome is EditOutcome.GONE
        assert [m.text for m in emulator.messages(READER)] == ["aged"]
