"""What the bot says to readers: Telegram-HTML text plus buttons, built from domain objects.

Buttons are plain data here; the Telegram adapter turns them into inline keyboards.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from digests import i18n
from digests.i18n import N_, _, ngettext, pgettext
from digests.models import KEYWORD_PHRASE_MAX, DeliveryKind, DeliveryStatus, KeywordKind
from digests.readers.chats import chat_plan
from digests.schedule import Rhythm
from digests.ui.buttons import (
    ActionChoice,
    ActionStep,
    ChooserDone,
    ChooserPage,
    DigestControl,
    Direction,
    KeywordChoice,
    KeywordStep,
    LanguageChoice,
    PushChoice,
    SettingsChoice,
    ToggleSection,
    Unsubscribe,
    encode,
)
from digests.ui.render import (
    MAX_CAPTION,
    MAX_MESSAGE,
    bold,
    escape,
    fit_visible,
    italic,
    link,
    split_messages,
    truncate,
    visible_length,
)

if TYPE_CHECKING:
    from digests.delivery.engine import Photo
    from digests.digest.builder import DigestSection, DigestStory
    from digests.models import Article, Chat, KeywordRule, Section
    from digests.newsroom.breaking import Draft, PushProgress
    from digests.newsroom.corrections import ActionProgress, CorrectionText
    from digests.newsroom.stats import Stats
    from digests.readers.keywords import Added, Refusal
    from digests.readers.topics import TopicLine
    from digests.stories.paging import Page
    from digests.stories.search import SearchPage
    from digests.stories.sections import SectionInfo

STORY_SUMMARY_MAX = 900


@dataclass(frozen=True)
class Button:
    text: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Reply:
    """A message: Telegram-HTML text and buttons; with `photo` (an http(s) URL) it goes out as
    that photo with the text as its caption (then within 1,024 visible characters)."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    photo: str | None = None


@dataclass(frozen=True)
class ButtonAnswer:
    """What a button press does: an edit of its message (or none), a new message (or none)
    and a short answer."""

    edit: Reply | None = None
    send: Reply | None = None
    answer: str | None = None
    keyboard_only: bool = False  # the edit changes the buttons only; the text stays as it is


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


CHOOSER_PAGE_SIZE = 24
"""Section buttons on one page of the chooser: 12 rows of 2, which a phone shows without
much scrolling; with the navigation row and Done that is 28 buttons, far within Telegram's
100 whatever the number of sections."""
CHOOSER_COLUMNS = 2


def chooser_pages(count: int) -> int:
    """How many pages the chooser needs for `count` sections (at least one)."""
    return max(1, -(-count // CHOOSER_PAGE_SIZE))


def chooser_page_of(sections: Sequence[Section], section_id: int) -> int:
    """The chooser page that shows `section_id` (sections in the chooser's order); 1 if none."""
    for index, section in enumerate(sections):
        if section.id == section_id:
            return index // CHOOSER_PAGE_SIZE + 1
    return 1


def chooser(sections: Sequence[Section], followed: set[int], *, intro: str, page: int = 1) -> Reply:
    """One page of the section chooser: its sections with ✓ on the followed ones, in rows of
    CHOOSER_COLUMNS; then ◀ Previous · page n/N · Next ▶ when there are several pages; then
    Done. A page past the last (sections were removed since) shows the last one."""
    if not sections:
        return Reply(escape(_("There are no sections yet: stories have not been imported.")))
    pages = chooser_pages(len(sections))
    page = min(max(page, 1), pages)
    start = (page - 1) * CHOOSER_PAGE_SIZE
    shown = sections[start : start + CHOOSER_PAGE_SIZE]
    buttons = [
        Button(
            f"{'✓ ' if section.id in followed else ''}{section.name}",
            data=encode(ToggleSection(section.id, page)),
        )
        for section in shown
    ]
    rows = [buttons[i : i + CHOOSER_COLUMNS] for i in range(0, len(buttons), CHOOSER_COLUMNS)]
    if pages > 1:
        nav: list[Button] = []
        if page > 1:
            nav.append(Button(_("◀ Previous"), data=encode(ChooserPage(page - 1))))
        label = _("page %(page)s/%(pages)s") % {"page": page, "pages": pages}
        nav.append(Button(label, data=encode(ChooserPage(page))))
        if page < pages:
            nav.append(Button(_("Next ▶"), data=encode(ChooserPage(page + 1))))
        rows.append(nav)
    rows.append([Button(_("Done"), data=encode(ChooserDone()))])
    return Reply(intro, rows)


def chooser_page_answer(page: int, pages: int) -> str:
    return _("Page %(page)s of %(pages)s") % {"page": min(max(page, 1), pages), "pages": pages}


def sections_list(infos: Sequence[SectionInfo], followed: set[int]) -> list[str]:
    """/sections: one line a section, in as many messages as Telegram's 4096 characters need."""
    if not infos:
        return [escape(_("There are no sections yet."))]
    lines = []
    for info in infos:
        mark = "✓" if info.id in followed else "•"
        count = ngettext("%(n)s story", "%(n)s stories", info.stories) % {"n": info.stories}
        lines.append(f"{mark} {bold(info.name)} ({count}) — /latest {info.slug}")
    lines.append("\n" + escape(_("✓ = you follow it. Change with /subscribe or /unsubscribe.")))
    return split_messages(lines, header=bold(pgettext("heading", "Sections")) + "\n")


SLUGS_SHOWN = 40
"""Section slugs suggested after an unknown name at most (each is up to 40 characters)."""


def unknown_sections(unknown: Sequence[str], infos: Sequence[SectionInfo]) -> str:
    shown = [f"“{escape(truncate(name, 40))}”" for name in unknown[:5]]
    if len(unknown) > 5:
        shown.append(_("%(n)s more") % {"n": len(unknown) - 5})
    names = ", ".join(shown)
    real = ", ".join(escape(info.slug) for info in infos[:SLUGS_SHOWN]) or escape(_("none yet"))
    if len(infos) > SLUGS_SHOWN:
        real += escape(_(" and %(n)s more: see /sections") % {"n": len(infos) - SLUGS_SHOWN})
    return _("I don't know %(names)s. Sections: %(sections)s.") % {"names": names, "sections": real}


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
    return format_datetime(moment.astimezone(ZoneInfo(tz)), pattern, locale=language)


def local_time(moment: datetime, tz: str) -> str:
    return format_moment(moment, tz, "datetime")


_WEEKLY = (
    N_("weekly on Monday at %(time)s"),
    N_("weekly on Tuesday at %(time)s"),
    N_("weekly on Wednesday at %(time)s"),
    N_("weekly on Thursday at %(time)s"),
    N_("weekly on Friday at %(time)s"),
    N_("weekly on Saturday at %(time)s"),
    N_("weekly on Sunday at %(time)s"),
)
"""A weekly rhythm, one sentence per day: languages say "on Mondays" each their own way."""


DATE_UNKNOWN = N_("date unknown")


def _published(article: Article, tz: str) -> str:
    return local_time(article.published_at, tz) if article.date_known else _(DATE_UNKNOWN)


def story_page(page: Page, *, tz: str) -> Reply:
    """One story with ◀ Previous / Next ▶ buttons and its position; with the story's photo
    when it has one, its summary then cut to fit a caption (a story whose title and
    sections alone would not fit one goes out as text)."""
    return _paged_story(
        page.article,
        scope=page.section.name if page.section else _("All sections"),
        position=(
            i18n.number(page.position) if page.position_exact else f"{i18n.number(page.position)}+"
        ),
        total=page.total,
        previous=encode(page.turn(Direction.NEWER)) if page.has_newer else None,
        following=encode(page.turn(Direction.OLDER)) if page.has_older else None,
        tz=tz,
    )


SEARCH_SCOPE_MAX = 40  # characters of the query repeated under each result


def search_page(page: SearchPage, *, tz: str) -> Reply:
    """One /search result, as /latest shows a story: ◀ Previous / Next ▶ through the saved
    results, and "Search “words”: n / N" under it."""
    return _paged_story(
        page.article,
        scope=_("Search “%(query)s”") % {"query": truncate(page.query, SEARCH_SCOPE_MAX)},
        position=page.position,
        total=page.total,
        previous=encode(page.turn(Direction.NEWER)) if page.has_previous else None,
        following=encode(page.turn(Direction.OLDER)) if page.has_next else None,
        tz=tz,
    )


def _paged_story(
    article: Article,
    *,
    scope: str,
    position: int | str,  # "10,000+" past the exact count
    total: int,
    previous: str | None,
    following: str | None,
    tz: str,
) -> Reply:
    section_names = ", ".join(section.name for section in article.sections) or "—"
    byline = f" · {article.author}" if article.author else ""

    def page_text(summary: str, *, credit: bool = False) -> str:
        parts = [
            bold(article.title),
            italic(f"{section_names} · {_published(article, tz)}{byline}"),
        ]
        if summary:
            parts += ["", escape(summary)]
        if credit and (line := photo_credit(article)):
            parts += [line]
        shown = i18n.number(position) if isinstance(position, int) else position
        parts += ["", escape(f"{scope}: {shown} / {i18n.number(total)}")]
        return "\n".join(parts)

    summary = truncate(article.summary, STORY_SUMMARY_MAX)
    text = page_text(summary)
    photo = article.image_url
    if photo is not None:
        caption = fit_visible(lambda cut: page_text(cut, credit=True), summary, MAX_CAPTION)
        if caption is None:
            photo = None
        else:
            text = caption
    nav: list[Button] = []
    if previous is not None:
        nav.append(Button(_("◀ Previous"), data=previous))
    if following is not None:
        nav.append(Button(_("Next ▶"), data=following))
    rows: list[list[Button]] = []
    if article.link and article.link.lower().startswith(("http://", "https://")):
        rows.append([Button(_("Open article"), url=article.link)])
    if nav:
        rows.append(nav)
    return Reply(text, rows, photo=photo)


def _search_usage() -> str:
    return (
        bold(_("Usage"))
        + ": /search "
        + escape(
            _("words")
            + "\n\n"
            + _(
                "Finds stored stories with all these words in their title or text, the most "
                "relevant first. Example: /search election results"
            )
        )
    )


def no_results(words: Sequence[str]) -> str:
    shown = truncate(" ".join(words), SEARCH_SCOPE_MAX)
    return escape(
        _("No stories found for “%(words)s”. Try fewer or other words.") % {"words": shown}
    )


# ---- inline mode: stories shared into any chat ---------------------------------------------

INLINE_TITLE_MAX = 200
INLINE_DESCRIPTION_MAX = 200


@dataclass(frozen=True)
class InlineStory:
    """A story offered in inline mode: what the list shows (plain title and description,
    thumbnail) and the Telegram-HTML message sent into the chat when it is chosen."""

    id: str
    title: str
    description: str
    text: str
    thumbnail_url: str | None
    url: str | None


def _http(url: str | None) -> str | None:
    return url if url and url.lower().startswith(("http://", "https://")) else None


def inline_story(article: Article) -> InlineStory:
    """The shared message: the title in bold, the summary cut so the whole fits Telegram's
    4096 characters, and the link; its photo as the thumbnail when it has one."""
    url = _http(article.link)

    def build(summary: str) -> str:
        parts = [bold(article.title)]
        if summary:
            parts += [escape(summary)]
        if url:
            parts += ["", link(url, _("Read more"))]
        return "\n".join(parts)

    text = fit_visible(build, article.summary, MAX_MESSAGE) or build("")
    return InlineStory(
        id=str(article.id),
        title=truncate(article.title, INLINE_TITLE_MAX) or "…",
        description=truncate(" ".join(article.summary.split()), INLINE_DESCRIPTION_MAX),
        text=text,
        thumbnail_url=_http(article.image_url),
        url=url,
    )


def rhythm_text(chat: Chat) -> str:
    """How often the chat's digest comes, in words (plain text): "daily at 08:00"."""
    plan = chat_plan(chat)
    if plan is None:
        return _("off")
    times = [t.strftime("%H:%M") for t in plan.times]
    match plan.rhythm:
        case Rhythm.TWICE_DAILY:
            first, second = times[0], times[-1]
            return _("twice a day at %(first)s and %(second)s") % {"first": first, "second": second}
        case Rhythm.WEEKDAYS:
            return _("on weekdays (Mon-Fri) at %(time)s") % {"time": times[0]}
        case Rhythm.WEEKLY:
            assert plan.weekday is not None
            return _(_WEEKLY[plan.weekday]) % {"time": times[0]}
    return _("daily at %(time)s") % {"time": times[0]}


def pause_line(chat: Chat, now: datetime | None) -> str:
    """The "Paused until <local date>" line while the chat is paused at `now`, else ""."""
    if now is None or chat.paused_until is None or chat.paused_until <= now:
        return ""
    return _("Paused until %(date)s") % {"date": local_date(chat.paused_until, chat.timezone)}


def local_date(moment: datetime, tz: str) -> str:
    return format_moment(moment, tz, "date")


def settings(chat: Chat, sections: Sequence[Section], *, now: datetime | None = None) -> Reply:
    digest = rhythm_text(chat)
    pause = pause_line(chat, now)
    next_line = ""
    if pause:
        next_line += f"\n{escape(pause)} (/digest resume)"
    if chat.digest_time and chat.next_digest_at is not None:
        when = escape(local_time(chat.next_digest_at, chat.timezone))
        next_line += "\n" + _("Next digest: %(when)s") % {"when": when}
    text = "\n".join(
        [
            bold(_("Your settings")),
            "",
            _("Sections: %(sections)s") % {"sections": names(sections) or escape(_("none"))},
            _("Digest: %(digest)s") % {"digest": escape(digest)} + next_line,
            _("Time zone: %(timezone)s") % {"timezone": escape(chat.timezone)},
            _("Language: %(language)s") % {"language": escape(language_name(chat.language))},
            _("Breaking news alerts: %(state)s") % {"state": _("on") if chat.alerts else _("off")},
        ]
    )
    buttons = [
        [Button(_("Choose sections"), data=encode(SettingsChoice.SECTIONS))],
        [
            Button(
                _("Turn digests off") if chat.digest_time else _("Turn digests on"),
                data=encode(SettingsChoice.DIGEST),
            ),
            Button(
                _("Alerts off") if chat.alerts else _("Alerts on"),
                data=encode(SettingsChoice.ALERTS),
            ),
        ],
        [Button(_("Change time zone"), data=encode(SettingsChoice.TIMEZONE))],
    ]
    if pause:
        buttons.insert(1, [Button(_("▶ Resume digests"), data=encode(SettingsChoice.RESUME))])
    return Reply(text, buttons)


def confirm_unsubscribe_all(count: int) -> Reply:
    if count == 0:
        return Reply(escape(_("You don't follow any section. See /sections.")))
    question = ngettext(
        "Stop all digests? You follow %(n)s section.",
        "Stop all digests? You follow %(n)s sections.",
        count,
    ) % {"n": count}
    return Reply(
        escape(question),
        [
            [
                Button(_("Yes, stop all"), data=encode(Unsubscribe.ALL)),
                Button(_("Cancel"), data=encode(Unsubscribe.CANCEL)),
            ]
        ],
    )


def digest_set(chat: Chat, *, now: datetime | None = None) -> str:
    if chat.digest_time is None or chat.next_digest_at is None:
        return escape(_("Digests are off. Turn them on with /digest 08:00."))
    when = local_time(chat.next_digest_at, chat.timezone)
    text = _("Your digest comes %(rhythm)s (%(timezone)s). Next: %(when)s.") % {
        "rhythm": rhythm_text(chat),
        "timezone": chat.timezone,
        "when": when,
    }
    if pause := pause_line(chat, now):
        text += "\n" + _("%(paused)s: /digest resume ends the pause.") % {"paused": pause}
    return escape(text)


def _timezone_help() -> str:
    return escape(
        _(
            "Send /timezone followed by your time zone's IANA name, e.g. /timezone Europe/Berlin "
            "or /timezone America/New_York."
        )
    )


def followed_summary(
    sections: Sequence[Section], chat: Chat, *, now: datetime | None = None
) -> str:
    if not sections:
        return escape(_("You don't follow any section yet. Choose some with /subscribe."))
    return (
        _("You follow %(sections)s.") % {"sections": names(sections)}
        + "\n"
        + digest_set(chat, now=now)
    )


def bad_timezone(raw: str, suggestions: Sequence[str]) -> str:
    text = _("I don't know the time zone “%(name)s”.") % {"name": escape(truncate(raw, 60))}
    if suggestions:
        shown = ", ".join(escape(s) for s in suggestions)
        text += " " + _("Did you mean: %(suggestions)s?") % {"suggestions": shown}
    return text + "\n" + _timezone_help()


# ---- reader commands ----------------------------------------------------------------------


def _digest_help() -> str:
    return escape(
        _(
            "Change it with /digest HH:MM (daily), /digest weekdays 07:30, /digest weekly "
            "monday 09:00, /digest twice 08:00 18:00 (the second time is optional: 12 hours "
            "later), /digest off, /digest pause or /digest resume; or get one now: /digest now."
        )
    )


def bad_digest(problem: str) -> str:
    """/digest with arguments it cannot read: what was wrong (the reader's words cut short, so
    the answer always fits a message), and how to write it."""
    said = _("%(problem)s. Nothing changed.") % {"problem": truncate(problem, BAD_DIGEST_MAX)}
    return escape(said) + "\n" + _digest_help()


BAD_DIGEST_MAX = 200


def paused_answer(chat: Chat) -> str:
    """The short answer to ⏸ Pause for a week (and /digest pause)."""
    assert chat.paused_until is not None
    return _("Paused until %(date)s") % {"date": local_date(chat.paused_until, chat.timezone)}


def unfollowed(removed: Sequence[Section]) -> str:
    if not removed:
        return escape(_("You weren't following that."))
    return _("Stopped following %(sections)s.") % {"sections": names(removed)}


def timezone_is(chat: Chat) -> str:
    said = _("Your time zone is %(timezone)s.") % {"timezone": escape(chat.timezone)}
    return f"{said}\n{_timezone_help()}"


def timezone_set(chat: Chat) -> str:
    said = _("Time zone set to %(timezone)s.") % {"timezone": escape(chat.timezone)}
    return f"{said}\n{digest_set(chat)}"


def alerts_are(chat: Chat, *, hint: bool = False) -> str:
    said = _("Breaking news alerts are on.") if chat.alerts else _("Breaking news alerts are off.")
    if hint:
        return escape(said + " " + _("Use /alerts on or /alerts off."))
    return escape(said)


def unsubscribed_all(count: int) -> str:
    return escape(
        ngettext(
            "Stopped all digests (%(n)s section). Follow sections again with /subscribe.",
            "Stopped all digests (%(n)s sections). Follow sections again with /subscribe.",
            count,
        )
        % {"n": count}
    )


def following(state: bool) -> str:
    return _("Following") if state else _("Not following")


# ---- the reader's language (/language) ------------------------------------------------------

LANGUAGE_NAMES: dict[str, str] = {"en": "English", "ru": "Русский"}
"""Each language by its own name, as the chooser's buttons show it whatever the current one."""


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, LANGUAGE_NAMES[i18n.SOURCE])


def language_chooser(current: str) -> Reply:
    """/language: the chat's language and a button for each one we speak."""
    text = escape(
        _("The bot speaks %(language)s in this chat. Choose a language:")
        % {"language": language_name(current)}
    )
    row = [
        Button(("✓ " if code == current else "") + name, data=encode(LanguageChoice(code)))
        for code, name in LANGUAGE_NAMES.items()
    ]
    return Reply(text, [row])


def language_set(language: str) -> str:
    """Said in the new language once it is set."""
    return escape(
        _("Done: I'll speak English here.")
        if language == "en"
        else _("Done: I'll speak Russian here.")
    )


def unknown_language(raw: str) -> str:
    choices = ", ".join(f"/language {code}" for code in LANGUAGE_NAMES)
    return escape(
        _("I don't speak “%(language)s”. Choose %(choices)s.")
        % {"language": truncate(raw, 20), "choices": choices}
    )


# ---- editors ------------------------------------------------------------------------------


def _breaking_usage() -> str:
    return (
        bold(_("Usage"))
        + ": /breaking "
        + escape(
            _("[section] text or URL")
            + "\n\n"
            + _(
                "Examples:\n/breaking world Earthquake hits the coast; rescue under way\n"
                "/breaking https://news.example/story (a stored article's link)\n\n"
                "You get a preview with the number of chats it will reach, then Send or Cancel."
            )
        )
    )


CAPTION_MAX = MAX_CAPTION
"""A photo's caption, as Telegram counts it (after entity parsing)."""


def breaking_story(
    article: Article,
    *,
    correction: str | None = None,
    limit: int = MAX_MESSAGE,
    credit: bool = False,
) -> str:
    """The breaking-news message readers get; with `correction`, the corrected story with an
    italic "✏️ Corrected: ..." line, and with `credit` the photo's caption or credit (for a
    caption). The summary is cut so that the whole fits `limit` visible characters
    (CAPTION_MAX for a photo's caption); a title and a note alone always fit: titles are at
    most TITLE_MAX characters, notes NOTE_MAX."""

    def build(summary: str) -> str:
        return _breaking(article, summary, correction=correction, credit=credit)

    fitted = fit_visible(build, article.summary, limit)
    return fitted if fitted is not None else build("")


def photo_credit(article: Article) -> str | None:
    """The photo's caption or credit ("Photo: Shutterstock") as it goes under the story."""
    if not article.image_url or not article.image_caption:
        return None
    return italic(f"📷 {article.image_caption}")


def _breaking(
    article: Article, summary: str, *, correction: str | None = None, credit: bool = False
) -> str:
    parts = ["🚨 " + bold(_("Breaking")), "", bold(article.title)]
    if summary:
        parts += [escape(summary)]
    if credit and (line := photo_credit(article)):
        parts += [line]
    if article.link:
        parts += ["", link(article.link, _("Read more"))]
    if correction is not None:
        parts += ["", italic(_("✏️ Corrected: %(note)s") % {"note": correction})]
    return "\n".join(parts)


def breaking_message(article: Article) -> str | Photo:
    """The breaking news as readers get it: the story's photo with the story as its caption
    (the summary cut to fit 1,024 characters) when it has a photo, else breaking_story. The
    photo's fallback, sent if Telegram refuses the image, is the whole breaking_story."""
    from digests.delivery.engine import Photo  # here: digests.delivery.engine imports this module

    text = breaking_story(article)
    if article.image_url is None:
        return text
    caption = breaking_story(article, limit=MAX_CAPTION, credit=True)
    if visible_length(caption) > MAX_CAPTION:
        return text
    return Photo(url=article.image_url, caption=caption, fallback=text)


def push_preview(draft: Draft) -> Reply:
    """What the editor sees before Send: the story as readers will see it, and its reach."""
    push = draft.push
    scope = push.section.name if push.section else _("all sections")
    reach = ngettext(
        "It will reach %(n)s chat (%(scope)s).",
        "It will reach %(n)s chats (%(scope)s).",
        draft.audience,
    ) % {"n": draft.audience, "scope": scope}
    text = (
        escape(_("Preview — readers will see:"))
        + f"\n\n{breaking_story(push.article)}\n\n"
        + escape(reach)
    )
    return Reply(
        text,
        [
            [
                Button(_("Send"), data=encode(PushChoice(push.id, send=True))),
                Button(_("Cancel"), data=encode(PushChoice(push.id, send=False))),
            ]
        ],
    )


def push_report(progress: PushProgress) -> Reply:
    """The preview message as the push goes out; once finished (and not withdrawn), with
    ✏️ Correct and 🗑 Withdraw."""
    buttons: list[list[Button]] = []
    if progress.done and not progress.withdrawn:
        push_id = progress.push_id
        buttons = [
            [
                Button(_("✏️ Correct"), data=encode(ActionChoice(ActionStep.CORRECT, push_id))),
                Button(_("🗑 Withdraw"), data=encode(ActionChoice(ActionStep.WITHDRAW, push_id))),
            ]
        ]
    return Reply(push_progress(progress), buttons)


def push_progress(progress: PushProgress) -> str:
    """The preview message, edited as the push goes out."""
    counts = progress.tally
    if not progress.done:
        head = _("📤 Pushing…")
    elif counts.interrupted:
        head = _("⚠️ Push interrupted, %(n)s uncertain") % {"n": counts.interrupted}
    else:
        head = _("✅ Push finished")
    parts = [
        _("Sent %(n)s") % {"n": counts.sent},
        _("blocked %(n)s") % {"n": counts.blocked},
        _("failed %(n)s") % {"n": counts.failed},
    ]
    if counts.pending:
        parts.append(_("pending %(n)s") % {"n": counts.pending})
    if counts.uncertain:
        parts.append(_("uncertain %(n)s") % {"n": counts.uncertain})
    line = " · ".join(parts) + " " + _("(of %(n)s)") % {"n": counts.total}
    return "\n".join([bold(head), bold(progress.title), "", escape(line)])


# ---- corrections and withdrawals (digests/newsroom/corrections.py) ------------------------------


def correct_help(push_id: int, title: str) -> str:
    """What Correct under a push report answers: how to send the correction."""
    return (
        "✏️ "
        + bold(_("Correct"))
        + f" {bold(title)}\n\n"
        + escape(
            _(
                "Send /correct %(push)s followed by the corrected story: the first line the "
                "title, then the text, and a last line starting with “Note:”, the correction "
                "note readers see. With only the note line, the story as it is stored now "
                "(updated by the newsroom API or the feed) goes out.\n\nExample:\n"
                "/correct %(push)s Bridge reopened after repairs\n"
                "Traffic flows again on both lanes.\n"
                "Note: an earlier version said the bridge stays closed."
            )
            % {"push": push_id}
        )
    )


def correction_preview(
    correction: CorrectionText, article: Article, *, count: int, digest: str
) -> Reply:
    """What readers' messages will become, and "Edit N messages" / Cancel."""
    shown = correction.applied_to(article)
    will = ngettext(
        "%(n)s sent message will be edited.", "%(n)s sent messages will be edited.", count
    ) % {"n": count}
    text = (
        escape(_("Correction — readers' messages will read:"))
        + "\n\n"
        + breaking_story(shown, correction=correction.note, limit=MAX_MESSAGE - 200)
        + "\n\n"
        + escape(will)
    )
    return Reply(
        text,
        [
            [
                Button(
                    ngettext("Edit %(n)s message", "Edit %(n)s messages", count) % {"n": count},
                    data=encode(ActionChoice(ActionStep.CORRECT_YES, correction.push_id, digest)),
                ),
                Button(
                    _("Cancel"),
                    data=encode(ActionChoice(ActionStep.CORRECT_NO, correction.push_id)),
                ),
            ]
        ],
    )


def withdraw_confirm(push_id: int, title: str, *, count: int) -> Reply:
    """Withdraw's confirmation: "Delete N messages?" Yes / No."""
    question = ngettext("Delete %(n)s message?", "Delete %(n)s messages?", count) % {"n": count}
    text = f"🗑 {bold(question)}\n{bold(title)}\n\n" + escape(
        _(
            "Every reader's copy of this story is deleted where Telegram still allows it "
            "(48 hours after it was sent). This cannot be undone."
        )
    )
    return Reply(
        text,
        [
            [
                Button(
                    _("Yes, delete"), data=encode(ActionChoice(ActionStep.WITHDRAW_YES, push_id))
                ),
                Button(_("No"), data=encode(ActionChoice(ActionStep.WITHDRAW_NO, push_id))),
            ]
        ],
    )


def action_progress(progress: ActionProgress) -> str:
    """A correction's or withdrawal's report, edited as it goes."""
    withdraw = progress.withdrawal
    if progress.done:
        head = _("🗑 Withdrawn") if withdraw else _("✏️ Corrected")
    else:
        head = _("🗑 Withdrawing…") if withdraw else _("✏️ Correcting…")
    parts = [
        (_("%(n)s deleted") if withdraw else _("%(n)s edited")) % {"n": progress.edited},
        _("%(n)s failed") % {"n": progress.failed},
        _("%(n)s too old") % {"n": progress.too_old},
    ]
    if not progress.done:
        parts.append(_("%(n)s to go") % {"n": progress.remaining})
    counts = ", ".join(parts)
    return "\n".join([bold(head), bold(progress.title), "", escape(counts)])


def story_changed(push_id: int, title: str) -> Reply:
    """To the editor of a pushed story that the feed has just changed."""
    return Reply(
        escape(_("This pushed story changed in the feed:")) + " " + bold(title),
        [[Button(_("✏️ Correct"), data=encode(ActionChoice(ActionStep.CORRECT, push_id)))]],
    )


_OUTCOMES = (
    (N_("sent %(n)s"), (DeliveryStatus.SENT,)),
    (N_("blocked %(n)s"), (DeliveryStatus.BLOCKED,)),
    (N_("failed %(n)s"), (DeliveryStatus.FAILED,)),
    (N_("pending %(n)s"), (DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
    (N_("uncertain %(n)s"), (DeliveryStatus.UNCERTAIN,)),
    (N_("empty %(n)s"), (DeliveryStatus.EMPTY,)),
)


_FAILING_SHOWN = 8  # lines of at most ~350 characters: the reply stays within Telegram's limit


def stats(found: Stats) -> str:
    """/stats: chats, subscribers and stories per section, the last day's deliveries, and the
    feeds that fail with their last error."""
    chats = _("Chats: %(active)s active, %(inactive)s inactive") % {
        "active": found.active_chats,
        "inactive": found.inactive_chats,
    }
    lines = [
        bold(_("Statistics")),
        "",
        escape(chats),
        "",
        bold(pgettext("heading", "Sections")) + " " + escape(_("(subscribers · stories)")),
    ]
    lines += [escape(f"• {name}: {subs} · {stories}") for name, subs, stories in found.sections]
    lines += ["", bold(_("Last 24 hours"))]
    labels = ((DeliveryKind.DIGEST, _("Digests")), (DeliveryKind.BREAKING, _("Breaking")))
    for kind, label in labels:
        counts = found.last_day.get(kind.value, {})
        parts = [
            _(name) % {"n": sum(counts.get(s.value, 0) for s in statuses)}
            for name, statuses in _OUTCOMES
        ]
        lines.append(escape(f"{label}: " + ", ".join(parts)))
    if found.failing:
        lines += ["", bold(_("Failing feeds"))]
        for feed in found.failing[:_FAILING_SHOWN]:
            retry = (
                _(", next try %(time)s UTC") % {"time": f"{feed.next_attempt_at:%H:%M}"}
                if feed.next_attempt_at is not None
                else ""
            )
            failures = ngettext("%(n)s failure", "%(n)s failures", feed.failures) % {
                "n": feed.failures
            }
            lines.append(escape(f"• {feed.url[:120]}: {failures}{retry}: {feed.last_error[:200]}"))
        if len(found.failing) > _FAILING_SHOWN:
            more = _("… and %(n)s more") % {"n": len(found.failing) - _FAILING_SHOWN}
            lines.append(escape(more))
    return "\n".join(lines)


# ---- digests -------------------------------------------------------------------------------

DIGEST_TITLE_MAX = 300


def digest_controls() -> list[list[Button]]:
    """The one-tap buttons under every digest (on its last message)."""
    return [
        [
            Button(_("⏸ Pause for a week"), data=encode(DigestControl.PAUSE)),
            Button(pgettext("button", "Sections"), data=encode(DigestControl.SECTIONS)),
        ],
        [Button(_("🛑 Stop digests"), data=encode(DigestControl.STOP))],
    ]


def digest(sections: list[DigestSection], *, tz: str, window_end: datetime) -> list[str]:
    """The digest as Telegram-HTML messages, each within Telegram's limit; [] if it is empty."""
    zone = ZoneInfo(tz)
    day = window_end.astimezone(zone)
    blocks: list[str] = []
    for section in sections:
        if not section.stories:
            continue
        lines = [_story_line(story, zone=zone, today=day.date()) for story in section.stories]
        # The heading shares a block with the first story, so a split never strands it.
        # a followed phrase's section is headed in the reader's language, rendered here
        heading = keyword_heading(section.keyword) if section.keyword is not None else section.name
        lines[0] = f"\n{bold(heading)}\n{lines[0]}"
        if section.more > 0 and section.keyword is not None:
            lines[-1] += "\n" + keyword_more(section.more, section.keyword)
        elif section.more > 0:
            more = _("+%(n)s more: /latest %(section)s") % {
                "n": section.more,
                "section": escape(section.slug),
            }
            lines[-1] += "\n" + more
        blocks.extend(lines)
    if not blocks:
        return []
    header = (
        "📰 " + bold(_("Your news digest")) + f" · {format_moment(window_end, tz, 'digest_day')}"
    )
    # A message starting with a section heading would otherwise begin with a blank line.
    return [message.lstrip("\n") for message in split_messages(blocks, header=header)]


def _story_line(story: DigestStory, *, zone: ZoneInfo, today: date) -> str:
    title = truncate(story.title, DIGEST_TITLE_MAX)
    if not story.date_known:
        return f"• {link(story.link, title)} · {_(DATE_UNKNOWN)}"
    local = story.published_at.astimezone(zone)
    when = f"{local:%H:%M}"
    if local.date() != today:
        when = f"{format_moment(local, zone.key, 'day')} {when}"
    return f"• {link(story.link, title)} · {when}"


# ---- texts that read like constants -------------------------------------------------------
# Translated when they are read (`msg.HINT` in a handler), so each reader gets them in the
# language being rendered; a constant evaluated at import time would be English forever.
_TEXTS: dict[str, Callable[[], str]] = {
    "SEARCH_USAGE": _search_usage,
    "SEARCH_EXPIRED": lambda: _("This search has expired: search again with /search."),
    "TIMEZONE_HELP": _timezone_help,
    "HINT": lambda: escape(_("I didn't understand that. Send /help to see what I can do.")),
    "UNAVAILABLE": lambda: escape(
        _("Sorry, I'm temporarily unavailable. Please try again in a minute.")
    ),
    "NOT_GROUP_ADMIN": lambda: escape(
        _("Only the group's administrators can change its settings.")
    ),
    "NOT_REGISTERED": lambda: escape(_("Send /start first.")),
    "CHOOSER_INTRO": lambda: escape(_("Tap a section to follow or unfollow it:")),
    "NO_STORIES": lambda: escape(_("No stories yet. Come back soon!")),
    "FOLLOW_NOTHING": lambda: escape(
        _("You don't follow any section yet. Choose some with /subscribe.")
    ),
    "NO_NEW_STORIES": lambda: escape(_("No new stories in your sections since your last digest.")),
    "DIGEST_HELP": _digest_help,
    "BAD_DIGEST_TIME": lambda: escape(
        _("Send the time as HH:MM, e.g. /digest 07:30, or /digest off.")
    ),
    "RESUMED": lambda: _("Digests resumed."),
    "NOT_PAUSED": lambda: _("Digests were not paused."),
    "DIGESTS_STOPPED": lambda: _("Digests stopped. Turn them on again with /digest 08:00."),
    "DIGESTS_ALREADY_OFF": lambda: _("Digests are already off."),
    "STOPPED": lambda: escape(
        _(
            "Done: you will get no more messages, and I deleted your settings and "
            "subscriptions. Send /start to come back."
        )
    ),
    "NOTHING_CHANGED": lambda: escape(_("Nothing changed.")),
    # short answers to button presses (at most 200 characters, plain text)
    "STALE_BUTTON": lambda: _("This button no longer works."),
    "UNAVAILABLE_SHORT": lambda: _("Temporarily unavailable: please try again in a minute."),
    "NOT_GROUP_ADMIN_SHORT": lambda: _("Only the group's administrators can change its settings."),
    "SECTION_GONE": lambda: _("That section no longer exists."),
    "NO_MORE_STORIES": lambda: _("No more stories."),
    "BUTTON_FAILED": lambda: _("Sorry, that didn't work. Please try again."),
    "BUTTON_CRASHED": lambda: _("Sorry, something went wrong."),
    # editors
    "NOT_EDITOR": lambda: escape(
        _("Sorry, that is not allowed: this command is for the publisher's editors.")
    ),
    "NOT_ALLOWED": lambda: _("Not allowed."),
    "BREAKING_USAGE": _breaking_usage,
    "PUSH_CANCELLED": lambda: escape(_("Cancelled: nothing was sent.")),
    "PUSH_ALREADY_DECIDED": lambda: _("Already sent or cancelled."),
    "PUSH_SENDING": lambda: _("Sending…"),
    "CORRECT_USAGE": lambda: escape(
        _("Usage: /correct <push number> [title, then text on new lines]\nNote: what changed")
    ),
    "NOTHING_TO_CORRECT": lambda: _("Nothing to correct any more."),
    "CORRECTION_CHANGED": lambda: _("That correction was changed or deleted: send /correct again."),
    "CORRECTION_CANCELLED": lambda: escape(_("Correction cancelled: no message was edited.")),
    "WITHDRAWAL_CANCELLED": lambda: escape(_("Withdrawal cancelled: no message was deleted.")),
    "ACTION_STARTED": lambda: _("Started."),
}


def __getattr__(name: str) -> str:
    """`msg.HINT` and the other texts of _TEXTS, in the current language (PEP 562)."""
    try:
        text = _TEXTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return text()


# ---- channels and forum topics ----------------------------------------------------------------


def topic_closed_note(section: str, slug: str) -> str:
    """Above a section's digest part sent to the General topic because its topic is closed."""
    return italic(
        _(
            "The topic for %(section)s is closed, so this comes here. An administrator can "
            "reopen it and send /topic %(slug)s inside it, or send /topic off %(slug)s."
        )
        % {"section": section, "slug": slug}
    )


def topic_list(lines: Sequence[TopicLine]) -> str:
    """/topic alone in a forum: where each followed section's messages go."""
    if not lines:
        return escape(_("This group follows no section yet. Choose some with /subscribe."))
    rows = [bold(_("Where each section goes"))]
    for line in lines:
        if line.closed:
            where = _("General (its topic is closed: reopen it and send /topic %(slug)s in it)")
        elif line.thread_id is not None:
            where = _("its topic (#%(thread)s)")
        elif line.chosen_general:
            where = _("General (chosen with /topic off)")
        else:
            where = _("General (no topic yet)")
        where = where % {"slug": line.slug, "thread": line.thread_id}
        rows.append(f"• {escape(line.name)}: {escape(where)}")
    rows.append("")
    rows.append(escape(topic_help()))
    return "\n".join(rows)


def topic_help() -> str:
    return _(
        "Send /topic <section> inside a topic to send that section there, or "
        "/topic off <section> to send it to the General topic."
    )


def topic_bound(section: str) -> str:
    return escape(_("From now on %(section)s comes into this topic.") % {"section": section})


def topic_to_general(section: str) -> str:
    return escape(_("From now on %(section)s comes into the General topic.") % {"section": section})


def topic_outside() -> str:
    return escape(
        _(
            "Send /topic <section> inside the topic that should get the section (not in "
            "General). Nothing changed."
        )
    )


def topic_not_forum() -> str:
    return escape(_("Topics exist only in groups with topics turned on. Nothing changed."))


def topic_one_section() -> str:
    return escape(_("Name one section, e.g. /topic world. Nothing changed."))


# ---- keyword follows and mutes (digests/readers/keywords.py) ------------------------------

KEYWORD_BUTTON_MAX = 24  # characters of a phrase on a button


def keyword_heading(phrase: str) -> str:
    """The heading of a followed phrase's section in a digest (plain text: bold() escapes)."""
    return _("🔎 “%(phrase)s”") % {"phrase": phrase}


def keyword_more(count: int, phrase: str) -> str:
    """The line under a keyword section with more stories than it shows."""
    return escape(
        ngettext("+%(count)d more: /search %(words)s", "+%(count)d more: /search %(words)s", count)
        % {"count": count, "words": phrase}
    )


def follow_usage(cap: int) -> str:
    return escape(
        _(
            "Send /follow and a word or phrase, e.g. /follow climate change: stories that "
            "mention it join your digest from every section. /mute football keeps stories "
            "out. Up to %(cap)d words in all; /keywords lists them."
        )
        % {"cap": cap}
    )


def keyword_refused(refusal: Refusal, *, cap: int) -> str:
    """Why a /follow or /mute phrase was not taken (nothing was changed)."""
    from digests.readers.keywords import PHRASE_WORDS_MAX, Refusal

    match refusal:
        case Refusal.EMPTY:
            text = _("That has no words to look for: send letters or digits, e.g. /follow climate.")
        case Refusal.TOO_LONG:
            text = _("That is too long: a keyword may have at most %(max)d characters.") % {
                "max": KEYWORD_PHRASE_MAX
            }
        case Refusal.TOO_MANY_WORDS:
            text = _("That is too long: a keyword may have at most %(max)d words.") % {
                "max": PHRASE_WORDS_MAX
            }
        case _:
            text = ngettext(
                "You already have %(cap)d keyword, the most a chat may have: remove one with "
                "/keywords first.",
                "You already have %(cap)d keywords, the most a chat may have: remove one with "
                "/keywords first.",
                cap,
            ) % {"cap": cap}
    return escape(text)


def keyword_added(added: Added) -> str:
    """What /follow or /mute did, one line."""
    assert added.rule is not None
    phrase, kind = added.rule.phrase, added.rule.kind
    if kind is KeywordKind.FOLLOW:
        if added.existed:
            text = _("You already follow “%(phrase)s”.")
        elif added.replaced:
            text = _("Following “%(phrase)s” (no longer muted): matching stories from every "
                     "section join your digest.")  # fmt: skip
        else:
            text = _("Following “%(phrase)s”: matching stories from every section join your "
                     "digest. Tap 🔕 to get them at once as alerts too.")  # fmt: skip
    elif added.existed:
        text = _("You already mute “%(phrase)s”.")
    elif added.replaced:
        text = _("Muted “%(phrase)s” (no longer followed): stories that mention it stay out.")
    else:
        text = _("Muted “%(phrase)s”: stories that mention it stay out of your digest.")
    return escape(text % {"phrase": phrase})


def keyword_removed(rule: KeywordRule | None, kind: KeywordKind, text: str) -> str:
    """What /unfollow or /unmute did, one line."""
    if rule is None:
        if kind is KeywordKind.FOLLOW:
            said = _("You don't follow “%(phrase)s”.")
        else:
            said = _("You don't mute “%(phrase)s”.")
        return escape(said % {"phrase": text})
    if kind is KeywordKind.FOLLOW:
        return escape(_("Stopped following “%(phrase)s”.") % {"phrase": rule.phrase})
    return escape(_("Stopped muting “%(phrase)s”.") % {"phrase": rule.phrase})


def unfollow_usage(kind: KeywordKind) -> str:
    if kind is KeywordKind.FOLLOW:
        return escape(_("Send /unfollow and the phrase you follow, or tap ✖ under /keywords."))
    return escape(_("Send /unmute and the phrase you mute, or tap ✖ under /keywords."))


def _on_button(phrase: str) -> str:
    return truncate(phrase, KEYWORD_BUTTON_MAX)


def keywords_screen(rules: Sequence[KeywordRule], *, notice: str = "", cap: int) -> Reply:
    """A chat's follows and mutes, each with its buttons: 🔔/🔕 turns a follow's alert on or
    off, ✖ removes it. `notice` (Telegram HTML) comes first."""
    follows = [rule for rule in rules if rule.kind is KeywordKind.FOLLOW]
    mutes = [rule for rule in rules if rule.kind is KeywordKind.MUTE]
    lines = [notice, ""] if notice else []
    if not rules:
        lines.append(follow_usage(cap))
        return Reply("\n".join(lines))
    if follows:
        lines.append(bold(pgettext("keywords", "Following")))
        for rule in follows:
            state = _("alerts on") if rule.alert else _("in the digest")
            lines.append(f"🔎 {escape(rule.phrase)} · {escape(state)}")
    if mutes:
        if follows:
            lines.append("")
        lines.append(bold(_("Muted")))
        lines += [f"🔇 {escape(rule.phrase)}" for rule in mutes]
    lines += ["", escape(_("🔔 alerts on · 🔕 digest only · ✖ remove"))]
    buttons: list[list[Button]] = []
    for rule in follows:
        bell = "🔔" if rule.alert else "🔕"
        buttons.append(
            [
                Button(
                    f"{bell} {_on_button(rule.phrase)}",
                    data=encode(KeywordChoice(KeywordStep.ALERT, rule.id)),
                ),
                Button("✖", data=encode(KeywordChoice(KeywordStep.REMOVE, rule.id))),
            ]
        )
    for rule in mutes:
        buttons.append(
            [
                Button(
                    "✖ " + _("Unmute %(phrase)s") % {"phrase": _on_button(rule.phrase)},
                    data=encode(KeywordChoice(KeywordStep.REMOVE, rule.id)),
                )
            ]
        )
    return Reply("\n".join(lines), buttons)


def keyword_alert_answer(rule: KeywordRule) -> str:
    """The short answer to 🔔/🔕 (plain text)."""
    if rule.alert:
        return _("Alerts on for “%(phrase)s”") % {"phrase": truncate(rule.phrase, 150)}
    return _("Digest only for “%(phrase)s”") % {"phrase": truncate(rule.phrase, 150)}


def keyword_removed_answer(rule: KeywordRule) -> str:
    """The short answer to ✖ (plain text)."""
    return _("Removed “%(phrase)s”") % {"phrase": truncate(rule.phrase, 150)}


def keyword_gone() -> str:
    return _("That keyword was already removed.")


def keyword_alert(article: Article, phrase: str) -> str:
    """A keyword alert: the story (its summary cut to fit one message) under a line naming
    the followed phrase that matched it."""
    heading = "🔔 " + bold(_("Your keyword “%(phrase)s”") % {"phrase": phrase})

    def build(summary: str) -> str:
        parts = [heading, "", bold(article.title)]
        if summary:
            parts.append(escape(summary))
        if article.link:
            parts += ["", link(article.link, _("Read more"))]
        return "\n".join(parts)

    fitted = fit_visible(build, article.summary, MAX_MESSAGE)
    return fitted if fitted is not None else build("")
