"""A chat's digest: which stories it gets for a window, as data (digests/digest/rounds.py
renders them)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.models import (
    Article,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Section,
    Subscription,
    article_sections,
)
from digests.readers.keywords import ChatRules, StoryIndex, rules_by_chat

# A story published this long before the window opens still counts if it reached us late.
LATE_ARRIVAL = timedelta(hours=24)
# A breaking push (or a keyword alert) in these states may have reached the chat: don't
# repeat the story.
_PUSHED = (DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN, DeliveryStatus.SENDING)
_PUSH_KINDS = (DeliveryKind.BREAKING, DeliveryKind.ALERT)


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
    # a followed keyword's section: the phrase ("+N more" then points to /search it)
    keyword: str | None = None


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


@dataclass(frozen=True, eq=False)
class ChatDigest:
    """A chat's digest as data: its sections and stories ([] when nothing is new), and what
    renders them. Chats whose digest is the same are given the one same object (compared
    and hashed by identity): render it once."""

    sections: list[DigestSection]
    tz: str
    window_end: datetime
    language: str


@dataclass(frozen=True)
class _Plan:
    """What one chat's digest is made of: its window's stories, its sections, its pushes."""

    request: DigestRequest
    window: dict[int, list[_WindowStory]]
    mine: list[int]  # followed section ids, by (name, id)
    pushed: set[int]  # the window's stories already pushed to the chat as breaking news
    # followed keywords that match stories of the window: (phrase shown, their story ids)
    keywords: tuple[tuple[str, frozenset[int]], ...] = ()
    muted: frozenset[int] = frozenset()  # the window's stories a mute of the chat keeps out


class DigestBuilder:
    """Builds chats' digests, many at once, from one read of each window's stories.

    A story counts for a chat's window (start, end] if it was ingested in the window and
    published no more than a day before it opened, is in a section the chat follows, and was
    not already pushed to the chat as breaking news. It is listed once, under the first of
    those sections by name. Sections come by name, stories newest first, at most
    `per_section` each (`more` counts the rest).

    A chat's keyword rules (digests/readers/keywords.py) change that: the window's stories from any
    section that match a followed phrase come first, each phrase a section of its own headed
    with it (a story under the first phrase it matches, and not again under its section),
    and stories that match a muted phrase are left out of the whole digest.

    A window's stories are read once, and chats with the same sections, window, time zone and
    breaking pushes share one digest (`ChatDigest`); so do chats whose rules pick the same
    stories (the key is the resulting story sets, not the phrases). Create one per round (or per
    command); it caches what it reads.
    """

    def __init__(self, *, per_section: int) -> None:
        if per_section < 1:
            raise ValueError(f"per_section must be at least 1, got {per_section}")
        self.per_section = per_section
        self._sections: dict[int, tuple[str, str]] = {}  # id -> (name, slug)
        self._windows: dict[tuple[datetime, datetime], dict[int, list[_WindowStory]]] = {}
        self._digests: dict[tuple[object, ...], ChatDigest] = {}
        self._indexes: dict[tuple[datetime, datetime], StoryIndex] = {}
        self._stories: dict[tuple[datetime, datetime], dict[int, _WindowStory]] = {}

    async def digests(
        self, session: AsyncSession, requests: list[DigestRequest]
    ) -> dict[int, ChatDigest]:
        """Each chat's digest by chat id, one object for all the chats whose digest is the same
        (its sections composed once)."""
        result: dict[int, ChatDigest] = {}
        for plan in await self._plan(session, requests):
            request = plan.request
            key = (request.window_start, request.window_end, tuple(plan.mine), request.tz,
                   frozenset(plan.pushed), request.language, plan.keywords,
                   plan.muted)  # fmt: skip
            digest = self._digests.get(key)
            if digest is None:
                digest = ChatDigest(
                    self._compose(plan), request.tz, request.window_end, request.language
                )
                self._digests[key] = digest
            result[request.chat_id] = digest
        return result

    async def collect(
        self, session: AsyncSession, requests: list[DigestRequest]
    ) -> dict[int, list[DigestSection]]:
        """The sections and stories of each chat's digest, per chat id ([] when nothing is
        new), composed afresh for each."""
        return {
            plan.request.chat_id: self._compose(plan)
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
        # The status is checked here, not in SQL: given `status IN (...)`, SQLite (no
        # statistics) reads the rows through the status index, i.e. every SENT row ever,
        # digests included, for each batch; by chat and kind it reads only these chats'
        # pushes (the unique index), whatever their status.
        for chat_id, article_id, status in await session.execute(
            select(Delivery.chat_id, Delivery.article_id, Delivery.status).where(
                Delivery.chat_id.in_(chat_ids),
                Delivery.kind.in_(_PUSH_KINDS),
                Delivery.article_id.is_not(None),
            )
        ):
            if article_id is not None and status in _PUSHED:
                pushed.setdefault(chat_id, set()).add(article_id)
        rules = await rules_by_chat(session, chat_ids)
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
            stories = self._stories[(request.window_start, request.window_end)]
            chat_rules = rules.get(request.chat_id)
            if chat_rules is None:  # no rules: today's plan, shared by many chats
                mine_pushed = _in_sections(stories, pushed.get(request.chat_id, ()), set(mine))
                plans.append(_Plan(request, window, mine, mine_pushed))
                continue
            index = await self._index(session, request.window_start, request.window_end)
            plans.append(
                self._with_rules(request, window, mine, stories, pushed, chat_rules, index)
            )
        return plans

    @staticmethod
    def _with_rules(
        request: DigestRequest,
        window: dict[int, list[_WindowStory]],
        mine: list[int],
        stories: dict[int, _WindowStory],
        pushed: dict[int, set[int]],
        rules: ChatRules,
        index: StoryIndex,
    ) -> _Plan:
        """A chat's plan with its keyword rules: each phrase's matches are looked up once per
        window (StoryIndex remembers them); the chat's are unions of those sets."""
        keywords: list[tuple[str, frozenset[int]]] = []
        taken: set[int] = set()
        for phrase, normalized in rules.follows:
            found = index.match(normalized) - taken
            if found:
                keywords.append((phrase, found))
                taken |= found
        followed = set(mine)

        def relevant(ids: Iterable[int]) -> set[int]:  # in the digest but for rules and pushes
            return {i for i in ids if i in taken} | _in_sections(stories, ids, followed)

        muted: set[int] = set()
        for normalized in rules.mutes:
            muted |= index.match(normalized)
        muted = relevant(muted)
        chat_pushed = relevant(pushed.get(request.chat_id, set()))
        gone = muted | chat_pushed
        kept = tuple((phrase, found - gone) for phrase, found in keywords if found - gone)
        return _Plan(request, window, mine, chat_pushed, kept, frozenset(muted))

    async def _index(self, session: AsyncSession, start: datetime, end: datetime) -> StoryIndex:
        """The window's stories of every section, tokenized once (for chats with rules)."""
        cached = self._indexes.get((start, end))
        if cached is not None:
            return cached
        index = StoryIndex(
            await session.execute(
                select(Article.id, Article.title, Article.summary).where(*_in_window(start, end))
            )
        )
        self._indexes[(start, end)] = index
        return index

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
            .where(*_in_window(start, end))
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
        self._stories[(start, end)] = {
            story.article_id: story for listed in by_section.values() for story in listed
        }
        return by_section

    def _compose(self, plan: _Plan) -> list[DigestSection]:
        sections = self._keyword_sections(plan)
        shown = {story.article_id for section in sections for story in section.stories}
        hidden = plan.pushed | plan.muted | {i for _, found in plan.keywords for i in found}
        return sections + self._section_sections(plan.window, plan.mine, hidden | shown)

    def _keyword_sections(self, plan: _Plan) -> list[DigestSection]:
        """A section per followed phrase with matches: its stories newest first."""
        if not plan.keywords:
            return []
        request = plan.request
        stories = self._stories.get((request.window_start, request.window_end), {})
        sections: list[DigestSection] = []
        for phrase, found in plan.keywords:
            listed = sorted(
                (stories[i] for i in found if i in stories),
                key=lambda s: (s.published_at, s.article_id),
                reverse=True,
            )
            if not listed:
                continue
            shown = [_digest_story(story) for story in listed[: self.per_section]]
            sections.append(
                DigestSection(
                    "",
                    phrase,  # its rendering heads it with keyword_heading, translated
                    shown,
                    more=len(listed) - len(shown),
                    keyword=phrase,
                )
            )
        return sections

    def _section_sections(
        self, window: dict[int, list[_WindowStory]], mine: list[int], hidden: set[int]
    ) -> list[DigestSection]:
        followed = set(mine)
        sections: list[DigestSection] = []
        for section_id in mine:
            listed = window.get(section_id, ())
            # a story of several sections is listed under the first of them the chat follows
            here = [
                story
                for story in listed
                if story.article_id not in hidden
                and (
                    len(story.section_ids) == 1
                    or next(s for s in story.section_ids if s in followed) == section_id
                )
            ]
            shown = [_digest_story(story) for story in here[: self.per_section]]
            if shown:
                name, slug = self._sections[section_id]
                sections.append(DigestSection(slug, name, shown, more=len(here) - len(shown)))
        return sections


def _in_sections(
    stories: dict[int, _WindowStory], ids: Iterable[int], sections: set[int]
) -> set[int]:
    """Those of `ids` that are the window's stories in any of `sections`."""
    return {
        i
        for i in ids
        if (story := stories.get(i)) is not None and not sections.isdisjoint(story.section_ids)
    }


def _digest_story(story: _WindowStory) -> DigestStory:
    return DigestStory(
        story.article_id, story.title, story.link, story.published_at, story.date_known
    )


def _in_window(start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    """A story counts for the window (start, end] if it reached us in it, published no more
    than LATE_ARRIVAL before it opened, and is not unpublished (when the digest is built)."""
    return (
        Article.ingested_at > start,
        Article.ingested_at <= end,
        Article.published_at > start - LATE_ARRIVAL,
        Article.unpublished_at.is_(None),
    )
