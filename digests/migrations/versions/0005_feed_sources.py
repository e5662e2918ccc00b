"""feed_sources: validators for conditional GET and the backoff of failing feeds

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digests.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("etag", sa.String(length=400), nullable=True),
        sa.Column("last_modified", sa.String(length=400), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", digests.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_success_at", digests.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", digests.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", digests.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_sources")),
        sa.UniqueConstraint("url", name=op.f("uq_feed_sources_url")),
    )


def downgrade() -> None:
    op.drop_table("feed_sources")
