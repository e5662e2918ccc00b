"""bench/scale.py on a real database: the server CPU of each call, counted by phase."""

from __future__ import annotations

from sqlalchemy import text

from bench.scale import BackendCpu, DbClock
from digests.db import make_engine


async def test_the_server_cpu_of_each_call_is_counted_on_postgresql(db_url: str) -> None:
    engine = make_engine(db_url)
    backends = BackendCpu()
    backends.attach(engine)
    clock = DbClock()
    clock.attach(engine, backends)
    try:
        with clock.phase("schedule"):
            async with engine.connect() as connection:
                # enough work for the server to spend measurable CPU on
                await connection.execute(
                    text(
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                        "WHERE i < 200000) SELECT count(*) FROM n"
                    )
                )
    finally:
        await engine.dispose()
    schedule = clock.phases["schedule"]
    if engine.dialect.name == "postgresql":
        assert 0 < schedule.server_cpu <= schedule.db_elapsed * 1.5
        assert backends.pids == {}  # the pool's connections closed: forgotten
    else:  # no server process: nothing counted
        assert schedule.server_cpu == 0
