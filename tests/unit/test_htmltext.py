"""Plain text from HTML fragments: pure functions."""

from __future__ import annotations

import html

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digests.feeds.clean import html_to_text

# --- html to text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Hi</p><script>alert('<p>x</p>')</script><style>p {}</style><p>there</p>", "Hi\nthere"),
        ("Fish &amp; chips&nbsp;&mdash; &lt;cheap&gt; &#8364;3", "Fish & chips — <cheap> €3"),
        ("<h1>T</h1><p>a<br>b</p><ul><li>x</li><li>y</li></ul>", "T\na\nb\nx\ny"),
        ("<b>bold</b><i>italic</i> and  \n\t <a href='#'>link</a>", "bolditalic and link"),
        ("<table><tr><td>1</td><td>2</td></tr></table>", "1 2"),
        ("<div><p></p><p>  </p></div>text", "text"),
        ("unclosed <b>bold", "unclosed bold"),
        ("", ""),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup, limit=1000) == text


def test_html_to_text_cuts_at_a_word_boundary() -> None:
    assert html_to_text("<p>alpha beta gamma</p>", limit=12) == "alpha beta…"
    assert html_to_text("<p>alpha, beta gamma</p>", limit=10) == "alpha…"
    assert html_to_text("alpha beta", limit=10) == "alpha beta"


def test_html_to_text_cuts_a_single_long_word_hard() -> None:
    assert html_to_text("a" * 50, limit=10) == "a" * 9 + "…"


def test_html_to_text_needs_a_positive_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        html_to_text("x", limit=0)


@pytest.mark.parametrize("declaration", ["<![p<>", "<![<>", "<![if !IE]>", "<!DOCTYPE html>"])
def test_malformed_declarations_are_skipped_not_fatal(declaration: str) -> None:
    # Python 3.11's HTMLParser raises AssertionError on the first two
    assert html_to_text(f"{declaration}<p>after</p>", limit=100) == "after"


MARKUP_BITS = ["<", ">", "&", "#", ";", "!", "[", "]", "-", "/", "?", "=", '"', " ", "\n"]
MARKUP_BITS += ["CDATA", "DOCTYPE", "p", "br", "li", "script", "style", "amp", "nbsp", "x1F600"]
MARKUPISH = st.lists(st.sampled_from(MARKUP_BITS) | st.text(max_size=3)).map("".join)


@given(st.text() | MARKUPISH, st.integers(min_value=1, max_value=300))
def test_html_to_text_never_exceeds_the_limit(markup: str, limit: int) -> None:
    assert len(html_to_text(markup, limit=limit)) <= limit


@given(st.text())
def test_escaped_text_comes_back_with_whitespace_collapsed(text: str) -> None:
    assert html_to_text(html.escape(text), limit=10_000) == " ".join(text.split())


@given(st.text(), st.integers(min_value=1, max_value=100))
def test_a_cut_text_is_a_prefix_of_the_whole_text(text: str, limit: int) -> None:
    whole = html_to_text(html.escape(text), limit=10_000)
    cut = html_to_text(html.escape(text), limit=limit)

    assert cut == whole or (cut.endswith("…") and whole.startswith(cut[:-1]))


TAGS = ["p", "b", "i", "a", "span", "div", "li", "h2", "em", "script", "style"]
PLAIN = st.text(st.characters(blacklist_characters="<>&", blacklist_categories=("Cs",)))


@given(st.lists(st.tuples(st.sampled_from(TAGS), PLAIN)))
def test_tags_never_leak_into_the_text(fragments: list[tuple[str, str]]) -> None:
    markup = "".join(f'<{tag} class="x">{text}</{tag}>' for tag, text in fragments)
    visible = "".join(text for tag, text in fragments if tag not in ("script", "style"))

    result = html_to_text(markup, limit=100_000)

    assert "<" not in result
    assert ">" not in result
    assert "".join(result.split()) == "".join(visible.split())
