"""The section chooser's pages: which sections each page shows, its navigation row, and that
every page fits Telegram's keyboard limits whatever the number of sections."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digests.models import SECTION_NAME_MAX, Section
from digests.readers import texts as readers_texts
from digests.readers.texts import CHOOSER_COLUMNS, CHOOSER_PAGE_SIZE
from digests.stories import texts as stories_texts
from digests.stories.sections import SectionInfo
from digests.ui import texts as ui_texts
from digests.ui.buttons import ChooserDone, ChooserPage, ToggleSection, decode
from digests.ui.render import MAX_MESSAGE, visible_length
from digests.ui.shapes import Button, Reply

INTRO = "Tap a section:"


def sections(count: int, *, name_length: int = 12) -> list[Section]:
    return [
        Section(id=1000 + n, slug=f"s{n}", name=f"S{n:03d}".ljust(name_length, "x"))
        for n in range(count)
    ]


def toggled(reply: Reply) -> list[ToggleSection]:
    found = [decode(b.data or "") for row in reply.buttons for b in row]
    return [data for data in found if isinstance(data, ToggleSection)]


def nav_row(reply: Reply) -> list[Button]:
    """The row of page buttons (the one before Done), or [] when there is none."""
    if len(reply.buttons) < 2 or not isinstance(
        decode(reply.buttons[-2][0].data or ""), ChooserPage
    ):
        return []
    return reply.buttons[-2]


def test_a_few_sections_fit_one_page_without_navigation() -> None:
    few = sections(5)
    reply = readers_texts.chooser(few, {1001, 1004}, intro=INTRO)
    assert reply.text == INTRO
    assert [[b.text for b in row] for row in reply.buttons] == [
        ["S000xxxxxxxx", "✓ S001xxxxxxxx"],
        ["S002xxxxxxxx", "S003xxxxxxxx"],
        ["✓ S004xxxxxxxx"],
        ["Done"],
    ]
    assert [t.page for t in toggled(reply)] == [1] * 5
    assert decode(reply.buttons[-1][0].data or "") == ChooserDone()


def test_130_sections_make_6_pages_of_24_in_rows_of_2() -> None:
    many = sections(130)
    assert readers_texts.chooser_pages(130) == 6
    seen: list[int] = []
    for page in range(1, 7):
        reply = readers_texts.chooser(many, set(), intro=INTRO, page=page)
        shown = toggled(reply)
        seen += [t.section_id for t in shown]
        assert {t.page for t in shown} == {page}  # a toggle comes back to its own page
        assert all(len(row) <= CHOOSER_COLUMNS for row in reply.buttons[:-2])
        nav = [(b.text, decode(b.data or "")) for b in nav_row(reply)]
        expected = []
        if page > 1:
            expected.append(("◀ Previous", ChooserPage(page - 1)))
        expected.append((f"page {page}/6", ChooserPage(page)))
        if page < 6:
            expected.append(("Next ▶", ChooserPage(page + 1)))
        assert nav == expected
        assert [b.text for b in reply.buttons[-1]] == ["Done"]
    # every section on exactly one page, in order: 5 full pages and 10 on the last
    assert seen == [s.id for s in many]
    assert len(toggled(readers_texts.chooser(many, set(), intro=INTRO, page=6))) == 130 - 5 * 24


def test_a_page_past_the_end_shows_the_last_and_below_1_the_first() -> None:
    many = sections(50)  # 3 pages
    last = readers_texts.chooser(many, set(), intro=INTRO, page=3)
    assert readers_texts.chooser(many, set(), intro=INTRO, page=9) == last
    assert readers_texts.chooser(many, set(), intro=INTRO, page=0) == readers_texts.chooser(
        many, set(), intro=INTRO
    )
    assert readers_texts.chooser_page_answer(9, 3) == "Page 3 of 3"


def test_exactly_one_full_page_has_no_navigation() -> None:
    reply = readers_texts.chooser(sections(CHOOSER_PAGE_SIZE), set(), intro=INTRO)
    assert nav_row(reply) == []
    assert len(toggled(reply)) == CHOOSER_PAGE_SIZE
    assert nav_row(readers_texts.chooser(sections(CHOOSER_PAGE_SIZE + 1), set(), intro=INTRO)) != []


def test_the_page_of_a_section() -> None:
    many = sections(60)
    assert readers_texts.chooser_page_of(many, many[0].id) == 1
    assert readers_texts.chooser_page_of(many, many[CHOOSER_PAGE_SIZE - 1].id) == 1
    assert readers_texts.chooser_page_of(many, many[CHOOSER_PAGE_SIZE].id) == 2
    assert readers_texts.chooser_page_of(many, many[-1].id) == 3
    assert readers_texts.chooser_page_of(many, 99) == 1  # gone since: the first page


def test_no_sections_says_so_without_buttons() -> None:
    reply = readers_texts.chooser([], set(), intro=INTRO, page=4)
    assert reply.buttons == []
    assert "no sections" in reply.text


@given(st.integers(min_value=1, max_value=201), st.integers(min_value=-3, max_value=12))
def test_every_page_fits_telegrams_keyboard(count: int, page: int) -> None:
    """At most 100 buttons, 8 a row, data within 64 bytes (encode() checks that)."""
    reply = readers_texts.chooser(
        sections(count, name_length=SECTION_NAME_MAX), set(), intro=INTRO, page=page
    )
    buttons = [b for row in reply.buttons for b in row]
    assert len(buttons) <= 100
    assert all(1 <= len(row) <= 8 for row in reply.buttons)
    shown_page = min(max(page, 1), readers_texts.chooser_pages(count))
    assert {t.page for t in toggled(reply)} == {shown_page}
    assert len(toggled(reply)) == min(
        CHOOSER_PAGE_SIZE, count - (shown_page - 1) * CHOOSER_PAGE_SIZE
    )


@pytest.mark.parametrize("count", [1, 20, 21, 201])
def test_summaries_stay_within_one_message_however_many_sections(count: int) -> None:
    followed = sections(count, name_length=SECTION_NAME_MAX)
    text = ui_texts.names(followed)
    assert visible_length(text) < MAX_MESSAGE // 2
    assert text.count("<b>") == min(count, ui_texts.NAMES_SHOWN)
    if count > ui_texts.NAMES_SHOWN:
        assert f"and {count - ui_texts.NAMES_SHOWN} more" in text


def test_an_unknown_name_suggests_a_bounded_list_of_slugs() -> None:
    infos = [SectionInfo(n, f"{n:03d}-".ljust(40, "y"), f"S{n}", 1) for n in range(201)]
    text = stories_texts.unknown_sections(["nope"], infos)
    assert visible_length(text) < MAX_MESSAGE
    assert "and 161 more: see /sections" in text
