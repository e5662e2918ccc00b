"""The HTTP transport for Bot API calls: PTB's httpx request with a queue in front of it.

It is also where a delivery learns that its request really leaves: a sender puts an async
`before_send` hook in `ANNOUNCE` around its call, and the transport awaits it once the
request holds a connection slot, right before it is written to the socket. Everything
before that point (the rate limiter, this queue) is waiting, which a crash cannot turn
into a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from telegram.error import TelegramError
from telegram.request import BaseRequest, HTTPXRequest

CONNECTIONS = 8

ANNOUNCE: ContextVar[Callable[[], Awaitable[bool]] | None] = ContextVar(
    "newsbot_announce_send", default=None
)
"""The current send's hook: awaited right before its request leaves; False withdraws it."""


class SendWithdrawn(TelegramError):
    """The request's `before_send` hook said no when its turn came: it was not sent."""


def announces_sends(request: BaseRequest) -> bool:
    """Whether this transport awaits the `ANNOUNCE` hook itself (else the caller must)."""
    return isinstance(request, BoundedHTTPXRequest)


class BoundedHTTPXRequest(HTTPXRequest):
    """At most `connections` requests reach httpx at once; the rest wait in an asyncio queue.

    httpx's pool rescans every waiting request against every connection each time one frees
    up, which costs more than the sending itself during a broadcast. Waiting here instead is
    cheap, and the rate limiter in front has already put the most urgent requests first.
    """

    __slots__ = ("_gate",)

    def __init__(self, *, connections: int = CONNECTIONS, **kwargs: Any) -> None:
        super().__init__(connection_pool_size=connections, **kwargs)
        self._gate = asyncio.Semaphore(connections)

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        async with self._gate:
            hook = ANNOUNCE.get()
            if hook is not None and not await hook():
                raise SendWithdrawn("withdrawn by its sender before it left")
            return await super().do_request(*args, **kwargs)
