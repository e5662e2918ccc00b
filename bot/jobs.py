"""Scheduled jobs: the digest tick and feed polling. Each opens its own sessions."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from telegram.ext import ContextTypes

from bot.context import services
from bot.sender import TelegramSender
from digests.delivery import DeliveryConfig, RoundReport, queue_depth, run_digest_round
from digests.ingest import ingest_sources
from digests.settings import Settings

log = logging.getLogger(__name__)

TICK_SECONDS = 30
_ROUND_LOCK = "digest-round-lock"
_FEED_LOCK = "feed-poll-lock"


def delivery_config(settings: Settings) -> DeliveryConfig:
    """The engine's settings. A batch is about a third of a second of sending at the overall
    rate (10 at 30/s): few rows are in flight, so few are left uncertain by a crash; with no
    overall limit (a local Bot API server, paid broadcasts) batches of 25 go faster."""
    rate = 1000.0 if settings.paid_broadcast else settings.send_rate_limit
    batch = min(25, max(5, int(rate / 3))) if rate > 0 else 25
    return DeliveryConfig(
        grace=timedelta(hours=settings.digest_grace_hours),
        per_section=settings.digest_stories_per_section,
        batch=batch,
    )


def _lock(store: dict[str, object], name: str) -> asyncio.Lock:
    lock = store.get(name)
    if not isinstance(lock, asyncio.Lock):
        lock = store[name] = asyncio.Lock()
    return lock


async def digest_tick(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send every digest that is due; a round still running makes this tick a no-op."""
    svc = services(context)
    lock = _lock(svc.extras, _ROUND_LOCK)
    if lock.locked():
        return
    async with lock:
        started = time.monotonic()
        report = await run_digest_round(
            svc.sessions,
            TelegramSender(context.bot, observe=svc.metrics.observe_send),
            now=svc.clock,
            config=delivery_config(svc.settings),
        )
        for kind, depth in (await queue_depth(svc.sessions)).items():
            svc.metrics.queue_depth.labels(kind.value).set(depth)
        svc.metrics.tick_done(time.monotonic() - started)
    _log_round(report)


def _log_round(report: RoundReport) -> None:
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


async def poll_feeds(context: ContextTypes.DEFAULT_TYPE) -> None:
    """Ingest FEED_URLS so new stories reach the next digests with no manual step."""
    svc = services(context)
    lock = _lock(svc.extras, _FEED_LOCK)
    if lock.locked():
        return
    async with lock:
        await ingest_sources(
            svc.settings.feed_urls,
            session_factory=svc.sessions,
            now=svc.clock,
            category_map=svc.settings.categories,
            default_section=svc.settings.default_section,
        )
