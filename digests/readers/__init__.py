"""Readers: chats and their settings, keyword follows and mutes, forum topics; its service
answers /start, /subscribe, /settings and the chat's other commands."""
