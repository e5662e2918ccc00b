"""Texts several features share: the command menu, help, the welcome, the bot's
descriptions, dates and times in the reader's language, lists of section names, and the
short answers every handler may give ("This button no longer works.").

Each text is a function, translated when it is called, so each reader gets it in the
language being rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from digests import i18n
from digests.i18n import N_, _
from digests.ui.render import bold, escape, italic

if TYPE_CHECKING:
    from digests.models import Article, Section


COMMANDS: list[tuple[str, str]] = [
    ("start", N_("Start and choose sections")),
    ("latest", N_("Latest stories: /latest [section]")),
    ("search", N_("Find stories: /search words")),
    ("sections", N_("All sections and the ones you follow")),
    ("subscribe", N_("Follow sections: /subscribe world sports")),
    ("unsubscribe", N_("Stop following sections")),
    ("digest", N_("Digest: /digest 08:00, weekdays 07:30, weekly mon 09:00, twice, off, now")),
    ("timezone", N_("Your time zone: /timezone Europe/Berlin")),
    ("alerts", N_("Breaking news: /alerts on or off")),
    ("follow", N_("Follow a word or phrase in every section: /follow climate")),
    ("mute", N_("Keep stories with a word or phrase out: /mute football")),
    ("keywords", N_("Your followed and muted words")),
    ("language", N_("Language: /language en or ru")),
    ("settings", N_("Your settings")),
    ("stop", N_("Stop everything and forget this chat")),
    ("help", N_("What each command does")),
    ("topic", N_("Forum groups: /topic section, sent inside its topic")),
]
"""The command menu: descriptions marked for translation, translated where shown
(`commands()`, help_text)."""


ADMIN_COMMANDS: list[tuple[str, str]] = [
    ("breaking", N_("Push breaking news: /breaking [section] text or URL")),
    ("stats", N_("Delivery statistics")),
    ("correct", N_("Correct a sent push: /correct number, then the story and Note: …")),
]


def commands(*, admin: bool = False) -> list[tuple[str, str]]:
    """The command menu in the current language (with the editors' commands for `admin`)."""
    chosen = COMMANDS + ADMIN_COMMANDS if admin else COMMANDS
    return [(name, _(text)) for name, text in chosen]


def bot_description() -> str:
    """The bot's description (what an empty chat with the bot shows), up to 512 characters."""
    return _(
        "News digests from the publisher: choose sections, get a digest daily, on weekdays "
        "or weekly, breaking news alerts, and search across every story. Tap Start."
    )


def bot_short_description() -> str:
    """The bot's short description (its profile page), up to 120 characters."""
    return _("Your news digest: sections you choose, when you want them.")


def help_text(*, admin: bool) -> str:
    lines = [bold(_("What I can do")), ""]
    lines += [f"/{name} — {escape(text)}" for name, text in commands()]
    if admin:
        lines += ["", bold(_("Editors"))]
        lines += [f"/{name} — {escape(_(text))}" for name, text in ADMIN_COMMANDS]
    return "\n".join(lines)


def welcome(publisher: str, *, new: bool) -> str:
    hello = (
        _("👋 Welcome to %(publisher)s!") if new else _("👋 Welcome back to %(publisher)s!")
    ) % {"publisher": escape(publisher)}
    return (
        hello
        + "\n\n"
        + escape(
            _(
                "Choose the sections you want in your daily digest. "
                "Use /latest to read the newest stories and /help for everything else."
            )
        )
    )


# ---- what any handler may say ------------------------------------------------------------


def hint() -> str:
    return escape(_("I didn't understand that. Send /help to see what I can do."))


def unavailable() -> str:
    return escape(_("Sorry, I'm temporarily unavailable. Please try again in a minute."))


def not_group_admin() -> str:
    return escape(_("Only the group's administrators can change its settings."))


# ---- short answers to button presses (at most 200 characters, plain text) ----------------


def stale_button() -> str:
    return _("This button no longer works.")


def unavailable_short() -> str:
    return _("Temporarily unavailable: please try again in a minute.")


def not_group_admin_short() -> str:
    return _("Only the group's administrators can change its settings.")


def section_gone() -> str:
    return _("That section no longer exists.")


def button_failed() -> str:
    return _("Sorry, that didn't work. Please try again.")


def button_crashed() -> str:
    return _("Sorry, something went wrong.")


NAMES_SHOWN = 20
"""Section names listed in one sentence at most: 20 of up to 80 characters keep a summary
far within Telegram's 4096 whatever the number of sections; /sections lists them all."""


def names(sections: Sequence[Section]) -> str:
    shown = ", ".join(bold(section.name) for section in sections[:NAMES_SHOWN])
    if len(sections) > NAMES_SHOWN:
        shown += escape(_(" and %(n)s more (see /sections)") % {"n": len(sections) - NAMES_SHOWN})
    return shown


# CLDR date patterns per language and use: English as the bot always wrote them ("Mon 03 Mar
# 2025, 08:00"), Russian as Russian readers write them ("пн, 3 мар. 2025, 08:00"); Babel fills
# in the locale's day and month names, in the grammatical case the pattern needs.
_DATE_PATTERNS: dict[str, dict[str, str]] = {
    "en": {
        "datetime": "EEE dd MMM y, HH:mm",
        "date": "EEE dd MMM y",
        "digest_day": "EEE d MMM",
        "day": "d MMM",
    },
    "ru": {
        "datetime": "EEE, d MMM y, HH:mm",
        "date": "EEE, d MMM y",
        "digest_day": "EEEE, d MMMM",
        "day": "d MMM",
    },
}


def format_moment(moment: datetime, tz: str, kind: str = "datetime") -> str:
    """`moment` in the time zone `tz`, written the current language's way (`kind` is one of
    datetime, date, digest_day, day)."""
    language = i18n.current()
    pattern = _DATE_PATTERNS.get(language, _DATE_PATTERNS["en"])[kind]
    return format_datetime(in_zone(moment, ZoneInfo(tz)), pattern, locale=language)


def in_zone(moment: datetime, zone: ZoneInfo) -> datetime:
    """`moment` on the zone's clock; as it is (UTC) when that clock cannot show it (year 1 in a
    zone west of Greenwich: Go's zero time, which Hugo feeds write, is before year 1 there)."""
    try:
        return moment.astimezone(zone)
    except (OverflowError, ValueError):
        return moment


def local_time(moment: datetime, tz: str) -> str:
    return format_moment(moment, tz, "datetime")


def local_date(moment: datetime, tz: str) -> str:
    return format_moment(moment, tz, "date")


DATE_UNKNOWN = N_("date unknown")


def photo_credit(article: Article) -> str | None:
    """The photo's caption or credit ("Photo: Shutterstock") as it goes under the story."""
    if not article.image_url or not article.image_caption:
        return None
    return italic(f"📷 {article.image_caption}")
