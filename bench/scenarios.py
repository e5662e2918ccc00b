"""The measured scenarios. Each talks to a fake Bot API in another process and counts there.

Message counts, 429s and send times come from the server (what Telegram would have seen);
wall times from the client. Both clocks are `time.monotonic()` (one clock per machine on Linux).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.request import HTTPXRequest

from bench.fake_server import ServerProcess, Stats
from bench.procs import percentile
from bench.seed import FIRST_TELEGRAM_ID, Seeded
from bot.app import build_application
from bot.context import NewsApp
from bot.runtime import settle_heap
from bot.transport.http import LeanRequest
from bot.transport.ratelimit import PriorityRateLimiter
from bot.transport.replies import NO_PREVIEW
from bot.transport.sender import TelegramSender
from digests.db import SessionFactory
from digests.delivery.config import DeliveryConfig, delivery_config
from digests.delivery.ports import Part, RoundReport, Text
from digests.digest.builder import DigestRequest
from digests.digest.rounds import DigestWriter, run_digest_round, with_controls
from digests.models import Chat, Delivery, DeliveryKind, DeliveryStatus
from digests.newsroom import breaking
from digests.newsroom.push import PushOutcome, PushRunner
from digests.newsroom.render import breaking_message
from digests.settings import Settings
from digests.ui.buttons import PushChoice

POOL_SIZE = 256  # PTB's default for an Application's bot
BARE_IN_FLIGHT = 4  # "a few in flight": the bare loop's other way to send
BARE_MESSAGES = 4000  # messages each bare loop sends
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

    @property
    def client_us_per_message(self) -> float | None:
        return self.client_cpu / self.messages * 1e6 if self.messages else None

    @property
    def server_us_per_message(self) -> float | None:
        return self.server_cpu / self.messages * 1e6 if self.messages else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "rate": self.rate,
            "span_rate": self.span_rate,
            "client_us_per_message": self.client_us_per_message,
            "server_us_per_message": self.server_us_per_message,
        }


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


def product_settings(
    *, limited: bool, server: ServerProcess | None = None, paid: bool = False
) -> Settings:
    """Settings as an operator would set them: Telegram's limits, or none (all 0); `paid`
    is PAID_BROADCAST=true."""
    rate = {"send_rate_limit": 30, "private_chat_rate_limit": 1, "group_rate_limit_per_min": 20}
    if not limited:
        rate = dict.fromkeys(rate, 0)
    return Settings(
        telegram_bot_token=server.token if server else None,
        telegram_base_url=server.base_url if server else "http://127.0.0.1:9/bot",
        paid_broadcast=paid,
        **rate,  # type: ignore[arg-type]
    )


def product_config(*, limited: bool, paid: bool = False) -> DeliveryConfig:
    """The engine's configuration exactly as `newsbot run` derives it from those settings."""
    return delivery_config(product_settings(limited=limited, paid=paid))


@contextlib.asynccontextmanager
async def engine_bot(
    server: ServerProcess, *, limited: bool, paid: bool = False, database_url: str | None = None
) -> AsyncIterator[NewsApp]:
    """The bot exactly as the product builds it (`build_application`), limits from settings;
    with `database_url`, opened on that database as `newsbot run` opens it (post_init), so it
    can answer readers."""
    settings = product_settings(limited=limited, server=server, paid=paid)
    if database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
    app = build_application(settings, with_jobs=False)
    await app.initialize()
    try:
        if database_url is not None:
            assert app.post_init is not None
            await app.post_init(app)
        settle_heap()  # as `newsbot run` does once the bot is up
        yield app
    finally:
        await app.shutdown()
        if app.bot_data.engine is not None:
            await app.bot_data.engine.dispose()


def _plain_bot(server: ServerProcess, *, lean: bool = False) -> Bot:
    """PTB with nothing of ours: no limiter, no engine. PTB's own httpx transport (with an HTTP
    pool of 256, as an Application's bot has), or with `lean` the product's transport."""
    request = LeanRequest(connections=BARE_IN_FLIGHT) if lean else None
    return Bot(
        server.token,
        base_url=server.base_url,
        request=request or HTTPXRequest(connection_pool_size=POOL_SIZE),
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


@dataclass(frozen=True)
class Sample:
    """The message a bare loop sends: the product's own text and buttons, built with PTB's
    classes once, as a bare bot sending one message to many would."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None

    @classmethod
    def of(cls, part: Part) -> Sample:
        if isinstance(part, Text):
            rows = [
                [
                    InlineKeyboardButton(b.text, url=b.url)
                    if b.url
                    else InlineKeyboardButton(b.text, callback_data=b.data)
                    for b in row
                ]
                for row in part.buttons
            ]
            return cls(part.html, InlineKeyboardMarkup(rows) if rows else None)
        assert isinstance(part, str)
        return cls(part)


async def _sample_digest(session_factory: SessionFactory, *, now: datetime) -> Sample:
    """The first message of chat 1's digest, with the buttons the product puts under a
    digest's last message: what the bare loop sends, for equal work on both sides."""
    request = DigestRequest(1, now - timedelta(hours=24), now, "UTC")
    builder = DigestWriter(per_section=DeliveryConfig().per_section)
    async with session_factory() as session:
        built = await builder.build(session, [request])
    return Sample.of(with_controls(built[1][:1])[0])


async def _bare_send(bot: Bot, chat: int, message: Sample) -> None:
    await bot.send_message(
        chat,
        message.text,
        parse_mode=ParseMode.HTML,
        link_preview_options=NO_PREVIEW,
        reply_markup=message.keyboard,
    )


async def _bare_sequential(bot: Bot, chats: Sequence[int], message: Sample) -> None:
    for chat in chats:
        await _bare_send(bot, chat, message)


async def _bare_concurrent(
    bot: Bot, chats: Sequence[int], message: Sample, *, concurrency: int
) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(chat: int) -> None:
        async with gate:
            await _bare_send(bot, chat, message)

    await asyncio.gather(*(one(chat) for chat in chats))


async def _measure_bare(
    server: ServerProcess,
    chats: Sequence[int],
    message: Sample,
    *,
    concurrency: int | None,
    lean: bool = False,
) -> Phase:
    async with _plain_bot(server, lean=lean) as bot:
        before = await server.stats()
        watch = Stopwatch.start()
        if concurrency is None:
            await _bare_sequential(bot, chats, message)
        else:
            await _bare_concurrent(bot, chats, message, concurrency=concurrency)
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


async def bare_loops(
    server: ServerProcess, chats: Sequence[int], message: Sample
) -> dict[str, Any]:
    """The bare python-telegram-bot loops: PTB as shipped (httpx), one send at a time and
    `BARE_IN_FLIGHT` at once; `best` is the faster of the two, the one a product figure is
    judged on. The same two loops on the product's transport (`LeanRequest`) are for
    information: they show what the engine costs above the transport."""
    loops: dict[str, Any] = {}
    for name, concurrency, lean in (
        ("ptb_sequential", None, False),
        ("ptb_few_in_flight", BARE_IN_FLIGHT, False),
        ("lean_sequential", None, True),
        ("lean_few_in_flight", BARE_IN_FLIGHT, True),
    ):
        phase = await _measure_bare(server, chats, message, concurrency=concurrency, lean=lean)
        loops[name] = phase.to_json() | {"concurrency": concurrency or 1}
    best = max(("ptb_sequential", "ptb_few_in_flight"), key=lambda name: loops[name]["rate"])
    return {
        "loops": loops,
        "best": best,
        "text_chars": len(message.text),
        "buttons": message.keyboard is not None,
        "messages": len(chats),
    }


def versus(product: Phase, bare: dict[str, Any]) -> dict[str, Any]:
    """The product's rate and client CPU per message against the best bare PTB loop's."""
    best = bare["loops"][bare["best"]]
    product_us = product.client_us_per_message
    return {
        "bare_loop": bare["best"],
        "rate_ratio": product.rate / best["rate"] if best["rate"] else None,
        "cpu_per_message_ratio": (
            product_us / best["client_us_per_message"]
            if product_us and best["client_us_per_message"]
            else None
        ),
    }


def _bare_chats(seeded: Seeded) -> list[int]:
    ids = seeded.telegram_ids
    return [ids[i % len(ids)] for i in range(BARE_MESSAGES)]


async def digest_vs_bare(
    session_factory: SessionFactory, seeded: Seeded, *, config: DeliveryConfig
) -> dict[str, Any]:
    """A full digest round with no limits, then the bare PTB loops, on one lean server."""
    async with ServerProcess(
        first_user=FIRST_TELEGRAM_ID, users=seeded.chats, limited=False, lean=True
    ) as server:
        round_started_at = utcnow()
        digest, report, seen, _ = await _timed_round(
            server, session_factory, config=config, limited=False
        )
        expected = await _sent_digest_parts(session_factory, created_since=round_started_at)
        integrity = Integrity.compare(expected, seen.sent)
        sample = await _sample_digest(session_factory, now=utcnow())
        bare = await bare_loops(server, _bare_chats(seeded), sample)
        server_peak = (await server.stats()).peak_rss_mb

    return {
        "digest_round": digest.to_json()
        | {
            "digests_sent": report.sent,
            "report": _report_json(report),
            "integrity": asdict(integrity),
        },
        "bare": bare,
        "versus_bare": versus(digest, bare),
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


async def _alerts_for(session_factory: SessionFactory, chats: int) -> dict[int, int]:
    """Alerts on for chats 1..`chats` only: a push's audience, as {telegram id: 1}."""
    async with session_factory.begin() as session:
        await session.execute(update(Chat).values(alerts=Chat.id <= chats))
    return {FIRST_TELEGRAM_ID + i: 1 for i in range(chats)}


@dataclass
class _Pushed:
    phase: Phase
    draft: breaking.Draft
    outcome: PushOutcome
    seen: Stats
    message: Sample


async def _push(
    server: ServerProcess,
    app: NewsApp,
    session_factory: SessionFactory,
    *,
    config: DeliveryConfig,
    during: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> _Pushed:
    """An editor drafts a breaking story and presses Send; the push runs to its end."""
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
        part = breaking_message(draft.push.article)
        message = Sample.of(part if isinstance(part, str) else part.fallback)
    before = await server.stats()
    # The clock starts when the editor presses Send.
    watch = Stopwatch.start()
    async with session_factory.begin() as session:
        pressed = await breaking.press(session, PushChoice(push_id, send=True), now=utcnow())
        assert pressed.start
    runner = PushRunner(session_factory, TelegramSender(app.bot), clock=utcnow, config=config)
    meanwhile = asyncio.create_task(during()) if during is not None else None
    try:
        outcome = await runner.run(push_id)
    finally:
        if meanwhile is not None:
            meanwhile.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await meanwhile
    assert outcome is not None
    watch.stop()
    seen = await server.stats(since=before.log_len)
    return _Pushed(_phase(watch, before, seen), draft, outcome, seen, message)


def _push_json(pushed: _Pushed, audience: dict[int, int]) -> dict[str, Any]:
    phase = pushed.phase
    time_to_last = phase.last_send_after
    sent = {chat: n for chat, n in pushed.seen.sent.items() if chat in audience}
    return phase.to_json() | {
        "chats": len(audience),
        "audience": pushed.draft.audience,
        "rows": pushed.outcome.rows,
        "still_pending": pushed.outcome.remaining,
        "time_to_last_delivery": time_to_last,
        "rate_to_last": phase.messages / time_to_last if time_to_last else None,
        "report": _report_json(pushed.outcome.report),
        "integrity": asdict(Integrity.compare(audience, sent)),
    }


async def breaking_push(
    session_factory: SessionFactory, seeded: Seeded, *, chats: int, config: DeliveryConfig
) -> dict[str, Any]:
    """A breaking push to `chats` chats (the only ones with alerts on) against the limits."""
    audience = await _alerts_for(session_factory, chats)
    async with ServerProcess(
        first_user=FIRST_TELEGRAM_ID, users=seeded.chats, limited=True
    ) as server:
        async with engine_bot(server, limited=True) as app:
            pushed = await _push(server, app, session_factory, config=config)
    return _push_json(pushed, audience)


async def push_vs_bare(
    session_factory: SessionFactory, seeded: Seeded, *, chats: int, config: DeliveryConfig
) -> dict[str, Any]:
    """A breaking push to `chats` chats with no limits, then the bare PTB loops with its
    text, on one lean server."""
    audience = await _alerts_for(session_factory, chats)
    async with ServerProcess(
        first_user=FIRST_TELEGRAM_ID, users=seeded.chats, limited=False, lean=True
    ) as server:
        async with engine_bot(server, limited=False) as app:
            pushed = await _push(server, app, session_factory, config=config)
        bare = await bare_loops(server, _bare_chats(seeded), pushed.message)
    return {
        "push": _push_json(pushed, audience),
        "bare": bare,
        "versus_bare": versus(pushed.phase, bare),
    }


PAID_LATENCY = 0.05  # Telegram's round trip
PROBE_EVERY = 0.25  # a new reader sends /latest this often during the paid push


async def paid_broadcast(
    session_factory: SessionFactory,
    seeded: Seeded,
    *,
    database_url: str,
    chats: int,
    latency: float = PAID_LATENCY,
) -> dict[str, Any]:
    """PAID_BROADCAST=true and Telegram's other limits, a server that answers after
    `latency`, a breaking push to `chats` readers. Meanwhile new readers (not in the database)
    send /latest every `PROBE_EVERY` s, through polling, as readers would: each one's reply
    time is from their message to the server's receipt of the bot's answer."""
    audience = await _alerts_for(session_factory, chats)
    probe_ids = itertools.count(FIRST_TELEGRAM_ID + seeded.chats)
    asked: dict[int, float] = {}
    config = product_config(limited=True, paid=True)
    async with ServerProcess(
        first_user=FIRST_TELEGRAM_ID, users=seeded.chats, limited=False, lean=True, latency=latency
    ) as server:

        async def probe() -> None:
            while True:
                reader = next(probe_ids)
                asked.update(await server.users_send([reader], "/latest"))
                await asyncio.sleep(PROBE_EVERY)

        async with engine_bot(server, limited=True, paid=True, database_url=database_url) as app:
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0.0, timeout=10)
            await app.start()
            try:
                start_log = (await server.stats()).log_len
                pushed = await _push(server, app, session_factory, config=config, during=probe)
                # the last probes' answers
                await asyncio.sleep(1.0 + latency)
                replies = (await server.stats(since=start_log)).first_by_chat
            finally:
                await app.updater.stop()
                await app.stop()
            limiter = app.bot.rate_limiter
            assert isinstance(limiter, PriorityRateLimiter)
            paid_sent = limiter.stats.paid_broadcast_sent
    waits = sorted(replies[reader] - at for reader, at in asked.items() if reader in replies)
    phase = pushed.phase
    return _push_json(pushed, audience) | {
        "latency": latency,
        "delivery_config": {"batch": config.batch, "workers": config.workers},
        "paid_broadcast_sent": paid_sent,
        "sustained_rate": phase.span_rate,
        "probes": {
            "asked": len(asked),
            "answered": len(waits),
            "p50": percentile(waits, 0.5),
            "p99": percentile(waits, 0.99),
            "max": waits[-1] if waits else None,
        },
    }
