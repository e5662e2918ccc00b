"""The services a handler reaches through its context: one object, typed end to end.

python-telegram-bot keeps one `bot_data` object per application and hands it to every
handler and job as `context.bot_data`. Ours is `Services`, so `context.bot_data.sessions`
is checked by mypy like any other attribute.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from sqlalchemy.ext.asyncio import AsyncEngine
from telegram.ext import Application, CallbackContext, ContextTypes, ExtBot, JobQueue

from bot.inline_cache import TTLCache
from bot.metrics import Metrics
from bot.transport.budget import SharedBudget
from bot.transport.ratelimit import PriorityArg
from bot.transport.shown import ShownMessages
from digests.db import SessionFactory
from digests.newsroom.actions import ActionRunner
from digests.newsroom.push import PushRunner
from digests.settings import Settings
from digests.ui.shapes import Defaults


@dataclass
class Services:
    settings: Settings
    clock: Callable[[], datetime]
    engine: AsyncEngine | None = None
    session_factory: SessionFactory | None = None
    push_runner: PushRunner | None = None
    action_runner: ActionRunner | None = None  # corrections and withdrawals of sent pushes
    metrics: Metrics = field(default_factory=Metrics)
    shared_budget: SharedBudget | None = None
    # a digest round or feed poll still running makes the next tick's a no-op
    digest_round: asyncio.Lock = field(default_factory=asyncio.Lock)
    feed_poll: asyncio.Lock = field(default_factory=asyncio.Lock)
    alert_round: asyncio.Lock = field(default_factory=asyncio.Lock)  # keyword alerts
    # set when the process begins to stop: deliveries claim no more rows
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # what the bot's edits made its messages show, for presses that carry an older copy
    shown: ShownMessages = field(default_factory=ShownMessages)
    # inline mode's answers of the last few seconds, by words and offset (bot/handlers/inline.py)
    inline_cache: TTLCache = field(default_factory=TTLCache)

    @property
    def sessions(self) -> SessionFactory:
        if self.session_factory is None:
            raise RuntimeError("the database is not open yet (post_init has not run)")
        return self.session_factory

    @property
    def pushes(self) -> PushRunner:
        if self.push_runner is None:
            raise RuntimeError("the database is not open yet (post_init has not run)")
        return self.push_runner

    @property
    def actions(self) -> ActionRunner:
        if self.action_runner is None:
            raise RuntimeError("the database is not open yet (post_init has not run)")
        return self.action_runner

    @property
    def defaults(self) -> Defaults:
        return Defaults(
            timezone=self.settings.default_timezone,
            digest_time=self.settings.default_digest_time,
        )

    def is_editor(self, user_id: int | None) -> bool:
        """May this user push breaking news and see statistics (ADMIN_IDS)?"""
        return user_id is not None and user_id in self.settings.admin_ids


_Data: TypeAlias = dict[Any, Any]
NewsContext: TypeAlias = CallbackContext[ExtBot[PriorityArg], _Data, _Data, Services]
"""What every handler and job of the bot receives."""
NewsApp: TypeAlias = Application[
    ExtBot[PriorityArg], NewsContext, _Data, _Data, Services, JobQueue[NewsContext]
]
"""The bot's Application."""


def context_types(
    settings: Settings, clock: Callable[[], datetime], metrics: Metrics
) -> ContextTypes[NewsContext, _Data, _Data, Services]:
    """Context types whose `bot_data` is this application's `Services`.

    python-telegram-bot creates `bot_data` by calling its class with no arguments, so the
    class handed over is a subclass that already knows its settings, clock and metrics.
    """

    class AppServices(Services):
        def __init__(self) -> None:
            super().__init__(settings=settings, clock=clock, metrics=metrics)

    bot_data: type[Services] = AppServices
    return ContextTypes(bot_data=bot_data)
