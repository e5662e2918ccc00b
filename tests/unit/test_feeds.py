"""Feed parsing into plain-text entries: pure functions, no network."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.etree import ElementTree

import pytest

import digests
from digests.feeds.clean import html_to_text
from digests.feeds.parse import SUMMARY_MAX, TITLE_MAX, FeedEntry, FeedError, ParsedFeed, parse_feed
from digests.stories.naming import section_key, section_names

SAMPLE = Path(digests.__file__).parent / "data" / "sample_feed.xml"
FEEDS = Path(__file__).parent.parent / "data" / "feeds"
SIX_SECTIONS = {"World", "Politics", "Sports", "Culture", "Science", "Business"}


def parse_file(path: Path, *, source: str | None = None) -> ParsedFeed:
    return parse_feed(path.read_bytes(), source=source or str(path))


def by_title(feed: ParsedFeed, start: str) -> FeedEntry:
    (entry,) = [entry for entry in feed.entries if entry.title.startswith(start)]
    return entry


def rss(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
        f"<title>Test</title><link>https://t.example/</link>{items}</channel></rss>"
    ).encode()


# --- the sample feed ------------------------------------------------------------------------


def test_sample_feed_has_thirty_distinct_stories() -> None:
    feed = parse_file(SAMPLE)

    assert feed.title == "The Daily Meridian"
    assert feed.warnings == ()
    assert len(feed.entries) == 30
    assert len({entry.key for entry in feed.entries}) == 30
    assert all(entry.title and entry.summary for entry in feed.entries)


def test_sample_feed_covers_six_sections_and_one_story_without_any() -> None:
    feed = parse_file(SAMPLE)
    names = [section_names(e.categories, mapping={}, default="Home") for e in feed.entries]

    keys = {section_key(name) for entry_names in names for name in entry_names}
    assert keys == {section_key(name) for name in SIX_SECTIONS | {"Home"}}
    assert names.count(["Home"]) == 1
    assert ["Science", "Business"] in names
    battery = by_title(feed, "Battery start-up")
    assert battery.categories == ("Science", "Business")


def test_sample_titles_are_plain_text_with_entities_decoded() -> None:
    titles = {entry.title for entry in parse_file(SAMPLE).entries}

    assert "Q&A: What the new northern shipping lanes mean for our ports" in titles
    assert "Profits < forecasts as Meridian Freight warns on fuel costs" in titles
    assert "Central bank holds rates at 3.25% & signals patience" in titles
    assert 'Small shops say card fees "eat the whole margin"' in titles
    assert "Review: 'The Salt Road' is a patient, luminous first novel" in titles
    assert all(len(title) <= TITLE_MAX for title in titles)


def test_sample_summaries_have_no_markup_scripts_or_raw_entities() -> None:
    feed = parse_file(SAMPLE)

    for entry in feed.entries:
        assert not re.search(r"</?[a-z]+[ >/]", entry.summary), entry.summary
        assert not re.search(r"&[a-z]+;|&#", entry.summary), entry.summary
        assert "\xa0" not in entry.summary
    assert by_title(feed, "Deep-sea survey").summary == (
        "The robot sub Petrel filmed the sponges at depths of up to 3,400 m."
    )
    assert by_title(feed, "Course record").summary == (
        "Runners set off at −3 °C; the winner finished in 2:06:41."
    )
    assert by_title(feed, "Floodwaters recede").summary.splitlines() == [
        "For the first time in nine days, trucks carrying drinking water and seed stock "
        "reached the lowland villages of the Varn delta on Monday.",
        "Aid workers said roads remain fragile & more rain is forecast for Thursday.",
    ]
    assert by_title(feed, "Q&A: What the new").summary.splitlines() == [
        "Our trade correspondent answers readers' questions:",
        "Will freight get cheaper?",
        "Which harbours gain & which lose?",
        "What about the ice?",
    ]


def test_sample_long_summary_is_cut_at_a_word_with_an_ellipsis() -> None:
    review = by_title(parse_file(SAMPLE), "Review: 'The Salt Road'")

    assert len(review.summary) <= SUMMARY_MAX
    assert review.summary.startswith("★★★★☆ — Three generations of a fishing family")
    assert review.summary.endswith("…")
    item = next(
        item
        for item in ElementTree.parse(SAMPLE).iter("item")
        if (item.findtext("title") or "").startswith("Review:")
    )
    whole = html_to_text(item.findtext("description") or "", limit=10_000)
    assert whole.startswith(review.summary[:-1] + " ")


def test_sample_times_are_aware_utc_in_late_november_2026() -> None:
    feed = parse_file(SAMPLE)

    for entry in feed.entries:
        assert entry.published is not None
        assert entry.published.utcoffset() == timedelta(0)
        assert datetime(2026, 11, 24, tzinfo=UTC) <= entry.published
        assert entry.published < datetime(2026, 12, 1, tzinfo=UTC)
    # -0500, EST and +0530 in the file
    assert by_title(feed, "Night trains").published == datetime(2026, 11, 25, 11, 30, tzinfo=UTC)
    assert by_title(feed, "Explainer").published == datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    assert by_title(feed, "Grain prices").published == datetime(2026, 11, 27, 4, 45, tzinfo=UTC)


def test_sample_guids_and_links() -> None:
    feed = parse_file(SAMPLE)

    assert all((e.link or "").startswith("https://meridian.example/") for e in feed.entries)
    floods = by_title(feed, "Floodwaters recede")
    assert floods.guid == "meridian-2026-11-30-0001"
    assert floods.key == "meridian-2026-11-30-0001"
    assert floods.link == "https://meridian.example/world/2026/11/30/varn-delta-floods-recede"


# --- other feeds ----------------------------------------------------------------------------


def test_atom_feed_uses_labels_html_content_and_published_before_updated() -> None:
    feed = parse_file(FEEDS / "atom_basic.xml", source="https://meridian.example/feeds/atom.xml")
    lighthouse, ice, budget = feed.entries

    assert feed.title == "Meridian & Friends"
    assert feed.warnings == ()
    assert lighthouse.title == "Lighthouse keepers' cottages become a museum"
    assert lighthouse.summary == (
        "The two cottages on Sker Point open to visitors in April.\n"
        "Entry is free & dogs are welcome."
    )
    assert lighthouse.categories == ("Culture", "World")
    assert lighthouse.link == "https://meridian.example/culture/lighthouse-museum"
    assert lighthouse.published == datetime(2026, 11, 30, 7, 30, tzinfo=UTC)

    assert ice.title == "Ice < 10 cm thick: skaters told to wait"
    assert ice.categories == ("science",)
    assert ice.link == "https://meridian.example/science/ice-thickness"
    assert ice.published == datetime(2026, 11, 29, 23, 0, tzinfo=UTC)

    assert budget.title == "Budget vote delayed"
    assert budget.summary == "Councillors need one more week."
    assert budget.guid == "urn:meridian:atom:0003"
    assert budget.published is None


def test_relative_link_is_dropped_when_the_source_is_a_file() -> None:
    feed = parse_file(FEEDS / "atom_basic.xml", source="tests/data/feeds/atom_basic.xml")

    assert feed.entries[1].link is None
    assert feed.entries[1].key == "urn:meridian:atom:0002"


def test_half_broken_feed_gives_its_usable_entries_and_warnings() -> None:
    feed = parse_file(FEEDS / "broken_half.xml")

    assert feed.title == "Meridian Late Edition"
    assert [entry.title for entry in feed.entries[:3]] == [
        "Tram strike called off after overnight talks",
        "Harbour fog delays three ferries",
        "Bakery chain & its suppliers agree on flour prices",
    ]
    assert feed.entries[0].guid == "late-0001"
    assert feed.entries[0].published == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert any(w.startswith("feed is not valid (") for w in feed.warnings)
    assert "1 entry skipped: no title or link" in feed.warnings


def test_empty_feed_is_not_an_error() -> None:
    feed = parse_file(FEEDS / "empty_rss.xml")

    assert feed == ParsedFeed(title="Meridian Corrections", entries=(), warnings=())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ((FEEDS / "not_a_feed.html").read_bytes(), "not a RSS/Atom feed (got HTML page)"),
        (b"\xef\xbb\xbf  <html><body>hi</body></html>", "not a RSS/Atom feed (got HTML page)"),
        (b"", "not a RSS/Atom feed (empty document)"),
        (b'{"items": []}', "not a RSS/Atom feed (not well-formed"),
        (b"<?xml version='1.0'?><note>hi</note>", "not a RSS/Atom feed (no RSS or Atom root"),
    ],
)
def test_documents_that_are_not_feeds_raise_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(FeedError) as caught:
        parse_feed(data, source="https://meridian.example/")

    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_body_that_looks_like_a_path_is_never_opened_as_a_file() -> None:
    with pytest.raises(FeedError, match="not a RSS/Atom feed"):
        parse_feed(str(SAMPLE).encode(), source="https://meridian.example/")


def test_entries_without_title_and_link_are_skipped_and_counted() -> None:
    feed = parse_feed(
        rss(
            "<item><description>only text</description></item>"
            "<item><guid>g-2</guid></item>"
            "<item><title>Kept</title></item>"
        ),
        source="https://t.example/feed",
    )

    assert [entry.title for entry in feed.entries] == ["Kept"]
    assert feed.warnings == ("2 entries skipped: no title or link",)


def test_repeated_guids_are_dropped_with_a_warning() -> None:
    feed = parse_feed(
        rss(
            '<item><title>First</title><guid isPermaLink="false">same</guid></item>'
            '<item><title>Second</title><guid isPermaLink="false">same</guid></item>'
        ),
        source="https://t.example/feed",
    )

    assert [entry.title for entry in feed.entries] == ["First"]
    assert feed.warnings == ("1 entry dropped: repeated guid or link",)


def test_only_http_links_are_kept_and_categories_are_cleaned() -> None:
    feed = parse_feed(
        rss(
            "<item><title>A</title><link>javascript:alert(1)</link>"
            "<category> World </category><category>World</category><category> </category>"
            "<category>Business</category><pubDate>yesterday-ish</pubDate></item>"
            "<item><title>B</title><link>/b</link></item>"
        ),
        source="https://t.example/feeds/all.xml",
    )
    a, b = feed.entries

    assert a.link is None
    assert a.categories == ("World", "Business")
    assert a.published is None
    assert b.link == "https://t.example/b"


def test_a_malformed_ipv6_link_is_dropped_not_raised_when_resolved_against_the_source() -> None:
    """urljoin raises ValueError on "http://[::1/x" as urlsplit does (found by the feed fuzzer)."""
    feed = parse_feed(
        rss(
            "<item><guid>v6</guid><title>Bad host</title><link>http://[::1/broken</link></item>"
            "<item><title>Fine</title><link>/fine</link></item>"
        ),
        source="https://t.example/feeds/all.xml",
    )
    bad, fine = feed.entries
    assert (bad.title, bad.link) == ("Bad host", None)
    assert fine.link == "https://t.example/fine"


def test_long_titles_are_capped() -> None:
    words = " ".join(["headline"] * 60)
    feed = parse_feed(rss(f"<item><title>{words}</title></item>"), source="x.xml")

    (entry,) = feed.entries
    assert len(entry.title) <= TITLE_MAX
    assert entry.title.endswith("headline…")


def test_key_prefers_guid_then_link_then_a_stable_title_hash() -> None:
    entry = FeedEntry(
        guid="g", link="https://t.example/a", title="T", summary="", published=None, categories=()
    )

    assert entry.key == "g"
    assert FeedEntry(None, "https://t.example/a", "T", "", None, ()).key == "https://t.example/a"
    untitled = FeedEntry(None, None, "Harbour fog delays three ferries", "", None, ())
    # pinned: a stored key must never change between releases
    assert untitled.key == "title:684bcb16f50ef86f849bcad4764d28cd"
    assert untitled.key != FeedEntry(None, None, "Harbour fog", "", None, ()).key


# --- real-world shapes (issue 24): dates in the feed's language, placeholder dates, guids
# reused for different posts


def _rss_items(items: str, version: str = "2.0") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="{version}"><channel>'
        f"<title>T</title><link>https://x.example/</link><description>d</description>"
        f"{items}</channel></rss>"
    ).encode()


def test_dates_in_portuguese_are_read() -> None:
    # as a Brazilian paper writes them: day and month names in Portuguese
    feed = parse_feed(
        _rss_items(
            "<item><title>Um</title><link>https://x.example/1</link>"
            "<pubDate>Seg, 03 Dez 2018 10:00:00 -0200</pubDate></item>"
            "<item><title>Dois</title><link>https://x.example/2</link>"
            "<pubDate>qua, 05 set 2018 14:30:00 GMT</pubDate></item>"
        ),
        source="f",
    )
    assert [entry.published for entry in feed.entries] == [
        datetime(2018, 12, 3, 12, 0, tzinfo=UTC),
        datetime(2018, 9, 5, 14, 30, tzinfo=UTC),
    ]


def test_placeholder_and_garbage_dates_are_no_date() -> None:
    feed = parse_feed(
        _rss_items(
            "<item><title>Hugo</title><link>https://x.example/1</link>"
            "<pubDate>Mon, 01 Jan 0001 00:00:00 +0000</pubDate></item>"
            "<item><title>Epoch</title><link>https://x.example/2</link>"
            "<pubDate>Thu, 01 Jan 1970 00:00:00 +0000</pubDate></item>"
            + "".join(
                f"<item><title>G{n}</title><link>https://x.example/g{n}</link>"
                f"<pubDate>not a date {n}</pubDate></item>"
                for n in range(50)
            )
        ),
        source="f",
    )
    assert len(feed.entries) == 52
    assert all(entry.published is None for entry in feed.entries)


def test_two_posts_that_reuse_one_guid_are_both_kept() -> None:
    feed = parse_feed(
        _rss_items(
            '<item><guid isPermaLink="false">42</guid><title>First post</title>'
            "<link>https://x.example/first</link></item>"
            '<item><guid isPermaLink="false">42</guid><title>Second post</title>'
            "<link>https://x.example/second</link></item>"
            '<item><guid isPermaLink="false">7</guid><title>Repeated</title>'
            "<link>https://x.example/r</link></item>"
            '<item><guid isPermaLink="false">7</guid><title>Repeated</title>'
            "<link>https://x.example/r</link></item>"
        ),
        source="f",
    )
    assert [entry.title for entry in feed.entries] == ["First post", "Second post", "Repeated"]
    assert len({entry.key for entry in feed.entries}) == 3
    assert feed.entries[0].key == "42#https://x.example/first"


def _many_items(count: int) -> bytes:
    items = "".join(
        f"<item><title>Story {n}</title><link>https://x.example/{n}</link>"
        f"<pubDate>Mon, 30 Nov 2026 09:{n % 60:02d}:00 +0000</pubDate>"
        f"<category>{'World' if n % 2 else 'Спорт'}</category>"
        # an item's end tag inside CDATA, and an item inside a comment, are text
        f"<description><![CDATA[<p>Text {n} </item> &amp; more</p>]]></description>"
        f"<!-- <item><title>not a story</title></item> --></item>"
        for n in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Big</title>'
        f"<link>https://x.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "data",
    [
        _many_items(2_500),
        (
            '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
            + "".join(
                f'<entry><id>urn:e{n}</id><title type="html">E &amp;lt;{n}&amp;gt;</title>'
                f'<link href="/e/{n}"/><updated>2026-11-30T09:00:00Z</updated>'
                f'<content type="html">&lt;p&gt;{n}&lt;/p&gt;</content></entry>'
                for n in range(7)
            )
            + "</feed>"
        ).encode(),
    ],
    ids=["rss", "atom"],
)
def test_a_large_feed_read_in_pieces_gives_what_it_gives_whole(
    data: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digests.feeds import parse

    whole = parse_feed(data, source="https://x.example/feed")
    monkeypatch.setattr(parse, "_PIECE_BYTES", 0)
    monkeypatch.setattr(parse, "_PIECE_ITEMS", 2)
    assert len(list(parse._pieces(data))) > 1
    assert parse_feed(data, source="https://x.example/feed") == whole
    assert len(whole.entries) > 2


def test_a_feed_whose_items_cannot_be_told_apart_is_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from digests.feeds import parse

    monkeypatch.setattr(parse, "_PIECE_ITEMS", 1)
    nested = _many_items(3).replace(b"<title>Story 1</title>", b"<item></item>")
    unclosed = _many_items(3).replace(b"<title>Story 2</title>", b"<item>")
    for data in (nested, unclosed, _many_items(3).decode().encode("utf-16")):
        assert list(parse._pieces(data)) == [data]
