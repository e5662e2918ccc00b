"""Seed a migrated database with sections, stories, chats and subscriptions, in bulk.

Core `insert()` with lists of rows, a chunk at a time, so 100,000 stories take seconds and
never sit in memory all at once. Ids are given explicitly (so subscriptions and story sections
can refer to them) and PostgreSQL's sequences are moved past them afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, select, text

from digests.db import SessionFactory
from digests.models import Article, Chat, ChatKind, Section, Subscription, article_sections

CHUNK = 5_000
FIRST_TELEGRAM_ID = 1_000_001
STORY_SPREAD = timedelta(days=30)

_SECTION_NAMES = (
    "World",
    "Politics",
    "Business",
    "Technology",
    "Science",
    "Health",
    "Sports",
    "Culture",
    "Opinion",
    "Climate",
    "Travel",
    "Food",
    "Education",
    "Media",
    "Cities",
    "Weather",
)
_WORDS = (
    "minister council storm market vote court rally budget talks strike energy port trial "
    "border summit startup vaccine league festival drought river bank rates housing election "
    "coast rescue report deal union record season museum tariff satellite heatwave & reform"
).split()


@dataclass(frozen=True)
class Seeded:
    sections: int
    stories: int
    story_sections: int
    chats: int
    subscriptions: int
    stories_last_24h: int

    @property
    def telegram_ids(self) -> range:
        return range(FIRST_TELEGRAM_ID, FIRST_TELEGRAM_ID + self.chats)


def section_names(count: int) -> list[str]:
    names = list(_SECTION_NAMES)
    names += [f"Section {n}" for n in range(len(names) + 1, count + 1)]
    return names[:count]


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _title(rng: random.Random, n: int) -> str:
    words = rng.choices(_WORDS, k=rng.randint(6, 14))
    return f"{' '.join(words).capitalize()} ({n})"


async def seed(
    session_factory: SessionFactory,
    *,
    subscribers: int,
    stories: int,
    sections: int,
    now: datetime,
    rng_seed: int = 20240601,
) -> Seeded:
    """Fill an empty, migrated database; every chat's digest is due at `now`."""
    rng = random.Random(rng_seed)
    section_ids = list(range(1, sections + 1))

    def section_rows() -> Iterator[dict[str, Any]]:
        for section_id, name in zip(section_ids, section_names(sections), strict=True):
            yield {
                "id": section_id,
                "slug": name.lower().replace(" ", "-"),
                "name": name,
                "created_at": now,
            }

    story_sections: list[tuple[int, int]] = []

    def article_rows() -> Iterator[dict[str, Any]]:
        for article_id in range(1, stories + 1):
            published = now - STORY_SPREAD * rng.random()
            ingested = min(now, published + timedelta(minutes=rng.uniform(1, 30)))
            homes = rng.sample(section_ids, k=2 if rng.random() < 0.2 else 1)
            story_sections.extend((article_id, section_id) for section_id in homes)
            yield {
                "id": article_id,
                "key": f"bench:{article_id}",
                "link": f"https://news.example/{article_id}",
                "title": _title(rng, article_id),
                "summary": "",
                "published_at": published,
                "ingested_at": ingested,
                "updated_at": ingested,
                "source": "bench",
                "is_breaking": False,
            }

    subscriptions: list[tuple[int, int]] = []

    def chat_rows() -> Iterator[dict[str, Any]]:
        for chat_id in range(1, subscribers + 1):
            follows = rng.sample(section_ids, k=rng.randint(1, min(4, sections)))
            subscriptions.extend((chat_id, section_id) for section_id in follows)
            yield {
                "id": chat_id,
                "telegram_id": FIRST_TELEGRAM_ID + chat_id - 1,
                "kind": ChatKind.PRIVATE,
                "title": None,
                "timezone": "UTC",
                "digest_time": "08:00",
                "next_digest_at": now - timedelta(seconds=1),
                "last_digest_at": None,
                "alerts": True,
                "active": True,
                "deactivated_reason": None,
                "created_at": now,
                "updated_at": now,
            }

    async def bulk(table: Table, rows: Iterator[dict[str, Any]]) -> None:
        for chunk in _chunks(rows):
            async with session_factory.begin() as session:
                await session.execute(insert(table), chunk)

    await bulk(Section.__table__, section_rows())  # type: ignore[arg-type]
    await bulk(Article.__table__, article_rows())  # type: ignore[arg-type]
    await bulk(
        article_sections,
        ({"article_id": a, "section_id": s} for a, s in story_sections),
    )
    await bulk(Chat.__table__, chat_rows())  # type: ignore[arg-type]
    await bulk(
        Subscription.__table__,  # type: ignore[arg-type]
        ({"chat_id": c, "section_id": s, "created_at": now} for c, s in subscriptions),
    )

    async with session_factory.begin() as session:
        if session.get_bind().dialect.name == "postgresql":
            for table in ("sections", "articles", "chats"):
                await session.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
            await session.execute(text("ANALYZE"))
        recent = await session.scalar(
            select(func.count())
            .select_from(Article)
            .where(Article.ingested_at > now - timedelta(hours=24))
        )
    return Seeded(
        sections=sections,
        stories=stories,
        story_sections=len(story_sections),
        chats=subscribers,
        subscriptions=len(subscriptions),
        stories_last_24h=int(recent or 0),
    )
