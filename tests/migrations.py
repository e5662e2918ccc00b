"""Moving a test database along its Alembic history, for the migration tests (run each with
`connection.run_sync(...)`)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect

from digests.db import alembic_config


def downgrade_to(connection: Connection, revision: str) -> None:
    """Down to `revision` ("0008", or "-1" for one step)."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


def upgrade_to(connection: Connection, revision: str = "head") -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


def chat_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("chats")}
