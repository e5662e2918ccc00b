"""The shapes a service and the Telegram adapter exchange: a reader's request, replies
(Telegram-HTML text plus buttons) and what a button press does.

Buttons are plain data here; the Telegram adapter turns them into inline keyboards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Button:
    text: str
    data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Reply:
    """A message: Telegram-HTML text and buttons; with `photo` (an http(s) URL) it goes out as
    that photo with the text as its caption (then within 1,024 visible characters)."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    photo: str | None = None


@dataclass(frozen=True)
class ButtonAnswer:
    """What a button press does: an edit of its message (or none), a new message (or none)
    and a short answer."""

    edit: Reply | None = None
    send: Reply | None = None
    answer: str | None = None
    keyboard_only: bool = False  # the edit changes the buttons only; the text stays as it is


@dataclass(frozen=True)
class Defaults:
    """What a new chat starts with (from settings)."""

    timezone: str = "UTC"
    digest_time: str = "08:00"


@dataclass(frozen=True)
class ReaderRequest:
    """A reader's command or button press as the domain sees it."""

    now: datetime
    args: Sequence[str] = ()
    defaults: Defaults = field(default_factory=Defaults)
    per_section: int = 5
    max_keywords: int = 20  # /follow and /mute phrases a chat may have in all

    @property
    def text(self) -> str:
        return " ".join(self.args).strip()
