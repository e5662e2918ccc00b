"""`newsbot run`: the bot, its HTTP server and its update intake, until SIGINT or SIGTERM.

Updates come in one of two ways:

- **webhook** (WEBHOOK_URL set): every instance registers the webhook with its secret and
  takes the updates Telegram posts to it; a load balancer may spread them over instances.
- **polling**: the instances elect one poller through the database (digests/leader.py); the
  others check every few seconds and take over when it dies.

Either way every instance runs the digest tick and resumes breaking pushes, and serves
/healthz and /metrics on HTTP_HOST:HTTP_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Callable, Generator

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import InvalidToken, NetworkError, TelegramError

from bot.app import build_application
from bot.context import NewsApp, Services
from bot.web.server import build_web_app
from digests.db import instance_name, other_instances
from digests.leader import Election, election_for
from digests.settings import Settings

log = logging.getLogger(__name__)

ELECTION_SECONDS = 5.0
"""How often a non-polling instance tries to become the poller (and the poller checks its
lock): a dead poller is replaced within about this long."""


class StartError(Exception):
    """The bot cannot start; the message says why in one line."""


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: `serve` owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """Listen on host:port now, so a taken port is a clear error before anything starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartError(f"cannot listen on {host}:{port} (HTTP_HOST/HTTP_PORT): {exc}") from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def settle_heap() -> None:
    """Once the bot is up: collect, then freeze what survives (`gc.freeze`).

    What is alive by then (modules, the application and its caches) lives as long as the
    process, and a full collection scans every object the collector tracks: with a large
    heap that is a pause of 100 ms or more, several times a minute under a broadcast, during
    which nothing is sent (and a limit counted per second never gives the time back). Frozen
    objects are left out of every collection; what the bot allocates later is collected as
    before."""
    gc.collect()
    gc.freeze()


async def serve(
    settings: Settings,
    *,
    application: NewsApp | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Run until `stop` is set (SIGINT/SIGTERM set it); `on_ready` gets the HTTP port."""
    app = application if application is not None else build_application(settings)
    svc = app.bot_data
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    sock = bind(settings.http_host, settings.http_port)
    web = _Server(
        uvicorn.Config(build_web_app(app), log_level="warning", access_log=False, lifespan="off")
    )
    try:
        await app.initialize()
    except (InvalidToken, NetworkError) as exc:
        sock.close()
        await app.bot.request.shutdown()  # PTB leaves its transport open when getMe fails
        if isinstance(exc, InvalidToken):
            # PTB's message quotes the token itself: say it without it.
            raise StartError(
                "Telegram refused TELEGRAM_BOT_TOKEN (unauthorized): check the token from "
                "@BotFather"
            ) from exc
        raise StartError(
            f"cannot reach the Telegram Bot API ({exc.message}): check the network and "
            "TELEGRAM_BASE_URL"
        ) from exc
    intake: asyncio.Task[None] | None = None
    election: Election | None = None
    web_task: asyncio.Task[None] | None = None
    try:
        assert app.post_init is not None
        await app.post_init(app)
        await app.start()
        settle_heap()
        await _warn_if_unshared(svc)
        web_task = asyncio.create_task(web.serve(sockets=[sock]), name="http-server")
        if settings.webhook_url:
            await _set_webhook(app, svc)
        else:
            assert svc.engine is not None
            election = election_for(svc.engine, app.bot.id)
            intake = asyncio.create_task(_poll_when_elected(app, svc, election), name="poller")
        port = int(sock.getsockname()[1])
        log.info(
            "newsbot is running: %s mode, HTTP on %s:%d",
            "webhook" if settings.webhook_url else "polling",
            settings.http_host,
            port,
        )
        if on_ready is not None:
            on_ready(port)
        waiters = [asyncio.ensure_future(stop.wait()), web_task]
        if intake is not None:
            waiters.append(intake)
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        waiters[0].cancel()
        for task in (web_task, intake):
            if task is not None and task.done() and task.exception() is not None:
                raise StartError(f"{task.get_name()} stopped: {task.exception()}")
    finally:
        log.info("newsbot is stopping")
        svc.stopping.set()  # deliveries finish what is in flight and claim nothing more
        if intake is not None:
            intake.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await intake
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if election is not None:
            await election.release()
        web.should_exit = True
        if web_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await web_task
        sock.close()
        if app.running:
            await app.stop()
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


async def _set_webhook(app: NewsApp, svc: Services) -> None:
    settings = svc.settings
    assert settings.webhook_secret is not None
    # Every instance sets the same webhook: repeating it is harmless, and a new instance
    # (or a changed secret) takes effect at once. It is not deleted at shutdown, because
    # the other instances still serve it.
    await app.bot.set_webhook(
        url=settings.webhook_url,
        secret_token=settings.webhook_secret.get_secret_value(),
        allowed_updates=Update.ALL_TYPES,
        max_connections=settings.webhook_max_connections,
    )
    log.info("webhook set: Telegram posts updates to %s", settings.webhook_url)


async def _poll_when_elected(
    app: NewsApp,
    svc: Services,
    election: Election,
) -> None:
    updater = app.updater
    assert updater is not None
    while True:
        if updater.running:
            if not await election.still_held():
                log.warning("no longer the poller: stopping polling")
                await updater.stop()
                svc.metrics.set_poller(False)
        elif await election.try_acquire():
            try:
                await updater.start_polling(
                    allowed_updates=Update.ALL_TYPES, error_callback=_polling_error
                )
            except TelegramError as exc:  # e.g. deleteWebhook failed: try again next round
                log.warning("could not start polling: %s (retrying)", exc)
            else:
                log.info("this instance now polls Telegram for updates")
                svc.metrics.set_poller(True)
        await asyncio.sleep(ELECTION_SECONDS)


def _polling_error(exc: TelegramError) -> None:
    log.warning("polling Telegram failed: %s (retrying)", exc)


async def _warn_if_unshared(svc: Services) -> None:
    """Several instances without REDIS_URL each spend a full send budget of their own."""
    if svc.settings.redis_url is not None or svc.engine is None:
        return
    try:
        others = await other_instances(svc.engine, instance_name())
    except (OSError, SQLAlchemyError) as exc:  # a courtesy check: never stop the start
        log.debug("could not look for other instances: %s", exc)
        return
    if others:
        log.warning(
            "%d other newsbot instance(s) use this database (%s) but REDIS_URL is not set: "
            "each keeps its own send budget, so together they can exceed Telegram's limits "
            "(429s). Set REDIS_URL on every instance to share one budget.",
            len(others),
            ", ".join(others),
        )
