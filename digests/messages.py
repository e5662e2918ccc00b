"""What the bot says to readers: Telegram-HTML text plus buttons, built from domain objects.

Buttons are plain data here; the Telegram adapter turns them into inline keyboards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from digests.buttons import (
    ActionChoice,
    ActionStep,
    ChooserDone,
    ChooserPage,
    DigestControl,
    Direction,
    KeywordChoice,
    KeywordStep,
    PushChoice,
    SettingsChoice,
    ToggleSection,
    Unsubscribe,
    encode,
)
from digests.i18n import N_, _, ngettext
from digests.models import KEYWORD_PHRASE_MAX, DeliveryKind, DeliveryStatus, KeywordKind
from digests.readers import chat_plan
from digests.render import (
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
from digests.schedule import WEEKDAY_NAMES, Rhythm

if TYPE_CHECKING:
    from digests.breaking import Draft, PushProgress
    from digests.corrections import ActionProgress, CorrectionText
    from digests.delivery import Photo
    from digests.digest import DigestSection, DigestStory
    from digests.keywords import Added, Refusal
    from digests.models import Article, Chat, KeywordRule, Section
    from digests.paging import Page
    from digests.search import SearchPage
    from digests.sections import SectionInfo
    from digests.stats import Stats

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
    ("start", "Start and choose sections"),
    ("latest", "Latest stories: /latest [section]"),
    ("search", "Find stories: /search words"),
    ("sections", "All sections and the ones you follow"),
    ("subscribe", "Follow sections: /subscribe world sports"),
    ("unsubscribe", "Stop following sections"),
    ("digest", "Digest: /digest 08:00, weekdays 07:30, weekly mon 09:00, twice, off, now"),
    ("timezone", "Your time zone: /timezone Europe/Berlin"),
    ("alerts", "Breaking news: /alerts on or off"),
    ("follow", N_("Follow a word or phrase in every section: /follow climate")),
    ("mute", N_("Keep stories with a word or phrase out: /mute football")),
    ("keywords", N_("Your followed and muted words")),
    ("settings", "Your settings"),
    ("stop", "Stop everything and forget this chat"),
    ("help", "What each command does"),
]

ADMIN_COMMANDS: list[tuple[str, str]] = [
    ("breaking", "Push breaking news: /breaking [section] text or URL"),
    ("stats", "Delivery statistics"),
    ("correct", "Correct a sent push: /correct number, then the story and Note: …"),
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
        return Reply(escape("There are no sections yet: stories have not been imported."))
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
            nav.append(Button("◀ Previous", data=encode(ChooserPage(page - 1))))
        nav.append(Button(f"page {page}/{pages}", data=encode(ChooserPage(page))))
        if page < pages:
            nav.append(Button("Next ▶", data=encode(ChooserPage(page + 1))))
        rows.append(nav)
    rows.append([Button("Done", data=encode(ChooserDone()))])
    return Reply(intro, rows)


def chooser_page_answer(page: int, pages: int) -> str:
    return f"Page {min(max(page, 1), pages)} of {pages}"


def sections_list(infos: Sequence[SectionInfo], followed: set[int]) -> list[str]:
    """/sections: one line a section, in as many messages as Telegram's 4096 characters need."""
    if not infos:
        return [escape("There are no sections yet.")]
    lines = []
    for info in infos:
        mark = "✓" if info.id in followed else "•"
        noun = "story" if info.stories == 1 else "stories"
        lines.append(f"{mark} {bold(info.name)} ({info.stories} {noun}) — /latest {info.slug}")
    lines.append("\n" + escape("✓ = you follow it. Change with /subscribe or /unsubscribe."))
    return split_messages(lines, header=bold("Sections") + "\n")


SLUGS_SHOWN = 40
"""Section slugs suggested after an unknown name at most (each is up to 40 characters)."""


def unknown_sections(unknown: Sequence[str], infos: Sequence[SectionInfo]) -> str:
    shown = [f"“{escape(truncate(name, 40))}”" for name in unknown[:5]]
    if len(unknown) > 5:
        shown.append(f"{len(unknown) - 5} more")
    names = ", ".join(shown)
    real = ", ".join(escape(info.slug) for info in infos[:SLUGS_SHOWN]) or "none yet"
    if len(infos) > SLUGS_SHOWN:
        real += escape(f" and {len(infos) - SLUGS_SHOWN} more: see /sections")
    return f"I don't know {names}. Sections: {real}."


NAMES_SHOWN = 20
"""Section names listed in one sentence at most: 20 of up to 80 characters keep a summary
far within Telegram's 4096 whatever the number of sections; /sections lists them all."""


def names(sections: Sequence[Section]) -> str:
    shown = ", ".join(bold(section.name) for section in sections[:NAMES_SHOWN])
    if len(sections) > NAMES_SHOWN:
        shown += escape(f" and {len(sections) - NAMES_SHOWN} more (see /sections)")
    return shown


def local_time(moment: datetime, tz: str, fmt: str = "%a %d %b %Y, %H:%M") -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime(fmt)


DATE_UNKNOWN = "date unknown"


def _published(article: Article, tz: str) -> str:
    return local_time(article.published_at, tz) if article.date_known else DATE_UNKNOWN


def story_page(page: Page, *, tz: str) -> Reply:
    """One story with ◀ Previous / Next ▶ buttons and its position; with the story's photo
    when it has one, its summary then cut to fit a caption (a story whose title and
    sections alone would not fit one goes out as text)."""
    return _paged_story(
        page.article,
        scope=page.section.name if page.section else "All sections",
        position=page.position,
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
        scope=f"Search “{truncate(page.query, SEARCH_SCOPE_MAX)}”",
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
    position: int,
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
        parts += ["", escape(f"{scope}: {position} / {total}")]
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
        nav.append(Button("◀ Previous", data=previous))
    if following is not None:
        nav.append(Button("Next ▶", data=following))
    rows: list[list[Button]] = []
    if article.link and article.link.lower().startswith(("http://", "https://")):
        rows.append([Button("Open article", url=article.link)])
    if nav:
        rows.append(nav)
    return Reply(text, rows, photo=photo)


SEARCH_USAGE = f"{bold('Usage')}: /search words\n\n" + escape(
    "Finds stored stories with all these words in their title or text, the most relevant "
    "first. Example: /search election results"
)
SEARCH_EXPIRED = "This search has expired: search again with /search."


def no_results(words: Sequence[str]) -> str:
    shown = truncate(" ".join(words), SEARCH_SCOPE_MAX)
    return escape(f"No stories found for “{shown}”. Try fewer or other words.")


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
            parts += ["", link(url, "Read more")]
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
        return "off"
    at = " and ".join(t.strftime("%H:%M") for t in plan.times)
    match plan.rhythm:
        case Rhythm.TWICE_DAILY:
            return f"twice a day at {at}"
        case Rhythm.WEEKDAYS:
            return f"on weekdays (Mon-Fri) at {at}"
        case Rhythm.WEEKLY:
            assert plan.weekday is not None
            return f"weekly on {WEEKDAY_NAMES[plan.weekday].capitalize()} at {at}"
    return f"daily at {at}"


def pause_line(chat: Chat, now: datetime | None) -> str:
    """The "Paused until <local date>" line while the chat is paused at `now`, else ""."""
    if now is None or chat.paused_until is None or chat.paused_until <= now:
        return ""
    return f"Paused until {local_date(chat.paused_until, chat.timezone)}"


def local_date(moment: datetime, tz: str) -> str:
    return local_time(moment, tz, "%a %d %b %Y")


def settings(chat: Chat, sections: Sequence[Section], *, now: datetime | None = None) -> Reply:
    digest = rhythm_text(chat)
    pause = pause_line(chat, now)
    next_line = ""
    if pause:
        next_line += f"\n{escape(pause)} (/digest resume)"
    if chat.digest_time and chat.next_digest_at is not None:
        next_line += f"\nNext digest: {escape(local_time(chat.next_digest_at, chat.timezone))}"
    text = (
        f"{bold('Your settings')}\n\n"
        f"Sections: {names(sections) or escape('none')}\n"
        f"Digest: {escape(digest)}{next_line}\n"
        f"Time zone: {escape(chat.timezone)}\n"
        f"Breaking news alerts: {'on' if chat.alerts else 'off'}"
    )
    buttons = [
        [Button("Choose sections", data=encode(SettingsChoice.SECTIONS))],
        [
            Button(
                "Turn digests off" if chat.digest_time else "Turn digests on",
                data=encode(SettingsChoice.DIGEST),
            ),
            Button(
                "Alerts off" if chat.alerts else "Alerts on", data=encode(SettingsChoice.ALERTS)
            ),
        ],
        [Button("Change time zone", data=encode(SettingsChoice.TIMEZONE))],
    ]
    if pause:
        buttons.insert(1, [Button("▶ Resume digests", data=encode(SettingsChoice.RESUME))])
    return Reply(text, buttons)


def confirm_unsubscribe_all(count: int) -> Reply:
    if count == 0:
        return Reply(escape("You don't follow any section. See /sections."))
    return Reply(
        escape(f"Stop all digests? You follow {count} section{'s' if count != 1 else ''}."),
        [
            [
                Button("Yes, stop all", data=encode(Unsubscribe.ALL)),
                Button("Cancel", data=encode(Unsubscribe.CANCEL)),
            ]
        ],
    )


def digest_set(chat: Chat, *, now: datetime | None = None) -> str:
    if chat.digest_time is None or chat.next_digest_at is None:
        return escape("Digests are off. Turn them on with /digest 08:00.")
    when = local_time(chat.next_digest_at, chat.timezone)
    text = f"Your digest comes {rhythm_text(chat)} ({chat.timezone}). Next: {when}."
    if pause := pause_line(chat, now):
        text += f"\n{pause}: /digest resume ends the pause."
    return escape(text)


TIMEZONE_HELP = escape(
    "Send /timezone followed by your time zone's IANA name, e.g. /timezone Europe/Berlin "
    "or /timezone America/New_York."
)

HINT = escape("I didn't understand that. Send /help to see what I can do.")
UNAVAILABLE = escape("Sorry, I'm temporarily unavailable. Please try again in a minute.")
NOT_GROUP_ADMIN = escape("Only the group's administrators can change its settings.")
NOT_REGISTERED = escape("Send /start first.")

CHOOSER_INTRO = escape("Tap a section to follow or unfollow it:")


def followed_summary(
    sections: Sequence[Section], chat: Chat, *, now: datetime | None = None
) -> str:
    if not sections:
        return escape("You don't follow any section yet. Choose some with /subscribe.")
    return f"You follow {names(sections)}.\n{digest_set(chat, now=now)}"


def bad_timezone(raw: str, suggestions: Sequence[str]) -> str:
    text = f"I don't know the time zone “{escape(truncate(raw, 60))}”."
    if suggestions:
        text += " Did you mean: " + ", ".join(escape(s) for s in suggestions) + "?"
    return text + "\n" + TIMEZONE_HELP


# ---- reader commands ----------------------------------------------------------------------

NO_STORIES = escape("No stories yet. Come back soon!")
FOLLOW_NOTHING = escape("You don't follow any section yet. Choose some with /subscribe.")
NO_NEW_STORIES = escape("No new stories in your sections since your last digest.")
DIGEST_HELP = escape(
    "Change it with /digest HH:MM (daily), /digest weekdays 07:30, /digest weekly monday 09:00, "
    "/digest twice 08:00 18:00 (the second time is optional: 12 hours later), /digest off, "
    "/digest pause or /digest resume; or get one now: /digest now."
)
BAD_DIGEST_TIME = escape("Send the time as HH:MM, e.g. /digest 07:30, or /digest off.")


def bad_digest(problem: str) -> str:
    """/digest with arguments it cannot read: what was wrong (the reader's words cut short, so
    the answer always fits a message), and how to write it."""
    return escape(f"{truncate(problem, BAD_DIGEST_MAX)}. Nothing changed.") + "\n" + DIGEST_HELP


BAD_DIGEST_MAX = 200


def paused_answer(chat: Chat) -> str:
    """The short answer to ⏸ Pause for a week (and /digest pause)."""
    assert chat.paused_until is not None
    return f"Paused until {local_date(chat.paused_until, chat.timezone)}"


RESUMED = "Digests resumed."
NOT_PAUSED = "Digests were not paused."
DIGESTS_STOPPED = "Digests stopped. Turn them on again with /digest 08:00."
DIGESTS_ALREADY_OFF = "Digests are already off."
STOPPED = escape(
    "Done: you will get no more messages, and I deleted your settings and subscriptions. "
    "Send /start to come back."
)
NOTHING_CHANGED = escape("Nothing changed.")


def unfollowed(removed: Sequence[Section]) -> str:
    if not removed:
        return escape("You weren't following that.")
    return f"Stopped following {names(removed)}."


def timezone_is(chat: Chat) -> str:
    return f"Your time zone is {escape(chat.timezone)}.\n{TIMEZONE_HELP}"


def timezone_set(chat: Chat) -> str:
    return f"Time zone set to {escape(chat.timezone)}.\n{digest_set(chat)}"


def alerts_are(chat: Chat, *, hint: bool = False) -> str:
    state = "on" if chat.alerts else "off"
    if hint:
        return escape(f"Breaking news alerts are {state}. Use /alerts on or /alerts off.")
    return escape(f"Breaking news alerts are {state}.")


def unsubscribed_all(count: int) -> str:
    return escape(
        f"Stopped all digests ({count} section{'s' if count != 1 else ''}). "
        "Follow sections again with /subscribe."
    )


# ---- short answers to button presses (at most 200 characters, plain text) ----------------

STALE_BUTTON = "This button no longer works."
UNAVAILABLE_SHORT = "Temporarily unavailable: please try again in a minute."
NOT_GROUP_ADMIN_SHORT = "Only the group's administrators can change its settings."
SECTION_GONE = "That section no longer exists."
NO_MORE_STORIES = "No more stories."
BUTTON_FAILED = "Sorry, that didn't work. Please try again."
BUTTON_CRASHED = "Sorry, something went wrong."


def following(state: bool) -> str:
    return "Following" if state else "Not following"


# ---- editors ------------------------------------------------------------------------------

NOT_EDITOR = escape("Sorry, that is not allowed: this command is for the publisher's editors.")
NOT_ALLOWED = "Not allowed."

BREAKING_USAGE = f"{bold('Usage')}: /breaking [section] text or URL\n\n" + escape(
    "Examples:\n/breaking world Earthquake hits the coast; rescue under way\n"
    "/breaking https://news.example/story (a stored article's link)\n\n"
    "You get a preview with the number of chats it will reach, then Send or Cancel."
)
PUSH_CANCELLED = escape("Cancelled: nothing was sent.")
PUSH_ALREADY_DECIDED = "Already sent or cancelled."
PUSH_SENDING = "Sending…"


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
    parts = [f"🚨 {bold('Breaking')}", "", bold(article.title)]
    if summary:
        parts += [escape(summary)]
    if credit and (line := photo_credit(article)):
        parts += [line]
    if article.link:
        parts += ["", link(article.link, "Read more")]
    if correction is not None:
        parts += ["", italic(f"✏️ Corrected: {correction}")]
    return "\n".join(parts)


def breaking_message(article: Article) -> str | Photo:
    """The breaking news as readers get it: the story's photo with the story as its caption
    (the summary cut to fit 1,024 characters) when it has a photo, else breaking_story. The
    photo's fallback, sent if Telegram refuses the image, is the whole breaking_story."""
    from digests.delivery import Photo  # here: digests.delivery imports this module

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
    scope = push.section.name if push.section else "all sections"
    reach = f"It will reach {draft.audience} chat{'s' if draft.audience != 1 else ''} ({scope})."
    text = (
        f"{escape('Preview — readers will see:')}\n\n{breaking_story(push.article)}\n\n"
        + escape(reach)
    )
    return Reply(
        text,
        [
            [
                Button("Send", data=encode(PushChoice(push.id, send=True))),
                Button("Cancel", data=encode(PushChoice(push.id, send=False))),
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
                Button("✏️ Correct", data=encode(ActionChoice(ActionStep.CORRECT, push_id))),
                Button("🗑 Withdraw", data=encode(ActionChoice(ActionStep.WITHDRAW, push_id))),
            ]
        ]
    return Reply(push_progress(progress), buttons)


def push_progress(progress: PushProgress) -> str:
    """The preview message, edited as the push goes out."""
    counts = progress.tally
    if not progress.done:
        head = "📤 Pushing…"
    elif counts.interrupted:
        head = f"⚠️ Push interrupted, {counts.interrupted} uncertain"
    else:
        head = "✅ Push finished"
    return "\n".join(
        [
            bold(head),
            bold(progress.title),
            "",
            escape(
                f"Sent {counts.sent} · blocked {counts.blocked} · failed {counts.failed}"
                + (f" · pending {counts.pending}" if counts.pending else "")
                + (f" · uncertain {counts.uncertain}" if counts.uncertain else "")
                + f" (of {counts.total})"
            ),
        ]
    )


# ---- corrections and withdrawals (digests/corrections.py) ---------------------------------


def correct_help(push_id: int, title: str) -> str:
    """What Correct under a push report answers: how to send the correction."""
    return f"✏️ {bold('Correct')} {bold(title)}\n\n" + escape(
        f"Send /correct {push_id} followed by the corrected story: the first line the "
        "title, then the text, and a last line starting with “Note:”, the correction "
        "note readers see. With only the note line, the story as it is stored now "
        "(updated by the newsroom API or the feed) goes out.\n\nExample:\n"
        f"/correct {push_id} Bridge reopened after repairs\n"
        "Traffic flows again on both lanes.\n"
        "Note: an earlier version said the bridge stays closed."
    )


CORRECT_USAGE = escape(
    "Usage: /correct <push number> [title, then text on new lines]\nNote: what changed"
)
NOTHING_TO_CORRECT = "Nothing to correct any more."
CORRECTION_CHANGED = "That correction was changed or deleted: send /correct again."
CORRECTION_CANCELLED = escape("Correction cancelled: no message was edited.")
WITHDRAWAL_CANCELLED = escape("Withdrawal cancelled: no message was deleted.")
ACTION_STARTED = "Started."


def correction_preview(
    correction: CorrectionText, article: Article, *, count: int, digest: str
) -> Reply:
    """What readers' messages will become, and "Edit N messages" / Cancel."""
    shown = correction.applied_to(article)
    noun = "message" if count == 1 else "messages"
    text = (
        escape("Correction — readers' messages will read:")
        + "\n\n"
        + breaking_story(shown, correction=correction.note, limit=MAX_MESSAGE - 200)
        + "\n\n"
        + escape(f"{count} sent {noun} will be edited.")
    )
    return Reply(
        text,
        [
            [
                Button(
                    f"Edit {count} {noun}",
                    data=encode(ActionChoice(ActionStep.CORRECT_YES, correction.push_id, digest)),
                ),
                Button(
                    "Cancel", data=encode(ActionChoice(ActionStep.CORRECT_NO, correction.push_id))
                ),
            ]
        ],
    )


def withdraw_confirm(push_id: int, title: str, *, count: int) -> Reply:
    """Withdraw's confirmation: "Delete N messages?" Yes / No."""
    noun = "message" if count == 1 else "messages"
    text = f"🗑 {bold(f'Delete {count} {noun}?')}\n{bold(title)}\n\n" + escape(
        "Every reader's copy of this story is deleted where Telegram still allows it "
        "(48 hours after it was sent). This cannot be undone."
    )
    return Reply(
        text,
        [
            [
                Button("Yes, delete", data=encode(ActionChoice(ActionStep.WITHDRAW_YES, push_id))),
                Button("No", data=encode(ActionChoice(ActionStep.WITHDRAW_NO, push_id))),
            ]
        ],
    )


def action_progress(progress: ActionProgress) -> str:
    """A correction's or withdrawal's report, edited as it goes."""
    withdraw = progress.withdrawal
    verb = "deleted" if withdraw else "edited"
    if progress.done:
        head = "🗑 Withdrawn" if withdraw else "✏️ Corrected"
    else:
        head = "🗑 Withdrawing…" if withdraw else "✏️ Correcting…"
    counts = f"{progress.edited} {verb}, {progress.failed} failed, {progress.too_old} too old"
    if not progress.done:
        counts += f", {progress.remaining} to go"
    return "\n".join([bold(head), bold(progress.title), "", escape(counts)])


def story_changed(push_id: int, title: str) -> Reply:
    """To the editor of a pushed story that the feed has just changed."""
    return Reply(
        escape("This pushed story changed in the feed: ") + bold(title),
        [[Button("✏️ Correct", data=encode(ActionChoice(ActionStep.CORRECT, push_id)))]],
    )


_OUTCOMES = (
    ("sent", (DeliveryStatus.SENT,)),
    ("blocked", (DeliveryStatus.BLOCKED,)),
    ("failed", (DeliveryStatus.FAILED,)),
    ("pending", (DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
    ("uncertain", (DeliveryStatus.UNCERTAIN,)),
    ("empty", (DeliveryStatus.EMPTY,)),
)


_FAILING_SHOWN = 8  # lines of at most ~350 characters: the reply stays within Telegram's limit


def stats(found: Stats) -> str:
    """/stats: chats, subscribers and stories per section, the last day's deliveries, and the
    feeds that fail with their last error."""
    lines = [
        bold("Statistics"),
        "",
        escape(f"Chats: {found.active_chats} active, {found.inactive_chats} inactive"),
        "",
        bold("Sections") + escape(" (subscribers · stories)"),
    ]
    lines += [escape(f"• {name}: {subs} · {stories}") for name, subs, stories in found.sections]
    lines += ["", bold("Last 24 hours")]
    for kind, label in ((DeliveryKind.DIGEST, "Digests"), (DeliveryKind.BREAKING, "Breaking")):
        counts = found.last_day.get(kind.value, {})
        parts = [
            f"{name} {sum(counts.get(s.value, 0) for s in statuses)}"
            for name, statuses in _OUTCOMES
        ]
        lines.append(escape(f"{label}: " + ", ".join(parts)))
    if found.failing:
        lines += ["", bold("Failing feeds")]
        for feed in found.failing[:_FAILING_SHOWN]:
            retry = (
                f", next try {feed.next_attempt_at:%H:%M} UTC"
                if feed.next_attempt_at is not None
                else ""
            )
            noun = "failure" if feed.failures == 1 else "failures"
            lines.append(
                escape(
                    f"• {feed.url[:120]}: {feed.failures} {noun}{retry}: {feed.last_error[:200]}"
                )
            )
        if len(found.failing) > _FAILING_SHOWN:
            lines.append(escape(f"… and {len(found.failing) - _FAILING_SHOWN} more"))
    return "\n".join(lines)


# ---- digests -------------------------------------------------------------------------------

DIGEST_TITLE_MAX = 300
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def digest_controls() -> list[list[Button]]:
    """The one-tap buttons under every digest (on its last message)."""
    return [
        [
            Button("⏸ Pause for a week", data=encode(DigestControl.PAUSE)),
            Button("Sections", data=encode(DigestControl.SECTIONS)),
        ],
        [Button("🛑 Stop digests", data=encode(DigestControl.STOP))],
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
        lines[0] = f"\n{bold(section.name)}\n{lines[0]}"
        if section.more > 0 and section.keyword is not None:
            lines[-1] += "\n" + keyword_more(section.more, section.keyword)
        elif section.more > 0:
            lines[-1] += f"\n+{section.more} more: /latest {escape(section.slug)}"
        blocks.extend(lines)
    if not blocks:
        return []
    header = (
        f"📰 {bold('Your news digest')} · "
        f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"
    )
    # A message starting with a section heading would otherwise begin with a blank line.
    return [message.lstrip("\n") for message in split_messages(blocks, header=header)]


def _story_line(story: DigestStory, *, zone: ZoneInfo, today: date) -> str:
    title = truncate(story.title, DIGEST_TITLE_MAX)
    if not story.date_known:
        return f"• {link(story.link, title)} · {DATE_UNKNOWN}"
    local = story.published_at.astimezone(zone)
    when = f"{local:%H:%M}"
    if local.date() != today:
        when = f"{local.day} {_MONTHS[local.month - 1]} {when}"
    return f"• {link(story.link, title)} · {when}"


# ---- keyword follows and mutes (digests/keywords.py) ---------------------------------------

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
    from digests.keywords import PHRASE_WORDS_MAX, Refusal

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
        lines.append(bold(_("Following")))
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
                    f"✖ {_('Unmute')} {_on_button(rule.phrase)}",
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
