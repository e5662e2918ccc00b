"""Editors' commands and buttons: /breaking with preview and Send/Cancel, /stats.

Editors are the users in ADMIN_IDS; everyone else is refused. The push itself starts and runs in
digests/newsroom/push.py (`PushRunner`); this module only shows its progress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot, CallbackQuery, Update

from bot.context import NewsContext
from bot.handlers.common import answers_button, edit, editors_only
from bot.transport.replies import edit_report, send
from digests.newsroom import breaking
from digests.newsroom import texts as newsroom_texts
from digests.newsroom.stats import collect_stats
from digests.ui import texts as ui_texts
from digests.ui.buttons import PushChoice, decode
from digests.ui.shapes import Reply

log = logging.getLogger(__name__)


@editors_only
async def breaking_command(update: Update, context: NewsContext) -> None:
    """Store a breaking story and reply with a preview, the audience and Send / Cancel."""
    svc, user, chat = context.bot_data, update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    async with svc.sessions.begin() as session:
        draft = await breaking.draft_breaking(
            session,
            context.args or [],
            admin_id=user.id,
            admin_chat_id=chat.id,
            now=svc.clock(),
            default_section=svc.settings.default_section,
            feeds=svc.settings.feed_urls,
        )
        reply = (
            newsroom_texts.push_preview(draft) if draft else Reply(newsroom_texts.breaking_usage())
        )
        push_id = draft.push.id if draft else None
    message = await send(update, reply)
    if push_id is not None and message is not None:
        async with svc.sessions.begin() as session:
            await breaking.remember_preview(session, push_id, message.message_id)


@editors_only
async def stats_command(update: Update, context: NewsContext) -> None:
    """Chats, subscribers and stories per section, and the last day's deliveries."""
    svc = context.bot_data
    async with svc.sessions.begin() as session:
        stats = await collect_stats(session, now=svc.clock())
    await send(update, newsroom_texts.stats(stats))


@answers_button
async def push_button(update: Update, context: NewsContext, query: CallbackQuery) -> str | None:
    """Send or Cancel under a preview: only one press ever starts a push."""
    svc, user = context.bot_data, update.effective_user
    choice = decode(query.data or "")
    if not isinstance(choice, PushChoice):
        return ui_texts.stale_button()
    if not svc.is_editor(user.id if user else None):
        log.warning("user %s pressed %r without editor rights", user.id if user else None, choice)
        return newsroom_texts.not_allowed()
    async with svc.sessions.begin() as session:
        pressed = await breaking.press(session, choice, now=svc.clock())
    answer = newsroom_texts.pressed_answer(pressed.outcome)
    if answer.edit is not None:
        await edit(context, query, answer.edit)
    if pressed.start:
        svc.pushes.start(choice.push_id)
    return answer.answer


async def resume_pushes(context: NewsContext) -> None:
    """Pick up pushes a restart interrupted or a flood limit delayed; each chat still gets
    the story at most once (runs at start and then every tick)."""
    await context.bot_data.pushes.resume()


def progress_shower(bot: Bot) -> Callable[[breaking.PushProgress], Coroutine[Any, Any, None]]:
    """Show a push's progress by editing the editor's preview message."""

    async def show(progress: breaking.PushProgress) -> None:
        if progress.preview_message_id is None or progress.admin_chat_id is None:
            return
        report = newsroom_texts.push_report(progress)  # with Correct / Withdraw once finished
        await edit_report(
            bot,
            progress.admin_chat_id,
            progress.preview_message_id,
            report,
            what=f"push {progress.push_id} progress",
        )

    return show
