"""What the bot answers to /digest and to the buttons under a digest: the rules, free of
Telegram.

Each function takes the session, the chat and a `ReaderRequest`, changes what must change,
and returns the replies; the texts come from digests/digest/texts.py (and the digest's
settings lines from digests/readers/texts.py, which the settings screen shares).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n
from digests.digest import texts
from digests.digest.builder import DigestRequest
from digests.digest.rounds import DigestWriter
from digests.models import Chat
from digests.readers.chats import (
    chat_plan,
    followed_section_ids,
    pause_digests,
    resume_digests,
    set_rhythm,
    stop_digests,
)
from digests.readers.keywords import rules_of
from digests.readers.service import chooser
from digests.readers.texts import digest_set, not_paused
from digests.schedule import due_window, first_window_start, parse_hhmm, parse_plan
from digests.ui.buttons import DigestControl
from digests.ui.render import escape
from digests.ui.shapes import ButtonAnswer, ReaderRequest, Reply


async def digest(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/digest [daily|weekdays|weekly <day>|twice] HH:MM, off, pause, resume, now."""
    arg = request.text.lower()
    if arg == "now":
        if not await followed_section_ids(session, chat) and not await rules_of(session, chat):
            return [Reply(texts.follow_nothing())]
        plan = chat_plan(chat)
        start = (
            chat.last_digest_at
            if chat.last_digest_at is not None or plan is None
            else first_window_start(plan, chat.timezone, request.now)
        )
        start, end = due_window(start, request.now)
        wanted = DigestRequest(chat.id, start, end, chat.timezone, i18n.current())
        built = await DigestWriter(per_section=request.per_section).build(session, [wanted])
        messages = built[chat.id]
        if not messages:
            return [Reply(texts.no_new_stories())]
        return [Reply(text) for text in messages]
    if arg in {"off", "stop"}:
        stop_digests(chat, now=request.now)
        return [Reply(digest_set(chat, now=request.now))]
    if arg == "pause":
        if chat.digest_time is None:
            return [Reply(digest_set(chat, now=request.now))]
        pause_digests(chat, now=request.now)
        return [Reply(digest_set(chat, now=request.now))]
    if arg == "resume":
        was = resume_digests(chat, now=request.now)
        said = "" if was else escape(not_paused()) + "\n"
        return [Reply(said + digest_set(chat, now=request.now))]
    if not arg:
        return [Reply(digest_set(chat, now=request.now) + "\n" + texts.digest_help())]
    current = parse_hhmm(chat.digest_time or request.defaults.digest_time)
    try:
        plan = parse_plan(request.args, current=current)
    except ValueError as exc:
        return [Reply(texts.bad_digest(str(exc)))]
    set_rhythm(chat, plan, now=request.now)
    return [Reply(digest_set(chat, now=request.now))]


async def digest_button(
    session: AsyncSession, chat: Chat, choice: DigestControl, request: ReaderRequest
) -> ButtonAnswer:
    """A one-tap button under a digest: it acts on the chat at once and says so; the digest
    itself stays as it is."""
    match choice:
        case DigestControl.PAUSE:
            if chat.digest_time is None:
                return ButtonAnswer(answer=texts.digests_already_off())
            pause_digests(chat, now=request.now)
            return ButtonAnswer(answer=texts.paused_answer(chat))
        case DigestControl.SECTIONS:
            return ButtonAnswer(send=await chooser(session, chat))
        case DigestControl.STOP:
            was_on = stop_digests(chat, now=request.now)
            return ButtonAnswer(
                answer=texts.digests_stopped() if was_on else texts.digests_already_off()
            )
