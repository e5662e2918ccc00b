"""The HTTP transport for Bot API calls: PTB's httpx request with a queue in front of it."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram.request import HTTPXRequest

CONNECTIONS = 8


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
            return await super().do_request(*args, **kwargs)
