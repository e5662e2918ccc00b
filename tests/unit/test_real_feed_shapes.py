"""Feeds as real publishers serve them (tests/data/feeds/real): what a reader sees of each,
and a differential check against feedparser's own reading of the same bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from digests.feeds.parse import FeedEntry, ParsedFeed, parse_feed
from digests.stories.naming import section_names, slugify

REAL = Path(__file__).parent.parent / "data" / "feeds" / "real"
FILES = sorted(path.name for path in REAL.glob("*.xml"))


def parsed(name: str, content_type: str | None = None) -> ParsedFeed:
    return parse_feed(
        (REAL / name).read_bytes(), source=f"https://x.example/{name}", content_type=content_type
    )


def by_title(feed: ParsedFeed, start: str) -> FeedEntry:
    (found,) = [entry for entry in feed.entries if entry.title.startswith(start)]
    return found


@pytest.mark.parametrize("name", FILES)
def test_every_story_feedparser_reads_is_kept_or_skipped_for_a_reason(name: str) -> None:
    ours = parsed(name)
    theirs = feedparser.parse((REAL / name).read_bytes())
    skipped_for_a_reason = {
        entry.get("link")
        for entry in theirs.entries
        if "#comment-" in (entry.get("id") or entry.get("link") or "")
        or "post-password-form" in str(entry.get("content") or "")
    }
    kept_links = [
        entry.get("link")
        for entry in theirs.entries
        if entry.get("link") not in skipped_for_a_reason
    ]
    assert len(ours.entries) == len(kept_links)
    for entry, theirs_entry in zip(
        ours.entries,
        [e for e in theirs.entries if e.get("link") not in skipped_for_a_reason],
        strict=True,
    ):
        if theirs_entry.get("title"):
            assert entry.title == " ".join(theirs_entry.title.split())
        if theirs_entry.get("published_parsed") and theirs_entry.published_parsed.tm_year > 1995:
            assert entry.published is not None
        assert entry.title  # never empty, never a bare URL standing in for a headline
        assert not entry.title.startswith("http")
        assert "&nbsp;" not in entry.summary and "&amp;" not in entry.summary


def test_feedburner_links_to_the_article_and_never_shows_its_pixel() -> None:
    feed = parsed("feedburner_techcrunch.xml")
    story = by_title(feed, "Startup raises")
    assert story.link == "https://techcrunch.com/2018/12/04/startup-raises-20m/"
    assert story.image_url == "https://techcrunch.com/wp-content/uploads/2018/12/grid.jpg?w=680"
    assert story.image_caption is None  # its alt only repeats the headline
    pixel_only = by_title(feed, "Only a pixel")
    assert pixel_only.image_url is None  # the 1x1 pixel and the share button are no photos
    assert section_names(story.categories, mapping={}, default="X") == ["Startups", "GKE"]


def test_blogger_share_buttons_and_icons_are_no_photo_and_entities_are_undone() -> None:
    story = by_title(parsed("blogger.xml"), "A walk")
    # the post's own thumbnail, not the share button or the edit icon
    assert story.image_url == "https://blogger.googleusercontent.com/img/b/R29v/s72-c/river.jpg"
    assert story.summary == "We walked. It rained."
    assert by_title(parsed("blogger.xml"), "No picture").image_url is None
    assert section_names(story.categories, mapping={}, default="X") == ["Society & Culture"]


def test_wordpress_in_russian_sections_teasers_emoji_and_protected_posts() -> None:
    feed = parsed("wordpress_ru.xml")
    assert [entry.title for entry in feed.entries] == ["Матч года", "Бюджет на 2019 год"]
    assert any("password" in warning for warning in feed.warnings)
    match, budget = feed.entries
    assert match.summary == "Команда выиграла."  # the teaser, not the "[…]" excerpt
    assert match.image_url is None and budget.image_url is None  # emoji are no photos
    names = section_names(match.categories, mapping={}, default="X")
    assert names == ["Спорт", "Игры"]
    assert [slugify(name) for name in names] == ["sport", "igry"]


def test_a_comments_feed_gives_no_stories() -> None:
    feed = parsed("wordpress_comments.xml")
    assert feed.entries == ()
    assert any("comments" in warning for warning in feed.warnings)


def test_a_podcast_episode_has_its_art() -> None:
    (episode,) = parsed("podcast.xml").entries
    assert episode.image_url == "https://pod.example/art/42.jpg"


def test_an_untitled_micro_post_is_headlined_by_its_first_words() -> None:
    (post,) = parsed("atom_untyped_summary.xml").entries
    assert post.title.startswith("Just back from the harbour festival")
    assert post.title.endswith("…") and len(post.title) <= 81
    assert "&nbsp;" not in post.summary and "<b>" not in post.summary


def test_dates_rss090_none_hugo_zero_time_none_portuguese_read() -> None:
    assert all(entry.published is None for entry in parsed("rss090.xml").entries)
    about, release = parsed("hugo_zero_time.xml").entries
    assert about.published is None
    assert release.published == datetime(2018, 12, 2, 10, 0, tzinfo=UTC)
    budget, rain = parsed("portuguese_dates.xml").entries
    assert budget.published == datetime(2018, 12, 3, 12, 0, tzinfo=UTC)
    assert rain.published == datetime(2018, 12, 1, 20, 30, tzinfo=UTC)
    assert budget.title == "Câmara aprova orçamento"


def test_the_http_charset_counts_when_the_xml_declares_none() -> None:
    (quote,) = parsed(
        "cp1251_no_declaration.xml", "application/rss+xml; charset=windows-1251"
    ).entries
    assert quote.title == "Цитата дня"
    assert quote.summary == "Мудрость."


def test_relative_words_and_bare_numbers_are_no_date() -> None:
    """A date is what the feed wrote, never something read against this machine's clock."""
    items = "".join(
        f"<item><title>T{n}</title><link>https://x.example/{n}</link>"
        f"<pubDate>{written}</pubDate></item>"
        for n, written in enumerate(["4 years ago", "vor 4 Jahren", "1670000000", "yesterday"])
    )
    data = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://x.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()
    feed = parse_feed(data, source="https://x.example/feed")
    assert [entry.published for entry in feed.entries] == [None, None, None, None]
