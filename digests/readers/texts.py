"""What the readers feature says: the section chooser and /sections, the settings screen,
time zone, alerts, language, /stop, forum topics (/topic) and the keyword follow and mute
screens. The reader orchestrator (digests/readers/service.py) calls these."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from digests import i18n
from digests.i18n import N_, _, ngettext, pgettext
from digests.models import KEYWORD_PHRASE_MAX, KeywordKind
from digests.readers.chats import chat_plan
from digests.readers.keywords import PHRASE_WORDS_MAX, Refusal
from digests.readers.topics import TopicOutcome, TopicResult
from digests.schedule import Rhythm
from digests.stories.texts import unknown_sections
from digests.ui.buttons import (
    ChooserDone,
    ChooserPage,
    KeywordChoice,
    KeywordStep,
    LanguageChoice,
    SettingsChoice,
    ToggleSection,
    Unsubscribe,
    encode,
)
from digests.ui.render import bold, escape, split_messages, truncate
from digests.ui.shapes import Button, Reply
from digests.ui.texts import local_date, local_time, names

if TYPE_CHECKING:
    from digests.models import Chat, KeywordRule, Section
    from digests.readers.keywords import Added
    from digests.readers.topics import TopicLine
    from digests.stories.sections import SectionInfo


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


def chooser_intro() -> str:
    return escape(_("Tap a section to follow or unfollow it:"))


def not_registered() -> str:
    return escape(_("Send /start first."))


def stopped() -> str:
    return escape(
        _(
            "Done: you will get no more messages, and I deleted your settings and "
            "subscriptions. Send /start to come back."
        )
    )


def nothing_changed() -> str:
    return escape(_("Nothing changed."))


def resumed() -> str:
    return _("Digests resumed.")


def not_paused() -> str:
    return _("Digests were not paused.")


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


def timezone_help() -> str:
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
    return text + "\n" + timezone_help()


def unfollowed(removed: Sequence[Section]) -> str:
    if not removed:
        return escape(_("You weren't following that."))
    return _("Stopped following %(sections)s.") % {"sections": names(removed)}


def timezone_is(chat: Chat) -> str:
    said = _("Your time zone is %(timezone)s.") % {"timezone": escape(chat.timezone)}
    return f"{said}\n{timezone_help()}"


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


# ---- forum topics (/topic) --------------------------------------------------------------


def topic_answer(result: TopicResult, infos: Sequence[SectionInfo]) -> str:
    """What /topic did, in words (`infos`: every section, named when the section is unknown)."""
    match result.outcome:
        case TopicOutcome.NOT_FORUM:
            return topic_not_forum()
        case TopicOutcome.LIST:
            return topic_list(result.lines)
        case TopicOutcome.NO_SECTION:
            return topic_one_section()
        case TopicOutcome.UNKNOWN_SECTION:
            return unknown_sections(result.unknown, infos)
        case TopicOutcome.TO_GENERAL:
            return topic_to_general(result.section)
        case TopicOutcome.OUTSIDE:
            return topic_outside()
    return topic_bound(result.section)


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
