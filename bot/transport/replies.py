"""Turning domain replies into Telegram messages, and sending or editing them safely.

A reply with a photo goes out as a photo with the reply's text as its caption; when Telegram
refuses the image (see `image_refused`), the same reply goes out as text. Paging edits a
message in place: editMessageMedia when the next page has a photo (a text message may become
a photo), editMessageText between two text pages. Telegram never turns a photo back into a
text message, so a photo page followed by a page without a photo (or whose photo is refused)
is sent as a new text message, and the photo message is deleted (see `edit`).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from telegram import (
    Bot,
    CallbackQuery,
    InputMediaPhoto,
    LinkPreviewOptions,
    Message,
    Update,
)
from telegram import Chat as TgChat
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError

from bot.transport.markup import markup
from bot.transport.shown import Content, ShownMessages
from digests.ui.render import visible_text
from digests.ui.shapes import Reply

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)

_IMAGE_REFUSALS = (
    "wrong file identifier",  # "wrong file identifier/HTTP URL specified"
    "wrong remote file identifier",
    "failed to get http url content",
    "wrong type of the web page content",
    "image_process_failed",
    "photo_invalid_dimensions",
    "photo_invalid",
    "photo_save_file_invalid",
    "photo_ext_invalid",
    "photo_content_type_invalid",
    "photo_content_url_empty",
    "webpage_curl_failed",
    "webpage_media_empty",
    "media_empty",
    "file is too big",
)


def image_refused(exc: BadRequest) -> bool:
    """Whether a 400 answering a photo (sendPhoto, editMessageMedia) means Telegram could not
    fetch or use its image. Such a request did nothing, so sending the message as text
    instead is safe; any other 400 (a chat that is gone, a caption too long, a message not
    modified) is not about the image and is handled as it always is."""
    reason = exc.message.lower()
    return any(marker in reason for marker in _IMAGE_REFUSALS)


async def send(update: Update, reply: Reply | str) -> Message | None:
    """Reply in the chat the update came from: as a photo when the reply has one and Telegram
    takes its image, else as text."""
    if isinstance(reply, str):
        reply = Reply(reply)
    chat = update.effective_chat
    if chat is None:
        return None
    sent = await _send(update, chat, reply)
    if (replies := channel_replies.get()) is not None:
        replies.append(sent)
    return sent


async def _send(update: Update, chat: TgChat, reply: Reply) -> Message:
    # a command sent inside a forum topic is answered in that topic
    asked = update.effective_message
    thread = asked.message_thread_id if asked is not None and asked.is_topic_message else None
    if reply.photo is not None:
        try:
            return await chat.send_photo(
                reply.photo,
                caption=reply.text,
                parse_mode=ParseMode.HTML,
                reply_markup=markup(reply.buttons),
                message_thread_id=thread,
            )
        except BadRequest as exc:
            if not image_refused(exc):
                raise
            log.info("chat %s: image %s refused (%s): sent as text", chat.id, reply.photo, exc)
    return await chat.send_message(
        reply.text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup(reply.buttons),
        link_preview_options=NO_PREVIEW,
        message_thread_id=thread,
    )


channel_replies: ContextVar[list[Message] | None] = ContextVar("channel_replies", default=None)
"""Set while a command posted in a channel runs: the replies sent meanwhile (bot/handlers/forums.py
deletes them after a while)."""


async def edit(
    bot: Bot,
    shown: ShownMessages,
    query: CallbackQuery,
    reply: Reply,
    *,
    keyboard_only: bool = False,
) -> None:
    """Edit the message a button belongs to (only its buttons with `keyboard_only`); an
    unchanged message is not an error.

    The query carries the message as it was when pressed; when an earlier press was edited in
    since (a double tap), what that edit made it show counts (see bot/transport/shown.py).

    A reply with a photo replaces the message's media and caption (editMessageMedia; a text
    message becomes a photo). If Telegram refuses the image, a text message gets the reply as
    text instead. A photo message cannot become text: when the reply has no photo, or its
    photo is refused, the reply is sent as a new text message and the photo message is
    deleted (it stays, without being edited, if Telegram no longer lets the bot delete it),
    so the reader keeps one page of stories with working buttons."""
    pressed_on = query.message if isinstance(query.message, Message) else None
    if pressed_on is not None and shown.is_replaced(pressed_on):
        log.debug("edit skipped: a newer message replaced this photo page")
        return
    current = shown.current(pressed_on) if pressed_on is not None else None
    if current is not None and _unchanged(current, reply, keyboard_only=keyboard_only):
        log.debug("edit skipped: the message already shows this")
        return
    on_photo = current.is_photo if current is not None else False
    result: Message | bool | None
    try:
        if keyboard_only:
            result = await query.edit_message_reply_markup(reply_markup=markup(reply.buttons))
        elif reply.photo is not None:
            result = await _edit_media(query, reply, on_photo=on_photo)
            if result is None and not on_photo:  # refused image: the text page instead
                result = await _edit_text(query, reply)
        elif on_photo:
            result = None
        else:
            result = await _edit_text(query, reply)
    except BadRequest as exc:
        if "not modified" in exc.message.lower():
            log.debug("edit skipped: message not modified")
            return
        if pressed_on is not None and "message to edit not found" in exc.message.lower():
            log.debug("edit skipped: the message was replaced by a newer page")
            return
        if not (on_photo and exc.message.lower().startswith("there is no text")):
            raise
        result = None  # what we took for text turned out to be a photo
    if result is None and pressed_on is not None:
        shown.replaced(pressed_on)  # first: a second tap on it must not send the page again
        await _replace_photo(bot, pressed_on, reply)
        return
    if pressed_on is not None and isinstance(result, Message):
        shown.edited(pressed_on, result, photo=reply.photo if not keyboard_only else None)


async def _edit_text(query: CallbackQuery, reply: Reply) -> Message | bool:
    return await query.edit_message_text(
        reply.text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup(reply.buttons),
        link_preview_options=NO_PREVIEW,
    )


async def _edit_media(
    query: CallbackQuery, reply: Reply, *, on_photo: bool
) -> Message | bool | None:
    """editMessageMedia to the reply's photo; None when Telegram refuses the image."""
    assert reply.photo is not None
    try:
        return await query.edit_message_media(
            InputMediaPhoto(reply.photo, caption=reply.text, parse_mode=ParseMode.HTML),
            reply_markup=markup(reply.buttons),
        )
    except BadRequest as exc:
        if not image_refused(exc):
            raise
        log.info("image %s refused on an edit (%s): the page goes out as text", reply.photo, exc)
        return None


async def _replace_photo(bot: Bot, photo_message: Message, reply: Reply) -> None:
    """A photo page turned to a page shown as text: send it new, then delete the photo."""
    await bot.send_message(
        photo_message.chat_id,
        reply.text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup(reply.buttons),
        link_preview_options=NO_PREVIEW,
    )
    try:
        await bot.delete_message(photo_message.chat_id, photo_message.message_id)
    except BadRequest as exc:  # older than 48 hours, or gone already
        log.info(
            "chat %s: could not delete the photo page %s: %s",
            photo_message.chat_id,
            photo_message.message_id,
            exc,
        )


def _unchanged(current: Content, reply: Reply, *, keyboard_only: bool) -> bool:
    """Would the edit change nothing? Telegram refuses such an edit ("message is not
    modified"), and it costs a request from the chat's budget for nothing."""
    if current.keyboard != markup(reply.buttons):
        return False
    if keyboard_only:
        return True
    return current.photo == reply.photo and current.text == visible_text(reply.text).strip()


async def edit_report(bot: Bot, chat_id: int, message_id: int, reply: Reply, *, what: str) -> None:
    """Edit a progress report the bot keeps in an editor's chat (a push's, a correction's):
    an unchanged report is not an error, and a failed edit is logged, never raised, so the
    work it reports on goes on."""
    try:
        await bot.edit_message_text(
            reply.text,
            chat_id=chat_id,
            message_id=message_id,
            parse_mode=ParseMode.HTML,
            reply_markup=markup(reply.buttons),
            link_preview_options=NO_PREVIEW,
        )
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.warning("could not update %s: %s", what, exc.message)
    except TelegramError as exc:
        log.warning("could not update %s: %s", what, exc)
