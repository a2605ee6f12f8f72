"""Compaction: drop old log rows, never current objects, and keep the WAL bounded.

A log row may go only when it is both older than ``retention.seconds`` and more than
``retention.revisions`` behind the head (the newest ``retention.revisions`` revisions
always stay).  Every row at or below the new compact revision is deleted: the log is
only needed above it (watch replay, lists at a revision — which undo later changes
from the current table), so no per-key bookkeeping is required.  Deletion runs in
chunks, each its own short transaction queued on the writer between two batches, so
writers wait at most one chunk.  A WAL checkpoint follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from k3py.server.datastore.dialect import Backend

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Retention:
    seconds: float = 300.0
    revisions: int = 10_000


def revision_bound(*, head: int, compact: int, retention: Retention) -> int:
    """The highest revision the revision rule alone would let go."""
    return max(compact, head - max(0, retention.revisions))


async def compact_once(
    *,
    backend: Backend,
    run_on_writer: Callable[[Callable[[], Awaitable[None]]], Awaitable[None]],
    head: int,
    compact: int,
    retention: Retention,
    now: float,
    chunk: int,
    on_progress: Callable[[int], None],
) -> int:
    """Compact up to what the retention allows; returns the new compact revision."""
    upto = revision_bound(head=head, compact=compact, retention=retention)
    if upto > compact:
        target = await backend.compact_target(
            after=compact, upto=upto, cutoff=now - retention.seconds
        )
        while compact < target:
            step = min(target, compact + max(1, chunk))
            await run_on_writer(partial(backend.delete_log, upto=step))
            compact = step
            on_progress(compact)
    await run_on_writer(backend.checkpoint)
    return compact


async def every(fn: Callable[[], Awaitable[object]], *, interval: float, what: str) -> None:
    """Run ``fn`` every ``interval`` seconds until cancelled; failures are logged."""
    while True:
        await asyncio.sleep(interval)
        try:
            await fn()
        except Exception:
            log.exception("datastore: %s failed", what)
