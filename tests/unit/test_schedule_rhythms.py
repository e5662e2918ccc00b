"""Digest rhythms: twice a day, weekdays, weekly; daylight saving, catching up, pausing."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digests.schedule import (
    DigestPlan,
    Rhythm,
    catch_up_plan,
    first_window_start,
    next_digest_at,
    next_slot,
    parse_plan,
    parse_weekday,
    previous_slot,
)

SUNDAY = 6
GRACE = timedelta(hours=6)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def weekly(day: int, hh: int, mm: int) -> DigestPlan:
    return DigestPlan(Rhythm.WEEKLY, time(hh, mm), weekday=day)


# --- weekly across daylight saving changes ------------------------------------------------


def test_weekly_sunday_0230_berlin_in_the_spring_forward_gap() -> None:
    plan = weekly(SUNDAY, 2, 30)
    before = next_slot(plan, "Europe/Berlin", after=utc(2026, 3, 16, 0, 0))
    assert before == utc(2026, 3, 22, 1, 30)  # 02:30 CET
    # 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist: due at the jump
    gap = next_slot(plan, "Europe/Berlin", after=before)
    assert gap == utc(2026, 3, 29, 1, 0)
    assert next_slot(plan, "Europe/Berlin", after=gap) == utc(2026, 4, 5, 0, 30)  # 02:30 CEST


def test_weekly_sunday_0130_new_york_in_the_fall_back_overlap_is_due_once() -> None:
    plan = weekly(SUNDAY, 1, 30)
    # 2026-11-01: 01:00-02:00 happens twice (EDT, then EST); the first counts
    first = next_slot(plan, "America/New_York", after=utc(2026, 10, 26, 0, 0))
    assert first == utc(2026, 11, 1, 5, 30)
    assert next_slot(plan, "America/New_York", after=first) == utc(2026, 11, 8, 6, 30)


def test_weekly_sunday_0230_new_york_spring_forward_and_berlin_fall_back() -> None:
    # 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC)
    ny = next_slot(weekly(SUNDAY, 2, 30), "America/New_York", after=utc(2026, 3, 2, 0, 0))
    assert ny == utc(2026, 3, 8, 7, 0)
    # 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 CEST, the first, at 00:30 UTC
    berlin = next_slot(weekly(SUNDAY, 2, 30), "Europe/Berlin", after=utc(2026, 10, 19, 0, 0))
    assert berlin == utc(2026, 10, 25, 0, 30)
    assert next_slot(weekly(SUNDAY, 2, 30), "Europe/Berlin", after=berlin) == utc(
        2026, 11, 1, 1, 30
    )


def test_weekly_first_window_is_the_week_before_even_across_a_dst_change() -> None:
    plan = weekly(SUNDAY, 9, 0)
    due = utc(2026, 3, 29, 7, 0)  # 09:00 CEST, a week after 09:00 CET
    start = first_window_start(plan, "Europe/Berlin", due)
    assert start == utc(2026, 3, 22, 8, 0)
    assert due - start == timedelta(hours=167)
    # a daily digest's first window stays a day, as it always was
    daily = DigestPlan(Rhythm.DAILY, time(9, 0))
    assert first_window_start(daily, "Europe/Berlin", due) == due - timedelta(hours=24)


# --- weekdays, twice a day ------------------------------------------------------------------


def test_weekdays_skip_the_weekend_in_the_chats_zone_not_utc() -> None:
    plan = DigestPlan(Rhythm.WEEKDAYS, time(7, 0))
    friday = utc(2026, 6, 11, 19, 0)  # Friday 12 June 07:00 in Auckland (NZST, +12)
    assert next_slot(plan, "Pacific/Auckland", after=utc(2026, 6, 11, 12, 0)) == friday
    monday = next_slot(plan, "Pacific/Auckland", after=friday)
    # Monday 15 June 07:00 NZST is still Sunday in UTC
    assert monday == utc(2026, 6, 14, 19, 0)
    assert monday.weekday() == SUNDAY
    assert monday.astimezone(ZoneInfo("Pacific/Auckland")).weekday() == 0
    # the same wall time in UTC: Friday, then Monday (not Saturday or Sunday)
    in_utc = next_slot(plan, "UTC", after=utc(2026, 6, 12, 7, 0))
    assert in_utc == utc(2026, 6, 15, 7, 0)


def test_weekdays_first_window_on_monday_reaches_back_to_friday() -> None:
    plan = DigestPlan(Rhythm.WEEKDAYS, time(7, 0))
    assert first_window_start(plan, "UTC", utc(2026, 6, 15, 7, 0)) == utc(2026, 6, 12, 7, 0)


def test_twice_a_day_defaults_to_twelve_hours_after_the_first() -> None:
    plan = DigestPlan(Rhythm.TWICE_DAILY, time(8, 0))
    assert plan.times == (time(8, 0), time(20, 0))
    morning = next_slot(plan, "Europe/Berlin", after=utc(2026, 6, 15, 0, 0))
    evening = next_slot(plan, "Europe/Berlin", after=morning)
    assert (morning, evening) == (utc(2026, 6, 15, 6, 0), utc(2026, 6, 15, 18, 0))
    assert next_slot(plan, "Europe/Berlin", after=evening) == utc(2026, 6, 16, 6, 0)
    assert first_window_start(plan, "Europe/Berlin", evening) == morning


def test_twice_a_day_with_an_explicit_second_time_and_a_gap() -> None:
    plan = DigestPlan(Rhythm.TWICE_DAILY, time(18, 30), time(2, 30))
    assert plan.times == (time(2, 30), time(18, 30))
    # spring-forward day in Berlin: 02:30 moves to 03:00 CEST, 18:30 is ordinary
    first = next_slot(plan, "Europe/Berlin", after=utc(2026, 3, 28, 18, 0))
    assert first == utc(2026, 3, 29, 1, 0)
    assert next_slot(plan, "Europe/Berlin", after=first) == utc(2026, 3, 29, 16, 30)


def test_daily_plan_is_exactly_the_old_daily_schedule() -> None:
    plan = DigestPlan(Rhythm.DAILY, time(2, 30))
    after = utc(2026, 3, 28, 0, 0)
    for _ in range(5):
        got = next_slot(plan, "Europe/Berlin", after=after)
        assert got == next_digest_at(time(2, 30), "Europe/Berlin", after=after)
        after = got


# --- catching up after downtime, for every rhythm ---------------------------------------------


@pytest.mark.parametrize(
    ("plan", "next_due", "now", "send", "upcoming"),
    [
        # weekly: down for three weeks, back 2 h after the latest slot: that one only
        (
            weekly(SUNDAY, 9, 0),
            utc(2026, 3, 1, 8, 0),
            utc(2026, 3, 22, 10, 0),
            utc(2026, 3, 22, 8, 0),
            utc(2026, 3, 29, 7, 0),
        ),
        # weekly: back 3 days after the slot: too stale, none; next week's is next
        (
            weekly(SUNDAY, 9, 0),
            utc(2026, 3, 22, 8, 0),
            utc(2026, 3, 25, 8, 0),
            None,
            utc(2026, 3, 29, 7, 0),
        ),
        # weekdays: down from Friday to Monday 08:00: Monday's only
        (
            DigestPlan(Rhythm.WEEKDAYS, time(7, 0)),
            utc(2026, 6, 12, 7, 0),
            utc(2026, 6, 15, 8, 0),
            utc(2026, 6, 15, 7, 0),
            utc(2026, 6, 16, 7, 0),
        ),
        # weekdays: down over the weekend only, back Sunday: Friday's was long ago, no
        # weekend slot exists, so nothing until Monday
        (
            DigestPlan(Rhythm.WEEKDAYS, time(7, 0)),
            utc(2026, 6, 12, 7, 0),
            utc(2026, 6, 14, 12, 0),
            None,
            utc(2026, 6, 15, 7, 0),
        ),
        # twice a day: down 30 hours: only the latest of four missed slots
        (
            DigestPlan(Rhythm.TWICE_DAILY, time(8, 0)),
            utc(2026, 6, 15, 8, 0),
            utc(2026, 6, 16, 21, 0),
            utc(2026, 6, 16, 20, 0),
            utc(2026, 6, 17, 8, 0),
        ),
        # daily, as before
        (
            DigestPlan(Rhythm.DAILY, time(8, 0)),
            utc(2026, 6, 10, 8, 0),
            utc(2026, 6, 15, 9, 0),
            utc(2026, 6, 15, 8, 0),
            utc(2026, 6, 16, 8, 0),
        ),
    ],
)
def test_catch_up_sends_at_most_the_latest_missed_slot(
    plan: DigestPlan,
    next_due: datetime,
    now: datetime,
    send: datetime | None,
    upcoming: datetime,
) -> None:
    tz = "Europe/Berlin" if plan.rhythm is Rhythm.WEEKLY else "UTC"
    got = catch_up_plan(next_due, now=now, grace=GRACE, plan=plan, tz=tz)
    assert got == (send, upcoming)
    # the next round, at the same moment or a bit later, sends nothing for the same slot
    assert catch_up_plan(upcoming, now=now, grace=GRACE, plan=plan, tz=tz) == (None, upcoming)


# --- pausing ------------------------------------------------------------------------------------


def test_a_paused_chat_gets_nothing_until_its_next_slot_after_the_pause() -> None:
    plan = DigestPlan(Rhythm.DAILY, time(8, 0))
    paused_until = utc(2026, 6, 22, 12, 0)
    # its slot came while paused (or the bot was down): nothing, the next is after the pause
    got = catch_up_plan(
        utc(2026, 6, 16, 8, 0),
        now=utc(2026, 6, 16, 8, 0),
        grace=GRACE,
        plan=plan,
        tz="UTC",
        paused_until=paused_until,
    )
    assert got == (None, utc(2026, 6, 23, 8, 0))
    # once the pause is over the slot is an ordinary one: one digest, no burst of missed ones
    after = catch_up_plan(
        utc(2026, 6, 23, 8, 0),
        now=utc(2026, 6, 23, 8, 0, 30),
        grace=GRACE,
        plan=plan,
        tz="UTC",
        paused_until=paused_until,
    )
    assert after == (utc(2026, 6, 23, 8, 0), utc(2026, 6, 24, 8, 0))


def test_a_pause_keeps_a_next_slot_already_after_it() -> None:
    plan = weekly(0, 9, 0)
    got = catch_up_plan(
        utc(2026, 6, 29, 9, 0),
        now=utc(2026, 6, 29, 9, 0),
        grace=GRACE,
        plan=plan,
        tz="UTC",
        paused_until=utc(2026, 6, 29, 10, 0),
    )
    assert got == (None, utc(2026, 7, 6, 9, 0))


# --- reading /digest's words ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["08:00"], DigestPlan(Rhythm.DAILY, time(8, 0))),
        (["daily", "7:05"], DigestPlan(Rhythm.DAILY, time(7, 5))),
        (["Weekdays", "07:30"], DigestPlan(Rhythm.WEEKDAYS, time(7, 30))),
        (["weekly", "monday", "09:00"], DigestPlan(Rhythm.WEEKLY, time(9, 0), weekday=0)),
        (["WEEKLY", "Sun", "21:15"], DigestPlan(Rhythm.WEEKLY, time(21, 15), weekday=6)),
        (["weekly", "fri"], DigestPlan(Rhythm.WEEKLY, time(6, 45), weekday=4)),
        (["twice", "08:00", "18:00"], DigestPlan(Rhythm.TWICE_DAILY, time(8), time(18))),
        (["twice", "08:00"], DigestPlan(Rhythm.TWICE_DAILY, time(8, 0))),
        (["twice"], DigestPlan(Rhythm.TWICE_DAILY, time(6, 45))),
    ],
)
def test_parse_plan(words: list[str], expected: DigestPlan) -> None:
    assert parse_plan(words, current=time(6, 45)) == expected


@pytest.mark.parametrize(
    ("words", "problem"),
    [
        (["weekly", "funday", "09:00"], "'funday' is not a day of the week"),
        (["weekly"], "say which day"),
        (["weekdays", "25:00"], "'25:00' is not a time of day"),
        (["fortnightly", "08:00"], "'fortnightly' is neither a time"),
        (["8am"], "'8am' is neither a time"),
        (["daily", "08:00", "09:00"], "too many words"),
        (["twice", "08:00", "08:00"], "must differ"),
    ],
)
def test_parse_plan_refuses_bad_words(words: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_plan(words, current=time(8, 0))


def test_weekday_names_and_abbreviations_in_any_case() -> None:
    assert [parse_weekday(d) for d in ("Monday", "TUE", "wednesday", "thu", "FrI")] == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert parse_weekday(" saturday ") == 5 and parse_weekday("SUN") == 6
    with pytest.raises(ValueError, match="not a day of the week"):
        parse_weekday("mo")


# --- any rhythm, any zone, any moment: the next slot is the very next one -------------------

_ZONES = ["Europe/Berlin", "America/New_York", "Pacific/Auckland", "Australia/Lord_Howe", "UTC"]


@settings(max_examples=300, deadline=None)
@given(
    rhythm=st.sampled_from(list(Rhythm)),
    hh=st.integers(0, 23),
    mm=st.sampled_from([0, 15, 30, 45]),
    second=st.none() | st.integers(0, 23).map(lambda h: time(h, 10)),
    weekday=st.integers(0, 6),
    tz=st.sampled_from(_ZONES),
    after=st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
    ),
)
def test_next_slot_is_due_on_an_allowed_local_day_and_none_is_skipped(
    rhythm: Rhythm,
    hh: int,
    mm: int,
    second: time | None,
    weekday: int,
    tz: str,
    after: datetime,
) -> None:
    plan = DigestPlan(rhythm, time(hh, mm), second, weekday)
    got = next_slot(plan, tz, after=after)
    assert after < got <= after + timedelta(days=8)
    # (a slot in a gap is due at the jump, the same local day: no zone here jumps at midnight)
    assert plan.on(got.astimezone(ZoneInfo(tz)).date())
    # no slot lies between `after` and it
    assert previous_slot(plan, tz, before=got) <= after
