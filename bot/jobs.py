"""Scheduled jobs: the digest tick, feed polling and keyword alerts. Each opens its own
sessions."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ExtBot

from bot.context import NewsContext, Services
from bot.transport.markup import markup
from bot.transport.replies import NO_PREVIEW
from bot.transport.sender import TelegramSender
from bot.transport.topics import TelegramTopicMaker
from digests.db import SessionFactory
from digests.delivery.config import delivery_config
from digests.delivery.engine import queue_depth
from digests.delivery.ports import RoundReport
from digests.digest.alerts import run_alert_round
from digests.digest.rounds import run_digest_round
from digests.feeds.ingest import ingest_sources
from digests.feeds.state import Backoff
from digests.newsroom import corrections
from digests.newsroom import texts as newsroom_texts

log = logging.getLogger(__name__)

TICK_SECONDS = 30


async def digest_tick(context: NewsContext) -> None:
    """Send every digest that is due; a round still running makes this tick a no-op."""
    svc = context.bot_data
    if svc.digest_round.locked() or svc.stopping.is_set():
        return
    async with svc.digest_round:
        started = time.monotonic()
        report = await run_digest_round(
            svc.sessions,
            TelegramSender(context.bot, observe=svc.metrics.observe_send),
            now=svc.clock,
            config=delivery_config(svc.settings),
            stopping=svc.stopping,
            topics=TelegramTopicMaker(context.bot),
        )
        for kind, depth in (await queue_depth(svc.sessions)).items():
            svc.metrics.queue_depth.labels(kind.value).set(depth)
        svc.metrics.tick_done(time.monotonic() - started)
    _log_round(report)


def _log_round(report: RoundReport) -> None:
    if report.interrupted:
        log.warning(
            "digest round: %d sends were interrupted by a crash (kill -9, power loss) and "
            "may or may not have arrived: reported uncertain, not resent",
            report.interrupted,
        )
    if report.scheduled or report.sent or report.failed or report.blocked or report.uncertain:
        log.info(
            "digest round: %d scheduled, %d sent, %d empty, %d blocked, %d failed, "
            "%d retry later, %d uncertain, %d stale skipped",
            report.scheduled,
            report.sent,
            report.empty,
            report.blocked,
            report.failed,
            report.retry_later,
            report.uncertain,
            report.skipped_stale,
        )


async def poll_feeds(context: NewsContext) -> None:
    """Ingest FEED_URLS so new stories reach the next digests with no manual step."""
    svc = context.bot_data
    if svc.feed_poll.locked():
        return
    async with svc.feed_poll:
        reports = await ingest_sources(
            svc.settings.feed_urls,
            session_factory=svc.sessions,
            now=svc.clock,
            category_map=svc.settings.categories,
            default_section=svc.settings.default_section,
            max_sections=svc.settings.max_sections,
            feeds=svc.settings.feed_urls,
            backoff=Backoff(base=timedelta(minutes=svc.settings.feed_poll_minutes)),
            respect_backoff=True,
            on_report=svc.metrics.observe_feed,
        )
        await tell_rewritten(
            context.bot, svc.sessions, [i for report in reports for i in report.rewritten]
        )
    await alert_tick(context)


async def alert_tick(context: NewsContext) -> None:
    """Keyword alerts: queue those that stories stored lately call for and send every due
    one; a round still running makes this a no-op (the next tick picks up the rest)."""
    await run_alerts(context.bot, context.bot_data)


async def run_alerts(bot: ExtBot[Any], svc: Services) -> None:
    """One keyword-alert round (from the tick, after feed polling, after an API story)."""
    if svc.alert_round.locked() or svc.stopping.is_set():
        return
    async with svc.alert_round:
        done = await run_alert_round(
            svc.sessions,
            TelegramSender(bot, observe=svc.metrics.observe_send),
            now=svc.clock,
            config=delivery_config(svc.settings),
            per_hour=svc.settings.max_keyword_alerts_per_hour,
            stopping=svc.stopping,
        )
    if done.queued.queued or done.queued.over_cap or done.report.sent or done.report.failed:
        log.info(
            "keyword alerts: %d queued, %d left to the digest by the hourly cap, %d sent, "
            "%d blocked, %d failed, %d uncertain",
            done.queued.queued,
            done.queued.over_cap,
            done.report.sent,
            done.report.blocked,
            done.report.failed,
            done.report.uncertain,
        )


async def tell_rewritten(bot: Bot, sessions: SessionFactory, article_ids: list[int]) -> None:
    """Tell the editor of each finished push of these stories that the feed changed it,
    with a Correct button (a push made through the HTTP API has no editor's chat)."""
    async with sessions() as session:
        pushes = [
            (push.id, push.admin_chat_id, push.article.title)
            for push in await corrections.pushes_of(session, article_ids)
            if push.admin_chat_id is not None
        ]
    for push_id, chat_id, title in pushes:
        reply = newsroom_texts.story_changed(push_id, title)
        try:
            await bot.send_message(
                chat_id,
                reply.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(reply.buttons),
                link_preview_options=NO_PREVIEW,
            )
        except TelegramError as exc:
            log.warning("could not tell chat %s that push %s changed: %s", chat_id, push_id, exc)
