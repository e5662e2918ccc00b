"""The one wiring point: build the python-telegram-bot Application from settings."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from functools import partial

from telegram import Bot, BotCommand, BotCommandScopeChat
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    InlineQueryHandler,
    JobQueue,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot import jobs
from bot.context import NewsApp, NewsContext, context_types
from bot.handlers import corrections, editor, forums, inline, readers
from bot.handlers.common import Handler
from bot.metrics import Metrics
from bot.transport.budget import SharedBudget, bot_id_from_token
from bot.transport.edits import TelegramEditor
from bot.transport.http import CONNECTIONS, PAID_CONNECTIONS, LeanRequest
from bot.transport.ratelimit import PriorityRateLimiter
from bot.transport.sender import TelegramSender
from bot.transport.topics import TelegramTopicMaker
from bot.updates import ChatOrderedUpdateProcessor
from digests import i18n
from digests.db import instance_name, make_engine, make_session_factory, upgrade
from digests.delivery.config import delivery_config
from digests.newsroom.actions import ActionRunner
from digests.newsroom.push import PushRunner
from digests.settings import Settings
from digests.ui import texts
from digests.ui.buttons import (
    ACTION_PATTERN,
    DIGEST_PATTERN,
    KEYWORD_PATTERN,
    LANGUAGE_PATTERN,
    PAGE_PATTERN,
    PUSH_PATTERN,
    SEARCH_PATTERN,
    SETTINGS_PATTERN,
)

log = logging.getLogger(__name__)

# Used when running without a token (the terminal chat, whose request class accepts any token).
LOCAL_TOKEN = "1000000:local-terminal-chat"  # noqa: S105 - not a secret


# The limits are ceilings: pace a little under them, as requests spaced exactly at the limit
# can arrive closer together than they left and count as one too many in Telegram's window.
PACE = 0.97
# The shared bot-wide budget is a moving window of whole sends per second (28 of Telegram's
# 30): a window lets its sends cluster where one second meets the next, and sends from
# several processes reach Telegram with more jitter than one process's evenly paced ones.
SHARED_PACE = 0.94


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_application(
    settings: Settings,
    *,
    request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None,
    clock: Callable[[], datetime] = utcnow,
    with_jobs: bool = True,
) -> NewsApp:
    """Create the Application with its handlers, error handler and lifecycle hooks."""
    token = (
        settings.telegram_bot_token.get_secret_value()
        if settings.telegram_bot_token is not None
        else LOCAL_TOKEN
    )
    metrics = Metrics()
    budget = shared_budget(settings, token)
    limiter = PriorityRateLimiter(
        overall_per_sec=settings.send_rate_limit * PACE,
        private_per_sec=settings.private_chat_rate_limit * PACE,
        private_burst=settings.private_chat_burst,
        group_per_min=settings.group_rate_limit_per_min * PACE,
        paid_broadcast=settings.paid_broadcast,
        shared=budget,
    )
    metrics.watch_limiter(limiter)
    builder = (
        ApplicationBuilder()
        .token(token)
        .base_url(settings.telegram_base_url)
        .rate_limiter(limiter)
        .context_types(context_types(settings, clock, metrics))
        .job_queue(JobQueue[NewsContext]())
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    # Updates of different chats run concurrently, each chat's in order (bot/updates.py).
    builder = builder.concurrent_updates(
        ChatOrderedUpdateProcessor(settings.max_concurrent_updates, observe=metrics.observe_update)
    )
    if request is not None:
        builder = builder.request(request)
    else:
        # A few connections carry 30 messages/s. Paid broadcasts (up to 1000/s) need about
        # rate x round trip requests in flight (1000/s x 50-80 ms is 50-80), and the engine
        # has up to four batches of 50 out at once (digests.delivery.config.delivery_config).
        connections = PAID_CONNECTIONS if settings.paid_broadcast else CONNECTIONS
        builder = builder.request(LeanRequest(connections=connections, pool_timeout=30.0))
    if updates_request is not None:
        builder = builder.get_updates_request(updates_request)
    application = builder.build()
    application.bot_data.shared_budget = budget
    register_handlers(application)
    if with_jobs:
        schedule_jobs(application)
    return application


def shared_budget(settings: Settings, token: str) -> SharedBudget | None:
    """With REDIS_URL, one send budget in Redis for every instance of this bot (no I/O yet)."""
    if settings.redis_url is None:
        return None
    return SharedBudget.from_url(
        settings.redis_url.get_secret_value(),
        bot_id=bot_id_from_token(token),
        overall_per_sec=settings.send_rate_limit * SHARED_PACE,
        private_per_sec=settings.private_chat_rate_limit * PACE,
        private_burst=settings.private_chat_burst,
        group_per_min=settings.group_rate_limit_per_min * PACE,
        even=True,
    )


READER_COMMANDS_IN_CHANNELS = (
    "start",
    "help",
    "sections",
    "subscribe",
    "unsubscribe",
    "latest",
    "search",
    "digest",
    "timezone",
    "alerts",
    "language",
    "follow",
    "mute",
    "unfollow",
    "unmute",
    "keywords",
    "settings",
    "stop",
)
"""Commands a channel's administrators may post in it (editors' commands need a user)."""


COMMANDS: tuple[tuple[str, Handler], ...] = (
    ("start", readers.start),
    ("help", readers.help_command),
    ("sections", readers.sections_command),
    ("subscribe", readers.subscribe_command),
    ("unsubscribe", readers.unsubscribe_command),
    ("latest", readers.latest_command),
    ("search", readers.search_command),
    ("digest", readers.digest_command),
    ("timezone", readers.timezone_command),
    ("alerts", readers.alerts_command),
    ("settings", readers.settings_command),
    ("stop", readers.stop_command),
    ("language", readers.language_command),
    ("follow", readers.follow_command),
    ("mute", readers.mute_command),
    ("unfollow", readers.unfollow_command),
    ("unmute", readers.unmute_command),
    ("keywords", readers.keywords_command),
    ("breaking", editor.breaking_command),
    ("stats", editor.stats_command),
    ("correct", corrections.correct_command),
    ("topic", forums.topic_command),
)
"""Every command and its handler, in the order they are registered."""


def register_handlers(application: NewsApp) -> None:
    """Each handler once, in order (within a group the first matching handler runs)."""
    commands = dict(COMMANDS)
    for name, callback in COMMANDS:
        application.add_handler(CommandHandler(name, callback))
    # the same reader commands posted in a channel by its administrators
    for name in READER_COMMANDS_IN_CHANNELS:
        application.add_handler(
            CommandHandler(
                name,
                forums.channel_command(commands[name]),
                filters=filters.UpdateType.CHANNEL_POST,
            )
        )
    application.add_handler(
        ChatMemberHandler(forums.bot_membership, ChatMemberHandler.MY_CHAT_MEMBER)
    )
    # buttons, routed by the prefix of their data (digests/ui/buttons.py)
    application.add_handler(CallbackQueryHandler(readers.page_button, pattern=PAGE_PATTERN))
    application.add_handler(CallbackQueryHandler(readers.search_button, pattern=SEARCH_PATTERN))
    application.add_handler(CallbackQueryHandler(readers.settings_button, pattern=SETTINGS_PATTERN))
    application.add_handler(CallbackQueryHandler(readers.digest_button, pattern=DIGEST_PATTERN))
    application.add_handler(CallbackQueryHandler(editor.push_button, pattern=PUSH_PATTERN))
    application.add_handler(CallbackQueryHandler(corrections.action_button, pattern=ACTION_PATTERN))
    application.add_handler(CallbackQueryHandler(readers.language_button, pattern=LANGUAGE_PATTERN))
    application.add_handler(CallbackQueryHandler(readers.keyword_button, pattern=KEYWORD_PATTERN))
    application.add_handler(CallbackQueryHandler(readers.stale_button))
    # `@bot words` in any chat (inline mode must be on: @BotFather /setinline)
    application.add_handler(InlineQueryHandler(inline.inline_query))
    # same group as the commands: only the first matching handler of a group runs
    application.add_handler(MessageHandler(filters.COMMAND, readers.unknown_command))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, readers.plain_text))
    application.add_error_handler(readers.on_error)


def schedule_jobs(application: NewsApp) -> None:
    """Digest tick every 30 s and feed polling every FEED_POLL_MINUTES, on PTB's JobQueue."""
    queue = application.job_queue
    if queue is None:
        raise RuntimeError("python-telegram-bot was installed without its job-queue extra")
    settings = application.bot_data.settings
    queue.run_repeating(jobs.digest_tick, interval=jobs.TICK_SECONDS, first=1, name="digests")
    queue.run_repeating(
        editor.resume_pushes, interval=jobs.TICK_SECONDS, first=1, name="resume-pushes"
    )
    queue.run_repeating(jobs.alert_tick, interval=jobs.TICK_SECONDS, first=1, name="alerts")
    queue.run_repeating(
        corrections.resume_actions, interval=jobs.TICK_SECONDS, first=1, name="resume-actions"
    )
    if settings.feed_urls:
        queue.run_repeating(
            jobs.poll_feeds, interval=settings.feed_poll_minutes * 60, first=2, name="feeds"
        )


async def _post_init(application: NewsApp) -> None:
    svc = application.bot_data
    svc.engine = make_engine(svc.settings.database_url, name=instance_name())
    await upgrade(svc.engine)
    svc.session_factory = make_session_factory(svc.engine)
    svc.push_runner = PushRunner(
        svc.session_factory,
        TelegramSender(application.bot, observe=svc.metrics.observe_send),
        clock=lambda: svc.clock(),  # the services' clock may be replaced (tests do)
        config=delivery_config(svc.settings),
        on_progress=editor.progress_shower(application.bot),
        stopping=svc.stopping,
        topics=TelegramTopicMaker(application.bot),
        spawn=application.create_task,  # the application waits for pushes at shutdown
    )
    svc.action_runner = ActionRunner(
        svc.session_factory,
        TelegramEditor(application.bot),
        clock=lambda: svc.clock(),
        on_progress=corrections.progress_shower(application.bot),
        stopping=svc.stopping,
    )
    await set_menus(application.bot, svc.settings.admin_ids)


async def set_menus(bot: Bot, admin_ids: Iterable[int]) -> None:
    """The command menu, description and short description in each language (English is the
    default for every other language), and each editor's own menu with /breaking, /stats and
    /correct. Telegram refusing one (an editor who never opened the bot: chat not found) is
    logged; the bot starts anyway."""
    for language in i18n.LANGUAGES:
        code = None if language == i18n.SOURCE else language
        with i18n.use(language):
            reader = [BotCommand(name, text) for name, text in texts.commands()]
            editor = [BotCommand(name, text) for name, text in texts.commands(admin=True)]
            description, short = texts.bot_description(), texts.bot_short_description()
        calls: list[tuple[str, Callable[[], Awaitable[bool]]]] = [
            ("commands", partial(bot.set_my_commands, reader, language_code=code)),
            ("description", partial(bot.set_my_description, description, language_code=code)),
            (
                "short description",
                partial(bot.set_my_short_description, short, language_code=code),
            ),
        ]
        calls += [
            (
                f"editor {admin_id}'s commands",
                partial(
                    bot.set_my_commands,
                    editor,
                    scope=BotCommandScopeChat(admin_id),
                    language_code=code,
                ),
            )
            for admin_id in admin_ids
        ]
        for what, call in calls:
            try:
                await call()
            except TelegramError as exc:
                log.warning("could not set the %s (%s): %s", what, language, exc)


async def _post_shutdown(application: NewsApp) -> None:
    svc = application.bot_data
    if svc.shared_budget is not None:
        await svc.shared_budget.aclose()
    if svc.engine is not None:
        await svc.engine.dispose()
        svc.engine = None
        svc.session_factory = None
