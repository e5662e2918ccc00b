"""Prometheus metrics of one bot process, served at GET /metrics.

Each Application gets a registry of its own (not prometheus-client's global one), so tests
and benchmarks can run several bots in one process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.transport.ratelimit import Priority, PriorityRateLimiter
from digests.delivery.ports import Outcome, SendPriority
from digests.feeds.ingest import IngestReport
from digests.feeds.state import public_url

_KIND = {SendPriority.BREAKING: "breaking", SendPriority.BULK: "digest"}
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Counters and gauges the bot updates as it works."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sends = Counter(
            "newsbot_sends",
            "Digest and breaking deliveries by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.uncertain = Counter(
            "newsbot_uncertain_sends",
            "Deliveries that may or may not have reached Telegram (never resent), by kind",
            ["kind"],
            registry=self.registry,
        )
        self.updates = Counter(
            "newsbot_updates", "Updates handled, by type", ["type"], registry=self.registry
        )
        self.update_latency = Histogram(
            "newsbot_update_latency_seconds",
            "Seconds from an update reaching the bot to its handler finishing",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "newsbot_delivery_queue_depth",
            "Delivery rows waiting to be sent (PENDING), by kind, as of the last tick",
            ["kind"],
            registry=self.registry,
        )
        self.tick_lag = Gauge(
            "newsbot_tick_lag_seconds",
            "Seconds since the last digest tick finished (ticks run every 30 s)",
            registry=self.registry,
        )
        self.tick_seconds = Gauge(
            "newsbot_tick_duration_seconds",
            "How long the last digest tick took",
            registry=self.registry,
        )
        self.poller = Gauge(
            "newsbot_is_poller",
            "1 while this instance is the one polling Telegram for updates",
            registry=self.registry,
        )
        self.feed_failures = Gauge(
            "newsbot_feed_failures",
            "Failures in a row of each polled feed as of the last poll (0: it works); the "
            "label is the URL without user, password or query",
            ["feed"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "newsbot_api_requests",
            "Newsroom API requests by method, route (its template) and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.started = time.monotonic()
        self.last_tick: float | None = None
        self.is_poller = False
        self.tick_lag.set_function(self.seconds_since_tick)

    def seconds_since_tick(self) -> float:
        """Since the last finished tick, or since start when none has finished yet."""
        return time.monotonic() - (self.last_tick if self.last_tick is not None else self.started)

    def set_poller(self, polling: bool) -> None:
        self.is_poller = polling
        self.poller.set(1 if polling else 0)

    def tick_done(self, duration: float) -> None:
        self.last_tick = time.monotonic()
        self.tick_seconds.set(duration)

    def observe_update(self, kind: str, seconds: float) -> None:
        self.updates.labels(kind).inc()
        self.update_latency.observe(seconds)

    def observe_send(self, priority: SendPriority, outcome: Outcome) -> None:
        kind = _KIND.get(priority, "reply")
        self.sends.labels(kind, outcome.value).inc()
        if outcome is Outcome.UNCERTAIN:
            self.uncertain.labels(kind).inc()

    def observe_feed(self, report: IngestReport) -> None:
        # a file source keeps no count: its failure shows as 1
        failures = report.failures or (0 if report.ok else 1)
        self.feed_failures.labels(public_url(report.source)).set(failures)

    def watch_limiter(self, limiter: PriorityRateLimiter) -> None:
        self.registry.register(_LimiterCollector(limiter))


class _LimiterCollector(Collector):
    """Reads the rate limiter's counters at scrape time."""

    def __init__(self, limiter: PriorityRateLimiter) -> None:
        self.limiter = limiter

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = self.limiter.stats
        requests = CounterMetricFamily(
            "newsbot_bot_api_requests",
            "Bot API requests that went out through the rate limiter, by priority",
            labels=["priority"],
        )
        for priority in Priority:
            requests.add_metric([priority.name.lower()], stats.sent_by_priority[priority])
        yield requests
        yield CounterMetricFamily(
            "newsbot_telegram_429",
            "429 Too Many Requests answers from Telegram",
            value=stats.retry_after_count,
        )
        yield CounterMetricFamily(
            "newsbot_shared_budget_waits",
            "Sends that waited for the send budget shared with other instances (REDIS_URL)",
            value=stats.shared_waits + stats.shared_chat_waits,
        )
        yield GaugeMetricFamily(
            "newsbot_rate_limited_chats",
            "Chats the rate limiter is tracking right now",
            value=self.limiter.tracked_chats,
        )
