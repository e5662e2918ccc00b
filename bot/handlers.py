"""Telegram handlers: read the update, call one service in digests/, render the reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Chat as TgChat
from telegram import Update
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.context import Services, services
from bot.replies import edit, send
from digests import messages as msg
from digests.digest import collect_digest, render_digest
from digests.models import Chat, ChatKind, Section
from digests.paging import Cursor, first_page, turn_page
from digests.readers import (
    find_chat,
    followed_section_ids,
    followed_sections,
    forget_chat,
    match_timezone,
    register_chat,
    set_alerts,
    set_digest_time,
    set_timezone,
    subscribe,
    toggle,
    unsubscribe,
    unsubscribe_all,
)
from digests.render import escape
from digests.schedule import due_window
from digests.sections import list_sections, resolve_section_args, resolve_sections
from digests.settings import parse_hhmm

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


async def _all_sections(session: AsyncSession) -> list[Section]:
    return list(await session.scalars(select(Section).order_by(Section.name)))


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
        chooser = msg.chooser(
            await _all_sections(session),
            await followed_section_ids(session, chat),
            intro=msg.CHOOSER_INTRO,
        )
    await send(update, msg.welcome(svc.settings.publisher_name, new=created))
    await send(update, chooser)


async def help_command(update: Update, context: Context) -> None:
    """Say what each command does."""
    user = update.effective_user
    await send(update, msg.help_text(admin=services(context).is_admin(user.id if user else None)))


async def sections_command(update: Update, context: Context) -> None:
    """List every section with its story count, marking the followed ones."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        followed = await followed_section_ids(session, chat) if chat else set()
        text = msg.sections_list(await list_sections(session), followed)
    await send(update, text)


@admin_only
async def subscribe_command(update: Update, context: Context) -> None:
    """Follow named sections, or show the chooser keyboard."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    args = context.args or []
    async with svc.sessions.begin() as session:
        chat = await _ensure_chat(session, svc, tg_chat)
        if not args:
            reply = msg.chooser(
                await _all_sections(session),
                await followed_section_ids(session, chat),
                intro=msg.CHOOSER_INTRO,
            )
        else:
            found = await resolve_section_args(session, args)
            if found.unknown:
                reply = msg.Reply(msg.unknown_sections(found.unknown, await list_sections(session)))
            else:
                await subscribe(session, chat, found.sections, now=svc.clock())
                reply = msg.Reply(
                    msg.followed_summary(await followed_sections(session, chat), chat)
                )
    await send(update, reply)


@admin_only
async def unsubscribe_command(update: Update, context: Context) -> None:
    """Stop following named sections, or offer to stop all behind a confirm button."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    args = context.args or []
    async with svc.sessions.begin() as session:
        chat = await _ensure_chat(session, svc, tg_chat)
        if not args:
            reply = msg.confirm_unsubscribe_all(len(await followed_section_ids(session, chat)))
        else:
            found = await resolve_section_args(session, args)
            if found.unknown:
                reply = msg.Reply(msg.unknown_sections(found.unknown, await list_sections(session)))
            else:
                removed = await unsubscribe(session, chat, found.sections)
                left = await followed_sections(session, chat)
                text = (
                    f"Stopped following {msg.names(removed)}."
                    if removed
                    else escape("You weren't following that.")
                )
                reply = msg.Reply(text + "\n" + msg.followed_summary(left, chat))
    await send(update, reply)


async def latest_command(update: Update, context: Context) -> None:
    """Show the newest story, with buttons to page through the others."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    args = context.args or []
    async with svc.sessions.begin() as session:
        section = None
        if args:
            found = await resolve_sections(session, [" ".join(args)])
            if not found.sections or len(found.sections) != 1:
                found = await resolve_section_args(session, args)
            if found.unknown or len(found.sections) != 1:
                unknown = found.unknown or [" ".join(args)]
                await send(update, msg.unknown_sections(unknown, await list_sections(session)))
                return
            section = found.sections[0]
        chat = await find_chat(session, tg_chat.id)
        tz = chat.timezone if chat else svc.settings.default_timezone
        page = await first_page(session, section)
        reply = (
            msg.story_page(page, tz=tz)
            if page
            else msg.Reply(escape("No stories yet. Come back soon!"))
        )
    await send(update, reply)


async def digest_command(update: Update, context: Context) -> None:
    """/digest HH:MM sets the time, /digest off stops, /digest now sends one at once."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    arg = " ".join(context.args or []).strip().lower()
    if not await _is_group_admin(update, context):
        await send(update, msg.NOT_GROUP_ADMIN)
        return
    now = svc.clock()
    async with svc.sessions.begin() as session:
        chat = await _ensure_chat(session, svc, tg_chat)
        if arg == "now":
            start, end = due_window(chat.last_digest_at, now)
            sections = await collect_digest(
                session,
                chat_id=chat.id,
                window_start=start,
                window_end=end,
                per_section=svc.settings.digest_stories_per_section,
            )
            followed = await followed_section_ids(session, chat)
            texts = render_digest(sections, tz=chat.timezone, window_end=end)
            if not followed:
                texts = [escape("You don't follow any section yet. Choose some with /subscribe.")]
            elif not texts:
                texts = [escape("No new stories in your sections since your last digest.")]
        elif arg in {"off", "stop"}:
            set_digest_time(chat, None, now=now)
            texts = [msg.digest_set(chat)]
        elif arg:
            try:
                value = parse_hhmm(arg)
            except ValueError:
                texts = [escape("Send the time as HH:MM, e.g. /digest 07:30, or /digest off.")]
            else:
                set_digest_time(chat, value, now=now)
                texts = [msg.digest_set(chat)]
        else:
            texts = [
                msg.digest_set(chat)
                + "\n"
                + escape("Change it with /digest HH:MM, /digest off, or get one now: /digest now.")
            ]
    for text in texts:
        await send(update, text)


@admin_only
async def timezone_command(update: Update, context: Context) -> None:
    """Set the chat's IANA time zone, suggesting close matches for a wrong name."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    raw = " ".join(context.args or []).strip()
    async with svc.sessions.begin() as session:
        chat = await _ensure_chat(session, svc, tg_chat)
        if not raw:
            text = f"Your time zone is {escape(chat.timezone)}.\n{msg.TIMEZONE_HELP}"
        else:
            choice = match_timezone(raw)
            if choice.ok:
                set_timezone(chat, choice.name, now=svc.clock())
                text = f"Time zone set to {escape(choice.name)}.\n{msg.digest_set(chat)}"
            else:
                text = msg.bad_timezone(raw, choice.suggestions)
    await send(update, text)


@admin_only
async def alerts_command(update: Update, context: Context) -> None:
    """Turn breaking-news pushes on or off."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    arg = " ".join(context.args or []).strip().lower()
    async with svc.sessions.begin() as session:
        chat = await _ensure_chat(session, svc, tg_chat)
        if arg in {"on", "off"}:
            set_alerts(chat, arg == "on", now=svc.clock())
            text = f"Breaking news alerts are {'on' if chat.alerts else 'off'}."
        else:
            state = "on" if chat.alerts else "off"
            text = f"Breaking news alerts are {state}. Use /alerts on or /alerts off."
    await send(update, escape(text))


async def settings_command(update: Update, context: Context) -> None:
    """Show sections, digest time, time zone and alerts, with buttons to change them."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        if chat is None:
            await send(update, msg.NOT_REGISTERED)
            return
        reply = msg.settings(chat, await followed_sections(session, chat))
    await send(update, reply)


@admin_only
async def stop_command(update: Update, context: Context) -> None:
    """Stop every message and delete what the bot stores about the chat."""
    svc, tg_chat = services(context), update.effective_chat
    if tg_chat is None:
        return
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        if chat is not None:
            await forget_chat(session, chat)
    await send(
        update,
        escape(
            "Done: you will get no more messages, and I deleted your settings and "
            "subscriptions. Send /start to come back."
        ),
    )


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


async def _dispatch_button(update: Update, context: Context, data: str) -> str | None:
    svc, query, tg_chat = services(context), update.callback_query, update.effective_chat
    assert query is not None
    if tg_chat is None:
        return "This button no longer works."
    if data.startswith("L:"):
        return await _page_button(svc, update, data)
    if data.startswith(("S:", "U:", "C:")):
        if not await _is_group_admin(update, context):
            return "Only the group's administrators can change its settings."
        if data.startswith("S:"):
            return await _chooser_button(svc, update, data)
        if data.startswith("U:"):
            return await _unsubscribe_button(svc, update, data)
        return await _settings_button(svc, update, data)
    extra = svc.extras.get("button:" + data.split(":", 1)[0])
    if extra is not None:
        handler: Callable[[Update, Context, str], Awaitable[str | None]] = extra  # type: ignore[assignment]
        return await handler(update, context, data)
    return "This button no longer works."


async def _page_button(svc: Services, update: Update, data: str) -> str | None:
    query, tg_chat = update.callback_query, update.effective_chat
    assert query is not None
    assert tg_chat is not None
    cursor = Cursor.decode(data)
    if cursor is None:
        return "This button no longer works."
    async with svc.sessions.begin() as session:
        turn = await turn_page(session, cursor)
        if turn.page is None:
            return turn.problem
        chat = await find_chat(session, tg_chat.id)
        tz = chat.timezone if chat else svc.settings.default_timezone
        reply = msg.story_page(turn.page, tz=tz)
    await edit(query, reply)
    return None


async def _chooser_button(svc: Services, update: Update, data: str) -> str | None:
    query, tg_chat = update.callback_query, update.effective_chat
    assert query is not None
    assert tg_chat is not None
    async with svc.sessions.begin() as session:
        chat = await _ensure_chat(session, svc, tg_chat)
        if data == msg.CHOOSER_DONE:
            reply = msg.Reply(msg.followed_summary(await followed_sections(session, chat), chat))
            answer = None
        else:
            raw_id = data.removeprefix(msg.TOGGLE)
            if not raw_id.isdigit() or len(raw_id) > 9:
                return "This button no longer works."
            state = await toggle(session, chat, int(raw_id), now=svc.clock())
            if state is None:
                return "That section no longer exists."
            answer = "Following" if state else "Not following"
            reply = msg.chooser(
                await _all_sections(session),
                await followed_section_ids(session, chat),
                intro=msg.CHOOSER_INTRO,
            )
    await edit(query, reply)
    return answer


async def _unsubscribe_button(svc: Services, update: Update, data: str) -> str | None:
    query, tg_chat = update.callback_query, update.effective_chat
    assert query is not None
    assert tg_chat is not None
    if data == msg.UNSUB_CANCEL:
        await edit(query, msg.Reply(escape("Nothing changed.")))
        return None
    if data != msg.UNSUB_ALL:
        return "This button no longer works."
    async with svc.sessions.begin() as session:
        chat = await find_chat(session, tg_chat.id)
        count = await unsubscribe_all(session, chat) if chat else 0
    text = f"Stopped all digests ({count} section{'s' if count != 1 else ''})."
    await edit(query, msg.Reply(escape(text + " Follow sections again with /subscribe.")))
    return None


async def _settings_button(svc: Services, update: Update, data: str) -> str | None:
    query, tg_chat = update.callback_query, update.effective_chat
    assert query is not None
    assert tg_chat is not None
    now = svc.clock()
    async with svc.sessions.begin() as session:
        chat = await _ensure_chat(session, svc, tg_chat)
        if data == msg.SETTINGS_SECTIONS:
            reply = msg.chooser(
                await _all_sections(session),
                await followed_section_ids(session, chat),
                intro=msg.CHOOSER_INTRO,
            )
        elif data == msg.SETTINGS_ALERTS:
            set_alerts(chat, not chat.alerts, now=now)
            reply = msg.settings(chat, await followed_sections(session, chat))
        elif data == msg.SETTINGS_DIGEST:
            value = None if chat.digest_time else parse_hhmm(svc.settings.default_digest_time)
            set_digest_time(chat, value, now=now)
            reply = msg.settings(chat, await followed_sections(session, chat))
        elif data == msg.SETTINGS_TZ:
            reply = msg.Reply(f"Your time zone is {escape(chat.timezone)}.\n{msg.TIMEZONE_HELP}")
        else:
            return "This button no longer works."
    await edit(query, reply)
    return None


async def on_error(update: object, context: Context) -> None:
    """Log every unhandled error with the chat it happened in."""
    chat_id = (
        update.effective_chat.id if isinstance(update, Update) and update.effective_chat else None
    )
    log.error("error handling update in chat %s", chat_id, exc_info=context.error)
