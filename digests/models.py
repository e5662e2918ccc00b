"""Typed SQLAlchemy models: sections, articles, chats, subscriptions and the delivery log."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from digests.schedule import Rhythm

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# articles.source of the stories the HTTP API stored (a feed's stories hold its address)
API_SOURCE = "api"

# Column sizes that incoming text is cut to (digests/feeds/ingest.py), alike on both databases.
KEY_MAX = 600
LINK_MAX = 2000
TITLE_MAX = 400
SECTION_NAME_MAX = 80
VALIDATOR_MAX = 400  # an ETag or Last-Modified longer than this is not remembered
IMAGE_CAPTION_MAX = 300  # a photo credit or caption, as the publisher wrote it
AUTHOR_MAX = 200
IDEMPOTENCY_KEY_MAX = 255
SEARCH_QUERY_MAX = 200  # the words of a saved /search
KEYWORD_PHRASE_MAX = 60  # a /follow or /mute phrase as the reader typed it
KEYWORD_NORMALIZED_MAX = 240  # its normalized form (NFKC and case folding may lengthen it)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; always returns aware UTC datetimes (SQLite drops tz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


article_sections = Table(
    "article_sections",
    Base.metadata,
    Column("article_id", ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("section_id", ForeignKey("sections.id", ondelete="CASCADE"), primary_key=True),
    # the story's published_at, copied by the database (triggers of migration 0012): a
    # section's stories in order, and their counts, come from the index below alone
    Column("published_at", UTCDateTime(), nullable=True),
    Index("ix_article_sections_section_published", "section_id", "published_at", "article_id"),
)


class Section(Base):
    __tablename__ = "sections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(SECTION_NAME_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"Section({self.slug!r})"


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        # unpublished_at rides along so that counting the published stories newer than one
        # (/latest's "3 / 1,240") still reads the index alone (migration 0015)
        Index("ix_articles_published_at_id", "published_at", "id", "unpublished_at"),
        Index("ix_articles_ingested_at", "ingested_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_MAX), unique=True)
    link: Mapped[str | None] = mapped_column(String(LINK_MAX))
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    summary: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str | None] = mapped_column(String(2000))
    is_breaking: Mapped[bool] = mapped_column(Boolean, default=False)
    # False when the feed gave no date we could read: published_at is then an estimate
    # (placed after the feed's dated stories), and readers see "date unknown".
    date_known: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # the story's lead photo (an http(s) URL Telegram fetches) and its caption or credit
    image_url: Mapped[str | None] = mapped_column(String(LINK_MAX))
    image_caption: Mapped[str | None] = mapped_column(String(IMAGE_CAPTION_MAX))
    author: Mapped[str | None] = mapped_column(String(AUTHOR_MAX))
    # when the publisher unpublished it (the API's POST /articles/unpublish): readers find it
    # nowhere any more, it belongs to no section, and a new POST /articles publishes it again
    unpublished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    sections: Mapped[list[Section]] = relationship(
        secondary=article_sections, lazy="selectin", order_by=Section.id
    )

    def __repr__(self) -> str:
        return f"Article({self.id}, {self.title!r})"


class ChatKind(enum.StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    SUPERGROUP = "supergroup"
    CHANNEL = "channel"


class Chat(Base):
    """A Telegram chat the bot talks to: a reader's private chat or a group."""

    __tablename__ = "chats"
    __table_args__ = (Index("ix_chats_due", "active", "next_digest_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    kind: Mapped[ChatKind] = mapped_column(
        Enum(ChatKind, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])
    )
    title: Mapped[str | None] = mapped_column(String(255))
    timezone: Mapped[str] = mapped_column(String(64))
    digest_time: Mapped[str | None] = mapped_column(String(5))
    # how often the digest comes (digests/schedule.py); existing chats stay daily
    rhythm: Mapped[Rhythm] = mapped_column(
        Enum(Rhythm, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]),
        default=Rhythm.DAILY,
        server_default=Rhythm.DAILY.value,
    )
    # twice a day: the second HH:MM (None: twelve hours after digest_time)
    second_digest_time: Mapped[str | None] = mapped_column(String(5))
    # weekly: the local weekday, Monday=0 .. Sunday=6
    digest_weekday: Mapped[int | None] = mapped_column(Integer)
    # no digest is scheduled before this instant (the "Pause for a week" button)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alerts: Mapped[bool] = mapped_column(Boolean, default=True)
    # what the bot speaks here (digests/i18n.py LANGUAGES); until the reader picks one with
    # /language (language_chosen), a private chat follows the reader's Telegram language
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    language_chosen: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    deactivated_reason: Mapped[str | None] = mapped_column(String(200))
    # a forum supergroup: each section's digest part and pushes go to its topic (ChatTopic)
    is_forum: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # False once Telegram refused to let the bot create a topic here; True again when an
    # administrator gives it the right (a my_chat_member update)
    topic_rights: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="chat", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"Chat({self.telegram_id}, {self.kind})"


class Subscription(Base):
    __tablename__ = "subscriptions"

    chat_id: Mapped[int] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True
    )
    section_id: Mapped[int] = mapped_column(
        ForeignKey("sections.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    chat: Mapped[Chat] = relationship(back_populates="subscriptions")
    section: Mapped[Section] = relationship(lazy="joined")


class ChatTopic(Base):
    """The forum topic (message_thread_id) a forum chat gets a section's messages in."""

    __tablename__ = "chat_topics"

    chat_id: Mapped[int] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE"), primary_key=True
    )
    section_id: Mapped[int] = mapped_column(
        ForeignKey("sections.id", ondelete="CASCADE"), primary_key=True
    )
    # None: the General topic, an administrator's choice (/topic off): no topic is created
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    # Telegram answered TOPIC_CLOSED: the section goes to the General topic until an
    # administrator reopens it and binds it again with /topic
    closed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # True when the bot created the topic, False when an administrator chose it with /topic
    by_bot: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryKind(enum.StrEnum):
    DIGEST = "digest"
    BREAKING = "breaking"
    ALERT = "alert"  # a story matching a reader's /follow with its alert on (ref: article id)


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # nothing sent yet (a worker may hold it under a short claim)
    SENDING = "sending"  # its request left the rate limiter: if the process dies now, unknown
    SENT = "sent"
    EMPTY = "empty"  # digest window had no stories: nothing to send
    BLOCKED = "blocked"  # chat blocked the bot or is gone
    FAILED = "failed"  # gave up after retries or a permanent error
    UNCERTAIN = "uncertain"  # found SENDING after a crash: maybe delivered, never blindly resent


class Delivery(Base):
    """One row per (chat, digest window) or (chat, breaking story): written before the send."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("chat_id", "kind", "ref", name="uq_deliveries_chat_kind_ref"),
        # The rows still to send (PENDING) or in flight (SENDING), in id order: what senders
        # page through and recovery looks for. On PostgreSQL it holds only those rows, so it
        # stays small however long the history, and a row's move to SENT (or any other end)
        # adds nothing to it; SQLite, which cannot match `status = 'pending'` to that
        # predicate, indexes every row. updated_at is left out of it: a claim, which writes
        # updated_at and no indexed column, may then be a heap-only update.
        Index(
            "ix_deliveries_open",
            "status",
            "id",
            postgresql_where=text("status IN ('pending', 'sending')"),
        ),
        Index("ix_deliveries_created_at", "created_at"),
        # digests, most rows, have no article: they are left out (a write of one touches
        # one index fewer)
        Index(
            "ix_deliveries_article_id",
            "article_id",
            postgresql_where=text("article_id IS NOT NULL"),
            sqlite_where=text("article_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    kind: Mapped[DeliveryKind] = mapped_column(
        Enum(
            DeliveryKind,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    # digest: the window end (the scheduled instant, ISO UTC); breaking: the article id
    ref: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    article_id: Mapped[int | None] = mapped_column(ForeignKey("articles.id", ondelete="SET NULL"))
    status: Mapped[DeliveryStatus] = mapped_column(
        Enum(
            DeliveryStatus,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    message_ids: Mapped[str | None] = mapped_column(String(400))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    # PENDING: nobody sends it before this (a flood limit's wait, or a worker's claim)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # PENDING: the worker holding it until not_before; only it may move it to SENDING
    claimed_by: Mapped[str | None] = mapped_column(String(32))
    # how the message went out: "photo" for a photo with a caption, None for text
    media: Mapped[str | None] = mapped_column(String(16))
    # the last correction or withdrawal (push_actions.id) applied to the sent message
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("push_actions.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    chat: Mapped[Chat] = relationship()


class PushStatus(enum.StrEnum):
    DRAFT = "draft"  # previewed, waiting for Send or Cancel
    SENDING = "sending"  # confirmed: delivery rows exist; resumed after a restart
    DONE = "done"
    CANCELLED = "cancelled"


class PushOrigin(enum.StrEnum):
    TELEGRAM = "telegram"  # an editor's /breaking
    API = "api"  # the publisher's HTTP API


class BreakingPush(Base):
    """An editor's breaking story, from preview to the last delivery."""

    __tablename__ = "breaking_pushes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    section_id: Mapped[int | None] = mapped_column(ForeignKey("sections.id", ondelete="SET NULL"))
    status: Mapped[PushStatus] = mapped_column(
        Enum(
            PushStatus, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
        )
    )
    # the editor's Telegram user id and chat; None for a push made through the HTTP API
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    admin_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    preview_message_id: Mapped[int | None] = mapped_column(BigInteger)
    origin: Mapped[PushOrigin] = mapped_column(
        Enum(
            PushOrigin, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
        ),
        default=PushOrigin.TELEGRAM,
        server_default=PushOrigin.TELEGRAM.value,
    )
    # True: the audience is the readers of any of the article's sections (API pushes);
    # False: section_id's readers, or every reader with alerts on when it is None
    to_article_sections: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    article: Mapped[Article] = relationship(lazy="joined")
    section: Mapped[Section | None] = relationship(lazy="joined")


class PushActionKind(enum.StrEnum):
    CORRECT = "correct"  # edit every sent message to the article as it is now, with a note
    WITHDRAW = "withdraw"  # delete every sent message Telegram still lets us delete


class PushAction(Base):
    """A correction or withdrawal of a sent push: one pass over its delivered messages."""

    __tablename__ = "push_actions"
    __table_args__ = (Index("ix_push_actions_push_id", "push_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    push_id: Mapped[int] = mapped_column(ForeignKey("breaking_pushes.id", ondelete="CASCADE"))
    kind: Mapped[PushActionKind] = mapped_column(
        Enum(
            PushActionKind,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    note: Mapped[str | None] = mapped_column(Text)  # the "Corrected: ..." text readers see
    done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    edited: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # or deleted
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    too_old: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    origin: Mapped[PushOrigin] = mapped_column(
        Enum(
            PushOrigin, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e]
        ),
        default=PushOrigin.TELEGRAM,
    )
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    admin_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    report_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    push: Mapped[BreakingPush] = relationship(lazy="joined")


class ApiRequest(Base):
    """An HTTP API request made with an Idempotency-Key, and the answer it got: a retry with
    the same key gets that answer again instead of acting twice."""

    __tablename__ = "api_requests"
    __table_args__ = (
        UniqueConstraint("owner", "key", name="uq_api_requests_owner_key"),
        Index("ix_api_requests_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))  # a digest of the caller's token
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(LINK_MAX))
    fingerprint: Mapped[str] = mapped_column(String(64))  # a digest of the request body
    status_code: Mapped[int | None] = mapped_column(Integer)  # None: the first is still running
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FeedSource(Base):
    """What polling remembers of an http(s) feed: its validators and its failures."""

    __tablename__ = "feed_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(LINK_MAX), unique=True)
    etag: Mapped[str | None] = mapped_column(String(VALIDATOR_MAX))
    last_modified: Mapped[str | None] = mapped_column(String(VALIDATOR_MAX))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StoryCount(Base):
    """How many stories a section has (scope = its id), and how many there are in all
    (scope 0): kept by database triggers (migration 0012) on every insert and delete, so
    /latest shows "3 / 1,240" without counting a section's stories on every page. Only
    published stories count (migration 0015): an unpublished one has no section rows, and
    scope 0 follows articles.unpublished_at."""

    __tablename__ = "story_counts"

    scope: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    stories: Mapped[int] = mapped_column(BigInteger, default=0)


class SavedSearch(Base):
    """A reader's /search and the stories it found, best first: its ◀ Previous / Next ▶
    buttons carry only its id and a position, so paging needs no query in the button, stays
    the same while new stories arrive, and survives restarts."""

    __tablename__ = "searches"
    # AUTOINCREMENT: SQLite would otherwise give a forgotten search's id to the next one,
    # and the old search's buttons would page through someone else's results
    __table_args__ = (
        Index("ix_searches_created_at", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)  # the Telegram chat it was made in
    query: Mapped[str] = mapped_column(String(SEARCH_QUERY_MAX))  # the words searched for
    article_ids: Mapped[str] = mapped_column(Text)  # the results, best first: "12,7,3"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class KeywordKind(enum.StrEnum):
    FOLLOW = "follow"  # matching stories join the digest from any section (and may alert)
    MUTE = "mute"  # matching stories are kept out


class KeywordRule(Base):
    """A chat's /follow or /mute: the phrase as typed (shown back) and its word tokens,
    case-folded and joined by single spaces (what matching compares)."""

    __tablename__ = "keyword_rules"
    __table_args__ = (
        UniqueConstraint("chat_id", "kind", "normalized", name="uq_keyword_rules_chat_kind_norm"),
        Index("ix_keyword_rules_normalized", "normalized"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    kind: Mapped[KeywordKind] = mapped_column(
        Enum(
            KeywordKind,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        )
    )
    phrase: Mapped[str] = mapped_column(String(KEYWORD_PHRASE_MAX))
    normalized: Mapped[str] = mapped_column(String(KEYWORD_NORMALIZED_MAX))
    # follows only: also send each matching new story at once, as an alert
    alert: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"KeywordRule({self.kind}, {self.phrase!r})"


SEARCH_OBJECTS = frozenset(
    {
        "articles_fts",  # SQLite: the FTS5 index of articles (and its shadow tables)
        "articles_fts_data",
        "articles_fts_idx",
        "articles_fts_docsize",
        "articles_fts_config",
        "articles_fts_content",
        "search_vector",  # PostgreSQL: articles' generated tsvector column
        "ix_articles_search_vector",  # and its GIN index
    }
)
"""What migration 0007 adds to the database outside these models: the full-text indexes,
which SQLAlchemy cannot describe (an FTS5 virtual table, a generated tsvector column). The
schema comparison and autogenerate leave them out by name (`include_name`)."""


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's include_name hook: compare everything but the full-text search objects."""
    return name not in SEARCH_OBJECTS
