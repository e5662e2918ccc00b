"""OneAtATime: a second start of a running id does nothing; the id is free again after."""

from __future__ import annotations

import asyncio

import pytest

from digests.running import OneAtATime


async def test_a_second_start_while_running_is_a_no_op_and_the_id_is_freed_after() -> None:
    running = OneAtATime()
    release = asyncio.Event()
    calls: list[int] = []

    async def work() -> str:
        calls.append(1)
        await release.wait()
        return "done"

    first = asyncio.create_task(running.run(7, work))
    await asyncio.sleep(0)
    assert 7 in running
    assert await running.run(7, work) is None  # not run again
    assert await running.run(8, lambda: asyncio.sleep(0, "other")) == "other"
    release.set()
    assert await first == "done"
    assert calls == [1] and 7 not in running

    async def fails() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await running.run(7, fails)
    assert 7 not in running  # freed even when the work fails
