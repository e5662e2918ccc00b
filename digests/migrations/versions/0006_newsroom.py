"""newsroom integration: article photos and authors, API pushes, corrections and withdrawals,
idempotent API requests

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 13:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digests.models

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ORIGIN = sa.Enum("telegram", "api", name="pushorigin", native_enum=False, length=16)


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("image_url", sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column("image_caption", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("author", sa.String(length=200), nullable=True))

    with op.batch_alter_table("breaking_pushes", schema=None) as batch_op:
        batch_op.alter_column("created_by", existing_type=sa.BigInteger(), nullable=True)
        batch_op.alter_column("admin_chat_id", existing_type=sa.BigInteger(), nullable=True)
        batch_op.add_column(sa.Column("origin", _ORIGIN, nullable=False, server_default="telegram"))
        batch_op.add_column(
            sa.Column(
                "to_article_sections", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
        batch_op.add_column(
            sa.Column("withdrawn_at", digests.models.UTCDateTime(timezone=True), nullable=True)
        )

    op.create_table(
        "push_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("push_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("correct", "withdraw", name="pushactionkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("edited", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("too_old", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("origin", _ORIGIN, nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("admin_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("report_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", digests.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", digests.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["push_id"],
            ["breaking_pushes.id"],
            name=op.f("fk_push_actions_push_id_breaking_pushes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_actions")),
    )
    op.create_index("ix_push_actions_push_id", "push_actions", ["push_id"], unique=False)

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("media", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("action_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_deliveries_action_id_push_actions"),
            "push_actions",
            ["action_id"],
            ["id"],
            ondelete="SET NULL",
        )

    op.create_table(
        "api_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=2000), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", digests.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_requests")),
        sa.UniqueConstraint("owner", "key", name="uq_api_requests_owner_key"),
    )
    op.create_index("ix_api_requests_created_at", "api_requests", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_api_requests_created_at", table_name="api_requests")
    op.drop_table("api_requests")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("fk_deliveries_action_id_push_actions", type_="foreignkey")
        batch_op.drop_column("action_id")
        batch_op.drop_column("media")
    op.drop_index("ix_push_actions_push_id", table_name="push_actions")
    op.drop_table("push_actions")
    with op.batch_alter_table("breaking_pushes", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("to_article_sections")
        batch_op.drop_column("origin")
        batch_op.alter_column("admin_chat_id", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column("created_by", existing_type=sa.BigInteger(), nullable=False)
