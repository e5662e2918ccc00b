"""The shared send budget on a real Redis: two limiters in one process, and two processes.

Redis is found at TEST_REDIS_URL, else REDIS_URL, else redis://127.0.0.1:6379; the tests are
skipped if it does not answer. Each test counts under its own key namespace and deletes its
keys afterwards. Limits are counted in wall-clock time, so assertions are counts per window
(narrowed by SLACK for the time between a send's token and its callback) and lower bounds.

Run as a script, this file is one worker process of the multi-process test.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.transport.budget import SharedBudget
from bot.transport.ratelimit import Priority, PriorityRateLimiter

REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"
)
ROOT = Path(__file__).resolve().parents[2]
BOT_ID = 4242
OVERALL = 20  # sends per second, bot-wide
PRIVATE = 5  # sends per second, per private chat
COLD = list(range(30_001, 30_021))  # every worker sends one message to each of these
HOT = 30_000  # ... and PER_HOT messages to this one
PER_HOT = 5
SLACK = 0.2

Send = dict[str, Any]


async def run_worker(name: str, namespace: str, start_at: float) -> list[Send]:
    """One process's share of the load: its own limiter, on the budget all workers share."""
    budget = SharedBudget.from_url(
        REDIS_URL,
        bot_id=BOT_ID,
        namespace=namespace,
        overall_per_sec=OVERALL,
        private_per_sec=PRIVATE,
    )
    limiter = PriorityRateLimiter(overall_per_sec=OVERALL, private_per_sec=PRIVATE, shared=budget)
    sent: list[Send] = []

    async def post(endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        sent.append({"id": data["text"], "chat": data["chat_id"], "at": time.time()})
        return {"message_id": len(sent)}

    async def one(chat: int, text: str) -> Any:
        data = {"chat_id": chat, "text": text}
        return await limiter.process_request(
            post, ("sendMessage", data), {}, "sendMessage", data, Priority.BULK
        )

    await asyncio.sleep(max(0.0, start_at - time.time()))
    requests = [(chat, f"{name}:{chat}") for chat in COLD]
    requests += [(HOT, f"{name}:hot{i}") for i in range(PER_HOT)]
    async with asyncio.timeout(60):
        await asyncio.gather(*(one(chat, text) for chat, text in requests))
    assert not budget.degraded
    await budget.aclose()
    return sent


def expected_ids(names: list[str]) -> list[str]:
    ids = [f"{name}:{chat}" for name in names for chat in COLD]
    ids += [f"{name}:hot{i}" for name in names for i in range(PER_HOT)]
    return sorted(ids)


def most_in_any_window(times: list[float], width: float) -> int:
    times = sorted(times)
    return max(sum(t <= s < t + width for s in times) for t in times)


def assert_limits_held(sent: list[Send], names: list[str]) -> None:
    # Nothing lost, nothing sent twice.
    assert sorted(s["id"] for s in sent) == expected_ids(names)
    times = [s["at"] for s in sent]
    assert most_in_any_window(times, 1 - SLACK) <= OVERALL
    # 50 sends at 20 in any second need at least two full windows between first and last.
    assert max(times) - min(times) >= (len(times) - 1) // OVERALL - SLACK
    hot = [s["at"] for s in sent if s["chat"] == HOT]
    assert most_in_any_window(hot, 1 - SLACK) <= PRIVATE
    assert max(hot) - min(hot) >= (len(hot) - 1) // PRIVATE - SLACK
    per_chat = Counter(s["chat"] for s in sent)
    assert all(per_chat[chat] == len(names) for chat in COLD)


async def _redis_client() -> Any:
    coredis = pytest.importorskip("coredis")
    client = coredis.Redis.from_url(REDIS_URL, connect_timeout=1, stream_timeout=1)
    try:
        await client.ping()
    except Exception as exc:  # any failure to answer means: no Redis here
        if os.environ.get("TEST_REDIS_URL"):  # CI names it: a missing Redis is a failure
            pytest.fail(f"no Redis at TEST_REDIS_URL ({type(exc).__name__})")
        pytest.skip(f"no Redis at TEST_REDIS_URL/REDIS_URL ({type(exc).__name__})")
    return client


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    """A key namespace of this test's own; its keys are deleted afterwards."""
    client = await _redis_client()
    namespace = f"test-budget-{uuid.uuid4().hex}"
    try:
        yield namespace
    finally:
        keys = [key async for key in client.scan_iter(match=f"*{namespace}*")]
        if keys:
            await client.delete(keys)
        assert [key async for key in client.scan_iter(match=f"*{namespace}*")] == []
        client.connection_pool.disconnect()


# The moving windows keep their own timestamps; they and time.time() here may round apart.
CLOCKS = 0.01


def budget_for(namespace: str, **limits: Any) -> SharedBudget:
    return SharedBudget.from_url(REDIS_URL, bot_id=BOT_ID, namespace=namespace, **limits)


async def test_budget_windows_on_redis(namespace: str) -> None:
    budget = budget_for(
        namespace, overall_per_sec=29.1, private_per_sec=0.97, private_burst=3, group_per_min=19.4
    )
    try:
        assert [await budget.take_send() for _ in range(29)] == [0.0] * 29
        assert 0 < await budget.take_send() <= 1
        # The next send frees when the window's first one leaves it, however slow this
        # machine: the wait is its length less the time since the first take (between
        # `before` and now), give or take how the budget's clock and this one round.
        before = time.time()
        assert [await budget.take_chat(5) for _ in range(3)] == [0.0] * 3
        wait = await budget.take_chat(5)
        assert 3 - (time.time() - before) - CLOCKS <= wait <= 3
        before = time.time()
        assert [await budget.take_chat(-100_5) for _ in range(19)] == [0.0] * 19
        wait = await budget.take_chat(-100_5)
        assert 60 - (time.time() - before) - CLOCKS <= wait <= 60
        assert await budget.take_chat(6) == 0.0
        assert await budget.take_send(paid=True) == 0.0
        assert not budget.degraded
    finally:
        await budget.aclose()


async def test_two_processes_of_one_bot_share_a_budget_but_two_bots_do_not(
    namespace: str,
) -> None:
    one, same_bot = (
        budget_for(namespace, overall_per_sec=1),
        budget_for(namespace, overall_per_sec=1),
    )
    other_bot = SharedBudget.from_url(
        REDIS_URL, bot_id=BOT_ID + 1, namespace=namespace, overall_per_sec=1
    )
    assert await one.take_send() == 0.0
    assert await same_bot.take_send() > 0
    assert await other_bot.take_send() == 0.0
    for budget in (one, same_bot, other_bot):
        await budget.aclose()


async def test_two_limiters_in_one_process_keep_the_limits_together(namespace: str) -> None:
    start_at = time.time() + 0.1
    results = await asyncio.gather(
        run_worker("a", namespace, start_at), run_worker("b", namespace, start_at)
    )
    assert_limits_held([s for sent in results for s in sent], ["a", "b"])


async def test_two_processes_keep_the_limits_together(namespace: str) -> None:
    # Python and PTB take a moment to import: both start sending at the same instant.
    start_at = time.time() + 3
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    names = ["p1", "p2"]
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            name,
            namespace,
            repr(start_at),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for name in names
    ]
    sent: list[Send] = []
    for worker in workers:
        async with asyncio.timeout(90):
            out, err = await worker.communicate()
        assert worker.returncode == 0, err.decode()
        sent += json.loads(out)

    assert_limits_held(sent, names)
    # The two really overlapped: each sent some of its messages before the other finished.
    first_done = min(max(s["at"] for s in sent if s["id"].startswith(n)) for n in names)
    assert all(min(s["at"] for s in sent if s["id"].startswith(n)) < first_done for n in names)


async def test_unreachable_redis_never_stops_sending(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    budget = SharedBudget.from_url(
        f"redis://127.0.0.1:{port}/0", bot_id=BOT_ID, namespace="unused", overall_per_sec=1
    )
    limiter = PriorityRateLimiter(overall_per_sec=0, private_per_sec=0, shared=budget)
    sent: list[int] = []

    async def post(endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
        sent.append(data["chat_id"])
        return {"message_id": len(sent)}

    async def one(chat: int) -> Any:
        data = {"chat_id": chat, "text": "x"}
        return await limiter.process_request(
            post, ("sendMessage", data), {}, "sendMessage", data, None
        )

    chats = list(itertools.islice(itertools.count(40_000), 10))
    with caplog.at_level(logging.WARNING, logger="bot.transport.budget"):
        async with asyncio.timeout(60):
            await asyncio.gather(*(one(chat) for chat in chats))

    assert sorted(sent) == chats
    assert budget.degraded
    # None waited for the budget's 1/s: with Redis gone, only the local limits apply.
    assert limiter.stats.shared_waits == 0
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "unavailable" in caplog.text
    await budget.aclose()


class CuttableProxy:
    """A TCP proxy in front of Redis that can drop every connection and refuse new ones."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def test_budget_recovers_when_redis_answers_again(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = urlsplit(REDIS_URL)
    proxy = CuttableProxy(url.hostname or "127.0.0.1", url.port or 6379)
    await proxy.start()
    db = url.path or "/0"
    budget = SharedBudget.from_url(
        f"redis://127.0.0.1:{proxy.port}{db}",
        bot_id=BOT_ID,
        namespace=namespace,
        overall_per_sec=2,
        retry_every=0.3,
    )
    with caplog.at_level(logging.INFO, logger="bot.transport.budget"):
        assert await budget.take_send() == 0.0
        await proxy.cut()
        assert [await budget.take_send() for _ in range(5)] == [0.0] * 5  # local limits only
        assert budget.degraded
        await proxy.start()  # same port: Redis is back
        await asyncio.sleep(0.35)
        takes = [await budget.take_send() for _ in range(3)]
        assert not budget.degraded
        # Counted in Redis again: three takes in a second, and the window holds two.
        assert takes[0] == 0.0
        assert takes[2] > 0

    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]
    assert "reachable again" in caplog.records[1].getMessage()
    await budget.aclose()
    await proxy.cut()


if __name__ == "__main__":
    worker_name, worker_namespace, worker_start = sys.argv[1:4]
    result = asyncio.run(run_worker(worker_name, worker_namespace, float(worker_start)))
    json.dump(result, sys.stdout)
