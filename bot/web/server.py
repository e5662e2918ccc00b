"""The bot's HTTP server (Starlette on uvicorn): Telegram's webhook, /healthz, /metrics and,
when API_TOKENS is set, the publisher's HTTP API under /api/v1 (bot/web/api.py).
It runs in polling mode too, so that containers and load balancers always have a health check.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections import OrderedDict
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from telegram import Update

from bot.context import NewsApp
from bot.web.api import PREFIX, build_api
from digests.db import ping

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
HEALTH_DB_TIMEOUT = 3.0
TICK_STALE_AFTER = 90.0
"""/healthz fails when no digest tick has finished for this long (three ticks)."""
_SEEN_UPDATES = 10_000


class _RecentIds:
    """Update ids handled lately: Telegram redelivers an update whose answer it missed."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[int, None] = OrderedDict()

    def first_time(self, update_id: int) -> bool:
        if update_id in self._ids:
            return False
        self._ids[update_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def build_web_app(application: NewsApp) -> Starlette:
    """The ASGI app for one bot: the webhook route (when WEBHOOK_URL is set) and the probes."""
    svc = application.bot_data
    settings = svc.settings
    routes: list[BaseRoute] = [
        Route("/healthz", _health(application), methods=["GET"]),
        Route("/metrics", _metrics(application), methods=["GET"]),
    ]
    if settings.webhook_url:
        assert settings.webhook_secret is not None  # settings refuse a URL without a secret
        secret = settings.webhook_secret.get_secret_value().encode()
        routes.append(Route(settings.webhook_path, _webhook(application, secret), methods=["POST"]))
    if settings.api_tokens:
        routes.append(Mount(PREFIX, app=build_api(application)))
    return Starlette(routes=routes)


def _webhook(application: NewsApp, secret: bytes) -> Any:
    seen = _RecentIds(_SEEN_UPDATES)

    async def webhook(request: Request) -> Response:
        """Take one update from Telegram; anything without the secret has no effect."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret):
            log.warning("webhook request without the right secret from %s", _peer(request))
            return Response(status_code=403)
        if not application.running:
            # Shutting down: Telegram retries, and another instance may take it.
            return Response(status_code=503)
        try:
            data = json.loads(await request.body())
            update = Update.de_json(data, application.bot)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("webhook: unreadable update from %s: %s", _peer(request), exc)
            return Response(status_code=400)
        if update is None or not isinstance(data, dict):
            return Response(status_code=400)
        if seen.first_time(update.update_id):
            await application.update_queue.put(update)
        return Response(status_code=200)

    return webhook


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"


def _health(application: NewsApp) -> Any:
    async def health(_request: Request) -> Response:
        """200 when the database answers and digest ticks are running; 503 otherwise."""
        svc = application.bot_data
        database = "ok"
        try:
            async with asyncio.timeout(HEALTH_DB_TIMEOUT):
                await ping(svc.sessions)
        except (OSError, SQLAlchemyError, TimeoutError, RuntimeError) as exc:
            database = f"error: {type(exc).__name__}"
        since_tick = svc.metrics.seconds_since_tick()
        ticking = since_tick <= TICK_STALE_AFTER
        healthy = database == "ok" and ticking and application.running
        body = {
            "status": "ok" if healthy else "unhealthy",
            "database": database,
            "seconds_since_tick": round(since_tick, 1),
            "ticking": ticking,
            "running": application.running,
            "mode": "webhook" if svc.settings.webhook_url else "polling",
            "poller": svc.metrics.is_poller,
            "uptime_seconds": round(time.monotonic() - svc.metrics.started, 1),
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    return health


def _metrics(application: NewsApp) -> Any:
    async def metrics(_request: Request) -> Response:
        """Prometheus text exposition of this instance's metrics."""
        registry = application.bot_data.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
