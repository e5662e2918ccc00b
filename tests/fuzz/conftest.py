"""The standing fault and fuzz suite: shared counts, printed at the end of the run.

Every fuzz or fault test adds what it tried and what went wrong to `fuzz_counts`, under a
name of its own ("chat", "feeds", "faults", ...). The terminal summary prints one line per
name, so a run reports, for example, "chat: 2400 inputs tried, 0 crashes, 0 unanswered
callbacks, 0 refused requests".

Scale: the default run is sized to take a few minutes in all. `FUZZ_SCALE=N` (an integer,
default 1) multiplies the number of examples each fuzz test tries: `FUZZ_SCALE=20 python3 -m
pytest tests/fuzz` is the larger campaign the README describes.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict

import pytest

from tests.fakes.fixtures import fake_api

__all__ = ["fake_api", "fuzz_counts", "fuzz_scale"]

_COUNTS: defaultdict[str, Counter[str]] = defaultdict(Counter)


def fuzz_scale() -> int:
    """The campaign's multiplier from FUZZ_SCALE (at least 1)."""
    raw = os.environ.get("FUZZ_SCALE", "1").strip() or "1"
    try:
        return max(1, int(raw))
    except ValueError as exc:
        raise pytest.UsageError(f"FUZZ_SCALE must be a whole number, not {raw!r}") from exc


@pytest.fixture(scope="session")
def fuzz_counts() -> defaultdict[str, Counter[str]]:
    """Counts by suite name: `fuzz_counts["chat"]["inputs tried"] += 1`."""
    return _COUNTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _COUNTS:
        return
    terminalreporter.section("fault and fuzz counts")
    for name in sorted(_COUNTS):
        counts = _COUNTS[name]
        line = ", ".join(f"{value} {what}" for what, value in counts.items())
        terminalreporter.write_line(f"{name}: {line}")
