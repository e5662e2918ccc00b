"""/articles: stories from the CMS, created or updated (POST), listed (GET) and unpublished
(POST /articles/unpublish, which withdraws their push as bot/web/actions.py's withdrawal does)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bot import jobs
from bot.context import NewsApp
from bot.web.actions import run_action
from bot.web.deps import App, Caller, Key, ReadSession, SettingsDep, Svc
from bot.web.idempotency import After, once
from bot.web.schemas import (
    LIST_LIMIT_MAX,
    ActionOut,
    ArticleIn,
    ArticleList,
    ArticleOut,
    PushConflict,
    UnpublishedOut,
    UnpublishIn,
    invalid,
    problems,
)
from digests.models import Article
from digests.newsroom import cms as newsroom

router = APIRouter(prefix="/articles")


@router.post(
    "",
    status_code=201,
    response_model=ArticleOut,
    responses=problems(400, 401, 409, 503, s200={"model": ArticleOut, "description": "Updated."}),
    summary="Create or update a story (by guid, else URL)",
)
async def post_article(
    body: ArticleIn,
    request: Request,
    owner: Caller,
    svc: Svc,
    settings: SettingsDep,
    bot: App,
    key: Key = None,
) -> Response:
    async def action(session: AsyncSession, after: After) -> tuple[int, BaseModel]:
        try:
            saved = await newsroom.save_article(
                session,
                body.story(),
                now=svc.clock(),
                default_section=settings.default_section,
                max_sections=settings.max_sections,
            )
        except newsroom.TooManySections as exc:
            raise invalid(("body", "sections"), str(exc)) from None
        await session.refresh(saved.article)  # as stored: times in UTC
        await session.refresh(saved.article, ["sections"])
        [answer] = await article_answers(session, [saved.article])
        if saved.created:  # readers who follow its words with alerts on hear of it now
            after.tasks.append(lambda: send_alerts(bot))
        return (201 if saved.created else 200), answer

    return await once(request, svc, owner, key, body, action)


@router.post(
    "/unpublish",
    response_model=UnpublishedOut,
    responses=problems(
        400,
        401,
        404,
        503,
        s409={
            "model": PushConflict,
            "description": "Its push is sending messages this very moment (retry after "
            "Retry-After seconds), or a request with the same Idempotency-Key is running.",
        },
    ),
    summary="Unpublish a story: readers find it nowhere, and its push is withdrawn",
    description=(
        "For a post the CMS unpublished or trashed (a feed can only stop listing it). "
        "Readers no longer find the story in /latest, /search, inline mode, or digests and "
        "alerts not yet sent; it leaves its sections; if it was pushed, whatever was sent is "
        "withdrawn (deleted where Telegram still allows it, 48 hours), and a push still going "
        "out sends nothing more. Unpublishing again changes nothing and answers the same. The "
        "feed never brings it back; POST /articles with its guid or url publishes it again."
    ),
)
async def unpublish_article(
    body: UnpublishIn, request: Request, owner: Caller, svc: Svc, bot: App, key: Key = None
) -> Response:
    async def action(session: AsyncSession, after: After) -> tuple[int, BaseModel]:
        article = await newsroom.find_article(
            session, article_id=body.article_id, guid=body.guid, url=body.url
        )
        if article is None:
            raise HTTPException(404, "no such story")
        try:
            done = await newsroom.unpublish(session, article, now=svc.clock())
        except newsroom.StillSending as exc:
            raise _Busy(exc) from None
        withdrawal = done.withdrawal
        if withdrawal is not None:
            action_id = withdrawal.id
            after.tasks.append(lambda: run_action(bot, action_id))
        else:
            withdrawal = await newsroom.withdrawal_of(session, article)
        await session.refresh(article)
        await session.refresh(article, ["sections"])
        [answer] = await article_answers(session, [article])
        if withdrawal is not None:
            await session.refresh(withdrawal)
        return 200, UnpublishedOut(
            article=answer, withdrawal=ActionOut.of(withdrawal) if withdrawal else None
        )

    try:
        return await once(request, svc, owner, key, body, action)
    except _Busy as exc:
        return JSONResponse(
            {"detail": str(exc.cause), "push_id": exc.cause.push_id},
            status_code=409,
            headers={"Retry-After": "5"},
        )


class _Busy(Exception):
    def __init__(self, cause: newsroom.StillSending) -> None:
        super().__init__(str(cause))
        self.cause = cause


@router.get(
    "",
    response_model=ArticleList,
    responses=problems(401, 404, 503),
    summary="The newest stories, of one section or of all",
)
async def get_articles(
    _owner: Caller,
    session: ReadSession,
    section: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 20,
) -> ArticleList:
    try:
        found = await newsroom.list_articles(session, section=section, limit=limit)
    except newsroom.UnknownSection:
        raise HTTPException(404, "no such section") from None
    return ArticleList(articles=await article_answers(session, found))


async def article_answers(session: AsyncSession, articles: Sequence[Article]) -> list[ArticleOut]:
    """The stories as answered, each with its push (if it was pushed)."""
    pushed = await newsroom.pushes_of(session, [article.id for article in articles])
    return [ArticleOut.of(article, pushed.get(article.id)) for article in articles]


def send_alerts(application: NewsApp) -> None:
    """Keyword alerts for a story the API just stored (the tick would find it too)."""
    application.create_task(
        jobs.run_alerts(application.bot, application.bot_data), name="keyword-alerts"
    )
