"""The benchmark's Bot API: canned answers at the least cost per request, in a process of its own.

    python -m bench.lean_server --first-user 1000001 --users 10000 [--latency 0.05]

The strict emulator (`bench.fake_server`, `fakebotapi`) checks every parameter, renders
entities and keeps each chat's history, which is what the tests need and costs the server
several times the client's work per request. A benchmark of the client needs the opposite: a
server that answers so cheaply that it is never the bottleneck, so the figures measure the bot.
This one is a bare HTTP/1.1 keep-alive server on asyncio's protocol layer (no framework). For
each request it reads the method and `chat_id` (JSON or form body) and answers a canned result:
a Message for sends and edits, the bot for getMe, updates for getUpdates, `true` otherwise. It
checks nothing else. `--latency S` holds every answer S seconds (Telegram's round trip), without
holding the server: the answer is written later by a timer.

Control, on the same port:
- GET /stats?since=N: the same figures as `bench.fake_server` (per-chat sendMessage counts from
  log index N, first/last send times, each chat's first send, server CPU and peak memory).
- POST /users/send {"users": [ids], "text": "/latest"}: those users send the text; the bot gets
  it from getUpdates (long polling). Answers each user's send time.

It prints one JSON line (`base_url`, `token`, `stats_url`, `control_url`) and serves until its
stdin closes. `bench.fake_server.ServerProcess(lean=True)` starts it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

HOST = "127.0.0.1"
TOKEN = "123456:lean"  # noqa: S105 - a fake server's fake token
BOT_ID = 123456
_BOT = {"id": BOT_ID, "is_bot": True, "first_name": "Newsroom", "username": "newsroom_bot"}
_MESSAGE_METHODS = frozenset(
    {
        "sendmessage",
        "sendphoto",
        "copymessage",
        "forwardmessage",
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
        "editmessagemedia",
    }
)
_SENDS = frozenset({"sendmessage", "sendphoto", "copymessage", "forwardmessage"})
_LIST_METHODS = frozenset({"getmycommands", "getupdates"})
_STATUS_LINE = {200: b"200 OK", 400: b"400 Bad Request", 404: b"404 Not Found"}


class Api:
    """The state behind every connection: the send log, updates waiting, counters."""

    def __init__(self, *, first_user: int, users: int, latency: float) -> None:
        self.first_user = first_user
        self.users = users
        self.latency = latency
        self.log_chats: list[int] = []
        self.log_times: list[float] = []
        self.message_id = 0
        self.updates: list[dict[str, Any]] = []
        self.next_update = 1
        self.waiters: list[asyncio.Future[None]] = []
        self.requests = 0

    # -- the Bot API -------------------------------------------------------------------
    async def call(self, method: str, params: dict[str, Any]) -> tuple[int, bytes]:
        self.requests += 1
        name = method.lower()
        if name in _MESSAGE_METHODS:
            chat = int(params.get("chat_id") or 0)
            if name in _SENDS:
                self.log_chats.append(chat)
                self.log_times.append(time.monotonic())
            self.message_id += 1
            message = {
                "message_id": self.message_id,
                "date": int(time.time()),
                "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup"},
                "from": _BOT,
                "text": "ok",
            }
            return 200, orjson.dumps({"ok": True, "result": message})
        if name == "getme":
            return 200, orjson.dumps({"ok": True, "result": _BOT})
        if name == "getupdates":
            return 200, orjson.dumps({"ok": True, "result": await self._updates(params)})
        if name in _LIST_METHODS:
            return 200, b'{"ok":true,"result":[]}'
        return 200, b'{"ok":true,"result":true}'

    async def _updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates and timeout > 0:
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, timeout)
            except TimeoutError:
                pass
            finally:
                if waiter in self.waiters:
                    self.waiters.remove(waiter)
        return self.updates[:100]

    # -- control -----------------------------------------------------------------------
    def users_send(self, body: dict[str, Any]) -> dict[str, Any]:
        text = str(body.get("text", "/start"))
        sent: dict[str, float] = {}
        for raw in body.get("users", []):
            user = int(raw)
            self.message_id += 1
            entities = (
                [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
                if text.startswith("/")
                else []
            )
            self.updates.append(
                {
                    "update_id": self.next_update,
                    "message": {
                        "message_id": self.message_id,
                        "date": int(time.time()),
                        "chat": {"id": user, "type": "private", "first_name": "Reader"},
                        "from": {"id": user, "is_bot": False, "first_name": "Reader"},
                        "text": text,
                        "entities": entities,
                    },
                }
            )
            self.next_update += 1
            sent[str(user)] = time.monotonic()
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        return {"sent": sent, "failed": {}}

    def stats(self, since: int) -> dict[str, Any]:
        chats = self.log_chats[since:]
        times = self.log_times[since:]
        first_by_chat: dict[str, float] = {}
        for chat, at in zip(chats, times, strict=True):
            first_by_chat.setdefault(str(chat), at)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "log_len": len(self.log_chats),
            "sent": {str(chat): n for chat, n in Counter(chats).items()},
            "first": times[0] if times else None,
            "last": times[-1] if times else None,
            "first_by_chat": first_by_chat,
            "unanswered": [],
            "too_many_requests": 0,
            "bad_gateway": 0,
            "conflicts": 0,
            "webhook_delivered": 0,
            "webhook_failed": 0,
            "pending_updates": len(self.updates),
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "requests": self.requests,
        }


def _params(content_type: bytes, body: bytes, query: str) -> dict[str, Any]:
    params: dict[str, Any] = dict(parse_qsl(query)) if query else {}
    if not body:
        return params
    if content_type.startswith(b"application/json"):
        params.update(orjson.loads(body))
    elif content_type.startswith(b"application/x-www-form-urlencoded"):
        params.update(parse_qsl(body.decode()))
    elif content_type.startswith(b"multipart/form-data"):
        # only chat_id matters here: find its part without a full multipart parser
        marker = b'name="chat_id"\r\n\r\n'
        at = body.find(marker)
        if at >= 0:
            end = body.find(b"\r\n", at + len(marker))
            params["chat_id"] = body[at + len(marker) : end].decode()
    return params


class Connection(asyncio.Protocol):
    """One keep-alive connection: requests parsed as they arrive, answered in order."""

    def __init__(self, api: Api, prefix: str) -> None:
        self.api = api
        self.prefix = prefix
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.tail: asyncio.Future[None] | None = None  # the previous answer on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end]
            length = 0
            content_type = b""
            lines = head.split(b"\r\n")
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                lowered = name.strip().lower()
                if lowered == b"content-length":
                    length = int(value)
                elif lowered == b"content-type":
                    content_type = value.strip().lower()
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            body = self.buffer[head_end + 4 : end]
            self.buffer = self.buffer[end:]
            verb, target, _ = lines[0].decode("latin-1").split(" ", 2)
            previous = self.tail
            self.tail = asyncio.ensure_future(
                self._answer(verb, target, content_type, body, previous)
            )

    async def _answer(
        self,
        verb: str,
        target: str,
        content_type: bytes,
        body: bytes,
        previous: asyncio.Future[None] | None,
    ) -> None:
        split = urlsplit(target)
        path = split.path
        delay = 0.0
        if path.startswith(self.prefix):
            params = _params(content_type, body, split.query)
            status, payload = await self.api.call(path[len(self.prefix) :], params)
            delay = self.api.latency
        elif path == "/stats":
            since = int(dict(parse_qsl(split.query)).get("since", "0"))
            status, payload = 200, orjson.dumps(self.api.stats(since))
        elif path == "/users/send" and verb == "POST":
            status, payload = 200, orjson.dumps(self.api.users_send(orjson.loads(body)))
        else:
            status, payload = 404, b'{"ok":false,"error_code":404,"description":"Not Found"}'
        if previous is not None:
            await previous
        response = (
            b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (
                _STATUS_LINE[status],
                len(payload),
            )
        )
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._write, response + payload)
        else:
            self._write(response + payload)

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(*, first_user: int, users: int, latency: float) -> None:
    api = Api(first_user=first_user, users=users, latency=latency)
    prefix = f"/bot{TOKEN}/"
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(api, prefix), HOST, 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    base = f"http://{HOST}:{port}"
    ready = {
        "base_url": f"{base}/bot",
        "token": TOKEN,
        "stats_url": f"{base}/stats",
        "control_url": base,
    }
    sys.stdout.write(orjson.dumps(ready).decode() + "\n")
    sys.stdout.flush()
    try:
        await loop.run_in_executor(None, sys.stdin.buffer.read)
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first-user", type=int, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="S", help="hold each Bot API answer S s"
    )
    args = parser.parse_args()
    asyncio.run(serve(first_user=args.first_user, users=args.users, latency=args.latency))


if __name__ == "__main__":
    main()
