"""Work that runs at most once at a time in this process, by id (a push, a correction)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class OneAtATime:
    """The ids running here now: a second start of the same id while the first runs is a
    no-op (the resume tick and an editor's press may both start one)."""

    def __init__(self) -> None:
        self._running: set[int] = set()

    def __contains__(self, work_id: int) -> bool:
        return work_id in self._running

    async def run(self, work_id: int, work: Callable[[], Awaitable[T]]) -> T | None:
        """`work()`'s result, or None without running it when `work_id` is running here."""
        if work_id in self._running:
            return None
        self._running.add(work_id)
        try:
            return await work()
        finally:
            self._running.discard(work_id)
