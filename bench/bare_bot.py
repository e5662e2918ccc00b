"""A bare python-telegram-bot bot, the reference that bench.burst compares newsbot with.

    python -m bench.bare_bot        (BARE_BOT_TOKEN and BARE_BOT_BASE_URL in the environment)

PTB as its documentation starts you off: a default `ApplicationBuilder` (no rate limiter,
updates handled one at a time, its default HTTP pools), polling, and a /start handler that
replies with one message. Nothing of newsbot is imported. It prints "bare bot is polling"
once getUpdates runs, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from telegram import Update
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

READY = "bare bot is polling"
WELCOME = (
    "Welcome to The Newsroom! Choose the sections you want in your daily digest, "
    "or send /latest to read the newest stories now."
)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply to /start with one message."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(WELCOME)


async def main() -> None:
    application = (
        ApplicationBuilder()
        .token(os.environ["BARE_BOT_TOKEN"])
        .base_url(os.environ["BARE_BOT_BASE_URL"])
        .build()
    )
    application.add_handler(CommandHandler("start", start))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with application:
        assert application.updater is not None
        await application.updater.start_polling()
        await application.start()
        print(READY, flush=True)
        await stop.wait()
        await application.updater.stop()
        await application.stop()


if __name__ == "__main__":
    # httpx logs every request URL (with the token) at INFO: keep to warnings and errors.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main())
