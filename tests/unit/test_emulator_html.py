"""Telegram's HTML subset as the test kit reads it: what it accepts, what it refuses."""

from __future__ import annotations

import html
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakebotapi.telegram_html import parse_html, parse_html_entities, utf16_len


@pytest.mark.parametrize(
    ("source", "plain"),
    [
        ("plain text", "plain text"),
        ("<b>bold</b> <strong>strong</strong>", "bold strong"),
        ("<i>i</i><em>em</em><u>u</u><ins>ins</ins>", "iemuins"),
        ("<s>s</s><strike>strike</strike><del>del</del>", "sstrikedel"),
        ('<span class="tg-spoiler">hidden</span> <tg-spoiler>too</tg-spoiler>', "hidden too"),
        ('<a href="https://example.org/?a=1&amp;b=2">link</a>', "link"),
        ("<a href='https://example.org'>single quotes</a>", "single quotes"),
        ("<a href=https://example.org>unquoted</a>", "unquoted"),
        ("<code>x = 1</code>", "x = 1"),
        ('<pre><code class="language-python">print(1)</code></pre>', "print(1)"),
        ("<blockquote>quote</blockquote>", "quote"),
        ("<blockquote expandable>long quote</blockquote>", "long quote"),
        ('<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>', "👍"),
        ("<b>bold <i>bold italic</i></b>", "bold bold italic"),
        ("<B>upper-case tags</B>", "upper-case tags"),
        ("&lt;tag&gt; &amp; &quot;quoted&quot;", '<tag> & "quoted"'),
        ("&#65;&#x42;&#X43; &#128512;", "ABC 😀"),
        ("a > b", "a > b"),
        ("line one\nline two", "line one\nline two"),
        ("<b></b>empty tags are fine", "empty tags are fine"),
    ],
)
def test_accepts_telegram_html(source: str, plain: str) -> None:
    assert parse_html(source) == plain


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("one<br>two", 'Unsupported start tag "br" at byte offset 3'),
        ("one<br/>two", 'Unsupported start tag "br"'),
        ("<div>block</div>", 'Unsupported start tag "div"'),
        ("<p>paragraph</p>", 'Unsupported start tag "p"'),
        ("1 < 2", 'Character "<" must be escaped'),
        ("<>", 'Character "<" must be escaped'),
        ("AT&T", 'Character "&" must be escaped'),
        ("fish & chips", 'Character "&" must be escaped'),
        ("&nbsp;", 'Unsupported HTML entity "&nbsp;"'),
        ("&amp", 'Character "&" must be escaped'),
        ("&#xD800;", "Invalid numeric HTML entity"),
        ("&#0;", "Invalid numeric HTML entity"),
        ("<b>never closed", 'Can\'t find end tag corresponding to start tag "b"'),
        (
            "<b><i>crossed</b></i>",
            'Unmatched end tag at byte offset 13, expected "</i>", found "</b>"',
        ),
        ("stray</b>", 'Unexpected end tag "</b>"'),
        ("<b>x</b", "Unclosed end tag"),
        ("<b", "Unclosed start tag"),
        ('<a href="https://example.org>x</a>', "Unclosed start tag"),
        ("<a>no link</a>", 'Tag "a" must have a non-empty attribute "href"'),
        ('<a href="">empty link</a>', 'Tag "a" must have a non-empty attribute "href"'),
        ("<span>plain span</span>", 'Tag "span" must have class "tg-spoiler"'),
        ('<span class="bold">x</span>', 'Tag "span" must have class "tg-spoiler"'),
        ("<tg-emoji>👍</tg-emoji>", 'Tag "tg-emoji" must have a numeric attribute "emoji-id"'),
        ('<a href="https://x.org/?a=1&b=2">x</a>', 'Character "&" must be escaped'),
        ("<b/>", 'Unexpected character "/" in the tag "b"'),
    ],
)
def test_refuses_what_telegram_cannot_parse(source: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_html(source)


def test_byte_offsets_count_utf8_bytes() -> None:
    with pytest.raises(ValueError, match="at byte offset 3$"):
        parse_html("é <br>")


def test_entities_use_utf16_offsets() -> None:
    text, entities = parse_html_entities('😀 <b>bold</b> <a href="https://e.org">é</a>')
    assert text == "😀 bold é"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 4},
        {"type": "text_link", "url": "https://e.org", "offset": 8, "length": 1},
    ]


def test_nested_entities_are_sorted_outer_first() -> None:
    _, entities = parse_html_entities("<b>a <i>b</i></b>")
    assert entities == [
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "italic", "offset": 2, "length": 1},
    ]


def test_pre_language_and_special_entities() -> None:
    _, entities = parse_html_entities(
        '<pre><code class="language-python">x</code></pre>'
        "<blockquote expandable>q</blockquote>"
        '<tg-emoji emoji-id="42">*</tg-emoji>'
    )
    assert entities == [
        {"type": "pre", "language": "python", "offset": 0, "length": 1},
        {"type": "expandable_blockquote", "offset": 1, "length": 1},
        {"type": "custom_emoji", "custom_emoji_id": "42", "offset": 2, "length": 1},
    ]


def test_no_entities_inside_code() -> None:
    text, entities = parse_html_entities("<code>a <b>b</b></code>")
    assert text == "a b"
    assert entities == [{"type": "code", "offset": 0, "length": 3}]


@given(st.text())
def test_escaped_text_reads_back_unchanged(text: str) -> None:
    assert parse_html(html.escape(text)) == text


@given(st.text(), st.sampled_from(["b", "i", "u", "s", "code", "tg-spoiler", "blockquote"]))
def test_an_escaped_tagged_text_has_one_entity_covering_it(text: str, tag: str) -> None:
    plain, entities = parse_html_entities(f"<{tag}>{html.escape(text)}</{tag}>")
    assert plain == text
    if text:
        assert len(entities) == 1
        assert entities[0]["offset"] == 0
        assert entities[0]["length"] == utf16_len(text)
    else:
        assert entities == []


@given(st.text(alphabet=st.sampled_from("<>&;#abx/ =\"'")))
def test_any_input_either_parses_or_raises_value_error(source: str) -> None:
    try:
        plain, entities = parse_html_entities(source)
    except ValueError:
        return
    for entity in entities:
        assert 0 <= entity["offset"]
        assert entity["offset"] + entity["length"] <= utf16_len(plain)
