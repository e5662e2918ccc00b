"""Alembic environment, for `newsbot db upgrade` and for the `alembic` command alike.

`digests.db.upgrade` hands in its own connection (already in a transaction, holding the
migration lock). Run by the `alembic` CLI from the repository root (see alembic.ini), it reads
DATABASE_URL through the bot's settings and opens an async engine of its own.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.pool import NullPool

from digests.db import async_url, lock_migrations, make_engine
from digests.models import Base, include_name
from digests.settings import load_settings

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,  # the full-text indexes of 0007 are not in the models
    )
    with context.begin_transaction():
        context.run_migrations()


def run_locked(connection: Connection) -> None:
    lock_migrations(connection)
    run_on(connection)


async def run_online(url: str) -> None:
    engine = make_engine(url, poolclass=NullPool)
    try:
        # begin(), not connect(): the lock must be taken inside the transaction that migrates
        async with engine.begin() as connection:
            await connection.run_sync(run_locked)
    finally:
        await engine.dispose()


def run_offline(url: str) -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=url.startswith("sqlite"),
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = async_url(load_settings().database_url)
    if context.is_offline_mode():
        run_offline(url)
    else:
        asyncio.run(run_online(url))


main()
