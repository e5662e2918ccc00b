"""Corrected stories as readers see them, and an editor's /correct as the bot reads it."""

from __future__ import annotations

import pytest

from digests.models import Article
from digests.newsroom import texts
from digests.newsroom.corrections import NOTE_MAX, CorrectionText, parse_correction
from digests.newsroom.render import CAPTION_MAX, breaking_story
from digests.ui.render import MAX_MESSAGE, visible_length, visible_text


def article(title: str = "Bridge closed", summary: str = "Both lanes shut.") -> Article:
    return Article(title=title, summary=summary, link="https://news.example/bridge?a=1&b=2")


def test_the_correction_note_is_an_escaped_italic_last_line() -> None:
    hostile = '<b>x</b> & <a href="javascript:alert(1)">y</a>'
    text = breaking_story(article(title="<i>Quake</i> & co"), correction=hostile)
    assert text.endswith(
        "<i>✏️ Corrected: &lt;b&gt;x&lt;/b&gt; &amp; "
        "&lt;a href=&quot;javascript:alert(1)&quot;&gt;y&lt;/a&gt;</i>"
    )
    assert "<b>&lt;i&gt;Quake&lt;/i&gt; &amp; co</b>" in text
    shown = visible_text(text)
    assert shown.splitlines()[-1] == f"✏️ Corrected: {hostile}"
    assert "Read more" in shown


def test_without_a_correction_the_story_is_as_before() -> None:
    assert "Corrected" not in breaking_story(article())
    assert breaking_story(article()).startswith("🚨 <b>Breaking</b>\n\n<b>Bridge closed</b>")


@pytest.mark.parametrize("limit", [CAPTION_MAX, MAX_MESSAGE])
def test_a_long_story_is_cut_to_fit_with_its_title_and_note(limit: int) -> None:
    long = article(summary="word " * 2000 + "𝕏" * 500)  # UTF-16 pairs count twice
    text = breaking_story(long, correction="n" * NOTE_MAX, limit=limit)
    assert visible_length(text) <= limit
    assert visible_length(text) > limit - 200  # cut, not dropped
    assert "Bridge closed" in text and text.endswith("n" * NOTE_MAX + "</i>")


def test_parse_a_full_correction() -> None:
    found = parse_correction(
        "/correct 12 Bridge reopened\nTraffic flows again.\nBoth lanes.\nNote: it reopened"
    )
    assert found == CorrectionText(
        12, "Bridge reopened", "Traffic flows again.\nBoth lanes.", "it reopened"
    )


def test_parse_a_note_only_correction_keeps_the_stored_story() -> None:
    found = parse_correction("/correct@newsbot 7\n  note:  typo in the headline ")
    assert found == CorrectionText(7, None, None, "typo in the headline")
    assert found.applied_to(article()).title == "Bridge closed"


@pytest.mark.parametrize(
    "text",
    [
        "/correct",
        "/correct 12 New title",  # no note line
        "/correct x Title\nNote: n",
        "/correct １２ Title\nNote: n",  # full-width digits
        "/correct 12345678901 T\nNote: n",
        "/correct 12 Note: in the middle\nand more text",
    ],
)
def test_parse_refuses_what_it_cannot_read(text: str) -> None:
    assert parse_correction(text) is None


def test_the_digest_names_the_exact_correction() -> None:
    one = CorrectionText(1, "T", "S", "n")
    assert len(one.digest) == 12 and one.digest == CorrectionText(1, "T", "S", "n").digest
    assert one.digest != CorrectionText(1, "T", "S", "n2").digest
    assert one.digest != CorrectionText(2, "T", "S", "n").digest


def test_the_preview_of_a_long_stored_story_fits_one_message() -> None:
    correction = CorrectionText(1, None, None, "n" * NOTE_MAX)
    reply = texts.correction_preview(
        correction, article(summary="word " * 3000), count=3, digest="0123456789ab"
    )
    assert visible_length(reply.text) <= MAX_MESSAGE
    assert "3 sent messages will be edited" in reply.text
    assert [b.data for row in reply.buttons for b in row] == ["K:cy:1:0123456789ab", "K:cn:1"]
