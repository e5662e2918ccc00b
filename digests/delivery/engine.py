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

The engine knows nothing of what it sends: each caller hands `deliver()` its `Renderer`
(digests/digest/rounds.py renders digests, digests/newsroom/push.py a breaking story). Its
shapes and ports are in ports.py, its policy in config.py, its writes while sending in
journal.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Table,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from digests.db import SessionFactory
from digests.delivery.config import DeliveryConfig
from digests.delivery.journal import ClaimedSend, Journal, SendStage
from digests.delivery.ports import (
    Outcome,
    Renderer,
    RoundReport,
    Sender,
    SendPriority,
    SendResult,
)
from digests.models import Chat, ChatKind, Delivery, DeliveryKind, DeliveryStatus
from digests.readers.topics import TopicMaker, TopicProblem, ensure_topics, record_problems

log = logging.getLogger(__name__)


INTERRUPTED = "interrupted mid-send"
"""How an UNCERTAIN row's error begins when its process died while sending it."""


_deliveries = cast(Table, Delivery.__table__)


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
    render: Renderer,
    now: Callable[[], datetime],
    config: DeliveryConfig,
    priority: SendPriority = SendPriority.BULK,
    progress: Progress | None = None,
    stopping: asyncio.Event | None = None,
) -> RoundReport:
    """Send the PENDING rows `ids`, `config.workers` batches at a time; one chat never stops it.

    Each worker claims `claim_batch` rows (they stay PENDING, held for `claim_lease`),
    renders them with `render` and hands their sends to the sender `batch` at a time. A row
    becomes SENDING only when its request leaves (past the rate limiter and the wait for an
    HTTP connection), and its outcome is written as soon as the answer comes back, both
    through one `Journal` (journal.py) that groups the writes of concurrent sends into one
    transaction.
    Once `stopping` is set, no batch is claimed and sends still waiting for their turn are
    withdrawn: their rows are left PENDING, free for anyone at once.
    """
    report = RoundReport()
    queue: asyncio.Queue[list[int]] = asyncio.Queue()
    claim_size = max(config.batch, config.claim_batch or config.batch)
    for start in range(0, len(ids), claim_size):
        queue.put_nowait(list(ids[start : start + claim_size]))
    journal = Journal(session_factory, now=now, config=config, report=report)

    def halted() -> bool:
        """The process is stopping, or the database is away: nothing more leaves."""
        return (stopping is not None and stopping.is_set()) or journal.failed

    async def claim_next() -> list[ClaimedSend] | None:
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

    def withdraw(jobs: Sequence[ClaimedSend]) -> None:
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


async def _send_batch(
    session_factory: SessionFactory,
    sender: Sender,
    jobs: list[ClaimedSend],
    journal: Journal,
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
                if job.stage is SendStage.QUEUED:
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
    job: ClaimedSend,
    journal: Journal,
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
    job: ClaimedSend,
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


async def _move_chat(session_factory: SessionFactory, job: ClaimedSend, new_id: int) -> None:
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
) -> list[ClaimedSend]:
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
    jobs: list[ClaimedSend] = []
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
            ClaimedSend(row.id, chat.id, chat.telegram_id, texts[len(done) :], done, row.attempts)
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
