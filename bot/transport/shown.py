"""What the bot's own edits made its messages show, for button presses that saw them before.

A callback query carries the message as it was when the button was pressed, so two quick taps
both carry the message from before the first tap's edit. Judged by that copy, the second tap
either repeats the first one's edit, which Telegram refuses ("message is not modified"), or
skips an edit it needs: a section tapped twice keeps its ✓ though it is no longer followed.

So every edit is remembered with the copies of the message it replaced (text or caption,
photo, buttons and Telegram's edit date); a press carrying one of those copies is judged
against what the edit made the message show. A copy the bot did not replace itself (another
instance's edit, a message from before a restart) is taken as it is. Bounded: the messages
edited longest ago are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

from telegram import InlineKeyboardMarkup, Message

MAX_MESSAGES = 10_000
MAX_COPIES = 8  # outdated copies kept per message


@dataclass(frozen=True)
class Content:
    """What a message shows: its text (a photo's caption; as read, without markup), its inline
    keyboard, and its photo: None for a text message; for a photo the URL the bot's edit put
    there, or, in a copy Telegram gave, "file:" and the photo's file_unique_id (which never
    equals a URL: the bot cannot tell which URL that photo came from)."""

    text: str
    keyboard: InlineKeyboardMarkup | None
    photo: str | None = None

    @property
    def is_photo(self) -> bool:
        return self.photo is not None


@dataclass(frozen=True)
class _Copy:
    content: Content
    edit_date: datetime | None


def _copy(message: Message, *, photo: str | None = None) -> _Copy:
    keyboard = (
        message.reply_markup if isinstance(message.reply_markup, InlineKeyboardMarkup) else None
    )
    if message.photo:
        shown = photo or f"file:{message.photo[-1].file_unique_id}"
        return _Copy(Content((message.caption or "").strip(), keyboard, shown), message.edit_date)
    return _Copy(Content((message.text or "").strip(), keyboard), message.edit_date)


@dataclass
class _Edited:
    latest: _Copy
    outdated: list[_Copy] = field(default_factory=list)


class ShownMessages:
    """The bot's latest edit of each message, and the copies of it that edit outdated."""

    def __init__(self, max_messages: int = MAX_MESSAGES) -> None:
        self._max = max_messages
        self._edited: OrderedDict[tuple[int, int], _Edited] = OrderedDict()
        self._replaced: OrderedDict[tuple[int, int], None] = OrderedDict()

    def replaced(self, message: Message) -> None:
        """The bot replaced this message by a new one (a photo page that turned to text)."""
        self._replaced[(message.chat_id, message.message_id)] = None
        while len(self._replaced) > self._max:
            self._replaced.popitem(last=False)

    def is_replaced(self, message: Message) -> bool:
        """Whether a press on this message came after the bot replaced it (a double tap)."""
        return (message.chat_id, message.message_id) in self._replaced

    def current(self, pressed_on: Message) -> Content:
        """What the message shows now, given the copy a callback query carried."""
        copy = _copy(pressed_on)
        edited = self._edited.get((pressed_on.chat_id, pressed_on.message_id))
        if edited is not None and copy in edited.outdated:
            return edited.latest.content
        return copy.content

    def edited(self, pressed_on: Message, result: Message, *, photo: str | None = None) -> None:
        """The bot edited the message a press carried as `pressed_on`; it now is `result`
        (showing the photo at URL `photo`, when the edit put one there)."""
        key = (pressed_on.chat_id, pressed_on.message_id)
        edited = self._edited.pop(key, None)
        outdated = [*(edited.outdated if edited else []), _copy(pressed_on)]
        if edited is not None:
            outdated.append(edited.latest)
        self._edited[key] = _Edited(_copy(result, photo=photo), outdated[-MAX_COPIES:])
        while len(self._edited) > self._max:
            self._edited.popitem(last=False)
