"""The database side of the push benchmarks (bench.instances, bench.faults): an audience, a
confirmed breaking push, and what the delivery rows say afterwards."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from bench.databases import DEFAULT_POSTGRES, database
from bench.procs import BenchError
from bench.seed import seed
from digests.db import SessionFactory, make_engine, make_session_factory, upgrade
from digests.models import BreakingPush, Chat, Delivery, DeliveryKind, DeliveryStatus
from digests.newsroom import breaking

PUSH_WORDS = ["world", "Storm warning for the coast: ferries suspended, schools closed"]


def utcnow() -> datetime:
    return datetime.now(UTC)


async def prepare(factory: SessionFactory, readers: int) -> None:
    """`readers` private chats following World (the only section), alerts on, no digest due."""
    now = utcnow()
    await seed(factory, subscribers=readers, stories=1, sections=1, now=now)
    async with factory.begin() as session:
        # seed() makes every digest due now; this benchmark is about the push alone
        await session.execute(update(Chat).values(next_digest_at=now + timedelta(days=1)))


async def confirm_push(factory: SessionFactory) -> tuple[int, int, int]:
    """Draft and confirm a push to World, as an editor's Send does: (push id, article id,
    audience). The PENDING rows are written in the confirming transaction."""
    async with factory.begin() as session:
        draft = await breaking.draft_breaking(
            session,
            PUSH_WORDS,
            admin_id=1,
            admin_chat_id=1,
            now=utcnow(),
            default_section="General",
        )
        if draft is None or draft.push.section_id is None:
            raise BenchError("the push did not resolve to the World section")
        push_id, article_id = draft.push.id, draft.push.article_id
        if await breaking.confirm(session, push_id, now=utcnow()) is None:
            raise BenchError("confirming the push failed")
    return push_id, article_id, draft.audience


async def row_statuses(factory: SessionFactory, article_id: int) -> dict[str, int]:
    async with factory() as session:
        rows = await session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.kind == DeliveryKind.BREAKING, Delivery.article_id == article_id)
            .group_by(Delivery.status)
        )
        return {str(status): int(count) for status, count in rows}


async def push_status(factory: SessionFactory, push_id: int) -> str | None:
    async with factory() as session:
        status = await session.scalar(select(BreakingPush.status).where(BreakingPush.id == push_id))
        return str(status) if status is not None else None


async def chats_in_status(
    factory: SessionFactory, article_id: int, status: DeliveryStatus
) -> set[int]:
    async with factory() as session:
        return set(
            await session.scalars(
                select(Chat.telegram_id)
                .join(Delivery, Delivery.chat_id == Chat.id)
                .where(
                    Delivery.kind == DeliveryKind.BREAKING,
                    Delivery.article_id == article_id,
                    Delivery.status == status,
                )
            )
        )


async def audience_chats(factory: SessionFactory, article_id: int) -> set[int]:
    async with factory() as session:
        return set(
            await session.scalars(
                select(Chat.telegram_id)
                .join(Delivery, Delivery.chat_id == Chat.id)
                .where(Delivery.kind == DeliveryKind.BREAKING, Delivery.article_id == article_id)
            )
        )


@contextlib.asynccontextmanager
async def audience_database(
    kind: str, readers: int, *, postgres_url: str = DEFAULT_POSTGRES
) -> AsyncIterator[tuple[str, SessionFactory]]:
    """A fresh database of `kind` (bench.databases), migrated, with `readers` chats following
    World (`prepare`): its URL and a session factory; the engine is disposed afterwards."""
    async with database(kind, postgres_url=postgres_url) as url:
        engine = make_engine(url)
        try:
            await upgrade(engine)
            factory = make_session_factory(engine)
            await prepare(factory, readers)
            yield url, factory
        finally:
            await engine.dispose()
