"""Group commit: many concurrent writes, one transaction, one fsync.

Guarantees
    * A write's future resolves only after the transaction holding it is durable
      (``Backend.write`` returned).  An acknowledged write survives ``kill -9``.
    * Revisions are assigned in commit order, contiguous, by exactly one task; events
      are published to the watch hub in revision order, before the writers' futures
      resolve (so a writer that then watches from its own revision finds it replayable).
    * A failed precondition fails only its op.  A failed transaction fails every op in
      it with :class:`CommitFailed`; nothing of it is stored or published.

Shape
    One writer task owns the write connection.  ``submit`` appends an op to a list and
    wakes the writer; the writer takes everything pending (up to ``max_batch``) and hands
    it to the backend, which reads the touched keys' rows in one query, has the batch
    planned (``planning``, a pure function) and stores it in one transaction (one
    executemany per table; for SQLite only the COMMIT leaves the event loop's thread).  While that transaction
    fsyncs, new ops queue up and become the next batch — so batches grow exactly when
    the disk is the bottleneck, and a lone write pays for one transaction and no
    waiting.  There is no timer and no minimum batch size.

    Maintenance that must not interleave with a batch on the write connection
    (compaction chunks, WAL checkpoints) is queued as a *job*; the writer alternates
    one job with one batch, so neither can starve the other and compaction never holds
    the writer for longer than one small chunk.

    If a transaction fails, the writer re-reads the head revision from the database: a
    commit reported as failed may have reached the disk, and then its events are read
    back from the log and published so that watchers see no gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from k3py.server.datastore.dialect import Backend, KeyRange
from k3py.server.datastore.planning import Op, Plan, plan_batch, to_event
from k3py.server.datastore.types import CommitFailed, DatastoreError, Record
from k3py.server.datastore.watching import Hub

T = TypeVar("T")
log = logging.getLogger(__name__)

_Job = tuple[Callable[[], Awaitable[Any]], "asyncio.Future[Any]"]


@dataclass(slots=True)
class CommitStats:
    batches: int = 0  # transactions committed that carried writes
    writes: int = 0  # writes committed (revisions taken)
    largest_batch: int = 0  # most writes in one transaction
    failed_batches: int = 0


class Committer:
    def __init__(
        self,
        *,
        backend: Backend,
        hub: Hub,
        head: int,
        clock: Callable[[], float],
        max_batch: int = 1000,
    ) -> None:
        self.head = head  # newest committed revision
        self.stats = CommitStats()
        self._backend = backend
        self._hub = hub
        self._clock = clock
        self._max_batch = max(1, max_batch)
        self._ops: list[Op] = []
        self._jobs: deque[_Job] = deque()
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_ts = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="k3py-datastore-writer")
        self._task.add_done_callback(self._exited)

    def _exited(self, task: asyncio.Task[None]) -> None:
        """However the writer ends, nobody may wait forever for it."""
        self._closing = True
        cause: BaseException = DatastoreError("the datastore writer stopped")
        if not task.cancelled() and task.exception() is not None:
            cause = task.exception() or cause
            log.error("datastore writer failed", exc_info=cause)
        ops, self._ops = self._ops, []
        _fail(ops, cause=cause)
        while self._jobs:
            _, fut = self._jobs.popleft()
            if not fut.done():
                fut.set_exception(DatastoreError("the datastore writer stopped"))

    async def stop(self) -> None:
        """Refuse new work, finish what is queued, and end the writer task."""
        self._closing = True
        self._wake()
        if self._task is not None:
            await self._task

    async def submit(self, op: Op) -> Record:
        if self._closing:
            raise DatastoreError("datastore is closed")
        self._ops.append(op)
        self._wake()
        return await op.future

    async def run_job(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` on the writer's turn, between two batches."""
        if self._closing:
            raise DatastoreError("datastore is closed")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.append((fn, fut))
        self._wake()
        return await fut

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def _run(self) -> None:
        while True:
            if not self._ops and not self._jobs:
                if self._closing:
                    return
                self._wakeup = asyncio.get_running_loop().create_future()
                await self._wakeup
                self._wakeup = None
                continue
            if self._jobs:
                await self._job(*self._jobs.popleft())
            if self._ops:
                await self._batch(self._take())

    def _take(self) -> list[Op]:
        ops = self._ops
        if len(ops) <= self._max_batch:
            self._ops = []
            return ops
        self._ops = ops[self._max_batch :]
        return ops[: self._max_batch]

    async def _job(self, fn: Callable[[], Awaitable[Any]], fut: asyncio.Future[Any]) -> None:
        try:
            result = await fn()
        except Exception as e:
            if not fut.done():
                fut.set_exception(e)
            return
        if not fut.done():
            fut.set_result(result)

    async def _batch(self, ops: list[Op]) -> None:
        try:
            plan = await self._store(ops)
        except Exception as e:
            log.exception("datastore transaction failed (%d writes)", len(ops))
            self.stats.failed_batches += 1
            _fail(ops, cause=e)
            await self._recover()
            return
        except BaseException as e:  # cancelled: answer the waiters, then go
            _fail(ops, cause=e)
            raise
        self.head = plan.head
        if plan.events:
            self.stats.batches += 1
            self.stats.writes += len(plan.events)
            self.stats.largest_batch = max(self.stats.largest_batch, len(plan.events))
            self._hub.publish(plan.events)
        for op, outcome in zip(ops, plan.outcomes, strict=True):
            if op.future.done():
                continue
            if isinstance(outcome, Record):
                op.future.set_result(outcome)
            else:
                op.future.set_exception(outcome)

    async def _store(self, ops: list[Op]) -> Plan:
        keys = list(dict.fromkeys(op.key for op in ops))
        head, ts = self.head, self._timestamp()
        return await self._backend.apply(
            keys, plan=lambda rows: plan_batch(ops, rows=rows, head=head, ts=ts)
        )

    def _timestamp(self) -> float:
        # Never decreasing, so compaction can binary-search the log by time.
        self._last_ts = max(self._clock(), self._last_ts)
        return self._last_ts

    async def _recover(self) -> None:
        try:
            head = await self._backend.head()
            while head > self.head:
                rows, scanned, _ = await self._backend.events(
                    KeyRange("", None), after=self.head, upto=head, limit=1000
                )
                self._hub.publish([to_event(r) for r in rows])
                self.head = scanned
        except Exception:
            log.exception("datastore: could not re-read the head revision after a failure")


def _fail(ops: list[Op], *, cause: BaseException) -> None:
    for op in ops:
        if not op.future.done():
            err = CommitFailed(f"{op.verb} {op.key}: transaction failed: {cause!r}")
            err.__cause__ = cause
            op.future.set_exception(err)
