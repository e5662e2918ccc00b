"""Several `newsbot run` processes on one database, as an operator runs them.

Each instance is a real process (`python -m bot.cli run`) talking HTTP to the fake Bot API
served from this test. Polling mode: exactly one polls; when it is killed, another takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import Reader

REPO = Path(__file__).parents[2]
POLLING = "now polls Telegram"


class Instance:
    """One `newsbot run` process and the lines it logged."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    async def wait_logged(self, text: str, within: float = 60) -> None:
        async with asyncio.timeout(within):
            while not self.logged(text):
                if self.process.returncode is not None:
                    raise AssertionError(f"{self.name} exited:\n" + "\n".join(self.lines))
                await asyncio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            code = await self.process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        return code


def instance_env(server: FakeBotApiServer, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(
        {
            "TELEGRAM_BOT_TOKEN": server.emulator.token,
            "TELEGRAM_BASE_URL": server.base_url,
            "DATABASE_URL": db_url,
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": "0",
            "SEND_RATE_LIMIT": "0",
            "PRIVATE_CHAT_RATE_LIMIT": "0",
            "GROUP_RATE_LIMIT_PER_MIN": "0",
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env


async def newsbot_run(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    """`newsbot run` as a deployment starts it: no terminal, its log on stderr."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


@asynccontextmanager
async def instances(count: int, env: dict[str, str], cwd: Path) -> AsyncIterator[list[Instance]]:
    started: list[Instance] = []
    try:
        for n in range(count):
            started.append(Instance(f"instance {n + 1}", await newsbot_run(env, cwd)))
        for instance in started:
            await instance.wait_logged("newsbot is running")
        yield started
    finally:
        for instance in started:
            await instance.stop()


def conflicts(server: FakeBotApiServer) -> int:
    return sum(
        1
        for call in server.emulator.calls
        if call.method == "getUpdates" and call.error is not None and call.error.error_code == 409
    )


async def test_one_poller_and_failover_when_it_is_killed(
    fake_api: FakeBotApiServer, db_url: str, tmp_path: Path
) -> None:
    fake_api.emulator.add_user(701, "Ada")
    reader = Reader(fake_api, 701)
    async with instances(2, instance_env(fake_api, db_url), tmp_path) as (first, second):
        await asyncio.sleep(1)  # both have had the chance to try for the lock
        pollers = [instance for instance in (first, second) if instance.logged(POLLING)]
        assert len(pollers) == 1, [i.lines for i in (first, second)]
        [poller] = pollers
        [standby] = [instance for instance in (first, second) if instance is not poller]

        [greeting] = await reader.send("/start")
        assert "Welcome" in greeting.text
        assert conflicts(fake_api) == 0
        if db_url.startswith("postgresql"):  # no REDIS_URL: an instance says they share no budget
            assert any(i.logged("REDIS_URL is not set") for i in (first, second))

        await poller.stop(signal.SIGKILL)
        await standby.wait_logged(POLLING, within=30)
        [hint] = await reader.send("/help")  # answered by the instance that took over
        assert "/latest" in hint.text
        # A killed poller's long poll can end in one 409 for the new one; never a stream.
        assert conflicts(fake_api) <= 1

        code = await standby.stop(signal.SIGTERM)
        assert code == 0
        assert not any("Traceback" in line for line in standby.lines), standby.lines


async def run_once(env: dict[str, str], cwd: Path) -> tuple[int, list[str]]:
    process = await newsbot_run(env, cwd)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    lines = err.decode().strip().splitlines()
    return await process.wait(), lines


async def test_a_refused_token_is_one_line(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    env = instance_env(
        fake_api, f"sqlite:///{tmp_path / 'x.db'}", TELEGRAM_BOT_TOKEN="42:not-the-token"
    )
    code, lines = await run_once(env, tmp_path)
    assert code == 1
    assert lines[-1].startswith("newsbot: Telegram refused TELEGRAM_BOT_TOKEN")
    assert not any("Traceback" in line for line in lines)
    assert not any("not-the-token" in line for line in lines)  # the token is never printed


async def test_an_unreachable_bot_api_is_one_line(
    fake_api: FakeBotApiServer, tmp_path: Path
) -> None:
    """Nothing listens at TELEGRAM_BASE_URL: one line that says so, and the transport is
    closed (no "Unclosed client session" from aiohttp)."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = instance_env(
        fake_api,
        f"sqlite:///{tmp_path / 'x.db'}",
        TELEGRAM_BASE_URL=f"http://127.0.0.1:{port}/bot",
        TELEGRAM_BOT_TOKEN="42:secret-token-value",
    )
    code, lines = await run_once(env, tmp_path)
    assert code == 1
    assert lines[-1].startswith("newsbot: cannot reach the Telegram Bot API"), lines
    assert not any("Unclosed" in line or "Traceback" in line for line in lines), lines
    assert not any("secret-token-value" in line for line in lines)


async def test_a_taken_port_is_one_line(fake_api: FakeBotApiServer, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = instance_env(fake_api, f"sqlite:///{tmp_path / 'x.db'}", HTTP_PORT=str(port))
        code, lines = await run_once(env, tmp_path)
    assert code == 1
    assert lines[-1].startswith(f"newsbot: cannot listen on 127.0.0.1:{port}")
    assert not any("Traceback" in line for line in lines)
