"""Sections: creation from feed categories, lookup by reader-typed names, counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.models import Section, article_sections
from digests.stories.naming import slugify


async def get_or_create_sections(
    session: AsyncSession, names: Iterable[str], *, now: datetime
) -> dict[str, Section]:
    """Map each display name to its Section, creating missing ones (keyed by slug)."""
    wanted: dict[str, str] = {}
    for name in names:
        wanted.setdefault(name, slugify(name))
    if not wanted:
        return {}
    slugs = set(wanted.values())
    rows = await session.scalars(select(Section).where(Section.slug.in_(slugs)))
    by_slug = {section.slug: section for section in rows}
    result: dict[str, Section] = {}
    for name, slug in wanted.items():
        section = by_slug.get(slug)
        if section is None:
            section = Section(slug=slug, name=name, created_at=now)
            session.add(section)
            by_slug[slug] = section
        result[name] = section
    await session.flush()
    return result


@dataclass(frozen=True)
class SectionInfo:
    id: int
    slug: str
    name: str
    stories: int


async def list_sections(session: AsyncSession) -> list[SectionInfo]:
    """Every section with its number of stories, by name."""
    counts = (
        select(article_sections.c.section_id, func.count().label("n"))
        .group_by(article_sections.c.section_id)
        .subquery()
    )
    rows = await session.execute(
        select(Section.id, Section.slug, Section.name, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.section_id == Section.id)
        .order_by(Section.name)
    )
    return [SectionInfo(id, slug, name, int(n)) for id, slug, name, n in rows]


@dataclass(frozen=True)
class Resolved:
    sections: list[Section]
    unknown: list[str]


async def resolve_sections(session: AsyncSession, names: Sequence[str]) -> Resolved:
    """Find sections by slug or display name, any case; `all` means every section."""
    every = list(await session.scalars(select(Section).order_by(Section.name)))
    if any(name.strip().lower() == "all" for name in names):
        return Resolved(every, [])
    by_key: dict[str, Section] = {}
    for section in every:
        by_key[section.slug] = section
        by_key[section.name.casefold()] = section
    found: list[Section] = []
    unknown: list[str] = []
    for name in names:
        cleaned = name.strip().strip(",")
        if not cleaned:
            continue
        match = by_key.get(cleaned.casefold()) or by_key.get(slugify(cleaned))
        if match is None:
            unknown.append(cleaned)
        elif match not in found:
            found.append(match)
    return Resolved(found, unknown)


async def resolve_section_args(session: AsyncSession, args: Sequence[str]) -> Resolved:
    """Resolve command arguments: comma-separated names, each possibly several words.

    A chunk that names a section as a whole ("us politics") wins; otherwise each word is
    looked up on its own ("world sports").
    """
    chunks = [chunk.strip() for chunk in " ".join(args).split(",") if chunk.strip()]
    names: list[str] = []
    for chunk in chunks:
        whole = await resolve_sections(session, [chunk])
        if whole.sections and not whole.unknown:
            names.append(chunk)
        else:
            names.extend(chunk.split())
    return await resolve_sections(session, names)
