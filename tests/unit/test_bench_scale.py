"""bench/scale.py's recording sender and its database-time accounting by phase."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from bench.scale import DbClock, RecordingSender, _slope
from digests.db import make_engine
from digests.delivery.ports import Outcome, SendPriority


async def test_recording_sender_counts_each_chat_and_honours_before_send() -> None:
    sender = RecordingSender(first_id=100, chats=3)
    allowed = iter([True, True, False])

    async def before_send() -> bool:
        return next(allowed)

    first = await sender.send(100, ["a", "b"], priority=SendPriority.BULK, before_send=before_send)
    refused = await sender.send(102, ["c"], priority=SendPriority.BULK, before_send=before_send)
    again = await sender.send(100, ["d"], priority=SendPriority.BULK)

    assert first.outcome is Outcome.SENT and len(set(first.message_ids)) == 2
    assert refused.outcome is Outcome.WITHDRAWN and refused.message_ids == ()
    assert again.message_ids[0] not in first.message_ids
    assert sender.messages == 3 and sender.withdrawn == 1
    assert sender.chats_sent() == 1 and sender.chats_sent_twice() == 1


async def test_database_time_lands_in_the_phase_that_ran_the_statement(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'clock.db'}")
    clock = DbClock()
    clock.attach(engine)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
        with clock.phase("claim"):
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES (1)"))
                await connection.execute(text("SELECT x FROM t"))
    finally:
        await engine.dispose()

    claim = clock.phases["claim"]
    assert claim.calls >= 3  # two statements and the commit (and a BEGIN on SQLite)
    assert 0 <= claim.db <= claim.db_elapsed <= claim.wall
    assert clock.phases["other"].calls >= 2  # CREATE TABLE and its commit
    assert clock.phases["schedule"].calls == clock.phases["record"].calls == 0
    assert any(key.startswith("claim: INSERT INTO t") for key in clock.statements)


def test_slope_is_megabytes_per_ten_thousand_readers() -> None:
    rounds = [
        {"readers": 10_000, "memory": {"peak_rss_mb": 150.0}},
        {"readers": 100_000, "memory": {"peak_rss_mb": 168.0}},
        {"readers": 1_000_000, "memory": {"peak_rss_mb": 999.0}},  # beyond the fit
    ]
    assert _slope(rounds, "peak_rss_mb") == pytest.approx(2.0)
