"""What the bot says to readers: Telegram-HTML text plus buttons, built from domain objects.

Buttons are plain data here; the Telegram adapter turns them into inline keyboards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from digests.models import Chat, Section
from digests.paging import Page
from digests.render import bold, escape, italic, truncate
from digests.sections import SectionInfo

# callback data prefixes
TOGGLE = "S:t:"  # S:t:<section id>: follow/unfollow a section from the chooser
CHOOSER_DONE = "S:done"
UNSUB_ALL = "U:all"
UNSUB_CANCEL = "U:cancel"
SETTINGS_SECTIONS = "C:sections"
SETTINGS_ALERTS = "C:alerts"
SETTINGS_DIGEST = "C:digest"
SETTINGS_TZ = "C:tz"

STORY_SUMMARY_MAX = 900


@dataclass(frozen=True)
class Button:
    text: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: list[list[Button]] = field(default_factory=list)


COMMANDS: list[tuple[str, str]] = [
    ("start", "Start and choose sections"),
    ("latest", "Latest stories: /latest [section]"),
    ("sections", "All sections and the ones you follow"),
    ("subscribe", "Follow sections: /subscribe world sports"),
    ("unsubscribe", "Stop following sections"),
    ("digest", "Digest time: /digest 08:00, off or now"),
    ("timezone", "Your time zone: /timezone Europe/Berlin"),
    ("alerts", "Breaking news: /alerts on or off"),
    ("settings", "Your settings"),
    ("stop", "Stop everything and forget this chat"),
    ("help", "What each command does"),
]

ADMIN_COMMANDS: list[tuple[str, str]] = [
    ("breaking", "Push breaking news: /breaking [section] text or URL"),
    ("stats", "Delivery statistics"),
]


def help_text(*, admin: bool) -> str:
    lines = [bold("What I can do"), ""]
    lines += [f"/{name} — {escape(text)}" for name, text in COMMANDS]
    if admin:
        lines += ["", bold("Editors")]
        lines += [f"/{name} — {escape(text)}" for name, text in ADMIN_COMMANDS]
    return "\n".join(lines)


def welcome(publisher: str, *, new: bool) -> str:
    hello = "Welcome" if new else "Welcome back"
    return (
        f"👋 {hello} to {escape(publisher)}!\n\n"
        "Choose the sections you want in your daily digest. "
        "Use /latest to read the newest stories and /help for everything else."
    )


def chooser(sections: Sequence[Section], followed: set[int], *, intro: str) -> Reply:
    """An inline keyboard of sections with ✓ on the followed ones."""
    if not sections:
        return Reply(escape("There are no sections yet: stories have not been imported."))
    rows: list[list[Button]] = []
    row: list[Button] = []
    for section in sections:
        mark = "✓ " if section.id in followed else ""
        row.append(Button(f"{mark}{section.name}", data=f"{TOGGLE}{section.id}"))
        if len(row) == 2:
            rows.append(row)
            row = []
    if row:
        rows.append(row)
    rows.append([Button("Done", data=CHOOSER_DONE)])
    return Reply(intro, rows)


def sections_list(infos: Sequence[SectionInfo], followed: set[int]) -> str:
    if not infos:
        return escape("There are no sections yet.")
    lines = [bold("Sections"), ""]
    for info in infos:
        mark = "✓" if info.id in followed else "•"
        noun = "story" if info.stories == 1 else "stories"
        lines.append(f"{mark} {bold(info.name)} ({info.stories} {noun}) — /latest {info.slug}")
    lines += ["", escape("✓ = you follow it. Change with /subscribe or /unsubscribe.")]
    return "\n".join(lines)


def unknown_sections(unknown: Sequence[str], infos: Sequence[SectionInfo]) -> str:
    shown = [f"“{escape(truncate(name, 40))}”" for name in unknown[:5]]
    if len(unknown) > 5:
        shown.append(f"{len(unknown) - 5} more")
    names = ", ".join(shown)
    real = ", ".join(escape(info.slug) for info in infos) or "none yet"
    return f"I don't know {names}. Sections: {real}."


def names(sections: Sequence[Section]) -> str:
    return ", ".join(bold(section.name) for section in sections)


def local_time(moment: datetime, tz: str, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime(fmt)


def story_page(page: Page, *, tz: str) -> Reply:
    """One story with ◀ Previous / Next ▶ buttons and its position."""
    article = page.article
    section_names = ", ".join(section.name for section in article.sections) or "—"
    scope = page.section.name if page.section else "All sections"
    parts = [
        bold(article.title),
        italic(f"{section_names} · {local_time(article.published_at, tz)}"),
    ]
    if article.summary:
        parts += ["", escape(truncate(article.summary, STORY_SUMMARY_MAX))]
    parts += ["", escape(f"{scope}: {page.position} / {page.total}")]
    nav: list[Button] = []
    if page.has_newer:
        nav.append(Button("◀ Previous", data=page.cursor("p").encode()))
    if page.has_older:
        nav.append(Button("Next ▶", data=page.cursor("n").encode()))
    rows: list[list[Button]] = []
    if article.link and article.link.lower().startswith(("http://", "https://")):
        rows.append([Button("Open article", url=article.link)])
    if nav:
        rows.append(nav)
    return Reply("\n".join(parts), rows)


def settings(chat: Chat, sections: Sequence[Section]) -> Reply:
    digest = f"daily at {chat.digest_time}" if chat.digest_time else "off"
    next_line = ""
    if chat.digest_time and chat.next_digest_at is not None:
        next_line = f"\nNext digest: {escape(local_time(chat.next_digest_at, chat.timezone))}"
    text = (
        f"{bold('Your settings')}\n\n"
        f"Sections: {names(sections) or escape('none')}\n"
        f"Digest: {escape(digest)}{next_line}\n"
        f"Time zone: {escape(chat.timezone)}\n"
        f"Breaking news alerts: {'on' if chat.alerts else 'off'}"
    )
    buttons = [
        [Button("Choose sections", data=SETTINGS_SECTIONS)],
        [
            Button(
                "Turn digests off" if chat.digest_time else "Turn digests on", data=SETTINGS_DIGEST
            ),
            Button("Alerts off" if chat.alerts else "Alerts on", data=SETTINGS_ALERTS),
        ],
        [Button("Change time zone", data=SETTINGS_TZ)],
    ]
    return Reply(text, buttons)


def confirm_unsubscribe_all(count: int) -> Reply:
    if count == 0:
        return Reply(escape("You don't follow any section. See /sections."))
    return Reply(
        escape(f"Stop all digests? You follow {count} section{'s' if count != 1 else ''}."),
        [[Button("Yes, stop all", data=UNSUB_ALL), Button("Cancel", data=UNSUB_CANCEL)]],
    )


def digest_set(chat: Chat) -> str:
    if chat.digest_time is None or chat.next_digest_at is None:
        return escape("Digests are off. Turn them on with /digest 08:00.")
    when = local_time(chat.next_digest_at, chat.timezone)
    return escape(f"Your digest comes daily at {chat.digest_time} ({chat.timezone}). Next: {when}.")


TIMEZONE_HELP = escape(
    "Send /timezone followed by your time zone's IANA name, e.g. /timezone Europe/Berlin "
    "or /timezone America/New_York."
)

HINT = escape("I didn't understand that. Send /help to see what I can do.")
NOT_GROUP_ADMIN = escape("Only the group's administrators can change its settings.")
NOT_REGISTERED = escape("Send /start first.")

CHOOSER_INTRO = escape("Tap a section to follow or unfollow it:")


def followed_summary(sections: Sequence[Section], chat: Chat) -> str:
    if not sections:
        return escape("You don't follow any section yet. Choose some with /subscribe.")
    return f"You follow {names(sections)}.\n{digest_set(chat)}"


def bad_timezone(raw: str, suggestions: Sequence[str]) -> str:
    text = f"I don't know the time zone “{escape(truncate(raw, 60))}”."
    if suggestions:
        text += " Did you mean: " + ", ".join(escape(s) for s in suggestions) + "?"
    return text + "\n" + TIMEZONE_HELP
