"""When a chat's daily digest is due: local wall-clock times turned into UTC instants.

Pure functions, no clock: every instant is passed in and returned as an aware UTC datetime.
The clock times and time zone names readers and settings give are checked here too.

Daylight saving, decided once here so every caller agrees:

* a local time that does not exist that day (spring-forward gap) is due at the moment the
  clock jumps over it, e.g. 02:30 in Europe/Berlin on 2026-03-29 is due at 03:00 CEST;
* a local time that happens twice (fall-back overlap) is due once, at its first occurrence.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SEARCH_DAYS = 4
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: str) -> time:
    """Parse a 24-hour `HH:MM` clock time, raising ValueError with a readable message."""
    match = _HHMM.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a time of day as HH:MM (00:00 to 23:59)")
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
    _require_aware(next_due, "next_due")
    _require_aware(now, "now")
    if next_due > now:
        return None, next_due
    latest = next_due
    # Instants older than two days before `now` can never be the latest missed one.
    upcoming = next_digest_at(digest_time, tz, after=max(next_due, now - timedelta(days=2)))
    while upcoming <= now:
        latest = upcoming
        upcoming = next_digest_at(digest_time, tz, after=upcoming)
    send_now = latest if now - latest <= grace else None
    return send_now, upcoming


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {value.isoformat()}")
