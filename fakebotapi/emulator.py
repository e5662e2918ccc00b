"""An in-memory Telegram Bot API that refuses what Telegram refuses.

`BotApiEmulator` holds users, chats, messages and pending updates as plain JSON dicts and answers
Bot API calls through `call(method, params)`. It knows no transport: the loopback HTTP server in
`fakebotapi/server.py` and `fakebotapi.request.EmulatorRequest` (in-process, no sockets) both
wrap it. Tests drive the user's side with `user_sends`, `user_edits`, `press_button` and, in a
channel (`add_channel`), `post_in_channel` and `edit_channel_post`, then assert on what the bot
sent with `messages`, `last_message` and `wait_for`.

Method names and required parameters come from `fakebotapi/botapi_methods.json`, a compact copy
of the official method list; refusals carry Telegram's own codes and descriptions.
Messages sent with parse_mode HTML are read by `fakebotapi.telegram_html`.

Inline mode: `user_inline_query` is a user typing `@bot words` (an `inline_query` update);
answerInlineQuery is checked as Telegram checks it (answered once and in time, at most 50
results with unique ids, the required fields, the message text parsed) and what the user is
offered lands in `inline_answers`.

Photos: sendPhoto takes a photo as an http(s) URL (or a file_id it issued) and stores it as
`StoredMessage.photo`, its caption checked like text but against 1,024 characters;
editMessageMedia turns a text message into a photo or swaps a photo, never the other way.
The emulator never fetches a URL: `refuse_images(prefix)` makes it refuse matching URLs as
Telegram refuses an image it cannot use, and URLs on a host under ".invalid" are always
refused.

Beyond single calls it models what matters with several instances and a lossy network:
setWebhook stores what Telegram stores (`webhook`), and a transport that delivers webhooks reads
`updates_for_delivery()` and reports back with `confirm_update` / `record_webhook_error`;
`NetworkFaults` and `withhold_next` decide which calls get a 502 or a 429 or lose their answer
(the call raises AnswerWithheld, which a transport turns into a dropped connection); `conflicts`
counts pollers that ended each other; `RateLimits.private_burst` lets a private chat take short
bursts.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import hashlib
import importlib.resources
import json
import math
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar
from urllib.parse import urlsplit

from fakebotapi.telegram_html import parse_html_entities, strip_entities, utf16_len

JSONDict = dict[str, Any]
_T = TypeVar("_T")

TEST_TOKEN = "123456789:TEST-emulator-token"  # noqa: S105 - a fake bot's token, not a secret
MAX_TEXT_UTF16 = 4096
MAX_CAPTION_UTF16 = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_BUTTONS = 100
MAX_BUTTONS_PER_ROW = 8
MAX_CALLBACK_ANSWER_TEXT = 200
CALLBACK_ANSWER_DEADLINE = 15.0
INLINE_ANSWER_DEADLINE = 10.0  # seconds a client waits for the answer to an inline query
MAX_INLINE_RESULTS = 50
MAX_INLINE_QUERY = 256  # characters a user can type after the bot's name
MAX_RESULT_ID_BYTES = 64
MAX_NEXT_OFFSET_BYTES = 64
ARTICLE_REQUIRED = ("type", "id", "title", "input_message_content")
"""InlineQueryResultArticle's required fields (api.json; checked by a unit test)."""
TEXT_CONTENT_REQUIRED = ("message_text",)
"""InputTextMessageContent's required fields (api.json)."""

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
GET_UPDATES_CONFLICT = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
    "running"
)
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)
WEBHOOK_SET_CONFLICT = "Conflict: terminated by setWebhook request"
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
WRONG_FILE = "Bad Request: wrong file identifier/HTTP URL specified"
URL_CONTENT_FAILED = "Bad Request: failed to get HTTP URL content"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
BAD_GATEWAY = "Bad Gateway"
WEBHOOK_PORTS = frozenset({80, 88, 443, 8443})
DEFAULT_MAX_CONNECTIONS = 40
MAX_SECRET_TOKEN = 256
UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "message_reaction",
        "message_reaction_count",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
# Telegram sends these only to bots that ask for them in allowed_updates.
OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]*")

WithholdMode = Literal["drop", "hang"]


class ApiError(Exception):
    """A refusal as Telegram sends it: HTTP status, description and optional parameters."""

    def __init__(
        self,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def to_json(self) -> JSONDict:
        """The response body Telegram sends with this error."""
        body: JSONDict = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        parameters: JSONDict = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            body["parameters"] = parameters
        return body

    def copy(self) -> ApiError:
        return ApiError(
            self.error_code, self.description, self.retry_after, self.migrate_to_chat_id
        )

    def __repr__(self) -> str:
        return f"ApiError({self.error_code}, {self.description!r})"


def too_many_requests(retry_after: int) -> ApiError:
    """Telegram's flood-control refusal."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


# --- The official method list -----------------------------------------------------------------


@dataclass(frozen=True)
class MethodSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]


@functools.cache
def method_specs() -> dict[str, MethodSpec]:
    """Every Bot API method by its lower-cased name (Telegram matches names case-insensitively)."""
    raw = json.loads(
        importlib.resources.files("fakebotapi").joinpath("botapi_methods.json").read_text("utf-8")
    )
    return {
        name.lower(): MethodSpec(name, tuple(spec["required"]), tuple(spec["optional"]))
        for name, spec in raw.items()
    }


# --- State -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimits:
    """Telegram's flood limits. Each window admits `burst` calls beyond its limit; None disables.

    With `private_burst` above 1 a private chat's limit is a token bucket instead of a window:
    it refills at `private_per_sec` and holds `private_burst` (plus `burst`) sends, so a reply of
    a few messages at once passes while sustained sending above the rate is refused.
    """

    overall_per_sec: int | None = 30
    private_per_sec: int | None = 1
    group_per_min: int | None = 20
    burst: int = 0
    private_burst: int = 1

    def __post_init__(self) -> None:
        if self.private_burst < 1:
            raise ValueError("private_burst must be at least 1")


@dataclass(frozen=True)
class NetworkFaults:
    """A lossy network between the bot and Telegram, drawn from `random.Random(seed)`.

    Of the calls to `methods`, a fraction `bad_gateway_rate` is refused with 502 Bad Gateway
    before Telegram looks at it (nothing is stored), and a fraction `unanswered_rate` is carried
    out but its answer never reaches the bot: "drop" closes the connection, "hang" holds it open
    until the client gives up. A fraction `flood_rate` is refused with 429 Too Many Requests and
    `flood_retry_after` seconds to wait (a flood-control storm, whatever the real rate limits
    say); nothing is stored either.
    """

    bad_gateway_rate: float = 0.0
    unanswered_rate: float = 0.0
    unanswered_mode: WithholdMode = "drop"
    seed: int | None = 0
    methods: frozenset[str] = frozenset({"sendMessage"})
    flood_rate: float = 0.0
    flood_retry_after: int = 30

    def __post_init__(self) -> None:
        rates = (self.bad_gateway_rate, self.unanswered_rate, self.flood_rate)
        if not all(0.0 <= rate <= 1.0 for rate in rates) or sum(rates) > 1.0:
            raise ValueError("fault rates must lie in [0, 1] and add up to at most 1")
        if self.unanswered_mode not in ("drop", "hang"):
            raise ValueError(f"unknown unanswered_mode {self.unanswered_mode!r}")
        if self.flood_retry_after < 1:
            raise ValueError("flood_retry_after must be at least 1 second")


class SentRecord(NamedTuple):
    method: str
    chat_id: int
    time: float
    answered: bool = True  # False when the network lost Telegram's answer (see NetworkFaults)


class Unanswered(NamedTuple):
    """A message Telegram delivered whose answer the bot never got."""

    chat_id: int
    message_id: int


@dataclass
class CallRecord:
    method: str
    params: JSONDict
    time: float
    error: ApiError | None = None
    withheld: WithholdMode | None = None  # the call was carried out but its answer lost


@dataclass(frozen=True)
class WebhookConfig:
    """What setWebhook stored. `allowed_updates` None means Telegram's default update types."""

    url: str
    secret_token: str | None = None
    allowed_updates: tuple[str, ...] | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def allows(self, kind: str) -> bool:
        if self.allowed_updates is None:
            return kind not in OPT_IN_UPDATE_TYPES
        return kind in self.allowed_updates


class AnswerWithheld(ConnectionError):
    """Raised by `BotApiEmulator.call` for a call carried out whose answer the network loses.

    A transport turns it into what the client would see: the HTTP server closes the connection
    without a response. In "hang" mode `call` first waits until the caller gives up (is
    cancelled) or `release_held_answers()` is called.
    """

    def __init__(self, method: str, mode: WithholdMode, result: Any) -> None:
        super().__init__(f"the answer to {method} was lost ({mode})")
        self.method = method
        self.mode = mode
        self.result = result


def webhook_queue(update: Mapping[str, Any]) -> tuple[str, int]:
    """The queue Telegram delivers `update` in over a webhook: one request at a time per queue.

    Messages queue by chat, callback queries by the user who pressed (as the Bot API server does),
    so two updates of one chat never arrive at once, while different chats' updates do.
    """
    if "callback_query" in update:
        return "callback_query", int(update["callback_query"]["from"]["id"])
    for payload in update.values():
        if isinstance(payload, dict) and isinstance(payload.get("chat"), dict):
            return "chat", int(payload["chat"]["id"])
    return "update", int(update["update_id"])


@dataclass
class StoredMessage:
    """One message as the chat shows it: `text` is what the user reads, `raw_text` what was sent.

    A photo message has `photo` (the URL or file_id it was sent with); its `text`, `raw_text`
    and `entities` are then its caption's (`caption` reads it; Telegram's JSON calls them
    caption and caption_entities).
    """

    chat_id: int
    message_id: int
    sender_id: int
    from_bot: bool
    raw_text: str
    text: str
    entities: list[JSONDict]
    parse_mode: str | None
    reply_markup: JSONDict | None
    date: int
    reply_to_message_id: int | None = None
    edit_count: int = 0
    edit_date: int | None = None
    deleted: bool = False
    photo: str | None = None
    thread_id: int | None = None  # the forum topic it is in (None: General, or no forum)

    @property
    def caption(self) -> str | None:
        """A photo's caption as the user reads it ("" for none); None for a text message."""
        return self.text if self.photo is not None else None

    @property
    def buttons(self) -> list[JSONDict]:
        """The inline keyboard's buttons, row after row."""
        if self.reply_markup is None:
            return []
        rows = self.reply_markup.get("inline_keyboard", [])
        return [button for row in rows for button in row]

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for b in self.buttons if "callback_data" in b]


@dataclass
class _User:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = None
    blocked: bool = False
    deactivated: bool = False

    def to_json(self) -> JSONDict:
        user: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class _Topic:
    """A forum topic: its thread id is the id of the service message that opened it."""

    thread_id: int
    name: str
    icon_color: int = 7322096
    closed: bool = False
    deleted: bool = False


@dataclass
class _Chat:
    id: int
    type: str  # "private", "group", "supergroup" or "channel"
    title: str | None = None
    username: str | None = None
    creator: int | None = None
    admins: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    bot_status: str = "member"  # "member", "administrator", "restricted", "left" or "kicked"
    migrated_to: int | None = None
    messages: list[StoredMessage] = field(default_factory=list)
    next_message_id: int = 1
    is_forum: bool = False
    topics: dict[int, _Topic] = field(default_factory=dict)  # by message_thread_id
    # the bot's administrator rights that vary here (the others are as _member_json says)
    bot_can_post: bool = True  # a channel's can_post_messages
    bot_can_manage_topics: bool = False

    def find(self, message_id: int) -> StoredMessage | None:
        for message in reversed(self.messages):
            if message.message_id == message_id and not message.deleted:
                return message
        return None

    def has_member(self, user_id: int) -> bool:
        return user_id == self.creator or user_id in self.admins or user_id in self.members


@dataclass
class _FailureRule:
    method: str | None
    chat_id: int | None
    error: ApiError
    times: int


@dataclass
class _WithholdRule:
    method: str | None
    chat_id: int | None
    mode: WithholdMode
    times: int


@dataclass
class _PendingQuery:
    created: float
    answered: bool = False


_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "media",
        "link_preview_options",
        "reply_parameters",
        "allowed_updates",
        "results",
        "button",
    }
)
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
_BUTTON_URL_SCHEMES = frozenset({"http", "https", "tg", "ton"})
_URL_SCHEME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:(?!\d)")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
_BOT_COMMAND_RE = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{1,32})?")
_RATE_LIMITED = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
    }
)
GENERAL_TOPIC = 1
"""The General topic's message_thread_id in a forum (messages there carry none)."""
MAX_TOPIC_NAME = 128
TOPIC_COLORS = (7322096, 16766590, 13338331, 9367192, 16749490, 16478047)
"""The topic icon colours createForumTopic accepts (the Bot API lists these six)."""
_RESTRICTED_RIGHTS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)
DELETE_WINDOW = 48 * 3600
"""Seconds after sending during which a bot may delete a message (but as an administrator of
a supergroup or channel, who may delete any)."""
CANNOT_DELETE = "Bad Request: message can't be deleted for everyone"


class _Params:
    """Typed access to call parameters that may arrive form-encoded (strings) or as JSON."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = {k: v for k, v in raw.items() if v is not None}

    def has(self, name: str) -> bool:
        return name in self.raw and self.raw[name] != ""

    def get_str(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise ApiError(400, f'Bad Request: field "{name}" must be of type String')

    def get_int(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def get_float(self, name: str) -> float | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def get_bool(self, name: str) -> bool:
        value = self.raw.get(name)
        if isinstance(value, str):
            return value.strip().lower() in ("true", "1")
        return bool(value)

    def get_json(self, name: str) -> Any:
        value = self.raw.get(name)
        if isinstance(value, str):
            if value == "":
                return None
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
        return value

    def chat_id(self) -> int | str | None:
        value = self.raw.get("chat_id")
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        try:
            return int(text)
        except ValueError:
            return text

    def normalized(self) -> JSONDict:
        """The parameters with JSON strings decoded, for the call log."""
        out: JSONDict = {}
        for name, value in self.raw.items():
            if name in _JSON_PARAMS:
                try:
                    out[name] = self.get_json(name)
                except ApiError:
                    out[name] = value
            else:
                out[name] = value
        return out


class _TokenBucket:
    """Refills at `rate` a second up to `capacity`; each send takes one token."""

    _EPSILON = 1e-9  # float sums of clock steps must not refuse a send that is exactly due

    def __init__(self, rate: float, capacity: int, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = float(capacity)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token is there; 0 if one is there now."""
        self._refill(now)
        missing = 1.0 - self.tokens
        if missing <= self._EPSILON:
            return 0.0
        return missing / self.rate if self.rate > 0 else 1.0

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1.0


class _RateLimiter:
    def __init__(self, limits: RateLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self.overall: deque[float] = deque()
        self.per_chat: dict[int, deque[float]] = {}
        self.buckets: dict[int, _TokenBucket] = {}

    def _bucket(self, chat_id: int, now: float) -> _TokenBucket | None:
        """A private chat's token bucket, when its limit is one (private_burst above 1)."""
        limits = self.limits
        if chat_id <= 0 or limits.private_per_sec is None or limits.private_burst <= 1:
            return None
        bucket = self.buckets.get(chat_id)
        if bucket is None:
            capacity = limits.private_burst + limits.burst
            bucket = self.buckets[chat_id] = _TokenBucket(limits.private_per_sec, capacity, now)
        return bucket

    def _windows(self, chat_id: int) -> list[tuple[deque[float], float, int]]:
        limits, windows = self.limits, []
        if limits.overall_per_sec is not None:
            windows.append((self.overall, 1.0, limits.overall_per_sec + limits.burst))
        if chat_id > 0 and limits.private_per_sec is not None and limits.private_burst <= 1:
            chat = self.per_chat.setdefault(chat_id, deque())
            windows.append((chat, 1.0, limits.private_per_sec + limits.burst))
        if chat_id < 0 and limits.group_per_min is not None:
            chat = self.per_chat.setdefault(chat_id, deque())
            windows.append((chat, 60.0, limits.group_per_min + limits.burst))
        return windows

    def check(self, chat_id: int) -> None:
        now = self.clock()
        wait = 0.0
        for stamps, window, limit in self._windows(chat_id):
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) >= limit:
                frees_at = stamps[len(stamps) - limit] + window if limit > 0 else now + window
                wait = max(wait, frees_at - now)
        bucket = self._bucket(chat_id, now)
        if bucket is not None:
            wait = max(wait, bucket.wait(now))
        if wait > 0:
            raise too_many_requests(max(1, math.ceil(wait)))

    def record(self, chat_id: int) -> None:
        now = self.clock()
        self.overall.append(now)
        bucket = self._bucket(chat_id, now)
        if bucket is not None:
            bucket.take(now)
        else:
            self.per_chat.setdefault(chat_id, deque()).append(now)


# --- The emulator ------------------------------------------------------------------------------


class BotApiEmulator:
    """A Telegram Bot API in memory. See the module docstring for how tests use it."""

    def __init__(
        self,
        *,
        token: str = TEST_TOKEN,
        bot_username: str = "newsbot_test_bot",
        bot_first_name: str = "NewsBot",
        limits: RateLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        privacy_mode: bool = True,
        faults: NetworkFaults | None = None,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.limits = limits
        self.privacy_mode = privacy_mode
        self._clock = clock
        self._wall_clock = wall_clock
        self._limiter = _RateLimiter(limits, clock) if limits is not None else None

        self._users: dict[int, _User] = {}
        self._chats: dict[int, _Chat] = {}
        self._updates: list[JSONDict] = []
        self._next_update_id = 1
        self._poller: asyncio.Future[str] | None = None
        self._watchers: set[asyncio.Future[None]] = set()
        self._failures: list[_FailureRule] = []
        self._queries: dict[str, _PendingQuery] = {}
        self._next_query = 1
        self._webhook: WebhookConfig | None = None
        self._webhook_error: tuple[int, str] | None = None
        self._update_listeners: list[Callable[[], None]] = []
        self._commands: dict[tuple[str, str], list[JSONDict]] = {}
        # (kind: "description" or "short_description", language_code or ""): the text
        self._descriptions: dict[tuple[str, str], str] = {}
        self._withholds: list[_WithholdRule] = []
        self._held: set[asyncio.Future[None]] = set()
        self._refused_images: list[str] = []
        self._faults = faults if faults is not None else NetworkFaults()
        self._rng = random.Random(self._faults.seed)  # noqa: S311 - reproducible faults, not crypto

        self.calls: list[CallRecord] = []
        self.sent_log: list[SentRecord] = []
        self.chat_actions: list[tuple[int, str]] = []
        self.callback_answers: dict[str, JSONDict] = {}
        self._inline_queries: dict[str, _PendingQuery] = {}
        self.inline_answers: dict[str, JSONDict] = {}  # query id: what the user is offered
        self.too_many_requests = 0
        self.bad_gateways = 0  # calls answered 502 Bad Gateway, drawn or injected
        self.conflicts = 0  # getUpdates calls ended by "terminated by other getUpdates request"
        self.unanswered: list[Unanswered] = []  # messages sent whose answer was withheld

        self._handlers: dict[str, Callable[[_Params], Any]] = {
            "getMe": self._get_me,
            "logOut": self._ok,
            "close": self._ok,
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "setMyDescription": self._set_my_description,
            "getMyDescription": self._get_my_description,
            "setMyShortDescription": self._set_my_short_description,
            "getMyShortDescription": self._get_my_short_description,
            "sendMessage": self._send_message,
            "sendPhoto": self._send_photo,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageMedia": self._edit_message_media,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "answerInlineQuery": self._answer_inline_query,
            "sendChatAction": self._send_chat_action,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "createForumTopic": self._create_forum_topic,
        }

    # --- the Bot API -----------------------------------------------------------------------

    @property
    def emulated_methods(self) -> frozenset[str]:
        return frozenset({*self._handlers, "getUpdates"})

    def authorize(self, token: str) -> None:
        """Refuses a token other than this bot's, as Telegram does."""
        if token != self.token:
            raise ApiError(401, "Unauthorized")

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """The `result` of a Bot API call, or ApiError with Telegram's code and description.

        Raises AnswerWithheld instead of returning when the network loses the answer (see
        `set_faults` and `withhold_next`); in "hang" mode only once the caller gives up.
        """
        spec = method_specs().get(method.lower())
        p = _Params(params or {})
        record = CallRecord(spec.name if spec else method, p.normalized(), self._clock())
        self.calls.append(record)
        self._notify()
        sent_before = len(self.sent_log)
        try:
            if spec is None:
                raise ApiError(404, "Not Found")
            self._raise_injected(spec.name, p)
            drawn = self._draw_fault(spec.name)
            self._check_required(spec, p)
            if spec.name == "getUpdates":
                result = await self._get_updates(p)
            else:
                handler = self._handlers.get(spec.name)
                if handler is None:
                    raise ApiError(
                        400, f"Bad Request: method not supported by the emulator: {spec.name}"
                    )
                result = handler(p)
        except ApiError as error:
            record.error = error
            if error.error_code == 429:
                self.too_many_requests += 1
            elif error.error_code == 502:
                self.bad_gateways += 1
            elif error.description == GET_UPDATES_CONFLICT:
                self.conflicts += 1
            raise
        finally:
            self._notify()
        mode = self._take_withhold(spec.name, p) or drawn
        if mode is None:
            return result
        record.withheld = mode
        self._mark_unanswered(spec.name, sent_before, result)
        if mode == "hang":
            await self._hold()
        raise AnswerWithheld(spec.name, mode, result)

    def fail_next(
        self,
        method: str | None = None,
        chat_id: int | None = None,
        *,
        error: ApiError,
        times: int = 1,
    ) -> None:
        """Makes the next `times` calls matching `method` and `chat_id` fail with `error`.

        A 5xx error (e.g. ApiError(502, "Bad Gateway")) is answered with that HTTP status.
        """
        self._failures.append(_FailureRule(self._method_name(method), chat_id, error, times))

    def withhold_next(
        self,
        method: str | None = None,
        chat_id: int | None = None,
        *,
        times: int = 1,
        mode: WithholdMode = "drop",
    ) -> None:
        """Carries out the next `times` successful calls matching `method` and `chat_id`, but
        loses their answers: "drop" closes the connection, "hang" holds it until the client gives
        up. Refused calls do not count."""
        if mode not in ("drop", "hang"):
            raise ValueError(f"unknown mode {mode!r}")
        self._withholds.append(_WithholdRule(self._method_name(method), chat_id, mode, times))

    def refuse_images(self, *prefixes: str) -> None:
        """Make sendPhoto and editMessageMedia refuse photos whose URL starts with one of
        `prefixes`, with Telegram's 400 "wrong file identifier/HTTP URL specified" (the image
        Telegram could not fetch or use). Photos on a host under ".invalid" (RFC 2606: it can
        never resolve) are always refused, with "failed to get HTTP URL content". The
        emulator itself never fetches a URL."""
        self._refused_images.extend(prefixes)

    def set_faults(self, faults: NetworkFaults | None) -> None:
        """Replaces the drawn network faults (None: a faultless network) and reseeds the draw."""
        self._faults = faults if faults is not None else NetworkFaults()
        self._rng = random.Random(self._faults.seed)  # noqa: S311 - reproducible faults, not crypto

    @property
    def faults(self) -> NetworkFaults:
        return self._faults

    def release_pollers(self) -> None:
        """Ends a waiting getUpdates long poll now, with whatever updates there are."""
        if self._poller is not None and not self._poller.done():
            self._poller.set_result("closed")

    def release_held_answers(self) -> None:
        """Ends every call held open in "hang" mode now (a server stopping calls this)."""
        for waiter in self._held:
            if not waiter.done():
                waiter.set_result(None)

    # --- webhooks: what a delivering transport reads and reports ------------------------------

    @property
    def webhook(self) -> WebhookConfig | None:
        """The webhook set with setWebhook, or None while the bot polls."""
        return self._webhook

    def updates_for_delivery(self) -> Iterator[JSONDict]:
        """The pending updates in update_id order, as they are (do not change them)."""
        return iter(self._updates)

    def confirm_update(self, update_id: int) -> None:
        """The webhook answered 2xx for this update: Telegram forgets it."""
        for index, update in enumerate(self._updates):
            if update["update_id"] == update_id:
                del self._updates[index]
                self._changed_updates()
                break
        self._notify()

    def record_webhook_error(self, message: str) -> None:
        """A webhook delivery failed: getWebhookInfo shows it as last_error_date/message."""
        self._webhook_error = (int(self._wall_clock()), message)
        self._notify()

    def on_updates_changed(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Calls `listener()` whenever an update is queued or removed or the webhook changes;
        returns a function that unsubscribes it."""
        self._update_listeners.append(listener)
        return lambda: self._update_listeners.remove(listener)

    # --- the world: users, chats and what they do -------------------------------------------

    def add_user(
        self,
        user_id: int,
        first_name: str = "Test",
        username: str | None = None,
        *,
        last_name: str | None = None,
        language_code: str | None = None,
        started: bool = False,
    ) -> JSONDict:
        """A Telegram user. With started=True their private chat exists as if they had written."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = _User(user_id, first_name, username, last_name, language_code)
        self._users[user_id] = user
        if started:
            self._private_chat(user_id)
        return user.to_json()

    def add_group(
        self,
        chat_id: int,
        title: str,
        admins: list[int] | tuple[int, ...] = (),
        members: list[int] | tuple[int, ...] = (),
        *,
        supergroup: bool = False,
        creator: int | None = None,
        bot_is_admin: bool = False,
        forum: bool = False,
        bot_can_manage_topics: bool = False,
    ) -> JSONDict:
        """A group the bot is in. Without `creator`, the first admin created it.

        `forum` makes it a forum supergroup (topics on); the bot, if an administrator, may
        create and manage topics with `bot_can_manage_topics`. Unknown user ids become users
        named "User <id>".
        """
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        admin_ids = list(admins)
        if creator is None and admin_ids:
            creator = admin_ids.pop(0)
        for user_id in [*admin_ids, *members, *([creator] if creator else [])]:
            if user_id not in self._users:
                self.add_user(user_id, f"User {user_id}")
        chat = _Chat(
            chat_id,
            "supergroup" if supergroup or forum else "group",
            title=title,
            creator=creator,
            admins=admin_ids,
            members=[m for m in members if m != creator and m not in admin_ids],
            bot_status="administrator" if bot_is_admin else "member",
            is_forum=forum,
            bot_can_manage_topics=bot_is_admin and bot_can_manage_topics,
            # a forum's first message opened its General topic
            next_message_id=GENERAL_TOPIC + 1 if forum else 1,
        )
        self._chats[chat_id] = chat
        return self._chat_json(chat)

    def add_channel(
        self,
        chat_id: int,
        title: str,
        admins: list[int] | tuple[int, ...] = (),
        subscribers: list[int] | tuple[int, ...] = (),
        *,
        username: str | None = None,
    ) -> JSONDict:
        """A channel with the bot among its administrators (Telegram lets a bot into a channel
        only as one). Without a creator given, the first admin created it; `subscribers` read it.

        Unknown user ids become users named "User <id>". Admins post with `post_in_channel`;
        a post carries the channel as `sender_chat` and no `from`, as Telegram sends it.
        """
        if chat_id >= 0:
            raise ValueError("channel chat ids are negative")
        admin_ids = list(admins)
        creator = admin_ids.pop(0) if admin_ids else None
        for user_id in [*admin_ids, *subscribers, *([creator] if creator else [])]:
            if user_id not in self._users:
                self.add_user(user_id, f"User {user_id}")
        chat = _Chat(
            chat_id,
            "channel",
            title=title,
            username=username,
            creator=creator,
            admins=admin_ids,
            members=[m for m in subscribers if m != creator and m not in admin_ids],
            bot_status="administrator",
        )
        self._chats[chat_id] = chat
        return self._chat_json(chat)

    def has_user(self, user_id: int) -> bool:
        return user_id in self._users

    def block(self, user_id: int) -> None:
        self._user(user_id).blocked = True

    def unblock(self, user_id: int) -> None:
        self._user(user_id).blocked = False

    def deactivate(self, user_id: int) -> None:
        self._user(user_id).deactivated = True

    def kick_bot(self, chat_id: int) -> None:
        self._group(chat_id).bot_status = "kicked"

    # --- the bot's rights, as an administrator changes them (each sends my_chat_member) ------

    def promote_bot(
        self,
        chat_id: int,
        *,
        by: int | None = None,
        can_post_messages: bool = True,
        can_manage_topics: bool = False,
    ) -> JSONDict:
        """An administrator makes the bot an administrator (or changes its rights)."""
        chat = self._group(chat_id)
        return self._bot_member_changes(
            chat,
            by,
            status="administrator",
            can_post=can_post_messages,
            can_manage_topics=can_manage_topics and chat.is_forum,
        )

    def demote_bot(self, chat_id: int, *, by: int | None = None, notify: bool = True) -> JSONDict:
        """The bot loses its rights: a channel keeps it as an administrator who may not post
        (can_post_messages false); a group makes it a member who may not send messages.
        With notify=False the bot never gets the update (as when it was dropped: a bot
        started with drop_pending_updates, or away for more than a day)."""
        chat = self._group(chat_id)
        status = "administrator" if chat.type == "channel" else "restricted"
        return self._bot_member_changes(chat, by, status=status, can_post=False, notify=notify)

    def remove_bot(self, chat_id: int, *, by: int | None = None, ban: bool = True) -> JSONDict:
        """An administrator removes the bot (banned: "kicked"; or just removed: "left")."""
        return self._bot_member_changes(
            self._group(chat_id), by, status="kicked" if ban else "left", can_post=False
        )

    def _bot_member_changes(
        self,
        chat: _Chat,
        by: int | None,
        *,
        status: str,
        can_post: bool,
        can_manage_topics: bool = False,
        notify: bool = True,
    ) -> JSONDict:
        old = self._member_json(chat, self.bot_id)
        chat.bot_status = status
        chat.bot_can_post = can_post
        chat.bot_can_manage_topics = can_manage_topics
        actor = by if by is not None else chat.creator
        if actor is None or actor not in self._users:
            raise ValueError(f"chat {chat.id} has no creator: say who changes the bot's rights")
        payload: JSONDict = {
            "chat": self._chat_json(chat),
            "from": self._users[actor].to_json(),
            "date": int(self._wall_clock()),
            "old_chat_member": old,
            "new_chat_member": self._member_json(chat, self.bot_id),
        }
        if notify:
            self._push_update("my_chat_member", payload)
        return payload

    # --- forum topics, as the forum's administrators handle them ------------------------------

    def create_topic(self, chat_id: int, name: str) -> int:
        """An administrator opens a topic; returns its message_thread_id."""
        return self._open_topic(self._forum(chat_id), name).thread_id

    def close_topic(self, chat_id: int, thread_id: int) -> None:
        self._topic(chat_id, thread_id).closed = True

    def reopen_topic(self, chat_id: int, thread_id: int) -> None:
        self._topic(chat_id, thread_id).closed = False

    def delete_topic(self, chat_id: int, thread_id: int) -> None:
        """Deletes the topic and every message in it, as Telegram does."""
        topic = self._topic(chat_id, thread_id)
        topic.deleted = True
        for message in self._forum(chat_id).messages:
            if message.thread_id == thread_id:
                message.deleted = True

    def topic_names(self, chat_id: int) -> dict[int, str]:
        """The forum's open and closed topics (not deleted ones), by thread id."""
        return {t.thread_id: t.name for t in self._forum(chat_id).topics.values() if not t.deleted}

    def topic_messages(self, chat_id: int, thread_id: int | None) -> list[StoredMessage]:
        """The bot's messages in one topic (None: the General topic)."""
        return [m for m in self.messages(chat_id) if m.thread_id == thread_id]

    def user_sends_in_topic(
        self, user_id: int, chat_id: int, thread_id: int, text: str
    ) -> JSONDict:
        """A member writes `text` inside the topic `thread_id` of a forum."""
        chat = self._forum(chat_id)
        topic = self._topic(chat_id, thread_id)
        if not chat.has_member(user_id):
            raise ValueError(f"user {user_id} is not a member of chat {chat_id}")
        if topic.closed and user_id != chat.creator and user_id not in chat.admins:
            raise ValueError(f"topic {thread_id} is closed")
        return self._user_message(chat, user_id, text, "message", thread_id=thread_id)

    def _forum(self, chat_id: int) -> _Chat:
        chat = self._group(chat_id)
        if not chat.is_forum:
            raise ValueError(f"chat {chat_id} is not a forum")
        return chat

    def _topic(self, chat_id: int, thread_id: int) -> _Topic:
        topic = self._forum(chat_id).topics.get(thread_id)
        if topic is None or topic.deleted:
            raise ValueError(f"no topic {thread_id} in chat {chat_id}")
        return topic

    def _open_topic(self, chat: _Chat, name: str, icon_color: int = 7322096) -> _Topic:
        thread_id = chat.next_message_id  # the service message "topic created" is its id
        chat.next_message_id += 1
        topic = _Topic(thread_id, name, icon_color)
        chat.topics[thread_id] = topic
        return topic

    def migrate_group(self, old_id: int, new_id: int) -> JSONDict:
        """Upgrades a group to a supergroup with a new id, as Telegram does."""
        old = self._group(old_id)
        if old.type != "group" or old.migrated_to is not None:
            raise ValueError(f"chat {old_id} is not a basic group")
        if new_id >= 0 or new_id in self._chats:
            raise ValueError(f"cannot migrate to chat id {new_id}")
        new = _Chat(
            new_id,
            "supergroup",
            title=old.title,
            creator=old.creator,
            admins=list(old.admins),
            members=list(old.members),
            bot_status=old.bot_status,
        )
        self._chats[new_id] = new
        old.migrated_to = new_id
        return self._chat_json(new)

    def user_sends(self, user_id: int, text: str, chat_id: int | None = None) -> JSONDict:
        """A user writes `text`; the bot gets the update if Telegram would deliver it."""
        user = self._user(user_id)
        if user.deactivated:
            raise ValueError(f"user {user_id} is deactivated")
        if chat_id is None or chat_id == user_id:
            user.blocked = False  # writing to a bot you blocked means pressing "Restart"
            chat = self._private_chat(user_id)
        else:
            chat = self._group(chat_id)
            if chat.type == "channel":
                raise ValueError(f"chat {chat_id} is a channel: its admins post_in_channel")
            if chat.migrated_to is not None:
                raise ValueError(f"chat {chat_id} was migrated to {chat.migrated_to}")
            if not chat.has_member(user_id):
                raise ValueError(f"user {user_id} is not a member of chat {chat_id}")
        return self._user_message(chat, user_id, text, "message")

    def post_in_channel(self, chat_id: int, text: str) -> JSONDict:
        """An administrator posts `text` in the channel; the bot, an administrator too, gets a
        channel_post update (the post names the channel as its sender, no user)."""
        chat = self._group(chat_id)
        if chat.type != "channel":
            raise ValueError(f"chat {chat_id} is not a channel")
        return self._user_message(chat, chat.id, text, "channel_post")

    def user_edits(
        self, user_id: int, message_id: int, text: str, chat_id: int | None = None
    ) -> JSONDict:
        """The user edits their message `message_id` to read `text`; the bot gets an
        edited_message update if Telegram would deliver the message as it now reads."""
        self._user(user_id)
        chat = self._chats.get(user_id if chat_id is None else chat_id)
        if chat is None or chat.type == "channel":
            raise ValueError(f"no private chat or group {chat_id or user_id}")
        return self._edit_user_message(chat, user_id, message_id, text, "edited_message")

    def edit_channel_post(self, chat_id: int, message_id: int, text: str) -> JSONDict:
        """An administrator edits the channel's post `message_id` to read `text`; the bot gets
        an edited_channel_post update."""
        chat = self._group(chat_id)
        if chat.type != "channel":
            raise ValueError(f"chat {chat_id} is not a channel")
        return self._edit_user_message(chat, chat.id, message_id, text, "edited_channel_post")

    def _user_message(
        self, chat: _Chat, sender_id: int, text: str, kind: str, *, thread_id: int | None = None
    ) -> JSONDict:
        message = self._store(
            chat,
            sender_id=sender_id,
            from_bot=False,
            raw_text=text,
            text=text,
            entities=_command_entities(text),
            parse_mode=None,
            reply_markup=None,
        )
        message.thread_id = thread_id
        payload = self._message_json(message)
        if self._bot_sees(chat, text):
            self._push_update(kind, payload)
        else:
            self._notify()
        return payload

    def _edit_user_message(
        self, chat: _Chat, sender_id: int, message_id: int, text: str, kind: str
    ) -> JSONDict:
        message = chat.find(message_id)
        if message is None or message.from_bot or message.sender_id != sender_id:
            raise ValueError(f"no message {message_id} of {sender_id} in chat {chat.id}")
        message.raw_text = message.text = text
        message.entities = _command_entities(text)
        self._mark_edited(message)
        payload = self._message_json(message)
        if self._bot_sees(chat, text):
            self._push_update(kind, payload)
        else:
            self._notify()
        return payload

    def press_button(
        self,
        user_id: int,
        message_id: int,
        data: str,
        chat_id: int | None = None,
        *,
        force: bool = False,
    ) -> str:
        """A user taps the inline button with callback_data `data`; returns the query id.

        With force=True the data need not be on the message (a tampered or stale client).
        """
        user = self._user(user_id)
        chat = self._chats.get(user_id if chat_id is None else chat_id)
        if chat is None:
            raise ValueError(f"no chat {chat_id or user_id}")
        if chat.type != "private" and not chat.has_member(user_id):
            raise ValueError(f"user {user_id} is not a member of chat {chat.id}")
        message = chat.find(message_id)
        if message is None or not message.from_bot:
            raise ValueError(f"no bot message {message_id} in chat {chat.id}")
        if not force and data not in message.callback_data:
            raise ValueError(
                f"message {message_id} has no button with callback_data {data!r}; "
                f"it has {message.callback_data!r}"
            )
        query_id = str(4_000_000_000_000_000_000 + self._next_query)
        self._next_query += 1
        self._queries[query_id] = _PendingQuery(self._clock())
        self._push_update(
            "callback_query",
            {
                "id": query_id,
                "from": user.to_json(),
                "message": self._message_json(message),
                "chat_instance": str(abs(chat.id) * 7919 % 10**18),
                "data": data,
            },
        )
        return query_id

    def is_answered(self, callback_query_id: str) -> bool:
        return callback_query_id in self.callback_answers

    def user_inline_query(
        self, user_id: int, query: str, *, offset: str = "", chat_type: str = "private"
    ) -> str:
        """A user types `@bot query` in a chat of `chat_type` (or scrolls to `offset`, the
        next_offset of an earlier answer); returns the inline query's id."""
        user = self._user(user_id)
        if len(query) > MAX_INLINE_QUERY:
            raise ValueError(f"an inline query has at most {MAX_INLINE_QUERY} characters")
        query_id = str(5_000_000_000_000_000_000 + self._next_query)
        self._next_query += 1
        self._inline_queries[query_id] = _PendingQuery(self._clock())
        self._push_update(
            "inline_query",
            {
                "id": query_id,
                "from": user.to_json(),
                "query": query,
                "offset": offset,
                "chat_type": chat_type,
            },
        )
        return query_id

    def is_inline_answered(self, inline_query_id: str) -> bool:
        return inline_query_id in self.inline_answers

    # --- what tests read ---------------------------------------------------------------------

    def messages(self, chat_id: int, *, include_user: bool = False) -> list[StoredMessage]:
        """The chat's messages still shown, oldest first: the bot's, and the users' if asked."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [m for m in chat.messages if not m.deleted and (include_user or m.from_bot)]

    def last_message(self, chat_id: int) -> StoredMessage | None:
        """The bot's latest message still shown in the chat."""
        shown = self.messages(chat_id)
        return shown[-1] if shown else None

    def age_message(self, chat_id: int, message_id: int, seconds: float) -> None:
        """Make a stored message `seconds` older (its `date`), e.g. past the 48 hours in
        which a bot may delete it."""
        self.message(chat_id, message_id).date -= int(seconds)

    def message(self, chat_id: int, message_id: int) -> StoredMessage:
        chat = self._chats.get(chat_id)
        found = chat.find(message_id) if chat else None
        if found is None:
            raise KeyError((chat_id, message_id))
        return found

    @property
    def pending_updates(self) -> list[JSONDict]:
        return copy.deepcopy(self._updates)

    async def wait_for(
        self,
        predicate: Callable[[], _T | None],
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline for the condition, not one await
    ) -> _T:
        """Waits until `predicate()` is truthy, re-checking after every call and injection."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    value = predicate()
                    if value:
                        return value
                    waiter: asyncio.Future[None] = loop.create_future()
                    self._watchers.add(waiter)
                    try:
                        await waiter
                    finally:
                        self._watchers.discard(waiter)
        except TimeoutError:
            recent = ", ".join(
                f"{c.method}{'!' + str(c.error.error_code) if c.error else ''}"
                for c in self.calls[-8:]
            )
            raise TimeoutError(
                f"condition not met within {timeout}s; last calls: [{recent}]"
            ) from None

    # --- internals: bookkeeping ----------------------------------------------------------------

    def _notify(self) -> None:
        for waiter in self._watchers:
            if not waiter.done():
                waiter.set_result(None)
        self._watchers.clear()

    def _changed_updates(self) -> None:
        for listener in list(self._update_listeners):
            listener()

    def _push_update(self, kind: str, payload: JSONDict) -> None:
        if self._webhook is not None and not self._webhook.allows(kind):
            self._notify()  # Telegram does not even queue update types the bot did not ask for
            return
        self._updates.append({"update_id": self._next_update_id, kind: payload})
        self._next_update_id += 1
        if self._poller is not None and not self._poller.done():
            self._poller.set_result("update")
        self._changed_updates()
        self._notify()

    @staticmethod
    def _method_name(method: str | None) -> str | None:
        if method is None:
            return None
        spec = method_specs().get(method.lower())
        if spec is None:
            raise ValueError(f"unknown Bot API method: {method}")
        return spec.name

    def _raise_injected(self, method: str, p: _Params) -> None:
        chat_id = p.chat_id()
        for rule in self._failures:
            if rule.method not in (None, method):
                continue
            if rule.chat_id is not None and rule.chat_id != chat_id:
                continue
            rule.times -= 1
            if rule.times <= 0:
                self._failures.remove(rule)
            raise rule.error.copy()

    def _draw_fault(self, method: str) -> WithholdMode | None:
        """Draws this call's fate on the lossy network: 502 or 429 now, a lost answer later, or
        none. (The 429 band comes last, so a seed draws the same 502s and lost answers with or
        without it.)"""
        faults = self._faults
        rates = (faults.bad_gateway_rate, faults.unanswered_rate, faults.flood_rate)
        if method not in faults.methods or not any(rates):
            return None
        draw = self._rng.random()
        if draw < faults.bad_gateway_rate:
            raise ApiError(502, BAD_GATEWAY)
        if draw < faults.bad_gateway_rate + faults.unanswered_rate:
            return faults.unanswered_mode
        if draw < sum(rates):
            raise too_many_requests(faults.flood_retry_after)
        return None

    def _take_withhold(self, method: str, p: _Params) -> WithholdMode | None:
        chat_id = p.chat_id()
        for rule in self._withholds:
            if rule.method not in (None, method):
                continue
            if rule.chat_id is not None and rule.chat_id != chat_id:
                continue
            rule.times -= 1
            if rule.times <= 0:
                self._withholds.remove(rule)
            return rule.mode
        return None

    def _mark_unanswered(self, method: str, sent_before: int, result: Any) -> None:
        if method in _RATE_LIMITED:  # synchronous handlers: the log's new entries are this call's
            for index in range(sent_before, len(self.sent_log)):
                self.sent_log[index] = self.sent_log[index]._replace(answered=False)
        if isinstance(result, dict) and "message_id" in result and "chat" in result:
            self.unanswered.append(Unanswered(result["chat"]["id"], result["message_id"]))

    async def _hold(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._held.add(waiter)
        try:
            await waiter
        finally:
            self._held.discard(waiter)

    @staticmethod
    def _check_required(spec: MethodSpec, p: _Params) -> None:
        for name in spec.required:
            if p.has(name):
                continue
            if spec.name == "setWebhook" and name == "url" and "url" in p.raw:
                continue  # an empty url removes the webhook
            if name == "text":
                raise ApiError(400, "Bad Request: message text is empty")
            if name == "chat_id":
                raise ApiError(400, "Bad Request: chat_id is empty")
            raise ApiError(400, f"Bad Request: {name} is required")

    def _user(self, user_id: int) -> _User:
        user = self._users.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id}: call add_user first")
        return user

    def _group(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None or chat.type == "private":
            raise ValueError(f"unknown group {chat_id}: call add_group first")
        return chat

    def _private_chat(self, user_id: int) -> _Chat:
        self._user(user_id)
        chat = self._chats.get(user_id)
        if chat is None:
            chat = self._chats[user_id] = _Chat(user_id, "private")
        return chat

    def _store(
        self,
        chat: _Chat,
        *,
        sender_id: int,
        from_bot: bool,
        raw_text: str,
        text: str,
        entities: list[JSONDict],
        parse_mode: str | None,
        reply_markup: JSONDict | None,
        reply_to: int | None = None,
    ) -> StoredMessage:
        message = StoredMessage(
            chat_id=chat.id,
            message_id=chat.next_message_id,
            sender_id=sender_id,
            from_bot=from_bot,
            raw_text=raw_text,
            text=text,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=reply_markup,
            date=int(self._wall_clock()),
            reply_to_message_id=reply_to,
        )
        chat.next_message_id += 1
        chat.messages.append(message)
        return message

    def _bot_sees(self, chat: _Chat, text: str) -> bool:
        """Whether Telegram delivers a user's message to the bot (group privacy mode)."""
        if chat.type == "private":
            return True
        if chat.bot_status in ("kicked", "left"):
            return False
        if chat.type == "channel" or not self.privacy_mode:  # an admin of a channel sees it all
            return True
        command = _BOT_COMMAND_RE.match(text)
        if command is not None:
            addressee = command.group().partition("@")[2].lower()
            if addressee in ("", self.bot_username.lower()):
                return True
        return f"@{self.bot_username}".lower() in text.lower()

    # --- internals: JSON shapes ------------------------------------------------------------

    def _bot_json(self) -> JSONDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _chat_json(self, chat: _Chat) -> JSONDict:
        if chat.type != "private":
            group: JSONDict = {"id": chat.id, "type": chat.type, "title": chat.title}
            if chat.username:
                group["username"] = chat.username
            if chat.is_forum:
                group["is_forum"] = True
            return group
        user = self._users[chat.id]
        out: JSONDict = {"id": chat.id, "type": "private", "first_name": user.first_name}
        if user.last_name:
            out["last_name"] = user.last_name
        if user.username:
            out["username"] = user.username
        return out

    def _message_json(self, message: StoredMessage, *, with_reply: bool = True) -> JSONDict:
        chat = self._chats[message.chat_id]
        out: JSONDict = {"message_id": message.message_id}
        if chat.type == "channel":  # a post is the channel's, whoever wrote it: no "from"
            out["sender_chat"] = self._chat_json(chat)
        elif message.from_bot:
            out["from"] = self._bot_json()
        else:
            out["from"] = self._users[message.sender_id].to_json()
        if message.thread_id is not None:
            out["message_thread_id"] = message.thread_id
            out["is_topic_message"] = True
        out["chat"] = self._chat_json(chat)
        out["date"] = message.date
        if with_reply and message.reply_to_message_id is not None:
            replied = chat.find(message.reply_to_message_id)
            if replied is not None:
                out["reply_to_message"] = self._message_json(replied, with_reply=False)
        if message.edit_date is not None:
            out["edit_date"] = message.edit_date
        if message.photo is not None:
            out["photo"] = _photo_sizes(message.photo)
            if message.text:
                out["caption"] = message.text
            if message.entities:
                out["caption_entities"] = copy.deepcopy(message.entities)
        else:
            out["text"] = message.text
            if message.entities:
                out["entities"] = copy.deepcopy(message.entities)
        if message.reply_markup is not None and "inline_keyboard" in message.reply_markup:
            out["reply_markup"] = copy.deepcopy(message.reply_markup)
        return out

    def _member_json(self, chat: _Chat, user_id: int) -> JSONDict:
        if user_id == self.bot_id:
            user = self._bot_json()
            status = "member" if chat.type == "private" else chat.bot_status
        else:
            known = self._users.get(user_id)
            if known is None:
                raise ApiError(400, "Bad Request: user not found")
            user = known.to_json()
            if chat.type == "private":
                if user_id != chat.id:
                    raise ApiError(400, "Bad Request: user not found")
                status = "member"
            elif user_id == chat.creator:
                status = "creator"
            elif user_id in chat.admins:
                status = "administrator"
            elif user_id in chat.members:
                status = "member"
            else:
                status = "left"
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status == "restricted":
            return {
                "status": "restricted",
                "user": user,
                "is_member": True,
                "until_date": 0,
                **dict.fromkeys(_RESTRICTED_RIGHTS, False),
            }
        if status == "administrator":
            extra: JSONDict = {}
            if user_id == self.bot_id and chat.type == "channel":
                extra = {"can_post_messages": chat.bot_can_post, "can_edit_messages": True}
            elif user_id == self.bot_id and chat.type == "supergroup":
                extra = {"can_manage_topics": chat.bot_can_manage_topics}
            return {
                **extra,
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": True,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
                "can_pin_messages": True,
            }
        if status == "kicked":
            return {"status": "kicked", "user": user, "until_date": 0}
        return {"status": status, "user": user}

    # --- internals: checks shared by methods ------------------------------------------------

    def _chat(self, p: _Params, *, sending: bool) -> _Chat:
        chat_id = p.chat_id()
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=chat.migrated_to,
            )
        if chat.type == "private":
            user = self._users[chat.id]
            if user.deactivated:
                raise ApiError(403, "Forbidden: user is deactivated")
            if sending and user.blocked:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
        elif chat.bot_status == "kicked":
            kind = chat.type if chat.type in ("supergroup", "channel") else "group"
            raise ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        elif chat.bot_status == "left":
            kind = chat.type if chat.type in ("supergroup", "channel") else "group"
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")
        return chat

    def _may_post(self, chat: _Chat, p: _Params, *, photo: bool = False) -> int | None:
        """Telegram's refusals of a message the bot may not post here, and the topic it goes
        to (message_thread_id; None for the General topic)."""
        if chat.type == "channel" and not (
            chat.bot_status == "administrator" and chat.bot_can_post
        ):
            raise ApiError(400, "Bad Request: need administrator rights in the channel chat")
        if chat.bot_status == "restricted":
            what = "photos" if photo else "text messages"
            raise ApiError(400, f"Bad Request: not enough rights to send {what} to the chat")
        thread_id = p.get_int("message_thread_id")
        if thread_id is None or not chat.is_forum:
            return None  # outside forums a thread id names a reply thread: not emulated
        if thread_id == GENERAL_TOPIC:
            return None
        topic = chat.topics.get(thread_id)
        if topic is None or topic.deleted:
            raise ApiError(400, "Bad Request: message thread not found")
        if topic.closed and not (chat.bot_status == "administrator" and chat.bot_can_manage_topics):
            raise ApiError(400, "Bad Request: TOPIC_CLOSED")
        return thread_id

    @staticmethod
    def _text(p: _Params) -> tuple[str, str, list[JSONDict], str | None]:
        raw = p.get_str("text") or ""
        parse_mode = p.get_str("parse_mode") or None
        if not raw.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        text, entities = BotApiEmulator._formatted(
            raw, parse_mode, p.get_json("entities") if p.has("entities") else None
        )
        if not text:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise ApiError(400, "Bad Request: message is too long")
        return raw, text, entities, parse_mode

    @staticmethod
    def _caption(
        raw: str, parse_mode: str | None, given_entities: Any
    ) -> tuple[str, list[JSONDict]]:
        """A photo's caption as read (may be empty), checked like text against 1024."""
        if not raw.strip():
            return "", []
        text, entities = BotApiEmulator._formatted(raw, parse_mode, given_entities)
        if utf16_len(text) > MAX_CAPTION_UTF16:
            raise ApiError(400, CAPTION_TOO_LONG)
        return text, entities

    @staticmethod
    def _formatted(raw: str, parse_mode: str | None, given: Any) -> tuple[str, list[JSONDict]]:
        if given is not None:
            if not isinstance(given, list) or not all(map(_is_entity, given)):
                raise ApiError(400, "Bad Request: can't parse entities JSON object")
            text, entities = raw, given
        elif parse_mode is None:
            text, entities = raw, []
        elif parse_mode.lower() == "html":
            try:
                text, entities = parse_html_entities(raw)
            except ValueError as error:
                raise ApiError(400, f"Bad Request: can't parse entities: {error}") from None
        elif parse_mode.lower() in ("markdown", "markdownv2"):
            text, entities = raw, []  # accepted as-is: the product sends HTML only
        else:
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")
        return strip_entities(text, entities)

    def _check_photo(self, photo: str) -> None:
        """Refuse a photo Telegram could not use: not an http(s) URL nor a file_id it issued,
        or one a test made it refuse (see refuse_images)."""
        if photo.startswith(_FILE_ID_PREFIX):
            return
        try:
            parts = urlsplit(photo)
            host = (parts.hostname or "").lower()
        except ValueError:
            raise ApiError(400, WRONG_FILE) from None
        if parts.scheme.lower() not in ("http", "https") or not host:
            raise ApiError(400, WRONG_FILE)
        if host == "invalid" or host.endswith(".invalid"):
            raise ApiError(400, URL_CONTENT_FAILED)
        if any(photo.startswith(prefix) for prefix in self._refused_images):
            raise ApiError(400, WRONG_FILE)

    @staticmethod
    def _markup(p: _Params, *, inline_only: bool) -> JSONDict | None:
        markup = p.get_json("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            _check_inline_keyboard(markup["inline_keyboard"])
            return {"inline_keyboard": markup["inline_keyboard"]}
        if inline_only:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
            return markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")

    def _throttle(self, chat_id: int) -> None:
        if self._limiter is not None:
            self._limiter.check(chat_id)

    def _count_send(self, method: str, chat_id: int) -> None:
        if self._limiter is not None and method in _RATE_LIMITED:
            self._limiter.record(chat_id)
        self.sent_log.append(SentRecord(method, chat_id, self._clock()))

    def _message_for_edit(self, p: _Params) -> tuple[_Chat, StoredMessage]:
        if p.has("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = self._chat(p, sending=True)
        message_id = p.get_int("message_id")
        if message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = chat.find(message_id)
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not message.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat, message

    # --- internals: methods ------------------------------------------------------------------

    def _ok(self, p: _Params) -> bool:
        return True

    def _get_me(self, p: _Params) -> JSONDict:
        return {
            **self._bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, p: _Params) -> list[JSONDict]:
        if self._webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = p.get_int("offset")
        limit = min(max(p.get_int("limit") or 100, 1), 100)
        timeout = p.get_float("timeout") or 0.0
        before = len(self._updates)
        if offset is not None and offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset is not None and offset < 0:
            self._updates = self._updates[offset:]
        if len(self._updates) != before:
            self._changed_updates()
        if self._poller is not None and not self._poller.done():
            self._poller.set_result("conflict")
        if self._updates or timeout <= 0:
            return copy.deepcopy(self._updates[:limit])
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._poller = waiter
        try:
            async with asyncio.timeout(timeout):
                outcome = await waiter
        except TimeoutError:
            outcome = "timeout"
        finally:
            if self._poller is waiter:
                self._poller = None
        if outcome == "conflict":
            raise ApiError(409, GET_UPDATES_CONFLICT)
        if outcome == "webhook":
            raise ApiError(409, WEBHOOK_SET_CONFLICT)
        return copy.deepcopy(self._updates[:limit])

    def _delete_webhook(self, p: _Params) -> bool:
        self._webhook = None
        self._webhook_error = None
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
        self._changed_updates()
        return True

    def _set_webhook(self, p: _Params) -> bool:
        url = p.get_str("url") or ""
        if not url:
            return self._delete_webhook(p)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ApiError(400, "Bad Request: invalid webhook URL specified") from None
        if parts.scheme.lower() != "https":
            raise ApiError(
                400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
            )
        if not parts.hostname:
            raise ApiError(400, "Bad Request: invalid webhook URL specified")
        if port is not None and port not in WEBHOOK_PORTS:
            raise ApiError(
                400,
                "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443",
            )
        secret = p.get_str("secret_token") or ""
        if len(secret) > MAX_SECRET_TOKEN:
            raise ApiError(400, "Bad Request: secret token is too long")
        if not _SECRET_TOKEN_RE.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = p.get_int("max_connections")
        if max_connections is None:
            max_connections = DEFAULT_MAX_CONNECTIONS
        self._webhook = WebhookConfig(
            url=url,
            secret_token=secret or None,
            allowed_updates=self._allowed_updates(p),
            max_connections=min(max(max_connections, 1), 100),  # Telegram clamps, never refuses
        )
        if p.get_bool("drop_pending_updates"):
            self._updates.clear()
        if self._poller is not None and not self._poller.done():
            self._poller.set_result("webhook")
        self._changed_updates()
        return True

    def _allowed_updates(self, p: _Params) -> tuple[str, ...] | None:
        """setWebhook's allowed_updates as Telegram reads it: unknown names are ignored, and an
        empty or unreadable list keeps what was set before."""
        previous = self._webhook.allowed_updates if self._webhook is not None else None
        try:
            given = p.get_json("allowed_updates")
        except ApiError:
            return previous
        if not isinstance(given, list) or not given:
            return previous
        if not all(isinstance(name, str) for name in given):
            return previous
        known = tuple(dict.fromkeys(n.lower() for n in given if n.lower() in UPDATE_TYPES))
        if not known or set(known) == UPDATE_TYPES - OPT_IN_UPDATE_TYPES:
            return None
        return known

    def _get_webhook_info(self, p: _Params) -> JSONDict:
        hook = self._webhook
        info: JSONDict = {
            "url": hook.url if hook is not None else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = list(hook.allowed_updates)
        return info

    def _command_key(self, p: _Params) -> tuple[str, str]:
        scope = p.get_json("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        if scope["type"] in {"chat", "chat_administrators", "chat_member"}:
            # a scope of one chat names a chat the bot knows (else Telegram: chat not found)
            chat_id = scope.get("chat_id")
            if not isinstance(chat_id, int) or chat_id not in self._chats:
                raise ApiError(400, "Bad Request: chat not found")
        return json.dumps(scope, sort_keys=True), p.get_str("language_code") or ""

    def commands_for(
        self, scope: JSONDict | None = None, language_code: str = ""
    ) -> list[JSONDict]:
        """What setMyCommands set for exactly this scope and language (tests read it back)."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return copy.deepcopy(self._commands.get((key, language_code), []))

    def description_for(self, language_code: str = "", *, short: bool = False) -> str | None:
        """The description (or short one) set for exactly this language, None if none is."""
        return self._descriptions.get(
            ("short_description" if short else "description", language_code)
        )

    def _set_description(self, p: _Params, kind: str, most: int) -> bool:
        text = p.get_str(kind) or ""
        if len(text) > most:
            raise ApiError(400, f"Bad Request: {kind} is too long")
        key = (kind, p.get_str("language_code") or "")
        if text:
            self._descriptions[key] = text
        else:  # an empty text removes the dedicated one
            self._descriptions.pop(key, None)
        return True

    def _get_description(self, p: _Params, kind: str) -> JSONDict:
        language = p.get_str("language_code") or ""
        text = self._descriptions.get((kind, language), self._descriptions.get((kind, ""), ""))
        return {kind: text}

    def _set_my_description(self, p: _Params) -> bool:
        return self._set_description(p, "description", 512)

    def _get_my_description(self, p: _Params) -> JSONDict:
        return self._get_description(p, "description")

    def _set_my_short_description(self, p: _Params) -> bool:
        return self._set_description(p, "short_description", 120)

    def _get_my_short_description(self, p: _Params) -> JSONDict:
        return self._get_description(p, "short_description")

    def _set_my_commands(self, p: _Params) -> bool:
        commands = p.get_json("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands")
        cleaned: list[JSONDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise ApiError(400, "Bad Request: can't parse BotCommand JSON object")
            name = str(command.get("command", "")).lstrip("/")
            description = str(command.get("description", ""))
            if not _COMMAND_RE.fullmatch(name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(description.strip()) <= 256:
                raise ApiError(400, "Bad Request: command description is empty or too long")
            cleaned.append({"command": name, "description": description})
        self._commands[self._command_key(p)] = cleaned
        return True

    def _get_my_commands(self, p: _Params) -> list[JSONDict]:
        return copy.deepcopy(self._commands.get(self._command_key(p), []))

    def _delete_my_commands(self, p: _Params) -> bool:
        self._commands.pop(self._command_key(p), None)
        return True

    def _send_message(self, p: _Params) -> JSONDict:
        chat = self._chat(p, sending=True)
        thread_id = self._may_post(chat, p)
        raw, text, entities, parse_mode = self._text(p)
        markup = self._markup(p, inline_only=False)
        reply_to = self._reply_target(chat, p)
        self._throttle(chat.id)
        message = self._store(
            chat,
            sender_id=self.bot_id,
            from_bot=True,
            raw_text=raw,
            text=text,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=markup,
            reply_to=reply_to,
        )
        message.thread_id = thread_id
        self._count_send("sendMessage", chat.id)
        return self._message_json(message)

    @staticmethod
    def _reply_target(chat: _Chat, p: _Params) -> int | None:
        reply = p.get_json("reply_parameters")
        if reply is None and p.has("reply_to_message_id"):
            reply = {
                "message_id": p.get_int("reply_to_message_id"),
                "allow_sending_without_reply": p.get_bool("allow_sending_without_reply"),
            }
        if reply is None:
            return None
        if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
            raise ApiError(400, "Bad Request: can't parse reply parameters JSON object")
        if reply.get("chat_id") not in (None, chat.id):
            raise ApiError(400, "Bad Request: message to be replied not found")
        message_id: int = reply["message_id"]
        if chat.find(message_id) is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return message_id

    def _send_photo(self, p: _Params) -> JSONDict:
        chat = self._chat(p, sending=True)
        thread_id = self._may_post(chat, p, photo=True)
        photo = p.get_str("photo") or ""
        parse_mode = p.get_str("parse_mode") or None
        raw = p.get_str("caption") or ""
        caption, entities = self._caption(
            raw, parse_mode, p.get_json("caption_entities") if p.has("caption_entities") else None
        )
        markup = self._markup(p, inline_only=False)
        reply_to = self._reply_target(chat, p)
        self._throttle(chat.id)
        self._check_photo(photo)
        message = self._store(
            chat,
            sender_id=self.bot_id,
            from_bot=True,
            raw_text=raw,
            text=caption,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=markup,
            reply_to=reply_to,
        )
        message.photo = photo
        message.thread_id = thread_id
        self._count_send("sendPhoto", chat.id)
        return self._message_json(message)

    def _edit_message_media(self, p: _Params) -> JSONDict:
        chat, message = self._message_for_edit(p)
        media = p.get_json("media")
        if not isinstance(media, dict) or not isinstance(media.get("type"), str):
            raise ApiError(400, "Bad Request: can't parse InputMedia JSON object")
        if media["type"] != "photo":
            raise ApiError(
                400, f"Bad Request: media type not supported by the emulator: {media['type']}"
            )
        photo = media.get("media")
        if not isinstance(photo, str) or not photo:
            raise ApiError(400, WRONG_FILE)
        given_raw = media.get("caption")
        raw = given_raw if isinstance(given_raw, str) else ""
        given_mode = media.get("parse_mode")
        parse_mode = given_mode if isinstance(given_mode, str) and given_mode else None
        caption, entities = self._caption(raw, parse_mode, media.get("caption_entities"))
        markup = self._markup(p, inline_only=True)
        current = (message.photo, message.text, message.entities, message.reply_markup)
        if (photo, caption, entities, markup) == current:
            raise ApiError(400, NOT_MODIFIED)
        self._throttle(chat.id)
        self._check_photo(photo)
        message.photo = photo  # a text message becomes a photo; never the other way
        message.raw_text, message.text, message.entities = raw, caption, entities
        message.parse_mode, message.reply_markup = parse_mode, markup
        self._mark_edited(message)
        self._count_send("editMessageMedia", chat.id)
        return self._message_json(message)

    def _edit_message_caption(self, p: _Params) -> JSONDict:
        chat, message = self._message_for_edit(p)
        if message.photo is None:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        parse_mode = p.get_str("parse_mode") or None
        raw = p.get_str("caption") or ""
        caption, entities = self._caption(
            raw, parse_mode, p.get_json("caption_entities") if p.has("caption_entities") else None
        )
        markup = self._markup(p, inline_only=True)
        if (caption, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        self._throttle(chat.id)
        message.raw_text, message.text, message.entities = raw, caption, entities
        message.parse_mode, message.reply_markup = parse_mode, markup
        self._mark_edited(message)
        self._count_send("editMessageCaption", chat.id)
        return self._message_json(message)

    def _edit_message_text(self, p: _Params) -> JSONDict:
        chat, message = self._message_for_edit(p)
        if message.photo is not None:  # a photo never becomes a text message
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        raw, text, entities, parse_mode = self._text(p)
        markup = self._markup(p, inline_only=True)
        if (text, entities, markup) == (message.text, message.entities, message.reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        self._throttle(chat.id)
        message.raw_text, message.text, message.entities = raw, text, entities
        message.parse_mode, message.reply_markup = parse_mode, markup
        self._mark_edited(message)
        self._count_send("editMessageText", chat.id)
        return self._message_json(message)

    def _edit_message_reply_markup(self, p: _Params) -> JSONDict:
        chat, message = self._message_for_edit(p)
        markup = self._markup(p, inline_only=True)
        if markup == message.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        self._throttle(chat.id)
        message.reply_markup = markup
        self._mark_edited(message)
        self._count_send("editMessageReplyMarkup", chat.id)
        return self._message_json(message)

    def _mark_edited(self, message: StoredMessage) -> None:
        message.edit_count += 1
        message.edit_date = int(self._wall_clock())

    def _delete_message(self, p: _Params) -> bool:
        chat = self._chat(p, sending=False)
        message_id = p.get_int("message_id")
        message = chat.find(message_id) if message_id is not None else None
        if message is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        admin = chat.type in ("supergroup", "channel") and chat.bot_status == "administrator"
        if chat.type != "private" and not message.from_bot and chat.bot_status != "administrator":
            raise ApiError(400, "Bad Request: message can't be deleted")
        if not admin and self._wall_clock() - message.date >= DELETE_WINDOW:
            raise ApiError(400, CANNOT_DELETE)
        message.deleted = True
        return True

    def _answer_callback_query(self, p: _Params) -> bool:
        query_id = p.get_str("callback_query_id") or ""
        query = self._queries.get(query_id)
        if query is None or query.answered:
            raise ApiError(400, QUERY_TOO_OLD)
        if self._clock() - query.created > CALLBACK_ANSWER_DEADLINE:
            raise ApiError(400, QUERY_TOO_OLD)
        if len(p.get_str("text") or "") > MAX_CALLBACK_ANSWER_TEXT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        query.answered = True
        self.callback_answers[query_id] = p.normalized()
        return True

    def _answer_inline_query(self, p: _Params) -> bool:
        """Stores what the user is offered: each result as the list shows it and the message
        it would send (text and entities as parsed). Refuses what Telegram refuses: a query
        answered twice or too late, more than 50 results, duplicate or bad ids, missing
        fields, a message text that is empty, too long or bad HTML, a non-http thumbnail."""
        query_id = p.get_str("inline_query_id") or ""
        query = self._inline_queries.get(query_id)
        if query is None or query.answered:
            raise ApiError(400, QUERY_TOO_OLD)
        if self._clock() - query.created > INLINE_ANSWER_DEADLINE:
            raise ApiError(400, QUERY_TOO_OLD)
        raw = p.get_json("results")
        if not isinstance(raw, list):
            raise ApiError(400, "Bad Request: can't parse inline query results JSON object")
        if len(raw) > MAX_INLINE_RESULTS:
            raise ApiError(400, "Bad Request: RESULTS_TOO_MUCH")
        next_offset = p.get_str("next_offset") or ""
        if len(next_offset.encode()) > MAX_NEXT_OFFSET_BYTES:
            raise ApiError(400, "Bad Request: NEXT_OFFSET_INVALID")
        seen: set[str] = set()
        results = [self._inline_result(item, seen) for item in raw]
        query.answered = True
        self.inline_answers[query_id] = {
            "results": results,
            "next_offset": next_offset,
            "cache_time": p.get_int("cache_time"),
            "is_personal": p.get_bool("is_personal"),
        }
        return True

    def _inline_result(self, item: Any, seen: set[str]) -> JSONDict:
        if not isinstance(item, dict):
            raise ApiError(400, "Bad Request: can't parse inline query result JSON object")
        for name in ARTICLE_REQUIRED:
            if item.get(name) in (None, ""):
                raise ApiError(400, f"Bad Request: inline query result {name} is required")
        if item["type"] != "article":
            kind = item["type"]
            raise ApiError(400, f"Bad Request: result type not supported by the emulator: {kind}")
        result_id = str(item["id"])
        if not 1 <= len(result_id.encode()) <= MAX_RESULT_ID_BYTES:
            raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
        if result_id in seen:
            raise ApiError(400, "Bad Request: RESULT_ID_DUPLICATE")
        seen.add(result_id)
        content = item["input_message_content"]
        if not isinstance(content, dict) or any(
            content.get(name) in (None, "") for name in TEXT_CONTENT_REQUIRED
        ):
            raise ApiError(400, "Bad Request: MESSAGE_EMPTY")
        text, entities = self._formatted(
            str(content["message_text"]), content.get("parse_mode"), content.get("entities")
        )
        if not text:
            raise ApiError(400, "Bad Request: MESSAGE_EMPTY")
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        for name in ("thumbnail_url", "url"):
            if name in item and urlsplit(str(item[name])).scheme not in {"http", "https"}:
                raise ApiError(400, f"Bad Request: {name} must be an http(s) URL")
        return {
            "id": result_id,
            "title": item["title"],
            "description": item.get("description"),
            "thumbnail_url": item.get("thumbnail_url"),
            "url": item.get("url"),
            "text": text,
            "entities": entities,
        }

    def _send_chat_action(self, p: _Params) -> bool:
        chat = self._chat(p, sending=True)
        action = p.get_str("action") or ""
        if action not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        self.chat_actions.append((chat.id, action))
        return True

    def _get_chat(self, p: _Params) -> JSONDict:
        chat = self._chat(p, sending=False)
        return {
            **self._chat_json(chat),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": True,
                "limited_gifts": True,
                "unique_gifts": True,
                "premium_subscription": True,
                "gifts_from_channels": True,
            },
        }

    def _create_forum_topic(self, p: _Params) -> JSONDict:
        chat = self._chat(p, sending=True)
        if chat.type == "private":
            raise ApiError(400, "Bad Request: the chat is not a forum")  # bots' private topics
        if not chat.is_forum:
            raise ApiError(400, "Bad Request: the chat is not a forum")
        if not (chat.bot_status == "administrator" and chat.bot_can_manage_topics):
            raise ApiError(400, "Bad Request: not enough rights to create a topic")
        name = p.get_str("name") or ""
        if not 1 <= len(name) <= MAX_TOPIC_NAME:
            raise ApiError(
                400, f"Bad Request: {'TOPIC_TITLE_EMPTY' if not name else 'TOPIC_TITLE_INVALID'}"
            )
        color = p.get_int("icon_color")
        if color is not None and color not in TOPIC_COLORS:
            # Telegram refuses other colours; this text is the emulator's, not verified
            raise ApiError(400, "Bad Request: TOPIC_ICON_COLOR_INVALID")
        topic = self._open_topic(chat, name, color if color is not None else TOPIC_COLORS[0])
        return {
            "message_thread_id": topic.thread_id,
            "name": topic.name,
            "icon_color": topic.icon_color,
        }

    def _get_chat_member(self, p: _Params) -> JSONDict:
        chat = self._chat(p, sending=False)
        user_id = p.get_int("user_id")
        if user_id is None:
            raise ApiError(400, "Bad Request: user_id is required")
        return self._member_json(chat, user_id)

    def _get_chat_administrators(self, p: _Params) -> list[JSONDict]:
        chat = self._chat(p, sending=False)
        if chat.type == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        ids = [*([chat.creator] if chat.creator is not None else []), *chat.admins]
        if chat.bot_status == "administrator":
            ids.append(self.bot_id)
        return [self._member_json(chat, user_id) for user_id in ids]


_FILE_ID_PREFIX = "AgAC-emu-"


def _photo_sizes(photo: str) -> list[JSONDict]:
    """The PhotoSize list Telegram gives for a photo: a thumbnail and the full size, with
    file ids derived from what it was sent as (a file id stays as it was)."""
    if photo.startswith(_FILE_ID_PREFIX):
        file_id = photo
    else:
        file_id = _FILE_ID_PREFIX + hashlib.sha256(photo.encode("utf-8")).hexdigest()[:32]
    unique = file_id[-16:]
    return [
        {"file_id": file_id + "-s", "file_unique_id": unique + "s", "width": 90, "height": 60},
        {"file_id": file_id, "file_unique_id": unique, "width": 1280, "height": 853},
    ]


def _check_inline_keyboard(rows: Any) -> None:
    """Refuses an inline keyboard the way Telegram does."""
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(400, 'Bad Request: field "inline_keyboard" must be an Array of Arrays')
    if any(len(row) > MAX_BUTTONS_PER_ROW for row in rows):
        raise ApiError(400, "Bad Request: too many buttons in a row")
    if sum(len(row) for row in rows) > MAX_BUTTONS:
        raise ApiError(400, "Bad Request: too many buttons")
    for row in rows:
        for button in row:
            if not isinstance(button, dict):
                raise ApiError(400, "Bad Request: can't parse inline keyboard button")
            text = button.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ApiError(400, "Bad Request: inline keyboard button text must be non-empty")
            actions = [name for name in _BUTTON_ACTIONS if name in button]
            if not actions:
                raise ApiError(
                    400, "Bad Request: text buttons are unallowed in the inline keyboard"
                )
            if len(actions) > 1:
                raise ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: exactly one of the "
                    f"optional fields must be used, got {', '.join(actions)}",
                )
            if "callback_data" in button:
                data = button["callback_data"]
                if (
                    not isinstance(data, str)
                    or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES
                ):
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
            if "url" in button and not _is_button_url(button["url"]):
                raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")


def _is_entity(entity: Any) -> bool:
    return (
        isinstance(entity, dict)
        and isinstance(entity.get("type"), str)
        and all(isinstance(entity.get(k), int) and entity[k] >= 0 for k in ("offset", "length"))
    )


def _is_button_url(url: Any) -> bool:
    if not isinstance(url, str) or not url.strip() or any(ch.isspace() for ch in url):
        return False
    if _URL_SCHEME_RE.match(url) is None:
        url = f"http://{url}"  # Telegram takes "t.me/x" as an http link
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _BUTTON_URL_SCHEMES:
        return False
    return scheme not in ("http", "https") or bool(parts.hostname)


def _command_entities(text: str) -> list[JSONDict]:
    """The bot_command entities Telegram marks in a user's plain text."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: m.start()]),
            "length": utf16_len(m.group()),
        }
        for m in _BOT_COMMAND_RE.finditer(text)
    ]
