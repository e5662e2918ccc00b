"""/pushes/{push_id}/correct and /withdraw: corrections and withdrawals of a sent push, run
on the same ActionRunner as an editor's ✏️ Correct and 🗑 Withdraw."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import NewsApp
from bot.web.deps import App, Caller, Key, PushId, Svc
from bot.web.idempotency import After, once
from bot.web.schemas import ActionOut, CorrectIn, WithdrawIn, invalid, problems
from digests.models import PushActionKind, PushOrigin
from digests.newsroom import corrections
from digests.newsroom.texts import refusal

log = logging.getLogger(__name__)

router = APIRouter(prefix="/pushes/{push_id}")


@router.post(
    "/correct",
    status_code=202,
    response_model=ActionOut,
    responses=problems(400, 401, 404, 409, 503),
    summary="Edit every message sent for a push to the story as stored now, with a note",
)
async def correct_push(
    push_id: PushId,
    body: CorrectIn,
    request: Request,
    owner: Caller,
    svc: Svc,
    bot: App,
    key: Key = None,
) -> Response:
    return await _act(
        request, svc, bot, owner, key, body, push_id, PushActionKind.CORRECT, body.note
    )


@router.post(
    "/withdraw",
    status_code=202,
    response_model=ActionOut,
    responses=problems(400, 401, 404, 409, 503),
    summary="Delete every message sent for a push that Telegram still allows (48 hours)",
)
async def withdraw_push(
    push_id: PushId,
    request: Request,
    owner: Caller,
    svc: Svc,
    bot: App,
    body: WithdrawIn | None = None,
    key: Key = None,
) -> Response:
    given = body if body is not None else WithdrawIn()
    return await _act(
        request, svc, bot, owner, key, given, push_id, PushActionKind.WITHDRAW, given.note
    )


async def _act(
    request: Request,
    svc: Svc,
    bot: NewsApp,
    owner: str,
    key: str | None,
    body: BaseModel,
    push_id: int,
    kind: PushActionKind,
    note: str | None,
) -> Response:
    async def action(session: AsyncSession, after: After) -> tuple[int, BaseModel]:
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
            status = REFUSAL_STATUS[made.code]
            if status == 422:
                raise invalid(("body", "note"), refusal(made))
            raise HTTPException(status, refusal(made))
        action_id = made.id
        log.info("API %s of push %s: action %s", kind.value, push_id, action_id)
        after.tasks.append(lambda: run_action(bot, action_id))
        await session.refresh(made)
        return 202, ActionOut.of(made)

    return await once(request, svc, owner, key, body, action)


REFUSAL_STATUS = {
    corrections.RefusalCode.UNKNOWN_PUSH: 404,
    corrections.RefusalCode.NOT_SENT: 409,
    corrections.RefusalCode.WITHDRAWN: 409,
    corrections.RefusalCode.EMPTY_NOTE: 422,
    corrections.RefusalCode.NOTE_TOO_LONG: 422,
}
"""The status code of each refusal of a correction or withdrawal."""


def run_action(application: NewsApp, action_id: int) -> None:
    """Run a committed correction or withdrawal in the background."""
    runner = application.bot_data.actions
    application.create_task(runner.run(action_id), name=f"push-action-{action_id}")
