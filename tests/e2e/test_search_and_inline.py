"""/search and inline mode end to end: PTB over loopback HTTP to the fake Bot API."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.handlers import inline as bot_inline
from digests.db import make_engine, make_session_factory
from digests.feeds.ingest import store_entries
from digests.feeds.parse import FeedEntry
from digests.stories import texts
from digests.ui.buttons import Direction, SearchTurn, encode
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, button, e2e_settings, logged_errors, running_bot
from tests.e2e.test_readers import NOW, position, seeded_db, story

IMG = "https://img.meridian.example/"


def titled(n: int, title: str, *, image: str | None = None, hours_ago: int = 1) -> FeedEntry:
    return dataclasses.replace(
        story(n, "World", title, hours_ago=hours_ago), image_url=image, image_caption=None
    )


async def inline(
    server: FakeBotApiServer, user_id: int, query: str, offset: str = ""
) -> dict[str, Any]:
    """The user types `@bot query` (scrolled to `offset`); returns what they are offered."""
    emulator = server.emulator
    query_id = emulator.user_inline_query(user_id, query, offset=offset, chat_type="group")
    await emulator.wait_for(lambda: emulator.is_inline_answered(query_id))
    return emulator.inline_answers[query_id]


async def test_search_pages_forward_and_back_in_one_message(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(
        tmp_path,
        titled(1, "Harbour storm damage", hours_ago=1),
        titled(2, "Harbour repairs begin", hours_ago=2),
        titled(3, "Old harbour history", hours_ago=3),
        titled(4, "Football results", hours_ago=1),
    )
    fake_api.emulator.add_user(801, "Sia")
    reader = Reader(fake_api, 801)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
            [page] = await reader.send("/search Harbour")
            assert "Harbour" in page.text and position(page.text) == (1, 3)
            assert "Search “harbour”: 1 / 3" in page.text
            assert "Previous" not in str(page.buttons)
            seen = [page.text.splitlines()[0]]
            for expected in (2, 3):
                shown = reader.current(page)
                await reader.press(shown, button(shown, "Next"))
                assert position(reader.current(page).text) == (expected, 3)
                seen.append(reader.current(page).text.splitlines()[0])
            assert "Next" not in str(reader.current(page).buttons)
            assert sorted(seen) == sorted(
                ["Harbour storm damage", "Harbour repairs begin", "Old harbour history"]
            )  # every result once, none skipped or repeated
            shown = reader.current(page)
            await reader.press(shown, button(shown, "Previous"))
            assert reader.current(page).text.splitlines()[0] == seen[1]
            assert len(reader.bot_messages()) == 1  # paging edited the one message in place
    assert errors == []


async def test_search_photo_pages_are_edited_in_place(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    url = await seeded_db(
        tmp_path,
        titled(1, "Eclipse seen", image=IMG + "one.jpg", hours_ago=1),
        titled(2, "Eclipse tonight", image=IMG + "two.jpg", hours_ago=2),
    )
    fake_api.emulator.add_user(802, "Tom")
    reader = Reader(fake_api, 802)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [page] = await reader.send("/search eclipse")
        assert page.photo == IMG + "one.jpg"
        await reader.press(page, button(page, "Next"))
        assert reader.current(page).photo == IMG + "two.jpg"
        assert position(reader.current(page).text) == (2, 2)
        assert len(reader.bot_messages()) == 1


async def test_search_usage_and_no_results(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    url = await seeded_db(tmp_path, titled(1, "Harbour storm"))
    fake_api.emulator.add_user(803, "Uma")
    reader = Reader(fake_api, 803)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [usage] = await reader.send("/search")
        assert usage.text.startswith("Usage: /search words")
        [punctuation] = await reader.send('/search ()*:"&|!')
        assert punctuation.text.startswith("Usage: /search words")
        [none] = await reader.send("/search <b>zebra</b> NEAR")
        assert none.text == "No stories found for “b zebra near”. Try fewer or other words."


async def test_stale_and_foreign_search_buttons(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    url = await seeded_db(tmp_path, titled(1, "Harbour storm"), titled(2, "Harbour calm"))
    fake_api.emulator.add_user(804, "Val")
    fake_api.emulator.add_user(805, "Wes")
    reader, other = Reader(fake_api, 804), Reader(fake_api, 805)
    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        [page] = await reader.send("/search harbour")
        next_data = button(page, "Next")
        [theirs] = await other.send("/help")
        # the same button pressed in another chat (a forged press) shows nothing of it
        answer = await other.press(theirs, next_data, force=True)
        assert answer["text"] == texts.search_expired()
        unknown = encode(SearchTurn(999_999, 2, Direction.OLDER))
        answer = await reader.press(page, unknown, force=True)
        assert answer["text"] == texts.search_expired()
        assert position(reader.current(page).text) == (1, 2)  # nothing changed


async def test_inline_query_offers_matching_stories_with_paging(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    comets = [
        titled(n, f"Comet <{n}> & tail", image=IMG + "c.jpg" if n == 1 else None, hours_ago=n)
        for n in range(1, 26)
    ]
    url = await seeded_db(tmp_path, *comets, titled(99, "Freshest story", hours_ago=0))
    fake_api.emulator.add_user(806, "Xan")
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
            first = await inline(fake_api, 806, "comet")
            assert len(first["results"]) == 20 and first["next_offset"] == "20"
            assert first["is_personal"] is False and first["cache_time"] > 0
            top = first["results"][0]
            assert top["title"] == "Comet <1> & tail"  # plain text in the list
            assert top["thumbnail_url"] == IMG + "c.jpg"
            assert first["results"][1]["thumbnail_url"] is None
            assert top["text"].startswith("Comet <1> & tail\nSummary 1")  # what gets sent
            assert {"type": "bold", "offset": 0, "length": 16} in top["entities"]
            assert any(e.get("url") == "https://meridian.example/1" for e in top["entities"])
            more = await inline(fake_api, 806, "comet", offset=first["next_offset"])
            assert len(more["results"]) == 5 and more["next_offset"] == ""
            ids = [r["id"] for r in first["results"] + more["results"]]
            assert len(set(ids)) == 25  # scrolling shows each story once
            latest = await inline(fake_api, 806, "")
            assert latest["results"][0]["title"] == "Freshest story"
            nothing = await inline(fake_api, 806, "zebra")
            assert nothing["results"] == [] and nothing["next_offset"] == ""
            forged = await inline(fake_api, 806, "comet", offset="x")
            assert forged["results"] == []
            answers = [c for c in fake_api.emulator.calls if c.method == "answerInlineQuery"]
            # said explicitly: the same answer may be shown to everyone who types these words
            assert {str(c.params.get("is_personal")).lower() for c in answers} == {"false"}
    assert errors == []


async def test_slow_or_failing_inline_search_is_answered_empty(
    fake_api: FakeBotApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = await seeded_db(tmp_path, titled(1, "Comet sighting"))
    fake_api.emulator.add_user(807, "Yan")

    async def slow(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    async with running_bot(fake_api, e2e_settings(fake_api, url), now=NOW):
        monkeypatch.setattr(bot_inline, "ANSWER_WITHIN", 0.2)
        monkeypatch.setattr(bot_inline, "inline_page", slow)
        late = await inline(fake_api, 807, "comet")
        assert (late["results"], late["cache_time"]) == ([], 0)  # not cached by Telegram
        monkeypatch.setattr(bot_inline, "inline_page", broken)
        failed = await inline(fake_api, 807, "comet again")
        assert (failed["results"], failed["cache_time"]) == ([], 0)
        monkeypatch.undo()
        works = await inline(fake_api, 807, "comet")  # the failures were not cached here
        assert [r["title"] for r in works["results"]] == ["Comet sighting"]


async def test_search_on_each_database(fake_api: FakeBotApiServer, db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with make_session_factory(engine).begin() as session:
            await store_entries(
                session,
                [titled(n, f"Councils running elections {n}", hours_ago=n) for n in (1, 2)],
                now=NOW,
                category_map={},
                default_section="General",
            )
    finally:
        await engine.dispose()
    fake_api.emulator.add_user(808, "Zoe")
    reader = Reader(fake_api, 808)
    async with running_bot(fake_api, e2e_settings(fake_api, db_url), now=NOW):
        [page] = await reader.send("/search election run")  # stemmed on both databases
        assert page.text.startswith("Councils running elections 1")
        await reader.press(page, button(page, "Next"))
        assert reader.current(page).text.startswith("Councils running elections 2")
        offered = await inline(fake_api, 808, "elections")
        assert len(offered["results"]) == 2
