"""Section names from feed categories, and their slugs: pure, imports nothing from digests."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Collection, Mapping, Sequence

from slugify import slugify as python_slugify

SLUG_MAX = 40

# "News > World", "News » World", "news/world" name a place in a hierarchy: the last part is
# the section. A "/" inside a name ("Sci/Tech", "AC/DC") is part of the name; only a
# lowercase path ("news/world") or a spaced one ("News / World") is a hierarchy.
_HIERARCHY = re.compile(r"\s*(?:>|»|›|\|)\s*|\s+/\s+")
_PATH = re.compile(r"^[^\sA-Z/]+(?:/[^\sA-Z/]+)+/?$")
_WORD_START = re.compile(r"(^|[\s\-/&])(\w)")
_NOT_WORD = re.compile(r"[\W_]+")


def section_names(
    categories: Sequence[str], *, mapping: Mapping[str, str], default: str
) -> list[str]:
    """Section display names for an entry's categories, in order, without repeats.

    "News > World", "news/world" give "World"; "Sci/Tech" and "News (World)" stay as they
    are. A category found in `mapping` (any case, as written or once cleaned) gives the mapped
    name; one mapped to "" is dropped (a tag that is not a section). Names with the same
    `section_key` count as one. With no name left, the entry is in `default`.
    """
    lookup = {" ".join(key.split()).casefold(): value for key, value in mapping.items()}
    names: dict[str, str] = {}
    for category in categories:
        name = _section_name(category, lookup)
        if name:
            names.setdefault(section_key(name), name)
    return list(names.values()) or [default]


def _section_name(category: str, lookup: Mapping[str, str]) -> str:
    raw = " ".join(unescape_name(category).split())
    if not raw:
        return ""
    mapped = lookup.get(raw.casefold())
    if mapped is not None:
        return " ".join(mapped.split())
    name = _clean_section(raw)
    mapped = lookup.get(name.casefold())
    if mapped is not None:
        return " ".join(mapped.split())
    return name


def unescape_name(text: str) -> str:
    """Undo HTML escaping, twice if the feed escaped twice ("Society &amp;amp; Culture")."""
    for _ in range(2):
        if "&" not in text:
            break
        text = html.unescape(text)
    return text


def _clean_section(raw: str) -> str:
    name = raw
    if _PATH.match(name):
        name = name.rstrip("/").rsplit("/", 1)[-1]
    else:
        parts = [part for part in _HIERARCHY.split(name) if part.strip()]
        if parts:
            name = parts[-1].strip()
    if name.islower():
        # a lowercase category ("world", "culture & arts") reads as a title; all-caps ones
        # (FBI, NBA, GKE) are kept as written: most are acronyms
        name = _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), name)
    return name or raw


def section_key(name: str) -> str:
    """What makes two section names the same section: case, accents on Latin letters,
    spacing and punctuation aside ("Économie" = "economie", "Culture & Arts" = "culture
    arts"), every script kept as it is ("Игры" and "Igry" are two sections)."""
    folded = []
    for char in unicodedata.normalize("NFKC", unescape_name(name)).casefold():
        decomposed = unicodedata.normalize("NFKD", char.translate(_ASCII_FOLD))
        base = "".join(part for part in decomposed if not unicodedata.combining(part))
        folded.append(base if base.isascii() else char)
    return _NOT_WORD.sub("-", "".join(folded)).strip("-")


_ASCII_FOLD = str.maketrans({"æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th"})


def slugify(name: str) -> str:
    """ASCII slug of a section name in any script, transliterated: "Culture & Arts" ->
    "culture-arts", "Новости" -> "novosti", "体育" -> "ti-yu"; "section" if nothing is left.

    Two different names can share a slug ("Igry", "Игры"): `distinct_slug` keeps sections
    apart when they are stored.
    """
    slug = python_slugify(
        unescape_name(name), max_length=SLUG_MAX, word_boundary=True, entities=False
    )
    return slug or "section"


def distinct_slug(slug: str, taken: Collection[str]) -> str:
    """`slug`, or `slug-2`, `slug-3`… (within SLUG_MAX) when it is taken by another section."""
    if slug not in taken:
        return slug
    number = 2
    while True:
        suffix = f"-{number}"
        candidate = slug[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        number += 1


def parse_category_map(raw: str) -> dict[str, str]:
    """Parse "Soccer=Sports, Op-Ed=Opinion, climate=" into {"soccer": "Sports", "op-ed":
    "Opinion", "climate": ""}: an empty section drops the category (a tag, not a section).

    Keys are casefolded with whitespace collapsed. Raises ValueError naming the bad pair.
    """
    result: dict[str, str] = {}
    for pair in raw.split(","):
        if not pair.strip():
            continue
        if pair.count("=") != 1:
            raise ValueError(f"category map: expected CATEGORY=SECTION, got {pair.strip()!r}")
        key, value = (" ".join(part.split()) for part in pair.split("="))
        if not key:
            raise ValueError(f"category map: empty category in {pair.strip()!r}")
        folded = key.casefold()
        if result.get(folded, value) != value:
            raise ValueError(f"category map: {key!r} maps to both {result[folded]!r} and {value!r}")
        result[folded] = value
    return result
