"""The publisher's HTTP API under /api/v1 (FastAPI, mounted in the bot's web app).

One router per resource (articles.py, pushes.py, actions.py); the routes only translate:
authenticate (deps.py), hand the validated body (schemas.py) to digests/newsroom/cms.py in one
transaction (idempotency.py `once`), start what must run after the commit, and answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from bot.context import NewsApp
from bot.web import actions, articles, pushes
from digests.db import unavailable

log = logging.getLogger(__name__)

PREFIX = "/api/v1"


def build_api(application: NewsApp) -> FastAPI:
    """The API app for this bot; only built when API_TOKENS is set."""
    svc = application.bot_data
    settings = svc.settings
    api = FastAPI(
        title=f"{settings.publisher_name}: newsroom API",
        version="1",
        description=(
            "Stories and breaking pushes from the publisher's CMS. Every call needs "
            "`Authorization: Bearer <token>` (a token from API_TOKENS). A POST with an "
            "`Idempotency-Key` header is done once: a retry with the same key and body gets "
            "the first answer again (for 24 hours)."
        ),
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    api.state.tokens = [token.get_secret_value().encode() for token in settings.api_tokens]
    api.state.application = application  # bot/web/deps.py `application`
    api.include_router(articles.router)
    api.include_router(pushes.router)
    api.include_router(actions.router)

    @api.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", None) or "unmatched"  # never the raw path
        svc.metrics.api_requests.labels(request.method, template, str(response.status_code)).inc()
        return response

    @api.exception_handler(SQLAlchemyError)
    async def database_trouble(_request: Request, exc: SQLAlchemyError) -> Response:
        if not unavailable(exc):
            log.error("API request failed on the database: %s", type(exc).__name__)
        return JSONResponse(
            {"detail": "the database is unavailable; retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    return api
