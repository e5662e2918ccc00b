"""The newsroom API's request bodies and answers (pydantic), validated once at the edge, with
the names a CMS developer sees in a 422 and in the OpenAPI document. The services they feed
(digests/newsroom/cms.py) take plain values: `ArticleIn.story()`, a push's `PushReport`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import HTTPException
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from digests.feeds.clean import without_controls
from digests.feeds.parse import SUMMARY_MAX
from digests.models import (
    AUTHOR_MAX,
    IDEMPOTENCY_KEY_MAX,
    IMAGE_CAPTION_MAX,
    KEY_MAX,
    LINK_MAX,
    SECTION_NAME_MAX,
    TITLE_MAX,
    Article,
    PushAction,
)
from digests.newsroom.breaking import PushTally
from digests.newsroom.cms import PushReport, Story
from digests.newsroom.corrections import NOTE_MAX
from digests.stories.naming import section_key

SUMMARY_IN_MAX = 20_000
"""A summary longer than this is refused; a shorter one is stored cut to SUMMARY_MAX."""
SECTIONS_PER_ARTICLE = 10
LIST_LIMIT_MAX = 100
INT32 = 2**31 - 1

IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=IDEMPOTENCY_KEY_MAX)]


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

    def story(self) -> Story:
        """The story as the newsroom service takes it."""
        return Story(
            key=self.key,
            url=self.url,
            title=self.title,
            summary=self.summary,
            sections=tuple(self.sections),
            published_at=self.published_at,
            image_url=self.image_url,
            image_caption=self.image_caption,
            author=self.author,
        )


class PushIn(BaseModel):
    """Push one stored story to its sections' readers who have alerts on."""

    model_config = ConfigDict(extra="forbid")

    article_id: int | None = Field(default=None, ge=1, le=INT32)
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


class UnpublishIn(BaseModel):
    """Take a story back (the CMS unpublished or trashed it): readers find it nowhere any
    more, and whatever was pushed of it is withdrawn."""

    model_config = ConfigDict(extra="forbid")

    article_id: int | None = Field(default=None, ge=1, le=INT32)
    guid: Key | None = Field(default=None, description="The guid it was posted with.")
    url: Url | None = Field(default=None, description="Its URL, when it was posted without guid.")

    @model_validator(mode="after")
    def _one_reference(self) -> UnpublishIn:
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
    unpublished_at: datetime | None = Field(
        default=None,
        description="When it was unpublished (POST /articles/unpublish); null while "
        "published. Posting it again publishes it again.",
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
            unpublished_at=article.unpublished_at,
        )


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


class UnpublishedOut(BaseModel):
    article: ArticleOut
    withdrawal: ActionOut | None = Field(
        description="The withdrawal of its push (its messages deleted where Telegram still "
        "allows, 48 hours), if it was pushed; follow it with GET /pushes/{push_id}."
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

    @classmethod
    def of(cls, report: PushReport) -> PushOut:
        push = report.push
        return cls(
            id=push.id,
            article_id=push.article_id,
            title=report.title,
            status=push.status.value,
            origin=push.origin.value,
            audience=report.tally.total,
            counts=Counts.of(report.tally),
            created_at=push.created_at,
            withdrawn_at=push.withdrawn_at,
            actions=[ActionOut.of(action) for action in report.actions],
        )


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


# ---- problems ------------------------------------------------------------------------------


class Problem(BaseModel):
    """What went wrong, in one sentence."""

    detail: str


class PushConflict(Problem):
    push_id: int | None = Field(
        default=None, description="The push concerned (none when the story is unpublished)."
    )


def problems(*codes: int, **extra: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """The documented error answers of a route (and `s<code>=` answers of other shapes)."""
    described = {
        400: "The body could not be read (not UTF-8 JSON).",
        401: "No valid bearer token (Authorization: Bearer <one of API_TOKENS>).",
        404: "No such story or push.",
        409: "Already done, or a request with the same Idempotency-Key is still running.",
        503: "The database is unavailable; retry later.",
    }
    answers: dict[int | str, dict[str, Any]] = {
        code: {"model": Problem, "description": described[code]} for code in codes
    }
    answers.update({int(code.removeprefix("s")): answer for code, answer in extra.items()})
    return answers


def invalid(loc: tuple[str, ...], message: str) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors."""
    return HTTPException(422, [{"loc": list(loc), "msg": message, "type": "value_error"}])
