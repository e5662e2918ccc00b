"""What the bot answers to each reader command and button: the rules, free of Telegram.

Each function takes the session, the chat (already registered when the command needs one)
and an `Ask` (arguments, the moment, the defaults), changes what must change, and returns
the replies. The Telegram adapter only reads updates and sends what comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from digests import messages as msg
from digests.digest import DigestBuilder, DigestRequest
from digests.messages import Reply
from digests.models import Chat, Section
from digests.paging import Cursor, first_page, turn_page
from digests.readers import (
    Defaults,
    followed_section_ids,
    followed_sections,
    forget_chat,
    match_timezone,
    set_alerts,
    set_digest_time,
    set_timezone,
    subscribe,
    toggle,
    unsubscribe,
    unsubscribe_all,
)
from digests.render import escape
from digests.schedule import due_window, parse_hhmm
from digests.sections import list_sections, resolve_section_args, resolve_sections

STALE_BUTTON = "This button no longer works."


@dataclass(frozen=True)
class Ask:
    """A reader's command as the domain sees it."""

    now: datetime
    args: Sequence[str] = ()
    defaults: Defaults = field(default_factory=Defaults)
    per_section: int = 5

    @property
    def text(self) -> str:
        return " ".join(self.args).strip()


@dataclass(frozen=True)
class ButtonAnswer:
    """What a button press does: an edit of its message (or none) and a short answer."""

    edit: Reply | None = None
    answer: str | None = None
    keyboard_only: bool = False  # the edit changes the buttons only; the text stays as it is


async def _chooser(session: AsyncSession, chat: Chat) -> Reply:
    sections = list(await session.scalars(select(Section).order_by(Section.name)))
    followed = await followed_section_ids(session, chat)
    return msg.chooser(sections, followed, intro=msg.CHOOSER_INTRO)


async def start(session: AsyncSession, chat: Chat, *, publisher: str, new: bool) -> list[Reply]:
    """One message: the greeting with the section chooser under it (a second message would
    wait out the chat's flood spacing, and a crowd of new readers shares one send budget)."""
    chooser = await _chooser(session, chat)
    welcome = msg.welcome(publisher, new=new)
    if not chooser.buttons:  # no sections yet: say so under the greeting
        return [Reply(f"{welcome}\n\n{chooser.text}")]
    return [Reply(welcome, chooser.buttons)]


async def sections(session: AsyncSession, chat: Chat | None, ask: Ask) -> list[Reply]:
    followed = await followed_section_ids(session, chat) if chat else set()
    return [Reply(msg.sections_list(await list_sections(session), followed))]


async def subscribe_named(session: AsyncSession, chat: Chat, ask: Ask) -> list[Reply]:
    if not ask.args:
        return [await _chooser(session, chat)]
    found = await resolve_section_args(session, ask.args)
    if found.unknown:
        return [Reply(msg.unknown_sections(found.unknown, await list_sections(session)))]
    await subscribe(session, chat, found.sections, now=ask.now)
    return [Reply(msg.followed_summary(await followed_sections(session, chat), chat))]


async def unsubscribe_named(session: AsyncSession, chat: Chat, ask: Ask) -> list[Reply]:
    if not ask.args:
        return [msg.confirm_unsubscribe_all(len(await followed_section_ids(session, chat)))]
    found = await resolve_section_args(session, ask.args)
    if found.unknown:
        return [Reply(msg.unknown_sections(found.unknown, await list_sections(session)))]
    removed = await unsubscribe(session, chat, found.sections)
    left = await followed_sections(session, chat)
    text = (
        f"Stopped following {msg.names(removed)}."
        if removed
        else escape("You weren't following that.")
    )
    return [Reply(text + "\n" + msg.followed_summary(left, chat))]


async def latest(session: AsyncSession, chat: Chat | None, ask: Ask) -> list[Reply]:
    section = None
    if ask.args:
        found = await resolve_sections(session, [ask.text])
        if len(found.sections) != 1:
            found = await resolve_section_args(session, ask.args)
        if found.unknown or len(found.sections) != 1:
            unknown = found.unknown or [ask.text]
            return [Reply(msg.unknown_sections(unknown, await list_sections(session)))]
        section = found.sections[0]
    tz = chat.timezone if chat else ask.defaults.timezone
    page = await first_page(session, section)
    if page is None:
        return [Reply(escape("No stories yet. Come back soon!"))]
    return [msg.story_page(page, tz=tz)]


async def digest(session: AsyncSession, chat: Chat, ask: Ask) -> list[Reply]:
    """/digest HH:MM, /digest off, /digest now (what the scheduled one would hold)."""
    arg = ask.text.lower()
    if arg == "now":
        if not await followed_section_ids(session, chat):
            return [Reply(escape("You don't follow any section yet. Choose some with /subscribe."))]
        start, end = due_window(chat.last_digest_at, ask.now)
        request = DigestRequest(chat.id, start, end, chat.timezone)
        built = await DigestBuilder(per_section=ask.per_section).build(session, [request])
        texts = built[chat.id]
        if not texts:
            return [Reply(escape("No new stories in your sections since your last digest."))]
        return [Reply(text) for text in texts]
    if arg in {"off", "stop"}:
        set_digest_time(chat, None, now=ask.now)
        return [Reply(msg.digest_set(chat))]
    if not arg:
        hint = escape("Change it with /digest HH:MM, /digest off, or get one now: /digest now.")
        return [Reply(msg.digest_set(chat) + "\n" + hint)]
    try:
        value = parse_hhmm(arg)
    except ValueError:
        return [Reply(escape("Send the time as HH:MM, e.g. /digest 07:30, or /digest off."))]
    set_digest_time(chat, value, now=ask.now)
    return [Reply(msg.digest_set(chat))]


async def timezone(session: AsyncSession, chat: Chat, ask: Ask) -> list[Reply]:
    if not ask.text:
        return [Reply(f"Your time zone is {escape(chat.timezone)}.\n{msg.TIMEZONE_HELP}")]
    choice = match_timezone(ask.text)
    if not choice.ok:
        return [Reply(msg.bad_timezone(ask.text, choice.suggestions))]
    set_timezone(chat, choice.name, now=ask.now)
    return [Reply(f"Time zone set to {escape(choice.name)}.\n{msg.digest_set(chat)}")]


async def alerts(session: AsyncSession, chat: Chat, ask: Ask) -> list[Reply]:
    arg = ask.text.lower()
    if arg in {"on", "off"}:
        set_alerts(chat, arg == "on", now=ask.now)
        return [Reply(escape(f"Breaking news alerts are {'on' if chat.alerts else 'off'}."))]
    state = "on" if chat.alerts else "off"
    return [Reply(escape(f"Breaking news alerts are {state}. Use /alerts on or /alerts off."))]


async def show_settings(session: AsyncSession, chat: Chat | None, ask: Ask) -> list[Reply]:
    if chat is None:
        return [Reply(msg.NOT_REGISTERED)]
    return [msg.settings(chat, await followed_sections(session, chat))]


async def stop(session: AsyncSession, chat: Chat | None, ask: Ask) -> list[Reply]:
    if chat is not None:
        await forget_chat(session, chat)
    return [
        Reply(
            escape(
                "Done: you will get no more messages, and I deleted your settings and "
                "subscriptions. Send /start to come back."
            )
        )
    ]


# ---- buttons -----------------------------------------------------------------------------


async def page_button(
    session: AsyncSession, chat: Chat | None, data: str, ask: Ask
) -> ButtonAnswer:
    cursor = Cursor.decode(data)
    if cursor is None:
        return ButtonAnswer(answer=STALE_BUTTON)
    turn = await turn_page(session, cursor)
    if turn.page is None:
        return ButtonAnswer(answer=turn.problem)
    tz = chat.timezone if chat else ask.defaults.timezone
    return ButtonAnswer(edit=msg.story_page(turn.page, tz=tz))


async def chooser_button(session: AsyncSession, chat: Chat, data: str, ask: Ask) -> ButtonAnswer:
    if data == msg.CHOOSER_DONE:
        return ButtonAnswer(
            edit=Reply(msg.followed_summary(await followed_sections(session, chat), chat))
        )
    raw_id = data.removeprefix(msg.TOGGLE)
    if not data.startswith(msg.TOGGLE) or not raw_id.isdigit() or len(raw_id) > 9:
        return ButtonAnswer(answer=STALE_BUTTON)
    state = await toggle(session, chat, int(raw_id), now=ask.now)
    if state is None:
        return ButtonAnswer(answer="That section no longer exists.")
    return ButtonAnswer(
        edit=await _chooser(session, chat),
        answer="Following" if state else "Not following",
        keyboard_only=True,  # the chooser may sit under the /start greeting: keep its text
    )


async def unsubscribe_button(
    session: AsyncSession, chat: Chat, data: str, ask: Ask
) -> ButtonAnswer:
    if data == msg.UNSUB_CANCEL:
        return ButtonAnswer(edit=Reply(escape("Nothing changed.")))
    if data != msg.UNSUB_ALL:
        return ButtonAnswer(answer=STALE_BUTTON)
    count = await unsubscribe_all(session, chat)
    text = f"Stopped all digests ({count} section{'s' if count != 1 else ''})."
    return ButtonAnswer(edit=Reply(escape(text + " Follow sections again with /subscribe.")))


async def settings_button(session: AsyncSession, chat: Chat, data: str, ask: Ask) -> ButtonAnswer:
    if data == msg.SETTINGS_SECTIONS:
        return ButtonAnswer(edit=await _chooser(session, chat))
    if data == msg.SETTINGS_ALERTS:
        set_alerts(chat, not chat.alerts, now=ask.now)
    elif data == msg.SETTINGS_DIGEST:
        value = None if chat.digest_time else parse_hhmm(ask.defaults.digest_time)
        set_digest_time(chat, value, now=ask.now)
    elif data == msg.SETTINGS_TZ:
        return ButtonAnswer(
            edit=Reply(f"Your time zone is {escape(chat.timezone)}.\n{msg.TIMEZONE_HELP}")
        )
    else:
        return ButtonAnswer(answer=STALE_BUTTON)
    return ButtonAnswer(edit=msg.settings(chat, await followed_sections(session, chat)))
