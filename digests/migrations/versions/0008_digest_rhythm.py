"""digest rhythms (daily, twice a day, weekdays, weekly) and pausing a chat's digests

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import digests.models

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_RHYTHM = sa.Enum(
    "daily", "twice_daily", "weekdays", "weekly", name="rhythm", native_enum=False, length=16
)


def upgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        # existing chats keep their daily digest
        batch_op.add_column(sa.Column("rhythm", _RHYTHM, nullable=False, server_default="daily"))
        batch_op.add_column(sa.Column("second_digest_time", sa.String(length=5), nullable=True))
        batch_op.add_column(sa.Column("digest_weekday", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("paused_until", digests.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("chats", schema=None) as batch_op:
        batch_op.drop_column("paused_until")
        batch_op.drop_column("digest_weekday")
        batch_op.drop_column("second_digest_time")
        batch_op.drop_column("rhythm")
