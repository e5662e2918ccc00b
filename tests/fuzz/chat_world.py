"""The chat fuzz suite's world: the real bot on a real database, the people who talk to it, and
the actions hypothesis draws for them.

One bot runs for a whole test (`running_world`); each hypothesis example gets a `Cast` of its
own (fresh readers, a fresh group and a fresh channel), so examples share only the stories,
the sections and the two editors. An example plays its actions one by one through the strict
fake Bot API, lets the bot finish each (`World.settle`), and asserts after each what must hold
whatever the input was (`World.act`); at its end, what editors alone may do
(`World.check_pushes`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hypothesis import event, note
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from bot.context import NewsApp
from digests.db import make_engine, make_session_factory
from digests.feeds.ingest import store_entries
from digests.feeds.parse import parse_feed
from digests.models import Article, BreakingPush, Chat, PushStatus, Subscription
from digests.ui.buttons import PushChoice, decode
from fakebotapi.emulator import BotApiEmulator, StoredMessage
from fakebotapi.server import FakeBotApiServer
from tests.e2e.harness import SAMPLE, e2e_settings, logged_errors, running_bot

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BOT = BotApiEmulator().bot_username  # the fake server's bot, which the strategies address
EDITORS = (9101, 9102)  # ADMIN_IDS: may push breaking news and see /stats
SETTLE_TIMEOUT = 20.0
COUNT_KEYS = ("inputs tried", "crashes", "unanswered callbacks", "refused requests")

KNOWN_COMMANDS = (
    "start", "latest", "sections", "settings", "digest", "help", "breaking", "stats", "cancel",
    "subscribe", "unsubscribe", "timezone", "alerts", "stop",
)  # fmt: skip
# What each argument-taking command is likely to be given, besides noise.
PLAUSIBLE_ARGS = (
    "", "now", "off", "stop", "on", "07:30", "24:00", "7:5", "99:99", "world", "World Sports",
    "sports", "politics", "all", "science business", "Europe/Berlin", "UTC", "Mars/Olympus",
    "+05:30", "https://meridian.example/breaking", "world Earthquake hits the coast",
    "all Storm warning", "0", "-1", "²", "１２:００",
)  # fmt: skip
HTML_BITS = (
    "<b>", "</b>", "<i>x</i>", "&", "&amp;", "&lt;", "&#0;", "<a href='javascript:x'>",
    "<tg-spoiler>", "<", ">", '"', "<code>", "</pre>", "<br>",
)  # fmt: skip
PREFIXES = ("L:", "S:", "U:", "C:", "B:", "S:t:", "B:send:", "B:cancel:", "L:0:", "C:", "")
ODD_DIGITS = ("²", "１", "٣", "۷", "߁", "０", "9" * 30, "-0", "+1", " 1", "1 ", "0x1f", "1e3")


# ---- the world -----------------------------------------------------------------------------


@dataclass
class Cast:
    """One example's people and places: two readers, a group and a channel.

    `group_admin` created the group and the channel; editor 0 is also an administrator of
    the group, editor 1 a plain member; `reader` is a member of the group and reads the
    channel, as editor 0 does; `outsider` is in neither.
    """

    group_admin: int
    reader: int
    outsider: int
    group: int
    channel: int
    since: dict[int, int] = field(default_factory=dict)  # chat: its last message before us

    @property
    def people(self) -> tuple[int, ...]:
        return (EDITORS[0], EDITORS[1], self.group_admin, self.reader, self.outsider)

    def admins_of(self, chat: int) -> set[int]:
        """Who may change the chat's settings."""
        if chat == self.group:
            return {self.group_admin, EDITORS[0]}
        if chat == self.channel:
            return {self.group_admin}
        return {chat}

    def say_places(self, user: int) -> list[int]:
        """Where the user can write: their private chat, the group if a member, the channel
        if they run it."""
        places = [user]
        if user != self.outsider:
            places.append(self.group)
        if user == self.group_admin:
            places.append(self.channel)
        return places

    def press_places(self, user: int) -> list[int]:
        """Where the user can press the bot's buttons: as above, and the channel they read."""
        places = [user]
        if user != self.outsider:
            places.append(self.group)
        if user in (self.group_admin, self.reader, EDITORS[0]):
            places.append(self.channel)
        return places


@dataclass
class Tally:
    inputs: int = 0
    crashes: int = 0
    unanswered: int = 0
    refused: int = 0


@dataclass(repr=False)
class World:
    app: NewsApp
    server: FakeBotApiServer
    db_url: str
    errors: list[logging.LogRecord]
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    pushes_decided_by_editors: set[int] = field(default_factory=set)
    seen_data: list[str] = field(default_factory=list)  # real callback data the bot sent
    pushes_started: bool = False
    trace: list[str] = field(default_factory=list)
    last: tuple[int, int] | None = None  # who acted last, and where

    def __repr__(self) -> str:  # hypothesis prints it with every failing example
        return f"World(the bot on {self.db_url.split(':', 1)[0]})"

    @property
    def emulator(self) -> BotApiEmulator:
        return self.server.emulator

    @property
    def bot_username(self) -> str:
        return self.emulator.bot_username

    def new_cast(self) -> Cast:
        n = next(self.ids)
        group_admin, reader, outsider = 20_000 + 3 * n, 20_001 + 3 * n, 20_002 + 3 * n
        emu = self.emulator
        for user in (group_admin, reader, outsider):
            emu.add_user(user, f"Reader {user}")
        group, channel = -(100_000 + n), -(1_000_000_000_000 + n)
        emu.add_group(
            group,
            f"Group {n} <b>&amp;",
            admins=[group_admin, EDITORS[0]],
            members=[reader, EDITORS[1]],
            supergroup=n % 2 == 0,
        )
        emu.add_channel(
            channel, f"Channel {n}", admins=[group_admin], subscribers=[reader, EDITORS[0]]
        )
        since = {
            editor: max((m.message_id for m in emu.messages(editor, include_user=True)), default=0)
            for editor in EDITORS
        }
        return Cast(group_admin, reader, outsider, group, channel, since)

    def shown(self, cast: Cast, chat: int, *, include_user: bool = False) -> list[StoredMessage]:
        """The chat's messages of this example (the editors' chats outlive an example)."""
        since = cast.since.get(chat, 0)
        return [
            m
            for m in self.emulator.messages(chat, include_user=include_user)
            if m.message_id > since
        ]

    async def settle(self) -> None:
        """Wait until the bot has handled every update Telegram has for it.

        An update leaves the emulator's queue when the poller asks for the next ones, after
        it put them on the application's update queue; the queue's `join` returns once each
        was handled (a chat's runner finishes its chat's queue before it counts as done).
        """
        emu = self.emulator
        await emu.wait_for(
            lambda: next(iter(emu.updates_for_delivery()), None) is None, SETTLE_TIMEOUT
        )
        await asyncio.wait_for(self.app.update_queue.join(), SETTLE_TIMEOUT)
        if self.pushes_started:
            await self._wait_for_pushes()

    async def _wait_for_pushes(self) -> None:
        async with asyncio.timeout(SETTLE_TIMEOUT):
            while True:
                async with self.app.bot_data.sessions() as session:
                    sending = await session.scalar(
                        select(func.count()).where(BreakingPush.status == PushStatus.SENDING)
                    )
                if not sending:
                    self.pushes_started = False
                    return
                await asyncio.sleep(0.02)

    # ---- playing an example ----------------------------------------------------------------

    async def play(self, actions: Sequence[Action], tally: Tally) -> None:
        """Play the actions with a cast of their own, each to the end, checking as it goes."""
        await self.quiet_earlier_readers()
        cast = self.new_cast()
        self.seen_data.clear()  # an example mutates only data its own chats were sent
        self.last = None
        self.trace.clear()
        for number, action in enumerate(actions):
            await self.act(cast, action, tally)
            note(f"action {number} done: {self.trace[-1]}")
        await self.check_pushes()

    async def quiet_earlier_readers(self) -> None:
        """Earlier examples' chats turn breaking alerts off: a push goes to this example's
        chats only, instead of to an audience that grows with every example."""
        async with self.app.bot_data.sessions.begin() as session:
            await session.execute(update(Chat).values(alerts=False))

    async def act(self, cast: Cast, action: Action, tally: Tally) -> None:
        if action.who == SAME and self.last is not None:
            user = self.last[0]
        else:
            user = cast.people[action.who % len(cast.people)]
        calls, errors = len(self.emulator.calls), len(self.errors)
        queries: list[str] = []
        if isinstance(action, Press):
            places = cast.press_places(user)
            if action.follow and self.last is not None and self.last[1] in places:
                place = self.last[1]
            else:
                place = pick(places, action.where)
            watched = place != user and user not in cast.admins_of(place)
            before = await self.chat_state(place) if watched else None
            await self.press(cast, user, place, action, queries, tally)
        else:
            place = pick(cast.say_places(user), action.where)
            watched = place != user and user not in cast.admins_of(place)
            before = await self.chat_state(place) if watched else None
            if isinstance(action, Edit):
                message_id = await self.own_message(cast, user, place, tally)
                replies = len(self.emulator.messages(place))
                self.edit(cast, user, place, message_id, str(action.text), tally)
            else:
                replies = len(self.emulator.messages(place))
                self.say(cast, user, place, str(action.text), tally)
            await self.settle()
            if place == user:  # in a private chat every message gets an answer
                assert len(self.emulator.messages(place)) > replies, (
                    f"{action!r} by user {user} in their private chat: no answer"
                )
        self.last = (user, place)
        self.collect_data(cast, place)
        kind = "private" if place > 0 else "channel" if place == cast.channel else "group"
        event(f"{type(action).__name__} in a {kind} chat")
        if isinstance(action, Press):
            event(f"press: {type(action.data).__name__}, answer {self.answer_kind(queries[-1])}")
        new_errors = self.errors[errors:]
        refused = [c for c in self.emulator.calls[calls:] if c.error is not None]
        unanswered = [q for q in queries if not self.emulator.is_answered(q)]
        tally.crashes += len(new_errors)
        tally.refused += len(refused)
        tally.unanswered += len(unanswered)
        what = f"{action!r} by user {user} in chat {place}"
        self.trace.append(what)
        assert not new_errors, (what, [self.describe(r) for r in new_errors])
        assert not refused, (what, [(c.method, c.params, c.error) for c in refused])
        assert not unanswered, (what, f"callback queries never answered: {unanswered}")
        if watched:
            after = await self.chat_state(place)
            assert after == before, (
                f"{what}: not an administrator of the chat, yet it changed it: {before} -> {after}"
            )

    def say(self, cast: Cast, user: int, place: int, text: str, tally: Tally) -> None:
        tally.inputs += 1
        if place == cast.channel:
            self.emulator.post_in_channel(place, text)
        else:
            self.emulator.user_sends(user, text, chat_id=place)

    async def own_message(self, cast: Cast, user: int, place: int, tally: Tally) -> int:
        """The user's last message in the chat (the channel's post in a channel), written
        first if there is none."""
        author = place if place == cast.channel else user

        def own() -> list[StoredMessage]:
            shown = self.shown(cast, place, include_user=True)
            return [m for m in shown if not m.from_bot and m.sender_id == author]

        if not own():
            self.say(cast, user, place, "first draft", tally)
            await self.settle()
        return own()[-1].message_id

    def edit(
        self, cast: Cast, user: int, place: int, message_id: int, text: str, tally: Tally
    ) -> None:
        tally.inputs += 1
        if place == cast.channel:
            self.emulator.edit_channel_post(place, message_id, text)
        else:
            self.emulator.user_edits(user, message_id, text, chat_id=place)

    async def press(
        self, cast: Cast, user: int, place: int, action: Press, queries: list[str], tally: Tally
    ) -> None:
        shown = self.shown(cast, place)
        if not shown:  # a bot message to press on first
            primer = (
                f"/latest@{self.bot_username}"
                if place != cast.channel
                else f"/x@{self.bot_username}"
            )
            self.say(
                cast, cast.group_admin if place == cast.channel else user, place, primer, tally
            )
            await self.settle()
            shown = self.shown(cast, place)
        message = shown[action.message % len(shown)]
        data = action.data.resolve(message, self.seen_data)
        if user in EDITORS and isinstance(decode(data), PushChoice):
            choice = decode(data)
            assert isinstance(choice, PushChoice)
            self.pushes_decided_by_editors.add(choice.push_id)
            self.pushes_started = self.pushes_started or choice.send
            event(f"an editor pressed {'Send' if choice.send else 'Cancel'}")
        for _ in range(2 if action.double else 1):
            tally.inputs += 1
            queries.append(
                self.emulator.press_button(
                    user, message.message_id, data, chat_id=place, force=True
                )
            )
        await self.settle()

    def collect_data(self, cast: Cast, place: int) -> None:
        """Remember the callback data the bot sent, for later presses to mutate."""
        for message in self.shown(cast, place)[-3:]:
            for data in message.callback_data:
                if data not in self.seen_data:
                    self.seen_data.append(data)
        del self.seen_data[:-200]

    async def chat_state(self, telegram_id: int) -> tuple[Any, ...] | None:
        """What a chat's administrators alone may change: its settings and sections."""
        async with self.app.bot_data.sessions() as session:
            chat = await session.scalar(select(Chat).where(Chat.telegram_id == telegram_id))
            if chat is None:
                return None
            sections = set(
                await session.scalars(
                    select(Subscription.section_id).where(Subscription.chat_id == chat.id)
                )
            )
            return (
                chat.active,
                chat.timezone,
                chat.digest_time,
                chat.alerts,
                frozenset(sections),
            )

    async def check_pushes(self) -> None:
        """Only editors draft pushes, and only their presses decide one."""
        async with self.app.bot_data.sessions() as session:
            pushes = list(
                await session.execute(
                    select(
                        BreakingPush.id,
                        BreakingPush.created_by,
                        BreakingPush.status,
                        BreakingPush.article_id,
                    )
                )
            )
            orphans = await session.scalar(
                select(func.count()).where(
                    Article.source == "breaking",
                    Article.id.not_in(select(BreakingPush.article_id)),
                )
            )
        assert all(created_by in EDITORS for _, created_by, _, _ in pushes), pushes
        decided = [
            push_id
            for push_id, _, status, _ in pushes
            if status != PushStatus.DRAFT and push_id not in self.pushes_decided_by_editors
        ]
        assert not decided, f"pushes decided without an editor's press: {decided}"
        assert not orphans, f"{orphans} breaking stories stored without an editor's push"

    def answer_kind(self, query_id: str) -> str:
        text = self.emulator.callback_answers.get(query_id, {}).get("text")
        return repr(text[:25]) if text else "empty"

    @staticmethod
    def describe(record: logging.LogRecord) -> str:
        return (
            f"{record.name}: {record.getMessage()} {record.exc_info[1] if record.exc_info else ''}"
        )


def pick(places: Sequence[int], index: int) -> int:
    return places[index % len(places)]


# ---- actions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Repeated:
    """A long text: `unit` repeated to `length` characters after `head` (short to print)."""

    unit: str
    length: int
    head: str = ""

    def after(self, head: str) -> Repeated:
        return Repeated(self.unit, self.length, head + self.head)

    def __str__(self) -> str:
        return self.head + (self.unit * (self.length // len(self.unit) + 1))[: self.length]


Text = str | Repeated


@dataclass(frozen=True)
class Say:
    """Someone writes `text`: in their private chat, a group, or (its admin) a channel."""

    who: int
    where: int
    text: Text


@dataclass(frozen=True)
class Edit:
    """Someone edits their last message in a chat (writing one first if there is none)."""

    who: int
    where: int
    text: Text


@dataclass(frozen=True)
class RealData:
    """A button the message really has (the k-th), or any real data if it has none."""

    k: int

    def resolve(self, message: StoredMessage, seen: Sequence[str]) -> str:
        pool = message.callback_data or list(seen) or ["L:0:0:0:n"]
        return pool[self.k % len(pool)]


@dataclass(frozen=True)
class Mutated:
    """Real callback data, tampered with: a number replaced, cut short, lengthened, ..."""

    k: int
    how: str
    position: int
    junk: str

    def resolve(self, message: StoredMessage, seen: Sequence[str]) -> str:
        real = RealData(self.k).resolve(message, [*message.callback_data, *seen])
        return bounded(mutate(real, self.how, self.position, self.junk))


@dataclass(frozen=True)
class Junk:
    """Data no button of ours ever carried."""

    data: str

    def resolve(self, message: StoredMessage, seen: Sequence[str]) -> str:
        return bounded(self.data)


@dataclass(frozen=True)
class Press:
    """Someone presses a button on one of the bot's messages in a chat, with these data."""

    who: int
    where: int
    message: int
    data: RealData | Mutated | Junk
    double: bool = False  # an impatient double tap: the second press before the first is done
    follow: bool = False  # in the chat of the action before, if the presser is in it


Action = Say | Edit | Press
SAME = -1  # `who` for the one who acted last


def mutate(real: str, how: str, position: int, junk: str) -> str:
    runs = list(re.finditer(r"-?[0-9]+", real))
    if how == "digits" and runs:
        run = runs[position % len(runs)]
        return real[: run.start()] + junk + real[run.end() :]
    if how == "cut":
        return real[: position % (len(real) + 1)] + junk[:1]
    if how == "append":
        return real + junk
    if how == "prefix":
        return junk + real[real.find(":") + 1 :]
    if how == "insert":
        at = position % (len(real) + 1)
        return real[:at] + junk + real[at:]
    return real.swapcase()


def bounded(data: str) -> str:
    """Callback data as Telegram carries it: 1 to 64 bytes of UTF-8."""
    raw = data.encode("utf-8", errors="replace")[:64].decode("utf-8", errors="ignore")
    return raw or "?"


async def seed(db_url: str) -> None:
    """The bundled sample feed's stories, in their sections."""
    engine = make_engine(db_url)
    try:
        entries = parse_feed(SAMPLE.read_bytes(), source="sample").entries
        async with make_session_factory(engine).begin() as session:
            await store_entries(
                session, list(entries), now=NOW, category_map={}, default_section="General"
            )
    finally:
        await engine.dispose()


@asynccontextmanager
async def running_world(
    server: FakeBotApiServer, db_url: str, **overrides: Any
) -> AsyncIterator[World]:
    """The real bot on a seeded database, polling the fake server, with ERROR records caught."""
    assert server.emulator.bot_username == BOT
    await seed(db_url)
    for editor in EDITORS:
        server.emulator.add_user(editor, f"Editor {editor}")
    settings = e2e_settings(server, db_url, admin_ids=EDITORS, **overrides)
    with logged_errors() as errors:
        async with running_bot(server, settings, now=NOW) as app:
            yield World(app, server, db_url, errors)


# ---- strategies ----------------------------------------------------------------------------

# Any text but lone surrogates (which JSON cannot carry): control characters, RTL marks,
# emoji, combining marks, CJK, NUL.
noise = st.text(max_size=40)
html_like = st.lists(st.one_of(st.sampled_from(HTML_BITS), noise), min_size=1, max_size=6).map(
    "".join
)
long_text = st.builds(Repeated, st.text(min_size=1, max_size=12), st.integers(200, 4096))
argument = st.one_of(st.sampled_from(PLAUSIBLE_ARGS), noise, html_like)
arguments = st.one_of(
    st.just(""),
    st.lists(argument, min_size=1, max_size=4).map(lambda words: " " + " ".join(words)),
    long_text.map(lambda t: Repeated(t.unit, t.length, " ")),
)


def addressee(bot_username: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        ["", "", "", f"@{bot_username}", f"@{bot_username.upper()}", "@otherbot",
         f"@{bot_username}x", f"@x{bot_username}", "@", f"@{bot_username[:-1]}"]
    )  # fmt: skip


def commands(bot_username: str) -> st.SearchStrategy[Text]:
    name = st.one_of(
        st.sampled_from(KNOWN_COMMANDS),
        st.sampled_from(KNOWN_COMMANDS).map(str.upper),
        st.from_regex(r"[A-Za-z0-9_]{1,40}", fullmatch=True),
    )
    return st.builds(
        lambda n, at, args: (
            args.after(f"/{n}{at}") if isinstance(args, Repeated) else f"/{n}{at}{args}"
        ),
        name,
        addressee(bot_username),
        arguments,
    )


def texts(bot_username: str) -> st.SearchStrategy[Text]:
    """What a person may write: commands mostly, and any text; never empty."""
    anything = st.one_of(
        noise,
        html_like,
        long_text,
        st.sampled_from(["/", "//latest", " /latest", "/latest\n/help", f"@{bot_username} hi"]),
    )
    return st.one_of(commands(bot_username), commands(bot_username), anything).filter(
        lambda t: str(t).strip() != ""
    )


huge = st.integers(min_value=2**31 - 2, max_value=10**40).map(str)
digit_junk = st.one_of(
    st.sampled_from(ODD_DIGITS), huge, st.integers(-(2**63), 2**63).map(str), noise
)
junk_data = st.one_of(
    st.binary(min_size=1, max_size=64).map(lambda b: b.decode("latin-1")),
    st.binary(min_size=1, max_size=64).map(lambda b: b.decode("utf-8", errors="replace")),
    st.text(min_size=1, max_size=64),
    st.tuples(st.sampled_from(PREFIXES), st.one_of(digit_junk, noise)).map("".join),
)
button_data = st.one_of(
    st.builds(RealData, st.integers(0, 200)),
    st.builds(
        Mutated,
        st.integers(0, 200),
        st.sampled_from(["digits", "digits", "cut", "append", "prefix", "insert", "case"]),
        st.integers(0, 100),
        digit_junk,
    ),
    st.builds(Junk, junk_data),
)
who = st.integers(0, 4)
where = st.integers(0, 2)


def says(bot_username: str) -> st.SearchStrategy[Action]:
    return st.builds(Say, who, where, texts(bot_username))


def edits(bot_username: str) -> st.SearchStrategy[Action]:
    return st.builds(Edit, who, where, texts(bot_username))


def presses() -> st.SearchStrategy[Action]:
    return st.builds(
        Press, who, where, st.integers(0, 50), button_data, st.sampled_from([False] * 4 + [True])
    )


BREAKING_ARGS = (
    "world Earthquake hits the coast; rescue under way",
    "all Storm warning for the north",
    "Politics Vote tonight\nThe second line is its summary",
    "https://meridian.example/world/2026/11/30/storm-warning-pact",
    "https://meridian.example/new/breaking-story",
    "sports",
    "<b>bold</b> & <i>brave</i>",
)
OPENERS = (
    "/latest", "/latest world", "/latest politics", "/start", "/settings", "/unsubscribe",
    "/subscribe", "/sections", "/digest now", "/stats",
)  # fmt: skip


def flows() -> st.SearchStrategy[list[Action]]:
    """A command that sends buttons, then presses on them: by the same person mostly, with
    their own data or tampered data. Editors draft most of the /breaking previews."""
    breaking = st.builds(
        lambda args, at: f"/breaking{at} {args}",
        st.one_of(st.sampled_from(BREAKING_ARGS), noise),
        st.sampled_from(["", f"@{BOT}"]),
    )
    opener = st.one_of(
        st.builds(Say, st.sampled_from([0, 0, 1, 2, 3]), where, breaking),
        st.builds(Say, who, where, st.sampled_from(OPENERS)),
    )
    press = st.builds(
        Press,
        st.sampled_from([SAME, SAME, SAME, 0, 1, 2, 3]),
        where,
        st.sampled_from([-1, -1, -1, -2, 0]),
        st.one_of(st.builds(RealData, st.integers(0, 100)), button_data),
        st.sampled_from([False] * 3 + [True]),
        st.just(True),
    )
    return st.builds(lambda first, then: [first, *then], opener, st.lists(press, max_size=5))


def scenario(
    *singles: st.SearchStrategy[Action], max_size: int = 25
) -> st.SearchStrategy[list[Action]]:
    """A list of actions: single ones and flows (see `flows`)."""
    step = st.one_of(*(s.map(lambda a: [a]) for s in singles), flows())
    return st.lists(step, min_size=1, max_size=max_size).map(
        lambda steps: [action for part in steps for action in part]
    )
