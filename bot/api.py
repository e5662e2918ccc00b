"""The publisher's HTTP API under /api/v1 (FastAPI, mounted in the bot's web app).

The routes only translate: authenticate, hand the validated body to digests/newsroom/cms.py in
one transaction, start what must run after the commit, and answer. Pushes run on the same
PushRunner as an editor's /breaking.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot import jobs
from bot.context import NewsApp
from digests.db import unavailable
from digests.models import PushActionKind, PushOrigin
from digests.newsroom import cms as newsroom
from digests.newsroom import corrections
from digests.newsroom.cms import (
    ActionOut,
    ArticleIn,
    ArticleList,
    ArticleOut,
    CorrectIn,
    DryRunOut,
    IdempotencyKey,
    PushIn,
    PushOut,
    Replay,
    WithdrawIn,
)
from digests.newsroom.texts import refusal

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
_INT32 = 2**31 - 1


class Problem(BaseModel):
    """What went wrong, in one sentence."""

    detail: str


class PushConflict(Problem):
    push_id: int


def _problems(*codes: int, **extra: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "The body could not be read (not UTF-8 JSON).",
        401: "No valid bearer token (Authorization: Bearer <one of API_TOKENS>).",
        404: "No such story or push.",
        409: "Already done, or a request with the same Idempotency-Key is still running.",
        503: "The database is unavailable; retry later.",
    }
    answers: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem, "description": described[code]} for code in codes
    }
    answers.update({int(code.removeprefix("s")): answer for code, answer in extra.items()})
    return answers


@dataclass
class _After:
    """Work that may only start once the transaction has committed."""

    tasks: list[Callable[[], None]] = field(default_factory=list)


Action = Callable[[AsyncSession, _After], Awaitable[tuple[int, BaseModel]]]

_bearer = HTTPBearer(auto_error=False, description="One of the tokens in API_TOKENS.")


def _caller(
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
    return newsroom.owner_of(credentials.credentials)


Caller = Annotated[str, Depends(_caller)]
Key = Annotated[
    IdempotencyKey | None,
    Header(
        alias="Idempotency-Key",
        description="Makes a retried POST safe: the first answer is given again.",
    ),
]


def build_api(application: NewsApp) -> FastAPI:
    """The API app for this bot; only built when API_TOKENS is set."""
    svc = application.bot_data
    settings = svc.settings
    tokens = [token.get_secret_value().encode() for token in settings.api_tokens]
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
    api.state.tokens = tokens

    @api.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", None) or "unmatched"  # never the raw path
        svc.metrics.api_requests.labels(request.method, template, str(response.status_code)).inc()
        return response

    async def once(
        request: Request, owner: str, key: str | None, body: BaseModel, action: Action
    ) -> Response:
        """Run `action` in one transaction; with a key, at most once per key and body."""
        method, path = request.method, request.url.path
        print_ = newsroom.fingerprint(method, path, body)
        after = _After()
        try:
            async with svc.sessions.begin() as session:
                slot = None
                if key is not None:
                    claimed = await newsroom.claim_key(
                        session,
                        owner=owner,
                        key=key,
                        method=method,
                        path=path,
                        print_=print_,
                        now=svc.clock(),
                    )
                    if isinstance(claimed, Replay):
                        return _replayed(claimed)
                    slot = claimed
                status, answer = await action(session, after)
                text = answer.model_dump_json()
                if slot is not None:
                    newsroom.remember_answer(slot, status, text)
        except IntegrityError:
            if key is None:
                raise HTTPException(409, "a concurrent request changed this story; retry") from None
            async with svc.sessions() as session:
                return _replayed(
                    await newsroom.replay_of(session, owner=owner, key=key, print_=print_)
                )
        except newsroom.KeyReused:
            raise _invalid(
                ("header", "Idempotency-Key"), "this key was used for a different request"
            ) from None
        except newsroom.KeyInFlight:
            raise HTTPException(
                409, "a request with this Idempotency-Key is still running; retry later"
            ) from None
        for task in after.tasks:
            task()
        return Response(text, status_code=status, media_type="application/json")

    @api.post(
        "/articles",
        status_code=201,
        response_model=ArticleOut,
        responses=_problems(
            400, 401, 409, 503, s200={"model": ArticleOut, "description": "Updated."}
        ),
        summary="Create or update a story (by guid, else URL)",
    )
    async def post_article(
        body: ArticleIn, request: Request, owner: Caller, key: Key = None
    ) -> Response:
        async def action(session: AsyncSession, after: _After) -> tuple[int, BaseModel]:
            try:
                saved = await newsroom.save_article(
                    session,
                    body,
                    now=svc.clock(),
                    default_section=settings.default_section,
                    max_sections=settings.max_sections,
                )
            except newsroom.TooManySections as exc:
                raise _invalid(("body", "sections"), str(exc)) from None
            await session.refresh(saved.article)  # as stored: times in UTC
            await session.refresh(saved.article, ["sections"])
            [answer] = await newsroom.article_answers(session, [saved.article])
            if saved.created:  # readers who follow its words with alerts on hear of it now
                after.tasks.append(lambda: _send_alerts(application))
            return (201 if saved.created else 200), answer

        return await once(request, owner, key, body, action)

    @api.get(
        "/articles",
        response_model=ArticleList,
        responses=_problems(401, 404, 503),
        summary="The newest stories, of one section or of all",
    )
    async def get_articles(
        _owner: Caller,
        section: Annotated[str | None, Query(max_length=80)] = None,
        limit: Annotated[int, Query(ge=1, le=newsroom.LIST_LIMIT_MAX)] = 20,
    ) -> ArticleList:
        async with svc.sessions() as session:
            try:
                found = await newsroom.list_articles(session, section=section, limit=limit)
            except newsroom.UnknownSection:
                raise HTTPException(404, "no such section") from None
            return ArticleList(articles=await newsroom.article_answers(session, found))

    @api.post(
        "/pushes",
        status_code=202,
        response_model=PushOut,
        responses=_problems(
            400,
            401,
            404,
            503,
            s200={"model": DryRunOut, "description": "dry_run: the audience and the preview."},
            s409={"model": PushConflict, "description": "Pushed already, or the key is busy."},
        ),
        summary="Push a story to its sections' readers who have alerts on",
    )
    async def post_push(body: PushIn, request: Request, owner: Caller, key: Key = None) -> Response:
        async def action(session: AsyncSession, after: _After) -> tuple[int, BaseModel]:
            article = await newsroom.find_article(
                session, article_id=body.article_id, guid=body.guid, url=body.url
            )
            if article is None:
                raise HTTPException(404, "no such story")
            if body.dry_run:
                shown = newsroom.preview(article)
                audience = await newsroom.audience_of(session, article)
                return 200, DryRunOut(
                    article_id=article.id,
                    audience=audience,
                    preview=shown.text,
                    preview_html=shown.html,
                    image_url=shown.image_url,
                )
            try:
                started = await newsroom.start_push(session, article, now=svc.clock())
            except newsroom.AlreadyPushed as exc:
                raise _Conflict(exc) from None
            push_id = started.push.id
            log.info("API push %s of story %s to %s chats", push_id, article.id, started.audience)
            after.tasks.append(lambda: _run_push(application, push_id))
            report = await newsroom.push_report(session, push_id)
            assert report is not None
            return 202, report

        try:
            return await once(request, owner, key, body, action)
        except _Conflict as exc:
            return JSONResponse(
                {"detail": str(exc.cause), "push_id": exc.cause.push_id}, status_code=409
            )

    @api.get(
        "/pushes/{push_id}",
        response_model=PushOut,
        responses=_problems(401, 404, 503),
        summary="A push's progress and outcome counts, with its corrections",
    )
    async def get_push(_owner: Caller, push_id: Annotated[int, Path(ge=1, le=_INT32)]) -> PushOut:
        async with svc.sessions() as session:
            report = await newsroom.push_report(session, push_id)
        if report is None:
            raise HTTPException(404, "no such push")
        return report

    async def act(
        request: Request,
        owner: str,
        key: str | None,
        body: BaseModel,
        push_id: int,
        kind: PushActionKind,
        note: str | None,
    ) -> Response:
        async def action(session: AsyncSession, after: _After) -> tuple[int, BaseModel]:
            made = await corrections.request_action(
                session,
                push_id,
                kind,
                note=note,
                origin=PushOrigin.API,
                created_by=None,
                admin_chat_id=None,
                now=svc.clock(),
            )
            if isinstance(made, corrections.Refusal):
                status = _REFUSAL_STATUS[made.code]
                if status == 422:
                    raise _invalid(("body", "note"), refusal(made))
                raise HTTPException(status, refusal(made))
            action_id = made.id
            log.info("API %s of push %s: action %s", kind.value, push_id, action_id)
            after.tasks.append(lambda: _run_action(application, action_id))
            await session.refresh(made)
            return 202, ActionOut.of(made)

        return await once(request, owner, key, body, action)

    @api.post(
        "/pushes/{push_id}/correct",
        status_code=202,
        response_model=ActionOut,
        responses=_problems(400, 401, 404, 409, 503),
        summary="Edit every message sent for a push to the story as stored now, with a note",
    )
    async def correct_push(
        push_id: Annotated[int, Path(ge=1, le=_INT32)],
        body: CorrectIn,
        request: Request,
        owner: Caller,
        key: Key = None,
    ) -> Response:
        return await act(request, owner, key, body, push_id, PushActionKind.CORRECT, body.note)

    @api.post(
        "/pushes/{push_id}/withdraw",
        status_code=202,
        response_model=ActionOut,
        responses=_problems(400, 401, 404, 409, 503),
        summary="Delete every message sent for a push that Telegram still allows (48 hours)",
    )
    async def withdraw_push(
        push_id: Annotated[int, Path(ge=1, le=_INT32)],
        request: Request,
        owner: Caller,
        body: WithdrawIn | None = None,
        key: Key = None,
    ) -> Response:
        given = body if body is not None else WithdrawIn()
        return await act(request, owner, key, given, push_id, PushActionKind.WITHDRAW, given.note)

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


class _Conflict(Exception):
    def __init__(self, cause: newsroom.AlreadyPushed) -> None:
        super().__init__(str(cause))
        self.cause = cause


def _invalid(loc: tuple[str, ...], message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors."""
    return HTTPException(422, [{"loc": list(loc), "msg": message, "type": "value_error"}])


_REFUSAL_STATUS = {
    corrections.RefusalCode.UNKNOWN_PUSH: 404,
    corrections.RefusalCode.NOT_SENT: 409,
    corrections.RefusalCode.WITHDRAWN: 409,
    corrections.RefusalCode.EMPTY_NOTE: 422,
    corrections.RefusalCode.NOTE_TOO_LONG: 422,
}


def _run_action(application: NewsApp, action_id: int) -> None:
    """Run a committed correction or withdrawal in the background."""
    runner = application.bot_data.actions
    application.create_task(runner.run(action_id), name=f"push-action-{action_id}")


def _replayed(replay: Replay) -> Response:
    return Response(
        replay.body,
        status_code=replay.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def _run_push(application: NewsApp, push_id: int) -> None:
    """Run the committed push in the background (the application waits for it at shutdown)."""
    runner = application.bot_data.pushes
    application.create_task(runner.run(push_id), name=f"push-{push_id}")


def _send_alerts(application: NewsApp) -> None:
    """Keyword alerts for a story the API just stored (the tick would find it too)."""
    application.create_task(
        jobs.run_alerts(application.bot, application.bot_data), name="keyword-alerts"
    )
