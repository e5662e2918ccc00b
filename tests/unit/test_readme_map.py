"""README's "How it is built" is the map of the tree: every module it names exists, and every
package and product module of digests/ and bot/ is on it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _map() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## How it is built")
    return readme[start : readme.index("**Translations.**", start)]


def test_every_path_the_map_names_exists() -> None:
    named = set(re.findall(r"`((?:digests|bot)/[\w/]+\.py)`", _map()))
    assert named, "the map names no module"
    assert sorted(path for path in named if not (ROOT / path).exists()) == []


def test_every_package_and_module_is_on_the_map() -> None:
    text = _map()
    missing = []
    for top in ("digests", "bot"):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT / top)
            if path.name == "__init__.py" or relative.parts[0] == "migrations":
                continue
            if f"`{path.name}`" not in text and f"`{relative}`" not in text:
                missing.append(f"{top}/{relative}")
        for package in sorted(p for p in (ROOT / top).iterdir() if (p / "__init__.py").exists()):
            if package.name != "migrations" and f"`{package.name}/`" not in text:
                missing.append(f"{top}/{package.name}/")
    assert missing == []
