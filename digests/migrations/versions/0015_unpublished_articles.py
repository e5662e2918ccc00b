"""articles.unpublished_at: stories the publisher took back (the API's unpublish)

An unpublished story stays stored (its pushes, their withdrawal and the publisher's record
need it) but readers find it nowhere: it loses its article_sections rows (so a section's
pages and counts, read from that table's index alone, need no change), and every query of
all stories asks for `unpublished_at IS NULL`.

ix_articles_published_at_id gains unpublished_at as a third column, so counting the
published stories newer than one (the position under a /latest page) still reads the index
alone. story_counts' scope 0 (all stories, migration 0012) now counts published stories
only: the triggers on articles count an insert or delete of a published story, and an
update of unpublished_at that publishes or unpublishes one.

Like 0012's, these triggers are not described by the models; a later SQLite batch migration
that recreates articles must create them again.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digests.models

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_COUNT = """INSERT INTO story_counts (scope, stories) VALUES (0, {delta})
        ON CONFLICT (scope) DO UPDATE SET stories = story_counts.stories + {delta}"""

_SQLITE_CREATE = (
    f"""CREATE TRIGGER story_counts_article_insert AFTER INSERT ON articles
    WHEN new.unpublished_at IS NULL
    BEGIN
        {_COUNT.format(delta=1)};
    END""",
    f"""CREATE TRIGGER story_counts_article_delete AFTER DELETE ON articles
    WHEN old.unpublished_at IS NULL
    BEGIN
        {_COUNT.format(delta=-1)};
    END""",
    f"""CREATE TRIGGER story_counts_article_unpublish AFTER UPDATE OF unpublished_at ON articles
    WHEN old.unpublished_at IS NULL AND new.unpublished_at IS NOT NULL
    BEGIN
        {_COUNT.format(delta=-1)};
    END""",
    f"""CREATE TRIGGER story_counts_article_republish AFTER UPDATE OF unpublished_at ON articles
    WHEN old.unpublished_at IS NOT NULL AND new.unpublished_at IS NULL
    BEGIN
        {_COUNT.format(delta=1)};
    END""",
)
_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS story_counts_article_insert",
    "DROP TRIGGER IF EXISTS story_counts_article_delete",
    "DROP TRIGGER IF EXISTS story_counts_article_unpublish",
    "DROP TRIGGER IF EXISTS story_counts_article_republish",
)
_SQLITE_0012 = (  # as migration 0012 made them
    f"""CREATE TRIGGER story_counts_article_insert AFTER INSERT ON articles
    BEGIN
        {_COUNT.format(delta=1)};
    END""",
    f"""CREATE TRIGGER story_counts_article_delete AFTER DELETE ON articles
    BEGIN
        {_COUNT.format(delta=-1)};
    END""",
)

_PG_CREATE = (
    """CREATE FUNCTION story_counts_published() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        was integer := 0;
        now_is integer := 0;
    BEGIN
        IF TG_OP <> 'INSERT' AND OLD.unpublished_at IS NULL THEN
            was := 1;
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.unpublished_at IS NULL THEN
            now_is := 1;
        END IF;
        IF now_is <> was THEN
            INSERT INTO story_counts (scope, stories) VALUES (0, now_is - was)
            ON CONFLICT (scope) DO UPDATE SET stories = story_counts.stories + (now_is - was);
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER story_counts_article
    AFTER INSERT OR DELETE OR UPDATE OF unpublished_at ON articles
    FOR EACH ROW EXECUTE FUNCTION story_counts_published()""",
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS story_counts_article ON articles",
    "DROP FUNCTION IF EXISTS story_counts_published()",
)
_PG_0012 = (  # as migration 0012 made it (its function story_counts_change stays)
    """CREATE TRIGGER story_counts_article AFTER INSERT OR DELETE ON articles
    FOR EACH ROW EXECUTE FUNCTION story_counts_change()""",
)

_RECOUNT = (
    "DELETE FROM story_counts WHERE scope = 0",
    "INSERT INTO story_counts (scope, stories) "
    "SELECT 0, count(*) FROM articles WHERE unpublished_at IS NULL",
)


def upgrade() -> None:
    op.add_column(
        "articles",
        sa.Column("unpublished_at", digests.models.UTCDateTime(timezone=True), nullable=True),
    )
    op.drop_index("ix_articles_published_at_id", table_name="articles")
    op.create_index(
        "ix_articles_published_at_id",
        "articles",
        ["published_at", "id", "unpublished_at"],
        unique=False,
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in (
        *(_PG_DROP if postgres else _SQLITE_DROP),
        *(_PG_CREATE if postgres else _SQLITE_CREATE),
        *_RECOUNT,
    ):
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in (
        *(_PG_DROP if postgres else _SQLITE_DROP),
        *(_PG_0012 if postgres else _SQLITE_0012),
    ):
        op.execute(statement)
    op.drop_index("ix_articles_published_at_id", table_name="articles")
    op.create_index("ix_articles_published_at_id", "articles", ["published_at", "id"], unique=False)
    # a plain ALTER TABLE (SQLite 3.35+ has DROP COLUMN): a batch copy of articles would
    # lose the triggers of migrations 0007 and 0012
    op.drop_column("articles", "unpublished_at")
    op.execute("UPDATE story_counts SET stories = (SELECT count(*) FROM articles) WHERE scope = 0")
