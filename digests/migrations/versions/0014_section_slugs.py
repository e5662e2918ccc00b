"""sections: slugs transliterated from names in every script, and distinct

Until now a section's slug kept only the ASCII letters of its name, so every name in a
non-Latin script (Cyrillic, Greek, Arabic, CJK…) had the slug "section", and every such
category of a feed was filed into the first one of them ("Новости"). Slugs are now the
transliterated name ("novosti"), kept distinct with -2, -3… where two names transliterate
alike. Here every existing section gets its new slug, in id order; ids do not change, so no
follow, story or forum topic is lost. (Stories already filed into a collapsed section stay
there; new stories of the other categories go to their own sections from the next ingest.)

Stories stored with a placeholder date (Go's zero time 0001-01-01 of Hugo feeds, the Unix
epoch) count as undated from here on, as the feed parser now reads such dates.

The slug rule is written out here as it stands at this revision, so later changes to the
application's slugify do not change what this migration did.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 15:30:00.000000
"""

from __future__ import annotations

import html

import sqlalchemy as sa
from alembic import op
from slugify import slugify

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_SLUG_MAX = 40


def _slug(name: str) -> str:
    for _ in range(2):
        if "&" in name:
            name = html.unescape(name)
    return slugify(name, max_length=_SLUG_MAX, word_boundary=True, entities=False) or "section"


def _distinct(slug: str, taken: set[str]) -> str:
    number = 1
    candidate = slug
    while candidate in taken:
        number += 1
        suffix = f"-{number}"
        candidate = slug[: _SLUG_MAX - len(suffix)].rstrip("-") + suffix
    return candidate


def upgrade() -> None:
    connection = op.get_bind()
    sections = sa.table("sections", sa.column("id", sa.Integer), sa.column("slug", sa.String))
    named = sa.table("sections", sa.column("id", sa.Integer), sa.column("name", sa.String))
    rows = connection.execute(sa.select(named.c.id, named.c.name).order_by(named.c.id)).all()
    wanted: dict[int, str] = {}
    taken: set[str] = set()
    for section_id, name in rows:
        slug = _distinct(_slug(name), taken)
        taken.add(slug)
        wanted[section_id] = slug
    # two passes, so that no row takes a slug another row still holds (the column is unique)
    for section_id in wanted:
        connection.execute(
            sa.update(sections).where(sections.c.id == section_id).values(slug=f"~{section_id}")
        )
    for section_id, slug in wanted.items():
        connection.execute(sa.update(sections).where(sections.c.id == section_id).values(slug=slug))

    connection.execute(
        sa.text(
            "UPDATE articles SET date_known = :undated WHERE published_at < '1995-01-01'"
        ).bindparams(sa.bindparam("undated", False, type_=sa.Boolean))
    )


def downgrade() -> None:
    # The old slugs cannot be told apart again (every non-Latin name had "section"); the
    # new ones are valid slugs under the old code too, so they stay.
    pass
