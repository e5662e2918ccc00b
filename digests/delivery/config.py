"""The delivery policy: how many rows are claimed, sent and recorded at once, and for how
long a claim or a send holds its row (`DeliveryConfig`, made from the settings by
`delivery_config`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from digests.settings import Settings


@dataclass(frozen=True)
class DeliveryConfig:
    grace: timedelta = timedelta(hours=6)
    per_section: int = 5
    batch: int = 10  # rows sent concurrently (and recorded together)
    workers: int = 2  # batches at once: batch * workers bounds the sends in flight
    # rows claimed and rendered in one transaction, then sent `batch` at a time (None: a
    # batch): larger where sending is fast, so that the database work per row is small
    claim_batch: int | None = None
    # outcomes with no release to go with wait up to this long to be written together (0: at
    # once); where sending is fast one write then carries many, where it is paced (30/s) an
    # outcome write must not hold up the next release (its request would leave late, the
    # one after it on time, and the two closer than Telegram's spacing)
    outcome_delay: float = 0.0
    claim_limit: int = 500  # chats scheduled per claim transaction
    page: int = 5_000  # PENDING rows a round reads (and holds) at a time
    max_attempts: int = 5
    # a claimed row waits in the rate limiter at most about this long before another worker
    # may claim it (the one whose mark of SENDING succeeds sends it, so never both)
    claim_lease: timedelta = timedelta(minutes=1)
    # a SENDING row's request and its recording take well under this (retries of 429s
    # included): a row still SENDING after it belonged to a dead process
    lease: timedelta = timedelta(minutes=5)


FAST_CLAIM = 250
"""Rows claimed at once when nothing (or only paid broadcasts' 1,000/s) limits the rate."""
PAID_BATCH = 50
PAID_WORKERS = 4
FAST_OUTCOME_DELAY = 0.05


def delivery_config(settings: Settings) -> DeliveryConfig:
    """The delivery policy for these settings. A batch is about a third of a second of sending
    at the overall rate (10 at 30/s): few rows are in flight, so few are left uncertain by a
    crash. With no overall limit (a local Bot API server) a whole claim of 250 rows is sent
    as one batch: the transport's connections bound what is on the wire, and the rows'
    moves to SENDING and their outcomes are written 250 to a statement rather than 25 (each
    statement costs the database a round trip and a commit, a third of a millisecond, as
    much as ten rows' own writes). Claims of 250 rows (a quarter of a second at 1,000/s,
    well within the claim lease) cost the database less per row than claims of 25."""
    rate = 1000.0 if settings.paid_broadcast else settings.send_rate_limit
    fast = rate <= 0 or rate >= 1000
    batch = FAST_CLAIM if fast else min(25, max(5, int(rate / 3)))
    workers = DeliveryConfig.workers
    if settings.paid_broadcast:
        # 1000/s over Telegram's 50-80 ms round trip needs 50-80 requests in flight while a
        # batch waits for its slowest answer: four batches of 50 at once (the transport has
        # PAID_CONNECTIONS = 200 for them).
        batch, workers = PAID_BATCH, PAID_WORKERS
    return DeliveryConfig(
        grace=timedelta(hours=settings.digest_grace_hours),
        per_section=settings.digest_stories_per_section,
        batch=batch,
        workers=workers,
        claim_batch=FAST_CLAIM if fast else None,
        outcome_delay=FAST_OUTCOME_DELAY if fast else 0.0,
        lease=timedelta(seconds=settings.send_lease_seconds),
    )
