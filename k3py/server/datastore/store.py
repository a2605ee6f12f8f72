"""The datastore: the contract's verbs over a backend, a group committer and a watch hub.

Reads go straight to the backend's reader connections (committed snapshots only);
writes go through the committer (``committing``); watches through the hub
(``watching``); compaction runs in the background (``compacting``).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k3py.server.datastore import compacting
from k3py.server.datastore.committing import CommitStats, Committer
from k3py.server.datastore.compacting import Retention
from k3py.server.datastore.dialect import Backend, prefix_range
from k3py.server.datastore.history import records_at
from k3py.server.datastore.planning import CREATE, DELETE, UPDATE, Op, to_event
from k3py.server.datastore.types import (
    Compacted,
    DatastoreError,
    Event,
    FutureRevision,
    ListResult,
    Record,
    Watch,
)
from k3py.server.datastore.watching import Hub


@dataclass(frozen=True, slots=True)
class Options:
    retention: Retention = field(default_factory=Retention)
    compact_interval: float | None = 60.0  # seconds between background compactions
    compact_chunk: int = 250  # log rows deleted per transaction
    ring_size: int = 4096  # recent events kept in memory for cheap watch resume
    watch_buffer: int = 2048  # events a live watcher may fall behind before it is cut off
    max_batch: int = 1000  # writes per transaction at most
    clock: Callable[[], float] = time.time  # wall clock, for log retention


class SQLDatastore:
    """Implements :class:`k3py.server.datastore.types.Datastore`."""

    def __init__(self, *, backend: Backend, options: Options) -> None:
        self.backend = backend
        self.options = options
        self._compact = 0
        self._hub: Hub | None = None
        self._committer: Committer | None = None
        self._compactor: asyncio.Task[None] | None = None
        self._compact_lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> SQLDatastore:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- lifecycle -----------------------------------------------------------

    async def start(self) -> None:
        boot = await self.backend.open()
        self._compact = boot.compact
        opts = self.options
        self._hub = Hub(
            head=boot.head,
            read_log=self._read_log,
            ring_size=opts.ring_size,
            watch_buffer=opts.watch_buffer,
        )
        self._committer = Committer(
            backend=self.backend,
            hub=self._hub,
            head=boot.head,
            clock=opts.clock,
            max_batch=opts.max_batch,
        )
        self._committer.start()
        if opts.compact_interval:
            self._compactor = asyncio.create_task(
                compacting.every(self.compact, interval=opts.compact_interval, what="compaction"),
                name="k3py-datastore-compactor",
            )

    async def close(self) -> None:
        """Finish queued writes, end every watch, close the database.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._compactor is not None:
            self._compactor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._compactor
            self._compactor = None
        if self._committer is not None:
            await self._committer.stop()
        if self._hub is not None:
            self._hub.close()
        await self.backend.close()

    @property
    def stats(self) -> CommitStats:
        return self._writer().stats

    def current_revision(self) -> int:
        return self._watch_hub().head

    def compact_revision(self) -> int:
        return self._compact

    # ---- reads ---------------------------------------------------------------

    async def get(self, key: str) -> Record | None:
        row = await self.backend.get(key)
        return None if row is None else Record(*row)

    async def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> ListResult:
        if limit < 0 or revision < 0:
            raise ValueError("limit and revision must not be negative")
        rng = prefix_range(prefix)
        if revision:
            h = await self.backend.history(
                rng, start_after=start_after, limit=limit, revision=revision
            )
            if revision > h.head:
                raise FutureRevision(f"revision {revision} is newer than the store ({h.head})")
            if revision < h.compact:
                raise Compacted(revision, h.compact)
            records, more = records_at(h, limit=limit)
            return ListResult(records=records, revision=revision, more=more)
        snap = await self.backend.scan(
            rng, start_after=start_after, limit=limit + 1 if limit else 0
        )
        more = bool(limit) and len(snap.rows) > limit
        rows = snap.rows[:limit] if more else snap.rows
        return ListResult(records=[Record(*r) for r in rows], revision=snap.head, more=more)

    async def count(self, prefix: str) -> int:
        return await self.backend.count(prefix_range(prefix))

    # ---- writes --------------------------------------------------------------

    async def create(self, key: str, obj: dict[str, Any]) -> Record:
        return await self._submit(CREATE, key=key, obj=obj, expected=0)

    async def update(self, key: str, obj: dict[str, Any], *, expected_revision: int = 0) -> Record:
        return await self._submit(UPDATE, key=key, obj=obj, expected=expected_revision)

    async def delete(self, key: str, *, expected_revision: int = 0) -> Record:
        return await self._submit(DELETE, key=key, obj=None, expected=expected_revision)

    async def _submit(
        self, verb: str, *, key: str, obj: dict[str, Any] | None, expected: int
    ) -> Record:
        fut: asyncio.Future[Record] = asyncio.get_running_loop().create_future()
        return await self._writer().submit(Op(verb, key, obj, expected, fut))

    # ---- watch ---------------------------------------------------------------

    def watch(self, prefix: str, *, after_revision: int) -> Watch:
        if after_revision < 0:
            raise ValueError("after_revision must not be negative")
        if after_revision and after_revision < self._compact:
            raise Compacted(after_revision, self._compact)
        return self._watch_hub().watch(prefix, after=after_revision)

    async def _read_log(
        self, *, prefix: str, after: int, upto: int, limit: int
    ) -> tuple[builtins.list[Event], int]:
        rows, scanned, compact = await self.backend.events(
            prefix_range(prefix), after=after, upto=upto, limit=limit
        )
        if after < compact:
            raise Compacted(after, compact)
        return [to_event(r) for r in rows], scanned

    # ---- compaction ----------------------------------------------------------

    async def compact(self) -> int:
        async with self._compact_lock:
            committer = self._writer()
            return await compacting.compact_once(
                backend=self.backend,
                run_on_writer=committer.run_job,
                head=committer.head,
                compact=self._compact,
                retention=self.options.retention,
                now=self.options.clock(),
                chunk=self.options.compact_chunk,
                on_progress=self._compacted,
            )

    def _compacted(self, revision: int) -> None:
        self._compact = revision

    def _writer(self) -> Committer:
        if self._committer is None:
            raise DatastoreError("datastore is not started")
        return self._committer

    def _watch_hub(self) -> Hub:
        if self._hub is None:
            raise DatastoreError("datastore is not started")
        return self._hub
