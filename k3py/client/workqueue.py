"""A rate-limited, de-duplicating work queue for controllers (client-go's workqueue).

    queue = WorkQueue()
    informer.add_handler(on_add=lambda o: queue.add(key_of(o)), ...)
    workers = [asyncio.create_task(process(queue, reconcile)) for _ in range(2)]

Guarantees
    * **De-duplication.**  A key waiting in the queue is held once, however often it is
      added.  Keys are handed out in the order they first became due.
    * **One worker per key.**  A key being processed is not handed out again; adding it
      meanwhile marks it dirty, and ``done(key)`` puts it back at the end of the queue.
      So one object is reconciled serially, different objects in parallel.
    * **Back-off.**  ``add_rate_limited(key)`` re-adds after a per-key exponential delay
      (``base_delay * 2**failures``, capped at ``max_delay``) combined with an overall
      token bucket (``qps``/``burst``); ``forget(key)`` resets the key's count after a
      success.  ``add_after(key, delay)`` re-adds later; of several pending delays for
      one key, the earliest wins.
    * **Shutdown.**  ``shut_down()`` wakes every waiting ``get()`` with ``ShutDown``;
      ``add`` is ignored from then on.

``process(queue, reconcile)`` is the worker loop of the controller recipe (STYLE.md #4):
``reconcile(key)`` returns None when done, or a number of seconds after which to look
again; raising re-queues the key with back-off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger("k3py.client.workqueue")

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down."""


def backoff_delay(*, failures: int, base: float, cap: float) -> float:
    """The per-key exponential back-off after ``failures`` earlier failures."""
    if failures <= 0:
        return base
    return float(min(cap, base * (2 ** min(failures, 62))))


class TokenBucket:
    """An overall limit: ``qps`` tokens a second, at most ``burst`` saved up.
    ``reserve()`` takes a token and returns how long to wait before using it."""

    def __init__(
        self, *, qps: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def reserve(self) -> float:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        base_delay: float = 0.005,
        max_delay: float = 300.0,
        qps: float = 10.0,
        burst: int = 100,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._bucket = TokenBucket(qps=qps, burst=burst, clock=clock)
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # waiting in _queue, or to be re-queued by done()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._shut = False

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shut

    # ---- adding -----------------------------------------------------------------

    def add(self, key: K) -> None:
        if self._shut or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return  # done() re-queues it
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        if self._shut:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(key)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[key] = (due, loop.call_at(due, self._fire, key))

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        per_key = backoff_delay(failures=failures, base=self.base_delay, cap=self.max_delay)
        self.add_after(key, max(per_key, self._bucket.reserve()))

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)

    # ---- taking -----------------------------------------------------------------

    async def get(self) -> K:
        """The next key (waits for one); call ``done(key)`` when finished with it."""
        while not self._queue:
            if self._shut:
                raise ShutDown(self.name)
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._waiters:
                    self._waiters.remove(fut)
                elif self._queue:
                    self._wake_one()  # woken, then cancelled: pass the wake-up on
                raise
        if self._shut:
            raise ShutDown(self.name)
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty and not self._shut:
            self._queue.append(key)
            self._wake_one()

    def shut_down(self) -> None:
        self._shut = True
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return


Reconcile = Callable[[K], Awaitable[float | None]]


async def process(queue: WorkQueue[K], reconcile: Reconcile[K]) -> None:
    """One worker: take keys until the queue shuts down.  A reconcile that returns a
    delay is looked at again after it; one that raises is retried with back-off."""
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            again = await reconcile(key)
        except asyncio.CancelledError:
            queue.done(key)
            raise
        except Exception:  # noqa: BLE001 - retried with back-off; the worker survives
            log.exception("%s: reconcile %r failed (retry %d)", queue.name or "queue", key,
                          queue.num_requeues(key) + 1)  # fmt: skip
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
            if again is not None:
                queue.add_after(key, again)
        queue.done(key)
