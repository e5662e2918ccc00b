"""Engines, sessions and schema migrations."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as AsyncSession

MIGRATIONS = Path(__file__).with_name("migrations")
INSTANCE_PREFIX = "newsbot:"

SessionFactory = async_sessionmaker[AsyncSession]


def async_url(url: str) -> str:
    """Turn a plain `sqlite:///` or `postgresql://` URL into its asyncio driver form."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif parsed.drivername in {"postgresql", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # let SQLAlchemy, not the driver, open transactions (see _sqlite_begin)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    _use_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    """Switch the database to WAL (it stays so). Several processes opening a new database at
    once race for the switch, and SQLite answers "database is locked" at once to the losers
    instead of waiting (its busy handler does not run for it): they look again and retry."""
    for attempt in range(50):
        cursor.execute("PRAGMA journal_mode")
        if str(cursor.fetchone()[0]).lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.1)


def _sqlite_begin(connection: Connection) -> None:
    """Take SQLite's write lock at BEGIN: a transaction that reads and then writes could
    otherwise fail at once with "database is locked" when another writer got in between."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def instance_name() -> str:
    """How this process names itself to PostgreSQL (pg_stat_activity.application_name)."""
    return f"{INSTANCE_PREFIX}{socket.gethostname()}:{os.getpid()}"[:63]


def make_engine(url: str, *, name: str | None = None, **kwargs: Any) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL and foreign keys on every connection.

    On PostgreSQL, `name` becomes each connection's application_name, so instances can see
    each other (and operators can tell whose connections they are)."""
    full_url = async_url(url)
    if name is not None and full_url.startswith("postgresql+asyncpg"):
        connect_args = kwargs.setdefault("connect_args", {})
        connect_args.setdefault("server_settings", {})["application_name"] = name
    engine = create_async_engine(full_url, **kwargs)
    if is_sqlite(engine):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def make_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


MIGRATION_LOCK = 0x6E657773_00000001
"""PostgreSQL advisory lock key held while migrating ("news" plus 1)."""


def lock_migrations(connection: Connection) -> None:
    """Take the migration lock for the rest of the connection's transaction (PostgreSQL).

    Instances starting together migrate one at a time: the first migrates, the others wait
    here, then find the schema at head and do nothing. The lock ends with the transaction.
    (SQLite needs none: BEGIN IMMEDIATE already admits one writer.)"""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def _upgrade(connection: Connection) -> None:
    lock_migrations(connection)
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema up to date with the Alembic migrations (the only way it changes)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


async def other_instances(engine: AsyncEngine, me: str) -> list[str]:
    """Other newsbot processes connected to this PostgreSQL database (none on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    async with engine.connect() as connection:
        names = await connection.scalars(
            text(
                "SELECT DISTINCT application_name FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name LIKE :prefix "
                "AND application_name <> :me"
            ),
            {"prefix": INSTANCE_PREFIX + "%", "me": me},
        )
        return sorted(names)


async def ping(session_factory: SessionFactory) -> None:
    """Raise unless the database answers a trivial query (the health check)."""
    async with session_factory() as session:
        await session.execute(text("SELECT 1"))


def unavailable(exc: BaseException) -> bool:
    """Is this the database being away (down, unreachable, out of connections), not a bug?"""
    return isinstance(exc, OperationalError | InterfaceError | PoolTimeout | OSError | TimeoutError)
