"""The datastore contract: a few verbs over a revision log, like etcd (and kine).

Keys are strings such as ``/core/pods/default/web-0`` or ``/apps/deployments/default/web``
(cluster-scoped: ``/core/nodes/node-1``).  One global, strictly increasing revision
numbers every change; an object's ``metadata.resourceVersion`` is the revision of
its last change, written into the stored JSON by the datastore itself at commit
time.  Values are JSON bytes (orjson), so a list can be spliced into a response
without re-encoding.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    value: bytes  # the object as JSON; metadata.resourceVersion == str(revision)
    revision: int  # revision of the last change (mod revision)
    create_revision: int

    def obj(self) -> dict[str, Any]:
        """A fresh, private dict of the object (never shared)."""
        out: dict[str, Any] = orjson.loads(self.value)
        return out


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    key: str
    revision: int
    value: bytes  # ADDED/MODIFIED: new object; DELETED: last state with resourceVersion = revision
    prev_value: bytes | None  # state before this change (None for ADDED)


@dataclass(frozen=True, slots=True)
class ListResult:
    records: list[Record]
    revision: int  # the store revision the list is consistent with
    more: bool  # True when ``limit`` cut the list short (continue after records[-1].key)


class DatastoreError(Exception):
    pass


class KeyExists(DatastoreError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class KeyNotFound(DatastoreError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class RevisionMismatch(DatastoreError):
    """Optimistic concurrency lost: the key's revision is not the expected one."""

    def __init__(self, key: str, current: Record | None) -> None:
        super().__init__(key)
        self.key = key
        self.current = current


class Compacted(DatastoreError):
    """The requested revision is older than the oldest kept in the log."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"requested revision {requested} has been compacted (oldest kept: {compact_revision})"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class FutureRevision(DatastoreError):
    """A list/get at a revision newer than the store has."""


class CommitFailed(DatastoreError):
    """The transaction carrying this write failed (disk full, I/O error, store closing).
    Nothing of the batch was stored; the cause is chained as ``__cause__``."""


class WatchCutOff(DatastoreError):
    """A watcher fell too far behind; resume with a new watch after ``last_revision``."""

    def __init__(self, last_revision: int) -> None:
        super().__init__(f"watcher too slow; resume after revision {last_revision}")
        self.last_revision = last_revision


class Watch(Protocol):
    """An ordered stream of events.  Iterating yields batches (lists) of events in
    strictly increasing revision order.  Ends by raising :class:`WatchCutOff` when the
    consumer is too slow; ``close()`` ends it from the consumer side."""

    def __aiter__(self) -> AsyncIterator[list[Event]]: ...

    async def close(self) -> None: ...


class Datastore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def current_revision(self) -> int:
        """The newest committed (and published) revision."""
        ...

    def compact_revision(self) -> int:
        """The oldest revision a watch or a list at a revision may start after."""
        ...

    async def get(self, key: str) -> Record | None: ...

    async def list(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> ListResult:
        """Records whose key starts with ``prefix``, in key order, after ``start_after``.
        ``limit`` 0 means all; ``revision`` 0 means current, otherwise the state as of that
        revision (raises Compacted / FutureRevision)."""
        ...

    async def count(self, prefix: str) -> int: ...

    async def create(self, key: str, obj: dict[str, Any]) -> Record:
        """Store a new key.  Sets obj['metadata']['resourceVersion'].  Raises KeyExists.
        Returns only once the write is durable (group commit)."""
        ...

    async def update(self, key: str, obj: dict[str, Any], *, expected_revision: int = 0) -> Record:
        """Replace a key.  ``expected_revision`` 0 means unconditional.  Raises KeyNotFound,
        RevisionMismatch.  Durable on return."""
        ...

    async def delete(self, key: str, *, expected_revision: int = 0) -> Record:
        """Remove a key; returns the deleted state with ``revision``/resourceVersion set to
        the delete's revision.  Raises KeyNotFound, RevisionMismatch.  Durable on return."""
        ...

    def watch(self, prefix: str, *, after_revision: int) -> Watch:
        """Events for keys under ``prefix`` with revision > after_revision, in order.
        ``after_revision`` 0 means from now.  Raises Compacted at once if the log no
        longer holds after_revision + 1."""
        ...

    async def compact(self) -> int:
        """Drop log entries older than the retention; returns the new compact revision."""
        ...
