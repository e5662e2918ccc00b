"""What every handler shares: the chat it came from, who may change it, the language to
answer in, and button presses answered exactly once.

Handler modules import these public names; nothing here knows a command of its own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import CallbackQuery, Update
from telegram import Chat as TgChat
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot.context import NewsContext, Services
from bot.transport import replies
from bot.transport.replies import send
from digests import i18n
from digests.db import unavailable
from digests.models import Chat, ChatKind
from digests.newsroom import texts as newsroom_texts
from digests.readers.chats import find_chat, follow_telegram_language, register_chat
from digests.ui import texts as ui_texts
from digests.ui.shapes import ReaderRequest, Reply

log = logging.getLogger(__name__)

Handler = Callable[[Update, NewsContext], Coroutine[Any, Any, None]]


def _kind(chat: TgChat) -> ChatKind:
    try:
        return ChatKind(chat.type)
    except ValueError:
        return ChatKind.PRIVATE


def _title(chat: TgChat) -> str | None:
    return chat.title or chat.full_name or chat.username


async def is_group_admin(update: Update, context: NewsContext) -> bool:
    """In a group or channel only administrators may change settings; in a private chat the
    reader may."""
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    if chat is None or chat.type == TgChat.PRIVATE:
        return True
    if update.callback_query is None and message is not None and message.sender_chat is not None:
        # Written on behalf of the chat itself: an anonymous administrator, or a channel's
        # post. A button press is judged by who pressed it: the message it sits on is the
        # bot's, and in a channel that one names the channel as its sender too.
        return message.sender_chat.id == chat.id
    if user is None:
        return False
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except TelegramError as exc:
        log.warning("could not check admin rights in chat %s: %s", chat.id, exc)
        return False
    return member.status in {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR}


async def register(session: AsyncSession, svc: Services, tg_chat: TgChat) -> tuple[Chat, bool]:
    """Store the chat, or reactivate it; True when it is new (then speaking the language the
    updates are handled in: the first contact's Telegram language)."""
    return await register_chat(
        session,
        telegram_id=tg_chat.id,
        kind=_kind(tg_chat),
        title=_title(tg_chat),
        now=svc.clock(),
        defaults=svc.defaults,
        language=i18n.current(),
    )


def speak(update: Update, svc: Services, chat: Chat | None) -> AbstractContextManager[str]:
    """Render in the chat's language (a private chat not set with /language follows its
    reader's Telegram app first); without a stored chat, in the sender's language."""
    if chat is None:
        return i18n.use(i18n.current())
    user = update.effective_user
    if user is not None:
        follow_telegram_language(chat, user.language_code, now=svc.clock())
    return i18n.use(chat.language)


async def ensure_chat(session: AsyncSession, svc: Services, tg_chat: TgChat) -> Chat:
    """The stored chat, registered first when it is not stored yet."""
    chat = await find_chat(session, tg_chat.id)
    if chat is None:
        chat, _ = await register(session, svc, tg_chat)
    return chat


def group_admins_only(handler: Handler) -> Handler:
    """Wrap a command that changes a group's settings: only its administrators may (in a
    private chat, the reader may)."""

    @functools.wraps(handler)
    async def wrapped(update: Update, context: NewsContext) -> None:
        if not await is_group_admin(update, context):
            await send(update, ui_texts.not_group_admin())
            return
        await handler(update, context)

    return wrapped


def reader_request(svc: Services, context: NewsContext) -> ReaderRequest:
    return ReaderRequest(
        now=svc.clock(),
        args=tuple(context.args or ()),
        defaults=svc.defaults,
        per_section=svc.settings.digest_stories_per_section,
        max_keywords=svc.settings.max_keywords_per_chat,
    )


def editors_only(handler: Handler) -> Handler:
    """Refuse anyone not in ADMIN_IDS, and log the attempt with their user id."""

    @functools.wraps(handler)
    async def wrapped(update: Update, context: NewsContext) -> None:
        user = update.effective_user
        if not context.bot_data.is_editor(user.id if user else None):
            log.warning(
                "user %s tried editor command %r",
                user.id if user else None,
                (update.effective_message.text or "")[:40] if update.effective_message else "",
            )
            await send(update, newsroom_texts.not_editor())
            return
        await handler(update, context)

    return wrapped


ButtonHandler = Callable[[Update, NewsContext, CallbackQuery], Coroutine[Any, Any, str | None]]


def answers_button(
    handler: ButtonHandler,
) -> Callable[[Update, NewsContext], Coroutine[Any, Any, None]]:
    """Wrap a button handler so that each press is answered exactly once, whatever happens:
    with the short text the handler returns, or a short apology when it fails."""

    @functools.wraps(handler)
    async def wrapped(update: Update, context: NewsContext) -> None:
        query = update.callback_query
        if query is None:
            return
        chat_id = update.effective_chat.id if update.effective_chat else None
        answer: str | None = None
        try:
            answer = await handler(update, context, query)
        except TelegramError:
            log.exception("button %r in chat %s failed", query.data, chat_id)
            answer = ui_texts.button_failed()
        except Exception as exc:
            if not unavailable(exc):
                log.exception("button %r in chat %s crashed", query.data, chat_id)
                answer = ui_texts.button_crashed()
                raise
            log.warning("button in chat %s: the database is unavailable: %s", chat_id, exc)
            answer = ui_texts.unavailable_short()
        finally:
            try:
                await query.answer(answer)
            except TelegramError as exc:
                log.warning("could not answer callback in chat %s: %s", chat_id, exc)

    return wrapped


async def edit(
    context: NewsContext, query: CallbackQuery, reply: Reply, *, keyboard_only: bool = False
) -> None:
    """Edit the message a pressed button belongs to (bot/transport/replies.py `edit`), judged
    by what the bot's own edits made it show."""
    await replies.edit(
        context.bot, context.bot_data.shown, query, reply, keyboard_only=keyboard_only
    )
