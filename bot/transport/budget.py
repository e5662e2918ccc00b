"""One send budget for every process of a bot, kept in Redis through the ``limits`` library.

Telegram counts its limits per bot token, not per process, so when several ``newsbot run``
processes share a token they must also share what they may send. Each process keeps its own
``PriorityRateLimiter`` (priorities, even pacing, 429 pauses) and, before a request leaves,
also takes one send from this shared budget: one for its chat and one bot-wide.

Every limit is a ``limits`` moving window (a list of recent send times per key, checked and
appended atomically by the library's own Redis scripts). Windows are whole seconds and amounts
whole sends, so a paced rate such as 29.1/s is floored, never below 1:

- bot-wide: ``floor(overall_per_sec)`` sends in any 1 s; paid broadcasts have their own
  window of ``floor(paid_per_sec)`` in any 1 s, as they have their own gate in the limiter;
- a private chat, at rate ``P = max(1, floor(private_per_sec))`` with burst ``B``:
  ``P * W`` sends in any ``W = ceil(B / P)`` seconds. With the usual ``P = 1`` that is ``B``
  sends in any ``B`` seconds, never more than a token bucket of ``B`` refilled at 1/s lets
  through in any stretch of time (the bucket allows ``B + t`` in ``t`` seconds, the window
  at most ``B * ceil(t / B)``), so the receiver never sees more than the burst it tolerates;
- a group, supergroup or channel: ``max(1, floor(group_per_min))`` sends in any 60 s.

With ``even`` (as ``newsbot run`` builds it), a bot-wide send also takes a time slot: each
second is cut into ``floor(overall_per_sec) + 1`` slots, and a slot (a key of its own, one send
per moving second) goes to one send of one process. A moving window alone lets the processes
fill a second's sends in its first few milliseconds when they all have work, and then replays
that cluster a second later as old sends leave the window; arrival jitter of a few ms then
puts one send too many into Telegram's second. Slots spread the sends evenly instead.

Rates under 1/s are therefore rounded up to 1/s in the shared budget; each process's own gate
still paces at the configured rate. A rate of 0 disables its window, as it disables the gate.
The shared windows are ceilings that keep the processes together under Telegram's limits;
the local gates do the even pacing.

Keys are ``<namespace>:<bot id>/<what>/...``, so two bots on one Redis never share a budget.
A key carries its window's amount and length, so processes configured with different limits
(during a rolling change of the limits) count in different windows until all run the same.

If Redis cannot be reached or answers with an error, sending goes on under each process's
local limits alone: one WARNING is logged, Redis is tried again every ``retry_every`` seconds
by a single request (the others do not wait for it), and an INFO line says when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Final

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from telegram.constants import FloodLimit

__all__ = ["SharedBudget", "bot_id_from_token", "is_private_chat", "storage_url"]

_LOGGER = logging.getLogger(__name__)

_SCHEMES: Final = {"redis", "rediss", "redis+unix", "memory"}
_MIN_WAIT: Final = 0.005
"""Shortest wait reported, so a caller racing other processes for a slot never spins."""


def storage_url(url: str) -> str:
    """Turn ``redis://host:port/db`` (as operators write it) into the URL ``limits`` expects.

    ``limits`` picks its asyncio storage by an ``async+`` scheme: ``async+redis://...``.
    ``rediss://`` (TLS), ``redis+unix://`` and ``memory://`` (one process only, for tests)
    are accepted too; a URL that already starts with ``async+`` is kept as it is.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("the shared budget URL must look like redis://host:port/db")
    scheme = scheme.lower().removeprefix("async+")
    if scheme not in _SCHEMES:
        # The URL may hold a password: name only its scheme.
        raise ValueError(f"unsupported scheme {scheme!r} for the shared budget: use redis://")
    return f"async+{scheme}://{rest}"


def bot_id_from_token(token: str) -> str:
    """The bot's numeric id: the part of its token before the colon."""
    bot_id, sep, _secret = token.partition(":")
    if not sep or not bot_id.isdigit():
        raise ValueError("a bot token starts with the bot's numeric id and a colon")
    return bot_id


def is_private_chat(chat: int | str) -> bool:
    """Private chats have positive ids; groups and channels negative ids or an @username."""
    return isinstance(chat, int) and chat > 0


def _whole(rate: float) -> int:
    return max(1, math.floor(rate))


def _per_second(rate: float, *, prefix: str, burst: int = 1) -> RateLimitItem | None:
    if rate <= 0:
        return None
    whole = _whole(rate)
    window = math.ceil(burst / whole)
    return RateLimitItemPerSecond(whole * window, window, namespace=prefix)


class SharedBudget:
    """What all processes of one bot may still send, as moving windows in a ``limits`` storage.

    ``take_chat`` and ``take_send`` take one send and return 0.0, or take nothing and return
    how many seconds until the window frees a send (another process may win it first).
    Neither ever raises for a storage failure: they return 0.0 and the caller's local limits
    alone apply until the storage answers again.

    ``wall_clock`` must be the clock the storage stamps sends with (``time.time`` for Redis
    and ``limits``' memory storage); ``clock`` times the retries of an unreachable storage.
    """

    def __init__(
        self,
        storage: Storage,
        *,
        key_prefix: str,
        overall_per_sec: float = 30,
        private_per_sec: float = 1,
        private_burst: int = 1,
        group_per_min: float = 20,
        paid_per_sec: float = FloodLimit.PAID_MESSAGES_PER_SECOND,
        retry_every: float = 5.0,
        timeout: float = 0.5,
        even: bool = False,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if private_burst < 1:
            raise ValueError(f"private_burst must be >= 1, got {private_burst}")
        if not key_prefix or "/" in key_prefix:
            raise ValueError("key_prefix must be non-empty and without '/'")
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self._key_prefix = key_prefix
        self._overall = _per_second(overall_per_sec, prefix=key_prefix)
        self._paid = _per_second(paid_per_sec, prefix=key_prefix)
        self._private = _per_second(private_per_sec, prefix=key_prefix, burst=private_burst)
        self._group = (
            RateLimitItemPerMinute(_whole(group_per_min), namespace=key_prefix)
            if group_per_min > 0
            else None
        )
        # With `even`, bot-wide sends also take a time slot of their own: one slot of
        # 1/rate seconds each, so the processes' sends are spread evenly over each second.
        self._slot = (
            RateLimitItemPerSecond(1, namespace=key_prefix)
            if even and self._overall is not None
            else None
        )
        # One slot more than the window's sends a second: the window stays the cap, and a
        # slot missed now and then (no process ready at its start) costs no throughput.
        self._slot_length = 1 / (self._overall.amount + 1) if self._overall is not None else 0.0
        self._retry_every = retry_every
        self._timeout = timeout
        self._wall_clock = wall_clock
        self._clock = clock
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._probing = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        bot_id: int | str,
        namespace: str = "newsbot",
        overall_per_sec: float = 30,
        private_per_sec: float = 1,
        private_burst: int = 1,
        group_per_min: float = 20,
        paid_per_sec: float = FloodLimit.PAID_MESSAGES_PER_SECOND,
        retry_every: float = 5.0,
        timeout: float = 0.5,
        even: bool = False,
    ) -> SharedBudget:
        """Connect (lazily, on first use) to ``redis://host:port/db`` or ``memory://``.

        Keys start with ``<namespace>:<bot_id>``; ``timeout`` bounds each Redis call, so an
        unreachable Redis costs a request at most that long before the local limits take over.
        """
        target = storage_url(url)
        options: dict[str, float | str | bool] = {"wrap_exceptions": True}
        if not target.startswith("async+memory"):
            options |= {"connect_timeout": timeout, "stream_timeout": timeout}
        storage = storage_from_string(target, **options)
        if not isinstance(storage, Storage):  # pragma: no cover - async+ schemes give async
            raise TypeError(f"expected an asyncio storage, got {type(storage).__name__}")
        return cls(
            storage,
            key_prefix=f"{namespace}:{bot_id}",
            overall_per_sec=overall_per_sec,
            private_per_sec=private_per_sec,
            private_burst=private_burst,
            group_per_min=group_per_min,
            paid_per_sec=paid_per_sec,
            retry_every=retry_every,
            timeout=timeout,
            even=even,
        )

    @property
    def key_prefix(self) -> str:
        """What every key of this budget starts with (after the storage's own prefix)."""
        return self._key_prefix

    @property
    def even(self) -> bool:
        """True when bot-wide sends take time slots, which spreads them evenly already."""
        return self._slot is not None

    @property
    def degraded(self) -> bool:
        """True while the storage is unreachable and only the local limits apply."""
        return self._down_since is not None

    @property
    def windows(self) -> dict[str, RateLimitItem | None]:
        """The moving windows by name (overall, paid, private, group); None if disabled."""
        return {
            "overall": self._overall,
            "paid": self._paid,
            "private": self._private,
            "group": self._group,
        }

    async def take_chat(self, chat: int | str) -> float:
        """Take one send to ``chat``; 0.0 if taken, else seconds until its window frees one."""
        item = self._private if is_private_chat(chat) else self._group
        return await self._take(item, "chat", str(chat))

    async def take_send(self, *, paid: bool = False) -> float:
        """Take one bot-wide send (paid broadcast or not); 0.0 or seconds until one frees."""
        if paid:
            return await self._take(self._paid, "paid")
        if self._slot is not None:
            # The slot first: a slot won for a send the window then refuses is only a gap,
            # while a window send taken for a refused slot would be a send lost for a second.
            slot = math.floor(self._wall_clock() / self._slot_length)
            wait = await self._take(
                self._slot, "slot", str(slot), refused=lambda: self._next_slot(slot)
            )
            if wait > 0:
                return wait
        return await self._take(self._overall, "send")

    def _next_slot(self, slot: int) -> float:
        return max((slot + 1) * self._slot_length - self._wall_clock(), _MIN_WAIT)

    async def _take(
        self,
        item: RateLimitItem | None,
        *identifiers: str,
        refused: Callable[[], float] | None = None,
    ) -> float:
        if item is None:
            return 0.0
        probe = self._down_since is not None
        if probe:
            if self._probing or self._clock() < self._retry_at:
                return 0.0
            self._probing = True
        try:
            # The client's own timeouts should fire first; this one also covers a stuck pool.
            async with asyncio.timeout(2 * self._timeout):
                if await self._limiter.hit(item, *identifiers):
                    wait = 0.0
                elif refused is not None:
                    wait = refused()
                else:
                    stats = await self._limiter.get_window_stats(item, *identifiers)
                    wait = max(stats.reset_time - self._wall_clock(), _MIN_WAIT)
        except Exception as exc:
            # Whatever goes wrong with the shared store, sending must go on under local limits.
            self._failed(exc)
            return 0.0
        finally:
            if probe:
                self._probing = False
        self._answered()
        return wait

    def _failed(self, exc: Exception) -> None:
        now = self._clock()
        self._retry_at = now + self._retry_every
        if self._down_since is None:
            self._down_since = now
            _LOGGER.warning(
                "shared send budget %s unavailable (%s: %s); each process sends under its own"
                " limits until it answers again (checked every %.0f s)",
                self._key_prefix,
                type(exc).__name__,
                exc,
                self._retry_every,
            )

    def _answered(self) -> None:
        if self._down_since is not None:
            _LOGGER.info(
                "shared send budget %s reachable again after %.1f s",
                self._key_prefix,
                self._clock() - self._down_since,
            )
            self._down_since = None

    async def aclose(self) -> None:
        """Close the storage's connections, if it keeps any; the budget reconnects on use."""
        bridge = getattr(self._storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        pool = getattr(client, "connection_pool", None)
        disconnect = getattr(pool, "disconnect", None)
        if callable(disconnect):
            disconnect()
