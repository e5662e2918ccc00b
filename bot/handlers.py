"""Telegram handlers: read the update, call one service in digests/, render the reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Chat as TgChat
from telegram import Update
from telegram.constants import ChatMemberStatus
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.ext import ContextTypes

from bot.context import Services, services
from bot.replies import edit, send
from digests import conversation
from digests import messages as msg
from digests.models import Chat, ChatKind
from digests.readers import find_chat, register_chat

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE


def _kind(chat: TgChat) -> ChatKind:
    try:
        return ChatKind(chat.type)
    except ValueError:
        return ChatKind.PRIVATE


def _title(chat: TgChat) -> str | None:
    return chat.title or chat.full_name or chat.username


async def _is_group_admin(update: Update, context: Context) -> bool:
    """In a group only administrators may change settings; in a private chat the reader may."""
    chat, user, message = update.effective_chat, update.effective_user, update.effective_message
    if chat is None or chat.type == TgChat.PRIVATE:
        return True
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id == chat.id  # an anonymous administrator
    if user is None:
        return False
    try:
        member = await context.bot.get_chat_member(chat.id, user.id)
    except TelegramError as exc:
        log.warning("could not check admin rights in chat %s: %s", chat.id, exc)
        return False
    return member.status in {ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR}


async def _ensure_chat(session: AsyncSession, svc: Services, tg_chat: TgChat) -> Chat:
    chat = await find_chat(session, tg_chat.id)
    if chat is None:
        chat, _ = await register_chat(
            session,
            telegram_id=tg_chat.id,
            kind=_kind(tg_chat),
            title=_title(tg_chat),
            now=svc.clock(),
            defaults=svc.defaults,
        )
    return chat


def admin_only(
    handler: Callable[[Update, Context], Coroutine[Any, Any, None]],
) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """Wrap a command that changes a group's settings: only its administrators may."""

    async def wrapped(update: Update, context: Context) -> None:
        if not await _is_group_admin(update, context):
            await send(update, msg.NOT_GROUP_ADMIN)
            return
        await handler(update, context)

    wrapped.__doc__ = handler.__doc__
    wrapped.__name__ = handler.__name__
    return wrapped


def _ask(svc: Services, context: Context) -> conversation.Ask:
    return conversation.Ask(
        now=svc.clock(),
        args=tuple(context.args or ()),
        defaults=svc.defaults,
        per_section=svc.settings.digest_stories_per_section,
    )


ChatService = Callable[[AsyncSession, Chat, conversation.Ask], Coroutine[Any, Any, list[msg.Reply]]]
MaybeChatService = Callable[
    [AsyncSession, Chat | None, conversation.Ask], Coroutine[Any, Any, list[msg.Reply]]
]


def command(
    service: MaybeChatService, *, register: bool, changes: bool
) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """A handler for one reader command: check group rights, run the service, send replies.

    `register` makes sure the chat is stored first; `changes` means the command changes the
    chat's settings, which in a group only its administrators may do.
    """

    async def handler(update: Update, context: Context) -> None:
        svc, tg_chat = services(context), update.effective_chat
        if tg_chat is None:
            return
        if changes and not await _is_group_admin(update, context):
            await send(update, msg.NOT_GROUP_ADMIN)
            return
        async with svc.sessions.begin() as session:
            if register:
                chat: Chat | None = await _ensure_chat(session, svc, tg_chat)
            else:
                chat = await find_chat(session, tg_chat.id)
            replies = await service(session, chat, _ask(svc, context))
        for reply in replies:
            await send(update, reply)

    handler.__doc__ = service.__doc__
    handler.__name__ = service.__name__
    return handler


@admin_only
async def start(update: Update, context: Context) -> None:
    """Greet, register (or reactivate) the chat and show the section chooser."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    async with svc.sessions.begin() as session:
        chat, created = await register_chat(
            session,
            telegram_id=tg_chat.id,
            kind=_kind(tg_chat),
            title=_title(tg_chat),
            now=svc.clock(),
            defaults=svc.defaults,
        )
        replies = await conversation.start(
            session, chat, publisher=svc.settings.publisher_name, new=created
        )
    for reply in replies:
        await send(update, reply)


async def help_command(update: Update, context: Context) -> None:
    """Say what each command does."""
    user = update.effective_user
    await send(update, msg.help_text(admin=services(context).is_admin(user.id if user else None)))


def _needs_chat(service: ChatService) -> MaybeChatService:
    async def wrapped(
        session: AsyncSession, chat: Chat | None, ask: conversation.Ask
    ) -> list[msg.Reply]:
        assert chat is not None
        return await service(session, chat, ask)

    wrapped.__doc__ = service.__doc__
    wrapped.__name__ = service.__name__
    return wrapped


sections_command = command(conversation.sections, register=False, changes=False)
subscribe_command = command(_needs_chat(conversation.subscribe_named), register=True, changes=True)
unsubscribe_command = command(
    _needs_chat(conversation.unsubscribe_named), register=True, changes=True
)
latest_command = command(conversation.latest, register=False, changes=False)
digest_command = command(_needs_chat(conversation.digest), register=True, changes=True)
timezone_command = command(_needs_chat(conversation.timezone), register=True, changes=True)
alerts_command = command(_needs_chat(conversation.alerts), register=True, changes=True)
settings_command = command(conversation.show_settings, register=False, changes=False)
stop_command = command(conversation.stop, register=False, changes=True)


async def unknown_command(update: Update, context: Context) -> None:
    """Point to /help for commands we don't know (in groups only when addressed to us)."""
    chat, message = update.effective_chat, update.effective_message
    if chat is None or message is None or not message.text:
        return
    if chat.type != TgChat.PRIVATE:
        command = message.text.split()[0]
        if f"@{context.bot.username}".lower() not in command.lower():
            return
    await send(update, msg.HINT)


async def plain_text(update: Update, context: Context) -> None:
    """Answer free text in private chats with a hint; stay quiet in groups."""
    chat = update.effective_chat
    if chat is not None and chat.type == TgChat.PRIVATE:
        await send(update, msg.HINT)


# ---- buttons ---------------------------------------------------------------------------


async def on_button(update: Update, context: Context) -> None:
    """Handle every inline button; each press is answered exactly once, whatever happens."""
    query = update.callback_query
    if query is None:
        return
    answer: str | None = None
    try:
        answer = await _dispatch_button(update, context, query.data or "")
    except TelegramError:
        log.exception("button %r in chat %s failed", query.data, _chat_id(update))
        answer = "Sorry, that didn't work. Please try again."
    except Exception:
        log.exception("button %r in chat %s crashed", query.data, _chat_id(update))
        answer = "Sorry, something went wrong."
        raise
    finally:
        try:
            await query.answer(answer)
        except TelegramError as exc:
            log.warning("could not answer callback in chat %s: %s", _chat_id(update), exc)


def _chat_id(update: Update) -> int | None:
    return update.effective_chat.id if update.effective_chat else None


ButtonService = Callable[
    [AsyncSession, Chat, str, conversation.Ask], Coroutine[Any, Any, conversation.ButtonAnswer]
]
_SETTINGS_BUTTONS: dict[str, ButtonService] = {
    "S:": conversation.chooser_button,
    "U:": conversation.unsubscribe_button,
    "C:": conversation.settings_button,
}


async def _dispatch_button(update: Update, context: Context, data: str) -> str | None:
    svc, query, tg_chat = services(context), update.callback_query, update.effective_chat
    assert query is not None
    if tg_chat is None:
        return conversation.STALE_BUTTON
    ask = _ask(svc, context)
    if data.startswith("L:"):
        async with svc.sessions.begin() as session:
            chat = await find_chat(session, tg_chat.id)
            result = await conversation.page_button(session, chat, data, ask)
    elif (service := _SETTINGS_BUTTONS.get(data[:2])) is not None:
        if not await _is_group_admin(update, context):
            return "Only the group's administrators can change its settings."
        async with svc.sessions.begin() as session:
            chat = await _ensure_chat(session, svc, tg_chat)
            result = await service(session, chat, data, ask)
    else:
        extra = svc.extras.get("button:" + data.split(":", 1)[0])
        if extra is None:
            return conversation.STALE_BUTTON
        handler: Callable[[Update, Context, str], Awaitable[str | None]] = extra  # type: ignore[assignment]
        return await handler(update, context, data)
    if result.edit is not None:
        await edit(query, result.edit, keyboard_only=result.keyboard_only)
    return result.answer


async def on_error(update: object, context: Context) -> None:
    """Log every unhandled error with the chat it happened in."""
    chat_id = (
        update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
    )
    error = context.error
    if isinstance(error, RetryAfter) or (
        isinstance(error, NetworkError) and not isinstance(error, BadRequest)
    ):
        # The network or Telegram's flood control, not a bug: one line, no traceback. A reply
        # is never retried blindly: its request may have arrived (see bot/sender.py).
        log.warning("reply in chat %s not confirmed: %s", chat_id, error)
        return
    log.error("error handling update in chat %s", chat_id, exc_info=error)
