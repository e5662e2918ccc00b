"""What the newsroom says to editors: /breaking's usage and preview, a push's progress
report, corrections and withdrawals (their previews, confirmations, progress and refusals),
and /stats."""

from __future__ import annotations

from typing import TYPE_CHECKING

from digests.i18n import N_, _, ngettext, pgettext
from digests.models import API_SOURCE, DeliveryKind, DeliveryStatus
from digests.newsroom.breaking import PressOutcome
from digests.newsroom.corrections import NOTE_MAX, Refusal, RefusalCode
from digests.newsroom.render import breaking_story
from digests.ui.buttons import ActionChoice, ActionStep, PushChoice, encode
from digests.ui.render import MAX_MESSAGE, bold, escape
from digests.ui.shapes import Button, ButtonAnswer, Reply

if TYPE_CHECKING:
    from digests.models import Article
    from digests.newsroom.actions import ActionProgress
    from digests.newsroom.breaking import Draft, PushProgress
    from digests.newsroom.corrections import CorrectionText
    from digests.newsroom.stats import Stats


def not_editor() -> str:
    return escape(_("Sorry, that is not allowed: this command is for the publisher's editors."))


def not_allowed() -> str:
    return _("Not allowed.")


def push_cancelled() -> str:
    return escape(_("Cancelled: nothing was sent."))


def push_already_decided() -> str:
    return _("Already sent or cancelled.")


def push_sending() -> str:
    return _("Sending…")


def pressed_answer(outcome: PressOutcome) -> ButtonAnswer:
    """What Send or Cancel under a preview shows (digests.newsroom.breaking.press)."""
    match outcome:
        case PressOutcome.CANCELLED:
            return ButtonAnswer(edit=Reply(push_cancelled()))
        case PressOutcome.SENDING:
            return ButtonAnswer(answer=push_sending())
    return ButtonAnswer(answer=push_already_decided())


def correct_usage() -> str:
    return escape(
        _("Usage: /correct <push number> [title, then text on new lines]\nNote: what changed")
    )


def nothing_to_correct() -> str:
    return _("Nothing to correct any more.")


def correction_changed() -> str:
    return _("That correction was changed or deleted: send /correct again.")


def correction_cancelled() -> str:
    return escape(_("Correction cancelled: no message was edited."))


def withdrawal_cancelled() -> str:
    return escape(_("Withdrawal cancelled: no message was deleted."))


def action_started() -> str:
    return _("Started.")


_REFUSALS = {
    RefusalCode.UNKNOWN_PUSH: N_("There is no such push."),
    RefusalCode.NOT_SENT: N_("That push has not been sent (or is still going out)."),
    RefusalCode.WITHDRAWN: N_("That push was withdrawn."),
    RefusalCode.EMPTY_NOTE: N_("A correction needs a note saying what changed."),
    RefusalCode.NOTE_TOO_LONG: N_("The correction note is too long (at most %(max)s)."),
}


def refusal(refused: Refusal) -> str:
    """Why a correction or withdrawal was not started, a plain sentence for people."""
    return _(_REFUSALS[refused.code]) % {"max": NOTE_MAX}


def breaking_usage() -> str:
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
    if draft.same_link:
        text += "\n\n" + escape(
            ngettext(
                "⚠️ %(n)s other stored story has this link. This one is from %(source)s.",
                "⚠️ %(n)s other stored stories have this link. This one is from %(source)s.",
                draft.same_link,
            )
            % {"n": draft.same_link, "source": _source_name(push.article.source)}
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


def _source_name(source: str | None) -> str:
    if source == API_SOURCE:
        return _("the newsroom API")
    if source is None or source == "breaking":
        return _("an editor's /breaking")
    return source


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


# ---- /stats --------------------------------------------------------------------------------


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
