"""The callback-data protocol: every button's data round-trips, fits Telegram's 64 bytes,
and anything else decodes to None."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digests.ui.buttons import (
    ACTION_PATTERN,
    DIGEST_PATTERN,
    LANGUAGE_PATTERN,
    MAX_BYTES,
    MAX_ID,
    MAX_PAGE,
    MAX_TS,
    MIN_TS,
    PAGE_PATTERN,
    PUSH_PATTERN,
    SEARCH_PATTERN,
    SETTINGS_BUTTONS,
    SETTINGS_PATTERN,
    ActionChoice,
    ActionStep,
    BadButtonData,
    ButtonData,
    ChooserDone,
    ChooserPage,
    DigestControl,
    Direction,
    LanguageChoice,
    PageTurn,
    PushChoice,
    SearchTurn,
    SettingsChoice,
    ToggleSection,
    Unsubscribe,
    decode,
    encode,
)

ids = st.integers(min_value=0, max_value=MAX_ID)
times = st.integers(min_value=MIN_TS, max_value=MAX_TS)
pages = st.integers(min_value=1, max_value=MAX_PAGE)
every_button = st.one_of(
    st.builds(PageTurn, ids, times, ids, st.sampled_from(Direction)),
    st.builds(SearchTurn, ids, pages, st.sampled_from(Direction)),
    st.builds(ToggleSection, ids, pages | st.none()),
    st.builds(ChooserPage, pages),
    st.just(ChooserDone()),
    st.sampled_from(Unsubscribe),
    st.sampled_from(SettingsChoice),
    st.sampled_from(DigestControl),
    st.builds(PushChoice, ids, send=st.booleans()),
    st.builds(
        ActionChoice,
        st.sampled_from([step for step in ActionStep if step is not ActionStep.CORRECT_YES]),
        ids,
    ),
    st.builds(
        ActionChoice,
        st.just(ActionStep.CORRECT_YES),
        ids,
        st.from_regex(r"[0-9a-f]{12}", fullmatch=True),
    ),
)


@given(every_button)
def test_every_button_round_trips_within_64_bytes(data: ButtonData) -> None:
    text = encode(data)
    assert 1 <= len(text.encode()) <= MAX_BYTES
    assert decode(text) == data


@given(every_button)
def test_each_button_is_routed_by_exactly_one_pattern(data: ButtonData) -> None:
    text = encode(data)
    patterns = (
        PAGE_PATTERN,
        SEARCH_PATTERN,
        SETTINGS_PATTERN,
        DIGEST_PATTERN,
        PUSH_PATTERN,
        ACTION_PATTERN,
    )
    routes = [p for p in patterns if p.match(text)]
    assert len(routes) == 1
    assert (routes[0] is SETTINGS_PATTERN) == isinstance(data, SETTINGS_BUTTONS)
    assert (routes[0] is DIGEST_PATTERN) == isinstance(data, DigestControl)


def test_digest_controls_carry_no_chat_and_have_one_spelling_each() -> None:
    assert [encode(c) for c in DigestControl] == ["D:pause", "D:sections", "D:stop"]
    assert type(decode("D:sections")) is DigestControl
    assert type(decode("C:sections")) is SettingsChoice
    assert decode("C:resume") is SettingsChoice.RESUME


def test_the_largest_and_the_earliest_cursors_fit() -> None:
    turn = PageTurn(MAX_ID, MAX_TS, MAX_ID, Direction.OLDER)
    assert encode(turn) == "L:2147483647:253402300799:2147483647:n"
    assert decode(encode(turn) + "x") is None
    before_1970 = PageTurn(0, -86_400, 7, Direction.NEWER)  # a story from 31 Dec 1969
    assert decode(encode(before_1970)) == before_1970


def test_data_over_64_bytes_is_refused_before_it_reaches_telegram() -> None:
    with pytest.raises(BadButtonData, match="bytes"):
        encode(PageTurn(0, 10**60, 0, Direction.OLDER))


def test_action_buttons_have_one_spelling_each() -> None:
    assert encode(ActionChoice(ActionStep.CORRECT, 12)) == "K:c:12"
    assert encode(ActionChoice(ActionStep.WITHDRAW_YES, MAX_ID)) == "K:wy:2147483647"
    confirm = ActionChoice(ActionStep.CORRECT_YES, MAX_ID, "0123456789ab")
    assert encode(confirm) == "K:cy:2147483647:0123456789ab"
    assert decode("K:cy:2147483647:0123456789ab") == confirm


def test_chooser_buttons_carry_their_page_and_old_toggles_still_read() -> None:
    assert encode(ToggleSection(MAX_ID, MAX_PAGE)) == "S:t:2147483647:999"
    assert encode(ChooserPage(3)) == "S:p:3"
    # a toggle sent before the chooser had pages: no page, still a toggle
    assert decode("S:t:17") == ToggleSection(17, None)
    assert encode(ToggleSection(17, None)) == "S:t:17"
    assert ToggleSection(17) == ToggleSection(17, 1)


@pytest.mark.parametrize(
    "data",
    [
        ToggleSection(-1),
        ToggleSection(MAX_ID + 1),
        ToggleSection(1, 0),
        ToggleSection(1, MAX_PAGE + 1),
        ChooserPage(0),
        ChooserPage(-1),
        ChooserPage(MAX_PAGE + 1),
        PushChoice(MAX_ID + 1, send=True),
        ActionChoice(ActionStep.CORRECT_YES, 1),  # the confirm button names its correction
        ActionChoice(ActionStep.CORRECT_YES, 1, "ABCDEF012345"),
        ActionChoice(ActionStep.WITHDRAW_YES, 1, "abcdef012345"),
        ActionChoice(ActionStep.WITHDRAW, MAX_ID + 1),
    ],
)
def test_data_that_would_not_read_back_is_refused(data: ButtonData) -> None:
    with pytest.raises(BadButtonData, match="read back"):
        encode(data)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "??",
        "L:1:abc:1:n",
        "L:1:1:1:x",
        "L:1:1:1",
        "L:1:1:1:n:extra",
        "L:-1:1:1:n",
        "S:t:x",
        "S:t:",
        "S:t:12345678901",
        "S:done:x",
        "U:",
        "U:everything",
        "C:nope",
        "B:send:",
        "B:send:x",
        "B:launch:1",
        "B:send:1234567890123",
        "L:１:1:1:n",  # full-width digit
        "B:send:²",  # a Unicode digit int() refuses
        "B:cancel:999999999999",  # beyond a database id
        "B:send:2147483648",
        "L:0:999999999999:999999999999:p",
        "L:2147483648:1:1:n",
        "L:0:1:2147483648:n",
        "L:0:999999999999:1:n",  # after the year 9999
        "L:0:-99999999999:1:n",  # before the year 1
        "L:0:--1:1:n",
        "S:t:2147483648",
        "S:t:1:",
        "S:t:1:0",  # pages count from 1
        "S:t:1:1000",  # beyond MAX_PAGE
        "S:t:1:01",  # one spelling per number: no leading zeros
        "S:t:01",
        "S:t:1:1:1",
        "S:t:1:x",
        "S:t::1",
        "S:t:1:-1",
        "S:t:1:２",  # full-width digit
        "S:p:",
        "S:p:0",
        "S:p:1000",
        "S:p:007",
        "S:p:-1",
        "S:p:1:1",
        "S:p:x",
        "S:p:³",
        "S:page:2",
        "L:01:1:1:n",
        "L:0:01:1:n",
        "L:0:-0:1:n",
        "B:send:01",
        "K:",
        "K:c",
        "K:c:",
        "K:c:01",
        "K:c:2147483648",
        "K:c:1:abcdef012345",  # only the correction's confirm carries a digest
        "K:cy:1",
        "K:cy:1:abcdef01234",  # 11 digits
        "K:cy:1:abcdef0123456",
        "K:cy:1:ABCDEF012345",
        "K:cy:1:abcdeg012345",
        "K:wy:1:abcdef012345",
        "K:wy:²",
        "K:wipe:1",
        "K:w:-1",
        "D:",
        "D:PAUSE",
        "D:pause:1",
        "D:pause:-100123",
        "D:stop ",
        "D:resume",
        "D:snooze",
    ],
)
def test_stale_or_tampered_data_decodes_to_nothing(text: str) -> None:
    assert decode(text) is None


@given(st.text(max_size=70))
def test_decoding_never_raises(text: str) -> None:
    found = decode(text)
    if found is not None:
        assert encode(found) == text


numbers = st.from_regex(r"-?0{0,2}[0-9]{1,4}", fullmatch=True) | st.sampled_from(["", "１", "²"])
near_misses = st.builds(
    lambda prefix, fields, tail: prefix + ":".join(fields) + tail,
    st.sampled_from(["S:t:", "S:p:", "B:send:", "B:cancel:", "L:", "K:c:", "K:cy:", "K:wy:"]),
    st.lists(numbers, min_size=1, max_size=4),
    st.sampled_from(["", ":n", ":p", ":"]),
)


@given(near_misses)
def test_near_misses_decode_to_nothing_or_to_their_one_spelling(text: str) -> None:
    """Digits in every position, with or without leading zeros, signs and extra fields: what
    decodes writes back exactly as it came, so one button value has one data string."""
    found = decode(text)
    if found is not None:
        assert encode(found) == text


def test_language_buttons_read_back_and_refuse_made_up_data() -> None:
    assert encode(LanguageChoice("ru")) == "G:ru"
    assert decode("G:en") == LanguageChoice("en")
    assert LANGUAGE_PATTERN.match("G:ru")
    for forged in ("G:", "G:RU", "G:rus", "G:r", "G:ru:1", "G:ру"):
        assert decode(forged) is None
