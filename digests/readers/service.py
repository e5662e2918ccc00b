"""What the bot answers to a reader's commands and buttons about the chat itself: /start,
/sections, /subscribe, /unsubscribe, /settings and its buttons, /timezone, /alerts, /stop,
/language, the keyword follows and mutes, and /topic. The rules, free of Telegram.

Each function takes the session, the chat (already registered when the command needs one)
and a `ReaderRequest` (arguments, the moment, the defaults), changes what must change, and
returns the replies; the texts come from digests/readers/texts.py. Stories (/latest,
/search) are digests/stories/service.py's, the digest's (/digest) digests/digest/service.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n
from digests.models import Chat, KeywordKind, Section
from digests.readers import texts
from digests.readers.chats import (
    followed_section_ids,
    followed_sections,
    forget_chat,
    match_timezone,
    resume_digests,
    set_alerts,
    set_digest_time,
    set_language,
    set_timezone,
    stop_digests,
    subscribe,
    toggle,
    unsubscribe,
    unsubscribe_all,
)
from digests.readers.keywords import add_rule, remove_phrase, remove_rule, rules_of, toggle_alert
from digests.readers.topics import topic_request
from digests.schedule import parse_hhmm
from digests.stories.sections import list_sections, resolve_section_args
from digests.stories.texts import unknown_sections
from digests.ui.buttons import (
    ChooserDone,
    ChooserPage,
    KeywordChoice,
    KeywordStep,
    LanguageChoice,
    SettingsButton,
    SettingsChoice,
    ToggleSection,
    Unsubscribe,
)
from digests.ui.shapes import ButtonAnswer, ReaderRequest, Reply
from digests.ui.texts import section_gone, stale_button, welcome


async def _chooser_sections(session: AsyncSession) -> list[Section]:
    """Every section, in the chooser's order."""
    return list(await session.scalars(select(Section).order_by(Section.name, Section.id)))


async def chooser(
    session: AsyncSession, chat: Chat, *, page: int = 1, sections: list[Section] | None = None
) -> Reply:
    """The section chooser for this chat (`page` of it), with ✓ on the followed sections."""
    if sections is None:
        sections = await _chooser_sections(session)
    followed = await followed_section_ids(session, chat)
    return texts.chooser(sections, followed, intro=texts.chooser_intro(), page=page)


async def start(session: AsyncSession, chat: Chat, *, publisher: str, new: bool) -> list[Reply]:
    """One message: the greeting with the section chooser under it (a second message would
    wait out the chat's flood spacing, and a crowd of new readers shares one send budget)."""
    shown = await chooser(session, chat)
    said = welcome(publisher, new=new)
    if not shown.buttons:  # no sections yet: say so under the greeting
        return [Reply(f"{said}\n\n{shown.text}")]
    return [Reply(said, shown.buttons)]


async def sections(session: AsyncSession, chat: Chat | None, request: ReaderRequest) -> list[Reply]:
    followed = await followed_section_ids(session, chat) if chat else set()
    return [Reply(text) for text in texts.sections_list(await list_sections(session), followed)]


async def subscribe_named(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    if not request.args:
        return [await chooser(session, chat)]
    found = await resolve_section_args(session, request.args)
    if found.unknown:
        return [Reply(unknown_sections(found.unknown, await list_sections(session)))]
    await subscribe(session, chat, found.sections, now=request.now)
    return [
        Reply(texts.followed_summary(await followed_sections(session, chat), chat, now=request.now))
    ]


async def unsubscribe_named(
    session: AsyncSession, chat: Chat, request: ReaderRequest
) -> list[Reply]:
    if not request.args:
        return [texts.confirm_unsubscribe_all(len(await followed_section_ids(session, chat)))]
    found = await resolve_section_args(session, request.args)
    if found.unknown:
        return [Reply(unknown_sections(found.unknown, await list_sections(session)))]
    removed = await unsubscribe(session, chat, found.sections)
    left = await followed_sections(session, chat)
    return [
        Reply(
            texts.unfollowed(removed) + "\n" + texts.followed_summary(left, chat, now=request.now)
        )
    ]


async def timezone(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    if not request.text:
        return [Reply(texts.timezone_is(chat))]
    choice = match_timezone(request.text)
    if not choice.ok:
        return [Reply(texts.bad_timezone(request.text, choice.suggestions))]
    set_timezone(chat, choice.name, now=request.now)
    return [Reply(texts.timezone_set(chat))]


async def alerts(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    arg = request.text.lower()
    if arg in {"on", "off"}:
        set_alerts(chat, arg == "on", now=request.now)
        return [Reply(texts.alerts_are(chat))]
    return [Reply(texts.alerts_are(chat, hint=True))]


async def show_settings(
    session: AsyncSession, chat: Chat | None, request: ReaderRequest
) -> list[Reply]:
    if chat is None:
        return [Reply(texts.not_registered())]
    return [texts.settings(chat, await followed_sections(session, chat), now=request.now)]


async def stop(session: AsyncSession, chat: Chat | None, request: ReaderRequest) -> list[Reply]:
    if chat is not None:
        await forget_chat(session, chat)
    return [Reply(texts.stopped())]


async def settings_button(
    session: AsyncSession, chat: Chat, choice: SettingsButton, request: ReaderRequest
) -> ButtonAnswer:
    """A button of the section chooser, the /unsubscribe confirmation or the /settings menu."""
    match choice:
        case ChooserDone():
            return ButtonAnswer(
                edit=Reply(
                    texts.followed_summary(
                        await followed_sections(session, chat), chat, now=request.now
                    )
                )
            )
        case ToggleSection(section_id, page):
            state = await toggle(session, chat, section_id, now=request.now)
            if state is None:
                return ButtonAnswer(answer=section_gone())
            every = await _chooser_sections(session)
            if page is None:  # a button from before the chooser had pages
                page = texts.chooser_page_of(every, section_id)
            return ButtonAnswer(
                edit=await chooser(session, chat, page=page, sections=every),
                answer=texts.following(state),
                keyboard_only=True,  # the chooser may sit under the /start greeting: keep it
            )
        case ChooserPage(page):
            every = await _chooser_sections(session)
            return ButtonAnswer(
                edit=await chooser(session, chat, page=page, sections=every),
                answer=texts.chooser_page_answer(page, texts.chooser_pages(len(every))),
                keyboard_only=True,
            )
        case Unsubscribe.CANCEL:
            return ButtonAnswer(edit=Reply(texts.nothing_changed()))
        case Unsubscribe.ALL:
            count = await unsubscribe_all(session, chat)
            return ButtonAnswer(edit=Reply(texts.unsubscribed_all(count)))
        case SettingsChoice.SECTIONS:
            return ButtonAnswer(edit=await chooser(session, chat))
        case SettingsChoice.TIMEZONE:
            return ButtonAnswer(edit=Reply(texts.timezone_is(chat)))
        case SettingsChoice.ALERTS:
            set_alerts(chat, not chat.alerts, now=request.now)
        case SettingsChoice.RESUME:
            resumed = resume_digests(chat, now=request.now)
            return ButtonAnswer(
                edit=texts.settings(chat, await followed_sections(session, chat), now=request.now),
                answer=texts.resumed() if resumed else texts.not_paused(),
            )
        case SettingsChoice.DIGEST:
            if chat.digest_time:
                stop_digests(chat, now=request.now)
            else:
                set_digest_time(chat, parse_hhmm(request.defaults.digest_time), now=request.now)
    return ButtonAnswer(
        edit=texts.settings(chat, await followed_sections(session, chat), now=request.now)
    )


# ---- the reader's language ---------------------------------------------------------------


async def language(session: AsyncSession, chat: Chat, request: ReaderRequest) -> list[Reply]:
    """/language shows the chooser; /language ru (or en, or a Telegram code like ru-RU) sets
    it, and the answer comes in the new language."""
    if not request.args:
        return [texts.language_chooser(chat.language)]
    chosen = i18n.supported(request.text)
    if chosen is None or len(request.args) > 1:
        return [Reply(texts.unknown_language(request.text)), texts.language_chooser(chat.language)]
    set_language(chat, chosen, now=request.now)
    with i18n.use(chosen):
        return [Reply(texts.language_set(chosen))]


async def language_button(
    session: AsyncSession, chat: Chat, choice: LanguageChoice, request: ReaderRequest
) -> ButtonAnswer:
    """A language's button under /language: set it and redraw the chooser in it."""
    if choice.language not in i18n.LANGUAGES:
        return ButtonAnswer(answer=stale_button())
    set_language(chat, choice.language, now=request.now)
    with i18n.use(choice.language):
        return ButtonAnswer(
            edit=texts.language_chooser(chat.language), answer=texts.language_set(chat.language)
        )


# ---- keyword follows and mutes -------------------------------------------------------------


async def _keywords_screen(
    session: AsyncSession, chat: Chat, request: ReaderRequest, notice: str = ""
) -> Reply:
    return texts.keywords_screen(
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
        return [Reply(texts.keyword_refused(added.refusal, cap=request.max_keywords))]
    return [await _keywords_screen(session, chat, request, texts.keyword_added(added))]


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
        return [Reply(texts.unfollow_usage(kind))]
    removed = await remove_phrase(session, chat, kind, request.text)
    said = texts.keyword_removed(removed, kind, request.text)
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
        answer = texts.keyword_alert_answer(rule) if rule is not None else None
    else:
        rule = await remove_rule(session, chat, choice.rule_id)
        answer = texts.keyword_removed_answer(rule) if rule is not None else None
    if rule is None:
        return ButtonAnswer(
            edit=await _keywords_screen(session, chat, request), answer=texts.keyword_gone()
        )
    return ButtonAnswer(edit=await _keywords_screen(session, chat, request), answer=answer)


# ---- forum topics ----------------------------------------------------------------------------


async def topic(
    session: AsyncSession,
    chat: Chat,
    args: Sequence[str],
    *,
    thread_id: int | None,
    now: datetime,
) -> str:
    """/topic in a forum (see digests.readers.topics.topic_request), answered in words."""
    result = await topic_request(session, chat, args, thread_id=thread_id, now=now)
    infos = await list_sections(session) if result.unknown else []
    return texts.topic_answer(result, infos)
