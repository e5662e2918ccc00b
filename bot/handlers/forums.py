"""Channels and forum topics on Telegram: the bot's own membership, /topic, topics it
creates, and commands posted in channels.

Commands posted in a channel arrive as `channel_post` updates (the channel as sender_chat, no
`from`); PTB's CommandHandler ignores those unless its filters take CHANNEL_POST, so each
reader command is also registered through `channel_command`. Whatever the bot answers in a
channel is seen by every subscriber, so there the command post is deleted at once and the
bot's replies after CHANNEL_REPLY_SECONDS (long enough to use their buttons): the channel
keeps only its stories, digests and pushes. The deletions run on PTB's JobQueue, which keeps
jobs in memory: replies of a process that stops before then stay.
"""

from __future__ import annotations

import functools
import logging

from telegram import Bot, ChatMemberAdministrator, ChatMemberRestricted, Update
from telegram import Chat as TgChat
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.context import NewsContext
from bot.handlers.common import Handler, ensure_chat, is_group_admin, register
from bot.transport.replies import channel_replies, send
from bot.transport.topics import TelegramTopicMaker
from digests.readers import service as readers_service
from digests.readers import texts as readers_texts
from digests.readers.chats import find_chat
from digests.readers.topics import (
    Membership,
    ensure_topics,
    lose_rights,
    membership,
)
from digests.ui import texts as ui_texts

log = logging.getLogger(__name__)

CHANNEL_REPLY_SECONDS = 300
"""How long the bot's replies to a command posted in a channel stay before they are deleted."""


def channel_command(handler: Handler) -> Handler:
    """Run a reader command posted in a channel; then delete the post at once and the bot's
    replies after CHANNEL_REPLY_SECONDS (see the module's docstring)."""

    @functools.wraps(handler)
    async def wrapped(update: Update, context: NewsContext) -> None:
        token = channel_replies.set([])
        try:
            await handler(update, context)
            replies = channel_replies.get() or []
        finally:
            channel_replies.reset(token)
        if context.job_queue is not None:
            for reply in replies:
                context.job_queue.run_once(
                    _delete_later,
                    CHANNEL_REPLY_SECONDS,
                    data=(reply.chat_id, reply.message_id),
                    name=f"tidy-{reply.chat_id}-{reply.message_id}",
                )
        post = update.channel_post
        if post is not None:
            await _delete(context.bot, post.chat_id, post.message_id)

    return wrapped


async def _delete_later(context: ContextTypes.DEFAULT_TYPE) -> None:
    job = context.job
    if job is not None and isinstance(job.data, tuple):
        chat_id, message_id = job.data
        await _delete(context.bot, int(chat_id), int(message_id))


async def _delete(bot: Bot, chat_id: int, message_id: int) -> None:
    try:
        await bot.delete_message(chat_id, message_id)
    except TelegramError as exc:  # no right to delete, or gone already: it stays
        log.info("channel %s: could not delete message %s: %s", chat_id, message_id, exc)


# ---- topics -----------------------------------------------------------------------------------


def then_topics(handler: Handler) -> Handler:
    """After a command or button that may change a forum's sections, remember whether the chat
    is a forum and create the topics its sections are missing (if the bot may)."""

    @functools.wraps(handler)
    async def wrapped(update: Update, context: NewsContext) -> None:
        await handler(update, context)
        tg_chat = update.effective_chat
        if tg_chat is None or tg_chat.type != TgChat.SUPERGROUP:
            return
        svc = context.bot_data
        async with svc.sessions.begin() as session:
            chat = await find_chat(session, tg_chat.id)
            if chat is None:
                return
            chat.is_forum = bool(tg_chat.is_forum)
            chat_id, forum = chat.id, chat.is_forum
        if forum:
            await ensure_topics(
                svc.sessions, TelegramTopicMaker(context.bot), [chat_id], now=svc.clock()
            )

    return wrapped


async def topic_command(update: Update, context: NewsContext) -> None:
    """/topic: where each section goes in a forum; /topic <section> inside a topic sends the
    section there; /topic off <section> sends it to the General topic."""
    svc, tg_chat, message = context.bot_data, update.effective_chat, update.effective_message
    if tg_chat is None or message is None:
        return
    if not tg_chat.is_forum:
        await send(update, readers_texts.topic_not_forum())  # and nothing is stored
        return
    args = tuple(context.args or ())
    if args and not await is_group_admin(update, context):
        await send(update, ui_texts.not_group_admin())
        return
    thread = message.message_thread_id if message.is_topic_message else None
    async with svc.sessions.begin() as session:
        chat = await ensure_chat(session, svc, tg_chat)
        chat.is_forum = bool(tg_chat.is_forum)
        reply = await readers_service.topic(session, chat, args, thread_id=thread, now=svc.clock())
    await send(update, reply)


# ---- the bot's own membership -----------------------------------------------------------------


async def bot_membership(update: Update, context: NewsContext) -> None:
    """The bot was added to a chat, promoted, demoted or removed (a my_chat_member update).

    A channel that makes the bot an administrator who may post is registered (or
    reactivated); a chat where it may no longer post, or that removed it, is deactivated like
    a blocked reader's, and reactivated when the rights come back. In a forum, whether it may
    manage topics is remembered (topics are created when it may).
    """
    change = update.my_chat_member
    if change is None or change.chat.type == TgChat.PRIVATE:
        return  # a reader blocking or restarting the bot: 403s and /start handle those
    svc, tg_chat, new = context.bot_data, change.chat, change.new_chat_member
    state = membership(
        tg_chat.type,
        new.status,
        can_post=new.can_post_messages if isinstance(new, ChatMemberAdministrator) else None,
        can_send=new.can_send_messages if isinstance(new, ChatMemberRestricted) else None,
    )
    topics = isinstance(new, ChatMemberAdministrator) and bool(new.can_manage_topics)
    now = svc.clock()
    chat_id: int | None = None
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        if state is not Membership.POSTS:
            if chat is not None and chat.active:
                reason = "bot removed" if state is Membership.GONE else "bot may not post"
                await lose_rights(session, chat, reason, now=now)
                log.info("chat %s: %s: deactivated", tg_chat.id, reason)
            return
        if chat is None and tg_chat.type != TgChat.CHANNEL:
            return  # a group starts with /start, as before
        if chat is None or not chat.active:
            chat, _ = await register(session, svc, tg_chat)
            log.info("chat %s: the bot may post: active", tg_chat.id)
        chat.is_forum = bool(tg_chat.is_forum)
        if topics:
            chat.topic_rights = True
        if chat.is_forum and chat.topic_rights:
            chat_id = chat.id
    if chat_id is not None:
        await ensure_topics(svc.sessions, TelegramTopicMaker(context.bot), [chat_id], now=now)
