"""forum topics per (chat, section), and what the bot knows of a chat's forum

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digests.models

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_forum", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("topic_rights", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.create_table(
        "chat_topics",
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("section_id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("by_bot", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", digests.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", digests.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chat_id"],
            ["chats.id"],
            name=op.f("fk_chat_topics_chat_id_chats"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["section_id"],
            ["sections.id"],
            name=op.f("fk_chat_topics_section_id_sections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("chat_id", "section_id", name=op.f("pk_chat_topics")),
    )


def downgrade() -> None:
    op.drop_table("chat_topics")
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("topic_rights")
        batch_op.drop_column("is_forum")
