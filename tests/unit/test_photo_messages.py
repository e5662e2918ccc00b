"""Photo captions within Telegram's 1,024 characters, breaking photos, and which 400s mean
Telegram refused an image."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from telegram.error import BadRequest

from bot.transport.replies import image_refused
from digests.delivery.ports import Photo
from digests.models import Article, Section
from digests.newsroom.render import breaking_message, breaking_story
from digests.stories import texts
from digests.stories.paging import Page
from digests.ui.render import MAX_CAPTION, escape, fit_visible, visible_length, visible_text

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def article(
    *, title: str = "Dam holds", summary: str = "Water levels fall.", image: str | None = None
) -> Article:
    return Article(
        id=7,
        key="k7",
        link="https://meridian.example/7",
        title=title,
        summary=summary,
        published_at=NOW,
        ingested_at=NOW,
        updated_at=NOW,
        date_known=True,
        image_url=image,
        sections=[Section(id=1, slug="world", name="World", created_at=NOW)],
    )


def page(story: Article) -> Page:
    return Page(story, None, position=2, total=9, has_newer=True, has_older=True)


def test_fit_visible_keeps_text_that_fits_and_cuts_escaped_text_at_a_word() -> None:
    def build(summary: str) -> str:
        return "<b>Head</b>" + (f"\n{escape(summary)}" if summary else "")

    assert fit_visible(build, "short & sweet", 100) == "<b>Head</b>\nshort &amp; sweet"
    cut = fit_visible(build, "a&b <c> " * 50, 60)
    assert cut is not None
    assert visible_length(cut) <= 60
    assert cut.startswith("<b>Head</b>\na&amp;b &lt;c&gt;")
    assert cut.endswith("…")  # cut as plain text, then escaped: no broken entity or tag
    body = cut.removeprefix("<b>Head</b>\n")
    assert escape(visible_text(body)) == body  # every entity whole


def test_fit_visible_counts_utf16_like_telegram() -> None:
    emoji = "🌊 " * 600  # two UTF-16 units each
    fitted = fit_visible(lambda s: escape(s), emoji, 100)
    assert fitted is not None
    assert 90 < visible_length(fitted) <= 100
    assert len(fitted) < visible_length(fitted) - 30  # each wave counts twice


def test_fit_visible_gives_up_when_even_the_frame_is_too_long() -> None:
    assert fit_visible(lambda s: "x" * 50 + s, "more", 40) is None


def test_story_page_with_photo_fits_a_caption_and_keeps_its_frame() -> None:
    long = article(title="T" * 380, summary="word & more " * 200, image="https://img.example/p.jpg")
    reply = texts.story_page(page(long), tz="UTC")
    assert reply.photo == "https://img.example/p.jpg"
    assert MAX_CAPTION - 20 < visible_length(reply.text) <= MAX_CAPTION
    shown = visible_text(reply.text)
    assert shown.startswith("T" * 380) and shown.endswith("All sections: 2 / 9")
    assert "word & more" in shown and "…" in shown
    assert [b.text for b in reply.buttons[-1]] == ["◀ Previous", "Next ▶"]


def test_story_page_without_photo_is_text_as_before() -> None:
    reply = texts.story_page(page(article(title="T" * 380, summary="word " * 300)), tz="UTC")
    assert reply.photo is None
    assert visible_length(reply.text) > MAX_CAPTION  # not cut for a caption


def test_breaking_message_is_a_photo_with_the_story_as_caption() -> None:
    story = article(summary="Rescue under way. " * 100, image="https://img.example/q.jpg")
    message = breaking_message(story)
    assert isinstance(message, Photo)
    assert message.url == "https://img.example/q.jpg"
    assert message.fallback == breaking_story(story)  # the whole story, uncut
    assert visible_length(message.caption) <= MAX_CAPTION < visible_length(message.fallback)
    assert message.caption.startswith("🚨 <b>Breaking</b>\n\n<b>Dam holds</b>\nRescue under way.")
    assert message.caption.endswith('<a href="https://meridian.example/7">Read more</a>')
    assert breaking_message(article()) == breaking_story(article())


@pytest.mark.parametrize(
    ("description", "refused"),
    [
        ("Bad Request: wrong file identifier/HTTP URL specified", True),
        ("Wrong file identifier/http url specified", True),  # as PTB words it
        ("Bad Request: failed to get HTTP URL content", True),
        ("Bad Request: wrong type of the web page content", True),
        ("Bad Request: IMAGE_PROCESS_FAILED", True),
        ("Bad Request: PHOTO_INVALID_DIMENSIONS", True),
        ("Bad Request: wrong remote file identifier specified: wrong padding", True),
        ("Bad Request: chat not found", False),
        ("Bad Request: message caption is too long", False),
        ("Bad Request: message is not modified: specified new message content", False),
        ("Bad Request: can't parse entities: unsupported start tag", False),
        ("Bad Request: message to edit not found", False),
    ],
)
def test_image_refused(description: str, refused: bool) -> None:
    assert image_refused(BadRequest(description)) is refused


def test_the_photo_credit_and_byline_go_with_the_photo_escaped() -> None:
    story = article(image="https://cdn.meridian.example/dam.jpg", summary="Water " * 400)
    story.image_caption = "The dam at dawn <b>. Photo: Reuters & AP"
    story.author = "Dana <Levi>"
    reply = texts.story_page(page(story), tz="UTC")
    assert reply.photo == story.image_url
    assert visible_length(reply.text) <= MAX_CAPTION  # the summary was cut, not the credit
    assert "<i>📷 The dam at dawn &lt;b&gt;. Photo: Reuters &amp; AP</i>" in reply.text
    assert "Dana &lt;Levi&gt;" in reply.text
    pushed = breaking_message(story)
    assert isinstance(pushed, Photo)
    assert visible_length(pushed.caption) <= MAX_CAPTION
    assert "📷 The dam at dawn &lt;b&gt;" in pushed.caption
    without = article(summary="Short.")  # no photo: no credit line, whatever the caption says
    without.image_caption = "Photo: nobody"
    assert "📷" not in texts.story_page(page(without), tz="UTC").text
    assert "📷" not in breaking_story(without)
