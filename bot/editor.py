"""Editors' commands: /breaking with preview and Send/Cancel, /stats. Admins only."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from bot.context import NewsApp, Services, app_services, services
from bot.jobs import delivery_config
from bot.replies import NO_PREVIEW, edit, send
from bot.sender import TelegramSender
from digests import breaking
from digests.delivery import RoundReport, SendPriority, deliver, pending_ids
from digests.messages import Reply
from digests.models import BreakingPush, Chat, Delivery, DeliveryKind
from digests.render import escape
from digests.stats import collect_stats, render_stats

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
NOT_ALLOWED = escape("Sorry, that is not allowed: this command is for the publisher's editors.")
_RUNNING = "breaking-running"
PROGRESS_EVERY = 2.0  # seconds between progress edits of the preview message


def admins_only(
    handler: Callable[[Update, Context], Coroutine[Any, Any, None]],
) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
    """Refuse anyone not in ADMIN_IDS, and log the attempt with their user id."""

    async def wrapped(update: Update, context: Context) -> None:
        user = update.effective_user
        if not services(context).is_admin(user.id if user else None):
            log.warning(
                "user %s tried admin command %r",
                user.id if user else None,
                (update.effective_message.text or "")[:40] if update.effective_message else "",
            )
            await send(update, NOT_ALLOWED)
            return
        await handler(update, context)

    wrapped.__doc__ = handler.__doc__
    wrapped.__name__ = handler.__name__
    return wrapped


@admins_only
async def breaking_command(update: Update, context: Context) -> None:
    """Store a breaking story and reply with a preview, the audience and Send / Cancel."""
    svc, user, chat = services(context), update.effective_user, update.effective_chat
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
        )
        reply = breaking.preview(draft) if draft else Reply(breaking.USAGE)
        push_id = draft.push.id if draft else None
    message = await send(update, reply)
    if push_id is not None and message is not None:
        async with svc.sessions.begin() as session:
            push = await session.get(BreakingPush, push_id)
            if push is not None:
                push.preview_message_id = message.message_id


@admins_only
async def stats_command(update: Update, context: Context) -> None:
    """Chats, subscribers and stories per section, and the last day's deliveries."""
    svc = services(context)
    async with svc.sessions.begin() as session:
        text = render_stats(await collect_stats(session, now=svc.clock()))
    await send(update, text)


async def breaking_button(update: Update, context: Context, data: str) -> str | None:
    """Send or Cancel on a preview: only one press ever starts a push."""
    svc, query, user = services(context), update.callback_query, update.effective_user
    assert query is not None
    if not svc.is_admin(user.id if user else None):
        log.warning("user %s pressed %r without admin rights", user.id if user else None, data)
        return "Not allowed."
    prefix = breaking.SEND if data.startswith(breaking.SEND) else breaking.CANCEL
    raw = data.removeprefix(prefix)
    if not data.startswith((breaking.SEND, breaking.CANCEL)) or not raw.isdigit() or len(raw) > 12:
        return "This button no longer works."
    push_id = int(raw)
    now = svc.clock()
    if prefix == breaking.CANCEL:
        async with svc.sessions.begin() as session:
            cancelled = await breaking.cancel(session, push_id, now=now)
        if not cancelled:
            return "Already sent or cancelled."
        await edit(query, Reply(escape("Cancelled: nothing was sent.")))
        return None
    async with svc.sessions.begin() as session:
        push = await breaking.confirm(session, push_id, now=now)
    if push is None:
        return "Already sent or cancelled."
    context.application.create_task(run_push(context.application, push_id), name=f"push-{push_id}")
    return "Sending…"


async def run_push(application: NewsApp, push_id: int) -> RoundReport | None:
    """Deliver every pending row of a confirmed push, editing the preview as it goes."""
    svc = app_services(application)
    running = svc.extras.setdefault(_RUNNING, set())
    assert isinstance(running, set)
    if push_id in running:
        return None
    running.add(push_id)
    try:
        return await _run_push(application, svc, push_id)
    finally:
        running.discard(push_id)


async def _run_push(application: NewsApp, svc: Services, push_id: int) -> RoundReport | None:
    async with svc.sessions() as session:
        push = await session.get(BreakingPush, push_id)
        if push is None:
            return None
        text = breaking.render_breaking(push.article)
        article_id = push.article_id
    ids = await pending_ids(
        svc.sessions, now=svc.clock(), kind=DeliveryKind.BREAKING, article_id=article_id
    )

    async def render(
        _session: AsyncSession, pairs: list[tuple[Delivery, Chat]]
    ) -> dict[int, list[str]]:
        return {row.id: [text] for row, _chat in pairs}

    last_edit: list[datetime] = []

    async def progress(_report: RoundReport) -> None:
        now = svc.clock()
        if last_edit and (now - last_edit[0]).total_seconds() < PROGRESS_EVERY:
            return
        last_edit[:] = [now]
        await _show_progress(application, svc, push_id, done=False)

    report = await deliver(
        svc.sessions,
        TelegramSender(application.bot, observe=svc.metrics.observe_send),
        ids,
        now=svc.clock,
        config=delivery_config(svc.settings),
        render=render,
        priority=SendPriority.BREAKING,
        progress=progress,
    )
    remaining = await pending_ids(
        svc.sessions,
        now=svc.clock(),
        kind=DeliveryKind.BREAKING,
        article_id=article_id,
        due_only=False,  # rows waiting out a flood limit are picked up by a later resume
    )
    if not remaining:
        async with svc.sessions.begin() as session:
            await breaking.finish(session, push_id, now=svc.clock())
    await _show_progress(application, svc, push_id, done=not remaining)
    return report


async def _show_progress(
    application: NewsApp,
    svc: Services,
    push_id: int,
    *,
    done: bool,
) -> None:
    async with svc.sessions() as session:
        push = await session.get(BreakingPush, push_id)
        if push is None or push.preview_message_id is None:
            return
        counts = await breaking.tally(session, push.article_id)
        text = breaking.progress_text(push, counts, done=done)
        chat_id, message_id = push.admin_chat_id, push.preview_message_id
    try:
        await application.bot.edit_message_text(
            text,
            chat_id=chat_id,
            message_id=message_id,
            parse_mode=ParseMode.HTML,
            link_preview_options=NO_PREVIEW,
        )
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            log.warning("could not update push %s progress: %s", push_id, exc.message)
    except TelegramError as exc:
        log.warning("could not update push %s progress: %s", push_id, exc)


async def resume_pushes(context: Context) -> None:
    """Pick up pushes a restart interrupted or a flood limit delayed; each chat still gets
    the story at most once (runs at start and then every tick)."""
    svc = services(context)
    async with svc.sessions() as session:
        unfinished = [push.id for push in await breaking.unfinished(session)]
    for push_id in unfinished:
        log.info("resuming breaking push %s", push_id)
        context.application.create_task(run_push(context.application, push_id))
