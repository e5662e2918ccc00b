"""Update handlers: read an update, call one service in digests/, send what comes back.

readers.py (reader commands and buttons), editor.py (/breaking, /stats), corrections.py
(Correct / Withdraw), forums.py (channels, forum topics, the bot's membership), inline.py
(inline mode); common.py holds what they share. bot/app.py registers each of them once.
"""
