"""Which instance polls Telegram: chosen through the database, taken over when it dies.

Telegram lets one getUpdates poller per bot token: a second one ends the first with
"409 Conflict". In polling mode, instances therefore elect one poller:

- PostgreSQL: a session-level advisory lock held on a connection of its own. The lock lives
  as long as that connection; when the process dies (kill -9 included) the server sees the
  socket close and releases it, and the next instance to try takes it.
- SQLite: an exclusive `flock` on a file beside the database, released by the kernel when
  the process dies. (SQLite is meant for one process; this only keeps a second one polite.)

Every instance still delivers digests and pushes: only polling is elected.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Protocol

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

LOCK_CLASS = 0x6E657773  # "news": first half of the advisory lock key; the bot id is the second
CHECK_TIMEOUT = 5.0


class Election(Protocol):
    async def try_acquire(self) -> bool:
        """Become the poller if nobody is; True while this instance is it."""

    async def still_held(self) -> bool:
        """False once the lock is lost (its connection died)."""

    async def release(self) -> None:
        """Give the lock up so another instance can poll at once."""


def election_for(engine: AsyncEngine, bot_id: int) -> Election:
    if engine.dialect.name == "postgresql":
        return AdvisoryLockElection(engine, bot_id)
    database = make_url(str(engine.url)).database
    if database and database != ":memory:":
        return FileLockElection(Path(f"{database}.poller.lock"))
    return AlwaysLeader()


class AdvisoryLockElection:
    """A PostgreSQL advisory lock on a connection kept open for as long as we poll."""

    def __init__(self, engine: AsyncEngine, bot_id: int) -> None:
        self.engine = engine
        self.key = bot_id % 2**31
        self._connection: AsyncConnection | None = None

    async def try_acquire(self) -> bool:
        if self._connection is not None:
            return await self.still_held()
        try:
            connection = await self.engine.connect()
        except (OSError, SQLAlchemyError) as exc:
            log.warning("poller election: database unreachable: %s", exc)
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                got = await connection.scalar(
                    text("SELECT pg_try_advisory_lock(:cls, :key)"),
                    {"cls": LOCK_CLASS, "key": self.key},
                )
                # Leave no transaction open on the held connection: the lock is session-level.
                await connection.commit()
        except (OSError, SQLAlchemyError, TimeoutError) as exc:
            log.warning("poller election failed: %s", exc)
            await _close(connection)
            return False
        if not got:
            await _close(connection)
            return False
        self._connection = connection
        return True

    async def still_held(self) -> bool:
        connection = self._connection
        if connection is None:
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                await connection.scalar(text("SELECT 1"))
                await connection.commit()
        except (OSError, SQLAlchemyError, TimeoutError) as exc:
            log.warning("poller lock lost: its database connection failed: %s", exc)
            self._connection = None
            await _close(connection, invalidate=True)
            return False
        return True

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        with contextlib.suppress(OSError, SQLAlchemyError, TimeoutError):
            async with asyncio.timeout(CHECK_TIMEOUT):
                await connection.execute(
                    text("SELECT pg_advisory_unlock(:cls, :key)"),
                    {"cls": LOCK_CLASS, "key": self.key},
                )
                await connection.commit()
        await _close(connection)


async def _close(connection: AsyncConnection, *, invalidate: bool = False) -> None:
    with contextlib.suppress(OSError, SQLAlchemyError, DBAPIError, TimeoutError):
        if invalidate:
            # The connection is broken: never hand it back to the pool.
            await connection.invalidate()
        await connection.close()


class FileLockElection:
    """An exclusive flock on a file beside the SQLite database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    async def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._file = handle
        return True

    async def still_held(self) -> bool:
        return self._file is not None

    async def release(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()


class AlwaysLeader:
    """An in-memory database can only be one process's."""

    async def try_acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None
