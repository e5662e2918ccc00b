"""The services a handler reaches through the application: one place, typed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.ext import Application, ContextTypes

from bot.budget import SharedBudget
from bot.metrics import Metrics
from digests.db import SessionFactory
from digests.readers import Defaults
from digests.settings import Settings

SERVICES = "services"

NewsApp: TypeAlias = Application[Any, Any, Any, Any, Any, Any]
"""The bot's Application (python-telegram-bot's default context and data types)."""


@dataclass
class Services:
    settings: Settings
    clock: Callable[[], datetime]
    engine: AsyncEngine | None = None
    session_factory: SessionFactory | None = None
    metrics: Metrics = field(default_factory=Metrics)
    shared_budget: SharedBudget | None = None
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def sessions(self) -> SessionFactory:
        if self.session_factory is None:
            raise RuntimeError("the database is not open yet (post_init has not run)")
        return self.session_factory

    @property
    def defaults(self) -> Defaults:
        return Defaults(
            timezone=self.settings.default_timezone,
            digest_time=self.settings.default_digest_time,
        )

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.settings.admin_ids


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    found = context.bot_data[SERVICES]
    assert isinstance(found, Services)
    return found


def app_services(application: NewsApp) -> Services:
    found = application.bot_data[SERVICES]
    assert isinstance(found, Services)
    return found
