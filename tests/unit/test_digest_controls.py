"""The buttons under every digest, and how a chat's rhythm and pause read in its settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digests.delivery.ports import Text
from digests.digest import texts as digest_texts
from digests.digest.rounds import with_controls
from digests.models import Chat, ChatKind
from digests.readers import texts as readers_texts
from digests.readers.chats import pause_digests, resume_digests, set_rhythm, stop_digests
from digests.schedule import DigestPlan, Rhythm, parse_hhmm, parse_plan
from digests.ui.buttons import DigestControl, SettingsChoice, decode
from digests.ui.render import MAX_MESSAGE, visible_length

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def chat(**values: object) -> Chat:
    fields: dict[str, object] = {
        "telegram_id": 1,
        "kind": ChatKind.PRIVATE,
        "timezone": "Europe/Berlin",
        "digest_time": "08:00",
        "rhythm": Rhythm.DAILY,
        "alerts": True,
        "active": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Chat(**(fields | values))


def test_buttons_go_under_the_last_message_of_a_split_digest_only() -> None:
    parts = with_controls(["one", "two", "three"])
    assert parts[:2] == ["one", "two"]
    last = parts[2]
    assert isinstance(last, Text) and last.html == "three"
    pressed = [decode(b.data or "") for row in last.buttons for b in row]
    assert pressed == [DigestControl.PAUSE, DigestControl.SECTIONS, DigestControl.STOP]
    assert [b.text for row in last.buttons for b in row] == [
        "⏸ Pause for a week",
        "Sections",
        "🛑 Stop digests",
    ]
    assert with_controls([]) == []


def test_each_rhythm_reads_plainly() -> None:
    c = chat()
    assert readers_texts.rhythm_text(c) == "daily at 08:00"
    set_rhythm(c, DigestPlan(Rhythm.TWICE_DAILY, parse_hhmm("08:00")), now=NOW)
    assert readers_texts.rhythm_text(c) == "twice a day at 08:00 and 20:00"
    set_rhythm(c, DigestPlan(Rhythm.WEEKDAYS, parse_hhmm("07:30")), now=NOW)
    assert readers_texts.rhythm_text(c) == "on weekdays (Mon-Fri) at 07:30"
    set_rhythm(c, DigestPlan(Rhythm.WEEKLY, parse_hhmm("09:00"), weekday=0), now=NOW)
    assert readers_texts.rhythm_text(c) == "weekly on Monday at 09:00"
    assert c.next_digest_at == datetime(2026, 6, 8, 7, 0, tzinfo=UTC)
    stop_digests(c, now=NOW)
    assert readers_texts.rhythm_text(c) == "off"


def test_a_pause_shows_in_settings_with_a_resume_button_until_it_ends() -> None:
    c = chat()
    c.next_digest_at = datetime(2026, 6, 2, 6, 0, tzinfo=UTC)
    pause_digests(c, now=NOW)
    assert c.paused_until == NOW + timedelta(days=7)
    assert c.next_digest_at == datetime(2026, 6, 9, 6, 0, tzinfo=UTC)
    shown = readers_texts.settings(c, [], now=NOW)
    assert "Paused until Mon 08 Jun 2026" in shown.text
    assert [b.data for row in shown.buttons for b in row].count("C:resume") == 1
    assert decode("C:resume") is SettingsChoice.RESUME
    # a week later the pause is over: nothing about it shows
    assert "Paused" not in readers_texts.settings(c, [], now=NOW + timedelta(days=8)).text
    assert resume_digests(c, now=NOW + timedelta(hours=1))
    assert c.paused_until is None
    assert c.next_digest_at == datetime(2026, 6, 2, 6, 0, tzinfo=UTC)
    assert not resume_digests(c, now=NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    "words", [["weekly", "x" * 5000], ["y" * 5000], ["twice", "8:00", "z" * 5000]]
)
def test_a_bad_digest_command_is_answered_within_one_message_however_long(
    words: list[str],
) -> None:
    with pytest.raises(ValueError, match="is not a day|is neither|is not a time") as problem:
        parse_plan(words, current=parse_hhmm("08:00"))
    answer = digest_texts.bad_digest(str(problem.value))
    assert visible_length(answer) < 1000 < MAX_MESSAGE
    assert "Nothing changed." in answer
