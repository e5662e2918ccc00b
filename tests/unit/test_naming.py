"""Section names from feed categories, slugs and the category map: pure functions."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digests.stories.naming import (
    distinct_slug,
    parse_category_map,
    section_key,
    section_names,
    slugify,
)

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


# --- section names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("categories", "expected"),
    [
        (["News (World)"], ["News (World)"]),
        (["Sci/Tech"], ["Sci/Tech"]),
        (["AC/DC"], ["AC/DC"]),
        (["Politics (US)"], ["Politics (US)"]),
        (["World"], ["World"]),
        (["news/world"], ["World"]),
        (["News > World"], ["World"]),
        (["News / World"], ["World"]),
        (["POLITICS"], ["POLITICS"]),
        (["FBI", "NBA", "GKE"], ["FBI", "NBA", "GKE"]),
        (["Society &amp; Culture", "Society & Culture"], ["Society & Culture"]),
        (["Society &amp;amp; Culture"], ["Society & Culture"]),
        (["Новости", "Игры", "Экономика", "Спорт"], ["Новости", "Игры", "Экономика", "Спорт"]),
        (["体育", "新闻", "Ελλάδα", "رياضة"], ["体育", "新闻", "Ελλάδα", "رياضة"]),
        (["Игры", "игры", "ИГРЫ"], ["Игры"]),
        (["Мой", "Мои"], ["Мой", "Мои"]),
        (["Игры", "Igry"], ["Игры", "Igry"]),
        (["world"], ["World"]),
        (["US Politics"], ["US Politics"]),
        (["  culture  &   arts "], ["Culture & Arts"]),
        (["sci-tech"], ["Sci-Tech"]),
        (["World", "News > World", "world", "WORLD", "news/world"], ["World"]),
        (["Science", "Business"], ["Science", "Business"]),
        (["Culture & Arts", "Culture Arts"], ["Culture & Arts"]),
        ([], ["Front Page"]),
        (["", "   "], ["Front Page"]),
    ],
)
def test_section_names(categories: list[str], expected: list[str]) -> None:
    assert section_names(categories, mapping={}, default="Front Page") == expected


@pytest.mark.parametrize(
    ("categories", "mapping", "expected"),
    [
        (["Soccer"], {"soccer": "Sports"}, ["Sports"]),
        (["SOCCER"], {"Soccer": "Sports"}, ["Sports"]),
        (["Sports", "Soccer", "Football"], {"soccer": "Sports", "football": "Sports"}, ["Sports"]),
        (["Sport > Soccer"], {"soccer": "Sports"}, ["Sports"]),
        (["News (World)"], {"news (world)": "International"}, ["International"]),
        (["Op-Ed", "Politics"], parse_category_map("Op-Ed=Opinion"), ["Opinion", "Politics"]),
    ],
)
def test_section_names_follow_the_mapping(
    categories: list[str], mapping: dict[str, str], expected: list[str]
) -> None:
    assert section_names(categories, mapping=mapping, default="Front Page") == expected


# --- slugs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("World", "world"),
        ("US Politics", "us-politics"),
        ("Culture & Arts", "culture-arts"),
        ("Économie", "economie"),
        ("Straße", "strasse"),
        ("  --Science--  ", "science"),
        ("", "section"),
        ("!!!", "section"),
        ("新闻", "xin-wen"),
        ("Новости", "novosti"),
        ("Игры", "igry"),
        ("Экономика", "ekonomika"),
        ("Ελλάδα", "ellada"),
        ("Sci/Tech", "sci-tech"),
        ("Society &amp; Culture", "society-culture"),
        (
            "Arts and Entertainment and Lifestyle and More",
            "arts-and-entertainment-and-lifestyle-and",
        ),
        ("Arts, Entertainment, Lifestyles & Everythings", "arts-entertainment-lifestyles"),
        ("x" * 50, "x" * 40),
    ],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug


# --- slugs and sections, any input ----------------------------------------------------------


@given(st.text())
def test_slugify_always_gives_a_valid_slug(name: str) -> None:
    slug = slugify(name)

    assert SLUG.match(slug)
    assert len(slug) <= 40
    assert slugify(slug) == slug


@given(st.lists(st.text()), st.dictionaries(st.text(), st.text(min_size=1)))
def test_section_names_are_never_empty_and_never_share_a_key(
    categories: list[str], mapping: dict[str, str]
) -> None:
    names = section_names(categories, mapping=mapping, default="Front Page")

    assert names
    assert len({section_key(name) for name in names}) == len(names)


@pytest.mark.parametrize(
    ("slug", "taken", "expected"),
    [
        ("igry", set(), "igry"),
        ("igry", {"igry"}, "igry-2"),
        ("igry", {"igry", "igry-2"}, "igry-3"),
        ("x" * 40, {"x" * 40}, "x" * 38 + "-2"),
    ],
)
def test_distinct_slug(slug: str, taken: set[str], expected: str) -> None:
    assert distinct_slug(slug, taken) == expected


@given(st.text(), st.sets(st.text()))
def test_distinct_slug_is_free_and_valid(name: str, taken: set[str]) -> None:
    slug = distinct_slug(slugify(name), taken | {slugify(name)})

    assert slug not in taken
    assert SLUG.match(slug)
    assert len(slug) <= 40


# --- category map ---------------------------------------------------------------------------


def test_parse_category_map() -> None:
    assert parse_category_map("Soccer=Sports, Football=Sports,Op-Ed=Opinion") == {
        "soccer": "Sports",
        "football": "Sports",
        "op-ed": "Opinion",
    }
    assert parse_category_map("  World   News = International Desk ,") == {
        "world news": "International Desk"
    }
    assert parse_category_map("Soccer=Sports, soccer=Sports") == {"soccer": "Sports"}
    assert parse_category_map("") == {}
    assert parse_category_map(" , ") == {}
    assert parse_category_map("climate=, Europe=World") == {"climate": "", "europe": "World"}


def test_a_category_mapped_to_nothing_is_dropped() -> None:
    mapping = parse_category_map("climate=,elections=")
    assert section_names(["Climate", "Politics"], mapping=mapping, default="Home") == ["Politics"]
    assert section_names(["climate", "Elections"], mapping=mapping, default="Home") == ["Home"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("Soccer", "expected CATEGORY=SECTION, got 'Soccer'"),
        ("Soccer=Sports, Tennis", "expected CATEGORY=SECTION, got 'Tennis'"),
        ("a=b=c", "expected CATEGORY=SECTION, got 'a=b=c'"),
        ("=Sports", "empty category in '=Sports'"),
        ("Soccer=Sports,SOCCER=Games", "'SOCCER' maps to both 'Sports' and 'Games'"),
    ],
)
def test_parse_category_map_rejects_malformed_pairs(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_category_map(raw)
