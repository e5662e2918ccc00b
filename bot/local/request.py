"""The terminal chat's Bot API: python-telegram-bot's requests answered in this process.

`newsbot shell` builds the real Application with `.request(LocalRequest(...))`. This class
answers the few Bot API methods the bot calls there (getMe, setMyCommands, setMyDescription,
setMyShortDescription, sendMessage, sendPhoto, editMessageText, editMessageCaption,
editMessageMedia, editMessageReplyMarkup, deleteMessage, answerCallbackQuery, getChatMember)
for one private chat with one reader, and keeps the bot's messages as the reader sees them:
HTML read into plain text, inline keyboards, edits counted. `user_sends` and `press_button`
give the updates the reader's typing and tapping bring. Refusals have Telegram's status codes
and descriptions, so PTB raises its usual errors (a chat other than the reader's is "chat not
found", an edit that changes nothing "message is not modified"). It opens no socket and
accepts any token.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram.request import BaseRequest, RequestData

if TYPE_CHECKING:
    from telegram._utils.types import ODVInput

JSONDict = dict[str, Any]

MAX_TEXT_UTF16 = 4096
MAX_CAPTION_UTF16 = 1024
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_TAG = re.compile(r"<[^<>]*>")
_BOT_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,32})?")


class _Refused(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _message_id(p: JSONDict) -> int:
    try:
        return int(p.get("message_id", 0))
    except (TypeError, ValueError):
        return 0


def shown_text(text: str, parse_mode: str | None) -> str:
    """What a reader sees of `text`: tags read away and entities decoded for HTML, then trimmed."""
    if parse_mode is not None and parse_mode.lower() == "html":
        text = html.unescape(_TAG.sub("", text))
    return text.strip()


@dataclass
class ShownMessage:
    """One of the bot's messages as the reader sees it."""

    message_id: int
    text: str
    sent: str  # the text as sent (HTML), to tell an edit that changes nothing
    keyboard: list[list[JSONDict]]  # inline keyboard rows of button dicts
    date: int
    edit_count: int = 0
    edit_date: int | None = None
    photo: str | None = None  # a photo message: the URL it was sent with; `text` is its caption

    @property
    def callback_data(self) -> list[str]:
        return [
            str(b["callback_data"]) for row in self.keyboard for b in row if "callback_data" in b
        ]


class LocalRequest(BaseRequest):
    """One reader's private chat with the bot, answering PTB's Bot API calls in memory."""

    def __init__(self, user_id: int, first_name: str, username: str) -> None:
        self.user_id, self.first_name, self.username = user_id, first_name, username
        self.messages: list[ShownMessage] = []  # the bot's, oldest first
        self.callback_answers: dict[str, str] = {}  # query id -> the text it showed
        self._bot: JSONDict = {}
        self._message_ids = itertools.count(1)  # the reader's and the bot's, as in a real chat
        self._update_ids = itertools.count(1)
        self._query_ids = itertools.count(4_000_000_000_000_000_001)
        self._open_queries: set[str] = set()

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float | None:
        return None

    # --- the reader's side ----------------------------------------------------------------

    def user_sends(self, text: str) -> JSONDict:
        """The update for the reader sending `text`."""
        entities = [
            {"type": "bot_command", "offset": _utf16_len(text[: m.start()]), "length": len(m[0])}
            for m in _BOT_COMMAND.finditer(text)
        ]
        message: JSONDict = {
            **self._envelope(next(self._message_ids), self._user(), int(time.time())),
            "text": text,
        }
        if entities:
            message["entities"] = entities
        return {"update_id": next(self._update_ids), "message": message}

    def press_button(self, message_id: int, data: str) -> tuple[str, JSONDict]:
        """The callback query id and update for the reader tapping a button of `message_id`."""
        message = self._find(message_id)
        if message is None:
            raise ValueError(f"no bot message {message_id} in the chat")
        if data not in message.callback_data:
            raise ValueError(
                f"message {message_id} has no button with callback_data {data!r}; "
                f"it has {message.callback_data!r}"
            )
        query_id = str(next(self._query_ids))
        self._open_queries.add(query_id)
        query = {
            "id": query_id,
            "from": self._user(),
            "message": self._message_json(message),
            "chat_instance": str(self.user_id * 7919),
            "data": data,
        }
        return query_id, {"update_id": next(self._update_ids), "callback_query": query}

    # --- the bot's side -------------------------------------------------------------------

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        token, _, api_method = url.rpartition("/")
        bot_id = token.rpartition("/bot")[2].partition(":")[0]
        self._bot = {
            "id": int(bot_id) if bot_id.isdigit() else 1,
            "is_bot": True,
            "first_name": "NewsBot",
            "username": "newsbot",
        }
        params = request_data.parameters if request_data is not None else {}
        try:
            result = self._answer(api_method, params)
        except _Refused as refused:
            body = {"ok": False, "error_code": refused.code, "description": refused.description}
            return refused.code, json.dumps(body).encode()
        return 200, json.dumps({"ok": True, "result": result}, ensure_ascii=False).encode()

    def _answer(self, method: str, p: JSONDict) -> Any:
        if method == "getMe":
            return {**self._bot, "can_join_groups": True, "can_read_all_group_messages": False}
        if method in ("setMyCommands", "setMyDescription", "setMyShortDescription"):
            return True  # menus and descriptions: nothing to show in a terminal
        if method == "answerCallbackQuery":
            query_id = str(p.get("callback_query_id", ""))
            if query_id not in self._open_queries:
                raise _Refused(400, QUERY_TOO_OLD)
            self._open_queries.discard(query_id)
            self.callback_answers[query_id] = str(p.get("text", ""))
            return True
        self._check_chat(p)
        if method == "getChatMember":
            if p.get("user_id") != self.user_id:
                raise _Refused(400, "Bad Request: user not found")
            return {"status": "member", "user": self._user()}
        if method == "sendMessage":
            text, raw = self._text(p)
            now = int(time.time())
            message = ShownMessage(next(self._message_ids), text, raw, self._keyboard(p), now)
            self.messages.append(message)
            return self._message_json(message)
        if method == "sendPhoto":
            photo = str(p.get("photo", ""))
            text, raw = self._caption(p)
            now = int(time.time())
            message = ShownMessage(
                next(self._message_ids), text, raw, self._keyboard(p), now, photo=photo
            )
            self.messages.append(message)
            return self._message_json(message)
        if method == "editMessageText" and (found := self._find(_message_id(p))) and found.photo:
            raise _Refused(400, "Bad Request: there is no text in the message to edit")
        if method in ("editMessageText", "editMessageReplyMarkup", "editMessageCaption"):
            return self._edit(p, with_text=method != "editMessageReplyMarkup")
        if method == "editMessageMedia":
            return self._edit_media(p)
        if method == "deleteMessage":
            gone = self._find(_message_id(p))
            if gone is None:
                raise _Refused(400, "Bad Request: message to delete not found")
            self.messages.remove(gone)
            return True
        raise _Refused(400, f"Bad Request: method not supported in the terminal chat: {method}")

    def _edit(self, p: JSONDict, *, with_text: bool) -> JSONDict:
        message = self._find(_message_id(p))
        if message is None:
            raise _Refused(400, "Bad Request: message to edit not found")
        if not with_text:
            text, raw = message.text, message.sent
        else:
            text, raw = self._caption(p) if message.photo else self._text(p)
        keyboard = self._keyboard(p)
        if (raw, keyboard) == (message.sent, message.keyboard):
            raise _Refused(400, NOT_MODIFIED)
        message.text, message.sent, message.keyboard = text, raw, keyboard
        message.edit_count += 1
        message.edit_date = int(time.time())
        return self._message_json(message)

    def _edit_media(self, p: JSONDict) -> JSONDict:
        message = self._find(_message_id(p))
        if message is None:
            raise _Refused(400, "Bad Request: message to edit not found")
        media = p.get("media")
        if isinstance(media, str):
            media = json.loads(media)
        if not isinstance(media, dict) or media.get("type") != "photo":
            raise _Refused(400, "Bad Request: only photos are shown in the terminal chat")
        text, raw = self._caption(media)
        message.photo, message.text, message.sent = str(media.get("media", "")), text, raw
        message.keyboard = self._keyboard(p)
        message.edit_count += 1
        message.edit_date = int(time.time())
        return self._message_json(message)

    @staticmethod
    def _caption(p: JSONDict) -> tuple[str, str]:
        raw = str(p.get("caption", ""))
        text = shown_text(raw, p.get("parse_mode"))
        if _utf16_len(text) > MAX_CAPTION_UTF16:
            raise _Refused(400, "Bad Request: message caption is too long")
        return text, raw

    def _check_chat(self, p: JSONDict) -> None:
        if p.get("chat_id") is None:
            raise _Refused(400, "Bad Request: chat_id is empty")
        if str(p["chat_id"]) != str(self.user_id):
            raise _Refused(400, "Bad Request: chat not found")

    @staticmethod
    def _text(p: JSONDict) -> tuple[str, str]:
        raw = str(p.get("text", ""))
        text = shown_text(raw, p.get("parse_mode"))
        if not text:
            raise _Refused(400, "Bad Request: message text is empty")
        if _utf16_len(text) > MAX_TEXT_UTF16:
            raise _Refused(400, "Bad Request: message is too long")
        return text, raw

    @staticmethod
    def _keyboard(p: JSONDict) -> list[list[JSONDict]]:
        markup = p.get("reply_markup")
        rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
        return [[dict(button) for button in row] for row in rows]

    def _find(self, message_id: int) -> ShownMessage | None:
        return next((m for m in self.messages if m.message_id == message_id), None)

    def _user(self) -> JSONDict:
        name = {"first_name": self.first_name, "username": self.username}
        return {"id": self.user_id, "is_bot": False, **name}

    def _envelope(self, message_id: int, sender: JSONDict, date: int) -> JSONDict:
        chat = {"id": self.user_id, "type": "private", "first_name": self.first_name}
        return {"message_id": message_id, "from": sender, "chat": chat, "date": date}

    def _message_json(self, message: ShownMessage) -> JSONDict:
        out = {**self._envelope(message.message_id, self._bot, message.date)}
        if message.photo is not None:
            unique = f"local{abs(hash(message.photo)) % 10**12}"
            size = {"file_id": unique, "file_unique_id": unique, "width": 1280, "height": 720}
            out |= {"photo": [size], "caption": message.text}
        else:
            out["text"] = message.text
        if message.edit_date is not None:
            out["edit_date"] = message.edit_date
        if message.keyboard:
            out["reply_markup"] = {"inline_keyboard": message.keyboard}
        return out
