"""What the newsroom API's routes depend on, as `Annotated` types: the caller (a bearer token
from API_TOKENS), the bot's services and settings, a read-only session, the
Idempotency-Key header and a push's id in the path."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import NewsApp, Services
from bot.web.idempotency import owner_of
from bot.web.schemas import INT32, IdempotencyKey
from digests.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="One of the tokens in API_TOKENS.")


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller's identity for idempotency keys; 401 without a valid token. Every token is
    compared, in constant time, so timing tells nothing about any of them."""
    tokens: list[bytes] = request.app.state.tokens
    given = credentials.credentials.encode() if credentials is not None else b""
    valid = False
    for token in tokens:
        valid |= hmac.compare_digest(given, token)
    if credentials is None or not valid:
        raise HTTPException(
            status_code=401,
            detail="a valid bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return owner_of(credentials.credentials)


def application(request: Request) -> NewsApp:
    """The bot this API belongs to (bot/web/api.py `build_api` keeps it in the app's state)."""
    bot: NewsApp = request.app.state.application
    return bot


def services(bot: Annotated[NewsApp, Depends(application)]) -> Services:
    return bot.bot_data


def settings(svc: Annotated[Services, Depends(services)]) -> Settings:
    return svc.settings


async def read_session(svc: Annotated[Services, Depends(services)]) -> AsyncIterator[AsyncSession]:
    """A session for reading (a POST's work runs in bot/web/idempotency.py `once` instead)."""
    async with svc.sessions() as session:
        yield session


Caller = Annotated[str, Depends(caller)]
App = Annotated[NewsApp, Depends(application)]
Svc = Annotated[Services, Depends(services)]
SettingsDep = Annotated[Settings, Depends(settings)]
ReadSession = Annotated[AsyncSession, Depends(read_session)]
Key = Annotated[
    IdempotencyKey | None,
    Header(
        alias="Idempotency-Key",
        description="Makes a retried POST safe: the first answer is given again.",
    ),
]
PushId = Annotated[int, Path(ge=1, le=INT32)]
