"""What the digest feature says: the digest itself and the buttons under it, a keyword
alert, the note above a closed forum topic's part, and the answers to /digest and to the
digest's buttons."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from digests.i18n import _, ngettext, pgettext
from digests.ui.buttons import DigestControl, encode
from digests.ui.render import (
    MAX_MESSAGE,
    bold,
    escape,
    fit_visible,
    italic,
    link,
    split_messages,
    truncate,
)
from digests.ui.shapes import Button
from digests.ui.texts import DATE_UNKNOWN, format_moment, in_zone, local_date

if TYPE_CHECKING:
    from digests.digest.builder import DigestSection, DigestStory
    from digests.models import Article, Chat


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
    local = in_zone(story.published_at, zone)
    when = f"{local:%H:%M}"
    if local.date() != today:
        when = f"{format_moment(local, zone.key, 'day')} {when}"
    return f"• {link(story.link, title)} · {when}"


def keyword_heading(phrase: str) -> str:
    """The heading of a followed phrase's section in a digest (plain text: bold() escapes)."""
    return _("🔎 “%(phrase)s”") % {"phrase": phrase}


def keyword_more(count: int, phrase: str) -> str:
    """The line under a keyword section with more stories than it shows."""
    return escape(
        ngettext("+%(count)d more: /search %(words)s", "+%(count)d more: /search %(words)s", count)
        % {"count": count, "words": phrase}
    )


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


def topic_closed_note(section: str, slug: str) -> str:
    """Above a section's digest part sent to the General topic because its topic is closed."""
    return italic(
        _(
            "The topic for %(section)s is closed, so this comes here. An administrator can "
            "reopen it and send /topic %(slug)s inside it, or send /topic off %(slug)s."
        )
        % {"section": section, "slug": slug}
    )


# ---- /digest and the buttons under a digest ---------------------------------------------


def digest_help() -> str:
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
    return escape(said) + "\n" + digest_help()


BAD_DIGEST_MAX = 200


def paused_answer(chat: Chat) -> str:
    """The short answer to ⏸ Pause for a week (and /digest pause)."""
    assert chat.paused_until is not None
    return _("Paused until %(date)s") % {"date": local_date(chat.paused_until, chat.timezone)}


def follow_nothing() -> str:
    return escape(_("You don't follow any section yet. Choose some with /subscribe."))


def no_new_stories() -> str:
    return escape(_("No new stories in your sections since your last digest."))


def bad_digest_time() -> str:
    return escape(_("Send the time as HH:MM, e.g. /digest 07:30, or /digest off."))


def digests_stopped() -> str:
    return _("Digests stopped. Turn them on again with /digest 08:00.")


def digests_already_off() -> str:
    return _("Digests are already off.")
