"""The send engine's write journal: one `deliver()` call's writes while it sends, grouped.

A row moves PENDING -> SENDING right before its request leaves, and its outcome is written
as soon as the answer comes back; the `Journal` queues both and one task writes all that
queued meanwhile in one transaction, with the few plain statements below (compiled once:
the engine writes several times a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from digests.db import SessionFactory
from digests.delivery.config import DeliveryConfig
from digests.delivery.ports import Outcome, Part, RoundReport, SendResult
from digests.models import Chat, Delivery, DeliveryStatus

log = logging.getLogger(__name__)

_chats = cast(Table, Chat.__table__)
_deliveries = cast(Table, Delivery.__table__)


class SendStage(enum.Enum):
    QUEUED = "queued"  # claimed; its request waits for its turn (nothing left yet)
    RELEASING = "releasing"  # its turn came: being marked SENDING
    ON_WIRE = "on_wire"  # marked SENDING: its request went out (or is going)
    REFUSED = "refused"  # could not be marked SENDING: someone else's now, or no database


@dataclass
class ClaimedSend:
    """A delivery row this worker claimed, with the texts to send."""

    row_id: int
    chat_db_id: int
    telegram_id: int
    texts: list[Part]
    done_ids: tuple[int, ...]  # message ids of parts sent by an earlier attempt
    attempts: int
    stage: SendStage = SendStage.QUEUED


class Journal:
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
        self._releases: list[tuple[ClaimedSend, asyncio.Future[bool]]] = []
        self._outcomes: list[tuple[ClaimedSend, SendResult]] = []
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

    async def release(self, job: ClaimedSend) -> bool:
        """Move the job's row to SENDING now; False if it is not ours to send any more."""
        if job.stage is SendStage.ON_WIRE:
            return True  # a later part, or a retry of a request that certainly never arrived
        if job.stage is not SendStage.QUEUED:
            return False
        job.stage = SendStage.RELEASING
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._releases.append((job, future))
        self._wake()
        won = await future
        job.stage = SendStage.ON_WIRE if won else SendStage.REFUSED
        return won

    def record(self, job: ClaimedSend, result: SendResult) -> None:
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

    async def _mark_sending(self, connection: AsyncConnection, jobs: list[ClaimedSend]) -> set[int]:
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
        outcomes: list[tuple[ClaimedSend, SendResult]],
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
    job: ClaimedSend,
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
    if result.outcome is Outcome.WITHDRAWN or job.stage is SendStage.REFUSED:
        # never left: free for anyone at once (a row someone else holds is not ours to write)
        values["status"] = DeliveryStatus.PENDING
        if job.stage is SendStage.ON_WIRE:  # earlier parts did go out: send the rest later
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


def _format_ids(ids: tuple[int, ...]) -> str | None:
    return ",".join(str(i) for i in ids) or None
