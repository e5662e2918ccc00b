"""What the bot answers to each reader command and button: the rules, free of Telegram.

Each function takes the session, the chat (already registered when the command needs one)
and a `ReaderRequest` (arguments, the moment, the defaults), changes what must change, and returns
the replies. The Telegram adapter only reads updates and sends what comes back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n
from digests.digest.builder import DigestRequest
from digests.digest.rounds import DigestWriter
from digests.models import Chat, KeywordKind, Section
from digests.readers.chats import (
    Defaults,
    chat_plan,
    followed_section_ids,
    followed_sections,
    forget_chat,
    match_timezone,
    pause_digests,
    resume_digests,
    set_alerts,
    set_digest_time,
    set_language,
    set_rhythm,
    set_timezone,
    stop_digests,
    subscribe,
    toggle,
    unsubscribe,
    unsubscribe_all,
)
from digests.readers.keywords import add_rule, remove_phrase, remove_rule, rules_of, toggle_alert
from digests.schedule import due_window, first_window_start, parse_hhmm, parse_plan
from digests.stories.paging import first_page, turn_page
from digests.stories.search import search_words, start_search, turn_search
from digests.stories.sections import list_sections, resolve_section_args, resolve_sections
from digests.ui import messages as msg
from digests.ui.buttons import (
    ChooserDone,
    ChooserPage,
    DigestControl,
    KeywordChoice,
    KeywordStep,
    LanguageChoice,
    PageTurn,
    SearchTurn,
    SettingsButton,
    SettingsChoice,
    ToggleSection,
    Unsubscribe,
)
from digests.ui.messages import ButtonAnswer, Reply
from digests.ui.render import escape


@dataclass(frozen=True)
class ReaderRequest:
    """A reader's command or button press as the domain sees it."""

    now: datetime
    args: Sequence[str] = ()
    defaults: Defaults = field(default_factory=Defaults)
    per_section: int = 5
    max_keywords: int = 20  # /follow and /mute phrases a chat may have in all

    @property
    def text(self) -> str:
        return " ".join(self.args).strip()


async def _chooser_sections(session: AsyncSession) -> list[Section]:
    """Every section, in the chooser's order."""
    return list(await session.scalars(select(Section).order_by(Section.name, Section.id)))


async def _chooser(
    session: AsyncSession, chat: Chat, *, page: int = 1, sections: list[Section] | None = None
) -> Reply:
    if sections is None:
        sections = await _chooser_sections(session)
    followed = await followed_section_ids(session, chat)
    return msg.chooser(sections, followed, intro=msg.CHOOSER_INTRO, page=page)


async def start(session: AsyncSession, chat: Chat, *, publisher: str, new: bool) -> list[Reply]:
    """One message: the greeting with the section chooser under it (a second message would
    wait out the chat's flood spacing, and a crowd of new readers shares one send budget)."""
    chooser = await _chooser(session, chat)
    welcome = msg.welcome(publisher, new=new)
    if not chooser.buttons:  # no sections yet: say so under the greeting
        return [Reply(f"{welcome}\n\n{chooser.text}")]
    return [Reply(welcome, chooser.buttons)]


async def sections(session: AsyncSession, chat: Chat | None, request: ReaderRequest) -> list[Reply]:
    followed = await followed_section_ids(session, chat) if chat else set()
    return [Reply(text) for text in msg.sections_list(await list_sections(session), followed)]


async def subscribe_named(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    if not request.args:
        return [await _chooser(session, chat)]
    found = await resolve_section_args(session, request.args)
    if found.unknown:
        return [Reply(msg.unknown_sections(found.unknown, await list_sections(session)))]
    await subscribe(session, chat, found.sections, now=request.now)
    return [
        Reply(msg.followed_summary(await followed_sections(session, chat), chat, now=request.now))
    ]


async def unsubscribe_named(
    session: AsyncSession, chat: Chat, request: ReaderRequest
) -> list[Reply]:
    if not request.args:
        return [msg.confirm_unsubscribe_all(len(await followed_section_ids(session, chat)))]
    found = await resolve_section_args(session, request.args)
    if found.unknown:
        return [Reply(msg.unknown_sections(found.unknown, await list_sections(session)))]
    removed = await unsubscribe(session, chat, found.sections)
    left = await followed_sections(session, chat)
    return [
        Reply(msg.unfollowed(removed) + "\n" + msg.followed_summary(left, chat, now=request.now))
    ]


async def latest(session: AsyncSession, chat: Chat | None, request: ReaderRequest) -> list[Reply]:
    section = None
    if request.args:
        found = await resolve_sections(session, [request.text])
        if len(found.sections) != 1:
            found = await resolve_section_args(session, request.args)
        if found.unknown or len(found.sections) != 1:
            unknown = found.unknown or [request.text]
            return [Reply(msg.unknown_sections(unknown, await list_sections(session)))]
        section = found.sections[0]
    tz = chat.timezone if chat else request.defaults.timezone
    page = await first_page(session, section)
    if page is None:
        return [Reply(msg.NO_STORIES)]
    return [msg.story_page(page, tz=tz)]


async def search(
    session: AsyncSession, chat_id: int, chat: Chat | None, request: ReaderRequest
) -> list[Reply]:
    """/search words: the best match, with ◀ Previous / Next ▶ through the saved results."""
    words = search_words(request.text)
    if not words:
        return [Reply(msg.SEARCH_USAGE)]
    page = await start_search(session, chat_id=chat_id, words=words, now=request.now)
    if page is None:
        return [Reply(msg.no_results(words))]
    tz = chat.timezone if chat else request.defaults.timezone
    return [msg.search_page(page, tz=tz)]


async def digest(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/digest [daily|weekdays|weekly <day>|twice] HH:MM, off, pause, resume, now."""
    arg = request.text.lower()
    if arg == "now":
        if not await followed_section_ids(session, chat) and not await rules_of(session, chat):
            return [Reply(msg.FOLLOW_NOTHING)]
        plan = chat_plan(chat)
        start = (
            chat.last_digest_at
            if chat.last_digest_at is not None or plan is None
            else first_window_start(plan, chat.timezone, request.now)
        )
        start, end = due_window(start, request.now)
        wanted = DigestRequest(chat.id, start, end, chat.timezone, i18n.current())
        built = await DigestWriter(per_section=request.per_section).build(session, [wanted])
        texts = built[chat.id]
        if not texts:
            return [Reply(msg.NO_NEW_STORIES)]
        return [Reply(text) for text in texts]
    if arg in {"off", "stop"}:
        stop_digests(chat, now=request.now)
        return [Reply(msg.digest_set(chat, now=request.now))]
    if arg == "pause":
        if chat.digest_time is None:
            return [Reply(msg.digest_set(chat, now=request.now))]
        pause_digests(chat, now=request.now)
        return [Reply(msg.digest_set(chat, now=request.now))]
    if arg == "resume":
        was = resume_digests(chat, now=request.now)
        said = "" if was else escape(msg.NOT_PAUSED) + "\n"
        return [Reply(said + msg.digest_set(chat, now=request.now))]
    if not arg:
        return [Reply(msg.digest_set(chat, now=request.now) + "\n" + msg.DIGEST_HELP)]
    current = parse_hhmm(chat.digest_time or request.defaults.digest_time)
    try:
        plan = parse_plan(request.args, current=current)
    except ValueError as exc:
        return [Reply(msg.bad_digest(str(exc)))]
    set_rhythm(chat, plan, now=request.now)
    return [Reply(msg.digest_set(chat, now=request.now))]


async def timezone(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    if not request.text:
        return [Reply(msg.timezone_is(chat))]
    choice = match_timezone(request.text)
    if not choice.ok:
        return [Reply(msg.bad_timezone(request.text, choice.suggestions))]
    set_timezone(chat, choice.name, now=request.now)
    return [Reply(msg.timezone_set(chat))]


async def alerts(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    arg = request.text.lower()
    if arg in {"on", "off"}:
        set_alerts(chat, arg == "on", now=request.now)
        return [Reply(msg.alerts_are(chat))]
    return [Reply(msg.alerts_are(chat, hint=True))]


async def show_settings(
    session: AsyncSession, chat: Chat | None, request: ReaderRequest
) -> list[Reply]:
    if chat is None:
        return [Reply(msg.NOT_REGISTERED)]
    return [msg.settings(chat, await followed_sections(session, chat), now=request.now)]


async def stop(session: AsyncSession, chat: Chat | None, request: ReaderRequest) -> list[Reply]:
    if chat is not None:
        await forget_chat(session, chat)
    return [Reply(msg.STOPPED)]


# ---- buttons -----------------------------------------------------------------------------


async def turn_page_button(
    session: AsyncSession, chat: Chat | None, turn: PageTurn, request: ReaderRequest
) -> ButtonAnswer:
    """◀ Previous / Next ▶ under a /latest story: edit the message to the next story."""
    turned = await turn_page(session, turn)
    if turned.page is None:
        return ButtonAnswer(answer=turned.problem)
    tz = chat.timezone if chat else request.defaults.timezone
    return ButtonAnswer(edit=msg.story_page(turned.page, tz=tz))


async def search_button(
    session: AsyncSession, chat_id: int, chat: Chat | None, turn: SearchTurn, request: ReaderRequest
) -> ButtonAnswer:
    """◀ Previous / Next ▶ under a /search result: edit the message to that result."""
    turned = await turn_search(session, chat_id=chat_id, turn=turn)
    if turned.page is None:
        return ButtonAnswer(answer=turned.problem)
    tz = chat.timezone if chat else request.defaults.timezone
    return ButtonAnswer(edit=msg.search_page(turned.page, tz=tz))


async def settings_button(
    session: AsyncSession, chat: Chat, choice: SettingsButton, request: ReaderRequest
) -> ButtonAnswer:
    """A button of the section chooser, the /unsubscribe confirmation or the /settings menu."""
    match choice:
        case ChooserDone():
            return ButtonAnswer(
                edit=Reply(
                    msg.followed_summary(
                        await followed_sections(session, chat), chat, now=request.now
                    )
                )
            )
        case ToggleSection(section_id, page):
            state = await toggle(session, chat, section_id, now=request.now)
            if state is None:
                return ButtonAnswer(answer=msg.SECTION_GONE)
            every = await _chooser_sections(session)
            if page is None:  # a button from before the chooser had pages
                page = msg.chooser_page_of(every, section_id)
            return ButtonAnswer(
                edit=await _chooser(session, chat, page=page, sections=every),
                answer=msg.following(state),
                keyboard_only=True,  # the chooser may sit under the /start greeting: keep it
            )
        case ChooserPage(page):
            every = await _chooser_sections(session)
            return ButtonAnswer(
                edit=await _chooser(session, chat, page=page, sections=every),
                answer=msg.chooser_page_answer(page, msg.chooser_pages(len(every))),
                keyboard_only=True,
            )
        case Unsubscribe.CANCEL:
            return ButtonAnswer(edit=Reply(msg.NOTHING_CHANGED))
        case Unsubscribe.ALL:
            count = await unsubscribe_all(session, chat)
            return ButtonAnswer(edit=Reply(msg.unsubscribed_all(count)))
        case SettingsChoice.SECTIONS:
            return ButtonAnswer(edit=await _chooser(session, chat))
        case SettingsChoice.TIMEZONE:
            return ButtonAnswer(edit=Reply(msg.timezone_is(chat)))
        case SettingsChoice.ALERTS:
            set_alerts(chat, not chat.alerts, now=request.now)
        case SettingsChoice.RESUME:
            resumed = resume_digests(chat, now=request.now)
            return ButtonAnswer(
                edit=msg.settings(chat, await followed_sections(session, chat), now=request.now),
                answer=msg.RESUMED if resumed else msg.NOT_PAUSED,
            )
        case SettingsChoice.DIGEST:
            if chat.digest_time:
                stop_digests(chat, now=request.now)
            else:
                set_digest_time(chat, parse_hhmm(request.defaults.digest_time), now=request.now)
    return ButtonAnswer(
        edit=msg.settings(chat, await followed_sections(session, chat), now=request.now)
    )


async def digest_button(
    session: AsyncSession, chat: Chat, choice: DigestControl, request: ReaderRequest
) -> ButtonAnswer:
    """A one-tap button under a digest: it acts on the chat at once and says so; the digest
    itself stays as it is."""
    match choice:
        case DigestControl.PAUSE:
            if chat.digest_time is None:
                return ButtonAnswer(answer=msg.DIGESTS_ALREADY_OFF)
            pause_digests(chat, now=request.now)
            return ButtonAnswer(answer=msg.paused_answer(chat))
        case DigestControl.SECTIONS:
            return ButtonAnswer(send=await _chooser(session, chat))
        case DigestControl.STOP:
            was_on = stop_digests(chat, now=request.now)
            return ButtonAnswer(answer=msg.DIGESTS_STOPPED if was_on else msg.DIGESTS_ALREADY_OFF)


# ---- the reader's language ---------------------------------------------------------------


async def language(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/language shows the chooser; /language ru (or en, or a Telegram code like ru-RU) sets
    it, and the answer comes in the new language."""
    if not request.args:
        return [msg.language_chooser(chat.language)]
    chosen = i18n.supported(request.text)
    if chosen is None or len(request.args) > 1:
        return [Reply(msg.unknown_language(request.text)), msg.language_chooser(chat.language)]
    set_language(chat, chosen, now=request.now)
    with i18n.use(chosen):
        return [Reply(msg.language_set(chosen))]


async def language_button(
    session: AsyncSession, chat: Chat, choice: LanguageChoice, request: ReaderRequest
) -> ButtonAnswer:
    """A language's button under /language: set it and redraw the chooser in it."""
    if choice.language not in i18n.LANGUAGES:
        return ButtonAnswer(answer=msg.STALE_BUTTON)
    set_language(chat, choice.language, now=request.now)
    with i18n.use(choice.language):
        return ButtonAnswer(
            edit=msg.language_chooser(chat.language), answer=msg.language_set(chat.language)
        )


# ---- keyword follows and mutes -------------------------------------------------------------


async def _keywords_screen(
    session: AsyncSession, chat: Chat, request: ReaderRequest, notice: str = ""
) -> Reply:
    return msg.keywords_screen(
        await rules_of(session, chat), notice=notice, cap=request.max_keywords
    )


async def keywords(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/keywords: the chat's follows and mutes, with a button to change each."""
    return [await _keywords_screen(session, chat, request)]


async def _add(
    session: AsyncSession, chat: Chat, request: ReaderRequest, kind: KeywordKind
) -> list[Reply]:
    if not request.text:
        return [await _keywords_screen(session, chat, request)]
    added = await add_rule(
        session, chat, kind, request.text, now=request.now, cap=request.max_keywords
    )
    if added.refusal is not None:
        return [Reply(msg.keyword_refused(added.refusal, cap=request.max_keywords))]
    return [await _keywords_screen(session, chat, request, msg.keyword_added(added))]


async def follow(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/follow phrase: stories from any section that mention it join the digest."""
    return await _add(session, chat, request, KeywordKind.FOLLOW)


async def mute(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/mute phrase: stories that mention it stay out of the digest and alerts."""
    return await _add(session, chat, request, KeywordKind.MUTE)


async def _remove(
    session: AsyncSession, chat: Chat, request: ReaderRequest, kind: KeywordKind
) -> list[Reply]:
    if not request.text:
        return [Reply(msg.unfollow_usage(kind))]
    removed = await remove_phrase(session, chat, kind, request.text)
    said = msg.keyword_removed(removed, kind, request.text)
    return [await _keywords_screen(session, chat, request, said)]


async def unfollow(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/unfollow phrase."""
    return await _remove(session, chat, request, KeywordKind.FOLLOW)


async def unmute(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/unmute phrase."""
    return await _remove(session, chat, request, KeywordKind.MUTE)


async def keyword_button(
    session: AsyncSession, chat: Chat, choice: KeywordChoice, request: ReaderRequest
) -> ButtonAnswer:
    """🔔/🔕 or ✖ under the keyword list: act on this chat's rule and show the list again;
    a rule that is gone (or another chat's) changes nothing."""
    if choice.step is KeywordStep.ALERT:
        rule = await toggle_alert(session, chat, choice.rule_id)
        answer = msg.keyword_alert_answer(rule) if rule is not None else None
    else:
        rule = await remove_rule(session, chat, choice.rule_id)
        answer = msg.keyword_removed_answer(rule) if rule is not None else None
    if rule is None:
        return ButtonAnswer(
            edit=await _keywords_screen(session, chat, request), answer=msg.keyword_gone()
        )
    return ButtonAnswer(edit=await _keywords_screen(session, chat, request), answer=answer)
