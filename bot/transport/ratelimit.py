"""One rate limiter for everything the bot sends, plugged into PTB as its ``BaseRateLimiter``.

Why one module of over 600 lines: the gates, the priority queue, the pause on ``RetryAfter``
and the limiter that wires them share one lock-free timing model on the event loop (every
grant is decided by one clock reading against all of them); split apart, each piece would
have to expose its internals to the others.

Compared with PTB's ``AIORateLimiter`` it adds a per-private-chat limit, orders requests by
priority, and answers a ``RetryAfter`` by pausing only the chat it came from.

A request goes through up to two gates, in this order:

1. its chat's gate (methods that post or edit in a chat and name a ``chat_id``): private chats
   (positive ids) get ``private_per_sec`` with a burst of ``private_burst``; groups, supergroups
   and channels (negative ids or ``@username``) get ``group_per_min``;
2. the bot-wide gate: ``overall_per_sec``, or Telegram's paid-broadcast ceiling for requests
   that carry ``allow_paid_broadcast``.

Getters, ``set*`` and ``answer*`` methods skip both gates. Other methods (deleteMessage,
pinChatMessage, sendChatAction, ...) pass only the bot-wide gate.

Each gate schedules with GCRA (a token bucket kept as one "theoretical arrival time"), so a
limit is evenly spaced sends plus an optional burst. The paid-broadcast gate also keeps a
moving window, Telegram's "up to 1000 messages per second" as written: at most 1000 sends in
any one second, paced within it (``PAID_PACE``). Groups are spaced at 3 s rather than
allowed a sliding window of 20 per 60 s: it needs one float per group instead of up to 20
timestamps, follows the same code path as private chats, and never lets 20 messages go out
in the first second, a burst that Telegram's short-term flood control can still punish.

A chat lets one request at a time wait for the bot-wide gate, so a busy chat can't hoard
bot-wide slots, and its send time is what its chat's spacing counts from. If a more urgent
request joins that chat's queue, the waiting request is promoted to the newcomer's priority
in the bot-wide queue, so a reader's reply never queues behind their own bulk digest.

Several processes of one bot share Telegram's limits through an optional ``SharedBudget``
(``bot.transport.budget``: moving windows in Redis). With one, a request that passed both local
gates also draws from the shared budget before it goes out, in this order:

3. one bot-wide send (normal or paid). While the shared budget is spent, this process's
   waiting requests form one more queue, served by a single drainer task in (priority,
   arrival) order: it asks Redis for the best waiting request, sleeps until the window frees
   a send (at most 1 s, then asks again) and hands each won send to whoever is most urgent at
   that moment, so a request that arrived meanwhile is not overtaken by older bulk ones;
4. one send for its chat, if it has one. If another process has just spent it, the request
   gives up its turn and its chat is paused here until the chat's window frees a send (when
   its oldest send leaves the window, known exactly, so there is no polling): only that chat
   waits, and the request then queues again for every gate.

The bot-wide send is taken before the chat's so that both are taken right before the request
leaves: taking the chat's first would let a chat's token sit unused while its request waits
for a bot-wide one (seconds, under a backlog), and the next process could then send to that
chat that much too soon. What remains inexact, and why it is safe:

- a token is taken slightly before the send leaves (a Redis round trip or two, the drainer
  waking its request, any wait for a free HTTP connection), so sends can be that much closer
  together than their tokens; this is milliseconds, and the limits are paced about 3% under
  Telegram's (``PACE`` in app.py), which the windows' whole numbers round further down;
- a bot-wide send taken for a request that then cannot go (its chat spent elsewhere, a 429
  pause, or the request was cancelled) is lost: the processes send a little less, never more;
- each process stamps its sends with its own wall clock, so clocks must agree (NTP keeps
  them within milliseconds): a process whose clock runs ahead of another's sees the other's
  sends leave the window early, by the difference;
- while Redis is unreachable each process falls back to its own limits, which is up to N times
  the budget for N processes until Redis answers again (logged once as a WARNING);
- a 429 pauses a chat, or the bot-wide gate, in the process that got it only.

Getters, ``set*`` and ``answer*`` methods never touch the shared budget.

Why one module over 600 lines: the two gates, the chats' queues, the promotion between them
and the shared budget's drainer share one scheduler's state and its lock-free ordering; split
apart, each piece would reach into the others' queues.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dtm
import heapq
import itertools
import logging
import math
import time
import warnings
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, TypeAlias

from limits import RateLimitItem
from telegram.constants import FloodLimit
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning

from bot.transport.budget import SharedBudget, is_private_chat

__all__ = [
    "PAID_BROADCAST_ENDPOINTS",
    "PAID_BROADCAST_PRIORITIES",
    "PAID_BURST",
    "PAID_PACE",
    "PAID_PER_SEC",
    "PAID_TICK",
    "Priority",
    "PriorityArg",
    "PriorityRateLimiter",
    "RateLimiterClosedError",
    "RateLimiterStats",
    "retry_after_seconds",
]

_LOGGER = logging.getLogger(__name__)

JSONDict: TypeAlias = dict[str, Any]
Result: TypeAlias = bool | JSONDict | list[JSONDict]
Callback: TypeAlias = Callable[..., Coroutine[Any, Any, Result]]
ChatKey: TypeAlias = int | str


class Priority(IntEnum):
    """Who is waiting for a request: a lower value is sent first."""

    INTERACTIVE = 0  # a reply to a reader's own command or button
    BREAKING = 1  # a breaking-news push
    BULK = 2  # scheduled digests and other broadcasts


PriorityArg: TypeAlias = Priority | int | Mapping[str, Any]
"""What ``rate_limit_args`` may be: a Priority, its int value, or ``{"priority": ...}``."""

PAID_BROADCAST_ENDPOINTS = frozenset({"sendMessage"})
"""Endpoints that get ``allow_paid_broadcast=True`` when paid broadcast is on."""
PAID_PER_SEC = FloodLimit.PAID_MESSAGES_PER_SECOND
"""Paid broadcasts: Telegram's "up to 1000 messages per second", kept as a moving window, never
more than 1000 sends in any one second (as the shared budget counts them, see
bot.transport.budget)."""
PAID_PACE = 1250.0
PAID_BURST = 50
"""Within that window the sends are paced at no more than 1250/s, in bursts of up to a
delivery batch (50): a broadcast is spread over each second rather than sent as 1000 at once,
and a batch's requests leave together, so the engine marks them SENDING in a few statements
instead of one each millisecond. Pacing faster than the window lets a broadcast keep Telegram's
full 1000/s: a send that leaves a little late (a busy event loop) is made up within the second
instead of lost, as it would be under a pace of exactly 1000/s."""
PAID_TICK = 0.005
"""A paid gate that must wait wakes at most every 5 ms and lets through every send that has
become due meanwhile: a few sends per wake-up instead of a timer (and an event-loop turn) for
each one. A pace with a burst of 50 loses nothing by it; the window loses at most the tick
once per second."""
PAID_BROADCAST_PRIORITIES = frozenset({Priority.BREAKING, Priority.BULK})
"""Broadcasts (breaking pushes, digests, alerts) go paid; a reply to a reader never does."""

_UNLIMITED_PREFIXES = ("get", "set", "answer")
_UNLIMITED_ENDPOINTS = frozenset({"deleteWebhook", "deleteMyCommands", "logOut", "close"})
_CHAT_PREFIXES = ("send", "editMessage")
_CHAT_ENDPOINTS = frozenset(
    {
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "stopMessageLiveLocation",
        "stopPoll",
    }
)
_NOT_CHAT_ENDPOINTS = frozenset({"sendChatAction"})
_SWEEP_MIN = 1024
_WINDOW = 1.0  # seconds: a gate's window of sends (paid broadcasts' 1000 in any second)
_SHARED_MAX_WAIT = 1.0
"""Longest the drainer sleeps before asking the shared budget again."""


class RateLimiterClosedError(RuntimeError):
    """The limiter was shut down while a request waited for its turn; it was not sent."""


@dataclass
class RateLimiterStats:
    """Counters for the benchmark and for metrics."""

    sent: int = 0
    """Requests whose callback returned (each request once, however many attempts)."""
    sent_by_priority: dict[Priority, int] = field(
        default_factory=lambda: dict.fromkeys(Priority, 0)
    )
    paid_broadcast_sent: int = 0
    retry_after_count: int = 0
    """Every 429 seen, including those re-raised."""
    retry_after_raised: int = 0
    """429s handed back to the caller: too long to wait, or out of retries."""
    shared_waits: int = 0
    """Requests that found the shared bot-wide budget spent and queued for it."""
    shared_chat_waits: int = 0
    """Times a chat's shared budget was spent (another process had just sent to it)."""


def retry_after_seconds(exc: RetryAfter) -> float:
    """Seconds to wait from a ``RetryAfter``, whether PTB reports an int or a timedelta."""
    with warnings.catch_warnings():
        # PTB 22 warns that the int form is deprecated; either form is handled below.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    if isinstance(value, dtm.timedelta):
        return value.total_seconds()
    return float(value)


def parse_priority(rate_limit_args: PriorityArg | None) -> Priority:
    """Read the priority from a call's ``rate_limit_args``; none means INTERACTIVE."""
    value: object = rate_limit_args
    if isinstance(value, Mapping):
        value = value.get("priority")
    if value is None:
        return Priority.INTERACTIVE
    if isinstance(value, int) and not isinstance(value, bool):
        return Priority(value)
    raise TypeError(f"rate_limit_args must be a Priority, an int or a dict, not {value!r}")


class _Kind(Enum):
    UNLIMITED = "unlimited"
    OVERALL = "overall"
    CHAT = "chat"


def _classify(endpoint: str) -> _Kind:
    if endpoint in _UNLIMITED_ENDPOINTS or endpoint.startswith(_UNLIMITED_PREFIXES):
        return _Kind.UNLIMITED
    if endpoint in _NOT_CHAT_ENDPOINTS:
        return _Kind.OVERALL
    if endpoint in _CHAT_ENDPOINTS or endpoint.startswith(_CHAT_PREFIXES):
        return _Kind.CHAT
    return _Kind.OVERALL


def _chat_key(data: Mapping[str, Any]) -> ChatKey | None:
    chat_id = data.get("chat_id")
    if isinstance(chat_id, bool):
        return None
    if isinstance(chat_id, int):
        return chat_id
    if isinstance(chat_id, str):
        with contextlib.suppress(ValueError):
            return int(chat_id)
        return chat_id  # "@channelusername"
    return None


@dataclass(eq=False)
class _Ticket:
    """One request's place in line; it keeps its place across retries."""

    priority: Priority
    seq: int
    waiting_at: _Gate | _SharedQueue | None = None
    future: asyncio.Future[None] | None = None

    def promote(self, priority: Priority) -> None:
        if priority < self.priority and self.waiting_at is not None:
            self.waiting_at.promote(self, priority)


@dataclass(order=True)
class _Entry:
    priority: Priority
    seq: int
    push: int
    ticket: _Ticket = field(compare=False)
    future: asyncio.Future[None] = field(compare=False)


class _Waiters:
    """Requests waiting their turn, most urgent first; a promoted one is pushed again and its
    old entry goes stale (whichever is reached first wins)."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._pushes = itertools.count()

    def __bool__(self) -> bool:
        return bool(self._heap)

    def push(self, ticket: _Ticket, priority: Priority, future: asyncio.Future[None]) -> None:
        heapq.heappush(self._heap, _Entry(priority, ticket.seq, next(self._pushes), ticket, future))

    def promote(self, ticket: _Ticket, priority: Priority) -> None:
        if ticket.future is not None and not ticket.future.done():
            ticket.priority = priority
            self.push(ticket, priority, ticket.future)

    def drop_stale(self) -> None:
        while self._heap and self._heap[0].future.done():
            heapq.heappop(self._heap)

    def pop(self) -> _Entry:
        return heapq.heappop(self._heap)

    def settle_all(self, exc: BaseException | None = None) -> None:
        """Fail every waiter with `exc`, or let every one through with None."""
        for entry in self._heap:
            if not entry.future.done():
                if exc is None:
                    entry.future.set_result(None)
                else:
                    entry.future.set_exception(exc)
        self._heap.clear()


class _Gate:
    """Lets waiters through lowest (priority, seq) first, no faster than a GCRA limit allows.

    A shared gate spends the slot when it lets a waiter through. An exclusive gate (one per
    chat) hands the slot as a lease to one waiter at a time; the holder spends it with
    ``commit`` when it actually sends, and ``release`` lets the next waiter in.
    """

    def __init__(
        self,
        *,
        per_sec: float,
        burst: int,
        clock: Callable[[], float],
        exclusive: bool,
        window: int = 0,
        tick: float = 0.0,
    ) -> None:
        self._interval = 1 / per_sec if per_sec > 0 else 0.0
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._exclusive = exclusive
        # the last `window` sends' times: at most that many in any one second, on top of the
        # pace (None: no window, as for every chat's gate)
        self._sent: collections.deque[float] | None = (
            collections.deque(maxlen=window) if window > 0 else None
        )
        self._tick = tick  # the shortest wait before a waiting gate looks again
        self._tat = -math.inf  # theoretical arrival time of the next send
        self._paused_until = -math.inf
        self._waiters = _Waiters()
        self._timer: asyncio.TimerHandle | None = None
        self._holder: _Ticket | None = None
        self._closed = False

    def ready_at(self) -> float:
        ready = max(self._tat - self._tolerance, self._paused_until)
        if self._sent is not None and len(self._sent) == self._sent.maxlen:
            # the window's oldest send must have left the last second
            ready = max(ready, self._sent[0] + _WINDOW)
        return ready

    def commit(self, now: float) -> None:
        self._tat = max(self._tat, now) + self._interval
        if self._sent is not None:
            self._sent.append(now)

    def pause_until(self, until: float) -> None:
        # Only ever delays, so an armed timer just fires early and re-arms.
        self._paused_until = max(self._paused_until, until)

    def is_idle(self, now: float) -> bool:
        """True if forgetting this gate changes nothing: a fresh one would act the same."""
        self._waiters.drop_stale()
        return (
            not self._waiters
            and self._holder is None
            and self._tat <= now
            and self._paused_until <= now
        )

    async def acquire(self, ticket: _Ticket) -> None:
        if self._closed:
            raise RateLimiterClosedError("rate limiter is shut down")
        now = self._clock()
        self._waiters.drop_stale()
        if not self._waiters and self._holder is None and self.ready_at() <= now:
            self._grant(ticket, now)
            return
        if self._holder is not None:
            self._holder.promote(ticket.priority)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ticket.waiting_at, ticket.future = self, future
        self._waiters.push(ticket, ticket.priority, future)
        if self._timer is None:
            self._dispatch()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                # Let through, then cancelled before it could run: hand the lease on.
                self.release(ticket)
            raise
        finally:
            ticket.waiting_at, ticket.future = None, None

    def release(self, ticket: _Ticket) -> None:
        if self._holder is ticket:
            self._holder = None
            self._dispatch()

    def promote(self, ticket: _Ticket, priority: Priority) -> None:
        self._waiters.promote(ticket, priority)

    def close(self, exc: BaseException) -> None:
        self._closed = True
        self._cancel_timer()
        self._waiters.settle_all(exc)

    def _grant(self, ticket: _Ticket, now: float) -> None:
        if self._exclusive:
            self._holder = ticket
        else:
            self.commit(now)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _dispatch(self) -> None:
        self._cancel_timer()
        while True:
            self._waiters.drop_stale()
            if not self._waiters or self._holder is not None:
                return
            now = self._clock()
            ready_at = self.ready_at()
            if ready_at > now:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(max(ready_at - now, self._tick), self._dispatch)
                return
            entry = self._waiters.pop()
            self._grant(entry.ticket, now)
            entry.future.set_result(None)


def _spacing(window: RateLimitItem | None) -> float:
    """Seconds between two sends at a window's rate (0 for no window)."""
    if window is None:
        return 0.0
    return window.get_expiry() / window.amount


class _SharedQueue:
    """This process's requests waiting for a shared bot-wide budget, most urgent first.

    While nobody waits, a request asks the budget itself. Once one is refused, later ones
    queue behind it and a single drainer task asks on behalf of whoever is most urgent, so
    the shared sends this process wins go out in (priority, arrival) order, not in a race.
    """

    def __init__(
        self,
        take: Callable[[], Coroutine[Any, Any, float]],
        stats: RateLimiterStats,
        *,
        spacing: float = 0.0,
    ) -> None:
        self._take = take
        self._stats = stats
        self._spacing = spacing
        self._waiters = _Waiters()
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False

    async def acquire(self, ticket: _Ticket) -> None:
        if self._closed:
            raise RateLimiterClosedError("rate limiter is shut down")
        self._waiters.drop_stale()
        wait = 0.0
        if not self._waiters and self._drainer is None:
            wait = await self._take()
            if wait <= 0:
                return
            if self._closed:
                raise RateLimiterClosedError("rate limiter is shut down")
        self._stats.shared_waits += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ticket.waiting_at, ticket.future = self, future
        self._waiters.push(ticket, ticket.priority, future)
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain(wait))
        try:
            # Cancelled, the entry goes stale; a send already won for it is simply unused.
            await future
        finally:
            ticket.waiting_at, ticket.future = None, None

    def promote(self, ticket: _Ticket, priority: Priority) -> None:
        self._waiters.promote(ticket, priority)

    def close(self, exc: BaseException) -> None:
        self._closed = True
        if self._drainer is not None:
            self._drainer.cancel()
            self._drainer = None
        self._waiters.settle_all(exc)

    async def _drain(self, wait: float) -> None:
        try:
            while True:
                if wait > 0:
                    await asyncio.sleep(min(wait, _SHARED_MAX_WAIT))
                self._waiters.drop_stale()
                if not self._waiters:
                    return
                wait = await self._take()
                if wait > 0:
                    continue
                # Whoever is most urgent now gets it, even if they arrived during the take.
                self._waiters.drop_stale()
                if self._waiters:
                    self._waiters.pop().future.set_result(None)
                # Won sends leave this process evenly spaced at the shared rate, not in a
                # cluster when several free up at once: a moving window would replay a
                # cluster a second later, and clustered sends from several processes are
                # what arrival jitter turns into more than the limit in one second.
                wait = self._spacing
        finally:
            if self._drainer is asyncio.current_task():
                self._drainer = None
            if not self._closed:
                # Only if the drainer failed: never leave requests waiting with nobody to wake
                # them; they go out under the local limits, like when Redis is unreachable.
                self._waiters.settle_all()


class PriorityRateLimiter(BaseRateLimiter[PriorityArg]):
    """Throttles the bot's requests per chat and overall, most urgent first.

    Plug it in with ``ApplicationBuilder().rate_limiter(PriorityRateLimiter(...))`` and pass
    ``rate_limit_args=Priority.BULK`` (or BREAKING) on sends that may wait. Give every process
    of one bot the same ``shared`` budget (``SharedBudget.from_url``) to keep them together
    under Telegram's limits; the caller owns it (and its ``aclose``).
    """

    def __init__(
        self,
        *,
        overall_per_sec: float = 30,
        private_per_sec: float = 1,
        private_burst: int = 1,
        group_per_min: float = 20,
        max_retries: int = 3,
        max_retry_after: float = 60.0,
        paid_broadcast: bool = False,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedBudget | None = None,
    ) -> None:
        for name, value in (
            ("overall_per_sec", overall_per_sec),
            ("private_per_sec", private_per_sec),
            ("group_per_min", group_per_min),
            ("max_retries", max_retries),
            ("max_retry_after", max_retry_after),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if private_burst < 1:
            raise ValueError(f"private_burst must be >= 1, got {private_burst}")
        self._overall_per_sec = overall_per_sec
        self._private_per_sec = private_per_sec
        self._private_burst = private_burst
        self._group_per_sec = group_per_min / 60
        self._max_retries = max_retries
        self._max_retry_after = max_retry_after
        self._paid_broadcast = paid_broadcast
        self._clock = clock
        self._shared = shared
        self._seq = itertools.count()
        self.stats = RateLimiterStats()
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        self._overall = self._new_gate(self._overall_per_sec, exclusive=False)
        self._paid = self._new_gate(
            PAID_PACE, exclusive=False, burst=PAID_BURST, window=int(PAID_PER_SEC), tick=PAID_TICK
        )
        self._chats: dict[ChatKey, _Gate] = {}
        self._sweep_at = _SWEEP_MIN
        self._shared_sends: _SharedQueue | None = None
        self._shared_paid: _SharedQueue | None = None
        if self._shared is not None:
            budget = self._shared
            windows = budget.windows
            self._shared_sends = _SharedQueue(
                lambda: budget.take_send(paid=False),
                self.stats,
                # time slots spread the sends already: spacing them here too only loses slots
                spacing=0.0 if budget.even else _spacing(windows.get("overall")),
            )
            self._shared_paid = _SharedQueue(
                lambda: budget.take_send(paid=True),
                self.stats,
                spacing=_spacing(windows.get("paid")),
            )

    def _new_gate(
        self,
        per_sec: float,
        *,
        exclusive: bool,
        burst: int = 1,
        window: int = 0,
        tick: float = 0.0,
    ) -> _Gate:
        return _Gate(
            per_sec=per_sec,
            burst=burst,
            clock=self._clock,
            exclusive=exclusive,
            window=window,
            tick=tick,
        )

    async def initialize(self) -> None:
        """Open the limiter again if it was shut down."""
        if self._closed:
            self._reset()
            self._closed = False

    async def shutdown(self) -> None:
        """Stop all timers and fail every waiting request with RateLimiterClosedError."""
        self._closed = True
        exc = RateLimiterClosedError("rate limiter shut down before the request was sent")
        for gate in (self._overall, self._paid, *self._chats.values()):
            gate.close(exc)
        self._chats.clear()
        for queue in (self._shared_sends, self._shared_paid):
            if queue is not None:
                queue.close(exc)

    @property
    def tracked_chats(self) -> int:
        """How many chats have limiter state right now (idle ones are evicted)."""
        return len(self._chats)

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: PriorityArg | None,
    ) -> Result:
        """Send one request when its chat and the bot may, retrying short flood waits."""
        priority = parse_priority(rate_limit_args)
        kind = _classify(endpoint)
        if kind is _Kind.UNLIMITED:
            result = await callback(*args, **kwargs)
            self._count_sent(priority, paid=False)
            return result

        if (
            self._paid_broadcast
            and priority in PAID_BROADCAST_PRIORITIES
            and endpoint in PAID_BROADCAST_ENDPOINTS
        ):
            # PTB passes this same dict in args, so the flag reaches the request.
            data["allow_paid_broadcast"] = True
        paid = bool(data.get("allow_paid_broadcast"))
        chat = _chat_key(data) if kind is _Kind.CHAT else None
        ticket = _Ticket(priority, next(self._seq))

        retries = 0
        while True:
            if self._closed:
                raise RateLimiterClosedError("rate limiter is shut down")
            send_gate = self._paid if paid else self._overall
            chat_gate = self._chat_gate(chat) if chat is not None else None
            shared = self._shared_paid if paid else self._shared_sends
            if not await self._wait_turn(ticket, chat, chat_gate, send_gate, shared):
                continue
            try:
                result = await callback(*args, **kwargs)
            except RetryAfter as exc:
                wait = retry_after_seconds(exc)
                self.stats.retry_after_count += 1
                if wait > self._max_retry_after or retries >= self._max_retries:
                    self.stats.retry_after_raised += 1
                    _LOGGER.warning(
                        "429 on %s for chat %s: retry_after %.1f s, giving up after %d retries",
                        endpoint,
                        chat,
                        wait,
                        retries,
                    )
                    raise
                retries += 1
                _LOGGER.warning(
                    "429 on %s for chat %s: waiting %.1f s before retry %d of %d",
                    endpoint,
                    chat,
                    wait,
                    retries,
                    self._max_retries,
                )
                # Look the chat up again: its gate may have been evicted while we were sending.
                paused = self._chat_gate(chat) if chat is not None else send_gate
                paused.pause_until(self._clock() + wait)
                continue
            self._count_sent(priority, paid=paid)
            return result

    async def _wait_turn(
        self,
        ticket: _Ticket,
        chat: ChatKey | None,
        chat_gate: _Gate | None,
        send_gate: _Gate,
        shared: _SharedQueue | None,
    ) -> bool:
        """Wait for the chat's slot, then the bot-wide ones; False if the chat got paused."""
        if chat is None or chat_gate is None:
            await send_gate.acquire(ticket)
            if shared is not None:
                await shared.acquire(ticket)
            return True
        await chat_gate.acquire(ticket)
        try:
            await send_gate.acquire(ticket)
            if shared is not None:
                await shared.acquire(ticket)
            if chat_gate.ready_at() > self._clock():
                # A 429 paused the chat while we waited for the bot-wide slot: queue again.
                return False
            if self._shared is not None:
                wait = await self._shared.take_chat(chat)
                if wait > 0:
                    # Another process has just spent this chat's budget: only this chat waits.
                    self.stats.shared_chat_waits += 1
                    chat_gate.pause_until(self._clock() + wait)
                    return False
            now = self._clock()
            if chat_gate.ready_at() > now:
                return False
            chat_gate.commit(now)
            return True
        finally:
            chat_gate.release(ticket)

    def _chat_gate(self, chat: ChatKey) -> _Gate:
        gate = self._chats.get(chat)
        if gate is None:
            if len(self._chats) >= self._sweep_at:
                self._evict_idle()
            if is_private_chat(chat):
                gate = self._new_gate(
                    self._private_per_sec, exclusive=True, burst=self._private_burst
                )
            else:
                gate = self._new_gate(self._group_per_sec, exclusive=True)
            self._chats[chat] = gate
        return gate

    def _evict_idle(self) -> None:
        now = self._clock()
        self._chats = {chat: gate for chat, gate in self._chats.items() if not gate.is_idle(now)}
        # Sweep again only once the table has doubled, so sweeping costs O(1) per request.
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._chats))

    def _count_sent(self, priority: Priority, *, paid: bool) -> None:
        self.stats.sent += 1
        self.stats.sent_by_priority[priority] += 1
        if paid:
            self.stats.paid_broadcast_sent += 1
