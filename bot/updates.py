"""Updates of different chats handled concurrently, each chat's in the order they came.

python-telegram-bot hands every update to an update processor, which holds one of
`max_concurrent_updates` slots while it runs. A chat's updates must not run side by side
(a reader's /subscribe and the button press after it, two page turns of one message), and a
chat that sends sixty commands in a row must not take sixty slots from everyone else.

So the first update of an idle chat takes a slot and becomes that chat's runner; updates of
the same chat that arrive while it runs join the chat's queue and give their slot back at
once. The runner works through the queue in arrival order, and the chat is idle again when
the queue is empty. A busy chat thus holds one slot, however much it sends.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from digests import i18n

log = logging.getLogger(__name__)

Observer = Callable[[str, float], None]
"""Called after each update with its type and seconds from arrival to handled."""


def user_language(update: object) -> str:
    """The language of the app of whoever sent the update (English when we don't speak it)."""
    user = update.effective_user if isinstance(update, Update) else None
    return i18n.language_for(user.language_code if user is not None else None)


def update_type(update: object) -> str:
    """The kind of an update for metrics: message, callback_query, edited_message, ..."""
    if isinstance(update, Update):
        for name in Update.ALL_TYPES:
            if getattr(update, name, None) is not None:
                return str(name)
    return "other"


def chat_key(update: object) -> int | None:
    """What orders updates: the chat, or the user where there is no chat (inline queries)."""
    if not isinstance(update, Update):
        return None
    if update.effective_chat is not None:
        return update.effective_chat.id
    if update.effective_user is not None:
        return update.effective_user.id
    return None


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Concurrent across chats, in order within one chat; a busy chat holds a single slot."""

    __slots__ = ("_clock", "_observe", "_queues")

    def __init__(
        self,
        max_concurrent_updates: int,
        *,
        observe: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self._queues: dict[int, deque[tuple[object, Awaitable[Any], float]]] = {}
        self._observe = observe
        self._clock = clock

    @property
    def busy_chats(self) -> int:
        """Chats with an update being handled right now."""
        return len(self._queues)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        arrived = self._clock()
        key = chat_key(update)
        if key is None:
            await self._run(update, coroutine, arrived)
            return
        queue = self._queues.get(key)
        if queue is not None:
            # The chat's runner will handle it after the ones before it; our slot is free now.
            queue.append((update, coroutine, arrived))
            return
        queue = self._queues[key] = deque()
        try:
            await self._run(update, coroutine, arrived)
            while queue:
                await self._run(*queue.popleft())
        finally:
            del self._queues[key]
            for _update, left, _arrived in queue:  # cancelled at shutdown: never started
                close = getattr(left, "close", None)
                if close is not None:
                    close()

    async def _run(self, update: object, coroutine: Awaitable[Any], arrived: float) -> None:
        try:
            # Answers come in the sender's Telegram language until a handler knows the chat's.
            with i18n.use(user_language(update)):
                await coroutine
        except Exception:  # PTB routes handler errors to on_error; this is a last guard
            log.exception("update in chat %s failed", chat_key(update))
        finally:
            if self._observe is not None:
                self._observe(update_type(update), self._clock() - arrived)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close: PTB waits for the running updates before shutting down."""
