"""Settings: defaults, parsing, and one clear line naming the variable for bad values."""

from __future__ import annotations

import pytest

from digests.db import async_url
from digests.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_BASE_URL",
        "DATABASE_URL",
        "ADMIN_IDS",
        "DEFAULT_TIMEZONE",
        "DEFAULT_DIGEST_TIME",
        "FEED_URLS",
        "FEED_POLL_MINUTES",
        "CATEGORY_MAP",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_defaults() -> None:
    settings = load_settings()
    assert settings.telegram_bot_token is None
    assert settings.telegram_base_url == "https://api.telegram.org/bot"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.default_timezone == "UTC"
    assert settings.default_digest_time == "08:00"
    assert settings.feed_poll_minutes == 10
    assert settings.admin_ids == ()


def test_lists_and_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:secret-token")
    monkeypatch.setenv("ADMIN_IDS", "42, 7")
    monkeypatch.setenv("FEED_URLS", "https://a.example/rss, http://b.example/atom")
    monkeypatch.setenv("CATEGORY_MAP", "Soccer=Sports")
    settings = load_settings()
    assert settings.admin_ids == (42, 7)
    assert settings.feed_urls == ("https://a.example/rss", "http://b.example/atom")
    assert settings.categories == {"soccer": "Sports"}
    assert "secret-token" not in repr(settings)
    assert "secret-token" not in str(settings.model_dump())


def test_max_sections_goes_up_to_200_now_that_the_chooser_pages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MAX_SECTIONS", raising=False)
    assert load_settings().max_sections == 40
    monkeypatch.setenv("MAX_SECTIONS", "200")
    assert load_settings().max_sections == 200


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    Path(str(tmp_path), ".env").write_text("DEFAULT_TIMEZONE=Europe/Berlin\n")
    assert load_settings().default_timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DEFAULT_TIMEZONE", "Mars/Olympus", "DEFAULT_TIMEZONE"),
        ("DEFAULT_DIGEST_TIME", "25:99", "DEFAULT_DIGEST_TIME"),
        ("ADMIN_IDS", "12,abc", "ADMIN_IDS"),
        ("FEED_URLS", "not a url", "FEED_URLS"),
        ("TELEGRAM_BASE_URL", "ftp://x", "TELEGRAM_BASE_URL"),
        ("TELEGRAM_BASE_URL", "https://api.telegram.org", "must end in /bot"),
        ("TELEGRAM_BASE_URL", "http://127.0.0.1:8081/bot?x=1", "must end in /bot"),
        ("DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
        ("FEED_POLL_MINUTES", "0", "FEED_POLL_MINUTES"),
        ("CATEGORY_MAP", "novalue", "CATEGORY_MAP"),
        ("MAX_SECTIONS", "0", "MAX_SECTIONS"),
        ("MAX_SECTIONS", "201", "MAX_SECTIONS"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_a_base_url_may_name_a_local_bot_api_server() -> None:
    settings = load_settings(telegram_base_url="http://127.0.0.1:8081/bot/")
    assert settings.telegram_base_url == "http://127.0.0.1:8081/bot"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u:p@h:5/db", "postgresql+asyncpg://u:p@h:5/db"),
    ],
)
def test_plain_urls_get_async_drivers(url: str, expected: str) -> None:
    assert async_url(url) == expected
