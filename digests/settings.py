"""Settings read once from the environment and `.env`, then passed down."""

from __future__ import annotations

import re
from datetime import time
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from digests.schedule import check_timezone, parse_hhmm
from digests.stories.naming import parse_category_map

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
_API_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{1,512}")  # what an Authorization: Bearer allows
API_TOKEN_MIN = 16


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the bot reads from its environment."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str = DEFAULT_BASE_URL
    database_url: str = "sqlite:///newsbot.db"
    admin_ids: Annotated[tuple[int, ...], NoDecode] = ()
    default_timezone: str = "UTC"
    default_digest_time: str = "08:00"
    feed_urls: Annotated[tuple[str, ...], NoDecode] = ()
    feed_poll_minutes: int = Field(default=10, ge=1, le=24 * 60)
    category_map: str = ""
    default_section: str = "General"
    # Sections made from feed categories at most; further categories go to DEFAULT_SECTION.
    # The section chooser pages its buttons (digests/readers/texts.py), so this is no longer bound
    # by Telegram's 100 buttons a message; 200 sections are 9 pages of the chooser.
    max_sections: int = Field(default=40, ge=1, le=200)
    digest_grace_hours: float = Field(default=6.0, ge=0)
    digest_stories_per_section: int = Field(default=5, ge=1, le=50)
    # /follow and /mute phrases a chat may have in all, and keyword alerts a chat gets an hour
    # at most (further matching stories wait for its digest)
    max_keywords_per_chat: int = Field(default=20, ge=1, le=40)
    max_keyword_alerts_per_hour: int = Field(default=5, ge=0, le=60)
    # a send found still in flight this long after it left belonged to a process that died:
    # it is reported uncertain (never resent); it must outlast a send's retries of 429s
    send_lease_seconds: int = Field(default=300, ge=30, le=86_400)
    send_rate_limit: float = Field(default=30.0, ge=0)
    private_chat_rate_limit: float = Field(default=1.0, ge=0)
    group_rate_limit_per_min: float = Field(default=20.0, ge=0)
    private_chat_burst: int = Field(default=3, ge=1, le=20)
    paid_broadcast: bool = False
    publisher_name: str = "The Newsroom"
    log_level: str = "INFO"
    max_concurrent_updates: int = Field(default=64, ge=1, le=10_000)
    webhook_url: str = ""
    webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    webhook_max_connections: int = Field(default=40, ge=1, le=100)
    http_host: str = "0.0.0.0"  # noqa: S104 - the bot's own server listens on every interface
    http_port: int = Field(default=8080, ge=0, le=65535)
    redis_url: SecretStr | None = None
    # bearer tokens of the publisher's HTTP API (comma-separated); no token, no API
    api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = ()

    @field_validator("telegram_bot_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("webhook_secret", "redis_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is None and info.data.get("webhook_url"):
            raise ValueError(
                "must be set when WEBHOOK_URL is: without it anyone who finds the URL could "
                "post forged updates"
            )
        # Telegram's rule for secret_token: 1-256 characters A-Z, a-z, 0-9, _ and -
        if value is not None and not _SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str) -> str:
        value = value.strip()
        if value and urlsplit(value).scheme != "https":
            raise ValueError(f"{value!r} is not an https URL (Telegram calls webhooks over HTTPS)")
        if value:
            _check_http_url(value)
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = urlsplit(value.get_secret_value()).scheme
            if scheme not in {"redis", "rediss", "unix"}:
                raise ValueError("expected redis://host:6379/0 (or rediss:// or unix://)")
        return value

    @field_validator("telegram_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        _check_http_url(value)
        value = value.rstrip("/")
        parts = urlsplit(value)
        if not parts.path.endswith("/bot") or parts.query or parts.fragment:
            # python-telegram-bot appends the token to it: without /bot the token would land
            # in the host name, and in the error that names the URL
            raise ValueError("must end in /bot, e.g. https://api.telegram.org/bot")
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme.split("+", 1)[0] not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError(
                "expected sqlite:///path or postgresql://user@host/dbname, "
                f"got {value.split('@')[-1]!r}"
            )
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        items = _split_csv(value)
        if isinstance(items, list):
            for item in items:
                if not re.fullmatch(r"-?\d+", str(item)):
                    raise ValueError(f"{item!r} is not a numeric Telegram user id")
            return tuple(int(item) for item in items)
        return items

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _parse_api_tokens(cls, value: object) -> object:
        items = _split_csv(value.get_secret_value() if isinstance(value, SecretStr) else value)
        if isinstance(items, list):
            for item in items:
                text = item.get_secret_value() if isinstance(item, SecretStr) else str(item)
                if len(text) < API_TOKEN_MIN or not _API_TOKEN.fullmatch(text):
                    # never echo the token: the message names only what is wrong with it
                    raise ValueError(
                        f"each token needs at least {API_TOKEN_MIN} characters of "
                        "A-Z a-z 0-9 . _ ~ + / = -"
                    )
            return tuple(
                SecretStr(str(i.get_secret_value() if isinstance(i, SecretStr) else i))
                for i in items
            )
        return items

    @field_validator("feed_urls", mode="before")
    @classmethod
    def _parse_feed_urls(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("feed_urls")
    @classmethod
    def _check_feed_urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            _check_http_url(url)
        return value

    @field_validator("default_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("default_digest_time")
    @classmethod
    def _check_digest_time(cls, value: str) -> str:
        return parse_hhmm(value).strftime("%H:%M")

    @field_validator("category_map")
    @classmethod
    def _check_category_map(cls, value: str) -> str:
        parse_category_map(value)
        return value

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
        return level

    @property
    def categories(self) -> dict[str, str]:
        return parse_category_map(self.category_map)

    @property
    def digest_time(self) -> time:
        return parse_hhmm(self.default_digest_time)

    @property
    def webhook_path(self) -> str:
        """The path of WEBHOOK_URL: where the bot's HTTP server takes Telegram's updates."""
        return urlsplit(self.webhook_url).path or "/"


def _check_http_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{url!r} is not an http(s) URL")


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable."""


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one clear line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]).upper() if error["loc"] else "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}")
        raise SettingsError("invalid setting " + "; ".join(lines)) from None
