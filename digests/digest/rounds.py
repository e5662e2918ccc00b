"""The digest round, the runner above the send engine: turn due chats into PENDING digest
rows (`schedule_due_digests`), render those rows' digests (`digest_renderer`, from the data
DigestBuilder collects), and hand both to `deliver()` (`run_digest_round`, as the
scheduler's tick runs it)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n
from digests.db import SessionFactory
from digests.delivery.config import DeliveryConfig
from digests.delivery.engine import (
    deliver,
    insert_deliveries,
    mark_interrupted,
    pending_ids,
    prepare_topics,
)
from digests.delivery.ports import Part, Renderer, RoundReport, Sender, Text
from digests.digest.builder import ChatDigest, DigestBuilder, DigestRequest
from digests.digest.texts import digest as digest_messages
from digests.digest.texts import digest_controls, topic_closed_note
from digests.models import Chat, Delivery, DeliveryKind, Section
from digests.readers.topics import Route, TopicMaker, routes_of
from digests.schedule import Rhythm, catch_up_plan, first_window_start, plan_of
from digests.ui.render import MAX_MESSAGE, visible_length

log = logging.getLogger(__name__)

_chats = cast(Table, Chat.__table__)


# ---- scheduling: turn due chats into PENDING digest rows --------------------------------


async def schedule_due_digests(
    session_factory: SessionFactory, *, now: datetime, config: DeliveryConfig
) -> RoundReport:
    """Write a PENDING delivery row for every chat whose digest is due, and move its schedule.

    Due chats are read in a transaction that owns them: FOR UPDATE SKIP LOCKED on PostgreSQL,
    and on SQLite a write transaction (BEGIN IMMEDIATE), which no other writer can enter. Both
    the schedule move and the rows are written in that same transaction, in bulk; the unique
    (chat, kind, ref) constraint is the last guard against a second copy.
    """
    report = RoundReport()
    while True:
        async with session_factory.begin() as session:
            due = (
                await session.execute(
                    select(
                        Chat.id,
                        Chat.telegram_id,
                        Chat.next_digest_at,
                        Chat.digest_time,
                        Chat.timezone,
                        Chat.last_digest_at,
                        Chat.rhythm,
                        Chat.second_digest_time,
                        Chat.digest_weekday,
                        Chat.paused_until,
                    )
                    .where(
                        Chat.active.is_(True),
                        Chat.next_digest_at.is_not(None),
                        Chat.next_digest_at <= now,
                    )
                    # by the due time alone, which the index ix_chats_due gives in order:
                    # with the id as well, every due chat was read and sorted for each 500
                    .order_by(Chat.next_digest_at)
                    .limit(config.claim_limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not due:
                return report
            moves: list[dict[str, object]] = []
            rows: list[dict[str, object]] = []
            for (
                chat_id,
                telegram_id,
                next_at,
                digest_time,
                tz,
                last_at,
                rhythm,
                second_time,
                weekday,
                paused_until,
            ) in due:
                assert next_at is not None
                when = _When(digest_time, rhythm, second_time, weekday, tz)
                send_at, new_next = (
                    _catch_up(next_at, now, config.grace, when, paused_until)
                    if digest_time is not None
                    else (None, None)
                )
                moves.append(
                    {
                        "chat_row": chat_id,
                        "next_digest_at": new_next,
                        "last_digest_at": send_at or last_at,
                    }
                )
                if send_at is None:
                    if paused_until is not None and paused_until > now:
                        log.info("chat %s: digests paused until %s", telegram_id, paused_until)
                    elif digest_time is not None:
                        report.skipped_stale += 1
                        log.info(
                            "chat %s: digest due %s is past the grace period", telegram_id, next_at
                        )
                    continue
                rows.append(
                    {
                        "chat_id": chat_id,
                        "kind": DeliveryKind.DIGEST,
                        "ref": send_at.strftime("%Y-%m-%dT%H:%MZ"),
                        "window_start": last_at or _first_start(when, send_at),
                        "window_end": send_at,
                        "article_id": None,
                    }
                )
            for values, chat_rows in _grouped_moves(moves).items():
                await session.execute(
                    update(_chats)
                    .where(_chats.c.id.in_(chat_rows))
                    .values(next_digest_at=values[0], last_digest_at=values[1], updated_at=now)
                )
            created = await insert_deliveries(session, rows, now=now)
            report.scheduled += len(created)
            report.lost_race += len(rows) - len(created)
        if len(due) < config.claim_limit:
            return report


def _grouped_moves(
    moves: list[dict[str, object]],
) -> dict[tuple[object, object], list[object]]:
    """Chats by their schedule's new (next, last) digest times: chats due together mostly
    move alike, and one UPDATE of many ids costs the database far less than one per chat."""
    groups: dict[tuple[object, object], list[object]] = {}
    for move in moves:
        key = (move["next_digest_at"], move["last_digest_at"])
        groups.setdefault(key, []).append(move["chat_row"])
    return groups


@dataclass(frozen=True)
class _When:
    """A chat's schedule columns as the scheduler reads them (hashable, for the cache)."""

    digest_time: str | None
    rhythm: str | None
    second_time: str | None
    weekday: int | None
    tz: str


@functools.lru_cache(maxsize=4096)
def _catch_up(
    due: datetime, now: datetime, grace: timedelta, when: _When, paused_until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    # chats sharing a schedule and a zone share the answer: compute it once per round
    assert when.digest_time is not None
    plan = plan_of(when.rhythm or Rhythm.DAILY, when.digest_time, when.second_time, when.weekday)
    return catch_up_plan(
        due, now=now, grace=grace, plan=plan, tz=when.tz, paused_until=paused_until
    )


def _first_start(when: _When, due_at: datetime) -> datetime:
    """A first digest's window start: the rhythm's slot before it (a day for daily ones)."""
    assert when.digest_time is not None
    plan = plan_of(when.rhythm or Rhythm.DAILY, when.digest_time, when.second_time, when.weekday)
    return first_window_start(plan, when.tz, due_at)


# ---- rendering: digest rows as messages -----------------------------------------------------


class DigestWriter:
    """Chats' digests as messages: what a DigestBuilder collects, rendered in each chat's
    language. Chats whose digest is the same (the builder gives them one `ChatDigest`) share
    one rendering. Create one per round (or per command); it caches what it reads."""

    def __init__(self, *, per_section: int) -> None:
        self.builder = DigestBuilder(per_section=per_section)
        self._rendered: dict[ChatDigest, list[str]] = {}

    async def build(
        self, session: AsyncSession, requests: list[DigestRequest]
    ) -> dict[int, list[str]]:
        """Rendered messages per chat id ([] when a chat has nothing new)."""
        result: dict[int, list[str]] = {}
        for chat_id, digest in (await self.builder.digests(session, requests)).items():
            rendered = self._rendered.get(digest)
            if rendered is None:
                with i18n.use(digest.language):
                    rendered = digest_messages(
                        digest.sections, tz=digest.tz, window_end=digest.window_end
                    )
                self._rendered[digest] = rendered
            result[chat_id] = rendered
        return result


def digest_renderer(per_section: int) -> Renderer:
    """Digest rows rendered in batches by one DigestWriter (the chats' sections as they are
    now); make one per round so that the window's stories are read once."""
    writer = DigestWriter(per_section=per_section)

    async def render(
        session: AsyncSession, pairs: list[tuple[Delivery, Chat]]
    ) -> dict[int, list[Part]]:
        requests = []
        for row, chat in pairs:
            assert row.window_start is not None
            assert row.window_end is not None
            requests.append(
                DigestRequest(
                    chat.id, row.window_start, row.window_end, chat.timezone, chat.language
                )
            )
        built = await writer.build(session, requests)
        rendered = {
            row.id: with_controls(built.get(chat.id, []), language=chat.language)
            for row, chat in pairs
        }
        forums = [(row, chat) for row, chat in pairs if chat.is_forum and rendered[row.id]]
        if forums:
            rendered |= await _forum_digests(session, writer.builder, forums)
        return rendered

    return render


async def _forum_digests(
    session: AsyncSession, builder: DigestBuilder, pairs: list[tuple[Delivery, Chat]]
) -> dict[int, list[Part]]:
    """Forum chats: one message (or more, when long) per section, each into the section's
    topic (the General topic when it has none), the buttons under the last."""
    routes = await routes_of(session, [chat.id for _, chat in pairs])
    requests = {
        chat.id: DigestRequest(
            chat.id, row.window_start, row.window_end, chat.timezone, chat.language
        )
        for row, chat in pairs
        if row.window_start is not None and row.window_end is not None
    }
    collected = await builder.collect(session, list(requests.values()))
    by_slug = await _section_ids_by_slug(session)
    result: dict[int, list[Part]] = {}
    for row, chat in pairs:
        # always a message per section, topics or not: a digest's parts must stay the same
        # when it is rendered again to send the rest (a row records how many went out)
        mine = routes.get(chat.id, {})
        request = requests[chat.id]
        parts: list[Part] = []
        with i18n.use(chat.language):
            for section in collected.get(chat.id, []):
                route = mine.get(by_slug.get(section.slug, -1), Route(None))
                texts = digest_messages([section], tz=request.tz, window_end=request.window_end)
                if route.closed and texts:
                    noted = topic_closed_note(section.name, section.slug) + "\n\n" + texts[0]
                    if visible_length(noted) <= MAX_MESSAGE:  # a full message goes without it
                        texts[0] = noted
                parts.extend(Text(text, thread=route.thread_id) for text in texts)
            if parts:
                last = parts[-1]
                assert isinstance(last, Text)
                controls = tuple(tuple(r) for r in digest_controls())
                parts[-1] = Text(last.html, controls, thread=last.thread)
                result[row.id] = parts
    return result


async def _section_ids_by_slug(session: AsyncSession) -> dict[str, int]:
    return {slug: sid for sid, slug in await session.execute(select(Section.id, Section.slug))}


def with_controls(texts: Sequence[str], *, language: str = i18n.SOURCE) -> list[Part]:
    """A digest's messages with its one-tap buttons (pause, sections, stop) under the last,
    labelled in the chat's `language`."""
    parts: list[Part] = list(texts)
    if parts:
        with i18n.use(language):
            rows = tuple(tuple(row) for row in digest_controls())
        parts[-1] = Text(texts[-1], rows)
    return parts


# ---- one round, as the scheduler runs it ----------------------------------------------------


async def run_digest_round(
    session_factory: SessionFactory,
    sender: Sender,
    *,
    now: Callable[[], datetime],
    config: DeliveryConfig,
    stopping: asyncio.Event | None = None,
    topics: TopicMaker | None = None,
) -> RoundReport:
    """Schedule what is due, then send every PENDING digest row (ours or left by anyone);
    once `stopping` is set, no further batch is claimed. With `topics`, forum chats' missing
    topics are created first (digests/readers/topics.py).

    The rows are read `config.page` at a time, in id order, each page sent before the next
    is read: a round's memory does not grow with its readers."""
    report = await schedule_due_digests(session_factory, now=now(), config=config)
    if report.scheduled >= ANALYZE_AFTER:
        await _refresh_statistics(session_factory)
    uncertain = await mark_interrupted(session_factory, now=now(), lease=config.lease)
    report.uncertain += len(uncertain)
    report.interrupted += len(uncertain)
    after: int | None = None
    render = digest_renderer(config.per_section)  # one per round: it caches the window
    while not (stopping and stopping.is_set()):
        ids = await pending_ids(
            session_factory, now=now(), kind=DeliveryKind.DIGEST, after=after, limit=config.page
        )
        if not ids:
            break
        if after is None and topics is not None:
            await prepare_topics(session_factory, topics, now=now(), kind=DeliveryKind.DIGEST)
        report.add(
            await deliver(
                session_factory,
                sender,
                ids,
                now=now,
                config=config,
                render=render,
                stopping=stopping,
            )
        )
        if len(ids) < config.page:
            break
        after = ids[-1]
    return report


ANALYZE_AFTER = 10_000
"""Rows scheduled at once from which PostgreSQL's statistics of `deliveries` are refreshed
before they are claimed."""


async def _refresh_statistics(session_factory: SessionFactory) -> None:
    """ANALYZE deliveries (a sample: a fraction of a second at a million rows).

    The claims find their rows by id, with `status = 'pending'` as a condition. Planned
    without statistics, or with statistics of the table as it was before this round wrote
    its rows (nearly empty: a first round, or one much larger than the last), they read the
    rows through the status index instead: every PENDING row for each claim, so a round of
    100,000 rows took ten to thirty times a round of 10,000. SQLite does so as soon as a
    claim has a few hundred ids and has no statistics at all unless ANALYZE made them;
    PostgreSQL keeps the generic plan of a prepared statement (after five runs), made from
    the stale statistics, and ANALYZE also drops those plans."""
    async with session_factory.begin() as session:
        if session.get_bind().dialect.name == "sqlite":
            await session.execute(text("PRAGMA analysis_limit = 1000"))
        await session.execute(text("ANALYZE deliveries"))
