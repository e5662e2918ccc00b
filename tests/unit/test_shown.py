"""What the bot's edits made its messages show, for presses that carry an older copy."""

from __future__ import annotations

from datetime import UTC, datetime

from telegram import Chat, InlineKeyboardButton, InlineKeyboardMarkup, Message, PhotoSize

from bot.transport.shown import Content, ShownMessages

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


def photo_copy(caption: str, file_id: str, edited: int | None = None) -> Message:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Next", callback_data=caption)]])
    edit_date = datetime(2026, 11, 30, 12, 0, edited, tzinfo=UTC) if edited is not None else None
    sizes = (PhotoSize(file_id, file_id[-4:], 1280, 853),)
    return Message(
        7, SENT, CHAT, caption=caption, photo=sizes, reply_markup=keyboard, edit_date=edit_date
    )


def test_a_photo_message_shows_its_caption_and_the_photo_the_bot_put_there() -> None:
    shown = ShownMessages()
    page1, page2 = photo_copy("page 1", "AgAC-one"), photo_copy("page 2", "AgAC-two", edited=1)
    before = shown.current(page1)
    assert (before.text, before.is_photo) == ("page 1", True)
    assert before.photo == "file:-one"  # Telegram's copy: no URL to compare with
    shown.edited(page1, page2, photo="https://img.example/two.jpg")
    after = shown.current(page1)  # a double tap's second press
    assert (after.text, after.photo) == ("page 2", "https://img.example/two.jpg")
    assert shown.current(copy("text page", message_id=8)).is_photo is False


def test_a_replaced_photo_page_is_remembered() -> None:
    shown = ShownMessages(max_messages=2)
    pages = [copy(f"p{n}", message_id=n) for n in range(3)]
    for message in pages:
        shown.replaced(message)
    assert [shown.is_replaced(message) for message in pages] == [False, True, True]
