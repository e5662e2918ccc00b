"""Pytest fixtures for the fake Bot API (fakebotapi); import them into a conftest."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from fakebotapi.server import FakeBotApiServer


@pytest_asyncio.fixture
async def fake_api() -> AsyncIterator[FakeBotApiServer]:
    """A started fake Bot API on a free loopback port, with an empty emulator."""
    async with FakeBotApiServer() as server:
        yield server
