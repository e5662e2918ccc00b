"""What crosses the send engine's boundary: the messages it sends (`Part`), the `Sender` port
the Telegram adapter implements, the `Renderer` its callers hand it, and the `RoundReport`
it answers with."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from digests.models import Chat, Delivery
from digests.readers.topics import TopicProblem
from digests.ui.shapes import Button


class SendPriority(enum.IntEnum):
    """Who goes first when sending is throttled (same order as the bot's rate limiter)."""

    INTERACTIVE = 0
    BREAKING = 1
    BULK = 2


class Outcome(enum.StrEnum):
    SENT = "sent"
    BLOCKED = "blocked"  # 403 or chat not found: the chat is gone for us
    MIGRATED = "migrated"  # a group became a supergroup with a new id
    RETRY_LATER = "retry_later"  # 429 with a long wait, or certainly not sent: come back later
    WITHDRAWN = "withdrawn"  # never went out: the row was no longer ours, or we are stopping
    UNCERTAIN = "uncertain"  # may have reached Telegram (no answer came back): never resent
    FAILED = "failed"  # permanent or exhausted: logged, the run goes on


@dataclass(frozen=True)
class Photo:
    """A message that goes out as a photo: `url` is an http(s) URL Telegram fetches, `caption`
    Telegram HTML within 1,024 visible characters, and `fallback` the whole message as
    Telegram-HTML text, sent instead when Telegram refuses the image."""

    url: str
    caption: str
    fallback: str
    thread: int | None = None  # a forum topic's message_thread_id (None: the General topic)


@dataclass(frozen=True)
class Text:
    """A Telegram-HTML text message with inline buttons under it (rows of `Button`s)."""

    html: str
    buttons: tuple[tuple[Button, ...], ...] = ()
    thread: int | None = None  # a forum topic's message_thread_id (None: the General topic)


Part = str | Text | Photo
"""One message of a delivery: Telegram-HTML text (with buttons or without), or a photo
with its caption."""

PHOTO = "photo"
"""SendResult.media (and deliveries.media) of a message that went out as a photo."""


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    message_ids: tuple[int, ...] = ()  # of the parts that did go out
    migrate_to: int | None = None
    retry_after: float | None = None
    error: str | None = None
    media: str | None = None  # PHOTO when a part went out as a photo; None for text only
    # topics Telegram refused (deleted or closed): their parts went to the General topic
    topic_problems: tuple[TopicProblem, ...] = ()


BeforeSend = Callable[[], Awaitable[bool]]
"""Called by a Sender right before a request leaves: True means go, False means withdraw."""


class Sender(Protocol):
    """Sends Telegram-HTML messages (or photos) to one chat; implemented by the Telegram adapter.

    A Photo whose image Telegram refuses goes out as its `fallback` text in the same send:
    the refusal is a definite answer, so nothing of it arrived and sending the text is safe.

    A Sender must await `before_send()` right before each request leaves (after any wait in
    a rate limiter, and again before later parts and retries): the engine marks the row
    SENDING there. When it returns False nothing may be sent, and the result is WITHDRAWN.
    """

    async def send(
        self,
        chat_id: int,
        texts: Sequence[Part],
        *,
        priority: SendPriority,
        before_send: BeforeSend | None = None,
    ) -> SendResult: ...


Renderer = Callable[[AsyncSession, list[tuple[Delivery, Chat]]], Awaitable[dict[int, list[Part]]]]
"""Messages for each (row, chat) of a batch, by delivery row id; [] means nothing to send.
Every caller of `deliver()` hands it one: the digest round its digests, a push its story."""


@dataclass
class RoundReport:
    scheduled: int = 0
    skipped_stale: int = 0
    sent: int = 0
    empty: int = 0
    blocked: int = 0
    failed: int = 0
    retry_later: int = 0
    uncertain: int = 0
    interrupted: int = 0  # of the uncertain: found in flight, their process dead
    lost_race: int = 0
    transactions: int = 0  # written while sending: claims, and journal flushes (see Journal)
    errors: list[str] = field(default_factory=list)

    def add(self, other: RoundReport) -> None:
        for name in (
            "scheduled",
            "skipped_stale",
            "sent",
            "empty",
            "blocked",
            "failed",
            "retry_later",
            "uncertain",
            "interrupted",
            "lost_race",
            "transactions",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
