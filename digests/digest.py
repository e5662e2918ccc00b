"""A chat's digest: which stories it gets for a window (messages.digest renders them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from digests import i18n, messages
from digests.models import (
    Article,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Section,
    Subscription,
    article_sections,
)

# A story published this long before the window opens still counts if it reached us late.
LATE_ARRIVAL = timedelta(hours=24)
# A breaking push in these states may have reached the chat: don't repeat the story.
_PUSHED = (DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN, DeliveryStatus.SENDING)


@dataclass(frozen=True)
class DigestStory:
    article_id: int
    title: str
    link: str | None
    published_at: datetime
    date_known: bool = True


@dataclass(frozen=True)
class DigestSection:
    slug: str
    name: str
    stories: list[DigestStory]
    more: int


@dataclass(frozen=True)
class _WindowStory:
    article_id: int
    title: str
    link: str | None
    published_at: datetime
    date_known: bool
    section_ids: tuple[int, ...]  # in (name, id) order: a story is listed under the first


@dataclass(frozen=True)
class DigestRequest:
    chat_id: int  # Chat.id (db id)
    window_start: datetime
    window_end: datetime
    tz: str
    language: str = "en"  # the chat's (digests/i18n.py)


@dataclass(frozen=True)
class _Plan:
    """What one chat's digest is made of: its window's stories, its sections, its pushes."""

    request: DigestRequest
    window: dict[int, list[_WindowStory]]
    mine: list[int]  # followed section ids, by (name, id)
    pushed: set[int]  # the window's stories already pushed to the chat as breaking news


class DigestBuilder:
    """Builds chats' digests, many at once, from one read of each window's stories.

    A story counts for a chat's window (start, end] if it was ingested in the window and
    published no more than a day before it opened, is in a section the chat follows, and was
    not already pushed to the chat as breaking news. It is listed once, under the first of
    those sections by name. Sections come by name, stories newest first, at most
    `per_section` each (`more` counts the rest).

    A window's stories are read once, and chats with the same sections, window, time zone and
    breaking pushes share one rendering. Create one per round (or per command); it caches what
    it reads.
    """

    def __init__(self, *, per_section: int) -> None:
        if per_section < 1:
            raise ValueError(f"per_section must be at least 1, got {per_section}")
        self.per_section = per_section
        self._sections: dict[int, tuple[str, str]] = {}  # id -> (name, slug)
        self._windows: dict[tuple[datetime, datetime], dict[int, list[_WindowStory]]] = {}
        self._rendered: dict[tuple[object, ...], list[str]] = {}

    async def build(
        self, session: AsyncSession, requests: list[DigestRequest]
    ) -> dict[int, list[str]]:
        """Rendered messages per chat id ([] when a chat has nothing new)."""
        result: dict[int, list[str]] = {}
        for plan in await self._plan(session, requests):
            request = plan.request
            key = (request.window_start, request.window_end, tuple(plan.mine), request.tz,
                   frozenset(plan.pushed), request.language)  # fmt: skip
            rendered = self._rendered.get(key)
            if rendered is None:
                sections = self._compose(plan.window, plan.mine, plan.pushed)
                with i18n.use(request.language):
                    rendered = messages.digest(
                        sections, tz=request.tz, window_end=request.window_end
                    )
                self._rendered[key] = rendered
            result[request.chat_id] = rendered
        return result

    async def collect(
        self, session: AsyncSession, requests: list[DigestRequest]
    ) -> dict[int, list[DigestSection]]:
        """The sections and stories `build` renders, per chat id ([] when nothing is new)."""
        return {
            plan.request.chat_id: self._compose(plan.window, plan.mine, plan.pushed)
            for plan in await self._plan(session, requests)
        }

    async def _plan(self, session: AsyncSession, requests: list[DigestRequest]) -> list[_Plan]:
        if not requests:
            return []
        chat_ids = [r.chat_id for r in requests]
        followed: dict[int, set[int]] = {}
        for chat_id, section_id in await session.execute(
            select(Subscription.chat_id, Subscription.section_id).where(
                Subscription.chat_id.in_(chat_ids)
            )
        ):
            followed.setdefault(chat_id, set()).add(section_id)
        pushed: dict[int, set[int]] = {}
        for chat_id, article_id in await session.execute(
            select(Delivery.chat_id, Delivery.article_id).where(
                Delivery.chat_id.in_(chat_ids),
                Delivery.kind == DeliveryKind.BREAKING,
                Delivery.status.in_(_PUSHED),
                Delivery.article_id.is_not(None),
            )
        ):
            if article_id is not None:
                pushed.setdefault(chat_id, set()).add(article_id)
        if not self._sections or any(
            s not in self._sections for ids in followed.values() for s in ids
        ):
            self._sections = {
                sid: (name, slug)
                for sid, name, slug in await session.execute(
                    select(Section.id, Section.name, Section.slug)
                )
            }
        plans: list[_Plan] = []
        for request in requests:
            window = await self._window(session, request.window_start, request.window_end)
            mine = sorted(
                (s for s in followed.get(request.chat_id, ()) if s in self._sections),
                key=lambda s: (self._sections[s][0], s),
            )
            in_window = {
                story.article_id for s in mine for story in window.get(s, ())
            } & pushed.get(request.chat_id, set())
            plans.append(_Plan(request, window, mine, in_window))
        return plans

    async def _window(
        self, session: AsyncSession, start: datetime, end: datetime
    ) -> dict[int, list[_WindowStory]]:
        cached = self._windows.get((start, end))
        if cached is not None:
            return cached
        rows = await session.execute(
            select(
                Article.id,
                Article.title,
                Article.link,
                Article.published_at,
                Article.date_known,
                article_sections.c.section_id,
                Section.name,
            )
            .join(article_sections, article_sections.c.article_id == Article.id)
            .join(Section, Section.id == article_sections.c.section_id)
            .where(
                Article.ingested_at > start,
                Article.ingested_at <= end,
                Article.published_at > start - LATE_ARRIVAL,
            )
        )
        stories: dict[int, tuple[int, str, str | None, datetime, bool]] = {}
        homes: dict[int, list[tuple[str, int]]] = {}
        for article_id, title, url, published_at, known, section_id, name in rows:
            stories[article_id] = (article_id, title, url, published_at, known)
            homes.setdefault(article_id, []).append((name, section_id))
        by_section: dict[int, list[_WindowStory]] = {}
        for article_id, (aid, title, url, published_at, known) in stories.items():
            order = tuple(sid for _, sid in sorted(homes[article_id]))
            story = _WindowStory(aid, title, url, published_at, known, order)
            for section_id in order:
                by_section.setdefault(section_id, []).append(story)
        for listed in by_section.values():
            listed.sort(key=lambda s: (s.published_at, s.article_id), reverse=True)
        self._windows[(start, end)] = by_section
        return by_section

    def _compose(
        self, window: dict[int, list[_WindowStory]], mine: list[int], pushed: set[int]
    ) -> list[DigestSection]:
        followed = set(mine)
        sections: list[DigestSection] = []
        for section_id in mine:
            shown: list[DigestStory] = []
            total = 0
            for story in window.get(section_id, ()):
                if story.article_id in pushed:
                    continue
                if len(story.section_ids) > 1:
                    first = next(s for s in story.section_ids if s in followed)
                    if first != section_id:
                        continue
                total += 1
                if len(shown) < self.per_section:
                    shown.append(
                        DigestStory(
                            story.article_id,
                            story.title,
                            story.link,
                            story.published_at,
                            story.date_known,
                        )
                    )
            if shown:
                name, slug = self._sections[section_id]
                sections.append(DigestSection(slug, name, shown, more=total - len(shown)))
        return sections
