"""Turning domain replies into Telegram messages, and sending or editing them safely."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.context import NewsContext
from bot.shown import Content
from digests import messages as msg
from digests.db import unavailable
from digests.messages import Button, Reply
from digests.render import visible_text

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def markup(buttons: list[list[Button]]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(b.text, url=b.url)
                if b.url
                else InlineKeyboardButton(b.text, callback_data=b.data)
                for b in row
            ]
            for row in buttons
        ]
    )


async def send(update: Update, reply: Reply | str) -> Message | None:
    """Reply in the chat the update came from."""
    if isinstance(reply, str):
        reply = Reply(reply)
    chat = update.effective_chat
    if chat is None:
        return None
    return await chat.send_message(
        reply.text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup(reply.buttons),
        link_preview_options=NO_PREVIEW,
    )


async def edit(
    context: NewsContext, query: CallbackQuery, reply: Reply, *, keyboard_only: bool = False
) -> None:
    """Edit the message a button belongs to (only its buttons with `keyboard_only`); an
    unchanged message is not an error.

    The query carries the message as it was when pressed; when an earlier press was edited in
    since (a double tap), what that edit made it show counts (see bot/shown.py)."""
    pressed_on = query.message if isinstance(query.message, Message) else None
    shown = context.bot_data.shown
    if pressed_on is not None and _unchanged(
        shown.current(pressed_on), reply, keyboard_only=keyboard_only
    ):
        log.debug("edit skipped: the message already shows this")
        return
    try:
        if keyboard_only:
            result = await query.edit_message_reply_markup(reply_markup=markup(reply.buttons))
        else:
            result = await query.edit_message_text(
                reply.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(reply.buttons),
                link_preview_options=NO_PREVIEW,
            )
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise
        log.debug("edit skipped: message not modified")
        return
    if pressed_on is not None and isinstance(result, Message):
        shown.edited(pressed_on, result)


def _unchanged(current: Content, reply: Reply, *, keyboard_only: bool) -> bool:
    """Would the edit change nothing? Telegram refuses such an edit ("message is not
    modified"), and it costs a request from the chat's budget for nothing."""
    if current.keyboard != markup(reply.buttons):
        return False
    return keyboard_only or current.text == visible_text(reply.text).strip()


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
            answer = msg.BUTTON_FAILED
        except Exception as exc:
            if not unavailable(exc):
                log.exception("button %r in chat %s crashed", query.data, chat_id)
                answer = msg.BUTTON_CRASHED
                raise
            log.warning("button in chat %s: the database is unavailable: %s", chat_id, exc)
            answer = msg.UNAVAILABLE_SHORT
        finally:
            try:
                await query.answer(answer)
            except TelegramError as exc:
                log.warning("could not answer callback in chat %s: %s", chat_id, exc)

    return wrapped
