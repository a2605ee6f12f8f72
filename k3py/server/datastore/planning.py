"""One batch of writes applied to the keys' committed states, without touching a database.

``plan_batch`` walks the batch in arrival order, keeping each key's state as it goes,
so a later op sees an earlier op's effect (create then update of one key in one batch
works; two creates of one key: the second fails with KeyExists).  Only an op whose
precondition holds takes the next revision, so committed revisions stay contiguous;
an op that fails its precondition (or whose object is not JSON) fails alone.  The
plan says what to store (log rows, final rows of the touched keys), which events to
publish, and each op's outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from k3py.server.datastore.dialect import ADDED, DELETED, MODIFIED, LogRow, Row, Writes
from k3py.server.datastore.types import (
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    Record,
    RevisionMismatch,
)

CREATE, UPDATE, DELETE = "create", "update", "delete"
EVENT_TYPES: dict[int, EventType] = {ADDED: "ADDED", MODIFIED: "MODIFIED", DELETED: "DELETED"}

_State = tuple[bytes, int, int] | None  # value, revision, create_revision; None: absent
_MISSING = object()


@dataclass(slots=True, eq=False)
class Op:
    verb: str  # CREATE / UPDATE / DELETE
    key: str
    obj: dict[str, Any] | None  # the new object (create, update)
    expected: int  # expected revision (0: unconditional)
    future: asyncio.Future[Record]


Outcome = Record | Exception


@dataclass(frozen=True, slots=True)
class Plan:
    writes: Writes
    events: list[Event]  # in revision order
    outcomes: list[Outcome]  # one per op, in op order
    head: int  # the newest revision after the batch


def to_event(row: LogRow) -> Event:
    return Event(EVENT_TYPES[row[2]], row[1], row[0], row[6], row[7])


def plan_batch(ops: Sequence[Op], *, rows: Iterable[Row], head: int, ts: float) -> Plan:
    """``rows``: the committed rows of the batch's keys (absent keys have none)."""
    before: dict[str, _State] = {r[0]: (r[1], r[2], r[3]) for r in rows}
    state = dict(before)
    log: list[LogRow] = []
    outcomes: list[Outcome] = []
    for op in ops:
        try:
            entry, new_state, record = _apply(op, cur=state.get(op.key), rev=head + 1, ts=ts)
        except (KeyExists, KeyNotFound, RevisionMismatch, TypeError, ValueError) as e:
            outcomes.append(e)
            continue
        head += 1
        state[op.key] = new_state
        log.append(entry)
        outcomes.append(record)
    writes = _final_writes(before=before, state=state, log=log)
    return Plan(writes=writes, events=[to_event(r) for r in log], outcomes=outcomes, head=head)


def _apply(op: Op, *, cur: _State, rev: int, ts: float) -> tuple[LogRow, _State, Record]:
    key = op.key
    if op.verb == CREATE:
        if cur is not None:
            raise KeyExists(key)
        value = _encode(op.obj, rev=rev)
        return (
            (rev, key, ADDED, rev, 0, ts, value, None),
            (value, rev, rev),
            Record(key, value, rev, rev),
        )
    if cur is None:
        raise KeyNotFound(key)
    cur_value, cur_rev, create_rev = cur
    if op.expected and op.expected != cur_rev:
        raise RevisionMismatch(key, Record(key, cur_value, cur_rev, create_rev))
    if op.verb == UPDATE:
        value = _encode(op.obj, rev=rev)
        entry: LogRow = (rev, key, MODIFIED, create_rev, cur_rev, ts, value, cur_value)
        return entry, (value, rev, create_rev), Record(key, value, rev, create_rev)
    value = with_revision(cur_value, rev=rev)
    entry = (rev, key, DELETED, create_rev, cur_rev, ts, value, cur_value)
    return entry, None, Record(key, value, rev, create_rev)


def _encode(obj: dict[str, Any] | None, *, rev: int) -> bytes:
    """The object as JSON with ``metadata.resourceVersion`` set (also in ``obj`` itself)."""
    if not isinstance(obj, dict):
        raise TypeError("object must be a dict")
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise TypeError("metadata must be a dict")
    old = meta.get("resourceVersion", _MISSING)
    meta["resourceVersion"] = str(rev)
    try:
        return orjson.dumps(obj)
    except TypeError:
        if old is _MISSING:
            del meta["resourceVersion"]
        else:
            meta["resourceVersion"] = old
        raise


def with_revision(value: bytes, *, rev: int) -> bytes:
    """A stored object re-encoded with ``metadata.resourceVersion`` = ``rev``."""
    obj = orjson.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(rev)
    return orjson.dumps(obj)


def _final_writes(
    *, before: dict[str, _State], state: dict[str, _State], log: list[LogRow]
) -> Writes:
    upserts: list[Row] = []
    deletes: list[str] = []
    for key in dict.fromkeys(entry[1] for entry in log):
        now = state[key]
        if now is not None:
            upserts.append((key, *now))
        elif before.get(key) is not None:
            deletes.append(key)
    return Writes(log=log, upserts=upserts, deletes=deletes)
