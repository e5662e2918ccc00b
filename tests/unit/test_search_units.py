"""Search without a database: the reader's words, the buttons of search pages, inline mode's
results and cache, and the fake Bot API's answerInlineQuery."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.handlers.inline import result
from bot.inline_cache import InlineAnswer, TTLCache
from digests.models import Article
from digests.stories import texts
from digests.stories.search import (
    MAX_RESULTS,
    MAX_WORD,
    MAX_WORDS,
    SearchPage,
    fts5_query,
    inline_offset,
    search_words,
    tsquery_text,
)
from digests.ui.buttons import (
    MAX_BYTES,
    MAX_ID,
    SEARCH_PATTERN,
    Direction,
    SearchTurn,
    decode,
    encode,
)
from digests.ui.render import visible_length
from fakebotapi.emulator import (
    ARTICLE_REQUIRED,
    QUERY_TOO_OLD,
    TEXT_CONTENT_REQUIRED,
    ApiError,
    BotApiEmulator,
)

_ROOT = Path(__file__).resolve().parents[2]
# beside the repository, or beside the folder of its worktrees
OFFICIAL = next(
    (
        place / "shared" / "telegram-bot-api" / "api.json"
        for place in (_ROOT.parent, _ROOT.parent.parent)
        if (place / "shared" / "telegram-bot-api" / "api.json").exists()
    ),
    _ROOT.parent / "shared" / "telegram-bot-api" / "api.json",
)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


# --- the reader's words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ("Harbour storm", ("harbour", "storm")),
        ('"harbour" OR storm', ("harbour", "or", "storm")),
        ("NEAR(harbour storm, 2)", ("near", "harbour", "storm", "2")),
        ("harb* title:storm", ("harb", "title", "storm")),
        ("(a & b) | !c <-> d:*", ("a", "b", "c", "d")),
        ("snake_case-words", ("snake", "case", "words")),
        ("Новости  НОВОСТИ новости", ("новости",)),
        ("Café Ünïcode", ("café", "ünïcode")),
        ('()*:"&|!-^', ()),
        ("", ()),
        ("   ", ()),
    ],
)
def test_search_words_keep_only_letters_and_digits(raw: str, words: tuple[str, ...]) -> None:
    assert search_words(raw) == words


def test_very_long_input_is_bounded() -> None:
    words = search_words(" ".join(f"w{n}" for n in range(10_000)))
    assert len(words) == MAX_WORDS
    assert search_words("x" * 5000) == ("x" * MAX_WORD,)


def test_fts5_query_quotes_every_word() -> None:
    assert fts5_query(("near", "or", "harbour")) == '"near" "or" "harbour"'
    assert fts5_query(['say "hi"']) == '"say ""hi"""'  # a quote inside is doubled


def test_tsquery_text_has_no_operators_left() -> None:
    text = tsquery_text(search_words("a & b | !c <-> d:* 'e'"))
    assert text == "a b c d e"
    assert not set(text) & set("&|!<>:*'()")


@pytest.mark.parametrize(
    ("raw", "offset"),
    [("", 0), ("20", 20), ("x", None), ("-1", None), ("٣", None), ("99999", None)],
)
def test_inline_offsets_are_only_ours(raw: str, offset: int | None) -> None:
    assert inline_offset(raw) == offset


# --- buttons of search pages -----------------------------------------------------------------


def test_search_buttons_round_trip_within_64_bytes() -> None:
    for turn in [
        SearchTurn(1, 1, Direction.OLDER),
        SearchTurn(MAX_ID, MAX_RESULTS, Direction.NEWER),
        SearchTurn(MAX_ID, 999, Direction.OLDER),
    ]:
        data = encode(turn)
        assert len(data.encode()) <= MAX_BYTES
        assert SEARCH_PATTERN.match(data)
        assert decode(data) == turn


@pytest.mark.parametrize(
    "data",
    ["Q:1:0:n", "Q:1:01:n", "Q:01:1:n", "Q:1:1000:n", "Q:1:1:x", "Q:2147483648:1:n", "Q:1:1"],
)
def test_bad_search_buttons_decode_to_nothing(data: str) -> None:
    assert decode(data) is None


def story(**fields: Any) -> Article:
    values: dict[str, Any] = {
        "id": 7,
        "key": "k7",
        "link": "https://meridian.example/7",
        "title": "Bridge <reopens> & more",
        "summary": "Traffic flows <again>.",
        "published_at": NOW,
        "ingested_at": NOW,
        "updated_at": NOW,
        "date_known": True,
        "image_url": None,
        "image_caption": None,
        "author": None,
    }
    values.update(fields)
    article = Article(**values)
    article.sections = []
    return article


def test_search_page_has_previous_and_next_buttons_of_its_search() -> None:
    page = SearchPage(12, "bridge", story(), position=2, total=3)
    reply = texts.search_page(page, tz="UTC")
    assert "Search “bridge”: 2 / 3" in reply.text
    [_, nav] = reply.buttons
    assert [(b.text, decode(b.data or "")) for b in nav] == [
        ("◀ Previous", SearchTurn(12, 1, Direction.NEWER)),
        ("Next ▶", SearchTurn(12, 3, Direction.OLDER)),
    ]
    last = texts.search_page(SearchPage(12, "bridge", story(), 3, 3), tz="UTC")
    assert [b.text for b in last.buttons[-1]] == ["◀ Previous"]
    hostile = texts.search_page(SearchPage(12, "<b>x</b>", story(), 1, 1), tz="UTC")
    assert "&lt;b&gt;x&lt;/b&gt;" in hostile.text


# --- inline results --------------------------------------------------------------------------


def test_inline_story_escapes_and_links() -> None:
    shared = texts.inline_story(story())
    assert shared.id == "7"
    assert shared.title == "Bridge <reopens> & more"  # plain text in the list
    assert shared.text == (
        "<b>Bridge &lt;reopens&gt; &amp; more</b>\nTraffic flows &lt;again&gt;.\n\n"
        '<a href="https://meridian.example/7">Read more</a>'
    )
    assert shared.thumbnail_url is None and shared.url == "https://meridian.example/7"


def test_inline_story_fits_telegram_limit() -> None:
    shared = texts.inline_story(story(summary="word & " * 2000))
    assert visible_length(shared.text) <= 4096
    assert shared.text.endswith("Read more</a>")
    assert len(shared.description) <= texts.INLINE_DESCRIPTION_MAX


def test_inline_story_thumbnail_and_link_only_when_http() -> None:
    shared = texts.inline_story(story(image_url="https://img.example/a.jpg", link="javascript:x"))
    assert shared.thumbnail_url == "https://img.example/a.jpg"
    assert shared.url is None and "href" not in shared.text
    assert texts.inline_story(story(image_url="ftp://img.example/a.jpg")).thumbnail_url is None


def test_inline_result_is_an_html_article() -> None:
    built = result(texts.inline_story(story(image_url="https://img.example/a.jpg"))).to_dict()
    assert built["type"] == "article" and built["id"] == "7"
    assert built["thumbnail_url"] == "https://img.example/a.jpg"
    assert built["input_message_content"]["parse_mode"] == "HTML"


def test_ttl_cache_expires_and_stays_bounded() -> None:
    now = [0.0]
    cache = TTLCache(ttl=5.0, size=2, clock=lambda: now[0])
    answer = InlineAnswer([], "")
    cache.put(("a", 0, "en"), answer)
    assert cache.get(("a", 0, "en")) is answer
    now[0] = 5.0
    assert cache.get(("a", 0, "en")) is None
    for key in ("a", "b", "c"):
        cache.put((key, 0, "en"), answer)
    assert len(cache) == 2 and cache.get(("a", 0, "en")) is None


# --- the fake's answerInlineQuery ------------------------------------------------------------


def article_result(n: int | str, text: str = "<b>Hi</b>") -> dict[str, Any]:
    return {
        "type": "article",
        "id": str(n),
        "title": f"Story {n}",
        "input_message_content": {"message_text": text, "parse_mode": "HTML"},
    }


@pytest.fixture
def emu() -> tuple[BotApiEmulator, list[float]]:
    now = [0.0]
    emulator = BotApiEmulator(clock=lambda: now[0])
    emulator.add_user(42, "Ada")
    return emulator, now


async def answer(emulator: BotApiEmulator, query_id: str, results: Any, **more: Any) -> Any:
    return await emulator.call(
        "answerInlineQuery", {"inline_query_id": query_id, "results": json.dumps(results), **more}
    )


async def test_fake_stores_what_the_user_is_offered(
    emu: tuple[BotApiEmulator, list[float]],
) -> None:
    emulator, _ = emu
    query_id = emulator.user_inline_query(42, "hi")
    update = emulator.pending_updates[-1]["inline_query"]
    assert (update["query"], update["offset"], update["chat_type"]) == ("hi", "", "private")
    assert await answer(emulator, query_id, [article_result(1)], next_offset="1")
    offered = emulator.inline_answers[query_id]
    assert offered["results"][0]["text"] == "Hi" and offered["next_offset"] == "1"
    with pytest.raises(ApiError) as twice:
        await answer(emulator, query_id, [])
    assert twice.value.description == QUERY_TOO_OLD


@pytest.mark.parametrize(
    ("results", "reason"),
    [
        ([article_result(n) for n in range(51)], "RESULTS_TOO_MUCH"),
        ([article_result(1), article_result(1)], "RESULT_ID_DUPLICATE"),
        ([article_result("x" * 65)], "RESULT_ID_INVALID"),
        ([{**article_result(1), "title": ""}], "title is required"),
        (
            [{k: v for k, v in article_result(1).items() if k != "input_message_content"}],
            "required",
        ),
        ([article_result(1, "<b>open")], "can't parse entities"),
        ([article_result(1, "x" * 4097)], "MESSAGE_TOO_LONG"),
        ([{**article_result(1), "thumbnail_url": "file:///etc/passwd"}], "http(s)"),
    ],
)
async def test_fake_refuses_what_telegram_refuses(
    emu: tuple[BotApiEmulator, list[float]], results: Any, reason: str
) -> None:
    emulator, _ = emu
    query_id = emulator.user_inline_query(42, "hi")
    with pytest.raises(ApiError) as refused:
        await answer(emulator, query_id, results)
    assert reason in refused.value.description
    assert not emulator.is_inline_answered(query_id)


async def test_fake_refuses_a_late_answer(emu: tuple[BotApiEmulator, list[float]]) -> None:
    emulator, now = emu
    query_id = emulator.user_inline_query(42, "hi")
    now[0] = 11.0
    with pytest.raises(ApiError) as late:
        await answer(emulator, query_id, [])
    assert late.value.description == QUERY_TOO_OLD


def test_fake_required_fields_match_the_official_api() -> None:
    if not OFFICIAL.exists():
        pytest.skip(f"{OFFICIAL} is absent")
    types = json.loads(OFFICIAL.read_text("utf-8"))["types"]

    def required(name: str) -> tuple[str, ...]:
        return tuple(f["name"] for f in types[name]["fields"] if f["required"])

    assert required("InlineQueryResultArticle") == ARTICLE_REQUIRED
    assert required("InputTextMessageContent") == TEXT_CONTENT_REQUIRED
