"""Reader-facing services: chats, subscriptions and per-chat settings."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache
from zoneinfo import available_timezones

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.i18n import LANGUAGES, SOURCE, supported
from digests.models import Chat, ChatKind, Section, Subscription
from digests.schedule import (
    DigestPlan,
    Rhythm,
    check_timezone,
    next_slot,
    plan_of,
)
from digests.ui.shapes import Defaults

PAUSE = timedelta(days=7)


async def find_chat(session: AsyncSession, telegram_id: int) -> Chat | None:
    return await session.scalar(select(Chat).where(Chat.telegram_id == telegram_id))


async def register_chat(
    session: AsyncSession,
    *,
    telegram_id: int,
    kind: ChatKind,
    title: str | None,
    now: datetime,
    defaults: Defaults,
    language: str = SOURCE,
) -> tuple[Chat, bool]:
    """Create the chat, or reactivate it; returns (chat, created). A new chat speaks
    `language` (its first contact's, see digests.i18n.language_for)."""
    chat = await find_chat(session, telegram_id)
    if chat is not None:
        if not chat.active:
            chat.active = True
            chat.deactivated_reason = None
            if chat.digest_time is not None:
                chat.next_digest_at = _next(chat, now)
        chat.title = title
        chat.updated_at = now
        return chat, False
    chat = Chat(
        telegram_id=telegram_id,
        kind=kind,
        title=title,
        timezone=defaults.timezone,
        digest_time=defaults.digest_time,
        alerts=True,
        language=language if language in LANGUAGES else SOURCE,
        language_chosen=False,
        active=True,
        created_at=now,
        updated_at=now,
    )
    chat.next_digest_at = _next(chat, now)
    session.add(chat)
    await session.flush()
    return chat, True


def chat_plan(chat: Chat) -> DigestPlan | None:
    """When the chat's digests are due; None when they are off."""
    if chat.digest_time is None:
        return None
    return plan_of(
        chat.rhythm or Rhythm.DAILY, chat.digest_time, chat.second_digest_time, chat.digest_weekday
    )


def paused(chat: Chat, now: datetime) -> bool:
    return chat.paused_until is not None and chat.paused_until > now


def _next(chat: Chat, now: datetime) -> datetime | None:
    """The chat's next slot after `now`, or after its pause when it is paused."""
    plan = chat_plan(chat)
    if plan is None:
        return None
    after = chat.paused_until if paused(chat, now) and chat.paused_until else now
    return next_slot(plan, chat.timezone, after=after)


async def followed_section_ids(session: AsyncSession, chat: Chat) -> set[int]:
    rows = await session.scalars(
        select(Subscription.section_id).where(Subscription.chat_id == chat.id)
    )
    return set(rows)


async def followed_sections(session: AsyncSession, chat: Chat) -> list[Section]:
    rows = await session.scalars(
        select(Section)
        .join(Subscription, Subscription.section_id == Section.id)
        .where(Subscription.chat_id == chat.id)
        .order_by(Section.name)
    )
    return list(rows)


async def subscribe(
    session: AsyncSession, chat: Chat, sections: Sequence[Section], *, now: datetime
) -> list[Section]:
    """Follow sections; returns the ones newly followed."""
    have = await followed_section_ids(session, chat)
    added = [s for s in sections if s.id not in have]
    for section in added:
        session.add(Subscription(chat_id=chat.id, section_id=section.id, created_at=now))
    await session.flush()
    return added


async def unsubscribe(
    session: AsyncSession, chat: Chat, sections: Sequence[Section]
) -> list[Section]:
    """Stop following sections; returns the ones that were followed."""
    have = await followed_section_ids(session, chat)
    removed = [s for s in sections if s.id in have]
    if removed:
        await session.execute(
            delete(Subscription).where(
                Subscription.chat_id == chat.id,
                Subscription.section_id.in_([s.id for s in removed]),
            )
        )
    return removed


async def unsubscribe_all(session: AsyncSession, chat: Chat) -> int:
    """Stop following every section; returns how many were followed."""
    have = await followed_section_ids(session, chat)
    await session.execute(delete(Subscription).where(Subscription.chat_id == chat.id))
    return len(have)


async def toggle(
    session: AsyncSession, chat: Chat, section_id: int, *, now: datetime
) -> bool | None:
    """Flip one subscription; returns True if now followed, False if not, None if no section."""
    section = await session.get(Section, section_id)
    if section is None:
        return None
    if section_id in await followed_section_ids(session, chat):
        await unsubscribe(session, chat, [section])
        return False
    await subscribe(session, chat, [section], now=now)
    return True


def set_digest_time(chat: Chat, value: time | None, *, now: datetime) -> None:
    """Set the digest time, keeping the rhythm (None turns digests off); store the next
    instant."""
    chat.digest_time = None if value is None else value.strftime("%H:%M")
    chat.next_digest_at = _next(chat, now)
    chat.updated_at = now


def set_rhythm(chat: Chat, plan: DigestPlan, *, now: datetime) -> None:
    """Set how often and when the digest comes, and store the next instant."""
    chat.rhythm = plan.rhythm
    chat.digest_time = plan.first.strftime("%H:%M")
    chat.second_digest_time = (
        plan.second.strftime("%H:%M")
        if plan.rhythm is Rhythm.TWICE_DAILY and plan.second is not None
        else None
    )
    chat.digest_weekday = plan.weekday if plan.rhythm is Rhythm.WEEKLY else None
    chat.next_digest_at = _next(chat, now)
    chat.updated_at = now


def pause_digests(chat: Chat, *, now: datetime) -> None:
    """No digest for a week from `now` (a second pause sets the same week from its own
    `now`); then the next slot after that."""
    chat.paused_until = now + PAUSE
    chat.next_digest_at = _next(chat, now)
    chat.updated_at = now


def stop_digests(chat: Chat, *, now: datetime) -> bool:
    """Digests off (alerts untouched); any pause ends with them. False if already off."""
    was_on = chat.digest_time is not None
    chat.paused_until = None
    set_digest_time(chat, None, now=now)
    return was_on


def resume_digests(chat: Chat, *, now: datetime) -> bool:
    """End a pause: the next slot after `now`. False if the chat was not paused."""
    was = paused(chat, now)
    chat.paused_until = None
    chat.next_digest_at = _next(chat, now)
    chat.updated_at = now
    return was


@dataclass(frozen=True)
class TimezoneChoice:
    ok: bool
    name: str
    suggestions: tuple[str, ...] = ()


@cache
def _zone_names() -> dict[str, str]:
    return {name.casefold(): name for name in available_timezones()}


def match_timezone(raw: str) -> TimezoneChoice:
    """Accept an IANA name in any case; otherwise suggest close matches."""
    text = raw.strip().replace(" ", "_")
    names = _zone_names()
    exact = names.get(text.casefold())
    if exact is not None:
        try:
            return TimezoneChoice(True, check_timezone(exact))
        except ValueError:
            pass
    keys = list(names)
    close = difflib.get_close_matches(text.casefold(), keys, n=5, cutoff=0.6)
    if not close:
        city = text.casefold().rsplit("/", 1)[-1]
        close = [key for key in keys if key.rsplit("/", 1)[-1] == city][:5]
        if not close and len(city) >= 3:
            close = [key for key in keys if city in key][:5]
    return TimezoneChoice(False, text, tuple(sorted(names[key] for key in close)))


def set_timezone(chat: Chat, name: str, *, now: datetime) -> None:
    """Change the chat's time zone; the next digest moves to the same local time there."""
    chat.timezone = check_timezone(name)
    chat.next_digest_at = _next(chat, now)
    chat.updated_at = now


def set_alerts(chat: Chat, on: bool, *, now: datetime) -> None:
    chat.alerts = on
    chat.updated_at = now


async def forget_chat(session: AsyncSession, chat: Chat) -> None:
    """Delete everything stored about the chat (subscriptions and delivery log cascade)."""
    await session.delete(chat)
    await session.flush()


def follow_telegram_language(chat: Chat, telegram_code: str | None, *, now: datetime) -> bool:
    """A private chat whose reader never chose a language with /language follows the
    language of their Telegram app (when we speak it); True when it changed."""
    if chat.language_chosen or chat.kind is not ChatKind.PRIVATE:
        return False
    language = supported(telegram_code)
    if language is None or language == chat.language:
        return False
    chat.language = language
    chat.updated_at = now
    return True


def set_language(chat: Chat, language: str, *, now: datetime) -> None:
    """The reader's choice (/language): kept whatever their Telegram app's language."""
    if language not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}")
    chat.language = language
    chat.language_chosen = True
    chat.updated_at = now
