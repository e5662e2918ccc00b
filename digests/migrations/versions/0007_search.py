"""full-text search over articles, and saved searches for /search paging

PostgreSQL: a generated, stored `tsvector` column on articles with a GIN index. The text
search configuration is 'russian': the stories are English and Russian, and PostgreSQL's
'russian' configuration stems Cyrillic words with the Russian Snowball stemmer and ASCII
words with the English one (stop words of each language dropped), so one column serves
both languages without guessing a story's language. Titles weigh more than summaries
(setweight A and B). Being generated, the column follows every insert and update.

SQLite: an external-content FTS5 table over articles' title and summary, tokenizer
`porter unicode61 remove_diacritics 2` (English stemming; Russian words are matched whole),
kept in step by triggers on insert, update and delete.

Neither object can be described by SQLAlchemy models: digests.models.include_name leaves
them out of the schema comparison. A later SQLite batch migration that recreates the
articles table drops the triggers with it: it must create them again (see _SQLITE_TRIGGERS).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digests.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

PG_VECTOR = (
    "setweight(to_tsvector('russian'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('russian'::regconfig, coalesce(summary, '')), 'B')"
)

_SQLITE_TRIGGERS = (
    """CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
        INSERT INTO articles_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary);
    END""",
    """CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts(articles_fts, rowid, title, summary)
        VALUES ('delete', old.id, old.title, old.summary);
    END""",
    """CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, summary ON articles BEGIN
        INSERT INTO articles_fts(articles_fts, rowid, title, summary)
        VALUES ('delete', old.id, old.title, old.summary);
        INSERT INTO articles_fts(rowid, title, summary) VALUES (new.id, new.title, new.summary);
    END""",
)


def upgrade() -> None:
    op.create_table(
        "searches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("query", sa.String(length=200), nullable=False),
        sa.Column("article_ids", sa.Text(), nullable=False),
        sa.Column("created_at", digests.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_searches")),
        sqlite_autoincrement=True,  # ids never reused: old buttons must not find new searches
    )
    op.create_index("ix_searches_created_at", "searches", ["created_at"], unique=False)

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            f"ALTER TABLE articles ADD COLUMN search_vector tsvector "  # noqa: S608 - constant
            f"GENERATED ALWAYS AS ({PG_VECTOR}) STORED"
        )
        op.execute("CREATE INDEX ix_articles_search_vector ON articles USING gin (search_vector)")
    elif dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE articles_fts USING fts5(title, summary, "
            "content='articles', content_rowid='id', "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_articles_search_vector")
        op.execute("ALTER TABLE articles DROP COLUMN IF EXISTS search_vector")
    elif dialect == "sqlite":
        for name in ("articles_fts_update", "articles_fts_delete", "articles_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS articles_fts")
    op.drop_index("ix_searches_created_at", table_name="searches")
    op.drop_table("searches")
