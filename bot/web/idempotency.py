"""Idempotency-Key for the newsroom API's POSTs: a retry with the same key and body gets the
first answer again, for IDEMPOTENCY_TTL. The key is claimed in the request's own transaction
(see `claim_key`), so the action and the remembered answer commit together.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Services
from bot.web.schemas import invalid
from digests.models import LINK_MAX, ApiRequest

IDEMPOTENCY_TTL = timedelta(hours=24)
"""An Idempotency-Key is remembered this long: a retry within it replays the first answer."""


def owner_of(token: str) -> str:
    """Who an Idempotency-Key belongs to: a digest of the caller's token (never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """The request a key was first used for: the same body in another key order matches."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str


class KeyReused(Exception):
    """The key was used for another request (different path or body)."""


class KeyInFlight(Exception):
    """The first request with this key has not finished yet."""


async def claim_key(
    session: AsyncSession,
    *,
    owner: str,
    key: str,
    method: str,
    path: str,
    print_: str,
    now: datetime,
) -> ApiRequest | Replay:
    """Take the key for this request, or the first answer given under it.

    Insert first, in the caller's transaction, then act in the same transaction: the unique
    (owner, key) makes a concurrent retry wait for the first (PostgreSQL) or queue behind
    it (SQLite's one writer), and see its committed answer. Raises KeyReused or KeyInFlight.
    """
    await session.execute(delete(ApiRequest).where(ApiRequest.created_at < now - IDEMPOTENCY_TTL))
    found = await session.scalar(
        select(ApiRequest).where(ApiRequest.owner == owner, ApiRequest.key == key)
    )
    if found is not None:
        return _answer(found, print_)
    row = ApiRequest(
        owner=owner,
        key=key,
        method=method,
        path=path[:LINK_MAX],
        fingerprint=print_,
        status_code=None,
        body=None,
        created_at=now,
    )
    session.add(row)
    await session.flush()  # IntegrityError here: another request took the key meanwhile
    return row


async def replay_of(session: AsyncSession, *, owner: str, key: str, print_: str) -> Replay:
    """After losing the race for a key: the winner's answer."""
    found = await session.scalar(
        select(ApiRequest).where(ApiRequest.owner == owner, ApiRequest.key == key)
    )
    if found is None:
        raise KeyInFlight
    return _answer(found, print_)


def _answer(found: ApiRequest, print_: str) -> Replay:
    if found.fingerprint != print_:
        raise KeyReused
    if found.status_code is None or found.body is None:
        raise KeyInFlight
    return Replay(found.status_code, found.body)


def remember_answer(row: ApiRequest, status_code: int, body: str) -> None:
    row.status_code = status_code
    row.body = body


@dataclass
class After:
    """Work that may only start once the transaction has committed."""

    tasks: list[Callable[[], None]] = field(default_factory=list)


Action = Callable[[AsyncSession, After], Awaitable[tuple[int, BaseModel]]]
"""A POST's work in the request's transaction: its status code and answer."""


async def once(
    request: Request,
    svc: Services,
    owner: str,
    key: str | None,
    body: BaseModel,
    action: Action,
) -> Response:
    """Run `action` in one transaction; with a key, at most once per key and body."""
    method, path = request.method, request.url.path
    print_ = fingerprint(method, path, body)
    after = After()
    try:
        async with svc.sessions.begin() as session:
            slot = None
            if key is not None:
                claimed = await claim_key(
                    session,
                    owner=owner,
                    key=key,
                    method=method,
                    path=path,
                    print_=print_,
                    now=svc.clock(),
                )
                if isinstance(claimed, Replay):
                    return replayed(claimed)
                slot = claimed
            status, answer = await action(session, after)
            text = answer.model_dump_json()
            if slot is not None:
                remember_answer(slot, status, text)
    except IntegrityError:
        if key is None:
            raise HTTPException(409, "a concurrent request changed this story; retry") from None
        async with svc.sessions() as session:
            return replayed(await replay_of(session, owner=owner, key=key, print_=print_))
    except KeyReused:
        raise invalid(
            ("header", "Idempotency-Key"), "this key was used for a different request"
        ) from None
    except KeyInFlight:
        raise HTTPException(
            409, "a request with this Idempotency-Key is still running; retry later"
        ) from None
    for task in after.tasks:
        task()
    return Response(text, status_code=status, media_type="application/json")


def replayed(replay: Replay) -> Response:
    return Response(
        replay.body,
        status_code=replay.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )
