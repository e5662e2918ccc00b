"""Reply shapes, the callback-data protocol, Telegram-HTML rendering and the texts several
features share; it imports no other package."""
