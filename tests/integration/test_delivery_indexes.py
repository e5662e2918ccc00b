"""Migration 0013: the open deliveries are found through ix_deliveries_open, and the
senders' queries name the status so that PostgreSQL can use that partial index in any plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import event, inspect, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from digests.db import SessionFactory
from digests.delivery.engine import insert_deliveries, mark_interrupted, pending_ids, queue_depth
from digests.models import Chat, ChatKind, Delivery, DeliveryKind, DeliveryStatus
from tests.migrations import downgrade_to, upgrade_to

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def _indexes(connection: Any) -> dict[str, dict[str, Any]]:
    return {index["name"]: index for index in inspect(connection).get_indexes("deliveries")}


async def _chats(session_factory: SessionFactory, n: int) -> list[int]:
    async with session_factory.begin() as session:
        chats = [
            Chat(
                telegram_id=1000 + i,
                kind=ChatKind.PRIVATE,
                timezone="UTC",
                active=True,
                created_at=NOW,
                updated_at=NOW,
            )
            for i in range(n)
        ]
        session.add_all(chats)
        await session.flush()
        return [chat.id for chat in chats]


async def _deliveries(session_factory: SessionFactory, chat_ids: list[int]) -> list[int]:
    rows = [
        {
            "chat_id": chat_id,
            "kind": DeliveryKind.DIGEST,
            "ref": "2026-11-24T08:00Z",
            "window_start": NOW - timedelta(days=1),
            "window_end": NOW,
            "article_id": None,
        }
        for chat_id in chat_ids
    ]
    async with session_factory.begin() as session:
        ids = await insert_deliveries(session, rows, now=NOW)
        # the same rows again: the unique constraint keeps the first copies only
        assert await insert_deliveries(session, rows, now=NOW) == []
    return sorted(ids)


async def test_the_open_rows_are_indexed_in_id_order_and_the_migration_goes_both_ways(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        indexes = await connection.run_sync(_indexes)
    assert indexes["ix_deliveries_open"]["column_names"] == ["status", "id"]
    assert indexes["ix_deliveries_article_id"]["column_names"] == ["article_id"]
    assert "ix_deliveries_status_updated" not in indexes
    if engine.dialect.name == "postgresql":
        async with engine.connect() as connection:
            definition = await connection.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_deliveries_open'")
            )
        assert "WHERE" in definition and "pending" in definition and "sending" in definition
        assert "sent'" not in definition

    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to, "0012")
        before = await connection.run_sync(_indexes)
        await connection.run_sync(upgrade_to)
        after = await connection.run_sync(_indexes)
    assert before["ix_deliveries_status_updated"]["column_names"] == ["status", "updated_at"]
    assert "ix_deliveries_open" not in before
    assert after.keys() == indexes.keys()


async def test_the_senders_queries_write_the_status_into_the_statement(
    engine: AsyncEngine, session_factory: SessionFactory
) -> None:
    """A bound status would leave PostgreSQL's generic plan of a prepared statement unable
    to use the partial index: every query for open rows names the status literally."""
    ids = await _deliveries(session_factory, await _chats(session_factory, 3))
    seen: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", remember)
    try:
        assert await pending_ids(session_factory, now=NOW, after=ids[0], limit=10) == ids[1:]
        depth = await queue_depth(session_factory)
        assert depth[DeliveryKind.DIGEST] == 3
        assert await mark_interrupted(session_factory, now=NOW, lease=timedelta(minutes=5)) == []
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", remember)
    statements = [statement for statement, _ in seen if "FROM deliveries" in statement]
    assert len(statements) == 3
    assert "deliveries.status = 'pending'" in statements[0]
    assert "deliveries.status = 'pending'" in statements[1]
    assert "deliveries.status = 'sending'" in statements[2]

    if engine.dialect.name != "postgresql":
        return
    # PostgreSQL, told to plan the statement as a prepared statement's generic plan would
    # (no parameter values known), still answers it from the partial index
    statement, parameters = seen[[s for s, _ in seen].index(statements[0])]
    url = make_url(str(engine.url))
    connection = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    try:
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        plan = "\n".join(
            row[0] for row in await connection.fetch("EXPLAIN " + statement, *parameters)
        )
    finally:
        await connection.close()
    assert "ix_deliveries_open" in plan, plan


async def test_a_row_in_flight_is_found_after_its_lease(session_factory: SessionFactory) -> None:
    ids = await _deliveries(session_factory, await _chats(session_factory, 2))
    async with session_factory.begin() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.id == ids[0])
            .values(status=DeliveryStatus.SENDING, updated_at=NOW)
        )
    found = await mark_interrupted(
        session_factory, now=NOW + timedelta(minutes=10), lease=timedelta(minutes=5)
    )
    assert [row_id for _chat, row_id, _kind in found] == [ids[0]]
    assert await pending_ids(session_factory, now=NOW) == [ids[1]]
