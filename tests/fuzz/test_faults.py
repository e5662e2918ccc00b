"""The fault suite: the real delivery engine against a fake Bot API that misbehaves.

A digest round and a breaking push go out at the same time to a few hundred readers, through
`TelegramSender` on a PTB bot built by `build_application`, over loopback HTTP to the fake
Bot API, while that API answers 502s, loses answers (the connection dropped, or held open
until the client times out) and refuses with 429 and an hour's retry_after; or while the
database goes away for a few seconds in the middle of the round.

Afterwards the bot is left to recover the way it does in production: further digest ticks and
push resumes (the job queue's work) with the clock moving on, until no delivery row is left
PENDING or SENDING. Then, for every reader and each of the two messages:

- nobody received it twice (counted from what the fake Telegram stored);
- whoever did not receive it has its row UNCERTAIN: a reader with neither is a loss;
- UNCERTAIN rows are requests whose answer was lost: with network faults, exactly chats whose
  answer the fake withheld; with a database cut, at most those plus the sends in flight when
  the database went away (their outcome could not be written).

Counts go to `fuzz_counts["faults"]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_application
from bot.context import NewsApp
from bot.transport.http import LeanRequest
from bot.transport.sender import TelegramSender
from digests.db import SessionFactory, make_engine, make_session_factory
from digests.delivery.config import DeliveryConfig, delivery_config
from digests.digest.rounds import run_digest_round
from digests.models import (
    Article,
    Chat,
    ChatKind,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Section,
    Subscription,
)
from digests.newsroom import breaking
from digests.newsroom.push import PushOutcome, PushRunner
from fakebotapi.emulator import BotApiEmulator, NetworkFaults
from fakebotapi.server import FakeBotApiServer
from tests.conftest import _pg_execute
from tests.e2e.harness import e2e_settings
from tests.fuzz.conftest import fuzz_scale

NOW = datetime(2026, 11, 24, 8, 0, 30, tzinfo=UTC)  # the readers' 08:00 digest is due
READERS = 300
EDITOR = 900
DIGEST_STORY = "Harbour reopens after the storm"
BREAKING_STORY = "Levee breach upstream, evacuations ordered"
FLOOD_WAIT = 3600  # an hour: far beyond what the rate limiter sits through
READ_TIMEOUT = 1.0  # how long a "hang" holds a send before the client gives up
SETTLE_ROUNDS = 8
UNSETTLED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


async def seed(factory: SessionFactory, readers: list[int]) -> None:
    """A World story for the digest and readers who follow World, their digest due now."""
    async with factory.begin() as session:
        world = Section(slug="world", name="World", created_at=NOW - timedelta(days=2))
        session.add(world)
        session.add(
            Article(
                key="harbour",
                link="https://meridian.example/harbour",
                title=DIGEST_STORY,
                summary="Ships are moving again.",
                published_at=NOW - timedelta(hours=3),
                ingested_at=NOW - timedelta(hours=2),
                updated_at=NOW - timedelta(hours=2),
                sections=[world],
            )
        )
        await session.flush()
        for telegram_id in readers:
            chat = Chat(
                telegram_id=telegram_id,
                kind=ChatKind.PRIVATE,
                timezone="UTC",
                digest_time="08:00",
                next_digest_at=NOW - timedelta(seconds=30),
                alerts=True,
                active=True,
                created_at=NOW - timedelta(days=1),
                updated_at=NOW - timedelta(days=1),
            )
            session.add(chat)
            await session.flush()
            session.add(Subscription(chat_id=chat.id, section_id=world.id, created_at=NOW))


async def confirmed_push(factory: SessionFactory) -> int:
    """An editor's breaking story, drafted and confirmed (its delivery rows written)."""
    async with factory.begin() as session:
        draft = await breaking.draft_breaking(
            session,
            ["world", *BREAKING_STORY.split()],
            admin_id=EDITOR,
            admin_chat_id=EDITOR,
            now=NOW,
            default_section="General",
        )
        assert draft is not None and draft.audience == READERS
        assert await breaking.confirm(session, draft.push.id, now=NOW) is not None
        return draft.push.id


@dataclass
class Rig:
    """The bot, its database and the fake Telegram, wired as the product wires them."""

    server: FakeBotApiServer
    app: NewsApp
    engine: AsyncEngine
    sessions: SessionFactory
    config: DeliveryConfig
    clock: Clock
    runner: PushRunner
    push_id: int
    readers: list[int]

    @property
    def emulator(self) -> BotApiEmulator:
        return self.server.emulator

    async def round(self) -> list[Exception | str]:
        """One digest tick and one push resume, at the same time, as the job queue runs them;
        a tick that fails is logged by the job queue and the next one tries again. Returns
        what they raised or reported as errors."""
        sender = TelegramSender(self.app.bot, backoff=0.01, max_backoff=0.05)
        results = await asyncio.gather(
            run_digest_round(self.sessions, sender, now=self.clock, config=self.config),
            self.runner.run(self.push_id),
            return_exceptions=True,
        )
        failures: list[Exception | str] = []
        for result in results:
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                failures.append(result)
            else:  # the run went on and reported what it could not do
                report = result.report if isinstance(result, PushOutcome) else result
                failures.extend(report.errors if report is not None else ())
        return failures

    async def statuses(self) -> dict[tuple[int, DeliveryKind], DeliveryStatus]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Chat.telegram_id, Delivery.kind, Delivery.status).join(
                    Chat, Chat.id == Delivery.chat_id
                )
            )
            return {(chat, kind): status for chat, kind, status in rows}

    async def settle(self) -> dict[tuple[int, DeliveryKind], DeliveryStatus]:
        """Later ticks, the clock moving on (past the flood wait, then past the lease of
        whatever a failed round left SENDING), until no row waits; the faults are over."""
        for step in range(SETTLE_ROUNDS):
            statuses = await self.statuses()
            if not any(status in UNSETTLED for status in statuses.values()):
                return statuses
            self.clock.now += (
                timedelta(seconds=FLOOD_WAIT + 60) if step == 0 else timedelta(minutes=15)
            )
            await self.round()
        statuses = await self.statuses()
        left = Counter(str(s) for s in statuses.values() if s in UNSETTLED)
        raise AssertionError(f"the bot did not recover by itself: {left} rows still waiting")

    def received(self) -> dict[tuple[int, DeliveryKind], int]:
        """How many copies of each message each reader has, from what Telegram stored."""
        got: dict[tuple[int, DeliveryKind], int] = {}
        for reader in self.readers:
            texts = [m.text for m in self.emulator.messages(reader)]
            got[reader, DeliveryKind.DIGEST] = sum(DIGEST_STORY in t for t in texts)
            got[reader, DeliveryKind.BREAKING] = sum(BREAKING_STORY in t for t in texts)
            assert len(texts) == sum(got.get((reader, kind), 0) for kind in DeliveryKind), texts
        return got


@contextlib.asynccontextmanager
async def rig(server: FakeBotApiServer, db_url: str) -> AsyncIterator[Rig]:
    readers = list(range(50_001, 50_001 + READERS))
    for uid in [*readers, EDITOR]:
        server.emulator.add_user(uid, f"Reader {uid}", started=True)
    engine = make_engine(db_url)
    sessions = make_session_factory(engine)
    await seed(sessions, readers)
    push_id = await confirmed_push(sessions)
    settings = e2e_settings(server, db_url)
    # the product's transport, with a short read timeout: a held answer costs one second
    request = LeanRequest(read_timeout=READ_TIMEOUT, pool_timeout=30.0)
    app = build_application(settings, request=request, with_jobs=False)
    await app.initialize()
    clock = Clock()
    config = delivery_config(settings)
    sender = TelegramSender(app.bot, backoff=0.01, max_backoff=0.05)
    runner = PushRunner(sessions, sender, clock=clock, config=config)
    try:
        yield Rig(server, app, engine, sessions, config, clock, runner, push_id, readers)
    finally:
        await app.shutdown()
        await engine.dispose()


@dataclass(frozen=True)
class Verdict:
    duplicates: list[tuple[int, DeliveryKind]]
    lost: list[tuple[int, DeliveryKind, DeliveryStatus | None]]
    uncertain: list[tuple[int, DeliveryKind]]


def judge(
    statuses: dict[tuple[int, DeliveryKind], DeliveryStatus],
    received: dict[tuple[int, DeliveryKind], int],
) -> Verdict:
    duplicates = [key for key, copies in received.items() if copies > 1]
    lost = [
        (*key, statuses.get(key))
        for key, copies in received.items()
        if copies == 0 and statuses.get(key) is not DeliveryStatus.UNCERTAIN
    ]
    uncertain = [key for key, status in statuses.items() if status is DeliveryStatus.UNCERTAIN]
    return Verdict(duplicates, lost, uncertain)


def count(
    counts: Counter[str], verdict: Verdict, emulator: BotApiEmulator, *, cuts: int = 0
) -> None:
    counts["faults injected"] += (
        emulator.bad_gateways + emulator.too_many_requests + len(emulator.unanswered) + cuts
    )
    counts["duplicates"] += len(verdict.duplicates)
    counts["lost"] += len(verdict.lost)
    counts["uncertain"] += len(verdict.uncertain)


# ---- a lossy network ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(11, 11 + fuzz_scale()))
@pytest.mark.parametrize("mode", ["drop", "hang"])
async def test_a_round_and_a_push_through_a_lossy_network_reach_everyone_once(
    fake_api: FakeBotApiServer,
    db_url: str,
    mode: str,
    seed: int,
    fuzz_counts: defaultdict[str, Counter[str]],
) -> None:
    async with rig(fake_api, db_url) as bot:
        bot.emulator.set_faults(
            NetworkFaults(
                bad_gateway_rate=0.08,
                unanswered_rate=0.04,
                unanswered_mode="drop" if mode == "drop" else "hang",
                flood_rate=0.15,
                flood_retry_after=FLOOD_WAIT,
                seed=seed,
            )
        )
        await bot.round()  # the storm
        storm = (bot.emulator.bad_gateways, bot.emulator.too_many_requests)
        withheld = list(bot.emulator.unanswered)
        bot.emulator.set_faults(None)
        statuses = await bot.settle()
        verdict = judge(statuses, bot.received())
    count(fuzz_counts["faults"], verdict, bot.emulator)

    assert min(storm) > 0 and withheld, "the faults were not injected"
    assert verdict.duplicates == []
    assert verdict.lost == []
    # UNCERTAIN is exactly the sends whose answer the network lost, and nothing else
    assert sorted(chat for chat, _ in verdict.uncertain) == sorted(c for c, _ in withheld)
    assert Counter(statuses.values())[DeliveryStatus.SENT] == 2 * READERS - len(withheld)


# ---- the database goes away mid-round ------------------------------------------------------


class DatabaseCut:
    """Makes the bot's database unreachable for a while, then brings it back.

    PostgreSQL: new connections to the test database are refused (ALLOW_CONNECTIONS false)
    and every open one is ended with pg_terminate_backend, from an admin connection, as a
    failover or a restarted server would; then connections are allowed again.

    SQLite has no server to lose. Its equivalent is the file becoming unusable: while cut,
    every statement on the bot's engine fails with sqlite3's "disk I/O error", as it does when
    the disk or network mount under the file goes away; the connections stay open, and work
    again once the disk is back. (The hook sits on the engine the test builds, before the
    driver: the product's code above it sees exactly the error the driver would raise.)
    """

    def __init__(self, engine: AsyncEngine, db_url: str) -> None:
        self.engine = engine
        self.database = make_url(db_url).database or ""
        self.postgres = engine.dialect.name == "postgresql"
        self.down = False
        self.cuts = 0
        if not self.postgres:
            event.listen(engine.sync_engine, "before_cursor_execute", self._refuse)

    def _refuse(self, *_args: Any) -> None:
        if self.down:
            raise sqlite3.OperationalError("disk I/O error")

    async def cut(self) -> None:
        self.cuts += 1
        self.down = True
        if self.postgres:
            await _pg_execute(f'ALTER DATABASE "{self.database}" WITH ALLOW_CONNECTIONS false')
            await _pg_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{self.database}' AND pid <> pg_backend_pid()"
            )

    async def restore(self) -> None:
        if self.postgres and self.down:
            await _pg_execute(f'ALTER DATABASE "{self.database}" WITH ALLOW_CONNECTIONS true')
        self.down = False

    @contextlib.contextmanager
    def cleanup(self) -> Iterator[None]:
        try:
            yield
        finally:
            if not self.postgres:
                event.remove(self.engine.sync_engine, "before_cursor_execute", self._refuse)


CUT_AFTER = 80  # messages delivered before the database goes away
CUT_SECONDS = 2.0


async def test_a_database_cut_mid_round_loses_nothing_and_sends_nothing_twice(
    fake_api: FakeBotApiServer, db_url: str, fuzz_counts: defaultdict[str, Counter[str]]
) -> None:
    counts = fuzz_counts["faults"]
    async with rig(fake_api, db_url) as bot:
        outage = DatabaseCut(bot.engine, db_url)
        with outage.cleanup():
            # a few lost answers as well: the two kinds of doubt must not be confused
            bot.emulator.set_faults(NetworkFaults(unanswered_rate=0.02, seed=5))

            async def cut_mid_round() -> None:
                await bot.emulator.wait_for(
                    lambda: len(bot.emulator.sent_log) >= CUT_AFTER, timeout=60
                )
                await outage.cut()
                try:
                    await asyncio.sleep(CUT_SECONDS)  # how long the outage lasts
                finally:
                    await outage.restore()

            cutter = asyncio.create_task(cut_mid_round())
            failures = await bot.round()
            await cutter
            sent_when_restored = len(bot.emulator.sent_log)
            withheld = list(bot.emulator.unanswered)
            bot.emulator.set_faults(None)
            statuses = await bot.settle()
            verdict = judge(statuses, bot.received())
    count(counts, verdict, bot.emulator, cuts=outage.cuts)

    assert outage.cuts == 1 and sent_when_restored < 2 * READERS, "the cut came too late"
    assert failures, "the round never noticed the database was gone"
    assert verdict.duplicates == []
    assert verdict.lost == []
    # beyond the lost answers, only sends in flight when the database went away are in doubt:
    # each of the two runs (digest round, push) has at most batch * workers of them
    in_flight = 2 * bot.config.batch * bot.config.workers
    assert len(verdict.uncertain) <= len(withheld) + in_flight
    withheld_chats = {chat for chat, _ in withheld}
    assert withheld_chats <= {chat for chat, _ in verdict.uncertain}
