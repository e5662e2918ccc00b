"""The delivery engine: claim due work in the database, send it once, record what happened.

Every digest and breaking push is a row in `deliveries`, unique per (chat, kind, ref), written
*before* anything is sent:

    PENDING --its request leaves the rate limiter--> SENDING --answer--> SENT | BLOCKED | FAILED
       |                                                        \\--429--> PENDING (not_before)
       \\--nothing to say--> EMPTY

A worker first claims a batch of PENDING rows: it writes its claim (`claimed_by`) and holds
them until `not_before` (the claim lease), while their requests queue in the rate limiter. A
row moves PENDING -> SENDING only when its request is about to leave, with a compare-and-set
UPDATE that needs the claim: of two workers (or a restart racing the old process) exactly one
sends it, and a crash loses at most the requests on the wire. A claimed row whose worker died
is free again once its claim lease is over. A row found still SENDING after `lease` belonged
to a process that died mid-send: it may or may not have arrived, so it becomes UNCERTAIN and is
reported, never blindly resent. A send whose answer never came back (read timeout, connection
closed before the answer) is UNCERTAIN for the same reason. A PENDING row is safe to send by
anyone: nothing left yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    bindparam,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from digests import i18n
from digests.db import SessionFactory
from digests.digest.builder import DigestBuilder, DigestRequest
from digests.digest.texts import digest as digest_messages
from digests.digest.texts import digest_controls, topic_closed_note
from digests.models import Chat, ChatKind, Delivery, DeliveryKind, DeliveryStatus, Section
from digests.readers.topics import (
    Route,
    TopicMaker,
    TopicProblem,
    ensure_topics,
    record_problems,
    routes_of,
)
from digests.schedule import Rhythm, catch_up_plan, first_window_start, plan_of
from digests.ui.render import MAX_MESSAGE, visible_length
from digests.ui.shapes import Button

if TYPE_CHECKING:
    from digests.settings import Settings

log = logging.getLogger(__name__)


INTERRUPTED = "interrupted mid-send"
"""How an UNCERTAIN row's error begins when its process died while sending it."""


class SendPriority(enum.IntEnum):
    """Who goes first when sending is throttled (same order as the bot's rate limiter)."""

    INTERACTIVE = 0
    BREAKING = 1
    BULK = 2


class Outcome(enum.StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"  # 403 or chat not found: the chat is gone for us
    MIGRATED = "migrated"  # a group became a supergroup with a new id
    RETRY_LATER = "retry_later"  # 429 with a long wait, or certainly not sent: come back later
    WITHDRAWN = "withdrawn"  # never went out: the row was no longer ours, or we are stopping
    UNCERTAIN = "uncertain"  # may have reached Telegram (no answer came back): never resent
    FAILED = "failed"  # permanent or exhausted: logged, the run goes on


@dataclass(frozen=True)
class Photo:
    """A message that goes out as a photo: `url` is an http(s) URL Telegram fetches, `caption`
    Telegram HTML within 1,024 visible characters, and `fallback` the whole message as
    Telegram-HTML text, sent instead when Telegram refuses the image."""

    url: str
    caption: str
    fallback: str
    thread: int | None = None  # a forum topic's message_thread_id (None: the General topic)


@dataclass(frozen=True)
class Text:
    """A Telegram-HTML text message with inline buttons under it (rows of `Button`s)."""

    html: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    thread: int | None = None  # a forum topic's message_thread_id (None: the General topic)


Part = str | Text | Photo
"""One message of a delivery: Telegram-HTML text (with buttons or without), or a photo
with its caption."""

PHOTO = "photo"
"""SendResult.media (and deliveries.media) of a message that went out as a photo."""


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    message_ids: tuple[int, ...] = ()  # of the parts that did go out
    migrate_to: int | None = None
    retry_after: float | None = None
    error: str | None = None
    media: str | None = None  # PHOTO when a part went out as a photo; None for text only
    # topics Telegram refused (deleted or closed): their parts went to the General topic
    topic_problems: tuple[TopicProblem, ...] = ()


BeforeSend = Callable[[], Awaitable[bool]]
"""Called by a Sender right before a request leaves: True means go, False means withdraw."""


class Sender(Protocol):
    """Sends Telegram-HTML messages (or photos) to one chat; implemented by the Telegram adapter.

    A Photo whose image Telegram refuses goes out as its `fallback` text in the same send:
    the refusal is a definite answer, so nothing of it arrived and sending the text is safe.

    A Sender must await `before_send()` right before each request leaves (after any wait in
    a rate limiter, and again before later parts and retries): the engine marks the row
    SENDING there. When it returns False nothing may be sent, and the result is WITHDRAWN.
    """

    async def send(
        self,
        chat_id: int,
        texts: Sequence[Part],
        *,
        priority: SendPriority,
        before_send: BeforeSend | None = None,
    ) -> SendResult: ...


Renderer = Callable[[AsyncSession, list[tuple[Delivery, Chat]]], Awaitable[dict[int, list[Part]]]]
"""Messages for each (row, chat) of a batch, by delivery row id; [] means nothing to send."""


@dataclass(frozen=True)
class DeliveryConfig:
    grace: timedelta = timedelta(hours=6)
    per_section: int = 5
    batch: int = 10  # rows sent concurrently (and recorded together)
    workers: int = 2  # batches at once: batch * workers bounds the sends in flight
    # rows claimed and rendered in one transaction, then sent `batch` at a time (None: a
    # batch): larger where sending is fast, so that the database work per row is small
    claim_batch: int | None = None
    # outcomes with no release to go with wait up to this long to be written together (0: at
    # once); where sending is fast one write then carries many, where it is paced (30/s) an
    # outcome write must not hold up the next release (its request would leave late, the
    # one after it on time, and the two closer than Telegram's spacing)
    outcome_delay: float = 0.0
    claim_limit: int = 500  # chats scheduled per claim transaction
    page: int = 5_000  # PENDING rows a round reads (and holds) at a time
    max_attempts: int = 5
    # a claimed row waits in the rate limiter at most about this long before another worker
    # may claim it (the one whose mark of SENDING succeeds sends it, so never both)
    claim_lease: timedelta = timedelta(minutes=1)
    # a SENDING row's request and its recording take well under this (retries of 429s
    # included): a row still SENDING after it belonged to a dead process
    lease: timedelta = timedelta(minutes=5)


FAST_CLAIM = 250
"""Rows claimed at once when nothing (or only paid broadcasts' 1,000/s) limits the rate."""
PAID_BATCH = 50
PAID_WORKERS = 4
FAST_OUTCOME_DELAY = 0.05


def delivery_config(settings: Settings) -> DeliveryConfig:
    """The delivery policy for these settings. A batch is about a third of a second of sending
    at the overall rate (10 at 30/s): few rows are in flight, so few are left uncertain by a
    crash. With no overall limit (a local Bot API server) a whole claim of 250 rows is sent
    as one batch: the transport's connections bound what is on the wire, and the rows'
    moves to SENDING and their outcomes are written 250 to a statement rather than 25 (each
    statement costs the database a round trip and a commit, a third of a millisecond, as
    much as ten rows' own writes). Claims of 250 rows (a quarter of a second at 1,000/s,
    well within the claim lease) cost the database less per row than claims of 25."""
    rate = 1000.0 if settings.paid_broadcast else settings.send_rate_limit
    fast = rate <= 0 or rate >= 1000
    batch = FAST_CLAIM if fast else min(25, max(5, int(rate / 3)))
    workers = DeliveryConfig.workers
    if settings.paid_broadcast:
        # 1000/s over Telegram's 50-80 ms round trip needs 50-80 requests in flight while a
        # batch waits for its slowest answer: four batches of 50 at once (the transport has
        # PAID_CONNECTIONS = 200 for them).
        batch, workers = PAID_BATCH, PAID_WORKERS
    return DeliveryConfig(
        grace=timedelta(hours=settings.digest_grace_hours),
        per_section=settings.digest_stories_per_section,
        batch=batch,
        workers=workers,
        claim_batch=FAST_CLAIM if fast else None,
        outcome_delay=FAST_OUTCOME_DELAY if fast else 0.0,
        lease=timedelta(seconds=settings.send_lease_seconds),
    )


@dataclass
class RoundReport:
    scheduled: int = 0
    skipped_stale: int = 0
    sent: int = 0
    empty: int = 0
    blocked: int = 0
    failed: int = 0
    retry_later: int = 0
    uncertain: int = 0
    interrupted: int = 0  # of the uncertain: found in flight, their process dead
    lost_race: int = 0
    transactions: int = 0  # written while sending: claims, and journal flushes (see _Journal)
    errors: list[str] = field(default_factory=list)

    def add(self, other: RoundReport) -> None:
        for name in (
            "scheduled",
            "skipped_stale",
            "sent",
            "empty",
            "blocked",
            "failed",
            "retry_later",
            "uncertain",
            "interrupted",
            "lost_race",
            "transactions",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)


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


_chats = cast(Table, Chat.__table__)
_deliveries = cast(Table, Delivery.__table__)


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


async def insert_deliveries(
    session: AsyncSession, rows: Sequence[dict[str, object]], *, now: datetime
) -> list[int]:
    """Insert PENDING delivery rows, skipping any that exist already; returns the new ids."""
    if not rows:
        return []
    values = [
        {
            **row,
            "kind": DeliveryKind(str(row["kind"])).value,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
    ]
    if session.get_bind().dialect.name == "postgresql":
        columns = {
            name: [value[field] for value in values] for name, field in _INSERT_COLUMNS.items()
        }
        inserted = await session.scalars(
            _INSERT_MANY_PG,
            columns | {"status": DeliveryStatus.PENDING.value, "now": now},
        )
        return list(inserted.all())
    # one statement executed for all rows ("insertmanyvalues"), not a statement per chunk
    statement = (
        sqlite_insert(_deliveries)
        .on_conflict_do_nothing(index_elements=["chat_id", "kind", "ref"])
        .returning(_deliveries.c.id)
    )
    return list((await session.scalars(statement, values)).all())


_INSERT_COLUMNS = {
    "chat_ids": "chat_id",
    "kinds": "kind",
    "refs": "ref",
    "window_starts": "window_start",
    "window_ends": "window_end",
    "article_ids": "article_id",
}

_INSERT_MANY_PG = text(
    """
    INSERT INTO deliveries (
        chat_id, kind, ref, window_start, window_end, article_id,
        status, attempts, created_at, updated_at
    )
    SELECT u.chat_id, u.kind, u.ref, u.window_start, u.window_end, u.article_id,
        :status, 0, :now, :now
    FROM unnest(
        CAST(:chat_ids AS INTEGER[]), CAST(:kinds AS VARCHAR[]), CAST(:refs AS VARCHAR[]),
        CAST(:window_starts AS TIMESTAMPTZ[]), CAST(:window_ends AS TIMESTAMPTZ[]),
        CAST(:article_ids AS INTEGER[])
    ) AS u(chat_id, kind, ref, window_start, window_end, article_id)
    ON CONFLICT (chat_id, kind, ref) DO NOTHING
    RETURNING id
    """
)
"""`insert_deliveries` on PostgreSQL: the rows travel as one array per column, one statement
and one plan however many there are (a VALUES list of 500 rows is 3,000 parameters for the
server to parse and plan, and as many for the client to bind). In no particular order: the
callers want the set of new ids."""


def in_state(status: DeliveryStatus) -> ColumnElement[bool]:
    """`deliveries.status = 'pending'` (or another state) with the value written into the
    statement rather than bound: PostgreSQL can then answer it from the partial index
    ix_deliveries_open in every plan, a prepared statement's generic plan included (a bound
    status cannot be matched to the index's predicate, and the search becomes a walk over
    every row ever sent)."""
    return Delivery.status == literal(status, Delivery.status.type, literal_execute=True)


# ---- recovery: sends that a dead process left in flight -------------------------------------


async def mark_interrupted(
    session_factory: SessionFactory, *, now: datetime, lease: timedelta
) -> list[tuple[int, int, str]]:
    """Turn SENDING rows older than `lease` into UNCERTAIN; returns (chat, row id, kind) each."""
    async with session_factory.begin() as session:
        rows = list(
            await session.execute(
                select(Delivery.id, Chat.telegram_id, Delivery.kind)
                .join(Chat, Chat.id == Delivery.chat_id)
                .where(in_state(DeliveryStatus.SENDING), Delivery.updated_at < now - lease)
            )
        )
        if rows:
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.id.in_([row[0] for row in rows]),
                    in_state(DeliveryStatus.SENDING),
                )
                .values(
                    status=DeliveryStatus.UNCERTAIN,
                    error=f"{INTERRUPTED}: may or may not have arrived; not resent",
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
    for row_id, telegram_id, kind in rows:
        log.warning(
            "delivery %s (%s) to chat %s was interrupted mid-send: marked uncertain, not resent",
            row_id,
            kind,
            telegram_id,
        )
    return [(telegram_id, row_id, str(kind)) for row_id, telegram_id, kind in rows]


# ---- sending ----------------------------------------------------------------------------------


def digest_renderer(per_section: int) -> Renderer:
    """Digest rows rendered in batches by one DigestBuilder (the chats' sections as they are
    now); make one per round so that the window's stories are read once."""
    builder = DigestBuilder(per_section=per_section)

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
        built = await builder.build(session, requests)
        rendered = {
            row.id: with_controls(built.get(chat.id, []), language=chat.language)
            for row, chat in pairs
        }
        forums = [(row, chat) for row, chat in pairs if chat.is_forum and rendered[row.id]]
        if forums:
            rendered |= await _forum_digests(session, builder, forums)
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


async def pending_ids(
    session_factory: SessionFactory,
    *,
    now: datetime,
    kind: DeliveryKind | None = None,
    article_id: int | None = None,
    due_only: bool = True,
    after: int | None = None,
    limit: int | None = None,
) -> list[int]:
    """Every PENDING row that may be sent now (optionally of one kind or one breaking story);
    with due_only=False also those still waiting out a flood limit. In id order: `after` and
    `limit` read them a page at a time."""
    query = select(Delivery.id).where(in_state(DeliveryStatus.PENDING))
    if after is not None:
        query = query.where(Delivery.id > after)
    if limit is not None:
        query = query.limit(limit)
    if due_only:
        query = query.where(or_(Delivery.not_before.is_(None), Delivery.not_before <= now))
    if kind is not None:
        query = query.where(Delivery.kind == kind)
    if article_id is not None:
        query = query.where(Delivery.article_id == article_id)
    async with session_factory() as session:
        return list(await session.scalars(query.order_by(Delivery.id)))


async def queue_depth(session_factory: SessionFactory) -> dict[DeliveryKind, int]:
    """PENDING rows by kind: what is waiting to be sent (flood-delayed ones included)."""
    async with session_factory() as session:
        counts = dict(
            (kind, int(count))
            for kind, count in await session.execute(
                select(Delivery.kind, func.count())
                .where(in_state(DeliveryStatus.PENDING))
                .group_by(Delivery.kind)
            )
        )
    return {kind: counts.get(kind, 0) for kind in DeliveryKind}


Progress = Callable[[RoundReport], Awaitable[None]]


async def deliver(
    session_factory: SessionFactory,
    sender: Sender,
    ids: Sequence[int],
    *,
    now: Callable[[], datetime],
    config: DeliveryConfig,
    render: Renderer | None = None,
    priority: SendPriority = SendPriority.BULK,
    progress: Progress | None = None,
    stopping: asyncio.Event | None = None,
) -> RoundReport:
    """Send the PENDING rows `ids`, `config.workers` batches at a time; one chat never stops it.

    Each worker claims `claim_batch` rows (they stay PENDING, held for `claim_lease`),
    renders them and hands their sends to the sender `batch` at a time. A row becomes
    SENDING only when its request leaves (past the rate limiter and the wait for an HTTP
    connection), and its outcome is written as soon as the answer comes back, both through
    one `_Journal` that groups the writes of concurrent sends into one transaction.
    Once `stopping` is set, no batch is claimed and sends still waiting for their turn are
    withdrawn: their rows are left PENDING, free for anyone at once.
    """
    report = RoundReport()
    if render is None:
        render = digest_renderer(config.per_section)
    queue: asyncio.Queue[list[int]] = asyncio.Queue()
    claim_size = max(config.batch, config.claim_batch or config.batch)
    for start in range(0, len(ids), claim_size):
        queue.put_nowait(list(ids[start : start + claim_size]))
    journal = _Journal(session_factory, now=now, config=config, report=report)

    def halted() -> bool:
        """The process is stopping, or the database is away: nothing more leaves."""
        return (stopping is not None and stopping.is_set()) or journal.failed

    async def claim_next() -> list[_ClaimedSend] | None:
        """The next batch, claimed and rendered; None when there is none left, the round is
        stopping, or the database is away (the rest then waits for a later tick)."""
        if halted():
            return None
        try:
            batch = queue.get_nowait()
        except asyncio.QueueEmpty:
            return None
        try:
            async with session_factory.begin() as session:
                jobs = await _claim(
                    session,
                    batch,
                    moment=now(),
                    render=render,
                    report=report,
                    claim=journal.claim,
                    lease=config.claim_lease,
                )
        except SQLAlchemyError as exc:
            log.warning("claiming a batch failed (%s): the rest waits for a later tick", exc)
            report.errors.append(f"database: {exc}"[:500])
            return None
        report.transactions += 1
        return jobs

    def withdraw(jobs: Sequence[_ClaimedSend]) -> None:
        """Claimed, never sent: free them at once (or when the database is back)."""
        why = "database unavailable" if journal.failed else "stopping"
        for job in jobs:
            journal.record(job, SendResult(Outcome.WITHDRAWN, error=why))

    async def worker() -> None:
        jobs = await claim_next()
        while jobs is not None:
            # The next batch is claimed and rendered while this one is sent: the database's
            # work stays off the sending's path. Otherwise the workers, which go through the
            # rate limiter at one pace, all reach their next claim together and nothing is
            # sent meanwhile (a pause that a limit counted per second never gives back).
            upcoming = asyncio.create_task(claim_next())
            try:
                for start in range(0, len(jobs), config.batch):
                    if halted():
                        withdraw(jobs[start:])
                        break
                    await _send_batch(
                        session_factory,
                        sender,
                        jobs[start : start + config.batch],
                        journal,
                        priority,
                        stopping,
                    )
                if progress is not None:
                    try:
                        await progress(report)
                    except Exception:  # showing progress never stops the sending
                        log.warning("reporting progress failed", exc_info=True)
            except BaseException:
                upcoming.cancel()
                with contextlib.suppress(BaseException):
                    claimed = await upcoming
                    if claimed:
                        withdraw(claimed)
                raise
            jobs = await upcoming
            if jobs and halted():
                withdraw(jobs)
                return

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, config.workers))))
    finally:
        await journal.close()
    return report


class _Stage(enum.Enum):
    QUEUED = "queued"  # claimed; its request waits for its turn (nothing left yet)
    RELEASING = "releasing"  # its turn came: being marked SENDING
    ON_WIRE = "on_wire"  # marked SENDING: its request went out (or is going)
    REFUSED = "refused"  # could not be marked SENDING: someone else's now, or no database


@dataclass
class _ClaimedSend:
    """A delivery row this worker claimed, with the texts to send."""

    row_id: int
    chat_db_id: int
    telegram_id: int
    texts: list[Part]
    done_ids: tuple[int, ...]  # message ids of parts sent by an earlier attempt
    attempts: int
    stage: _Stage = _Stage.QUEUED


async def _send_batch(
    session_factory: SessionFactory,
    sender: Sender,
    jobs: list[_ClaimedSend],
    journal: _Journal,
    priority: SendPriority,
    stopping: asyncio.Event | None,
) -> None:
    """Send a claimed batch concurrently; when the process starts stopping, withdraw the
    sends still waiting for their turn (their rows stay PENDING)."""
    sends = [
        asyncio.create_task(_send_one(session_factory, sender, job, journal, priority=priority))
        for job in jobs
    ]
    stop = asyncio.create_task(stopping.wait()) if stopping is not None else None
    try:
        every = asyncio.gather(*sends, return_exceptions=True)
        if stop is not None:
            watched: list[asyncio.Future[Any]] = [every, stop]
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            for send, job in zip(sends, jobs, strict=True):
                if job.stage is _Stage.QUEUED:
                    send.cancel()  # still waiting for its turn: it never leaves
        await every
        for send, job in zip(sends, jobs, strict=True):
            if send.cancelled():
                journal.record(job, SendResult(Outcome.WITHDRAWN, error="stopping"))
    finally:
        for send in sends:
            send.cancel()  # does anything only when this worker itself is cancelled
        if stop is not None:
            stop.cancel()


async def _send_one(
    session_factory: SessionFactory,
    sender: Sender,
    job: _ClaimedSend,
    journal: _Journal,
    *,
    priority: SendPriority,
) -> None:
    async def before_send() -> bool:
        return await journal.release(job)

    try:
        result = await sender.send(
            job.telegram_id, job.texts, priority=priority, before_send=before_send
        )
        if result.outcome is Outcome.MIGRATED and result.migrate_to is not None:
            await _move_chat(session_factory, job, result.migrate_to)
            sent_before = result.message_ids
            retry = await sender.send(
                job.telegram_id,
                job.texts[len(sent_before) :],
                priority=priority,
                before_send=before_send,
            )
            result = SendResult(
                retry.outcome,
                sent_before + retry.message_ids,
                retry.migrate_to,
                retry.retry_after,
                retry.error,
                retry.media or result.media,
            )
    except Exception as exc:  # one bad subscriber never stops a run
        log.exception("sending to chat %s failed unexpectedly", job.telegram_id)
        result = SendResult(Outcome.FAILED, error=f"{type(exc).__name__}: {exc}"[:500])
    if result.topic_problems:
        await _record_topic_problems(
            session_factory, job, result.topic_problems, now=journal.moment()
        )
    journal.record(job, result)


async def _record_topic_problems(
    session_factory: SessionFactory,
    job: _ClaimedSend,
    problems: Sequence[TopicProblem],
    *,
    now: datetime,
) -> None:
    """Deleted topics are forgotten and closed ones marked: the parts meant for them went to
    the General topic, and later deliveries go there (or to a new topic) at once."""
    log.info("chat %s: topics refused: %s", job.telegram_id, problems)
    try:
        async with session_factory.begin() as session:
            await record_problems(session, job.chat_db_id, problems, now=now)
    except SQLAlchemyError as exc:  # the next send meets the same answer and tries again
        log.warning("chat %s: could not record topic problems: %s", job.telegram_id, exc)


async def _move_chat(session_factory: SessionFactory, job: _ClaimedSend, new_id: int) -> None:
    """A group was upgraded to a supergroup: follow it to its new id."""
    log.info("chat %s migrated to %s", job.telegram_id, new_id)
    async with session_factory.begin() as session:
        clash = await session.scalar(select(Chat).where(Chat.telegram_id == new_id))
        if clash is not None and clash.id != job.chat_db_id:
            await session.delete(
                clash
            )  # the new id registered itself meanwhile: keep the old settings
            await session.flush()
        await session.execute(
            update(Chat)
            .where(Chat.id == job.chat_db_id)
            .values(telegram_id=new_id, kind=ChatKind.SUPERGROUP)
            .execution_options(synchronize_session=False)
        )
    job.telegram_id = new_id


async def _claim(
    session: AsyncSession,
    ids: list[int],
    *,
    moment: datetime,
    render: Renderer,
    report: RoundReport,
    claim: str,
    lease: timedelta,
) -> list[_ClaimedSend]:
    """Render the batch's free PENDING rows and claim the ones with something to say: they
    stay PENDING, held by `claim` until `lease` is over."""
    free = (
        Delivery.status == DeliveryStatus.PENDING,
        or_(Delivery.not_before.is_(None), Delivery.not_before <= moment),
    )
    rows = list(
        await session.execute(
            select(Delivery, Chat)
            .join(Chat, Chat.id == Delivery.chat_id)
            .where(Delivery.id.in_(ids), *free)
        )
    )
    report.lost_race += len(ids) - len(rows)
    jobs: list[_ClaimedSend] = []
    empty: list[int] = []
    gone = [row.id for row, chat in rows if not chat.active]
    live = [(row, chat) for row, chat in rows if chat.active]
    rendered = await render(session, live) if live else {}
    for row, chat in live:
        texts = rendered.get(row.id, [])
        done = _parse_ids(row.message_ids)
        if not texts:
            empty.append(row.id)
            continue
        jobs.append(
            _ClaimedSend(row.id, chat.id, chat.telegram_id, texts[len(done) :], done, row.attempts)
        )
    if empty:
        report.empty += await _set_status(session, empty, DeliveryStatus.EMPTY, moment)
    if gone:
        report.blocked += await _set_status(
            session, gone, DeliveryStatus.BLOCKED, moment, error="chat is inactive"
        )
    if not jobs:
        return jobs
    # claimed in the transaction that read them: of two workers only one wins
    claimed = await session.execute(
        update(Delivery)
        .where(Delivery.id.in_([job.row_id for job in jobs]), *free)
        .values(claimed_by=claim, not_before=moment + lease, updated_at=moment)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    )
    mine = set(claimed.scalars())
    report.lost_race += len(jobs) - len(mine)
    return [job for job in jobs if job.row_id in mine]


class _Journal:
    """One deliver() call's writes while it sends: rows moved to SENDING right before their
    request leaves, and outcomes as they come back.

    Writes queue here and one task flushes them, all that queued meanwhile in one
    transaction: at 30 messages/s that is a transaction per send or two, and under a faster
    flow the transactions grow instead of multiplying. A release waits for its flush (the
    row must be SENDING before its request may leave); an outcome does not. If the database
    fails, waiting releases are refused at once (those requests never leave, and their rows
    stay PENDING for a later attempt) and outcomes are written again with a growing pause, up
    to `WRITE_TRIES` times; after that they are dropped with an ERROR, and their rows, left
    SENDING, are reported uncertain once their lease is over.
    """

    WRITE_TRIES = 8
    # Outcomes alone may wait `config.outcome_delay` to be written together: one statement
    # for many answers instead of one each (a fast broadcast's answers come back one by
    # one). A crash within that moment leaves their rows SENDING, reported uncertain after
    # the lease: never resent.
    OUTCOME_BATCH = 50
    # Releases don't wait for more to gather: a paid batch leaves the rate limiter together
    # anyway, and each millisecond waited here is a millisecond every request waits (5 ms
    # cost a push with no limits 40% of its rate on PostgreSQL).

    def __init__(
        self,
        sessions: SessionFactory,
        *,
        now: Callable[[], datetime],
        config: DeliveryConfig,
        report: RoundReport,
    ) -> None:
        self.claim = uuid.uuid4().hex
        self._sessions = sessions
        self._now = now
        self._config = config
        self._report = report
        self._releases: list[tuple[_ClaimedSend, asyncio.Future[bool]]] = []
        self._outcomes: list[tuple[_ClaimedSend, SendResult]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._later: asyncio.TimerHandle | None = None  # a flush of waiting outcomes, due
        self._closing = False
        self._autocommit = False
        self._conn: AsyncConnection | None = None
        # a write failed (the database is away): claimed rows not sent yet wait for a later
        # tick, as when a claim fails
        self.failed = False

    def moment(self) -> datetime:
        """Now, by the engine's clock."""
        return self._now()

    async def release(self, job: _ClaimedSend) -> bool:
        """Move the job's row to SENDING now; False if it is not ours to send any more."""
        if job.stage is _Stage.ON_WIRE:
            return True  # a later part, or a retry of a request that certainly never arrived
        if job.stage is not _Stage.QUEUED:
            return False
        job.stage = _Stage.RELEASING
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._releases.append((job, future))
        self._wake()
        won = await future
        job.stage = _Stage.ON_WIRE if won else _Stage.REFUSED
        return won

    def record(self, job: _ClaimedSend, result: SendResult) -> None:
        """Write a send's outcome soon, grouped with others: with the next release, once
        `OUTCOME_BATCH` are waiting, or `config.outcome_delay` after the first, whichever is
        first."""
        self._outcomes.append((job, result))
        if len(self._outcomes) >= self.OUTCOME_BATCH or self._config.outcome_delay <= 0:
            self._wake()
        else:
            self._arm()

    async def close(self) -> None:
        """Wait until everything queued is written (or given up)."""
        self._closing = True
        if self._outcomes or self._releases:
            self._wake()
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        await self._disconnect()

    async def _connection(self) -> AsyncConnection:
        """One connection of its own for all the flushes (a plain connection, not a session:
        the engine flushes many times a second, and each must cost little). On PostgreSQL it
        autocommits: each statement stands alone (marking rows SENDING needs nothing else to
        be atomic with it, nor does recording outcomes), so a flush costs one round trip per
        statement, with no BEGIN and COMMIT around them. SQLite keeps its transactions (a
        statement with RETURNING holds SQLite's write lock until its cursor is done with)."""
        if self._conn is None:
            engine = self._sessions.kw["bind"]
            assert isinstance(engine, AsyncEngine)
            connection = await engine.connect()
            self._autocommit = engine.dialect.name == "postgresql"
            if self._autocommit:
                connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            self._conn = connection
        return self._conn

    def _transaction(
        self, connection: AsyncConnection
    ) -> contextlib.AbstractAsyncContextManager[Any]:
        """A transaction around one step of a flush, unless the connection autocommits."""
        return contextlib.nullcontext() if self._autocommit else connection.begin()

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a dead connection is gone either way
                await conn.close()

    def _arm(self) -> None:
        """Flush the waiting outcomes after the delay, unless something flushes first."""
        if self._later is None and not self._closing:
            delay = self._config.outcome_delay
            self._later = asyncio.get_running_loop().call_later(delay, self._wake)

    def _wake(self) -> None:
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        failures = 0
        first = True  # whatever woke this flush, it writes every outcome waiting
        while self._releases or (self._outcomes and (first or failures or self._outcomes_due())):
            first = False
            releases, self._releases = self._releases, []
            outcomes, self._outcomes = self._outcomes, []
            tally = RoundReport()
            marked = False
            try:
                connection = await self._connection()
                async with self._transaction(connection):
                    won = await self._mark_sending(connection, [job for job, _ in releases])
                marked = True
                # SENDING is written: these requests leave now, before the outcomes' write
                for job, future in releases:
                    if not future.done():
                        future.set_result(job.row_id in won)
                if outcomes:
                    async with self._transaction(connection):
                        await self._write(connection, outcomes, tally)
            except Exception as exc:  # the database is away: refuse sends, keep outcomes
                await self._disconnect()
                if not self.failed:
                    self.failed = True
                    self._report.errors.append(f"database: {exc}"[:500])
                if not marked:  # else they are SENDING already, and have left
                    for _job, future in releases:
                        if not future.done():
                            future.set_result(False)
                failures += 1
                if failures >= self.WRITE_TRIES:
                    log.error(
                        "could not record %d sends (%s): their rows will be reported "
                        "uncertain when their lease is over",
                        len(outcomes),
                        exc,
                    )
                    failures = 0
                    continue
                log.warning("recording sends failed (%s); trying again", exc)
                self._outcomes[:0] = outcomes
                await asyncio.sleep(min(0.25 * 2**failures, 5.0))
                continue
            failures = 0
            tally.transactions += 1
            self._report.add(tally)
        if self._outcomes:
            self._arm()

    def _outcomes_due(self) -> bool:
        return (
            self._closing
            or len(self._outcomes) >= self.OUTCOME_BATCH
            or self._config.outcome_delay <= 0
        )

    async def _mark_sending(
        self, connection: AsyncConnection, jobs: list[_ClaimedSend]
    ) -> set[int]:
        if not jobs:
            return set()
        moved = await connection.execute(
            _MARK_SENDING,
            {
                "ids": [job.row_id for job in jobs],
                "claim": self.claim,
                "sending": DeliveryStatus.SENDING,
                "moment": self._now(),
            },
        )
        won = set(moved.scalars())
        self._report.lost_race += len(jobs) - len(won)
        return won

    async def _write(
        self,
        connection: AsyncConnection,
        outcomes: list[tuple[_ClaimedSend, SendResult]],
        tally: RoundReport,
    ) -> None:
        """Each send's outcome; chats that blocked the bot are deactivated."""
        moment = self._now()
        updates = [
            _outcome(job, result, moment=moment, config=self._config, report=tally)
            | {"claim": self.claim}
            for job, result in outcomes
        ]
        gone = [
            {
                "chat_row": job.chat_db_id,
                "reason": (result.error or "blocked")[:200],
                "updated_at": moment,
            }
            for job, result in outcomes
            if result.outcome is Outcome.BLOCKED
        ]
        if connection.dialect.name == "postgresql":
            await connection.execute(_RECORD_MANY_PG, _columns(updates, moment, self.claim))
        else:
            await connection.execute(_RECORD, updates)
        if gone:
            await connection.execute(_DEACTIVATE, gone)


def _columns(updates: list[dict[str, object]], moment: datetime, claim: str) -> dict[str, object]:
    """The outcomes as one array per column, for `_RECORD_MANY_PG`."""
    return {
        "ids": [u["row_id"] for u in updates],
        "statuses": [str(u["status"]) for u in updates],
        "message_ids": [u["message_ids"] for u in updates],
        "not_before": [u["not_before"] for u in updates],
        "errors": [u["error"] for u in updates],
        "media": [u["media"] for u in updates],
        "updated_at": moment,
        "claim": claim,
    }


_RECORD_MANY_PG = text(
    """
    UPDATE deliveries AS d
    SET status = u.status, message_ids = u.message_ids, not_before = u.not_before,
        error = u.error, media = u.media, updated_at = :updated_at, claimed_by = NULL
    FROM unnest(
        CAST(:ids AS INTEGER[]), CAST(:statuses AS VARCHAR[]), CAST(:message_ids AS VARCHAR[]),
        CAST(:not_before AS TIMESTAMPTZ[]), CAST(:errors AS VARCHAR[]), CAST(:media AS VARCHAR[])
    ) AS u(id, status, message_ids, not_before, error, media)
    WHERE d.id = u.id AND d.claimed_by = :claim
    """
)
"""`_RECORD` for a whole flush in one statement on PostgreSQL: the outcomes travel as arrays
(one round trip and one plan, however many rows), not as one execution per row."""


_DEACTIVATE = (
    update(_chats)
    .where(_chats.c.id == bindparam("chat_row"))
    .values(
        active=False,
        deactivated_reason=bindparam("reason"),
        updated_at=bindparam("updated_at"),
    )
)
"""Chats that blocked the bot (or are gone) stop getting anything."""

_MARK_SENDING = (
    update(_deliveries)
    .where(
        _deliveries.c.id.in_(bindparam("ids", expanding=True)),
        _deliveries.c.status == DeliveryStatus.PENDING,
        _deliveries.c.claimed_by == bindparam("claim"),
    )
    .values(
        status=bindparam("sending"),
        attempts=_deliveries.c.attempts + 1,
        not_before=None,
        updated_at=bindparam("moment"),
    )
    .returning(_deliveries.c.id)
)
"""PENDING -> SENDING for the rows whose requests leave now, if this claim still holds them:
one plain statement, compiled once (the engine sends several each second)."""

_RECORD = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("row_id"), _deliveries.c.claimed_by == bindparam("claim"))
    .values(
        status=bindparam("status"),
        updated_at=bindparam("updated_at"),
        message_ids=bindparam("message_ids"),
        not_before=bindparam("not_before"),
        error=bindparam("error"),
        media=bindparam("media"),
        claimed_by=None,
    )
)
"""One statement, executed for many rows at once, that records each send's outcome; only
the claim that sent a row may record it."""


def _outcome(
    job: _ClaimedSend,
    result: SendResult,
    *,
    moment: datetime,
    config: DeliveryConfig,
    report: RoundReport,
) -> dict[str, object]:
    """The delivery row's new values for a send's outcome (and the log line it deserves)."""
    values: dict[str, object] = {
        "row_id": job.row_id,
        "updated_at": moment,
        "message_ids": _format_ids(job.done_ids + result.message_ids),
        "not_before": None,
        "error": result.error[:500] if result.error else None,
        "media": result.media,
    }
    if result.outcome is Outcome.WITHDRAWN or job.stage is _Stage.REFUSED:
        # never left: free for anyone at once (a row someone else holds is not ours to write)
        values["status"] = DeliveryStatus.PENDING
        if job.stage is _Stage.ON_WIRE:  # earlier parts did go out: send the rest later
            report.retry_later += 1
    elif result.outcome is Outcome.SENT:
        values["status"] = DeliveryStatus.SENT
        report.sent += 1
    elif result.outcome is Outcome.BLOCKED:
        values["status"] = DeliveryStatus.BLOCKED
        log.info("chat %s blocked the bot or is gone: deactivated", job.telegram_id)
        report.blocked += 1
    elif result.outcome is Outcome.UNCERTAIN:
        values["status"] = DeliveryStatus.UNCERTAIN
        log.warning(
            "delivery %s to chat %s may or may not have arrived: marked uncertain, not resent",
            job.row_id,
            job.telegram_id,
        )
        report.uncertain += 1
    elif result.outcome is Outcome.RETRY_LATER and job.attempts + 1 < config.max_attempts:
        wait = timedelta(seconds=result.retry_after or 1)
        values |= {"status": DeliveryStatus.PENDING, "not_before": moment + wait}
        log.warning("chat %s: flood limit, retrying after %s", job.telegram_id, wait)
        report.retry_later += 1
    else:
        values["status"] = DeliveryStatus.FAILED
        values["error"] = (result.error or "failed")[:500]
        log.error("delivery %s to chat %s failed: %s", job.row_id, job.telegram_id, result.error)
        report.failed += 1
        report.errors.append(f"chat {job.telegram_id}: {result.error}")
    return values


async def _set_status(
    session: AsyncSession,
    ids: list[int],
    status: DeliveryStatus,
    moment: datetime,
    *,
    error: str | None = None,
) -> int:
    result: CursorResult[tuple[()]] = await session.execute(  # type: ignore[assignment]
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.PENDING)
        .values(status=status, updated_at=moment, error=error)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


def _parse_ids(raw: str | None) -> tuple[int, ...]:
    if not raw:
        return ()
    return tuple(int(part) for part in raw.split(",") if part.strip().isdigit())


def _format_ids(ids: tuple[int, ...]) -> str | None:
    return ",".join(str(i) for i in ids) or None


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


async def prepare_topics(
    session_factory: SessionFactory,
    maker: TopicMaker,
    *,
    now: datetime,
    kind: DeliveryKind,
    article_id: int | None = None,
) -> int:
    """Create the missing topics of the forum chats with PENDING rows of this kind (of one
    story for breaking news). Forums are few: the query reads them, not the rows' ids."""
    query = (
        select(Delivery.chat_id)
        .join(Chat, Chat.id == Delivery.chat_id)
        .where(
            Chat.is_forum.is_(True),
            Chat.active.is_(True),
            in_state(DeliveryStatus.PENDING),
            Delivery.kind == kind,
        )
        .distinct()
    )
    if article_id is not None:
        query = query.where(Delivery.article_id == article_id)
    async with session_factory() as session:
        chats = list(await session.scalars(query))
    if not chats:
        return 0
    return await ensure_topics(session_factory, maker, chats, now=now)
