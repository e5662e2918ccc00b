"""What the bot's edits made its messages show, for presses that carry an older copy."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.shown import Content, ShownMessages

CHAT = Chat(501, Chat.PRIVATE)
SENT = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def copy(text: str, edited: int | None = None, *, message_id: int = 7) -> Message:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Next", callback_data=text)]])
    edit_date = datetime(2026, 11, 30, 12, 0, edited, tzinfo=UTC) if edited is not None else None
    return Message(message_id, SENT, CHAT, text=text, reply_markup=keyboard, edit_date=edit_date)


def text(content: Content) -> str:
    return content.text


def test_a_press_that_saw_the_message_before_an_edit_sees_what_the_edit_made() -> None:
    shown = ShownMessages()
    page1, page2 = copy("page 1"), copy("page 2", edited=1)
    assert text(shown.current(page1)) == "page 1"  # nothing edited yet: the copy as it is
    shown.edited(page1, page2)
    assert text(shown.current(page1)) == "page 2"  # a double tap's second press
    assert text(shown.current(page2)) == "page 2"
    page3 = copy("page 3", edited=2)
    shown.edited(page1, page3)  # the second press turned one page further
    assert text(shown.current(page1)) == "page 3"  # a third tap
    assert text(shown.current(page2)) == "page 3"
    assert shown.current(page1).keyboard == page3.reply_markup
    assert text(shown.current(copy("page 1", message_id=8))) == "page 1"  # another message


def test_a_copy_the_bot_did_not_replace_is_taken_as_it_is() -> None:
    shown = ShownMessages()
    shown.edited(copy("page 1"), copy("page 2", edited=1))
    elsewhere = copy("page 1", edited=5)  # another instance turned it back meanwhile
    assert text(shown.current(elsewhere)) == "page 1"


def test_messages_edited_longest_ago_are_forgotten_first() -> None:
    shown = ShownMessages(max_messages=2)
    for message_id in (1, 2, 3):
        shown.edited(copy("a", message_id=message_id), copy("b", 1, message_id=message_id))
    assert text(shown.current(copy("a", message_id=1))) == "a"  # forgotten
    assert text(shown.current(copy("a", message_id=2))) == "b"
    assert text(shown.current(copy("a", message_id=3))) == "b"
