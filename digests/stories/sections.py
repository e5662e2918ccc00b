"""Sections: creation from feed categories, lookup by reader-typed names, counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from digests.models import Section, article_sections
from digests.stories.naming import distinct_slug, section_key, slugify


async def get_or_create_sections(
    session: AsyncSession, names: Iterable[str], *, now: datetime
) -> dict[str, Section]:
    """Map each display name to its Section, creating missing ones.

    A name is the section whose name has the same `section_key` ("World" and "world" are
    one section); a new section gets the transliterated slug of its name, made distinct
    from every other section's ("Igry" and "Игры" become igry and igry-2).
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    every = list(await session.scalars(select(Section).order_by(Section.id)))
    by_key = sections_by_key(every)
    slugs = {section.slug for section in every}
    result: dict[str, Section] = {}
    for name in wanted:
        key = section_key(name)
        section = by_key.get(key)
        if section is None:
            section = Section(slug=distinct_slug(slugify(name), slugs), name=name, created_at=now)
            session.add(section)
            by_key[key] = section
            slugs.add(section.slug)
        result[name] = section
    await session.flush()
    return result


def sections_by_key(sections: Iterable[Section]) -> dict[str, Section]:
    """Sections by the `section_key` of their names (the first, by id, where two share one)."""
    found: dict[str, Section] = {}
    for section in sections:
        found.setdefault(section_key(section.name), section)
    return found


async def new_section_count(session: AsyncSession, names: Iterable[str]) -> int:
    """How many of `names` name no existing section (names counted once by their key)."""
    known = set(sections_by_key(await session.scalars(select(Section))))
    return len({section_key(name) for name in names} - known)


def matching(sections: Iterable[Section], typed: str) -> Section | None:
    """The section a reader or an integrator named: its slug or its name, any case, spacing,
    punctuation or Latin accents ("us politics", "US-Politics", "Игры", "igry")."""
    cleaned = " ".join(typed.split())
    if not cleaned:
        return None
    folded, key = cleaned.casefold(), section_key(cleaned)
    by_slug: Section | None = None
    by_key: Section | None = None
    for section in sections:
        if section.name.casefold() == folded:
            return section
        if section.slug == folded and by_slug is None:
            by_slug = section
        if section_key(section.name) == key and by_key is None:
            by_key = section
    return by_slug or by_key


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
    found: list[Section] = []
    unknown: list[str] = []
    for name in names:
        cleaned = name.strip().strip(",")
        if not cleaned:
            continue
        match = matching(every, cleaned)
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
