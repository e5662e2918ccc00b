"""Scheduled jobs: the digest tick and feed polling. Each opens its own sessions."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from bot.context import NewsContext
from bot.corrections import tell_rewritten
from bot.forums import TelegramTopicMaker
from bot.sender import TelegramSender
from digests.delivery import RoundReport, delivery_config, queue_depth, run_digest_round
from digests.feedstate import Backoff
from digests.ingest import ingest_sources

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
            backoff=Backoff(base=timedelta(minutes=svc.settings.feed_poll_minutes)),
            respect_backoff=True,
            on_report=svc.metrics.observe_feed,
        )
        await tell_rewritten(
            context.bot, svc.sessions, [i for report in reports for i in report.rewritten]
        )
