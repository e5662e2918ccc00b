"""When a chat's digest is due: local wall-clock times turned into UTC instants.

A chat's rhythm (`Rhythm`) says on which local days and at which local times a digest is
due: daily, twice a day, Monday to Friday, or weekly on one weekday. Every rhythm is a set of
local wall times on a set of local days, so one rule for daylight saving serves them all.

Pure functions, no clock: every instant is passed in and returned as an aware UTC datetime.
The clock times and time zone names readers and settings give are checked here too.

Daylight saving, decided once here so every caller agrees:

* a local time that does not exist that day (spring-forward gap) is due at the moment the
  clock jumps over it, e.g. 02:30 in Europe/Berlin on 2026-03-29 is due at 03:00 CEST;
* a local time that happens twice (fall-back overlap) is due once, at its first occurrence.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import get_day_names

from digests.i18n import LANGUAGES, SOURCE, _

_SEARCH_DAYS = 4
_WEEK_SEARCH_DAYS = 10  # from the day before, a weekly slot always falls within 9 days
WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    """Parse a 24-hour `HH:MM` clock time, raising ValueError with a readable message."""
    match = _HHMM.match(value.strip())
    if not match:
        raise ValueError(
            _("'%(value)s' is not a time of day as HH:MM (00:00 to 23:59)") % {"value": value}
        )
    return time(int(match.group(1)), int(match.group(2)))


def check_timezone(name: str) -> str:
    """Return `name` if it is a known IANA time zone, else raise ValueError."""
    name = name.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None
    return name


def next_digest_at(digest_time: time, tz: str | ZoneInfo, *, after: datetime) -> datetime:
    """The first instant strictly after `after` at which local `digest_time` in `tz` is due."""
    _require_aware(after, "after")
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    wall = digest_time.replace(tzinfo=None, fold=0)
    # Start the day before `after`'s local date: the instants are increasing in the local date,
    # and a day's instant can never be later than the next day's.
    day = after.astimezone(zone).date() - timedelta(days=1)
    for offset in range(_SEARCH_DAYS):
        instant = _due_on(day + timedelta(days=offset), wall, zone)
        if instant > after:
            return instant
    raise AssertionError("unreachable: a daily instant always occurs within two days")


def _due_on(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant at which local `wall` on `day` is due (see the module's DST rules)."""
    local = datetime.combine(day, wall, tzinfo=zone)  # fold=0: the first occurrence
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    return _end_of_gap(local, zone)


def _end_of_gap(local: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clock jumps over nonexistent `local`: the first whose wall time >= it.

    zoneinfo maps a nonexistent time with the offset before the jump (fold=0, a later instant)
    or after it (fold=1, an earlier one); the jump lies between, found to the second.
    """
    wall = local.replace(tzinfo=None)
    low = local.replace(fold=1).astimezone(UTC)  # its wall time reads before `wall`
    high = local.replace(fold=0).astimezone(UTC)  # its wall time reads after `wall`
    low_s, high_s = int(low.timestamp()), int(high.timestamp())
    while high_s - low_s > 1:
        mid_s = (low_s + high_s) // 2
        mid = datetime.fromtimestamp(mid_s, UTC)
        if mid.astimezone(zone).replace(tzinfo=None) >= wall:
            high_s = mid_s
        else:
            low_s = mid_s
    return datetime.fromtimestamp(high_s, UTC)


class Rhythm(enum.StrEnum):
    """How often a chat's digest comes."""

    DAILY = "daily"
    TWICE_DAILY = "twice_daily"
    WEEKDAYS = "weekdays"  # Monday to Friday, in the chat's time zone
    WEEKLY = "weekly"  # on one weekday, in the chat's time zone


@cache
def _local_weekdays() -> dict[str, int]:
    """Day names and abbreviations in the bot's other languages ("понедельник", "пн")."""
    names: dict[str, int] = {}
    for language in LANGUAGES:
        if language == SOURCE:  # English is the names above, and only those
            continue
        for width in ("wide", "abbreviated"):
            for context in ("format", "stand-alone"):
                days = get_day_names(width, context=context, locale=language)
                for number, name in days.items():
                    names.setdefault(str(name).casefold().rstrip("."), number)
    return names


def parse_weekday(value: str) -> int:
    """Monday=0 .. Sunday=6 from an English day name or its 3-letter abbreviation, any case
    (or a day's name in one of the bot's languages: /digest weekly понедельник 09:00)."""
    text = value.strip().casefold()
    for number, name in enumerate(WEEKDAY_NAMES):
        if text in {name, name[:3]}:
            return number
    if (local := _local_weekdays().get(text)) is not None:
        return local
    raise ValueError(
        _("'%(value)s' is not a day of the week (monday to sunday, or mon to sun)")
        % {"value": value}
    )


def second_time_of(first: time) -> time:
    """The default second time of a twice-daily digest: twelve hours after the first."""
    return time((first.hour + 12) % 24, first.minute)


@dataclass(frozen=True)
class DigestPlan:
    """When a chat's digests are due, in its local wall time.

    `second` is a twice-daily digest's second time (twelve hours after `first` when None);
    `weekday` (Monday=0) is a weekly digest's day. Both are ignored by the other rhythms.
    """

    rhythm: Rhythm
    first: time
    second: time | None = None
    weekday: int | None = None

    def __post_init__(self) -> None:
        if self.rhythm is Rhythm.WEEKLY and (self.weekday is None or not 0 <= self.weekday <= 6):
            raise ValueError(f"a weekly digest needs a weekday 0-6, got {self.weekday!r}")

    @property
    def times(self) -> tuple[time, ...]:
        """The local wall times of a due day, earliest first."""
        if self.rhythm is Rhythm.TWICE_DAILY:
            second = self.second if self.second is not None else second_time_of(self.first)
            return tuple(sorted({self.first, second}))
        return (self.first,)

    def on(self, day: date) -> bool:
        """Whether digests are due on this local date."""
        if self.rhythm is Rhythm.WEEKDAYS:
            return day.weekday() < 5
        if self.rhythm is Rhythm.WEEKLY:
            return day.weekday() == self.weekday
        return True

    @property
    def daily(self) -> bool:
        return self.rhythm is Rhythm.DAILY


_RHYTHM_WORDS = {
    "daily": Rhythm.DAILY,
    "twice": Rhythm.TWICE_DAILY,
    "twice_daily": Rhythm.TWICE_DAILY,
    "twice-daily": Rhythm.TWICE_DAILY,
    "weekdays": Rhythm.WEEKDAYS,
    "weekday": Rhythm.WEEKDAYS,
    "weekly": Rhythm.WEEKLY,
}


def parse_plan(args: Sequence[str], *, current: time) -> DigestPlan:
    """A rhythm from /digest's words, raising ValueError with a readable message:

    `HH:MM` or `daily HH:MM`; `weekdays HH:MM`; `weekly <day> HH:MM`; `twice HH:MM [HH:MM]`.
    A rhythm's time may be left out: `current` is kept (a twice-daily second one is then
    twelve hours later).
    """
    words = [word.strip() for word in args if word.strip()]
    if not words:
        raise ValueError(_("say when, e.g. /digest 08:00"))
    head = words[0].casefold()
    if head not in _RHYTHM_WORDS:
        if len(words) == 1 and ":" in head:
            return DigestPlan(Rhythm.DAILY, parse_hhmm(head))
        raise ValueError(
            _("'%(word)s' is neither a time as HH:MM nor daily, twice, weekdays or weekly")
            % {"word": words[0]}
        )
    rhythm, rest = _RHYTHM_WORDS[head], words[1:]
    weekday = None
    if rhythm is Rhythm.WEEKLY:
        if not rest:
            raise ValueError(_("say which day, e.g. /digest weekly monday 09:00"))
        weekday, rest = parse_weekday(rest[0]), rest[1:]
    most = 2 if rhythm is Rhythm.TWICE_DAILY else 1
    if len(rest) > most:
        raise ValueError(
            _("too many words after '%(word)s': '%(rest)s'")
            % {"word": words[0], "rest": " ".join(rest[most:])}
        )
    times = [parse_hhmm(word) for word in rest]
    first = times[0] if times else current
    second = times[1] if len(times) > 1 else None
    if second is not None and second == first:
        raise ValueError(_("the two times of a twice-daily digest must differ"))
    return DigestPlan(rhythm, first, second, weekday)


def plan_of(
    rhythm: str | Rhythm, digest_time: str, second_time: str | None, weekday: int | None
) -> DigestPlan:
    """A DigestPlan from a chat's stored columns."""
    return DigestPlan(
        Rhythm(rhythm),
        parse_hhmm(digest_time),
        parse_hhmm(second_time) if second_time else None,
        weekday,
    )


def next_slot(plan: DigestPlan, tz: str | ZoneInfo, *, after: datetime) -> datetime:
    """The first instant strictly after `after` at which `plan` has a digest due in `tz`.

    Each local (day, wall time) is due at the instant the module's DST rules give; those
    instants never decrease with the day or the wall time, so the earliest one after `after`
    among the days searched is the next slot.
    """
    _require_aware(after, "after")
    if plan.daily:
        return next_digest_at(plan.first, tz, after=after)
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    first_day = after.astimezone(zone).date() - timedelta(days=1)
    for offset in range(_WEEK_SEARCH_DAYS):
        day = first_day + timedelta(days=offset)
        if not plan.on(day):
            continue
        for wall in plan.times:
            instant = _due_on(day, wall.replace(tzinfo=None, fold=0), zone)
            if instant > after:
                return instant
    raise AssertionError("unreachable: every rhythm has a slot within a week")


def previous_slot(plan: DigestPlan, tz: str | ZoneInfo, *, before: datetime) -> datetime:
    """The last instant strictly before `before` at which `plan` has a digest due in `tz`."""
    _require_aware(before, "before")
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    last_day = before.astimezone(zone).date() + timedelta(days=1)
    for offset in range(_WEEK_SEARCH_DAYS):
        day = last_day - timedelta(days=offset)
        if not plan.on(day):
            continue
        for wall in reversed(plan.times):
            instant = _due_on(day, wall.replace(tzinfo=None, fold=0), zone)
            if instant < before:
                return instant
    raise AssertionError("unreachable: every rhythm has a slot within a week")


def first_window_start(plan: DigestPlan, tz: str | ZoneInfo, due_at: datetime) -> datetime:
    """Where the first digest of a chat (no digest before it) begins: a day before a daily
    one, as always; for the other rhythms, at the slot before it (a weekly digest's first
    window is the week before it, a weekday Monday's reaches back to Friday's)."""
    if plan.daily:
        return due_at - timedelta(hours=24)
    return previous_slot(plan, tz, before=due_at)


def due_window(
    chat_last_digest_at: datetime | None,
    due_at: datetime,
    *,
    first_lookback: timedelta = timedelta(hours=24),
) -> tuple[datetime, datetime]:
    """The (start, end] a digest due at `due_at` covers: since the last digest, or a first day."""
    _require_aware(due_at, "due_at")
    if chat_last_digest_at is None:
        return due_at - first_lookback, due_at
    _require_aware(chat_last_digest_at, "chat_last_digest_at")
    return chat_last_digest_at, due_at


def catch_up(
    next_due: datetime,
    *,
    now: datetime,
    grace: timedelta,
    digest_time: time,
    tz: str | ZoneInfo,
) -> tuple[datetime | None, datetime]:
    """What to do about a stored `next_due` that passed while the bot was down.

    Returns `(send_now, new_next_digest_at)`:

    * of every daily instant missed (from `next_due` up to `now`), only the LATEST counts;
      older ones are never sent, so a reader gets at most one catch-up digest however long
      the outage was (its window, from `due_window`, still reaches back to the last digest);
    * that latest instant is returned as `send_now` if it is at most `grace` old, otherwise
      `send_now` is None and the digest is skipped, as a stale digest is worse than none;
    * `new_next_digest_at` is always the first instant strictly after `now`.

    If `next_due` is still in the future nothing was missed: `(None, next_due)`.
    """
    return catch_up_plan(
        next_due, now=now, grace=grace, plan=DigestPlan(Rhythm.DAILY, digest_time), tz=tz
    )


def catch_up_plan(
    next_due: datetime,
    *,
    now: datetime,
    grace: timedelta,
    plan: DigestPlan,
    tz: str | ZoneInfo,
    paused_until: datetime | None = None,
) -> tuple[datetime | None, datetime]:
    """`catch_up` for any rhythm, and for a paused chat.

    Of the slots missed only the latest counts, and only within `grace` (see `catch_up`).
    A chat paused until after `now` gets nothing now; its next slot is the first one after
    `paused_until`, so the slots of the pause are never sent, neither now nor later.
    """
    _require_aware(next_due, "next_due")
    _require_aware(now, "now")
    if paused_until is not None:
        _require_aware(paused_until, "paused_until")
        if paused_until > now:
            if next_due > paused_until:
                return None, next_due
            return None, next_slot(plan, tz, after=paused_until)
    if next_due > now:
        return None, next_due
    latest = next_due
    # Slots older than this before `now` can never be the latest missed one: every rhythm
    # has one at least once a week.
    span = timedelta(days=2) if plan.daily else timedelta(days=8)
    upcoming = next_slot(plan, tz, after=max(next_due, now - span))
    while upcoming <= now:
        latest = upcoming
        upcoming = next_slot(plan, tz, after=upcoming)
    send_now = latest if now - latest <= grace else None
    return send_now, upcoming


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
