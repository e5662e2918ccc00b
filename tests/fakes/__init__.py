"""Pytest fixtures over the test kit in `fakebotapi/`: a loopback Telegram Bot API."""
