"""Corrections and withdrawals on a real database: who may ask, and each message handled
once per action however the runs are cut short or doubled."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from digests.db import SessionFactory
from digests.feeds.ingest import store_entries
from digests.feeds.parse import FeedEntry
from digests.models import (
    Article,
    BreakingPush,
    Chat,
    ChatKind,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    PushAction,
    PushActionKind,
    PushOrigin,
    PushStatus,
)
from digests.newsroom.actions import ActionProgress, ActionRunner, EditOutcome, EditResult
from digests.newsroom.corrections import (
    CorrectionText,
    Refusal,
    RefusalCode,
    correct_story,
    messages_to_act_on,
    pushes_of,
    request_action,
)
from digests.newsroom.texts import refusal

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class FakeEditor:
    """Records every edit and delete; answers from `outcomes` by chat (EDITED otherwise)."""

    def __init__(self) -> None:
        self.edits: list[tuple[int, int, str, bool]] = []
        self.deletes: list[tuple[int, int]] = []
        self.outcomes: dict[int, EditResult] = {}
        self.after_each: asyncio.Event | None = None
        self.calls = 0
        self.stop_after: int | None = None

    def _answer(self, chat_id: int) -> EditResult:
        self.calls += 1
        if self.stop_after is not None and self.calls >= self.stop_after:
            assert self.after_each is not None
            self.after_each.set()
        return self.outcomes.get(chat_id, EditResult(EditOutcome.EDITED))

    async def edit(self, chat_id: int, message_id: int, text: str, *, photo: bool) -> EditResult:
        await asyncio.sleep(0)
        self.edits.append((chat_id, message_id, text, photo))
        return self._answer(chat_id)

    async def delete(self, chat_id: int, message_id: int) -> EditResult:
        await asyncio.sleep(0)
        self.deletes.append((chat_id, message_id))
        return self._answer(chat_id)


async def sent_push(
    factory: SessionFactory,
    readers: int,
    *,
    status: PushStatus = PushStatus.DONE,
    sent_at: datetime = NOW,
    photo_every: int = 0,
    first_chat: int = 5000,
) -> int:
    """A push of a new story, SENT to `readers` chats (message id 100 + n in chat
    first_chat + n), and not to one more (blocked)."""
    async with factory.begin() as session:
        article = Article(
            key=f"k{first_chat}",
            title="Bridge closed",
            summary="Both lanes shut.",
            link=None,
            published_at=NOW,
            ingested_at=NOW,
            updated_at=NOW,
        )
        session.add(article)
        await session.flush()
        push = BreakingPush(
            article_id=article.id,
            status=status,
            created_by=1,
            admin_chat_id=1,
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(push)
        for n in range(readers):
            chat = Chat(
                telegram_id=first_chat + n,
                kind=ChatKind.PRIVATE,
                timezone="UTC",
                created_at=NOW,
                updated_at=NOW,
            )
            session.add(chat)
            await session.flush()
            session.add(
                Delivery(
                    chat_id=chat.id,
                    kind=DeliveryKind.BREAKING,
                    ref=str(article.id),
                    article_id=article.id,
                    status=DeliveryStatus.SENT,
                    message_ids=str(100 + n),
                    media="photo" if photo_every and n % photo_every == 0 else None,
                    created_at=sent_at,
                    updated_at=sent_at,
                )
            )
        # a reader the push never reached: nothing to edit
        chat = Chat(
            telegram_id=first_chat - 1,
            kind=ChatKind.PRIVATE,
            timezone="UTC",
            created_at=NOW,
            updated_at=NOW,
        )
        session.add(chat)
        await session.flush()
        session.add(
            Delivery(
                chat_id=chat.id,
                kind=DeliveryKind.BREAKING,
                ref=str(article.id),
                article_id=article.id,
                status=DeliveryStatus.BLOCKED,
                created_at=sent_at,
                updated_at=sent_at,
            )
        )
        await session.flush()
        return push.id


async def ask(
    factory: SessionFactory,
    push_id: int,
    kind: PushActionKind,
    note: str | None = "Bridge reopened",
    *,
    now: datetime = NOW,
) -> PushAction | Refusal:
    async with factory.begin() as session:
        return await request_action(
            session,
            push_id,
            kind,
            note=note,
            origin=PushOrigin.API,
            created_by=None,
            admin_chat_id=None,
            now=now,
        )


async def action_id(factory: SessionFactory, push_id: int, kind: PushActionKind) -> int:
    action = await ask(factory, push_id, kind)
    assert isinstance(action, PushAction), action
    return action.id


async def test_refusals(session_factory: SessionFactory) -> None:
    draft = await sent_push(session_factory, 1, status=PushStatus.DRAFT, first_chat=6000)
    assert await ask(session_factory, draft, PushActionKind.CORRECT) == Refusal(
        RefusalCode.NOT_SENT
    )
    assert await ask(session_factory, 999, PushActionKind.WITHDRAW) == Refusal(
        RefusalCode.UNKNOWN_PUSH
    )
    push = await sent_push(session_factory, 2)
    for empty in (None, "", " \x00\x07 "):
        found = await ask(session_factory, push, PushActionKind.CORRECT, empty)
        assert found == Refusal(RefusalCode.EMPTY_NOTE)
    too_long = await ask(session_factory, push, PushActionKind.CORRECT, "x" * 201)
    assert too_long == Refusal(RefusalCode.NOTE_TOO_LONG)
    assert isinstance(too_long, Refusal) and "too long" in refusal(too_long)
    async with session_factory() as session:
        assert list(await session.scalars(select(PushAction))) == []
    assert isinstance(await ask(session_factory, push, PushActionKind.WITHDRAW, None), PushAction)
    async with session_factory() as session:
        stored = await session.get(BreakingPush, push)
        assert stored is not None and stored.withdrawn_at == NOW
    # withdrawn: nothing more, neither a correction nor a second withdrawal
    for kind in PushActionKind:
        assert await ask(session_factory, push, kind) == Refusal(RefusalCode.WITHDRAWN)


async def test_two_withdrawals_at_once_make_one_action(session_factory: SessionFactory) -> None:
    push = await sent_push(session_factory, 1)
    found = await asyncio.gather(
        *(ask(session_factory, push, PushActionKind.WITHDRAW) for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(isinstance(f, PushAction) for f in found) == 1
    async with session_factory() as session:
        assert len(list(await session.scalars(select(PushAction)))) == 1


async def test_a_correction_edits_every_sent_message_once(session_factory: SessionFactory) -> None:
    push = await sent_push(session_factory, 25, photo_every=5)
    async with session_factory() as session:
        assert await messages_to_act_on(session, push) == 25
    editor = FakeEditor()
    reports: list[ActionProgress] = []

    async def report(progress: ActionProgress) -> None:
        reports.append(progress)

    async with session_factory.begin() as session:
        action = await correct_story(
            session,
            CorrectionText(push, "Bridge <reopened>", "Traffic & more.", "it reopened"),
            created_by=1,
            admin_chat_id=1,
            now=NOW,
        )
        assert isinstance(action, PushAction)
        first = action.id
    runner = ActionRunner(session_factory, editor, clock=lambda: NOW, on_progress=report, batch=4)
    state = await runner.run(first)
    assert state is not None and state.done
    assert (state.edited, state.failed, state.too_old, state.remaining) == (25, 0, 0, 0)
    assert sorted((chat, mid) for chat, mid, _, _ in editor.edits) == [
        (5000 + n, 100 + n) for n in range(25)
    ]
    photos = [(chat, text) for chat, _, text, photo in editor.edits if photo]
    assert sorted(chat for chat, _ in photos) == [5000, 5005, 5010, 5015, 5020]
    for _, text, _, _ in [(c, t, 0, 0) for c, _, t, _ in editor.edits]:
        assert "<b>Bridge &lt;reopened&gt;</b>" in text and "Traffic &amp; more." in text
        assert text.endswith("<i>✏️ Corrected: it reopened</i>")
    assert reports[-1].done and reports[-1].edited == 25
    # run again (the resume job): nothing left, nothing edited twice, nothing reported
    assert await runner.unfinished() == []
    reported = len(reports)
    await runner.run(first)
    assert len(editor.edits) == 25 and len(reports) == reported
    # a second correction goes over every message again, once
    second = await action_id(session_factory, push, PushActionKind.CORRECT)
    await ActionRunner(session_factory, editor, clock=lambda: NOW).run(second)
    assert len(editor.edits) == 50
    assert Counter((c, m) for c, m, _, _ in editor.edits) == Counter(
        {(5000 + n, 100 + n): 2 for n in range(25)}
    )


async def test_a_runner_stopped_midway_is_finished_by_the_next(
    session_factory: SessionFactory,
) -> None:
    push = await sent_push(session_factory, 30)
    first = await action_id(session_factory, push, PushActionKind.CORRECT)
    stopping = asyncio.Event()
    editor = FakeEditor()
    editor.after_each, editor.stop_after = stopping, 7
    runner = ActionRunner(session_factory, editor, clock=lambda: NOW, stopping=stopping, batch=5)
    state = await runner.run(first)
    assert state is not None and not state.done
    assert state.edited == 10 and state.remaining == 20  # the batch in hand was finished
    assert await runner.unfinished() == [first]
    # a restart: a new runner (and a second instance at once) finish it
    editor.stop_after = None
    again = [ActionRunner(session_factory, editor, clock=lambda: NOW, batch=3) for _ in range(2)]
    await asyncio.gather(*(r.run(first) for r in again))
    final = await again[0].progress(first)
    assert final is not None and final.done
    assert (final.edited, final.failed, final.remaining) == (30, 0, 0)
    assert Counter(chat for chat, _, _, _ in editor.edits) == Counter(
        {5000 + n: 1 for n in range(30)}
    )


async def test_a_crashed_claim_is_taken_over_after_its_lease(
    session_factory: SessionFactory,
) -> None:
    push = await sent_push(session_factory, 3)
    first = await action_id(session_factory, push, PushActionKind.CORRECT)

    class Crash(BaseException):
        pass

    class CrashingEditor(FakeEditor):
        async def edit(
            self, chat_id: int, message_id: int, text: str, *, photo: bool
        ) -> EditResult:
            raise Crash

    with pytest.raises(Crash):
        await ActionRunner(session_factory, CrashingEditor(), clock=lambda: NOW).run(first)
    editor = FakeEditor()
    # the dead claim still holds the rows: nothing is edited, the action is not done
    state = await ActionRunner(session_factory, editor, clock=lambda: NOW).run(first)
    assert state is not None and not state.done and state.remaining == 3
    assert editor.edits == []
    later = NOW + timedelta(minutes=6)
    state = await ActionRunner(session_factory, editor, clock=lambda: later).run(first)
    assert state is not None and state.done and state.edited == 3
    assert len(editor.edits) == 3


async def test_a_withdrawal_deletes_what_telegram_allows(session_factory: SessionFactory) -> None:
    push = await sent_push(session_factory, 6, sent_at=NOW - timedelta(hours=47))
    old = await sent_push(
        session_factory, 0, first_chat=7000
    )  # another push: its rows are not touched
    assert old != push
    async with session_factory.begin() as session:
        # two readers got it 49 hours ago (the push went out slowly)
        rows = list(
            await session.scalars(
                select(Delivery).where(Delivery.status == DeliveryStatus.SENT).order_by(Delivery.id)
            )
        )
        for row in rows[:2]:
            row.updated_at = NOW - timedelta(hours=49)
    editor = FakeEditor()
    editor.outcomes[5002] = EditResult(EditOutcome.GONE, error="message to delete not found")
    editor.outcomes[5003] = EditResult(EditOutcome.RETRY_LATER, retry_after=60)
    withdraw = await action_id(session_factory, push, PushActionKind.WITHDRAW)
    runner = ActionRunner(session_factory, editor, clock=lambda: NOW)
    state = await runner.run(withdraw)
    assert state is not None and not state.done
    assert (state.edited, state.failed, state.too_old, state.remaining) == (2, 1, 2, 1)
    assert sorted(editor.deletes) == [(5002, 102), (5003, 103), (5004, 104), (5005, 105)]
    # the flood limit's wait is kept: not before it is over
    assert await runner.run(withdraw) is not None and len(editor.deletes) == 4
    del editor.outcomes[5003]
    later = NOW + timedelta(seconds=61)
    state = await ActionRunner(session_factory, editor, clock=lambda: later).run(withdraw)
    assert state is not None and state.done
    assert (state.edited, state.failed, state.too_old, state.remaining) == (3, 1, 2, 0)
    assert editor.deletes.count((5003, 103)) == 2
    assert editor.edits == []


async def test_a_withdrawal_supersedes_a_correction_under_way(
    session_factory: SessionFactory,
) -> None:
    push = await sent_push(session_factory, 10)
    correction = await action_id(session_factory, push, PushActionKind.CORRECT)
    stopping = asyncio.Event()
    editor = FakeEditor()
    editor.after_each, editor.stop_after = stopping, 1
    await ActionRunner(session_factory, editor, clock=lambda: NOW, stopping=stopping, batch=4).run(
        correction
    )
    withdraw = await action_id(session_factory, push, PushActionKind.WITHDRAW)
    runner = ActionRunner(session_factory, FakeEditor(), clock=lambda: NOW)
    assert await runner.unfinished() == [withdraw]  # the correction is over
    assert await runner.run(correction) is not None  # a late resume edits nothing more
    assert len(editor.edits) == 4
    state = await runner.run(withdraw)
    assert state is not None and state.done and state.edited == 10


async def test_a_feed_rewriting_a_pushed_story_names_its_push(
    session_factory: SessionFactory,
) -> None:
    entry = FeedEntry(
        guid="g1",
        link="https://news.example/1",
        title="Bridge closed",
        summary="Both lanes shut.",
        published=NOW,
        categories=("World",),
    )
    store = functools.partial(
        store_entries, now=NOW, category_map={}, default_section="General", source="feed"
    )
    async with session_factory.begin() as session:
        await store(session, [entry])
        article_id = await session.scalar(select(Article.id))
        assert article_id is not None
        for status in (PushStatus.DONE, PushStatus.CANCELLED):
            session.add(
                BreakingPush(
                    article_id=article_id,
                    status=status,
                    created_by=1,
                    admin_chat_id=77,
                    created_at=NOW,
                    updated_at=NOW,
                )
            )
    async with session_factory.begin() as session:
        same = await store(session, [entry])
        renamed = await store(session, [dataclasses.replace(entry, title="Bridge reopened")])
        assert (same.rewritten, renamed.rewritten) == ([], [article_id])
        [push] = await pushes_of(session, renamed.rewritten)
        assert (push.status, push.admin_chat_id) == (PushStatus.DONE, 77)
        push.withdrawn_at = NOW  # a withdrawn push is not offered for correction
        await session.flush()
        assert await pushes_of(session, [article_id]) == []
