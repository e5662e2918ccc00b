"""Breaking pushes on a real audience: two instances on one budget, and a lossy network."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import generate_latest
from sqlalchemy import func, select

from bot.app import build_application
from bot.context import NewsApp
from digests.db import make_engine, make_session_factory
from digests.feeds.ingest import store_entries
from digests.models import Delivery
from digests.newsroom import breaking
from digests.newsroom.push import PushOutcome
from digests.settings import Settings
from fakebotapi.emulator import ApiError, BotApiEmulator, RateLimits
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import e2e_settings
from tests.e2e.test_breaking import EDITOR, NOW, add_readers
from tests.e2e.test_readers import story

TELEGRAM = RateLimits(overall_per_sec=30, private_per_sec=1, group_per_min=20, private_burst=3)
REDIS = os.environ.get("TEST_REDIS_URL") or "redis://127.0.0.1:6379"


async def audience(url: str, readers: list[int]) -> int:
    """A story in World, `readers` following it; returns a confirmed push's id."""
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        async with factory.begin() as session:
            await store_entries(
                session, [story(1, "World")], now=NOW, category_map={}, default_section="General"
            )
        await add_readers(url, readers, "World")
        async with factory.begin() as session:
            draft = await breaking.draft_breaking(
                session,
                ["world", "Storm warning for the coast"],
                admin_id=EDITOR,
                admin_chat_id=EDITOR,
                now=NOW,
                default_section="General",
            )
            assert draft is not None
            push_id = draft.push.id
            assert await breaking.confirm(session, push_id, now=NOW) is not None
        return push_id
    finally:
        await engine.dispose()


@asynccontextmanager
async def started(settings: Settings) -> AsyncIterator[NewsApp]:
    """An instance with its jobs off and no update intake: only what a push needs."""
    app = build_application(settings, with_jobs=False)
    await app.initialize()
    assert app.post_init is not None and app.post_shutdown is not None
    await app.post_init(app)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()
        await app.shutdown()
        await app.post_shutdown(app)


def most_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def statuses(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            rows = await session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            )
            return {str(status): int(n) for status, n in rows}
    finally:
        await engine.dispose()


@pytest.fixture
async def redis_db() -> AsyncIterator[str]:
    """A Redis database number of this test's own, emptied before and after."""
    import coredis

    number = 1 + os.getpid() % 14
    url = f"{REDIS}/{number}"
    client: Any = coredis.Redis.from_url(url, connect_timeout=1, stream_timeout=1)
    try:
        await client.flushdb()
    except Exception as exc:  # noqa: BLE001 - any failure means no Redis here
        if os.environ.get("TEST_REDIS_URL"):  # CI names it: a missing Redis is a failure
            pytest.fail(f"no Redis at TEST_REDIS_URL ({type(exc).__name__})")
        pytest.skip(f"no Redis at {REDIS} ({type(exc).__name__})")
    try:
        yield url
    finally:
        await client.flushdb()


async def test_two_instances_push_on_one_budget(db_url: str, redis_db: str) -> None:
    readers = list(range(20_001, 20_121))
    push_id = await audience(db_url, readers)
    async with FakeBotApiServer(BotApiEmulator(limits=TELEGRAM)) as server:
        for uid in [*readers, EDITOR]:
            server.emulator.add_user(uid, started=True)
        settings = e2e_settings(
            server,
            db_url,
            admin_ids=(EDITOR,),
            send_rate_limit=30,
            private_chat_rate_limit=1,
            group_rate_limit_per_min=20,
            redis_url=redis_db,
        )
        async with started(settings) as first, started(settings) as second:
            outcomes: list[PushOutcome | None] = await asyncio.wait_for(
                asyncio.gather(
                    first.bot_data.pushes.run(push_id), second.bot_data.pushes.run(push_id)
                ),
                60,
            )
        sends = [r.time for r in server.emulator.sent_log if r.method == "sendMessage"]
        counts = [len(server.emulator.messages(uid)) for uid in readers]
        assert counts == [1] * len(readers)  # nobody missed, nobody twice
        assert server.emulator.too_many_requests == 0
        assert most_in_one_second(sends) <= 30  # together, never over Telegram's limit
        sent = [outcome.report.sent for outcome in outcomes if outcome is not None]
        assert len(sent) == 2 and min(sent) > 0 and sum(sent) == len(readers)  # both worked


async def test_answers_lost_on_the_network_are_never_resent(
    fake_api: FakeBotApiServer, db_url: str
) -> None:
    readers = list(range(21_001, 21_031))
    push_id = await audience(db_url, readers)
    for uid in [*readers, EDITOR]:
        fake_api.emulator.add_user(uid, started=True)
    lost_answer, hung, bad_gateway = readers[3], readers[7], readers[11]
    fake_api.emulator.withhold_next("sendMessage", lost_answer, mode="drop")
    fake_api.emulator.withhold_next("sendMessage", hung, mode="hang")
    fake_api.emulator.fail_next(
        "sendMessage", bad_gateway, error=_bad_gateway(), times=2
    )  # twice, then it goes through
    settings = e2e_settings(fake_api, db_url, admin_ids=(EDITOR,))
    async with started(settings) as app:
        await asyncio.wait_for(app.bot_data.pushes.run(push_id), 60)
    counts = {uid: len(fake_api.emulator.messages(uid)) for uid in readers}
    assert set(counts.values()) == {1}  # each reader has the story exactly once
    assert await statuses(db_url) == {"sent": len(readers) - 2, "uncertain": 2}
    metrics = generate_latest(app.bot_data.metrics.registry).decode()
    assert 'newsbot_sends_total{kind="breaking",outcome="uncertain"} 2.0' in metrics
    assert 'newsbot_uncertain_sends_total{kind="breaking"} 2.0' in metrics


def _bad_gateway() -> ApiError:
    return ApiError(502, "Bad Gateway")
