"""A fresh database for one benchmark run: a temporary SQLite file or a new PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.asynccontextmanager
async def sqlite_database() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory(prefix="newsbot-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"


@contextlib.asynccontextmanager
async def postgres_database(admin_url: str = DEFAULT_POSTGRES) -> AsyncIterator[str]:
    """CREATE DATABASE newsbot_bench_<pid>, yield its URL, DROP it (WITH (FORCE)) afterwards."""
    admin = make_url(admin_url)
    name = f"newsbot_bench_{os.getpid()}"

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(
            host=admin.host or "127.0.0.1",
            port=admin.port or 5432,
            user=admin.username or "postgres",
            password=admin.password,
            database=admin.database or "postgres",
        )
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    await execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database(
    kind: str, *, postgres_url: str = DEFAULT_POSTGRES
) -> contextlib.AbstractAsyncContextManager[str]:
    """A fresh database URL of `kind` (sqlite or postgres), removed afterwards."""
    if kind == "sqlite":
        return sqlite_database()
    if kind == "postgres":
        return postgres_database(postgres_url)
    raise ValueError(f"unknown database kind {kind!r}")
