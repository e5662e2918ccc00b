"""The round's DigestWriter gives every chat exactly what the reference query does."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from digests.db import SessionFactory
from digests.digest.builder import DigestRequest
from digests.digest.rounds import DigestWriter
from digests.digest.texts import digest as render_digest
from digests.models import (
    Article,
    Chat,
    ChatKind,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Section,
    Subscription,
)
from tests.oracle import collect_digest

END = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
START = END - timedelta(hours=24)
NAMES = ["Business", "Culture", "Politics", "Science", "Sports", "World"]
ZONES = ["UTC", "Europe/Berlin", "Asia/Kolkata"]


async def seed_random(factory: SessionFactory, rng: random.Random) -> list[tuple[int, str]]:
    async with factory.begin() as session:
        sections = [Section(slug=n.lower(), name=n, created_at=START) for n in NAMES]
        session.add_all(sections)
        await session.flush()
        articles = []
        for n in range(120):
            ingested = START + timedelta(minutes=rng.randint(-600, 1500))
            published = ingested - timedelta(minutes=rng.choice([0, 5, 60, 1500, 3000]))
            article = Article(
                key=f"a{n}",
                link=f"https://x.example/{n}",
                title=f"Story {n} <{rng.choice('ab')}> & co",
                summary="",
                published_at=published.replace(microsecond=0),
                ingested_at=ingested,
                updated_at=ingested,
                # a few share a publication time, to exercise the id tie-break
                sections=rng.sample(sections, rng.choice([1, 1, 1, 2, 3])),
            )
            articles.append(article)
        session.add_all(articles)
        await session.flush()
        chats = []
        for n in range(40):
            chat = Chat(
                telegram_id=900 + n,
                kind=ChatKind.PRIVATE,
                timezone=rng.choice(ZONES),
                digest_time="08:00",
                alerts=True,
                active=True,
                created_at=START,
                updated_at=START,
            )
            session.add(chat)
            await session.flush()
            for section in rng.sample(sections, rng.randint(0, 4)):
                session.add(Subscription(chat_id=chat.id, section_id=section.id, created_at=START))
            for article in rng.sample(articles, rng.choice([0, 0, 2])):
                session.add(
                    Delivery(
                        chat_id=chat.id,
                        kind=DeliveryKind.BREAKING,
                        ref=str(article.id),
                        article_id=article.id,
                        status=rng.choice([DeliveryStatus.SENT, DeliveryStatus.BLOCKED]),
                        attempts=1,
                        created_at=START,
                        updated_at=START,
                    )
                )
            chats.append((chat.id, chat.timezone))
    return chats


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_builder_matches_the_reference_query(
    session_factory: SessionFactory, seed: int
) -> None:
    rng = random.Random(seed)
    chats = await seed_random(session_factory, rng)
    per_section = rng.choice([1, 3, 5])
    builder = DigestWriter(per_section=per_section)
    async with session_factory() as session:
        # two batches, to use the builder's caches the way a round does
        half = len(chats) // 2
        built: dict[int, list[str]] = {}
        for part in (chats[:half], chats[half:]):
            built |= await builder.build(
                session, [DigestRequest(cid, START, END, tz) for cid, tz in part]
            )
        for chat_id, tz in chats:
            reference = await collect_digest(
                session,
                chat_id=chat_id,
                window_start=START,
                window_end=END,
                per_section=per_section,
            )
            assert built[chat_id] == render_digest(reference, tz=tz, window_end=END), chat_id
    assert any(built.values())
    assert any(not texts for texts in built.values()) or len(chats) < 5
