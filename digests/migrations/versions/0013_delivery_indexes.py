"""deliveries: an index of the open rows only, and no article index entries for digests

A digest round writes each delivery row four times (scheduled, claimed, SENDING, its
outcome), and on PostgreSQL every write of a row that changes an indexed column adds an
entry to every index of the table. ix_deliveries_status_updated (status, updated_at) held
every row ever sent and took a new entry at each of the four writes; the senders only ever
look for PENDING and SENDING rows. It is replaced by ix_deliveries_open (status, id), which
on PostgreSQL holds only PENDING and SENDING rows (a partial index): small however long the
history, in the id order the senders page in, and a row's move to SENT adds nothing to it.
updated_at is no longer indexed, so a claim (which writes updated_at, claimed_by and
not_before only) may be a heap-only update. SQLite cannot match `status = 'pending'` to the
partial index's predicate, so there the index covers every row, as the old one did.

ix_deliveries_article_id leaves out the rows with no article (digests: nearly all of them).
Lookups by an article id still use it: `article_id = ?` implies the predicate.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_status_updated", table_name="deliveries")
    op.create_index(
        "ix_deliveries_open",
        "deliveries",
        ["status", "id"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'sending')"),
    )
    op.drop_index("ix_deliveries_article_id", table_name="deliveries")
    op.create_index(
        "ix_deliveries_article_id",
        "deliveries",
        ["article_id"],
        unique=False,
        postgresql_where=sa.text("article_id IS NOT NULL"),
        sqlite_where=sa.text("article_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_article_id", table_name="deliveries")
    op.create_index("ix_deliveries_article_id", "deliveries", ["article_id"], unique=False)
    op.drop_index("ix_deliveries_open", table_name="deliveries")
    op.create_index(
        "ix_deliveries_status_updated", "deliveries", ["status", "updated_at"], unique=False
    )
