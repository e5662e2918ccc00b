"""keyword rules: a chat's /follow and /mute phrases

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digests.models

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "keyword_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("follow", "mute", name="keywordkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("phrase", sa.String(length=60), nullable=False),
        sa.Column("normalized", sa.String(length=240), nullable=False),
        sa.Column("alert", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", digests.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["chats.id"],
            name=op.f("fk_keyword_rules_chat_id_chats"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyword_rules")),
        sa.UniqueConstraint(
            "chat_id", "kind", "normalized", name="uq_keyword_rules_chat_kind_norm"
        ),
    )
    op.create_index("ix_keyword_rules_normalized", "keyword_rules", ["normalized"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_keyword_rules_normalized", table_name="keyword_rules")
    op.drop_table("keyword_rules")
