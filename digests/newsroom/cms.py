"""The publisher's side: stories and pushes from the CMS (the HTTP API in bot/api.py).

The models here are the API's request bodies: validated once, at the edge, with the names a
CMS developer sees in a 422. The services take a session (the caller owns the transaction)
and use the same push machinery as an editor's /breaking (digests/newsroom/breaking.py): the same
delivery log, limits and exactly-once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.delivery.engine import Photo
from digests.feeds.clean import plain_text, without_controls
from digests.feeds.parse import SUMMARY_MAX
from digests.models import (
    API_SOURCE,
    AUTHOR_MAX,
    IDEMPOTENCY_KEY_MAX,
    IMAGE_CAPTION_MAX,
    KEY_MAX,
    LINK_MAX,
    SECTION_NAME_MAX,
    TITLE_MAX,
    ApiRequest,
    Article,
    BreakingPush,
    PushAction,
    PushOrigin,
    PushStatus,
    Section,
    article_sections,
)
from digests.newsroom.breaking import PushTally, count_audience_of, create_rows, tally
from digests.newsroom.corrections import NOTE_MAX
from digests.stories.naming import section_key
from digests.stories.sections import get_or_create_sections, matching, new_section_count
from digests.ui import messages as msg
from digests.ui.render import visible_text

"""Article.source of stories created through the API."""
SUMMARY_IN_MAX = 20_000
"""A summary longer than this is refused; a shorter one is stored cut to SUMMARY_MAX."""
SECTIONS_PER_ARTICLE = 10
LIST_LIMIT_MAX = 100
IDEMPOTENCY_TTL = timedelta(hours=24)
"""An Idempotency-Key is remembered this long: a retry within it replays the first answer."""


# ---- request bodies ------------------------------------------------------------------------


def _clean(text: str) -> str:
    return without_controls(text).strip()


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError("must not contain spaces or control characters")
    return value


def _not_blank(value: str) -> str:
    cleaned = _clean(value)
    if not cleaned:
        raise ValueError("must not be empty")
    return cleaned


def _section_name(value: str) -> str:
    cleaned = " ".join(_not_blank(value).split())
    if not section_key(cleaned):
        raise ValueError("must contain a letter or digit")
    return cleaned


Url = Annotated[str, StringConstraints(max_length=LINK_MAX), AfterValidator(_http_url)]
Text = Annotated[str, AfterValidator(_clean)]
Key = Annotated[
    str, StringConstraints(min_length=1, max_length=KEY_MAX), AfterValidator(_not_blank)
]
SectionName = Annotated[
    str, StringConstraints(max_length=SECTION_NAME_MAX), AfterValidator(_section_name)
]


class ArticleIn(BaseModel):
    """A story from the CMS: created, or updated when its guid (else its URL) is known."""

    model_config = ConfigDict(extra="forbid")

    guid: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=KEY_MAX), AfterValidator(_not_blank)
        ]
        | None
    ) = Field(default=None, description="The CMS's id for the story; its URL when absent.")
    url: Url | None = Field(default=None, description="The story's public URL.")
    title: Annotated[
        str, StringConstraints(min_length=1, max_length=TITLE_MAX), AfterValidator(_not_blank)
    ]
    summary: Annotated[Text, StringConstraints(max_length=SUMMARY_IN_MAX)] = Field(
        default="", description=f"Plain text; stored cut to {SUMMARY_MAX} characters."
    )
    sections: list[SectionName] = Field(
        default_factory=list,
        max_length=SECTIONS_PER_ARTICLE,
        description="Section names or slugs; new ones are created. Empty: the default section.",
    )
    published_at: AwareDatetime | None = Field(
        default=None, description="With a time zone; a future time counts as now."
    )
    image_url: Url | None = Field(default=None, description="The lead photo (http(s)).")
    image_caption: Annotated[Text, StringConstraints(max_length=IMAGE_CAPTION_MAX)] | None = Field(
        default=None, description="Caption or credit, e.g. 'Photo: Shutterstock'."
    )
    author: Annotated[Text, StringConstraints(max_length=AUTHOR_MAX)] | None = None

    @model_validator(mode="after")
    def _guid_or_url(self) -> ArticleIn:
        if self.guid is None and self.url is None:
            raise ValueError("give a guid or a url: one of them identifies the story")
        return self

    @property
    def key(self) -> str:
        key = self.guid or self.url
        assert key is not None
        return key


class PushIn(BaseModel):
    """Push one stored story to its sections' readers who have alerts on."""

    model_config = ConfigDict(extra="forbid")

    article_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    guid: Key | None = None
    url: Url | None = None
    dry_run: bool = Field(
        default=False, description="Only answer the audience and the preview; send nothing."
    )

    @model_validator(mode="after")
    def _one_reference(self) -> PushIn:
        given = [self.article_id is not None, self.guid is not None, self.url is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of article_id, guid or url")
        return self


class CorrectIn(BaseModel):
    """Edit every message already sent for the push to the story as stored now (update it
    first with POST /articles), with a correction note under it."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[
        str, StringConstraints(min_length=1, max_length=NOTE_MAX), AfterValidator(_not_blank)
    ] = Field(description='What changed; readers see "✏️ Corrected: <note>".')


class WithdrawIn(BaseModel):
    """Delete every message sent for the push that Telegram still lets the bot delete."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[Text, StringConstraints(max_length=NOTE_MAX)] | None = Field(
        default=None, description="Why, for the record (readers see nothing)."
    )


# ---- answers -------------------------------------------------------------------------------


class ArticleOut(BaseModel):
    id: int
    guid: str
    url: str | None
    title: str
    summary: str
    sections: list[str]
    published_at: datetime
    updated_at: datetime
    image_url: str | None
    image_caption: str | None
    author: str | None
    source: str | None
    push_id: int | None = Field(
        description="Its breaking push, if it was pushed: after an update, "
        "POST /pushes/{push_id}/correct edits the messages readers got."
    )

    @classmethod
    def of(cls, article: Article, push_id: int | None) -> ArticleOut:
        return cls(
            id=article.id,
            guid=article.key,
            url=article.link,
            title=article.title,
            summary=article.summary,
            sections=[section.slug for section in article.sections],
            published_at=article.published_at,
            updated_at=article.updated_at,
            image_url=article.image_url,
            image_caption=article.image_caption,
            author=article.author,
            source=article.source,
            push_id=push_id,
        )


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


async def article_answers(session: AsyncSession, articles: Sequence[Article]) -> list[ArticleOut]:
    pushed = await pushes_of(session, [article.id for article in articles])
    return [ArticleOut.of(article, pushed.get(article.id)) for article in articles]


class ArticleList(BaseModel):
    articles: list[ArticleOut]


class Counts(BaseModel):
    sent: int
    blocked: int
    failed: int
    pending: int
    uncertain: int

    @classmethod
    def of(cls, tallied: PushTally) -> Counts:
        return cls(
            sent=tallied.sent,
            blocked=tallied.blocked,
            failed=tallied.failed,
            pending=tallied.pending,
            uncertain=tallied.uncertain,
        )


class ActionOut(BaseModel):
    id: int
    kind: Literal["correct", "withdraw"]
    note: str | None
    done: bool
    edited: int = Field(description="Messages edited (a correction) or deleted (a withdrawal).")
    failed: int
    too_old: int = Field(description="Messages Telegram no longer lets the bot delete (48 h).")
    created_at: datetime

    @classmethod
    def of(cls, action: PushAction) -> ActionOut:
        return cls(
            id=action.id,
            kind=action.kind.value,
            note=action.note,
            done=action.done,
            edited=action.edited,
            failed=action.failed,
            too_old=action.too_old,
            created_at=action.created_at,
        )


class PushOut(BaseModel):
    id: int
    article_id: int
    title: str
    status: Literal["draft", "sending", "done", "cancelled"]
    origin: Literal["telegram", "api"]
    audience: int = Field(description="Chats the push is for (one delivery each).")
    counts: Counts
    created_at: datetime
    withdrawn_at: datetime | None
    actions: list[ActionOut]


class DryRunOut(BaseModel):
    dry_run: Literal[True] = True
    article_id: int
    audience: int = Field(description="Chats that would get the push now.")
    preview: str = Field(description="The message readers would see, as plain text.")
    preview_html: str = Field(description="The same message as Telegram HTML.")
    image_url: str | None = Field(
        description="The photo it goes with (the preview is then its caption); if Telegram "
        "refuses the image, readers get the story as text."
    )


# ---- services ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Saved:
    article: Article
    created: bool


class TooManySections(Exception):
    """Storing the story would create sections beyond MAX_SECTIONS."""


async def save_article(
    session: AsyncSession,
    data: ArticleIn,
    *,
    now: datetime,
    default_section: str,
    max_sections: int,
) -> Saved:
    """Create the story, or update the one with the same guid (else URL); the caller owns
    the transaction. The CMS is the story's authority, whichever way it first came in."""
    names = data.sections or [default_section]
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


async def list_articles(session: AsyncSession, *, section: str | None, limit: int) -> list[Article]:
    """The newest stories, of one section (by slug or name) or of all."""
    query = select(Article).order_by(Article.published_at.desc(), Article.id.desc()).limit(limit)
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


@dataclass(frozen=True)
class Preview:
    text: str  # plain text, as readers see it
    html: str  # Telegram HTML
    image_url: str | None  # the photo it goes with (the text is then its caption)


def preview(article: Article) -> Preview:
    """The breaking message readers would get."""
    message = msg.breaking_message(article)
    if isinstance(message, Photo):
        return Preview(visible_text(message.caption), message.caption, message.url)
    return Preview(visible_text(message), message, None)


@dataclass(frozen=True)
class Started:
    push: BreakingPush
    audience: int


class AlreadyPushed(Exception):
    def __init__(self, push_id: int) -> None:
        super().__init__(f"this story was pushed already (push {push_id})")
        self.push_id = push_id


async def start_push(session: AsyncSession, article: Article, *, now: datetime) -> Started:
    """Confirm a push of the story to its sections' readers with alerts on, and write its
    delivery rows (sending starts once the caller commits). A story is pushed once: a second
    request gets AlreadyPushed with the first push's id."""
    earlier = await session.scalar(
        select(BreakingPush.id)
        .where(
            BreakingPush.article_id == article.id,
            BreakingPush.status.in_([PushStatus.SENDING, PushStatus.DONE]),
        )
        .order_by(BreakingPush.id)
        .limit(1)
    )
    if earlier is not None:
        raise AlreadyPushed(earlier)
    article.is_breaking = True
    push = BreakingPush(
        article_id=article.id,
        section_id=None,
        status=PushStatus.SENDING,
        created_by=None,
        admin_chat_id=None,
        origin=PushOrigin.API,
        to_article_sections=True,
        created_at=now,
        updated_at=now,
    )
    session.add(push)
    await session.flush()
    await create_rows(session, push, now=now)
    audience = await tally(session, article.id)
    return Started(push, audience.total)


async def audience_of(session: AsyncSession, article: Article) -> int:
    """Chats a push of this story would reach now."""
    return await count_audience_of(session, article_sections=[s.id for s in article.sections])


async def push_report(session: AsyncSession, push_id: int) -> PushOut | None:
    push = await session.get(BreakingPush, push_id)
    if push is None:
        return None
    tallied = await tally(session, push.article_id)
    actions = await session.scalars(
        select(PushAction).where(PushAction.push_id == push_id).order_by(PushAction.id)
    )
    return PushOut(
        id=push.id,
        article_id=push.article_id,
        title=push.article.title,
        status=push.status.value,
        origin=push.origin.value,
        audience=tallied.total,
        counts=Counts.of(tallied),
        created_at=push.created_at,
        withdrawn_at=push.withdrawn_at,
        actions=[ActionOut.of(action) for action in actions],
    )


# ---- idempotency ---------------------------------------------------------------------------


def owner_of(token: str) -> str:
    """Who an Idempotency-Key belongs to: a digest of the caller's token (never the token)."""
    return hashlib.sha256(token.encode()).hexdigest()


def fingerprint(method: str, path: str, body: BaseModel) -> str:
    """The request a key was first used for: the same body in another key order matches."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str


class KeyReused(Exception):
    """The key was used for another request (different path or body)."""


class KeyInFlight(Exception):
    """The first request with this key has not finished yet."""


IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)]


async def claim_key(
    session: AsyncSession,
    *,
    owner: str,
    key: str,
    method: str,
    path: str,
    print_: str,
    now: datetime,
) -> ApiRequest | Replay:
    """Take the key for this request, or the first answer given under it.

    Insert first, in the caller's transaction, then act in the same transaction: the unique
    (owner, key) makes a concurrent retry wait for the first (PostgreSQL) or queue behind
    it (SQLite's one writer), and see its committed answer. Raises KeyReused or KeyInFlight.
    """
    await session.execute(delete(ApiRequest).where(ApiRequest.created_at < now - IDEMPOTENCY_TTL))
    found = await session.scalar(
        select(ApiRequest).where(ApiRequest.owner == owner, ApiRequest.key == key)
    )
    if found is not None:
        return _answer(found, print_)
    row = ApiRequest(
        owner=owner,
        key=key,
        method=method,
        path=path[:LINK_MAX],
        fingerprint=print_,
        status_code=None,
        body=None,
        created_at=now,
    )
    session.add(row)
    await session.flush()  # IntegrityError here: another request took the key meanwhile
    return row


async def replay_of(session: AsyncSession, *, owner: str, key: str, print_: str) -> Replay:
    """After losing the race for a key: the winner's answer."""
    found = await session.scalar(
        select(ApiRequest).where(ApiRequest.owner == owner, ApiRequest.key == key)
    )
    if found is None:
        raise KeyInFlight
    return _answer(found, print_)


def _answer(found: ApiRequest, print_: str) -> Replay:
    if found.fingerprint != print_:
        raise KeyReused
    if found.status_code is None or found.body is None:
        raise KeyInFlight
    return Replay(found.status_code, found.body)


def remember_answer(row: ApiRequest, status_code: int, body: str) -> None:
    row.status_code = status_code
    row.body = body
