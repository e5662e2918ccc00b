"""python-telegram-bot's transport to a BotApiEmulator in the same process: no sockets.

Tests build the real PTB Application with `.request(EmulatorRequest(emulator))` and
`.get_updates_request(EmulatorRequest(emulator))`. Every call comes back as the status code and
body Telegram would send, so PTB raises its usual BadRequest, Forbidden, RetryAfter and
ChatMigrated.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from telegram.error import TimedOut
from telegram.request import BaseRequest, RequestData

from fakebotapi.emulator import ApiError, BotApiEmulator

if TYPE_CHECKING:
    from telegram._utils.types import ODVInput


def _body(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


class EmulatorRequest(BaseRequest):
    """Hands each Bot API request to `emulator.call` and returns Telegram's response bytes."""

    __slots__ = ("_emulator", "_read_timeout")

    def __init__(self, emulator: BotApiEmulator, *, read_timeout: float | None = 5.0) -> None:
        self._emulator = emulator
        self._read_timeout = read_timeout

    @property
    def emulator(self) -> BotApiEmulator:
        return self._emulator

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

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
        segments = urlsplit(url).path.rstrip("/").split("/")
        if len(segments) < 2 or not segments[-2].startswith("bot"):
            return 404, _body(ApiError(404, "Not Found").to_json())
        token, api_method = unquote(segments[-2][len("bot") :]), segments[-1]
        # The values as they travel over the wire: strings, nested objects JSON-encoded.
        params = request_data.json_parameters if request_data is not None else {}
        timeout = self._read_timeout if read_timeout is BaseRequest.DEFAULT_NONE else read_timeout
        try:
            self._emulator.authorize(token)
            async with asyncio.timeout(timeout if isinstance(timeout, int | float) else None):
                result = await self._emulator.call(api_method, params)
        except ApiError as error:
            return error.error_code, _body(error.to_json())
        except TimeoutError as exc:
            raise TimedOut(f"{api_method} took longer than {timeout}s") from exc
        return 200, _body({"ok": True, "result": result})
