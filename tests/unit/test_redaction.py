"""No secret leaves the process: log lines, tracebacks and the one line a fatal error prints."""

from __future__ import annotations

import logging
import sys

import pytest

from bot import cli
from digests.settings import load_settings

TOKEN = "123456:AAE-secret-part-of-the-token"
DB_PASSWORD = "db p@ss/word"
DATABASE_URL = "postgresql://newsbot:db%20p%40ss%2Fword@127.0.0.1:1/news"
REDIS_URL = "redis://:redis-secret@127.0.0.1:6379/0"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)


def leaks(text: str) -> list[str]:
    pieces = [TOKEN, "AAE-secret-part-of-the-token", DB_PASSWORD, "db%20p%40ss%2Fword"]
    return [piece for piece in [*pieces, "redis-secret"] if piece in text]


@pytest.mark.usefixtures("secret_env")
def test_log_lines_and_their_tracebacks_are_redacted() -> None:
    formatter = cli.RedactingFormatter("%(message)s", cli.secrets_of(load_settings()))
    try:
        raise RuntimeError(f"https://api.telegram.org/bot{TOKEN}/getMe failed for {DATABASE_URL}")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "token %s", (TOKEN,), sys.exc_info()
        )
    text = formatter.format(record)
    assert "Traceback" in text and "<redacted>" in text
    assert leaks(text) == []


@pytest.mark.usefixtures("secret_env")
def test_an_unexpected_fatal_error_is_one_line_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def explode(_settings: object) -> int:
        raise RuntimeError(f"InvalidToken: the token {TOKEN} was rejected; {REDIS_URL}")

    monkeypatch.setattr(cli, "_db_upgrade", explode)
    assert cli.main(["db", "upgrade"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("newsbot: unexpected error: RuntimeError")
    assert "Traceback" not in err
    assert leaks(err) == []
