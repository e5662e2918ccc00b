"""Backoff windows, URLs fit for labels, failing feeds in /stats and in the metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest

from bot.metrics import Metrics
from digests.feeds.ingest import IngestReport
from digests.feeds.state import MAX_BACKOFF, Backoff, public_url
from digests.newsroom.stats import FailingFeed, Stats
from digests.newsroom.texts import stats as render_stats
from digests.ui.render import MAX_MESSAGE
from fakebotapi.telegram_html import parse_html


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    backoff = Backoff(base=timedelta(minutes=10))
    assert [backoff.delay(n) for n in (0, 1, 2, 3)] == [
        timedelta(0),
        timedelta(minutes=10),
        timedelta(minutes=20),
        timedelta(minutes=40),
    ]
    assert backoff.delay(6) == timedelta(minutes=320)
    assert backoff.delay(7) == MAX_BACKOFF == timedelta(hours=6)
    assert backoff.delay(10_000) == MAX_BACKOFF


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://news.example/rss", "https://news.example/rss"),
        ("https://bob:pw@news.example:8443/rss?key=abc#x", "https://news.example:8443/rss"),
        ("http://[::1]:8080/feed?token=t", "http://[::1]:8080/feed"),
    ],
)
def test_public_url_drops_credentials_and_query(url: str, shown: str) -> None:
    assert public_url(url) == shown


def stats_with(*failing: FailingFeed) -> Stats:
    return Stats(1, 0, [("World", 1, 3)], {}, list(failing))


def test_stats_without_failing_feeds_say_nothing_of_feeds() -> None:
    assert "Failing feeds" not in parse_html(render_stats(stats_with()))


def test_stats_show_each_failing_feed_escaped() -> None:
    at = datetime(2026, 11, 30, 12, 40, tzinfo=UTC)
    shown = parse_html(
        render_stats(
            stats_with(
                FailingFeed("https://a.example/rss?<b>", 3, "not a RSS/Atom feed: <html> & co", at),
                FailingFeed("https://b.example/feed", 1, "timed out after 20 s", None),
            )
        )
    )
    assert "Failing feeds\n" in shown
    assert (
        "• https://a.example/rss?<b>: 3 failures, next try 12:40 UTC: "
        "not a RSS/Atom feed: <html> & co"
    ) in shown
    assert "• https://b.example/feed: 1 failure: timed out after 20 s" in shown


def test_many_long_failing_feeds_stay_within_one_message() -> None:
    feeds = [
        FailingFeed("https://x.example/" + "p" * 1990, n, "e" * 5000, None) for n in range(1, 30)
    ]
    text = render_stats(stats_with(*feeds))
    assert len(parse_html(text)) <= MAX_MESSAGE
    assert "… and 21 more" in text


def test_feed_failures_gauge_labels_hide_credentials() -> None:
    metrics = Metrics()
    metrics.observe_feed(
        IngestReport(source="https://u:hunter2@a.example/rss?key=s3cret", error="x", failures=4)
    )
    metrics.observe_feed(IngestReport(source="/srv/feeds/local.xml", error="file not found"))
    metrics.observe_feed(IngestReport(source="https://b.example/rss", not_modified=True))
    text = generate_latest(metrics.registry).decode()
    assert 'newsbot_feed_failures{feed="https://a.example/rss"} 4.0' in text
    assert 'newsbot_feed_failures{feed="/srv/feeds/local.xml"} 1.0' in text
    assert 'newsbot_feed_failures{feed="https://b.example/rss"} 0.0' in text
    assert "hunter2" not in text and "s3cret" not in text
