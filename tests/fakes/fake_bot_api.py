"""A loopback HTTP server speaking the Telegram Bot API, backed by a BotApiEmulator.

    async with FakeBotApiServer() as server:
        app = ApplicationBuilder().token(server.emulator.token).base_url(server.base_url).build()

PTB appends the token to `base_url`, so requests arrive at /bot<token>/<method> as JSON,
form-urlencoded or multipart bodies (or query strings), exactly as they would at Telegram.
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any

from aiohttp import web

from bot.emulator import ApiError, BotApiEmulator

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


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


class FakeBotApiServer:
    """The emulator behind real HTTP on 127.0.0.1, on a free port chosen by the OS."""

    def __init__(self, emulator: BotApiEmulator | None = None, *, host: str = "127.0.0.1") -> None:
        self._emulator = emulator if emulator is not None else BotApiEmulator()
        self._host = host
        self._port: int | None = None
        self._runner: web.AppRunner | None = None

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

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._emulator.release_pollers()
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
        return _reply(200, {"ok": True, "result": result})

    async def _not_found(self, request: web.Request) -> web.Response:
        return _reply(404, ApiError(404, "Not Found").to_json())
