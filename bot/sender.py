"""The delivery engine's Sender on python-telegram-bot: Telegram errors sorted by kind."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter
from telegram.ext import ExtBot

from bot.ratelimit import Priority, retry_after_seconds
from bot.replies import NO_PREVIEW
from digests.delivery import Outcome, SendPriority, SendResult

log = logging.getLogger(__name__)

_GONE = ("chat not found", "user is deactivated", "peer_id_invalid", "bot was kicked")


class TelegramSender:
    """Sends each part of a delivery in order; retries timeouts and 5xx with backoff."""

    def __init__(
        self, bot: ExtBot[Any], *, retries: int = 3, backoff: float = 0.5, max_backoff: float = 8.0
    ) -> None:
        self.bot = bot
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    async def send(
        self, chat_id: int, texts: Sequence[str], *, priority: SendPriority
    ) -> SendResult:
        sent: list[int] = []
        for text in texts:
            result = await self._send_part(chat_id, text, priority)
            if isinstance(result, SendResult):
                return SendResult(
                    result.outcome,
                    tuple(sent),
                    result.migrate_to,
                    result.retry_after,
                    result.error,
                )
            sent.append(result)
        return SendResult(Outcome.SENT, tuple(sent))

    async def _send_part(self, chat_id: int, text: str, priority: SendPriority) -> int | SendResult:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                message = await self.bot.send_message(
                    chat_id,
                    text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=NO_PREVIEW,
                    rate_limit_args=Priority(int(priority)),
                )
                return message.message_id
            except RetryAfter as exc:  # the limiter already waited out the short ones
                wait = retry_after_seconds(exc)
                return SendResult(Outcome.RETRY_LATER, retry_after=wait, error=f"429: {exc}")
            except Forbidden as exc:
                return SendResult(Outcome.BLOCKED, error=f"403: {exc.message}")
            except ChatMigrated as exc:
                return SendResult(Outcome.MIGRATED, migrate_to=exc.new_chat_id, error=str(exc))
            except BadRequest as exc:
                reason = exc.message.lower()
                if any(marker in reason for marker in _GONE):
                    return SendResult(Outcome.BLOCKED, error=f"400: {exc.message}")
                return SendResult(Outcome.FAILED, error=f"400: {exc.message}")
            except NetworkError as exc:  # timeouts and 5xx
                if attempt == self.retries:
                    return SendResult(Outcome.FAILED, error=f"network: {exc.message}")
                log.warning(
                    "chat %s: %s; retry %d/%d in %.1fs",
                    chat_id,
                    exc.message,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")
