"""The measured scenarios. Each talks to a fake Bot API in another process and counts there.

Message counts, 429s and send times come from the server (what Telegram would have seen);
wall times from the client. Both clocks are `time.monotonic()` (one clock per machine on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot
from telegram.constants import ParseMode
from telegram.request import HTTPXRequest

from bench.fake_server import ServerProcess, Stats
from bench.seed import FIRST_TELEGRAM_ID, Seeded
from bot.app import build_application
from bot.context import NewsApp
from bot.ratelimit import PriorityRateLimiter
from bot.replies import NO_PREVIEW
from bot.sender import TelegramSender
from digests import breaking
from digests.breaking import PushRunner
from digests.buttons import PushChoice
from digests.db import SessionFactory
from digests.delivery import (
    DeliveryConfig,
    RoundReport,
    delivery_config,
    run_digest_round,
)
from digests.digest import DigestBuilder, DigestRequest
from digests.models import Chat, Delivery, DeliveryKind, DeliveryStatus
from digests.settings import Settings

POOL_SIZE = 256  # PTB's default for an Application's bot
BREAKING_WORDS = ["Earthquake", "hits", "the", "coast;", "rescue", "teams", "under", "way"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Integrity:
    """Server counts against what should have arrived, per chat."""

    expected_chats: int
    lost: int  # chats that got fewer messages than expected (0 for a breaking push)
    duplicated: int  # chats that got more than expected, including chats expecting none

    @classmethod
    def compare(cls, expected: dict[int, int], seen: dict[int, int]) -> Integrity:
        lost = sum(1 for chat, n in expected.items() if seen.get(chat, 0) < n)
        duplicated = sum(1 for chat, n in seen.items() if n > expected.get(chat, 0))
        return cls(len(expected), lost, duplicated)


@dataclass(frozen=True)
class Phase:
    """One measured run of sends."""

    messages: int
    seconds: float  # client wall time of the whole call
    too_many_requests: int
    first_send_after: float | None  # from the start of the call to the server's first send
    last_send_after: float | None  # ... to the server's last send
    send_span: float | None  # server's first to last send
    client_cpu: float  # this process's CPU seconds during the call
    server_cpu: float  # the fake server's CPU seconds during the call

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def span_rate(self) -> float | None:
        if not self.send_span:
            return None
        # n sends span n - 1 intervals
        return (self.messages - 1) / self.send_span

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"rate": self.rate, "span_rate": self.span_rate}


@dataclass
class Stopwatch:
    """Wall clock and this process's CPU time over a measured call."""

    wall: float
    cpu: float
    elapsed: float = 0.0
    cpu_used: float = 0.0

    @classmethod
    def start(cls) -> Stopwatch:
        return cls(time.monotonic(), time.process_time())

    def stop(self) -> None:
        self.elapsed = time.monotonic() - self.wall
        self.cpu_used = time.process_time() - self.cpu


def _phase(watch: Stopwatch, before: Stats, seen: Stats) -> Phase:
    """The figures of a call measured by `watch`, from server stats taken around it."""
    started = watch.wall
    return Phase(
        messages=seen.messages,
        seconds=watch.elapsed,
        too_many_requests=seen.too_many_requests - before.too_many_requests,
        first_send_after=seen.first - started if seen.first is not None else None,
        last_send_after=seen.last - started if seen.last is not None else None,
        send_span=seen.last - seen.first
        if seen.first is not None and seen.last is not None
        else None,
        client_cpu=watch.cpu_used,
        server_cpu=seen.cpu_seconds - before.cpu_seconds,
    )


def _report_json(report: RoundReport) -> dict[str, Any]:
    data = asdict(report)
    data["errors"] = report.errors[:5]
    return data


def product_settings(*, limited: bool, server: ServerProcess | None = None) -> Settings:
    """Settings as an operator would set them: Telegram's limits, or none (all 0)."""
    rate = {"send_rate_limit": 30, "private_chat_rate_limit": 1, "group_rate_limit_per_min": 20}
    if not limited:
        rate = dict.fromkeys(rate, 0)
    return Settings(
        telegram_bot_token=server.token if server else None,
        telegram_base_url=server.base_url if server else "http://127.0.0.1:9/bot",
        **rate,  # type: ignore[arg-type]
    )


def product_config(*, limited: bool) -> DeliveryConfig:
    """The engine's configuration exactly as `newsbot run` derives it from those settings."""
    return delivery_config(product_settings(limited=limited))


@contextlib.asynccontextmanager
async def engine_bot(server: ServerProcess, *, limited: bool) -> AsyncIterator[NewsApp]:
    """The bot exactly as the product builds it (`build_application`), limits from settings."""
    app = build_application(product_settings(limited=limited, server=server), with_jobs=False)
    await app.initialize()
    try:
        yield app
    finally:
        await app.shutdown()


def _plain_bot(server: ServerProcess) -> Bot:
    """PTB with nothing of ours: no limiter, no engine; the same HTTP pool size."""
    return Bot(
        server.token,
        base_url=server.base_url,
        request=HTTPXRequest(connection_pool_size=POOL_SIZE),
    )


async def _sent_digest_parts(
    session_factory: SessionFactory, *, created_since: datetime
) -> dict[int, int]:
    """Telegram chat id -> message parts the database records as sent, for digest rows."""
    async with session_factory() as session:
        rows = await session.execute(
            select(Chat.telegram_id, Delivery.message_ids)
            .join(Chat, Chat.id == Delivery.chat_id)
            .where(
                Delivery.kind == DeliveryKind.DIGEST,
                Delivery.status == DeliveryStatus.SENT,
                Delivery.created_at >= created_since,
            )
        )
        return {chat: len((ids or "").split(",")) for chat, ids in rows}


async def _sample_digest(session_factory: SessionFactory, *, now: datetime) -> str:
    """The first message of chat 1's digest: what the bare loop sends, for equal server work."""
    request = DigestRequest(1, now - timedelta(hours=24), now, "UTC")
    builder = DigestBuilder(per_section=DeliveryConfig().per_section)
    async with session_factory() as session:
        built = await builder.build(session, [request])
    return built[1][0]


async def _bare_sequential(bot: Bot, chats: Sequence[int], text: str) -> None:
    for chat in chats:
        await bot.send_message(
            chat, text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
        )


async def _bare_concurrent(bot: Bot, chats: Sequence[int], text: str, *, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(chat: int) -> None:
        async with gate:
            await bot.send_message(
                chat, text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW
            )

    await asyncio.gather(*(one(chat) for chat in chats))


async def _measure_bare(
    server: ServerProcess, chats: Sequence[int], text: str, *, concurrency: int | None
) -> Phase:
    async with _plain_bot(server) as bot:
        before = await server.stats()
        watch = Stopwatch.start()
        if concurrency is None:
            await _bare_sequential(bot, chats, text)
        else:
            await _bare_concurrent(bot, chats, text, concurrency=concurrency)
        watch.stop()
        seen = await server.stats(since=before.log_len)
    return _phase(watch, before, seen)


async def _timed_round(
    server: ServerProcess, session_factory: SessionFactory, *, config: DeliveryConfig, limited: bool
) -> tuple[Phase, RoundReport, Stats, int]:
    """One digest round of the product against `server`, timed: the phase, the round's
    report, what the server saw, and the 429s the client's limiter met."""
    async with engine_bot(server, limited=limited) as app:
        before = await server.stats()
        watch = Stopwatch.start()
        report = await run_digest_round(
            session_factory, TelegramSender(app.bot), now=utcnow, config=config
        )
        watch.stop()
        seen = await server.stats(since=before.log_len)
        limiter = app.bot.rate_limiter
        assert isinstance(limiter, PriorityRateLimiter)
    return _phase(watch, before, seen), report, seen, limiter.stats.retry_after_count


async def digest_vs_bare(
    session_factory: SessionFactory, seeded: Seeded, *, config: DeliveryConfig
) -> dict[str, Any]:
    """Scenario 1: a full digest round with no limits, then bare PTB loops, on one server."""
    async with ServerProcess(
        first_user=FIRST_TELEGRAM_ID, users=seeded.chats, limited=False
    ) as server:
        round_started_at = utcnow()
        digest, report, seen, _ = await _timed_round(
            server, session_factory, config=config, limited=False
        )
        expected = await _sent_digest_parts(session_factory, created_since=round_started_at)
        integrity = Integrity.compare(expected, seen.sent)

        text = await _sample_digest(session_factory, now=utcnow())
        ids = seeded.telegram_ids
        count = max(digest.messages, 2000)
        chats = [ids[i % len(ids)] for i in range(count)]
        concurrency = config.batch * config.workers
        sequential = await _measure_bare(server, chats, text, concurrency=None)
        concurrent = await _measure_bare(server, chats, text, concurrency=concurrency)
        server_peak = (await server.stats()).peak_rss_mb

    return {
        "digest_round": digest.to_json()
        | {
            "digests_sent": report.sent,
            "report": _report_json(report),
            "integrity": asdict(integrity),
        },
        "bare_sequential": sequential.to_json() | {"text_chars": len(text)},
        "bare_concurrent": concurrent.to_json()
        | {"text_chars": len(text), "concurrency": concurrency},
        "ratio_sequential": digest.rate / sequential.rate if sequential.rate else None,
        "ratio_concurrent": digest.rate / concurrent.rate if concurrent.rate else None,
        "server_peak_rss_mb": server_peak,
    }


async def _make_due(session: AsyncSession, *, chats: int, now: datetime) -> None:
    """Only chats 1..`chats` due now, with a fresh 24 h window; everyone else due tomorrow."""
    await session.execute(
        delete(Delivery).where(Delivery.kind == DeliveryKind.DIGEST, Delivery.chat_id <= chats)
    )
    await session.execute(
        update(Chat)
        .where(Chat.id <= chats)
        .values(next_digest_at=now - timedelta(seconds=1), last_digest_at=None)
    )
    await session.execute(
        update(Chat).where(Chat.id > chats).values(next_digest_at=now + timedelta(days=1))
    )


async def digest_limited(
    session_factory: SessionFactory, seeded: Seeded, *, chats: int, config: DeliveryConfig
) -> dict[str, Any]:
    """Scenario 2: a digest round for `chats` chats against Telegram's limits."""
    async with session_factory.begin() as session:
        await _make_due(session, chats=chats, now=utcnow())
    async with ServerProcess(
        first_user=FIRST_TELEGRAM_ID, users=seeded.chats, limited=True
    ) as server:
        round_started_at = utcnow()
        phase, report, seen, client_429s = await _timed_round(
            server, session_factory, config=config, limited=True
        )
    expected = await _sent_digest_parts(session_factory, created_since=round_started_at)
    return phase.to_json() | {
        "chats": chats,
        "digests_sent": report.sent,
        "client_saw_429": client_429s,
        "report": _report_json(report),
        "integrity": asdict(Integrity.compare(expected, seen.sent)),
    }


async def breaking_push(
    session_factory: SessionFactory, seeded: Seeded, *, chats: int, config: DeliveryConfig
) -> dict[str, Any]:
    """A breaking push to `chats` chats (the only ones with alerts on) against the limits."""
    async with session_factory.begin() as session:
        await session.execute(update(Chat).values(alerts=Chat.id <= chats))
    audience = {FIRST_TELEGRAM_ID + i: 1 for i in range(chats)}
    async with ServerProcess(
        first_user=FIRST_TELEGRAM_ID, users=seeded.chats, limited=True
    ) as server:
        async with engine_bot(server, limited=True) as app:
            async with session_factory.begin() as session:
                draft = await breaking.draft_breaking(
                    session,
                    BREAKING_WORDS,
                    admin_id=1,
                    admin_chat_id=1,
                    now=utcnow(),
                    default_section="General",
                )
                assert draft is not None
                push_id = draft.push.id
            before = await server.stats()
            # The clock starts when the editor presses Send.
            watch = Stopwatch.start()
            async with session_factory.begin() as session:
                pressed = await breaking.press(
                    session, PushChoice(push_id, send=True), now=utcnow()
                )
                assert pressed.start
            runner = PushRunner(
                session_factory, TelegramSender(app.bot), clock=utcnow, config=config
            )
            outcome = await runner.run(push_id)
            assert outcome is not None
            watch.stop()
            seen = await server.stats(since=before.log_len)
    phase = _phase(watch, before, seen)
    time_to_last = phase.last_send_after
    return phase.to_json() | {
        "chats": chats,
        "audience": draft.audience,
        "rows": outcome.rows,
        "still_pending": outcome.remaining,
        "time_to_last_delivery": time_to_last,
        "rate_to_last": phase.messages / time_to_last if time_to_last else None,
        "report": _report_json(outcome.report),
        "integrity": asdict(Integrity.compare(audience, seen.sent)),
    }
