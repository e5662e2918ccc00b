"""Inline mode's answers of the last few seconds, kept in this process (bot/handlers/inline.py)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from digests.stories.texts import InlineStory

LOCAL_TTL = 5.0  # seconds this process keeps a search's answer
LOCAL_MAX = 256  # answers kept at most (the oldest go first)


@dataclass(frozen=True)
class InlineAnswer:
    stories: list[InlineStory]
    next_offset: str


@dataclass
class TTLCache:
    """A small, bounded map whose entries expire `ttl` seconds after they were stored."""

    ttl: float = LOCAL_TTL
    size: int = LOCAL_MAX
    clock: Callable[[], float] = time.monotonic
    _items: OrderedDict[tuple[str, int, str], tuple[float, InlineAnswer]] = field(
        default_factory=OrderedDict
    )

    def get(self, key: tuple[str, int, str]) -> InlineAnswer | None:
        item = self._items.get(key)
        if item is None:
            return None
        stored, value = item
        if self.clock() - stored >= self.ttl:
            del self._items[key]
            return None
        return value

    def put(self, key: tuple[str, int, str], value: InlineAnswer) -> None:
        self._items[key] = (self.clock(), value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
