"""Section names from feed categories, and their slugs: pure, imports nothing from digests."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

SLUG_MAX = 40

_PARENTHESISED = re.compile(r"^(.*?)\s*\(([^()]*)\)$")
_HIERARCHY = re.compile(r"\s*(?:/|>|»|›|\|)\s*")
_WORD_START = re.compile(r"(^|[\s\-/&])(\w)")


def section_names(
    categories: Sequence[str], *, mapping: Mapping[str, str], default: str
) -> list[str]:
    """Section display names for an entry's categories, in order, without repeats.

    "News (World)", "news/world", "News > World" all give "World"; a category found in
    `mapping` (any case, as written or once cleaned) gives the mapped name. Names that
    share a slug count as one, so callers can key sections by slugify(name).
    """
    lookup = {" ".join(key.split()).casefold(): value for key, value in mapping.items()}
    names: dict[str, str] = {}
    for category in categories:
        name = _section_name(category, lookup)
        if name:
            names.setdefault(slugify(name), name)
    return list(names.values()) or [default]


def _section_name(category: str, lookup: Mapping[str, str]) -> str:
    raw = " ".join(category.split())
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


def _clean_section(raw: str) -> str:
    name = raw
    parenthesised = _PARENTHESISED.match(name)
    if parenthesised and parenthesised.group(2).strip():
        name = parenthesised.group(2).strip()
    parts = [part for part in _HIERARCHY.split(name) if part.strip()]
    if parts:
        name = parts[-1].strip()
    if name.islower() or name.isupper():
        name = _WORD_START.sub(lambda m: m.group(1) + m.group(2).upper(), name.lower())
    return name or raw


_ASCII_FOLD = str.maketrans({"æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th"})


def slugify(name: str) -> str:
    """ASCII slug of a section name: "Culture & Arts" -> "culture-arts"; "section" if empty."""
    folded = unicodedata.normalize("NFKD", name.casefold().translate(_ASCII_FOLD))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-")
    if len(slug) > SLUG_MAX:
        cut = slug[:SLUG_MAX]
        if slug[SLUG_MAX] != "-" and "-" in cut:
            cut = cut[: cut.rfind("-")]
        slug = cut.strip("-")
    return slug or "section"


def parse_category_map(raw: str) -> dict[str, str]:
    """Parse "Soccer=Sports, Op-Ed=Opinion" into {"soccer": "Sports", "op-ed": "Opinion"}.

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
        if not value:
            raise ValueError(f"category map: empty section in {pair.strip()!r}")
        folded = key.casefold()
        if result.get(folded, value) != value:
            raise ValueError(f"category map: {key!r} maps to both {result[folded]!r} and {value!r}")
        result[folded] = value
    return result
