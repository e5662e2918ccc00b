"""Editing and deleting sent messages on the Bot API: the Telegram adapter of
digests.newsroom.corrections' Editor port (corrections and withdrawals of a push)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter
from telegram.ext import ExtBot

from bot.transport.ratelimit import Priority, RateLimiterClosedError, retry_after_seconds
from bot.transport.replies import NO_PREVIEW
from bot.transport.sender import RETRY_LATER_SECONDS
from digests.newsroom.actions import EditOutcome, EditResult

log = logging.getLogger(__name__)

_GONE = (
    "message to edit not found",
    "message to delete not found",
    "chat not found",
    "user is deactivated",
    "peer_id_invalid",
    "bot was kicked",
)


class TelegramEditor:
    """Edits and deletes sent messages at bulk priority (the rate limiter waits out short
    flood limits). An edit sets the same text again when repeated, so a request whose answer
    was lost is simply sent again; a deletion too (a second one finds nothing to delete)."""

    def __init__(self, bot: ExtBot[Any], *, retries: int = 3, backoff: float = 0.5) -> None:
        self.bot = bot
        self.retries = retries
        self.backoff = backoff

    async def edit(self, chat_id: int, message_id: int, text: str, *, photo: bool) -> EditResult:
        async def call() -> object:
            if photo:
                return await self.bot.edit_message_caption(
                    chat_id=chat_id,
                    message_id=message_id,
                    caption=text,
                    parse_mode=ParseMode.HTML,
                    rate_limit_args=Priority.BULK,
                )
            return await self.bot.edit_message_text(
                text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                link_preview_options=NO_PREVIEW,
                rate_limit_args=Priority.BULK,
            )

        return await self._attempt(chat_id, call)

    async def delete(self, chat_id: int, message_id: int) -> EditResult:
        async def call() -> object:
            return await self.bot.delete_message(chat_id, message_id, rate_limit_args=Priority.BULK)

        return await self._attempt(chat_id, call, deleting=True)

    async def _attempt(
        self,
        chat_id: int,
        call: Callable[[], Coroutine[Any, Any, object]],
        *,
        deleting: bool = False,
    ) -> EditResult:
        delay = self.backoff
        maybe_done = False  # an earlier attempt may have reached Telegram
        for attempt in range(self.retries + 1):
            try:
                await call()
                return EditResult(EditOutcome.EDITED)
            except RateLimiterClosedError as exc:  # stopping: never left
                return EditResult(EditOutcome.RETRY_LATER, RETRY_LATER_SECONDS, str(exc))
            except RetryAfter as exc:  # the limiter already waited out the short ones
                wait = retry_after_seconds(exc)
                return EditResult(EditOutcome.RETRY_LATER, wait, f"429: {exc}")
            except Forbidden as exc:
                return EditResult(EditOutcome.GONE, error=f"403: {exc.message}")
            except ChatMigrated as exc:
                return EditResult(EditOutcome.GONE, error=str(exc))
            except BadRequest as exc:
                reason = exc.message.lower()
                if "not modified" in reason:
                    return EditResult(EditOutcome.UNCHANGED)
                if "can't be deleted" in reason:
                    return EditResult(EditOutcome.TOO_OLD, error=exc.message)
                if deleting and maybe_done and "not found" in reason:
                    return EditResult(EditOutcome.EDITED)  # the lost first try deleted it
                if any(marker in reason for marker in _GONE):
                    return EditResult(EditOutcome.GONE, error=f"400: {exc.message}")
                return EditResult(EditOutcome.FAILED, error=f"400: {exc.message}")
            except NetworkError as exc:  # timeouts, transport errors, 5xx: safe to repeat
                maybe_done = maybe_done or exc.__cause__ is not None
                if attempt == self.retries:
                    return EditResult(
                        EditOutcome.RETRY_LATER, RETRY_LATER_SECONDS, f"network: {exc}"
                    )
                log.warning(
                    "chat %s: %s; retry %d/%d in %.1fs",
                    chat_id,
                    exc,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 8.0)
        raise AssertionError("unreachable")
