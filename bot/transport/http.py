"""The HTTP transport for Bot API calls, with a queue in front of it.

`LeanRequest` is a python-telegram-bot `BaseRequest` over aiohttp with orjson: the same Bot
API calls and the same errors (`TimedOut`, `NetworkError`, and everything PTB raises from
the answer), at a third or less of the client CPU of PTB's httpx transport per request, and
without httpx's cost growing with the requests in flight (see bench/README.md, "The
transport").

The transport is also where a delivery learns that its request really leaves: a sender puts
an async `before_send` hook in `ANNOUNCE` around its call, and the transport awaits it once the
request holds a connection slot, right before it is written to the socket. Everything
before that point (the rate limiter, this queue) is waiting, which a crash cannot turn
into a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

import aiohttp
import httpx
import orjson
from telegram._utils.defaultvalue import DefaultValue  # noqa: PLC2701 (BaseRequest's own types)
from telegram._utils.types import JSONDict, ODVInput  # noqa: PLC2701
from telegram.error import NetworkError, TelegramError, TimedOut
from telegram.request import BaseRequest, RequestData

CONNECTIONS = 8
PAID_CONNECTIONS = 200

ANNOUNCE: ContextVar[Callable[[], Awaitable[bool]] | None] = ContextVar(
    "newsbot_announce_send", default=None
)
"""The current send's hook: awaited right before its request leaves; False withdraws it."""


class SendWithdrawn(TelegramError):
    """The request's `before_send` hook said no when its turn came: it was not sent."""


class PoolTimeout(Exception):
    """The cause of a `TimedOut` raised while a request waited for a connection: not sent."""


NOT_SENT_CAUSES: tuple[type[BaseException], ...] = (
    # PTB's own httpx transport (getUpdates uses it; build_application(request=...) may)
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    PoolTimeout,
    aiohttp.ClientConnectorError,  # no connection could be made
    aiohttp.ConnectionTimeoutError,  # no connection within the timeout (pool wait included)
)
"""Transport errors under a `NetworkError` after which the request certainly never left."""


def announces_sends(request: BaseRequest) -> bool:
    """Whether this transport awaits the `ANNOUNCE` hook itself (else the caller must)."""
    return isinstance(request, LeanRequest)


class LeanRequest(BaseRequest):
    """PTB's `BaseRequest` over aiohttp: JSON bodies and answers through orjson.

    Requests without files go as one `application/json` body (Telegram takes JSON as well as
    forms) serialised once by orjson, instead of a form whose every value `json.dumps` encodes
    separately. Requests with files go as multipart forms, as PTB sends them. At most
    `connections` requests hold a connection at once; the rest wait in an asyncio queue, in
    the order the rate limiter let them through. A wait longer than `pool_timeout` is a
    `TimedOut` that certainly sent nothing (as PTB's pool timeout is).
    """

    __slots__ = (
        "_connections",
        "_connect_timeout",
        "_gate",
        "_media_write_timeout",
        "_pool_timeout",
        "_read_timeout",
        "_session",
        "_write_timeout",
    )

    def __init__(
        self,
        *,
        connections: int = CONNECTIONS,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
        media_write_timeout: float | None = 20.0,
    ) -> None:
        self._connections = connections
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._pool_timeout = pool_timeout
        self._media_write_timeout = media_write_timeout
        self._gate = asyncio.Semaphore(connections)
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._connections, keepalive_timeout=60, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self.USER_AGENT},
                skip_auto_headers=("Accept-Encoding",),
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    @staticmethod
    def parse_json_payload(payload: bytes) -> JSONDict:
        try:
            parsed: JSONDict = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise TelegramError("Invalid server response") from exc
        return parsed

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This LeanRequest is not initialized!")
        files = request_data is not None and request_data.contains_files
        read = _given(read_timeout, self._read_timeout)
        write = _given(write_timeout, self._media_write_timeout if files else self._write_timeout)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=_given(pool_timeout, self._pool_timeout),  # the connector's own pool wait
            sock_connect=_given(connect_timeout, self._connect_timeout),
            # aiohttp has no write timeout: the answer must come within the read timeout once
            # reading starts, plus the write timeout for an upload (a photo's bytes)
            sock_read=read if not files or read is None or write is None else read + write,
        )
        headers: dict[str, str] | None = None
        body: bytes | aiohttp.FormData | None = None
        if request_data is not None:
            if files:
                body = _form(request_data)
            else:
                body = orjson.dumps(request_data.parameters)
                headers = {"Content-Type": "application/json"}
        if self._gate.locked():  # wait, but no longer than the pool timeout
            try:
                await asyncio.wait_for(
                    self._gate.acquire(), _given(pool_timeout, self._pool_timeout)
                )
            except TimeoutError:
                raise TimedOut(
                    "Pool timeout: all connections are busy. The request was *not* sent."
                ) from PoolTimeout()
        else:  # a free slot: taken at once, without wait_for's task around it
            await self._gate.acquire()
        try:
            hook = ANNOUNCE.get()
            if hook is not None and not await hook():
                raise SendWithdrawn("withdrawn by its sender before it left")
            async with session.request(
                method, url, data=body, headers=headers, timeout=timeout
            ) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{error.__class__.__name__}: {error}") from error
        finally:
            self._gate.release()


def _given(value: ODVInput[float], default: float | None) -> float | None:
    """A timeout passed to the call, or this transport's default for it."""
    return default if isinstance(value, DefaultValue) else value


def _form(request_data: RequestData) -> aiohttp.FormData:
    """A multipart body with the files, as PTB's own transport sends it."""
    form = aiohttp.FormData(quote_fields=False)
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, (filename, content, mime) in request_data.multipart_data.items():
        form.add_field(name, content, filename=filename, content_type=mime)
    return form
