"""The publisher's side: stories and pushes from the CMS (the HTTP API in bot/web/).

The services take plain values (a `Story`, ids) validated at the edge (bot/web/schemas.py) and
a session (the caller owns the transaction), and use the same push machinery as an editor's
/breaking (digests/newsroom/push.py): the same delivery log, limits and exactly-once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from digests.delivery.ports import Photo
from digests.feeds.clean import plain_text, without_controls
from digests.feeds.parse import SUMMARY_MAX
from digests.models import (
    API_SOURCE,
    Article,
    BreakingPush,
    Delivery,
    DeliveryStatus,
    PushAction,
    PushActionKind,
    PushOrigin,
    PushStatus,
    Section,
    article_sections,
)
from digests.newsroom import corrections
from digests.newsroom.breaking import PushTally, count_audience_of, finish, tally
from digests.newsroom.render import breaking_message
from digests.stories.sections import get_or_create_sections, matching, new_section_count
from digests.ui.render import visible_text


@dataclass(frozen=True)
class Story:
    """A story from the CMS, validated at the edge (bot/web/schemas.py `ArticleIn`): created,
    or updated when its key (the CMS's guid, else its URL) is known."""

    key: str
    url: str | None
    title: str
    summary: str
    sections: tuple[str, ...]
    published_at: datetime | None
    image_url: str | None
    image_caption: str | None
    author: str | None


@dataclass(frozen=True)
class Saved:
    article: Article
    created: bool


class TooManySections(Exception):
    """Storing the story would create sections beyond MAX_SECTIONS."""


async def save_article(
    session: AsyncSession,
    data: Story,
    *,
    now: datetime,
    default_section: str,
    max_sections: int,
) -> Saved:
    """Create the story, or update the one with the same guid (else URL); the caller owns
    the transaction. The CMS is the story's authority, whichever way it first came in: an
    unpublished story sent again is published again."""
    names = list(data.sections) or [default_section]
    await _check_section_cap(session, names, max_sections=max_sections)
    sections = await get_or_create_sections(session, names, now=now)
    wanted = list({section.id: section for section in sections.values()}.values())
    article = await _find(session, key=data.key, url=data.url)
    published = min(data.published_at or now, now).replace(microsecond=0)
    summary = plain_text(data.summary, limit=SUMMARY_MAX) if data.summary else ""
    if article is None:
        article = Article(
            key=data.key,
            link=data.url,
            title=data.title,
            summary=summary,
            published_at=published,
            ingested_at=now,
            updated_at=now,
            source=API_SOURCE,
            is_breaking=False,
            date_known=True,
            image_url=data.image_url,
            image_caption=data.image_caption or None,
            author=data.author or None,
            sections=wanted,
        )
        session.add(article)
        await session.flush()
        return Saved(article, created=True)
    changes: dict[str, Any] = {
        "title": data.title,
        "summary": summary,
        "image_url": data.image_url,
        "image_caption": data.image_caption or None,
        "author": data.author or None,
    }
    if data.url is not None:
        changes["link"] = data.url
    if data.published_at is not None:
        changes["published_at"] = published
    changed = False
    if article.unpublished_at is not None:
        article.unpublished_at = None
        changed = True
    for name, value in changes.items():
        if getattr(article, name) != value:
            setattr(article, name, value)
            changed = True
    if {s.id for s in article.sections} != {s.id for s in wanted}:
        article.sections = wanted
        changed = True
    if changed:
        article.updated_at = now
    await session.flush()
    return Saved(article, created=False)


async def _find(session: AsyncSession, *, key: str, url: str | None) -> Article | None:
    article = await session.scalar(select(Article).where(Article.key == key))
    if article is None and url is not None:
        article = await session.scalar(
            select(Article).where(Article.link == url).order_by(Article.id).limit(1)
        )
    return article


async def _check_section_cap(
    session: AsyncSession, names: Sequence[str], *, max_sections: int
) -> None:
    new = await new_section_count(session, names)
    if new and int(await session.scalar(select(func.count(Section.id))) or 0) + new > max_sections:
        raise TooManySections(
            f"this would make more than {max_sections} sections (MAX_SECTIONS); "
            "use an existing section"
        )


async def find_article(
    session: AsyncSession, *, article_id: int | None, guid: str | None, url: str | None
) -> Article | None:
    if article_id is not None:
        return await session.get(Article, article_id)
    if guid is not None:
        return await session.scalar(select(Article).where(Article.key == guid))
    if url is not None:
        return await _find(session, key=url, url=url)
    return None


class UnknownSection(Exception):
    pass


# ---- unpublishing ---------------------------------------------------------------------------

UNPUBLISHED_NOTE = "unpublished by the publisher"
"""The withdrawal's note (for the record: readers see nothing)."""
_STOPPED = "the story was unpublished"
"""The error recorded on a push's rows that were still waiting when it was unpublished."""


@dataclass(frozen=True)
class Unpublished:
    """A story taken back: hidden from readers, its push (if any) stopped and withdrawn.
    `withdrawal` is the withdrawal this call requested (run it once committed), or None."""

    article: Article
    withdrawal: PushAction | None


class StillSending(Exception):
    """Some of the story's push messages are on their way to Telegram at this moment: until
    they are settled, a withdrawal could miss them. Retry in a few seconds."""

    def __init__(self, push_id: int) -> None:
        super().__init__(
            f"messages of this story's push {push_id} are being sent right now; "
            "retry in a few seconds"
        )
        self.push_id = push_id


async def unpublish(session: AsyncSession, article: Article, *, now: datetime) -> Unpublished:
    """Take the story back, as a CMS unpublishes or trashes a post: readers find it nowhere
    any more (/latest, /search, inline mode, digests and alerts not yet sent), it leaves its
    sections, a push draft of it is cancelled, a push still going out sends nothing more,
    and whatever was sent is withdrawn as an editor's withdrawal is. Doing it again changes
    nothing. The caller owns the transaction and runs the withdrawal once committed; raises
    StillSending (change nothing then) while push messages are in flight."""
    pushes = list(
        await session.scalars(
            select(BreakingPush)
            .where(BreakingPush.article_id == article.id)
            .order_by(BreakingPush.id)
            .execution_options(populate_existing=True)
        )
    )
    for push in pushes:
        if push.status is PushStatus.SENDING:
            await _stop(session, push, now=now)
    if article.unpublished_at is None:
        article.unpublished_at = now
        article.updated_at = now
        article.sections = []
    for push in pushes:
        if push.status is PushStatus.DRAFT:
            push.status = PushStatus.CANCELLED
            push.updated_at = now
    await session.flush()
    withdrawal: PushAction | None = None
    for push in pushes:
        if push.status is PushStatus.DONE and push.withdrawn_at is None:
            made = await corrections.request_action(
                session,
                push.id,
                PushActionKind.WITHDRAW,
                note=UNPUBLISHED_NOTE,
                origin=PushOrigin.API,
                created_by=None,
                admin_chat_id=None,
                now=now,
            )
            if isinstance(made, PushAction):
                withdrawal = made
    return Unpublished(article, withdrawal)


async def _stop(session: AsyncSession, push: BreakingPush, *, now: datetime) -> None:
    """End a push still going out: its waiting messages are never sent, and it is done once
    none is in flight (else StillSending)."""
    rows = corrections.of_article(push.article_id)
    # A worker moves a row to SENDING only from PENDING (a compare-and-set), so a row
    # stopped here is never sent; one that a worker took first is counted in flight below
    # (this statement waits for its lock, and the count reads what it committed).
    await session.execute(
        update(Delivery)
        .where(*rows, Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.FAILED, error=_STOPPED, claimed_by=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    in_flight = await session.scalar(
        select(func.count()).where(*rows, Delivery.status == DeliveryStatus.SENDING)
    )
    if in_flight:
        raise StillSending(push.id)
    await finish(session, push.id, now=now)
    await session.refresh(push)


async def withdrawal_of(session: AsyncSession, article: Article) -> PushAction | None:
    """The latest withdrawal of the story's push, if it was withdrawn."""
    found = await session.scalars(
        select(PushAction)
        .join(BreakingPush, BreakingPush.id == PushAction.push_id)
        .where(
            BreakingPush.article_id == article.id,
            PushAction.kind == PushActionKind.WITHDRAW,
        )
        .order_by(PushAction.id.desc())
        .limit(1)
    )
    return found.first()


async def list_articles(session: AsyncSession, *, section: str | None, limit: int) -> list[Article]:
    """The newest published stories, of one section (by slug or name) or of all."""
    query = (
        select(Article)
        .where(Article.unpublished_at.is_(None))
        .order_by(Article.published_at.desc(), Article.id.desc())
        .limit(limit)
    )
    section = without_controls(section or "").strip()
    if section:
        found = matching(await session.scalars(select(Section)), section)
        if found is None:
            raise UnknownSection(section)
        query = query.where(
            Article.id.in_(
                select(article_sections.c.article_id).where(
                    article_sections.c.section_id == found.id
                )
            )
        )
    return list(await session.scalars(query))


async def pushes_of(session: AsyncSession, article_ids: Sequence[int]) -> dict[int, int]:
    """The push (sending or done) of each of these stories that has one."""
    if not article_ids:
        return {}
    rows = await session.execute(
        select(BreakingPush.article_id, func.min(BreakingPush.id))
        .where(
            BreakingPush.article_id.in_(article_ids),
            BreakingPush.status.in_([PushStatus.SENDING, PushStatus.DONE]),
        )
        .group_by(BreakingPush.article_id)
    )
    return {article_id: push_id for article_id, push_id in rows}


@dataclass(frozen=True)
class Preview:
    text: str  # plain text, as readers see it
    html: str  # Telegram HTML
    image_url: str | None  # the photo it goes with (the text is then its caption)


def preview(article: Article) -> Preview:
    """The breaking message readers would get."""
    message = breaking_message(article)
    if isinstance(message, Photo):
        return Preview(visible_text(message.caption), message.caption, message.url)
    return Preview(visible_text(message), message, None)


async def audience_of(session: AsyncSession, article: Article) -> int:
    """Chats a push of this story would reach now."""
    return await count_audience_of(session, article_sections=[s.id for s in article.sections])


@dataclass(frozen=True)
class PushReport:
    """A push with its outcome counts and its corrections and withdrawals, oldest first."""

    push: BreakingPush
    title: str
    tally: PushTally
    actions: list[PushAction]


async def push_report(session: AsyncSession, push_id: int) -> PushReport | None:
    push = await session.get(BreakingPush, push_id)
    if push is None:
        return None
    tallied = await tally(session, push.article_id)
    actions = await session.scalars(
        select(PushAction).where(PushAction.push_id == push_id).order_by(PushAction.id)
    )
    return PushReport(push, push.article.title, tallied, list(actions))
