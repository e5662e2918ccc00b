"""When digests are due: local times, far-away time zones, daylight saving, catching up."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digests.schedule import catch_up, check_timezone, due_window, next_digest_at, parse_hhmm


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(tz: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz), fold=fold)  # type: ignore[misc]


# --- ordinary days and far-away zones --------------------------------------------------------


def test_later_today_when_the_time_has_not_come_yet() -> None:
    after = local("Europe/Berlin", 2026, 6, 15, 6, 0)
    assert next_digest_at(time(8, 0), "Europe/Berlin", after=after) == utc(2026, 6, 15, 6, 0)


def test_tomorrow_when_the_time_has_passed_today() -> None:
    after = local("Europe/Berlin", 2026, 6, 15, 9, 0)
    assert next_digest_at(time(8, 0), "Europe/Berlin", after=after) == utc(2026, 6, 16, 6, 0)


def test_strictly_after_the_given_instant() -> None:
    due = next_digest_at(time(8, 0), "Europe/Berlin", after=utc(2026, 6, 15, 0, 0))
    assert due == utc(2026, 6, 15, 6, 0)
    assert next_digest_at(time(8, 0), "Europe/Berlin", after=due) == utc(2026, 6, 16, 6, 0)


def test_result_is_utc_and_accepts_a_zoneinfo() -> None:
    due = next_digest_at(time(8, 0), ZoneInfo("Europe/Berlin"), after=utc(2026, 1, 10, 12, 0))
    assert due == utc(2026, 1, 11, 7, 0)
    assert due.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("tz", "digest_time", "after", "expected"),
    [
        # 00:00 UTC is already noon in Auckland (NZST, +12): tomorrow's 07:00 there.
        ("Pacific/Auckland", time(7, 0), utc(2026, 6, 15, 0, 0), utc(2026, 6, 15, 19, 0)),
        # NZDT (+13) in January.
        ("Pacific/Auckland", time(7, 0), utc(2026, 1, 15, 0, 0), utc(2026, 1, 15, 18, 0)),
        # 00:00 UTC is still yesterday 17:00 in Los Angeles (PDT, -7).
        ("America/Los_Angeles", time(7, 0), utc(2026, 6, 15, 0, 0), utc(2026, 6, 15, 14, 0)),
        ("America/Los_Angeles", time(23, 45), utc(2026, 12, 1, 0, 0), utc(2026, 12, 1, 7, 45)),
        # Half-hour offset (+05:30).
        ("Asia/Kolkata", time(8, 30), utc(2026, 6, 15, 0, 0), utc(2026, 6, 15, 3, 0)),
        ("Asia/Kolkata", time(0, 15), utc(2026, 6, 15, 0, 0), utc(2026, 6, 15, 18, 45)),
    ],
)
def test_far_east_and_west(tz: str, digest_time: time, after: datetime, expected: datetime) -> None:
    due = next_digest_at(digest_time, tz, after=after)
    assert due == expected
    assert due.astimezone(ZoneInfo(tz)).time() == digest_time


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_digest_at(time(8, 0), "UTC", after=datetime(2026, 6, 15, 0, 0))  # noqa: DTZ001


# --- daylight saving -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        # Berlin jumps 02:00 CET -> 03:00 CEST at 01:00 UTC.
        ("Europe/Berlin", utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0)),
        # New York jumps 02:00 EST -> 03:00 EDT at 07:00 UTC.
        ("America/New_York", utc(2026, 3, 7, 12, 0), utc(2026, 3, 8, 7, 0)),
    ],
)
def test_time_in_spring_forward_gap_is_due_when_the_clock_jumps(
    tz: str, after: datetime, expected: datetime
) -> None:
    due = next_digest_at(time(2, 30), tz, after=after)
    assert due == expected
    assert due.astimezone(ZoneInfo(tz)).time() == time(3, 0)
    # ...and the day after it is back to 02:30.
    following = next_digest_at(time(2, 30), tz, after=due)
    assert following.astimezone(ZoneInfo(tz)).time() == time(2, 30)
    assert following - due == timedelta(hours=23, minutes=30)


def test_after_given_as_a_nonexistent_wall_time() -> None:
    # 02:00 on the gap day does not exist; zoneinfo reads it as 01:00 UTC, the jump itself,
    # which is that day's instant for 02:30, so the next one is the day after.
    after = local("Europe/Berlin", 2026, 3, 29, 2, 0)
    assert next_digest_at(time(2, 30), "Europe/Berlin", after=after) == utc(2026, 3, 30, 0, 30)


@pytest.mark.parametrize(
    ("tz", "digest_time", "after", "first", "second"),
    [
        # Berlin 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET).
        (
            "Europe/Berlin",
            time(2, 30),
            utc(2026, 10, 24, 12, 0),
            utc(2026, 10, 25, 0, 30),
            utc(2026, 10, 25, 1, 30),
        ),
        # New York 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
        (
            "America/New_York",
            time(1, 30),
            utc(2026, 10, 31, 12, 0),
            utc(2026, 11, 1, 5, 30),
            utc(2026, 11, 1, 6, 30),
        ),
    ],
)
def test_time_in_fall_back_overlap_is_due_once_at_first_occurrence(
    tz: str, digest_time: time, after: datetime, first: datetime, second: datetime
) -> None:
    assert next_digest_at(digest_time, tz, after=after) == first
    following = next_digest_at(digest_time, tz, after=first)
    assert following != second
    assert following.astimezone(ZoneInfo(tz)).date() == first.astimezone(ZoneInfo(tz)).date() + (
        timedelta(days=1)
    )
    assert following.astimezone(ZoneInfo(tz)).time() == digest_time
    # Between the two occurrences, too, the next one is tomorrow's.
    assert next_digest_at(digest_time, tz, after=first + timedelta(minutes=45)) == following


@pytest.mark.parametrize(
    ("tz", "digest_time", "month", "change_day"),
    [
        ("Europe/Berlin", time(2, 30), date(2026, 3, 1), date(2026, 3, 29)),
        ("Europe/Berlin", time(2, 30), date(2026, 10, 1), date(2026, 10, 25)),
        ("America/New_York", time(2, 30), date(2026, 3, 1), date(2026, 3, 8)),
        ("America/New_York", time(1, 30), date(2026, 11, 1), date(2026, 11, 1)),
        ("Europe/Berlin", time(8, 0), date(2026, 3, 1), date(2026, 3, 29)),
        ("Pacific/Auckland", time(2, 30), date(2026, 9, 1), date(2026, 9, 27)),
        ("Pacific/Auckland", time(2, 30), date(2026, 4, 1), date(2026, 4, 5)),
    ],
)
def test_exactly_one_instant_per_local_day_across_a_change(
    tz: str, digest_time: time, month: date, change_day: date
) -> None:
    zone = ZoneInfo(tz)
    start = datetime.combine(month, time(0, 0), tzinfo=zone) - timedelta(seconds=1)
    instants = [next_digest_at(digest_time, tz, after=start)]
    while len(instants) < 40:
        instants.append(next_digest_at(digest_time, tz, after=instants[-1]))

    assert all(a < b for a, b in zip(instants, instants[1:], strict=False))
    days = [instant.astimezone(zone).date() for instant in instants]
    assert days == [month + timedelta(days=n) for n in range(40)]
    assert change_day in days
    for instant in instants:
        wall = instant.astimezone(zone)
        if wall.time() != digest_time:
            # Only allowed on the gap day, and then exactly at the jump.
            assert wall.date() == change_day
            before = (instant - timedelta(seconds=1)).astimezone(zone)
            assert before.utcoffset() != wall.utcoffset()
            assert before.time() < digest_time < wall.time()
        else:
            assert wall.fold == 0


_ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "America/Santiago",  # changes at midnight
    "America/St_Johns",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Auckland",
    "Pacific/Chatham",  # +12:45 / +13:45
    "Australia/Lord_Howe",  # half-hour daylight saving
]


# Local days of 2026 on which a zone changes its clocks, each with a local time the change skips
# (gap) or repeats (overlap), so that the property is checked there too, not just by luck.
_CHANGES = [
    ("Europe/Berlin", date(2026, 3, 29), time(2, 30)),
    ("Europe/Berlin", date(2026, 10, 25), time(2, 30)),
    ("Europe/London", date(2026, 3, 29), time(1, 30)),
    ("Europe/London", date(2026, 10, 25), time(1, 0)),
    ("America/New_York", date(2026, 3, 8), time(2, 0)),
    ("America/New_York", date(2026, 11, 1), time(1, 30)),
    ("America/Los_Angeles", date(2026, 3, 8), time(2, 59, 59)),
    ("America/Los_Angeles", date(2026, 11, 1), time(1, 59)),
    ("America/St_Johns", date(2026, 3, 8), time(2, 30)),
    ("America/St_Johns", date(2026, 11, 1), time(1, 30)),
    ("America/Santiago", date(2026, 4, 4), time(23, 30)),
    ("America/Santiago", date(2026, 9, 6), time(0, 0)),
    ("Pacific/Auckland", date(2026, 4, 5), time(2, 30)),
    ("Pacific/Auckland", date(2026, 9, 27), time(2, 30)),
    ("Pacific/Chatham", date(2026, 4, 5), time(3, 0)),
    ("Pacific/Chatham", date(2026, 9, 27), time(3, 0)),
    ("Australia/Lord_Howe", date(2026, 4, 5), time(1, 45)),
    ("Australia/Lord_Howe", date(2026, 10, 4), time(2, 15)),
]


@st.composite
def _near_a_change(draw: st.DrawFn) -> tuple[str, time, datetime]:
    tz, day, tricky = draw(st.sampled_from(_CHANGES))
    day_before = datetime.combine(day - timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(tz))
    shift = draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=52)))
    return tz, draw(st.one_of(st.just(tricky), st.times())), day_before + shift


_anywhere = st.tuples(
    st.sampled_from(_ZONES),
    st.times(),
    st.datetimes(
        min_value=datetime(2026, 1, 1),  # noqa: DTZ001
        max_value=datetime(2027, 12, 31, 23, 59),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)


@given(case=st.one_of(_anywhere, _near_a_change()))
def test_next_digest_at_properties(case: tuple[str, time, datetime]) -> None:
    tz, digest_time, after = case
    zone = ZoneInfo(tz)
    due = next_digest_at(digest_time, tz, after=after)
    assert due.utcoffset() == timedelta(0)
    assert due > after
    assert due - after <= timedelta(hours=26)
    wall = due.astimezone(zone)
    if wall.time() == digest_time:
        assert wall.fold == 0
    else:
        # digest_time did not exist that day: due is the instant the clock jumped over it.
        before = (due - timedelta(seconds=1)).astimezone(zone)
        assert before.utcoffset() != wall.utcoffset()
        assert before.replace(tzinfo=None) < datetime.combine(wall.date(), digest_time)
        assert datetime.combine(wall.date(), digest_time) < wall.replace(tzinfo=None)
    # Nothing was skipped: `after` read a local time between the previous day's digest_time
    # and due's day's one, so no day's digest fell between `after` and `due`.
    target = datetime.combine(wall.date(), digest_time)
    after_wall = after.astimezone(UTC).astimezone(zone).replace(tzinfo=None)  # normalized
    assert target - timedelta(days=1) <= after_wall < target


# --- windows -------------------------------------------------------------------------------


def test_first_window_looks_back_a_day() -> None:
    due = utc(2026, 6, 15, 6, 0)
    assert due_window(None, due) == (utc(2026, 6, 14, 6, 0), due)
    assert due_window(None, due, first_lookback=timedelta(hours=6)) == (utc(2026, 6, 15, 0), due)


def test_window_starts_at_the_last_digest() -> None:
    due = utc(2026, 6, 15, 6, 0)
    last = utc(2026, 6, 12, 6, 0)
    assert due_window(last, due) == (last, due)


# --- catching up after downtime --------------------------------------------------------------

BERLIN = "Europe/Berlin"
EIGHT = time(8, 0)


def test_three_missed_days_within_grace_send_only_the_latest_once() -> None:
    missed_first = local(BERLIN, 2026, 6, 12, 8, 0)
    now = local(BERLIN, 2026, 6, 15, 8, 20)
    send, following = catch_up(
        missed_first, now=now, grace=timedelta(hours=1), digest_time=EIGHT, tz=BERLIN
    )
    assert send == local(BERLIN, 2026, 6, 15, 8, 0)
    assert following == local(BERLIN, 2026, 6, 16, 8, 0)
    # The stored next instant moves past now, so running it again sends nothing more.
    assert catch_up(following, now=now, grace=timedelta(hours=1), digest_time=EIGHT, tz=BERLIN) == (
        None,
        following,
    )


def test_latest_missed_instant_beyond_grace_is_skipped() -> None:
    missed_first = local(BERLIN, 2026, 6, 12, 8, 0)
    now = local(BERLIN, 2026, 6, 15, 10, 0)
    send, following = catch_up(
        missed_first, now=now, grace=timedelta(hours=1), digest_time=EIGHT, tz=BERLIN
    )
    assert send is None
    assert following == local(BERLIN, 2026, 6, 16, 8, 0)
    assert following > now


def test_latest_missed_is_yesterdays_when_todays_has_not_come() -> None:
    missed_first = local(BERLIN, 2026, 6, 12, 8, 0)
    now = local(BERLIN, 2026, 6, 15, 7, 0)
    yesterday = local(BERLIN, 2026, 6, 14, 8, 0)
    today = local(BERLIN, 2026, 6, 15, 8, 0)
    assert catch_up(
        missed_first, now=now, grace=timedelta(hours=2), digest_time=EIGHT, tz=BERLIN
    ) == (None, today)
    assert catch_up(
        missed_first, now=now, grace=timedelta(hours=23), digest_time=EIGHT, tz=BERLIN
    ) == (yesterday, today)


def test_single_missed_instant_exactly_at_grace_is_sent() -> None:
    due = local(BERLIN, 2026, 6, 15, 8, 0)
    now = due + timedelta(minutes=30)
    assert catch_up(due, now=now, grace=timedelta(minutes=30), digest_time=EIGHT, tz=BERLIN) == (
        due,
        local(BERLIN, 2026, 6, 16, 8, 0),
    )


def test_long_outage_still_catches_up_to_now() -> None:
    missed_first = utc(2026, 1, 1, 7, 0)
    now = local(BERLIN, 2026, 7, 1, 8, 5)
    send, following = catch_up(
        missed_first, now=now, grace=timedelta(minutes=10), digest_time=EIGHT, tz=BERLIN
    )
    assert send == local(BERLIN, 2026, 7, 1, 8, 0)
    assert following == local(BERLIN, 2026, 7, 2, 8, 0)


def test_not_yet_due_is_left_alone() -> None:
    due = local(BERLIN, 2026, 6, 15, 8, 0)
    now = due - timedelta(minutes=1)
    assert catch_up(due, now=now, grace=timedelta(hours=1), digest_time=EIGHT, tz=BERLIN) == (
        None,
        due,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("08:00", time(8, 0)), ("7:05", time(7, 5)), (" 23:59 ", time(23, 59)), ("00:00", time(0))],
)
def test_parse_hhmm(text: str, expected: time) -> None:
    assert parse_hhmm(text) == expected


@pytest.mark.parametrize("text", ["24:00", "12:60", "8", "8:5", "08:00:00", "noon", ""])
def test_parse_hhmm_rejects_what_is_not_a_clock_time(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a time of day as HH:MM \(00:00 to 23:59\)"):
        parse_hhmm(text)


def test_check_timezone() -> None:
    assert check_timezone(" Europe/Berlin ") == "Europe/Berlin"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        check_timezone("Mars/Base")
