"""Keyword matching and phrase rules: plain-text tokens, never a reader's regular expression."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digests.digest import texts as digest_texts
from digests.models import KeywordKind, KeywordRule
from digests.readers import texts as readers_texts
from digests.readers.keywords import (
    PHRASE_WORDS_MAX,
    Refusal,
    StoryIndex,
    check_phrase,
    matches,
    normalize,
    tokens,
)
from digests.ui.buttons import KeywordChoice, KeywordStep, decode, encode


@pytest.mark.parametrize(
    ("phrase", "title", "expected"),
    [
        ("art", "The art of war", True),
        ("art", "An article about art-deco", True),  # "art" of "art-deco" is a word
        ("art", "An article about Mozart", False),
        ("Путин", "ПУТИН, заявил он", True),
        ("covid-19", "COVID 19 cases rise", True),
        ("COVID 19", "covid-19: new rules", True),
        ("climate change", "Climate   change talks", True),
        ("climate change", "Change of climate", False),  # order matters
        ("climate change", "Climate, change", True),  # punctuation is not a word
        ("climate change", "Climate, then change", False),
        ("straße", "STRASSE closed", True),  # case folding, not lower()
        ("ﬁnance", "Finance news", True),  # NFKC: the ligature is "fi"
        ("café", "Cafe\u0301 opens", True),  # NFKC composes e + combining accent
        ("a.b", "a b", True),
        ("(x+", "x+ is a regex", True),  # never a pattern: only the word "x" counts
    ],
)
def test_matching_examples(phrase: str, title: str, expected: bool) -> None:
    assert matches(normalize(phrase), title) is expected


def test_a_phrase_matches_within_the_title_or_the_summary_not_across() -> None:
    index = StoryIndex([(1, "Harbour storm", "damage report"), (2, "Storm", "Harbour damage")])
    assert index.match("storm damage") == frozenset()
    assert index.match("harbour damage") == {2}
    assert index.match("damage report") == {1}
    assert index.match("storm") == {1, 2}
    assert index.match("nothing") == frozenset()
    assert index.match("") == frozenset()


def test_repeated_tokens_in_a_phrase() -> None:
    index = StoryIndex([(1, "bye bye baby", ""), (2, "bye baby", "")])
    assert index.match("bye bye") == {1}
    assert index.match("bye baby") == {1, 2}


def test_normalized_form_and_refusals() -> None:
    assert tokens("COVID-19, Путин!") == ("covid", "19", "путин")
    assert check_phrase("  Climate   Change ") == ("Climate Change", "climate change")
    assert check_phrase("!!! ???") is Refusal.EMPTY
    assert check_phrase("") is Refusal.EMPTY
    assert check_phrase("x" * 61) is Refusal.TOO_LONG
    assert check_phrase(" ".join(["w"] * (PHRASE_WORDS_MAX + 1))) is Refusal.TOO_MANY_WORDS
    assert check_phrase(" ".join(["w"] * PHRASE_WORDS_MAX)) == (
        " ".join(["w"] * PHRASE_WORDS_MAX),
        " ".join(["w"] * PHRASE_WORDS_MAX),
    )


words = st.lists(
    st.sampled_from(["storm", "port", "Port", "ПОРТ", "порт", "rates", "art", "article"]),
    min_size=0,
    max_size=12,
)


def _reference(phrase: str, text: str) -> bool:
    """A second, independent way to decide: the phrase's tokens as a whole-word regex over
    the normalized text's tokens joined by spaces (our own pattern, escaped)."""
    if not phrase:
        return False
    joined = " " + " ".join(tokens(text)) + " "
    return re.search(" " + re.escape(phrase) + " ", joined) is not None


@given(title=words, summary=words, phrase=words)
def test_index_agrees_with_a_reference_matcher(
    title: list[str], summary: list[str], phrase: list[str]
) -> None:
    normalized = normalize(" ".join(phrase))
    t, s = " ".join(title), ", ".join(summary)
    expected = _reference(normalized, t) or _reference(normalized, s)
    got = StoryIndex([(7, t, s)]).match(normalized)
    assert got == (frozenset({7}) if expected else frozenset())
    assert matches(normalized, t, s) is expected


@given(title=st.text(max_size=80), start=st.integers(0, 10), size=st.integers(1, 4))
def test_any_run_of_a_titles_words_matches_it(title: str, start: int, size: int) -> None:
    found = tokens(title)
    phrase = " ".join(found[start : start + size])
    if phrase:
        assert matches(phrase, title)
        assert matches(normalize(phrase.upper()), title.lower()) == matches(
            normalize(phrase), title
        )


def test_index_remembers_each_phrase() -> None:
    index = StoryIndex([(1, "storm", "")])
    first = index.match("storm")
    assert index.match("storm") is first  # looked up once per window


def test_keyword_buttons_round_trip_and_refuse_tampering() -> None:
    for step in KeywordStep:
        data = KeywordChoice(step, 123)
        assert decode(encode(data)) == data
    for bad in ("W:a:", "W:a:01", "W:z:1", "W:a:1:2", "W:x:99999999999", "W:a:-1", "W:a:１"):
        assert decode(bad) is None


def _rule(rule_id: int, kind: KeywordKind, phrase: str, *, alert: bool = False) -> KeywordRule:
    return KeywordRule(
        id=rule_id, kind=kind, phrase=phrase, normalized=normalize(phrase), alert=alert
    )


def test_keywords_screen_escapes_phrases_and_gives_each_rule_buttons() -> None:
    rules = [
        _rule(1, KeywordKind.FOLLOW, "<b>AT&T</b>", alert=True),
        _rule(2, KeywordKind.FOLLOW, "climate"),
        _rule(3, KeywordKind.MUTE, "football"),
    ]
    screen = readers_texts.keywords_screen(rules, notice="Done.", cap=20)
    assert "&lt;b&gt;AT&amp;T&lt;/b&gt;" in screen.text and "<b>AT" not in screen.text
    assert "alerts on" in screen.text and "in the digest" in screen.text
    data = [decode(b.data or "") for row in screen.buttons for b in row]
    assert data == [
        KeywordChoice(KeywordStep.ALERT, 1),
        KeywordChoice(KeywordStep.REMOVE, 1),
        KeywordChoice(KeywordStep.ALERT, 2),
        KeywordChoice(KeywordStep.REMOVE, 2),
        KeywordChoice(KeywordStep.REMOVE, 3),
    ]
    assert screen.buttons[0][0].text.startswith("🔔") and screen.buttons[1][0].text.startswith("🔕")
    empty = readers_texts.keywords_screen([], cap=20)
    assert "/follow" in empty.text and empty.buttons == []


def test_refusals_say_what_to_do() -> None:
    assert "20 keywords" in readers_texts.keyword_refused(Refusal.CAP, cap=20)
    assert "/keywords" in readers_texts.keyword_refused(Refusal.CAP, cap=20)
    assert "60 characters" in readers_texts.keyword_refused(Refusal.TOO_LONG, cap=20)
    assert "no words" in readers_texts.keyword_refused(Refusal.EMPTY, cap=20)


def test_alert_message_names_the_phrase_and_escapes_the_story() -> None:
    from digests.models import Article

    article = Article(
        title="Storm <b>hits</b> & port", summary="x" * 5000, link="https://n.example/1"
    )
    text = digest_texts.keyword_alert(article, "storm & port")
    assert text.startswith("🔔 <b>Your keyword “storm &amp; port”</b>")
    assert "Storm &lt;b&gt;hits&lt;/b&gt; &amp; port" in text
    assert '<a href="https://n.example/1">Read more</a>' in text
    from digests.ui.render import MAX_MESSAGE, visible_length

    assert visible_length(text) <= MAX_MESSAGE  # the summary is cut to fit
