"""Editors' corrections and withdrawals of a sent push, on Telegram.

The finished push report carries ✏️ Correct and 🗑 Withdraw. Correct answers with how to
send `/correct <push> [title, text]` and a `Note:` line; /correct replies to that message
with a preview and "Edit N messages" / Cancel, whose button names the exact correction (a
digest of it), read back from the /correct message the preview replies to: a press after
that message was edited or deleted applies nothing. Withdraw asks "Delete N messages?".
The confirmation message then shows the action's progress and final counts. The work itself
runs in digests/newsroom/corrections.py (`ActionRunner`); bot/transport/edits.py
`TelegramEditor` is its Editor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot, CallbackQuery, Message, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import (
    TelegramError,
)

from bot.context import NewsContext
from bot.handlers.common import answers_button, edit, editors_only
from bot.transport.markup import markup
from bot.transport.replies import NO_PREVIEW, edit_report, send
from digests.models import BreakingPush, PushAction, PushActionKind, PushOrigin
from digests.newsroom import corrections
from digests.newsroom import texts as newsroom_texts
from digests.newsroom.actions import ActionProgress, set_report_message
from digests.newsroom.corrections import Refusal
from digests.ui import texts as ui_texts
from digests.ui.buttons import ActionChoice, ActionStep, decode
from digests.ui.render import escape
from digests.ui.shapes import Reply

log = logging.getLogger(__name__)

# ---- the editor's side ------------------------------------------------------------------------


@editors_only
async def correct_command(update: Update, context: NewsContext) -> None:
    """/correct <push> [title, text] Note: ... — preview a correction, with Edit / Cancel."""
    svc, message = context.bot_data, update.effective_message
    if message is None or message.text is None:
        return
    correction = corrections.parse_correction(message.text)
    if correction is None:
        await send(update, newsroom_texts.correct_usage())
        return
    refused = corrections.note_refusal(PushActionKind.CORRECT, correction.note)
    if refused is not None:
        await send(update, escape(newsroom_texts.refusal(refused)))
        return
    async with svc.sessions() as session:
        push = await corrections.actionable_push(session, correction.push_id)
        if isinstance(push, Refusal):
            await send(update, escape(newsroom_texts.refusal(push)))
            return
        count = await corrections.messages_to_act_on(session, push.id)
        reply = newsroom_texts.correction_preview(
            correction, push.article, count=count, digest=correction.digest
        )
    await message.chat.send_message(
        reply.text,
        parse_mode=ParseMode.HTML,
        reply_markup=markup(reply.buttons),
        link_preview_options=NO_PREVIEW,
        reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True),
    )


@answers_button
async def action_button(update: Update, context: NewsContext, query: CallbackQuery) -> str | None:
    """Correct / Withdraw on a push report, and their confirmations."""
    svc, user, chat = context.bot_data, update.effective_user, update.effective_chat
    choice = decode(query.data or "")
    if not isinstance(choice, ActionChoice) or chat is None:
        return ui_texts.stale_button()
    if not svc.is_editor(user.id if user else None):
        log.warning("user %s pressed %r without editor rights", user.id if user else None, choice)
        return newsroom_texts.not_allowed()
    pressed_on = query.message if isinstance(query.message, Message) else None
    match choice.step:
        case ActionStep.CORRECT | ActionStep.WITHDRAW:
            return await _offer(update, context, choice)
        case ActionStep.CORRECT_NO:
            await edit(context, query, Reply(newsroom_texts.correction_cancelled()))
            return None
        case ActionStep.WITHDRAW_NO:
            await edit(context, query, Reply(newsroom_texts.withdrawal_cancelled()))
            return None
    if pressed_on is None:
        return ui_texts.stale_button()
    async with svc.sessions.begin() as session:
        if await corrections.action_shown_in(session, chat.id, pressed_on.message_id):
            return newsroom_texts.push_already_decided()  # a double press: it is under way already
        if choice.step is ActionStep.CORRECT_YES:
            replied = pressed_on.reply_to_message
            correction = corrections.parse_correction(replied.text or "") if replied else None
            if correction is None or (correction.push_id, correction.digest) != (
                choice.push_id,
                choice.digest,
            ):
                return newsroom_texts.correction_changed()
            action = await corrections.correct_story(
                session,
                correction,
                created_by=user.id if user else None,
                admin_chat_id=chat.id,
                now=svc.clock(),
            )
        else:
            action = await corrections.request_action(
                session,
                choice.push_id,
                PushActionKind.WITHDRAW,
                note=None,
                origin=PushOrigin.TELEGRAM,
                created_by=user.id if user else None,
                admin_chat_id=chat.id,
                now=svc.clock(),
            )
        report: tuple[int | None, int | None] = (None, None)
        if isinstance(action, PushAction):
            await set_report_message(session, action.id, pressed_on.message_id)
            push = await session.get(BreakingPush, choice.push_id)
            if push is not None and choice.step is ActionStep.WITHDRAW_YES:
                report = (push.admin_chat_id, push.preview_message_id)
    if isinstance(action, Refusal):
        await edit(context, query, Reply(escape(newsroom_texts.refusal(action))))
        return newsroom_texts.refusal(action)
    start_action(context, action.id)
    await _without_buttons(context.bot, *report)
    return newsroom_texts.action_started()


async def _without_buttons(bot: Bot, chat_id: int | None, message_id: int | None) -> None:
    """Take Correct / Withdraw off a withdrawn push's report."""
    if chat_id is None or message_id is None:
        return
    try:
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id)
    except TelegramError as exc:
        log.info("could not take the buttons off push report %s: %s", message_id, exc)


async def _offer(update: Update, context: NewsContext, choice: ActionChoice) -> str | None:
    """Correct: how to send the correction; Withdraw: "Delete N messages?" (new messages)."""
    async with context.bot_data.sessions() as session:
        push = await corrections.actionable_push(session, choice.push_id)
        if isinstance(push, Refusal):
            return newsroom_texts.refusal(push)
        if choice.step is ActionStep.CORRECT:
            reply = Reply(newsroom_texts.correct_help(push.id, push.article.title))
        else:
            count = await corrections.messages_to_act_on(session, push.id)
            reply = newsroom_texts.withdraw_confirm(push.id, push.article.title, count=count)
    await send(update, reply)
    return None


def start_action(context: NewsContext, action_id: int) -> None:
    """Run an action in the background (the application waits for it at shutdown)."""
    runner = context.bot_data.actions
    context.application.create_task(runner.run(action_id), name=f"push-action-{action_id}")


async def resume_actions(context: NewsContext) -> None:
    """Pick up corrections and withdrawals a restart interrupted or a flood limit delayed
    (runs at start and then every tick)."""
    for action_id in await context.bot_data.actions.unfinished():
        log.info("resuming push action %s", action_id)
        start_action(context, action_id)


def progress_shower(bot: Bot) -> Callable[[ActionProgress], Coroutine[Any, Any, None]]:
    """Show an action's progress by editing the editor's confirmation message."""

    async def show(progress: ActionProgress) -> None:
        if progress.report_message_id is None or progress.admin_chat_id is None:
            return
        await edit_report(
            bot,
            progress.admin_chat_id,
            progress.report_message_id,
            Reply(newsroom_texts.action_progress(progress)),
            what=f"push action {progress.action_id}",
        )

    return show
