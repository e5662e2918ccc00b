"""A publisher whose feed has a category on every story: the chat stays usable."""

from __future__ import annotations

import re

from sqlalchemy import select

from digests.db import make_engine, make_session_factory
from digests.feeds.ingest import store_entries
from digests.feeds.parse import FeedEntry
from digests.models import Chat, Section, Subscription
from digests.readers import texts
from digests.settings import Settings
from digests.stories.sections import SectionInfo, list_sections
from digests.ui.buttons import ChooserPage, ToggleSection, decode, encode
from fakebotapi.emulator import StoredMessage
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader, button, e2e_settings, logged_errors, running_bot
from tests.e2e.test_readers import NOW

PAGE_LABEL = re.compile(r"^page (\d+)/(\d+)$")


async def _many_sections(url: str, *, categories: int, cap: int) -> list[SectionInfo]:
    """Store one story a category, `cap` sections at most (the rest under General)."""
    entries = [
        FeedEntry(
            f"m{i}",
            None,
            f"Story {i}",
            "s",
            NOW,
            (f"Topic {i:03d} {'regional affairs ' * 4}".strip(),),
        )
        for i in range(categories)
    ]
    engine = make_engine(url)
    try:
        async with make_session_factory(engine).begin() as session:
            report = await store_entries(
                session, entries, now=NOW, category_map={}, default_section="General",
                source="feed", max_sections=cap,
            )  # fmt: skip
        assert (
            report.warnings
            and f"{categories - cap} categories filed under General" in (report.warnings[0])
        )
        async with make_session_factory(engine)() as session:
            return await list_sections(session)
    finally:
        await engine.dispose()


async def _followed_names(url: str, telegram_id: int) -> set[str]:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            found = await session.scalars(
                select(Section.name)
                .join(Subscription, Subscription.section_id == Section.id)
                .join(Chat, Chat.id == Subscription.chat_id)
                .where(Chat.telegram_id == telegram_id)
            )
            return set(found)
    finally:
        await engine.dispose()


def _page(message: StoredMessage) -> tuple[int, int]:
    """The chooser's "page n/N" button, read as (n, N)."""
    for b in message.buttons:
        if found := PAGE_LABEL.match(b["text"]):
            return int(found[1]), int(found[2])
    raise AssertionError(f"no page button in {[b['text'] for b in message.buttons]}")


def _sections_shown(message: StoredMessage) -> list[str]:
    return [
        b["text"].removeprefix("✓ ")
        for b in message.buttons
        if isinstance(decode(b.get("callback_data", "")), ToggleSection)
    ]


def _edits(fake_api: FakeBotApiServer) -> int:
    return sum(1 for c in fake_api.emulator.calls if c.method.startswith("editMessage"))


async def test_130_sections_page_through_the_chooser_and_sections_within_telegrams_limits(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    limit = Settings.model_fields["max_sections"].metadata  # the setting's bounds
    assert any(getattr(bound, "le", None) == 200 for bound in limit)
    infos = await _many_sections(db_url, categories=150, cap=129)
    assert len(infos) == 130  # 129 from categories, and General for the rest
    expected = len(texts.sections_list(infos, set()))
    assert expected > 1  # too long for one message
    fake_api.emulator.add_user(701, "Hal")
    reader = Reader(fake_api, 701)
    with logged_errors() as errors:
        async with running_bot(fake_api, e2e_settings(fake_api, db_url), now=NOW):
            [chooser] = await reader.send("/start")
            # the strict fake refuses a keyboard over 100 buttons: this one is one page
            assert len(chooser.buttons) == 24 + 2 + 1  # sections, page 1/6 and Next, Done
            assert _page(chooser) == (1, 6)
            assert "Previous" not in str(chooser.buttons)
            first_page = _sections_shown(chooser)

            seen = list(first_page)
            for page in (2, 3):
                shown = reader.current(chooser)
                answer = await reader.press(shown, button(shown, "Next ▶"))
                assert answer["text"] == f"Page {page} of 6"
                assert _page(reader.current(chooser)) == (page, 6)
                seen += _sections_shown(reader.current(chooser))
            assert len(seen) == len(set(seen)) == 72  # three different pages of 24
            assert len(reader.bot_messages()) == 1  # paging edited the one message in place
            assert "Welcome" in reader.current(chooser).text  # the greeting stays above

            on_page_3 = _sections_shown(reader.current(chooser))[5]
            answer = await reader.press(chooser, button(reader.current(chooser), on_page_3))
            assert answer["text"] == "Following"
            after = reader.current(chooser)
            assert _page(after) == (3, 6)  # still on the page the reader was on
            assert f"✓ {on_page_3}" in [b["text"] for b in after.buttons]

            # the page number between the arrows re-shows this page: answered, not edited
            edits = _edits(fake_api)
            answer = await reader.press(after, button(after, "page 3/6"))
            assert answer["text"] == "Page 3 of 6"
            assert _edits(fake_api) == edits
            assert reader.current(chooser).buttons == after.buttons

            answer = await reader.press(after, button(after, "◀ Previous"))
            assert _page(reader.current(chooser)) == (2, 6)
            on_page_2 = _sections_shown(reader.current(chooser))[0]
            answer = await reader.press(chooser, button(reader.current(chooser), on_page_2))
            assert answer["text"] == "Following"
            assert _page(reader.current(chooser)) == (2, 6)
            await reader.press(chooser, button(reader.current(chooser), "Next ▶"))
            assert _page(reader.current(chooser)) == (3, 6)
            for state in ("Not following", "Following"):  # unfollow it again, and back
                answer = await reader.press(chooser, button(reader.current(chooser), on_page_3))
                assert answer["text"] == state
                assert _page(reader.current(chooser)) == (3, 6)
            last = reader.current(chooser)
            for _ in range(3):
                await reader.press(last, button(last, "Next ▶"))
                last = reader.current(chooser)
            assert _page(last) == (6, 6)
            assert "Next" not in str(last.buttons)
            assert len(_sections_shown(last)) == 130 - 5 * 24

            await reader.press(last, button(last, "Done"))
            done = reader.current(chooser)
            assert done.buttons == []
            assert on_page_2 in done.text and on_page_3 in done.text
            assert await _followed_names(db_url, 701) == {on_page_2, on_page_3}

            # a toggle from before the chooser had pages (no page number) still works, and
            # shows the page that holds its section
            by_name = {info.name: info.id for info in infos}
            [old] = await reader.send("/subscribe")
            assert _page(old) == (1, 6)
            answer = await reader.press(
                old, encode(ToggleSection(by_name[on_page_3], None)), force=True
            )
            assert answer["text"] == "Not following"
            assert _page(reader.current(old)) == (3, 6)
            assert on_page_3 in _sections_shown(reader.current(old))
            # a page past the end (sections were removed since) shows the last page
            await reader.press(old, encode(ChooserPage(40)), force=True)
            assert _page(reader.current(old)) == (6, 6)
            assert await _followed_names(db_url, 701) == {on_page_2}

            parts = await reader.send("/sections", replies=expected)
            assert sum(part.text.count("/latest ") for part in parts) == 130
            assert all(len(part.text) <= 4096 for part in parts)
    assert errors == []
    assert [c.error for c in fake_api.emulator.calls if c.error is not None] == []
