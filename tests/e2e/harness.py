"""Runs the real Application against the loopback fake Bot API, as a reader would use it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.app import build_application
from bot.context import NewsApp
from bot.runtime import serve
from digests.settings import Settings
from fakebotapi.emulator import StoredMessage
from fakebotapi.server import FakeBotApiServer

SAMPLE = Path(__file__).parents[2] / "digests" / "data" / "sample_feed.xml"


def e2e_settings(server: FakeBotApiServer, db_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": server.emulator.token,
        "telegram_base_url": server.base_url,
        "database_url": db_url,
        # the fake server enforces no limits here; the limiter has its own tests
        "send_rate_limit": 0,
        "private_chat_rate_limit": 0,
        "group_rate_limit_per_min": 0,
        "publisher_name": "The Daily Meridian",
    }
    values.update(overrides)
    return Settings(**values)


class Errors(logging.Handler):
    """Collects ERROR records of our code, so a test can assert nothing blew up.

    PTB's Updater is left out: stopping it while a poll has just fetched an update makes it
    log CRITICAL that the update will be fetched again on restart; that is test teardown,
    not the bot failing.
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith("telegram.ext.Updater"):
            self.records.append(record)


@contextmanager
def logged_errors() -> Iterator[list[logging.LogRecord]]:
    """The ERROR records our code logs while the block runs (see Errors)."""
    errors = Errors()
    logging.getLogger().addHandler(errors)
    try:
        yield errors.records
    finally:
        logging.getLogger().removeHandler(errors)


@asynccontextmanager
async def running_bot(
    server: FakeBotApiServer,
    settings: Settings,
    *,
    now: datetime | None = None,
    with_jobs: bool = False,
) -> AsyncIterator[NewsApp]:
    """Start the Application polling the fake server; stop it cleanly afterwards."""
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    app = build_application(settings, clock=clock, with_jobs=with_jobs)
    await app.initialize()
    assert app.post_init is not None
    await app.post_init(app)
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
        assert app.post_shutdown is not None
        await app.post_shutdown(app)


@asynccontextmanager
async def running_service(
    settings: Settings,
) -> AsyncIterator[tuple[NewsApp, str]]:
    """`serve()` in this process, as `newsbot run` starts it; yields the app and its URL."""
    application = build_application(settings)
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        serve(settings, application=application, stop=stop, on_ready=ready.set_result)
    )
    done, _ = await asyncio.wait([task, ready], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()  # raise what stopped it
    port = ready.result()
    try:
        yield application, f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class Reader:
    """One Telegram user talking to the bot through the emulator."""

    def __init__(self, server: FakeBotApiServer, user_id: int, chat_id: int | None = None) -> None:
        self.emulator = server.emulator
        self.user_id = user_id
        self.chat_id = chat_id if chat_id is not None else user_id

    def bot_messages(self) -> list[StoredMessage]:
        return self.emulator.messages(self.chat_id)

    async def send(self, text: str, *, replies: int = 1) -> list[StoredMessage]:
        """Send text and wait for `replies` new bot messages; returns them."""
        before = len(self.bot_messages())
        self.emulator.user_sends(self.user_id, text, chat_id=self.chat_id)
        await self.emulator.wait_for(lambda: len(self.bot_messages()) >= before + replies)
        return self.bot_messages()[before:]

    async def press(
        self, message: StoredMessage, data: str, *, force: bool = False
    ) -> dict[str, Any]:
        """Tap a button and wait until the bot answers the callback; returns the answer."""
        query_id = self.emulator.press_button(
            self.user_id, message.message_id, data, chat_id=self.chat_id, force=force
        )
        await self.emulator.wait_for(lambda: self.emulator.is_answered(query_id))
        return self.emulator.callback_answers[query_id]

    def current(self, message: StoredMessage) -> StoredMessage:
        return self.emulator.message(self.chat_id, message.message_id)


def button(message: StoredMessage, label: str) -> str:
    """The callback_data of the button whose text contains `label`."""
    for b in message.buttons:
        if label in b["text"] and "callback_data" in b:
            return str(b["callback_data"])
    raise AssertionError(f"no button {label!r} in {[b['text'] for b in message.buttons]}")
