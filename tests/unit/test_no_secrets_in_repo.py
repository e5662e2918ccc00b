"""No file in the repository holds a bot token: not the README, not a benchmark's results,
not a saved log. Test code may name the fake Bot API's made-up tokens; nothing else may."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
# Telegram's form: the bot's numeric id, a colon, then the secret (35 characters today)
TOKEN = re.compile(r"(?<![0-9])\d{5,12}:[A-Za-z0-9_-]{10,}")
# where a made-up token may appear: test code, the fake Bot API, the terminal chat's
# placeholder (bot/app.py: LOCAL_TOKEN, which no server accepts)
ALLOWED = ("tests/", "fakebotapi/")
PLACEHOLDERS = {"1000000:local-terminal-chat"}


def tracked_files() -> list[str]:
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    return [name for name in done.stdout.decode().split("\0") if name]


def test_no_tracked_file_outside_the_test_kit_holds_a_token() -> None:
    found = []
    files = tracked_files()
    assert len(files) > 50  # the listing worked
    for name in files:
        if name.startswith(ALLOWED):
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for match in TOKEN.finditer(text):
            if match.group() not in PLACEHOLDERS:
                found.append(f"{name}: {match.group()[:12]}…")
    assert found == []


def test_the_pattern_finds_a_token_in_a_results_file() -> None:
    """The scan above would notice a token that a benchmark wrote into its results."""
    sample = '{"base_url": "http://127.0.0.1:8081/bot123456789:AAE-fake_secret-for-this-test"}'
    assert TOKEN.search(sample)
    assert not TOKEN.search('"2026-11-24T10:31:06+00:00", "127.0.0.1:5432"')
