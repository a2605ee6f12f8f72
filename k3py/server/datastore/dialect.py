"""The seam between the datastore's logic and a database: a few row-level operations.

Everything above this line (group commit, preconditions, revisions, watch hub,
compaction policy, reconstruction of old states) is database-agnostic; a driver
(``sqlite.py``; later ``postgresql.py``) implements :class:`Backend` with its own SQL and
is chosen by the endpoint's URL scheme (``endpoint.py``).

Rules every backend keeps:

* ``apply`` stores a batch in one durable transaction: when it returns, the batch
  survives a crash; when it raises, nothing of it was stored.
* Every read method answers from one consistent snapshot and never sees uncommitted
  data; reads may run concurrently with ``apply``.
* Only the store's single writer calls ``apply``/``delete_log``/``checkpoint``, one at a
  time (no write-write races inside one server).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

# objects row, in Record's field order: key, value, revision, create_revision
Row = tuple[str, bytes, int, int]
# log row: revision, key, type, create_revision, prev_revision, ts, value, prev_value
LogRow = tuple[int, str, int, int, int, float, bytes, bytes | None]

ADDED, MODIFIED, DELETED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class KeyRange:
    """Keys ``lo <= key < hi`` (``hi`` None: no upper bound) — an exact prefix match,
    immune to ``_``/``%`` in keys, and usable by the primary-key index."""

    lo: str
    hi: str | None


def prefix_range(prefix: str) -> KeyRange:
    """The key range of ``prefix``: the upper bound is the prefix with its last
    character incremented (code-point order equals UTF-8 byte order)."""
    stem = prefix
    while stem and ord(stem[-1]) == 0x10FFFF:
        stem = stem[:-1]
    if not stem:
        return KeyRange(prefix, None)
    return KeyRange(prefix, stem[:-1] + chr(ord(stem[-1]) + 1))


@dataclass(frozen=True, slots=True)
class Writes:
    """What one batch stores, in one transaction."""

    log: list[LogRow]
    upserts: list[Row]  # final state of keys that exist after the batch
    deletes: list[str]  # keys that no longer exist after the batch


@dataclass(frozen=True, slots=True)
class Boot:
    head: int  # newest committed revision
    compact: int  # compact revision (log holds every revision above it)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Current rows plus the snapshot's head and compact revisions."""

    rows: list[Row]
    head: int
    compact: int


@dataclass(frozen=True, slots=True)
class History:
    """Inputs to reconstruct a past state: current rows and the later changes."""

    rows: list[Row]  # current rows, key order
    truncated: bool  # ``rows`` was cut by the limit (rows[-1].key bounds the answer)
    changes: list[LogRow]  # log rows with revision > the requested one, revision order
    head: int
    compact: int


class Planned(Protocol):
    @property
    def writes(self) -> Writes: ...


P = TypeVar("P", bound=Planned)


class Backend(Protocol):
    async def open(self) -> Boot:
        """Connect, create the schema if needed, and report where the log stands."""
        ...

    async def close(self) -> None: ...

    # ---- reads (snapshot-consistent, concurrent with the writer) ----

    async def get(self, key: str) -> Row | None: ...

    async def scan(self, rng: KeyRange, *, start_after: str, limit: int) -> Snapshot:
        """Current rows in key order (``limit`` 0: all)."""
        ...

    async def history(
        self, rng: KeyRange, *, start_after: str, limit: int, revision: int
    ) -> History:
        """Current rows (at most ``limit`` plus the number of changed keys, plus one) and
        the log rows after ``revision`` for the same keys."""
        ...

    async def count(self, rng: KeyRange) -> int: ...

    async def events(
        self, rng: KeyRange, *, after: int, upto: int, limit: int
    ) -> tuple[list[LogRow], int, int]:
        """Log rows in ``(after, upto]`` within ``rng`` in revision order, at most ``limit``;
        returns (rows, scanned_to, compact): every revision up to ``scanned_to`` was
        examined."""
        ...

    async def compact_target(self, *, after: int, upto: int, cutoff: float) -> int:
        """The highest revision in ``(after, upto]`` committed at or before ``cutoff``
        (``after`` if none).  Log timestamps are non-decreasing."""
        ...

    # ---- the single writer ----

    async def apply(self, keys: list[str], *, plan: Callable[[list[Row]], P]) -> P:
        """Read the committed rows of ``keys``, call ``plan(rows)`` — pure, and possibly run
        in another thread — and store its ``writes`` (if its log is not empty) in one
        durable transaction.  Returns the plan."""
        ...

    async def delete_log(self, *, upto: int) -> None:
        """Delete log rows with revision <= upto and persist ``upto`` as the compact
        revision, in one transaction."""
        ...

    async def checkpoint(self) -> None:
        """Keep the database's journal files bounded (no-op where not applicable)."""
        ...

    async def head(self) -> int:
        """Newest committed revision, read from the database (after a failed commit)."""
        ...
