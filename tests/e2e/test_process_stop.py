"""A real `newsbot run` process, stopped by SIGTERM or SIGINT in the middle of a breaking push.

The fake Bot API runs in this test's process with Telegram's limits on (30 messages a second
overall), so a push to a few hundred readers takes seconds. The bot is a child process, as an
operator or a container runtime starts it; the signal comes while the push goes out. It must
exit promptly and cleanly, leave no row in doubt, and the next start must finish the push
with every reader getting the story exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from digests.db import make_engine, make_session_factory
from digests.models import BreakingPush, Chat, ChatKind, Delivery, PushStatus, Subscription
from digests.newsroom import breaking
from digests.settings import Settings
from digests.stories.sections import get_or_create_sections
from fakebotapi.emulator import BotApiEmulator, RateLimits
from fakebotapi.server import FakeBotApiServer

REPO = Path(__file__).resolve().parents[2]
READERS = 240  # 8 s of sending at Telegram's 30 messages a second
FIRST_READER = 5_000_001
STOP_LIMIT = 10.0  # seconds from the signal to the process's exit
START_LIMIT = 30.0
HEADLINE = "Levee holds after the night"


@dataclass(frozen=True)
class Push:
    push_id: int
    article_id: int
    readers: list[int]


async def _seed_and_confirm_push(url: str) -> Push:
    """READERS private chats following World with alerts on (digests off, so the push is the
    only thing sent), and a breaking push to World confirmed as an editor's Send does."""
    now = datetime.now(UTC)
    readers = list(range(FIRST_READER, FIRST_READER + READERS))
    engine = make_engine(url)
    try:
        async with make_session_factory(engine).begin() as session:
            world = (await get_or_create_sections(session, ["World"], now=now))["World"]
            chat = {"kind": ChatKind.PRIVATE, "timezone": "UTC", "alerts": True, "active": True}
            await session.execute(
                insert(Chat),
                [{**chat, "telegram_id": t, "created_at": now, "updated_at": now} for t in readers],
            )
            chat_ids = await session.scalars(
                select(Chat.id).where(Chat.telegram_id >= FIRST_READER)
            )
            await session.execute(
                insert(Subscription),
                [{"chat_id": c, "section_id": world.id, "created_at": now} for c in chat_ids],
            )
        async with make_session_factory(engine).begin() as session:
            draft = await breaking.draft_breaking(
                session,
                ["world", HEADLINE],
                admin_id=1,
                admin_chat_id=1,
                now=now,
                default_section="General",
            )
            assert draft is not None and draft.audience == READERS
            assert await breaking.confirm(session, draft.push.id, now=now) is not None
            return Push(draft.push.id, draft.push.article_id, readers)
    finally:
        await engine.dispose()


async def _rows(url: str, article_id: int) -> Counter[str]:
    """The push's delivery rows by status."""
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            found = await session.execute(
                select(Delivery.status, func.count())
                .where(Delivery.article_id == article_id)
                .group_by(Delivery.status)
            )
            return Counter({str(status.value): int(n) for status, n in found})
    finally:
        await engine.dispose()


async def _push_status(url: str, push_id: int) -> PushStatus | None:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            return await session.scalar(
                select(BreakingPush.status).where(BreakingPush.id == push_id)
            )
    finally:
        await engine.dispose()


def _bot_env(api: FakeBotApiServer, url: str) -> dict[str, str]:
    """This environment without any newsbot setting an operator may have exported, plus the
    fake's token and URL and the test database; every limit at its default."""
    names = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in os.environ.items() if key.upper() not in names}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        TELEGRAM_BOT_TOKEN=api.emulator.token,
        TELEGRAM_BASE_URL=api.base_url,
        DATABASE_URL=url,
        HTTP_HOST="127.0.0.1",
        HTTP_PORT="0",
    )
    return env


class Bot:
    """A `newsbot run` child process; its stderr goes to a file (a pipe nobody reads could
    fill up and stall it)."""

    def __init__(self, process: asyncio.subprocess.Process, stderr: Path) -> None:
        self.process = process
        self.stderr_path = stderr

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def stop(self, sig: signal.Signals) -> tuple[int, float]:
        """Send `sig`; the exit status and the seconds until the process was gone."""
        sent = time.monotonic()
        self.process.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.process.wait(), STOP_LIMIT * 3)
        except TimeoutError:
            pytest.fail(f"newsbot ignored {sig.name} for {STOP_LIMIT * 3:.0f} s:\n{self.stderr}")
        return code, time.monotonic() - sent


@asynccontextmanager
async def newsbot_run(api: FakeBotApiServer, url: str, workdir: Path) -> AsyncIterator[Bot]:
    """Start `newsbot run` (in `workdir`, so no .env of the repository applies); kill it at the
    end if the test did not stop it."""
    stderr = workdir / f"newsbot-{time.monotonic_ns()}.log"
    with stderr.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "run",
            cwd=workdir,
            env=_bot_env(api, url),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=sink,
        )
    bot = Bot(process, stderr)
    try:
        yield bot
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _wait_until(check: Callable[[], bool], what: str, bot: Bot, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not check():
        if bot.process.returncode is not None:
            pytest.fail(f"newsbot exited {bot.process.returncode} before {what}:\n{bot.stderr}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {limit:.0f} s:\n{bot.stderr}")
        await asyncio.sleep(0.05)


def _assert_clean(bot: Bot, token: str) -> None:
    log = bot.stderr
    assert "Traceback" not in log, log
    assert token not in log and token.partition(":")[2] not in log, "the token leaked"
    assert " ERROR " not in log and " CRITICAL " not in log, log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_stops_newsbot_mid_push_within_10_s_and_the_next_start_finishes_it(
    sig: signal.Signals, db_url: str, tmp_path: Path
) -> None:
    push = await _seed_and_confirm_push(db_url)
    emulator = BotApiEmulator(limits=RateLimits())  # Telegram's: 30/s overall, 1/s a chat
    for reader in push.readers:
        emulator.add_user(reader, started=True)

    def received() -> Counter[int]:
        return Counter({r: n for r in push.readers if (n := len(emulator.messages(r)))})

    async with FakeBotApiServer(emulator) as api:
        async with newsbot_run(api, db_url, tmp_path) as bot:
            await _wait_until(
                lambda: sum(received().values()) >= 30, "30 readers reached", bot, START_LIMIT
            )
            code, seconds = await bot.stop(sig)
        print(f"\nnewsbot run stopped {seconds:.2f} s after {sig.name} (exit status {code})")
        assert seconds < STOP_LIMIT, f"newsbot took {seconds:.2f} s to stop after {sig.name}"
        assert code == 0, f"exit status {code} after {sig.name}:\n{bot.stderr}"
        _assert_clean(bot, emulator.token)

        got = received()
        assert max(got.values()) == 1  # nobody twice
        delivered = sum(got.values())
        rows = await _rows(db_url, push.article_id)
        assert rows["sending"] == 0, rows  # nothing left in doubt
        assert rows["sent"] == delivered, rows  # what went out is recorded
        assert rows["pending"] == READERS - delivered > 0, rows  # the rest waits
        assert set(rows) <= {"sent", "pending"}, rows
        assert await _push_status(db_url, push.push_id) == PushStatus.SENDING

        async with newsbot_run(api, db_url, tmp_path) as again:
            await _wait_until(
                lambda: len(received()) == READERS, "push to every reader", again, START_LIMIT
            )
            done: list[PushStatus | None] = []

            async def finished() -> None:
                while (status := await _push_status(db_url, push.push_id)) != PushStatus.DONE:
                    assert again.process.returncode is None, again.stderr
                    await asyncio.sleep(0.1)
                done.append(status)

            await asyncio.wait_for(finished(), 10)
            code, seconds = await again.stop(sig)
        print(f"idle newsbot run stopped {seconds:.2f} s after {sig.name} (exit status {code})")
        assert seconds < STOP_LIMIT and code == 0, (seconds, code, again.stderr)
        _assert_clean(again, emulator.token)

    assert received() == Counter(dict.fromkeys(push.readers, 1))  # every reader exactly once
    rows = await _rows(db_url, push.article_id)
    assert rows == Counter(sent=READERS), rows
    sent = [c for c in emulator.calls if c.method == "sendMessage" and c.error is None]
    assert all(HEADLINE in str(c.params.get("text")) for c in sent)
