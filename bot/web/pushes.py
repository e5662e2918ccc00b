"""/pushes: push a stored story to its sections' readers (POST) and follow its progress (GET).
Pushes start and run in digests/newsroom/push.py, as an editor's /breaking does."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import NewsApp
from bot.web.deps import App, Caller, Key, PushId, ReadSession, Svc
from bot.web.idempotency import After, once
from bot.web.schemas import DryRunOut, PushConflict, PushIn, PushOut, problems
from digests.newsroom import cms as newsroom
from digests.newsroom import push

log = logging.getLogger(__name__)

router = APIRouter(prefix="/pushes")


@router.post(
    "",
    status_code=202,
    response_model=PushOut,
    responses=problems(
        400,
        401,
        404,
        503,
        s200={"model": DryRunOut, "description": "dry_run: the audience and the preview."},
        s409={
            "model": PushConflict,
            "description": "Pushed already, unpublished, or the key is busy.",
        },
    ),
    summary="Push a story to its sections' readers who have alerts on",
)
async def post_push(
    body: PushIn, request: Request, owner: Caller, svc: Svc, bot: App, key: Key = None
) -> Response:
    async def action(session: AsyncSession, after: After) -> tuple[int, BaseModel]:
        article = await newsroom.find_article(
            session, article_id=body.article_id, guid=body.guid, url=body.url
        )
        if article is None:
            raise HTTPException(404, "no such story")
        if article.unpublished_at is not None:
            raise HTTPException(409, "this story is unpublished; POST /articles publishes it again")
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
            started = await push.open_push(session, article, now=svc.clock())
        except push.AlreadyPushed as exc:
            raise _Conflict(exc) from None
        push_id = started.push.id
        log.info("API push %s of story %s to %s chats", push_id, article.id, started.audience)
        after.tasks.append(lambda: run_push(bot, push_id))
        report = await newsroom.push_report(session, push_id)
        assert report is not None
        return 202, PushOut.of(report)

    try:
        return await once(request, svc, owner, key, body, action)
    except _Conflict as exc:
        return JSONResponse(
            {"detail": str(exc.cause), "push_id": exc.cause.push_id}, status_code=409
        )


@router.get(
    "/{push_id}",
    response_model=PushOut,
    responses=problems(401, 404, 503),
    summary="A push's progress and outcome counts, with its corrections",
)
async def get_push(_owner: Caller, push_id: PushId, session: ReadSession) -> PushOut:
    report = await newsroom.push_report(session, push_id)
    if report is None:
        raise HTTPException(404, "no such push")
    return PushOut.of(report)


class _Conflict(Exception):
    def __init__(self, cause: push.AlreadyPushed) -> None:
        super().__init__(str(cause))
        self.cause = cause


def run_push(application: NewsApp, push_id: int) -> None:
    """Run the committed push in the background (the application waits for it at shutdown)."""
    application.bot_data.pushes.start(push_id)
