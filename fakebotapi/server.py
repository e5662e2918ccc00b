"""A loopback HTTP server speaking the Telegram Bot API, backed by a BotApiEmulator.

    async with FakeBotApiServer() as server:
        app = ApplicationBuilder().token(server.emulator.token).base_url(server.base_url).build()

PTB appends the token to `base_url`, so requests arrive at /bot<token>/<method> as JSON,
form-urlencoded or multipart bodies (or query strings), exactly as they would at Telegram.

Webhooks are delivered for real: while one is set, a task POSTs each pending update to it, as
Telegram does (secret header, at most `max_connections` requests at once, one at a time per
chat, retries with backoff until a 2xx). `webhook_routes` plays the reverse proxy in front of
the bot, mapping the public https URL given to setWebhook to a local address:

    async with FakeBotApiServer(webhook_routes={"https://bot.example": "http://127.0.0.1:8080"}):
        ...  # setWebhook("https://bot.example/tg") is delivered to http://127.0.0.1:8080/tg

Network faults (`NetworkFaults`, `emulator.withhold_next`) are decided by the emulator; this
server only carries them out: a withheld answer closes the connection without a response.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from fakebotapi.emulator import (
    AnswerWithheld,
    ApiError,
    BotApiEmulator,
    NetworkFaults,
    webhook_queue,
)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


def _reply(status: int, payload: Any) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
    )


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON body must be an object")
        params.update(body)
    elif request.content_type in _FORM_TYPES:
        form = await request.post()
        for name, value in form.items():
            if isinstance(value, web.FileField):
                # Uploads are not emulated: keep the file name so the call is still recorded.
                params[name] = value.filename
                value.file.close()
            else:
                params[name] = value if isinstance(value, str) else value.decode("utf-8")
    return params


class WebhookDelivery(NamedTuple):
    """One attempt to deliver an update to the webhook."""

    update_id: int
    url: str  # where it went (the local address the route gave)
    status: int | None  # the webhook's HTTP status; None when it never answered
    error: str | None  # None on success; else what getWebhookInfo's last_error_message says
    time: float  # time.monotonic() when the request was sent
    duration: float  # seconds until the answer or the failure

    @property
    def ok(self) -> bool:
        return self.error is None


class _WebhookDeliverer:
    """Pushes the emulator's pending updates to its webhook, as Telegram's servers do."""

    def __init__(
        self,
        emulator: BotApiEmulator,
        target: Callable[[str], str | None],
        deliveries: list[WebhookDelivery],
        *,
        timeout: float,
        retry_initial: float,
        retry_max: float,
    ) -> None:
        self._emulator = emulator
        self._target = target
        self._deliveries = deliveries
        self._timeout = timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._wake = asyncio.Event()
        self._in_flight: dict[int, asyncio.Task[None]] = {}
        self._busy: set[tuple[str, int]] = set()
        self._retry: dict[int, tuple[float, float]] = {}  # update_id -> (not before, last delay)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        self._unsubscribe = self._emulator.on_updates_changed(self.wake)
        self._task = asyncio.create_task(self._run(), name="fake-bot-api-webhook")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        tasks = [t for t in (self._task, *self._in_flight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            next_at = self._dispatch(loop.time())
            delay = None if next_at is None else max(0.0, next_at - loop.time())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    def _dispatch(self, now: float) -> float | None:
        """Starts every delivery that may start now; returns when a delayed retry falls due."""
        hook = self._emulator.webhook
        if hook is None:
            return None
        target = self._target(hook.url)
        next_at: float | None = None
        seen: set[tuple[str, int]] = set()
        for update in self._emulator.updates_for_delivery():
            if target is None:
                self._emulator.record_webhook_error(
                    f"Failed to resolve host: the fake Bot API has no webhook route for {hook.url}"
                )
                return None
            if len(self._in_flight) >= hook.max_connections:
                break
            update_id: int = update["update_id"]
            queue = webhook_queue(update)
            if queue in seen or queue in self._busy:
                continue  # one request at a time per chat, in update_id order
            seen.add(queue)
            not_before = self._retry.get(update_id, (0.0, 0.0))[0]
            if not_before > now:
                next_at = not_before if next_at is None else min(next_at, not_before)
                continue
            body = json.dumps(update, ensure_ascii=False).encode("utf-8")
            self._busy.add(queue)
            self._in_flight[update_id] = asyncio.create_task(
                self._deliver(update_id, queue, target, hook.secret_token, body)
            )
        return next_at

    async def _deliver(
        self, update_id: int, queue: tuple[str, int], url: str, secret: str | None, body: bytes
    ) -> None:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if secret:
            headers[SECRET_HEADER] = secret
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            try:
                async with self._session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self._timeout),
                ) as response:
                    status = response.status
                    await response.read()
                    if not 200 <= status <= 299:
                        error = f"Wrong response from the webhook: {status} {response.reason}"
            except TimeoutError:
                error = "Read timeout expired"
            except aiohttp.ClientConnectorError as exc:
                refused = isinstance(exc.os_error, ConnectionRefusedError)
                error = "Connection refused" if refused else f"Connection failed: {exc.os_error}"
            except aiohttp.ClientError as exc:
                error = f"Webhook connection closed: {exc}"
            self._deliveries.append(
                WebhookDelivery(update_id, url, status, error, started, time.monotonic() - started)
            )
            self._settle(update_id, error)
        finally:
            self._in_flight.pop(update_id, None)
            self._busy.discard(queue)
            self._wake.set()

    def _settle(self, update_id: int, error: str | None) -> None:
        if error is None:
            self._retry.pop(update_id, None)
            self._emulator.confirm_update(update_id)
            return
        if self._emulator.webhook is not None:  # an answer after deleteWebhook is no news
            self._emulator.record_webhook_error(error)
        last_delay = self._retry.get(update_id, (0.0, 0.0))[1]
        delay = min(last_delay * 2, self._retry_max) if last_delay else self._retry_initial
        self._retry[update_id] = (asyncio.get_running_loop().time() + delay, delay)


class FakeBotApiServer:
    """The emulator behind real HTTP on 127.0.0.1, on a free port chosen by the OS.

    `webhook_routes` maps public URL prefixes (what setWebhook is given) to local bases (where
    the bot listens); `route_webhook` adds one later. `faults` sets the emulator's network faults.
    Webhook retries wait `webhook_retry_initial` seconds, doubling up to `webhook_retry_max`.
    """

    def __init__(
        self,
        emulator: BotApiEmulator | None = None,
        *,
        host: str = "127.0.0.1",
        webhook_routes: Mapping[str, str] | None = None,
        faults: NetworkFaults | None = None,
        webhook_timeout: float = 10.0,
        webhook_retry_initial: float = 0.1,
        webhook_retry_max: float = 2.0,
    ) -> None:
        self._emulator = emulator if emulator is not None else BotApiEmulator()
        self._host = host
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._routes: dict[str, str] = {}
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._deliverer = _WebhookDeliverer(
            self._emulator,
            self.webhook_target,
            self.webhook_deliveries,
            timeout=webhook_timeout,
            retry_initial=webhook_retry_initial,
            retry_max=webhook_retry_max,
        )
        for public_prefix, local_base in (webhook_routes or {}).items():
            self.route_webhook(public_prefix, local_base)
        if faults is not None:
            self._emulator.set_faults(faults)

    @property
    def emulator(self) -> BotApiEmulator:
        return self._emulator

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """What `ApplicationBuilder().base_url()` and `Bot(base_url=...)` expect."""
        return f"http://{self._host}:{self.port}/bot"

    @property
    def webhook_routes(self) -> dict[str, str]:
        return dict(self._routes)

    def route_webhook(self, public_prefix: str, local_base: str) -> None:
        """Delivers webhooks under `public_prefix` (e.g. "https://bot.example") to `local_base`
        (e.g. "http://127.0.0.1:8080"), keeping the rest of the path; replaces an older route."""
        if urlsplit(local_base).scheme not in ("http", "https"):
            raise ValueError(f"a local base is an http(s) URL, not {local_base!r}")
        self._routes[public_prefix.rstrip("/")] = local_base.rstrip("/")
        self._deliverer.wake()

    def webhook_target(self, url: str) -> str | None:
        """The local URL a webhook `url` is delivered to; None when no route covers it."""
        best = ""
        for prefix in self._routes:
            covers = url == prefix or (url.startswith(prefix) and url[len(prefix)] in "/?#")
            if covers and len(prefix) > len(best):
                best = prefix
        if not best:
            return None
        return self._routes[best] + url[len(best) :]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation: a long poll whose client went away stops waiting at once.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self._host, 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        await self._deliverer.start()

    async def stop(self) -> None:
        if self._runner is None:
            return
        await self._deliverer.stop()
        self._emulator.release_pollers()
        self._emulator.release_held_answers()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> FakeBotApiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            params = await _read_params(request)
            self._emulator.authorize(request.match_info["token"])
            result = await self._emulator.call(request.match_info["method"], params)
        except ApiError as error:
            return _reply(error.error_code, error.to_json())
        except AnswerWithheld:
            # Telegram did the work, but the answer is lost: the client sees the connection close.
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=204)  # never written: the transport is gone
        return _reply(200, {"ok": True, "result": result})

    async def _not_found(self, request: web.Request) -> web.Response:
        return _reply(404, ApiError(404, "Not Found").to_json())
