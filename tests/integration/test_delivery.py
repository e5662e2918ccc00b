"""The delivery engine on real databases, with a fake Sender built on the real interface."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from digests.db import SessionFactory, make_engine, make_session_factory
from digests.delivery.config import DeliveryConfig
from digests.delivery.ports import BeforeSend, Outcome, Part, SendPriority, SendResult, Text
from digests.digest import rounds
from digests.digest.rounds import run_digest_round
from digests.models import (
    Article,
    Chat,
    ChatKind,
    Delivery,
    DeliveryStatus,
    Section,
    Subscription,
)

NOW = datetime(2026, 11, 24, 8, 0, 30, tzinfo=UTC)
_ids = itertools.count(1)


Hook = Callable[[int], Awaitable[None]]


@dataclass
class FakeSender:
    """Records what each chat would receive; scripted outcomes per chat id.

    Like the real sender it announces each send (`before_send`) when the request leaves:
    after `before_turn` (its wait in the rate limiter) and, with `one_at_a_time`, once the
    previous request is done; `on_wire` runs while the request is out."""

    received: dict[int, list[str]] = field(default_factory=dict)
    script: dict[int, list[SendResult]] = field(default_factory=dict)
    hang_after: int | None = None  # block forever after this many sends (a "kill -9")
    one_at_a_time: bool = False  # a limiter in front: one request out at a time
    before_turn: Hook | None = None
    on_wire: Hook | None = None
    calls: int = 0
    out: int = 0  # requests on the wire now
    _wire: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    async def send(
        self,
        chat_id: int,
        texts: Sequence[Part],
        *,
        priority: SendPriority,
        before_send: BeforeSend | None = None,
    ) -> SendResult:
        if self.before_turn is not None:
            await self.before_turn(chat_id)
        if not self.one_at_a_time:
            return await self._leave(chat_id, texts, before_send)
        async with self._wire:
            return await self._leave(chat_id, texts, before_send)

    async def _leave(
        self, chat_id: int, texts: Sequence[Part], before_send: BeforeSend | None
    ) -> SendResult:
        if before_send is not None and not await before_send():
            return SendResult(Outcome.WITHDRAWN)
        self.calls += 1
        self.out += 1
        if self.hang_after is not None and self.calls > self.hang_after:
            await asyncio.Event().wait()
        if self.on_wire is not None:
            await self.on_wire(chat_id)
        self.out -= 1
        scripted = self.script.get(chat_id)
        if scripted:
            result = scripted.pop(0)
            if result.outcome is not Outcome.SENT:
                return result
        self.received.setdefault(chat_id, []).extend(
            part.html if isinstance(part, Text) else part for part in texts
        )
        return SendResult(Outcome.SENT, tuple(next(_ids) for _ in texts))


async def seed(
    factory: SessionFactory,
    *,
    chats: int,
    due: datetime = NOW - timedelta(seconds=30),
    sections: Sequence[str] = ("World", "Sports"),
    follow: Sequence[str] = ("World",),
    tz: str = "UTC",
) -> list[int]:
    """Sections with one fresh story each, and `chats` readers due at `due`."""
    async with factory.begin() as session:
        made = {}
        for name in sections:
            section = Section(slug=name.lower(), name=name, created_at=NOW)
            session.add(section)
            made[name] = section
            session.add(
                Article(
                    key=f"{name}-story",
                    link=f"https://x.example/{name}",
                    title=f"{name} story <&>",
                    summary="s",
                    published_at=NOW - timedelta(hours=2),
                    ingested_at=NOW - timedelta(hours=1),
                    updated_at=NOW,
                    sections=[section],
                )
            )
        await session.flush()
        ids = []
        for n in range(chats):
            chat = Chat(
                telegram_id=10_000 + n,
                kind=ChatKind.PRIVATE,
                timezone=tz,
                digest_time="08:00",
                next_digest_at=due,
                alerts=True,
                active=True,
                created_at=NOW - timedelta(days=1),
                updated_at=NOW,
            )
            session.add(chat)
            await session.flush()
            for name in follow:
                session.add(Subscription(chat_id=chat.id, section_id=made[name].id, created_at=NOW))
            ids.append(chat.telegram_id)
    return ids


def config(**overrides: object) -> DeliveryConfig:
    base = {"batch": 4, "workers": 2}
    base.update(overrides)
    return DeliveryConfig(**base)  # type: ignore[arg-type]


async def statuses(factory: SessionFactory) -> Counter[str]:
    async with factory() as session:
        return Counter(str(s) for s in await session.scalars(select(Delivery.status)))


async def test_due_digest_is_sent_once_with_only_followed_sections(
    session_factory: SessionFactory,
) -> None:
    chats = await seed(session_factory, chats=5)
    sender = FakeSender()
    report = await run_digest_round(session_factory, sender, now=lambda: NOW, config=config())
    assert report.sent == 5
    again = await run_digest_round(session_factory, sender, now=lambda: NOW, config=config())
    assert again.sent == 0 and again.scheduled == 0
    for chat in chats:
        [text] = sender.received[chat]
        assert "World story &lt;&amp;&gt;" in text
        assert "Sports" not in text
    async with session_factory() as session:
        nexts = set(await session.scalars(select(Chat.next_digest_at)))
    assert nexts == {datetime(2026, 11, 25, 8, 0, tzinfo=UTC)}


async def test_no_new_stories_means_no_message(session_factory: SessionFactory) -> None:
    await seed(session_factory, chats=2, follow=())
    sender = FakeSender()
    report = await run_digest_round(session_factory, sender, now=lambda: NOW, config=config())
    assert sender.received == {}
    assert report.empty == 2
    assert (await statuses(session_factory))["empty"] == 2


async def test_blocked_reader_is_deactivated_and_others_still_get_theirs(
    session_factory: SessionFactory,
) -> None:
    chats = await seed(session_factory, chats=6)
    sender = FakeSender(script={chats[2]: [SendResult(Outcome.BLOCKED, error="403: blocked")]})
    report = await run_digest_round(session_factory, sender, now=lambda: NOW, config=config())
    assert report.blocked == 1 and report.sent == 5
    assert set(sender.received) == set(chats) - {chats[2]}
    async with session_factory() as session:
        blocked = await session.scalar(select(Chat).where(Chat.telegram_id == chats[2]))
    assert blocked is not None and not blocked.active
    # a deactivated chat is not scheduled again
    later = NOW + timedelta(days=1)
    await run_digest_round(session_factory, sender, now=lambda: later, config=config())
    assert chats[2] not in sender.received


async def test_flood_wait_is_retried_after_retry_after(session_factory: SessionFactory) -> None:
    chats = await seed(session_factory, chats=3)
    sender = FakeSender(
        script={chats[0]: [SendResult(Outcome.RETRY_LATER, retry_after=120, error="429")]}
    )
    first = await run_digest_round(session_factory, sender, now=lambda: NOW, config=config())
    assert first.retry_later == 1
    assert chats[0] not in sender.received
    soon = NOW + timedelta(seconds=60)
    await run_digest_round(session_factory, sender, now=lambda: soon, config=config())
    assert chats[0] not in sender.received  # still waiting out the flood limit
    later = NOW + timedelta(seconds=121)
    await run_digest_round(session_factory, sender, now=lambda: later, config=config())
    assert len(sender.received[chats[0]]) == 1


async def test_unexpected_error_for_one_chat_does_not_stop_the_round(
    session_factory: SessionFactory,
) -> None:
    chats = await seed(session_factory, chats=4)

    async def explode(chat_id: int) -> None:
        if chat_id == chats[1]:
            raise RuntimeError("boom")

    sender = FakeSender(before_turn=explode)
    report = await run_digest_round(session_factory, sender, now=lambda: NOW, config=config())
    assert report.failed == 1 and report.sent == 3


async def test_migrated_group_follows_its_new_id(session_factory: SessionFactory) -> None:
    chats = await seed(session_factory, chats=1)
    sender = FakeSender(
        script={chats[0]: [SendResult(Outcome.MIGRATED, migrate_to=-100555, error="migrated")]}
    )
    report = await run_digest_round(session_factory, sender, now=lambda: NOW, config=config())
    assert report.sent == 1
    assert len(sender.received[-100555]) == 1
    async with session_factory() as session:
        chat = await session.scalar(select(Chat))
    assert chat is not None and chat.telegram_id == -100555


async def test_restart_mid_round_never_sends_twice(session_factory: SessionFactory) -> None:
    chats = await seed(session_factory, chats=12)
    crashing = FakeSender(hang_after=5)
    task = asyncio.create_task(
        run_digest_round(session_factory, crashing, now=lambda: NOW, config=config())
    )
    # 12 rows in batches of 4: the worker whose first batch went out whole claims the third
    # batch and is stuck in its sends too. Only then is no worker inside a transaction, as a
    # process killed mid-send leaves it (an in-process cancel mid-transaction would leave
    # SQLite's write lock with a connection nobody closes, which a dead process never does).
    while crashing.calls < 3 * config().batch:  # every worker is stuck mid-send
        await asyncio.sleep(0.01)
    task.cancel()  # the process dies here
    with pytest.raises(asyncio.CancelledError):
        await task
    counts = await statuses(session_factory)
    assert counts["sending"] > 0  # the sends in flight when it died

    restarted = FakeSender()
    await run_digest_round(session_factory, restarted, now=lambda: NOW, config=config())
    total = Counter({c: len(t) for c, t in crashing.received.items()})
    total.update({c: len(t) for c, t in restarted.received.items()})
    assert max(total.values()) == 1  # nobody got two copies
    # much later the in-flight rows are reported uncertain, never resent
    later = NOW + timedelta(minutes=30)
    report = await run_digest_round(
        session_factory, FakeSender(), now=lambda: later, config=config()
    )
    after = await statuses(session_factory)
    assert after["sending"] == 0
    assert after["uncertain"] == report.uncertain == counts["sending"]
    assert after["sent"] + after["uncertain"] == len(chats)


async def test_digest_due_while_down_is_sent_once_within_grace(
    session_factory: SessionFactory,
) -> None:
    three_days_ago = NOW - timedelta(days=3, seconds=30)
    chats = await seed(session_factory, chats=2, due=three_days_ago)
    # down until 10:00: today's 08:00 digest is 2 h late, within the 6 h grace
    back = NOW + timedelta(hours=2)
    sender = FakeSender()
    report = await run_digest_round(session_factory, sender, now=lambda: back, config=config())
    assert report.sent == 2
    assert all(len(sender.received[c]) == 1 for c in chats)
    await run_digest_round(session_factory, sender, now=lambda: back, config=config())
    assert all(len(sender.received[c]) == 1 for c in chats)


async def test_digest_older_than_grace_is_skipped(session_factory: SessionFactory) -> None:
    await seed(session_factory, chats=2)
    back = NOW + timedelta(hours=9)  # 08:00 digest is 9 h old: beyond the 6 h grace
    sender = FakeSender()
    report = await run_digest_round(session_factory, sender, now=lambda: back, config=config())
    assert report.skipped_stale == 2 and sender.received == {}
    async with session_factory() as session:
        nexts = set(await session.scalars(select(Chat.next_digest_at)))
    assert nexts == {datetime(2026, 11, 25, 8, 0, tzinfo=UTC)}


async def test_two_workers_send_each_digest_once(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(2)]
    try:
        factories = [make_session_factory(e) for e in engines]
        chats = await seed(factories[0], chats=40)
        senders = [FakeSender(), FakeSender()]
        await asyncio.gather(
            *(
                run_digest_round(f, s, now=lambda: NOW, config=config())
                for f, s in zip(factories, senders, strict=True)
            )
        )
        total: Counter[int] = Counter()
        for sender in senders:
            total.update({c: len(t) for c, t in sender.received.items()})
        assert set(total) == set(chats)
        assert set(total.values()) == {1}
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_stopping_round_finishes_its_batches_and_claims_no_more(
    session_factory: SessionFactory,
) -> None:
    """SIGTERM mid-round: what is in flight is sent and recorded, nothing else starts, and
    the rest stays PENDING for the next round (of this or any instance)."""
    chats = await seed(session_factory, chats=20)
    stopping = asyncio.Event()

    sender = FakeSender()

    async def stop_at_the_fifth(_chat_id: int) -> None:
        if sender.calls == 5:
            stopping.set()  # the signal arrives while the first batches are out

    sender.on_wire = stop_at_the_fifth
    report = await run_digest_round(
        session_factory, sender, now=lambda: NOW, config=config(), stopping=stopping
    )
    counts = await statuses(session_factory)
    assert counts["sending"] == 0  # every claimed row was recorded
    assert report.sent == counts["sent"] == sender.calls < len(chats)
    assert sender.calls <= 2 * config().batch * config().workers  # no batch after the stop
    assert counts["pending"] == len(chats) - counts["sent"]
    later = await run_digest_round(session_factory, FakeSender(), now=lambda: NOW, config=config())
    assert later.sent == counts["pending"]  # the next round sends the rest, once


async def test_a_crash_leaves_only_the_request_on_the_wire_sending(
    session_factory: SessionFactory,
) -> None:
    """kill -9 while batches queue behind the limiter: only the one request that left is
    SENDING (reported uncertain later); the claimed rows still waiting are sent by the next
    process once their claim lease is over, and nobody gets two copies."""
    chats = await seed(session_factory, chats=12)
    crashing = FakeSender(hang_after=3, one_at_a_time=True)
    task = asyncio.create_task(
        run_digest_round(session_factory, crashing, now=lambda: NOW, config=config())
    )
    while crashing.calls <= 3:  # the fourth send hangs on the wire; 7 more claimed rows wait
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # let the three answered sends be recorded
    task.cancel()  # the process dies here
    with pytest.raises(asyncio.CancelledError):
        await task
    counts = await statuses(session_factory)
    assert counts["sending"] == 1 == crashing.out
    assert counts["sent"] == 3
    assert counts["pending"] == len(chats) - 4

    # at once, a new process sends what nobody holds; the dead one's claims are not free yet
    soon = await run_digest_round(session_factory, FakeSender(), now=lambda: NOW, config=config())
    assert 0 < soon.sent < len(chats) - 4
    # a minute later their claim lease is over: they are sent; the SENDING one is not resent
    later = NOW + config().claim_lease + timedelta(seconds=1)
    restarted = FakeSender()
    report = await run_digest_round(session_factory, restarted, now=lambda: later, config=config())
    assert soon.sent + report.sent == len(chats) - 4
    much_later = NOW + config().lease + timedelta(seconds=1)
    final = await run_digest_round(
        session_factory, FakeSender(), now=lambda: much_later, config=config()
    )
    assert final.uncertain == final.interrupted == 1 and final.sent == 0
    after = await statuses(session_factory)
    assert after == Counter({"sent": len(chats) - 1, "uncertain": 1})


async def test_stopping_withdraws_the_sends_still_waiting_for_their_turn(
    session_factory: SessionFactory,
) -> None:
    """SIGTERM while a batch queues behind the limiter: the request on the wire finishes and
    is recorded; the ones still waiting never leave, and their rows are free at once."""
    chats = await seed(session_factory, chats=12)
    stopping = asyncio.Event()
    gate = asyncio.Event()

    sender = FakeSender(one_at_a_time=True)

    async def slow_third_answer(_chat_id: int) -> None:
        if sender.calls == 3:
            stopping.set()  # the signal arrives while this request is on the wire
            await gate.wait()

    sender.on_wire = slow_third_answer
    round_task = asyncio.create_task(
        run_digest_round(
            session_factory, sender, now=lambda: NOW, config=config(), stopping=stopping
        )
    )
    await stopping.wait()
    await asyncio.sleep(0.1)  # the answer on the wire comes back a little later
    gate.set()
    report = await asyncio.wait_for(round_task, 5)
    counts = await statuses(session_factory)
    assert counts["sending"] == 0
    assert report.sent == counts["sent"] == sender.calls == 3
    async with session_factory() as session:
        held = await session.scalar(
            select(func.count()).where(
                Delivery.status == DeliveryStatus.PENDING,
                (Delivery.claimed_by.is_not(None)) | (Delivery.not_before.is_not(None)),
            )
        )
    assert held == 0  # nothing held by the stopped process: any instance may send them now
    rest = await run_digest_round(session_factory, FakeSender(), now=lambda: NOW, config=config())
    assert rest.sent == len(chats) - counts["sent"]


async def test_a_row_claimed_again_after_its_lease_is_sent_by_one_worker_only(
    session_factory: SessionFactory,
) -> None:
    """A worker whose claim ran out while its request waited loses the row to the one that
    claimed it since: when its turn comes, it withdraws instead of sending a second copy."""
    chats = await seed(session_factory, chats=1)
    later = NOW + config().claim_lease + timedelta(seconds=1)
    released = asyncio.Event()
    waiting = asyncio.Event()

    async def wait_long(_chat_id: int) -> None:
        waiting.set()
        await released.wait()  # queued in the limiter for longer than the claim lease

    slow = FakeSender(before_turn=wait_long)
    first = asyncio.create_task(
        run_digest_round(session_factory, slow, now=lambda: NOW, config=config())
    )
    await waiting.wait()
    fast = FakeSender()
    second = await run_digest_round(session_factory, fast, now=lambda: later, config=config())
    released.set()
    first_report = await first
    assert second.sent == 1 and first_report.sent == 0 and first_report.lost_race == 1
    assert len(fast.received[chats[0]]) == 1 and chats[0] not in slow.received
    assert await statuses(session_factory) == Counter({"sent": 1})


async def test_a_round_reads_its_rows_a_page_at_a_time_and_sends_each_once(
    session_factory: SessionFactory,
) -> None:
    """More due chats than a page: every page is sent, each digest once, none left."""
    chats = await seed(session_factory, chats=11)
    sender = FakeSender()
    report = await run_digest_round(session_factory, sender, now=lambda: NOW, config=config(page=3))
    assert report.sent == 11
    assert {chat: len(texts) for chat, texts in sender.received.items()} == dict.fromkeys(chats, 1)
    assert await statuses(session_factory) == Counter({"sent": 11})


async def test_claims_larger_than_a_batch_send_each_digest_once(
    session_factory: SessionFactory,
) -> None:
    chats = await seed(session_factory, chats=30)
    sender = FakeSender()
    report = await run_digest_round(
        session_factory, sender, now=lambda: NOW, config=config(claim_batch=12)
    )
    assert report.sent == 30
    assert {chat: len(texts) for chat, texts in sender.received.items()} == dict.fromkeys(chats, 1)


async def test_a_stop_frees_the_claimed_rows_not_yet_sent(
    session_factory: SessionFactory,
) -> None:
    """A claim of 12 sent 4 at a time: a stop after the first sends leaves the rest of the
    claim PENDING and unclaimed, and the next round sends them once."""
    chats = await seed(session_factory, chats=12)
    stopping = asyncio.Event()
    sender = FakeSender()

    async def stop_at_once(_chat_id: int) -> None:
        stopping.set()

    sender.on_wire = stop_at_once
    cfg = config(claim_batch=12, workers=1)
    report = await run_digest_round(
        session_factory, sender, now=lambda: NOW, config=cfg, stopping=stopping
    )
    counts = await statuses(session_factory)
    assert report.sent == counts["sent"] == sender.calls <= 4
    assert counts["pending"] == 12 - counts["sent"]
    async with session_factory() as session:
        held = await session.scalar(select(func.count()).where(Delivery.claimed_by.is_not(None)))
    assert held == 0
    later = FakeSender()
    rest = await run_digest_round(session_factory, later, now=lambda: NOW, config=config())
    assert rest.sent == counts["pending"]
    assert set(sender.received) | set(later.received) == set(chats)
    assert not set(sender.received) & set(later.received)


async def test_a_large_round_refreshes_the_statistics_and_sends_each_digest_once(
    session_factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rounds, "ANALYZE_AFTER", 5)  # "large": the path a real one takes
    chats = await seed(session_factory, chats=8)
    sender = FakeSender()
    report = await run_digest_round(
        session_factory, sender, now=lambda: NOW, config=config(claim_batch=8)
    )
    assert report.sent == 8
    assert set(sender.received) == set(chats)


async def test_a_round_reads_the_windows_stories_once_whatever_its_pages(
    session_factory: SessionFactory,
) -> None:
    await seed(session_factory, chats=9)
    reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().startswith("SELECT articles.id"):
            reads.append(statement)

    engine = session_factory.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        report = await run_digest_round(
            session_factory, FakeSender(), now=lambda: NOW, config=config(page=3)
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert report.sent == 9
    assert len(reads) == 1
