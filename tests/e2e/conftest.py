"""End-to-end fixtures: the real PTB Application against the loopback fake Bot API."""

from tests.fakes.fixtures import fake_api

__all__ = ["fake_api"]
