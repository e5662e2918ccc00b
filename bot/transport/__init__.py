"""What talks to the Telegram Bot API: the HTTP transport, the rate limiter and shared budget,
sending and editing replies, inline keyboards, and the Telegram adapters of the domain's ports
(`TelegramSender`, `TelegramTopicMaker`, `TelegramEditor`). Nothing here knows a handler."""
