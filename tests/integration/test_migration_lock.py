"""Several instances starting together on an empty database migrate it once, and all start."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from digests.db import make_engine, upgrade
from tests.conftest import PG_URL, _pg_execute, _pg_url_for


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database with no schema at all, as on a first deployment."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    name = f"newsbot_m_{uuid.uuid4().hex[:12]}"
    await _pg_execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url_for(name)
    finally:
        await _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_four_instances_migrate_an_empty_database_together(empty_db: str) -> None:
    engines = [make_engine(empty_db) for _ in range(4)]
    try:
        await asyncio.gather(*(upgrade(engine) for engine in engines))
        async with engines[0].connect() as connection:
            versions = list(
                await connection.scalars(text("SELECT version_num FROM alembic_version"))
            )
            chats = await connection.scalar(text("SELECT count(*) FROM chats"))
    finally:
        for engine in engines:
            await engine.dispose()
    assert len(versions) == 1
    assert chats == 0
