"""Fakes built on real interfaces: a loopback Telegram Bot API for end-to-end tests."""
