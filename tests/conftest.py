"""Shared fixtures: a migrated database per test, on SQLite always and PostgreSQL when asked.

Set TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres) to also run every
database test on PostgreSQL: a template database is migrated once per session, and each test
gets its own copy, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from digests.db import SessionFactory, make_engine, make_session_factory, upgrade

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Iterator[object]:
    """Close the event loop the looptime plugin makes for a synchronous test.

    looptime (virtual time for the limiter tests) asks the policy for the current loop before
    every test; after an async test none is set, so the policy makes a new one that nobody
    closes, and its ResourceWarning fails whichever test the garbage collector lands in.
    """
    policy = asyncio.get_event_loop_policy()
    before = getattr(getattr(policy, "_local", None), "_loop", None)
    try:
        return (yield)
    finally:
        after = getattr(getattr(policy, "_local", None), "_loop", None)
        if after is not None and after is not before and not after.is_running():
            after.close()
            policy.set_event_loop(None)


def _pg_admin_url() -> str:
    return make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_execute(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    url = make_url(_pg_admin_url())
    conn = await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _pg_url_for(database: str) -> str:
    return make_url(_pg_admin_url()).set(database=database).render_as_string(hide_password=False)


async def _migrate(url: str) -> None:
    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _run_in_thread(factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to completion on its own loop, even when called inside a running one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(factory())).result()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL template database, made once per test session."""
    if not PG_URL:
        pytest.skip("TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    name = f"newsbot_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _run_in_thread(lambda: _pg_execute(f'CREATE DATABASE "{name}"'))
    _run_in_thread(lambda: _migrate(_pg_url_for(name)))
    try:
        yield name
    finally:
        _run_in_thread(lambda: _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of a freshly migrated, empty database of each supported kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        await _migrate(url)
        yield url
        return
    template = request.getfixturevalue("pg_template")
    name = f"newsbot_t_{uuid.uuid4().hex[:12]}"
    await _pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url_for(name)
    finally:
        await _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> SessionFactory:
    return make_session_factory(engine)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite URL in the test's own directory (not migrated)."""
    return f"sqlite:///{tmp_path / 'bot.db'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_url") == "postgres":
            item.add_marker(pytest.mark.postgres)
