"""The delivery engine's Sender on python-telegram-bot: Telegram errors sorted by kind.

"Never twice" must hold on a bad network too, so every failed request is first asked one
question: could Telegram have received it? Telegram offers no way to ask it afterwards, so
the answer comes from how the request failed:

- **Certainly not received, so retried here** (with backoff, then handed back as
  RETRY_LATER so a later tick tries again):
  - a connect error or connect timeout: no connection, so no request;
  - a pool timeout: the request waited for a free connection and never left the machine;
  - a 5xx answer: Telegram answered, and a 5xx means it did not process the request;
  - a 429: Telegram refused it, and says when to come back (the limiter waits out short ones).
- **Maybe received, so never sent again** (recorded UNCERTAIN, counted in /stats and
  metrics):
  - a read timeout: the whole request went out, and only the answer is missing;
  - the server closing the connection, or a read error, before answering: same;
  - a write timeout or write error: part of the request went out, and we cannot tell how
    much;
  - any other failure inside the HTTP layer, because we cannot tell either.
- **Refused, with a definite answer**: 403 and "chat not found" mean the chat is gone
  (BLOCKED), and so do the 400s of a channel or group where the bot lost its rights to
  post ("need administrator rights", CHAT_WRITE_FORBIDDEN, "not enough rights to send");
  ChatMigrated moves the chat to its new id; any other 400 is FAILED and logged.
  A part meant for a forum topic that is deleted ("message thread not found") or closed
  (TOPIC_CLOSED) is another exception: nothing of it arrived, so it is sent again, at once,
  to the General topic, and the topic is reported in SendResult.topic_problems.
  A photo whose image Telegram refuses (a 400 that `image_refused` recognises) is the one
  exception: nothing of it arrived, so its fallback text is sent instead, in the same send
  (the row is SENDING already, and stays so until the text's answer is recorded).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from telegram import InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter
from telegram.ext import ExtBot

from bot.transport.http import ANNOUNCE, NOT_SENT_CAUSES, SendWithdrawn, announces_sends
from bot.transport.markup import markup
from bot.transport.ratelimit import Priority, RateLimiterClosedError, retry_after_seconds
from bot.transport.replies import NO_PREVIEW, image_refused
from digests.delivery.ports import (
    PHOTO,
    BeforeSend,
    Outcome,
    Part,
    Photo,
    SendPriority,
    SendResult,
    Text,
)
from digests.readers.topics import TopicProblem, TopicTrouble, topic_trouble
from digests.ui.shapes import Button

log = logging.getLogger(__name__)

_GONE = (
    "chat not found",
    "user is deactivated",
    "peer_id_invalid",
    "bot was kicked",
    # a channel or group where the bot lost its rights: gone until an admin gives them back
    "bot is not a member",
    "need administrator rights",
    "chat_write_forbidden",
    "not enough rights to send",
    "chat_admin_required",
)
RETRY_LATER_SECONDS = 30.0
"""When retries here are used up on a request that certainly did not arrive, the row waits
this long and a later tick tries again (up to the engine's attempt limit)."""


class Reach(enum.Enum):
    """Whether a failed request may have reached Telegram."""

    NOT_SENT = "not_sent"
    MAYBE_SENT = "maybe_sent"


def reach_of(exc: NetworkError) -> Reach:
    """Sort a NetworkError (TimedOut included) by whether Telegram may have received it."""
    cause = exc.__cause__
    if isinstance(cause, NOT_SENT_CAUSES):
        return Reach.NOT_SENT
    if isinstance(cause, BaseException):
        # A transport failure after the connection was made, or an unknown one: the request
        # (or part of it) may have been read and acted on by Telegram.
        return Reach.MAYBE_SENT
    # No transport error underneath: PTB raised it for an HTTP answer, which for a
    # NetworkError is a 5xx (502 Bad Gateway and the like): Telegram did not process it.
    return Reach.NOT_SENT


OutcomeObserver = Callable[[SendPriority, Outcome], None]


class TelegramSender:
    """Sends each part of a delivery in order; retries only what certainly did not arrive."""

    def __init__(
        self,
        bot: ExtBot[Any],
        *,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        observe: OutcomeObserver | None = None,
    ) -> None:
        self.bot = bot
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.observe = observe

    async def send(
        self,
        chat_id: int,
        texts: Sequence[Part],
        *,
        priority: SendPriority,
        before_send: BeforeSend | None = None,
    ) -> SendResult:
        """Send the parts in order; `before_send` is awaited as each request leaves (see
        digests.delivery.ports.Sender): by the transport once the request has passed the rate
        limiter and holds a connection, or here, first, with a transport that cannot."""
        if before_send is not None and not announces_sends(self.bot.request):
            if not await before_send():
                return SendResult(Outcome.WITHDRAWN, error="withdrawn")
            before_send = None
        token = ANNOUNCE.set(before_send)
        try:
            result = await self._send_all(chat_id, texts, Priority(int(priority)))
        finally:
            ANNOUNCE.reset(token)
        if self.observe is not None and result.outcome is not Outcome.WITHDRAWN:
            self.observe(priority, result.outcome)
        return result

    async def _send_all(self, chat_id: int, texts: Sequence[Part], limit: Priority) -> SendResult:
        sent: list[int] = []
        media: str | None = None
        problems: list[TopicProblem] = []
        refused: dict[int, TopicProblem] = {}  # a topic refused once is not tried again
        for part in texts:
            thread = _thread_of(part)
            if thread is not None and thread in refused:
                part = _in_general(part)
            result = await self._send_part(chat_id, part, limit)
            trouble = (
                _topic_refusal(result) if thread is not None and thread not in refused else None
            )
            if trouble is not None:
                assert thread is not None
                log.info("chat %s: topic %s is %s: sending to General", chat_id, thread, trouble)
                refused[thread] = TopicProblem(thread, trouble)
                problems.append(refused[thread])
                result = await self._send_part(chat_id, _in_general(part), limit)
            if isinstance(result, SendResult):
                return SendResult(
                    result.outcome,
                    tuple(sent),
                    result.migrate_to,
                    result.retry_after,
                    result.error,
                    media,
                    tuple(problems),
                )
            message_id, as_photo = result
            sent.append(message_id)
            media = PHOTO if as_photo else media
        return SendResult(Outcome.SENT, tuple(sent), media=media, topic_problems=tuple(problems))

    async def _send_part(
        self, chat_id: int, part: Part, limit: Priority
    ) -> tuple[int, bool] | SendResult:
        """One message: (its id, whether it went out as a photo), or why it did not go out."""
        text = part
        if isinstance(part, Photo):
            sent = await self._send_one(chat_id, part, limit)
            if not isinstance(sent, _ImageRefused):
                return sent if isinstance(sent, SendResult) else (sent, True)
            log.info(
                "chat %s: Telegram refused the image %s (%s): sending the story as text",
                chat_id,
                part.url[:200],
                sent.reason,
            )
            text = part.fallback if part.thread is None else Text(part.fallback, thread=part.thread)
        assert isinstance(text, str | Text)
        done = await self._send_one(chat_id, text, limit)
        assert not isinstance(done, _ImageRefused)
        return done if isinstance(done, SendResult) else (done, False)

    async def _send_one(
        self, chat_id: int, part: Part, limit: Priority
    ) -> int | SendResult | _ImageRefused:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                if isinstance(part, Photo):
                    message = await self.bot.send_photo(
                        chat_id,
                        part.url,
                        caption=part.caption,
                        parse_mode=ParseMode.HTML,
                        message_thread_id=part.thread,
                        rate_limit_args=limit,
                    )
                else:
                    html, keyboard = (
                        (part.html, _keyboard(part.buttons))
                        if isinstance(part, Text)
                        else (part, None)
                    )
                    message = await self.bot.send_message(
                        chat_id,
                        html,
                        parse_mode=ParseMode.HTML,
                        link_preview_options=NO_PREVIEW,
                        reply_markup=keyboard,
                        message_thread_id=_thread_of(part),
                        rate_limit_args=limit,
                    )
                return message.message_id
            except (SendWithdrawn, RateLimiterClosedError) as exc:  # it never left
                return SendResult(Outcome.WITHDRAWN, error=str(exc))
            except RetryAfter as exc:  # the limiter already waited out the short ones
                wait = retry_after_seconds(exc)
                return SendResult(Outcome.RETRY_LATER, retry_after=wait, error=f"429: {exc}")
            except Forbidden as exc:
                return SendResult(Outcome.BLOCKED, error=f"403: {exc.message}")
            except ChatMigrated as exc:
                return SendResult(Outcome.MIGRATED, migrate_to=exc.new_chat_id, error=str(exc))
            except BadRequest as exc:
                reason = exc.message.lower()
                if isinstance(part, Photo) and image_refused(exc):
                    return _ImageRefused(exc.message)
                if any(marker in reason for marker in _GONE):
                    return SendResult(Outcome.BLOCKED, error=f"400: {exc.message}")
                return SendResult(Outcome.FAILED, error=f"400: {exc.message}")
            except NetworkError as exc:  # timeouts, transport errors and 5xx answers
                if reach_of(exc) is Reach.MAYBE_SENT:
                    log.warning(
                        "chat %s: %s after the request went out: it may have arrived, "
                        "so it is not sent again",
                        chat_id,
                        _describe(exc),
                    )
                    return SendResult(Outcome.UNCERTAIN, error=f"uncertain: {_describe(exc)}")
                if attempt == self.retries:
                    return SendResult(
                        Outcome.RETRY_LATER,
                        retry_after=RETRY_LATER_SECONDS,
                        error=f"not sent: {_describe(exc)}",
                    )
                log.warning(
                    "chat %s: %s (not sent); retry %d/%d in %.1fs",
                    chat_id,
                    _describe(exc),
                    attempt + 1,
                    self.retries,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")


def _thread_of(part: Part) -> int | None:
    return part.thread if isinstance(part, Text | Photo) else None


def _in_general(part: Part) -> Part:
    return dataclasses.replace(part, thread=None) if isinstance(part, Text | Photo) else part


def _topic_refusal(result: tuple[int, bool] | SendResult) -> TopicTrouble | None:
    """Whether a part sent into a topic failed because the topic is deleted or closed."""
    if not isinstance(result, SendResult) or result.outcome is not Outcome.FAILED:
        return None
    return topic_trouble(result.error or "")


@dataclasses.dataclass(frozen=True)
class _ImageRefused:
    """Telegram answered a photo with a 400 about its image: nothing of it arrived."""

    reason: str


def _describe(exc: NetworkError) -> str:
    cause = exc.__cause__
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    return exc.message


@functools.lru_cache(maxsize=256)
def _keyboard(buttons: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
    """A delivery's buttons as PTB's markup, built once for all the chats that get the same
    (PTB's markup objects are immutable, so one serves every send)."""
    return markup([list(row) for row in buttons])
