"""The migrations build exactly the schema the models describe, and the `alembic` CLI works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from pprint import pformat
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from digests.db import make_engine
from digests.models import Base, include_name

ROOT = Path(__file__).resolve().parents[2]


def _differences(connection: Connection) -> list[Any]:
    # the options digests/migrations/env.py gives autogenerate
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_name": include_name}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        async with engine.connect() as connection:
            diff = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert diff == [], (
        "the migrations and digests/models.py disagree; write a migration "
        '(alembic revision --autogenerate -m "...") or fix the model:\n' + pformat(diff)
    )


def _alembic(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_alembic_cli_migrates_and_finds_nothing_to_generate(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    upgraded = _alembic("upgrade", "head", database_url=url)
    assert upgraded.returncode == 0, upgraded.stderr
    checked = _alembic("check", database_url=url)
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout
