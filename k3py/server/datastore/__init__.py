"""The datastore: objects + revision log + watch hub over SQL (see ``types`` for the contract).

``ds = open_datastore("sqlite:////var/lib/k3py/server/db/state.db")``, then
``await ds.start()`` … ``await ds.close()`` (or ``async with ds:``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from k3py.server.datastore.compacting import Retention
from k3py.server.datastore.endpoint import backend_for, default_endpoint, parse_endpoint
from k3py.server.datastore.store import Options, SQLDatastore
from k3py.server.datastore.types import (
    CommitFailed,
    Compacted,
    Datastore,
    DatastoreError,
    Event,
    EventType,
    FutureRevision,
    KeyExists,
    KeyNotFound,
    ListResult,
    Record,
    RevisionMismatch,
    Watch,
    WatchCutOff,
)

__all__ = [
    "CommitFailed",
    "Compacted",
    "Datastore",
    "DatastoreError",
    "Event",
    "EventType",
    "FutureRevision",
    "KeyExists",
    "KeyNotFound",
    "ListResult",
    "Options",
    "Record",
    "Retention",
    "RevisionMismatch",
    "SQLDatastore",
    "Watch",
    "WatchCutOff",
    "default_endpoint",
    "open_datastore",
]


def open_datastore(
    endpoint: str,
    *,
    retention_seconds: float = 300.0,
    retention_revisions: int = 10_000,
    compaction_interval: float | None = 60.0,
    compact_chunk: int = 250,
    ring_size: int = 4096,
    watch_buffer: int = 2048,
    max_batch: int = 1000,
    readers: int = 2,
    clock: Callable[[], float] = time.time,
) -> SQLDatastore:
    """A datastore for ``endpoint`` (``sqlite:///path``, ``sqlite://`` for memory), not yet
    started: ``await ds.start()`` (or ``async with``) before use.

    The log keeps every revision younger than ``retention_seconds`` and the newest
    ``retention_revisions``; ``compaction_interval`` (seconds; None or 0: off, ``compact()``
    still works) and ``compact_chunk`` (rows per transaction) pace its compaction.
    ``ring_size`` recent events stay in memory for watch resumes; a live watcher more than
    ``watch_buffer`` events behind is cut off (WatchCutOff).  ``max_batch`` caps writes
    per transaction; ``readers`` is the number of connections for long scans of a file
    database; ``clock`` (wall-clock seconds) is for tests."""
    options = Options(
        retention=Retention(seconds=retention_seconds, revisions=retention_revisions),
        compact_interval=compaction_interval,
        compact_chunk=compact_chunk,
        ring_size=ring_size,
        watch_buffer=watch_buffer,
        max_batch=max_batch,
        clock=clock,
    )
    backend = backend_for(parse_endpoint(endpoint), readers=readers)
    return SQLDatastore(backend=backend, options=options)
