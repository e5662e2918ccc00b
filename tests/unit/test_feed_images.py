"""Lead photos read from feeds: enclosures, Media RSS, inline images; pure parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from digests.feeds.parse import FeedEntry, ParsedFeed, parse_feed
from digests.models import IMAGE_CAPTION_MAX, LINK_MAX

FEEDS = Path(__file__).parent.parent / "data" / "feeds"
MEDIA = 'xmlns:media="http://search.yahoo.com/mrss/"'


def parsed(name: str) -> ParsedFeed:
    return parse_feed((FEEDS / name).read_bytes(), source="https://photos.example/feed.xml")


def entry(feed: ParsedFeed, title: str) -> FeedEntry:
    (found,) = [e for e in feed.entries if e.title == title]
    return found


def one_item(item: str) -> FeedEntry:
    data = (
        f'<?xml version="1.0"?><rss version="2.0" {MEDIA}><channel><title>T</title>'
        f"<link>https://t.example/</link><item><title>Story</title>"
        f"<link>https://t.example/s/1</link>{item}</item></channel></rss>"
    ).encode()
    (only,) = parse_feed(data, source="https://t.example/feed").entries
    return only


@pytest.mark.parametrize(
    ("title", "url", "caption"),
    [
        # the image enclosure wins over a media:content image
        ("Enclosure story", "https://cdn.photos.example/dam.jpg", None),
        # an audio enclosure and a video are skipped; the credit is the caption, cleaned
        ("Media content story", "https://cdn.photos.example/bridge.jpg", "Photo: Ana Lima & Co"),
        # a relative thumbnail resolved against the entry's link
        ("Thumbnail story", "https://photos.example/news/img/thumb.jpg", None),
        # the first <img> with a fetchable src (a data: URL is not), its alt as caption
        ("Inline image story", "https://photos.example/media/harbour.jpg", "The harbour at dawn"),
        # javascript: and ftp: are no photos
        ("Image without an image URL", None, None),
        ("Plain story", None, None),
    ],
)
def test_rss_lead_images(title: str, url: str | None, caption: str | None) -> None:
    found = entry(parsed("photos_rss.xml"), title)
    assert (found.image_url, found.image_caption) == (url, caption)


def test_atom_enclosure_link_and_content_image() -> None:
    feed = parsed("photos_atom.xml")
    first, second = entry(feed, "Atom enclosure"), entry(feed, "Atom content image")
    assert first.image_url == "https://atom.photos.example/pics/one.png"
    assert (second.image_url, second.image_caption) == (
        "https://atom.photos.example/pics/two.webp",
        "Two & more",  # the img's title, entities decoded once: it is plain text
    )


def test_an_enclosure_without_type_counts_by_its_extension() -> None:
    found = one_item('<enclosure url="https://t.example/p/photo.JPEG" length="1"/>')
    assert found.image_url == "https://t.example/p/photo.JPEG"
    not_image = one_item('<enclosure url="https://t.example/p/report.pdf" length="1"/>')
    assert not_image.image_url is None


def test_an_image_url_too_long_to_store_is_skipped_for_the_next_candidate() -> None:
    long_url = "https://t.example/" + "a" * LINK_MAX + ".jpg"
    found = one_item(
        f'<enclosure url="{long_url}" type="image/jpeg" length="1"/>'
        '<media:thumbnail url="https://t.example/small.jpg"/>'
    )
    assert found.image_url == "https://t.example/small.jpg"


def test_a_long_caption_is_cut_to_its_column() -> None:
    found = one_item(
        '<media:content url="https://t.example/a.jpg" medium="image">'
        f"<media:credit>{'Name ' * 200}</media:credit></media:content>"
    )
    assert found.image_caption is not None
    assert found.image_caption.startswith("Photo: Name Name")
    assert len(found.image_caption) <= IMAGE_CAPTION_MAX
    assert found.image_caption.endswith("…")


def test_an_img_alt_is_not_the_caption_of_another_photo() -> None:
    found = one_item(
        '<media:thumbnail url="https://t.example/thumb.jpg"/>'
        '<description><![CDATA[<img src="https://t.example/other.jpg" alt="Other">]]></description>'
    )
    assert (found.image_url, found.image_caption) == ("https://t.example/thumb.jpg", None)


@pytest.mark.parametrize(
    "item",
    [
        '<enclosure url="http://[::1" type="image/png"/>',  # a malformed IPv6 host
        '<media:content url="" medium="image"/>',
        "<media:thumbnail/>",
        '<description><![CDATA[<img src="   "><img <img src=">]]></description>',
        '<description><![CDATA[<![if x]><img src="https://t.example/ok.jpg">]]></description>',
        '<enclosure type="image/png"/>',
    ],
)
def test_malformed_image_markup_never_crashes(item: str) -> None:
    found = one_item(item)
    assert found.image_url is None or found.image_url.startswith("https://t.example/")
