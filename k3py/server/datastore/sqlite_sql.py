"""The SQLite driver's statements: plain functions over a ``sqlite3.Connection``.

Each read runs in one transaction (a consistent snapshot); the writer's functions only
stage changes, and ``commit`` is the one step that waits on the disk (see ``sqlite``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from k3py.server.datastore import schema
from k3py.server.datastore.dialect import Boot, History, KeyRange, LogRow, Row, Snapshot, Writes

ROW = '"key", value, revision, create_revision'  # Record's field order
LOG = 'revision, "key", type, create_revision, prev_revision, ts, value, prev_value'
UPSERT = (
    f'INSERT INTO objects ({ROW}) VALUES (?, ?, ?, ?) ON CONFLICT ("key") DO UPDATE SET '
    "value = excluded.value, revision = excluded.revision, "
    "create_revision = excluded.create_revision"
)
INSERT_LOG = f"INSERT INTO log ({LOG}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
HEADS = (
    "SELECT (SELECT max(revision) FROM log), "
    f"(SELECT value FROM meta WHERE name = '{schema.COMPACT_REVISION}')"
)
IN_CHUNK = 500  # keys per IN (...) list, well under SQLite's variable limit
SCAN_CHUNK = 1000  # rows fetched between two yields to the event loop


def enable_wal(db: sqlite3.Connection) -> None:
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"SQLite refused WAL mode (journal_mode={mode})")


def key_filter(rng: KeyRange, *, start_after: str) -> tuple[str, list[Any]]:
    conds, params = ['"key" >= ?'], [rng.lo]
    if rng.hi is not None:
        conds.append('"key" < ?')
        params.append(rng.hi)
    if start_after:
        conds.append('"key" > ?')
        params.append(start_after)
    return " AND ".join(conds), params


def get(db: sqlite3.Connection, *, key: str) -> Row | None:
    row: Row | None = db.execute(f'SELECT {ROW} FROM objects WHERE "key" = ?', (key,)).fetchone()
    return row


def count(db: sqlite3.Connection, *, rng: KeyRange) -> int:
    cond, params = key_filter(rng, start_after="")
    return int(db.execute(f"SELECT count(*) FROM objects WHERE {cond}", params).fetchone()[0])


def heads(db: sqlite3.Connection) -> tuple[int, int]:
    log_max, compact = db.execute(HEADS).fetchone()
    compact = compact or 0
    return max(log_max or 0, compact), compact


def boot_head(db: sqlite3.Connection) -> int:
    head, _ = heads(db)
    obj_max = db.execute("SELECT max(revision) FROM objects").fetchone()[0] or 0
    return max(head, obj_max)


def boot(db: sqlite3.Connection) -> Boot:
    _, compact = heads(db)
    return Boot(head=boot_head(db), compact=compact)


def scan_sql(rng: KeyRange, *, start_after: str, limit: int) -> tuple[str, list[Any]]:
    cond, params = key_filter(rng, start_after=start_after)
    return f'SELECT {ROW} FROM objects WHERE {cond} ORDER BY "key" LIMIT ?', [
        *params,
        limit or -1,
    ]


def scan(db: sqlite3.Connection, *, rng: KeyRange, start_after: str, limit: int) -> Snapshot:
    sql, params = scan_sql(rng, start_after=start_after, limit=limit)
    db.execute("BEGIN")
    try:
        head, compact = heads(db)
        rows = db.execute(sql, params).fetchall()
    finally:
        db.execute("COMMIT")
    return Snapshot(rows=rows, head=head, compact=compact)


async def chunked_scan(
    db: sqlite3.Connection, *, rng: KeyRange, start_after: str, limit: int
) -> Snapshot:
    """Like ``scan``, yielding to the event loop between chunks (one read transaction)."""
    sql, params = scan_sql(rng, start_after=start_after, limit=limit)
    rows: list[Row] = []
    db.execute("BEGIN")
    cur = db.cursor()
    try:
        head, compact = heads(db)
        cur.execute(sql, params)
        while True:
            chunk = cur.fetchmany(SCAN_CHUNK)
            rows += chunk
            if len(chunk) < SCAN_CHUNK:
                break
            await asyncio.sleep(0)
    finally:
        cur.close()
        db.execute("COMMIT")
    return Snapshot(rows=rows, head=head, compact=compact)


def history(
    db: sqlite3.Connection, *, rng: KeyRange, start_after: str, limit: int, revision: int
) -> History:
    cond, params = key_filter(rng, start_after=start_after)
    db.execute("BEGIN")
    try:
        head, compact = heads(db)
        if not compact <= revision <= head:
            return History(rows=[], truncated=False, changes=[], head=head, compact=compact)
        changes = db.execute(
            f"SELECT {LOG} FROM log WHERE revision > ? AND {cond} ORDER BY revision",
            [revision, *params],
        ).fetchall()
        fetch = limit + len({ch[1] for ch in changes}) + 1 if limit else -1
        rows = db.execute(
            f'SELECT {ROW} FROM objects WHERE {cond} ORDER BY "key" LIMIT ?', [*params, fetch]
        ).fetchall()
    finally:
        db.execute("COMMIT")
    truncated = fetch > 0 and len(rows) == fetch
    return History(rows=rows, truncated=truncated, changes=changes, head=head, compact=compact)


def events(
    db: sqlite3.Connection, *, rng: KeyRange, after: int, upto: int, limit: int
) -> tuple[list[LogRow], int, int]:
    cond, params = key_filter(rng, start_after="")
    sql = f"SELECT {LOG} FROM log WHERE revision > ? AND revision <= ? AND {cond} "
    db.execute("BEGIN")
    try:
        _, compact = heads(db)
        rows = db.execute(
            sql + "ORDER BY revision LIMIT ?", [after, upto, *params, limit]
        ).fetchall()
    finally:
        db.execute("COMMIT")
    scanned_to = rows[-1][0] if len(rows) == limit else upto
    return rows, scanned_to, compact


def compact_target(db: sqlite3.Connection, *, after: int, upto: int, cutoff: float) -> int:
    # Binary search over the contiguous revisions; timestamps never decrease.
    lo, hi = after, upto
    db.execute("BEGIN")
    try:
        while lo < hi:
            mid = (lo + hi + 1) // 2
            row = db.execute("SELECT ts FROM log WHERE revision = ?", (mid,)).fetchone()
            if row is not None and row[0] <= cutoff:
                lo = mid
            else:
                hi = mid - 1
    finally:
        db.execute("COMMIT")
    return lo


def load(db: sqlite3.Connection, *, keys: list[str]) -> list[Row]:
    out: list[Row] = []
    for i in range(0, len(keys), IN_CHUNK):
        chunk = keys[i : i + IN_CHUNK]
        marks = ",".join("?" * len(chunk))
        out += db.execute(f'SELECT {ROW} FROM objects WHERE "key" IN ({marks})', chunk).fetchall()
    return out


def stage(db: sqlite3.Connection, *, writes: Writes) -> None:
    db.executemany(INSERT_LOG, writes.log)
    if writes.upserts:
        db.executemany(UPSERT, writes.upserts)
    if writes.deletes:
        db.executemany('DELETE FROM objects WHERE "key" = ?', [(k,) for k in writes.deletes])


def stage_delete_log(db: sqlite3.Connection, *, upto: int) -> None:
    db.execute("DELETE FROM log WHERE revision <= ?", (upto,))
    db.execute(
        "INSERT INTO meta (name, value) VALUES (?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        (schema.COMPACT_REVISION, upto),
    )


def commit(db: sqlite3.Connection) -> None:
    db.execute("COMMIT")


def checkpoint(db: sqlite3.Connection) -> None:
    # TRUNCATE waits for readers of old snapshots; wait briefly only (this thread is
    # the writer's), and if they persist, give up without error: the next run retries.
    db.execute("PRAGMA busy_timeout = 50")
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        db.execute("PRAGMA busy_timeout = 10000")
