"""Readers' commands and buttons: read the update, call one service in digests/, send the reply."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, Update
from telegram import Chat as TgChat
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from bot.context import NewsContext
from bot.handlers.common import (
    Handler,
    answers_button,
    edit,
    ensure_chat,
    group_admins_only,
    is_group_admin,
    reader_request,
    register,
    speak,
)
from bot.handlers.forums import then_topics
from bot.transport.replies import send
from digests.db import unavailable
from digests.digest import service as digest_service
from digests.models import Chat
from digests.readers import service as readers_service
from digests.readers.chats import find_chat
from digests.stories import service as stories_service
from digests.ui import texts
from digests.ui.buttons import (
    SETTINGS_BUTTONS,
    DigestControl,
    KeywordChoice,
    LanguageChoice,
    PageTurn,
    SearchTurn,
    decode,
)
from digests.ui.shapes import ButtonAnswer, ReaderRequest, Reply

log = logging.getLogger(__name__)

ChatService = Callable[[AsyncSession, Chat, ReaderRequest], Coroutine[Any, Any, list[Reply]]]
MaybeChatService = Callable[
    [AsyncSession, Chat | None, ReaderRequest], Coroutine[Any, Any, list[Reply]]
]


def command(service: MaybeChatService, *, register: bool, changes: bool) -> Handler:
    """A handler for one reader command: check group rights, run the service, send replies.

    `register` makes sure the chat is stored first; `changes` means the command changes the
    chat's settings, which in a group only its administrators may do.
    """

    @functools.wraps(service)
    async def handler(update: Update, context: NewsContext) -> None:
        svc, tg_chat = context.bot_data, update.effective_chat
        if tg_chat is None:
            return
        if changes and not await is_group_admin(update, context):
            await send(update, texts.not_group_admin())
            return
        async with svc.sessions.begin() as session:
            if register:
                chat: Chat | None = await ensure_chat(session, svc, tg_chat)
            else:
                chat = await find_chat(session, tg_chat.id)
            with speak(update, svc, chat):
                replies = await service(session, chat, reader_request(svc, context))
        for reply in replies:
            await send(update, reply)

    return handler


@then_topics
@group_admins_only
async def start(update: Update, context: NewsContext) -> None:
    """Greet, register (or reactivate) the chat and show the section chooser (then a forum's
    topics, see `then_topics`)."""
    svc, tg_chat = context.bot_data, update.effective_chat
    if tg_chat is None:
        return
    async with svc.sessions.begin() as session:
        chat, created = await register(session, svc, tg_chat)
        with speak(update, svc, chat):
            replies = await readers_service.start(
                session, chat, publisher=svc.settings.publisher_name, new=created
            )
    for reply in replies:
        await send(update, reply)


async def help_command(update: Update, context: NewsContext) -> None:
    """Say what each command does."""
    svc, user, tg_chat = context.bot_data, update.effective_user, update.effective_chat
    admin = svc.is_editor(user.id if user else None)
    if tg_chat is None:
        return
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        with speak(update, svc, chat):
            text = texts.help_text(admin=admin)
    await send(update, text)


def _needs_chat(service: ChatService) -> MaybeChatService:
    @functools.wraps(service)
    async def wrapped(
        session: AsyncSession, chat: Chat | None, request: ReaderRequest
    ) -> list[Reply]:
        assert chat is not None
        return await service(session, chat, request)

    return wrapped


sections_command = command(readers_service.sections, register=False, changes=False)
subscribe_command = then_topics(
    command(_needs_chat(readers_service.subscribe_named), register=True, changes=True)
)
unsubscribe_command = command(
    _needs_chat(readers_service.unsubscribe_named), register=True, changes=True
)
latest_command = command(stories_service.latest, register=False, changes=False)
digest_command = command(_needs_chat(digest_service.digest), register=True, changes=True)
timezone_command = command(_needs_chat(readers_service.timezone), register=True, changes=True)
alerts_command = command(_needs_chat(readers_service.alerts), register=True, changes=True)
settings_command = command(readers_service.show_settings, register=False, changes=False)
stop_command = command(readers_service.stop, register=False, changes=True)


async def search_command(update: Update, context: NewsContext) -> None:
    """/search words: the best matching story, paged like /latest."""
    svc, tg_chat = context.bot_data, update.effective_chat
    if tg_chat is None:
        return
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        with speak(update, svc, chat):
            replies = await stories_service.search(
                session, tg_chat.id, chat, reader_request(svc, context)
            )
    for reply in replies:
        await send(update, reply)


async def unknown_command(update: Update, context: NewsContext) -> None:
    """Point to /help for commands we don't know (in groups only when addressed to us)."""
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None or not message.text:
        return
    if chat.type != TgChat.PRIVATE:
        _, at, addressee = message.text.split()[0].partition("@")
        if not at or addressee.lower() != (context.bot.username or "").lower():
            return  # a command for another bot, or for every bot of the group
    await _hint(update, context)


async def plain_text(update: Update, context: NewsContext) -> None:
    """Answer free text in private chats with a hint; stay quiet in groups."""
    chat = update.effective_chat
    if chat is not None and chat.type == TgChat.PRIVATE:
        await _hint(update, context)


async def _hint(update: Update, context: NewsContext) -> None:
    """Point to /help, in the chat's language."""
    svc, tg_chat = context.bot_data, update.effective_chat
    assert tg_chat is not None
    async with svc.sessions.begin() as session:
        with speak(update, svc, await find_chat(session, tg_chat.id)):
            hint = texts.hint()
    await send(update, hint)


# ---- buttons: each routed here by its prefix (digests/ui/buttons.py) ---------------------------


@answers_button
async def page_button(update: Update, context: NewsContext, query: CallbackQuery) -> str | None:
    """◀ Previous / Next ▶ under a /latest story: edit it in place to the next story."""
    svc, tg_chat, turn = context.bot_data, update.effective_chat, decode(query.data or "")
    if tg_chat is None or not isinstance(turn, PageTurn):
        return texts.stale_button()
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        with speak(update, svc, chat):
            result = await stories_service.turn_page_button(
                session, chat, turn, reader_request(svc, context)
            )
    if result.edit is not None:
        await edit(context, query, result.edit)
    return result.answer


@answers_button
async def search_button(update: Update, context: NewsContext, query: CallbackQuery) -> str | None:
    """◀ Previous / Next ▶ under a /search result: edit it in place to the next result."""
    svc, tg_chat, turn = context.bot_data, update.effective_chat, decode(query.data or "")
    if tg_chat is None or not isinstance(turn, SearchTurn):
        return texts.stale_button()
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        with speak(update, svc, chat):
            result = await stories_service.search_button(
                session, tg_chat.id, chat, turn, reader_request(svc, context)
            )
    if result.edit is not None:
        await edit(context, query, result.edit)
    return result.answer


ChatButtonService = Callable[
    [AsyncSession, Chat, Any, ReaderRequest], Coroutine[Any, Any, ButtonAnswer]
]


def chat_button(
    kinds: type | tuple[type, ...], service: ChatButtonService, *, register: bool
) -> Callable[[Update, NewsContext], Coroutine[Any, Any, None]]:
    """A handler for buttons that change the chat's settings (their data decodes to one of
    `kinds`): in a group only its administrators may press them; the service's edit redraws
    the message and its answer is the press's short answer. `register` stores the chat first
    when it is not stored; otherwise a forgotten chat's button no longer works."""

    @answers_button
    async def handler(update: Update, context: NewsContext, query: CallbackQuery) -> str | None:
        svc, tg_chat, choice = context.bot_data, update.effective_chat, decode(query.data or "")
        if tg_chat is None or not isinstance(choice, kinds):
            return texts.stale_button()
        if not await is_group_admin(update, context):
            return texts.not_group_admin_short()
        async with svc.sessions.begin() as session:
            if register:
                chat: Chat | None = await ensure_chat(session, svc, tg_chat)
            else:
                chat = await find_chat(session, tg_chat.id)
            if chat is None:  # forgotten with /stop since the message was shown
                return texts.stale_button()
            with speak(update, svc, chat):
                result = await service(session, chat, choice, reader_request(svc, context))
        if result.edit is not None:
            await edit(context, query, result.edit, keyboard_only=result.keyboard_only)
        return result.answer

    return handler


# The section chooser, /unsubscribe's confirmation and the /settings menu (a forum's sections
# get their topics as it follows them).
settings_button = then_topics(
    chat_button(SETTINGS_BUTTONS, readers_service.settings_button, register=True)
)


@answers_button
async def digest_button(update: Update, context: NewsContext, query: CallbackQuery) -> str | None:
    """⏸ Pause for a week, Sections and 🛑 Stop digests under a digest: they act on the chat
    the press came from (never on an id in the data)."""
    svc, tg_chat, choice = context.bot_data, update.effective_chat, decode(query.data or "")
    if tg_chat is None or not isinstance(choice, DigestControl):
        return texts.stale_button()
    if not await is_group_admin(update, context):
        return texts.not_group_admin_short()
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        if chat is None:  # forgotten with /stop since the digest came
            return texts.stale_button()
        with speak(update, svc, chat):
            result = await digest_service.digest_button(
                session, chat, choice, reader_request(svc, context)
            )
    if result.send is not None:
        await send(update, result.send)
    return result.answer


@answers_button
async def stale_button(update: Update, context: NewsContext, query: CallbackQuery) -> str:
    """Any other button: an old bot's, or data someone made up."""
    return texts.stale_button()


async def on_error(update: object, context: NewsContext) -> None:
    """Log every unhandled error with the chat it happened in."""
    chat_id = (
        update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
    )
    error = context.error
    if isinstance(error, RetryAfter) or (
        isinstance(error, NetworkError) and not isinstance(error, BadRequest)
    ):
        # The network or Telegram's flood control, not a bug: one line, no traceback. A reply
        # is never retried blindly: its request may have arrived (see bot/transport/sender.py).
        log.warning("reply in chat %s not confirmed: %s", chat_id, error)
        return
    if error is not None and unavailable(error):
        # Not a bug: the reader hears so, and the next message works once it is back.
        log.warning("update in chat %s: the database is unavailable: %s", chat_id, error)
        if isinstance(update, Update) and update.effective_message is not None:
            try:
                await send(update, texts.unavailable())
            except TelegramError as exc:
                log.warning("could not tell chat %s: %s", chat_id, exc)
        return
    log.error("error handling update in chat %s", chat_id, exc_info=error)


# ---- the chat's language -------------------------------------------------------------------

language_command = command(_needs_chat(readers_service.language), register=True, changes=True)


# English / Русский under /language: set the chat's language and redraw the chooser.
language_button = chat_button(LanguageChoice, readers_service.language_button, register=True)


# ---- keyword follows and mutes ---------------------------------------------------------------

follow_command = command(_needs_chat(readers_service.follow), register=True, changes=True)
mute_command = command(_needs_chat(readers_service.mute), register=True, changes=True)
unfollow_command = command(_needs_chat(readers_service.unfollow), register=True, changes=True)
unmute_command = command(_needs_chat(readers_service.unmute), register=True, changes=True)
keywords_command = command(_needs_chat(readers_service.keywords), register=True, changes=False)


# 🔔/🔕 and ✖ under the keyword list: they act on the rule of the chat the press came from
# (a rule id of another chat changes nothing).
keyword_button = chat_button(KeywordChoice, readers_service.keyword_button, register=False)
