"""A strict, in-memory Telegram Bot API for tests and benchmarks; never shipped in the wheel.

`emulator.BotApiEmulator` answers Bot API calls and refuses what Telegram refuses;
`server.FakeBotApiServer` serves it over loopback HTTP; `request.EmulatorRequest` hands it
python-telegram-bot's requests in the same process; `telegram_html` reads Telegram's HTML
subset strictly.
"""
