"""Turning domain replies into Telegram messages, and sending or editing them safely."""

from __future__ import annotations

import logging

from telegram import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest

from digests.messages import Button, Reply

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


async def edit(query: CallbackQuery, reply: Reply, *, keyboard_only: bool = False) -> None:
    """Edit the message a button belongs to (only its buttons with `keyboard_only`); an
    unchanged message is not an error."""
    try:
        if keyboard_only:
            await query.edit_message_reply_markup(reply_markup=markup(reply.buttons))
        else:
            await query.edit_message_text(
                reply.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(reply.buttons),
                link_preview_options=NO_PREVIEW,
            )
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise
        log.debug("edit skipped: message not modified")
