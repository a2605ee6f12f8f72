"""SQLite driver: SQLAlchemy 2 (async engine over aiosqlite), one writer connection and a
few reader connections.

Who runs what, and why
    SQLAlchemy owns the engine, the pool, the connections' lifecycle and the DDL.  Each
    connection is an aiosqlite connection with its own thread.  The statements, though,
    run on the event loop's thread against the DBAPI connection underneath, and only
    what waits on the disk — COMMIT (WAL write + fsync, automatic checkpoints) and
    explicit checkpoints — is handed to the connection's thread.

    Measured reason (2 cores): Python's sqlite3 releases the GIL around every
    ``sqlite3_step``, i.e. once per fetched row, and a thread that wants the GIL back
    while the event loop is busy waits at least the switch interval (5 ms), often far
    longer.  Through aiosqlite, a LIST of 10,000 rows took 151 ms with an idle loop and
    49.7 s with a busy one; a GET 0.14 ms and 9 ms.  On the loop thread the same GET is
    ~15 µs and the LIST ~60-130 ms of CPU, cut into chunks with a yield between them.
    A batch transaction hands over to the thread once (COMMIT), however many rows it
    holds.  (A shorter ``sys.setswitchinterval`` shortens that one hand-over too.)

Isolation
    File databases use WAL with ``synchronous=FULL``: a commit is durable when it
    returns.  Readers (``query_only``, memory-mapped) see committed snapshots only; a
    multi-statement read runs inside one read transaction.  The writer stages a batch
    (BEGIN IMMEDIATE + executemany) and commits it before the store does anything else
    with that connection.  The in-memory database has one connection and never
    awaits inside a transaction, so no read can observe a half-applied batch there
    either.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from k3py.server.datastore import schema
from k3py.server.datastore import sqlite_sql as q
from k3py.server.datastore.dialect import (
    Boot,
    History,
    KeyRange,
    LogRow,
    P,
    Row,
    Snapshot,
)
from k3py.server.datastore.types import DatastoreError

T = TypeVar("T")

_WRITER_PRAGMAS = (
    "PRAGMA synchronous = FULL",
    "PRAGMA journal_size_limit = 67108864",  # WAL file truncated to 64 MiB when reset
    "PRAGMA busy_timeout = 10000",
    "PRAGMA cache_size = -16384",
    "PRAGMA temp_store = MEMORY",
)
_READER_PRAGMAS = (
    "PRAGMA busy_timeout = 200",  # readers run on the event loop: never wait long
    "PRAGMA cache_size = -16384",
    "PRAGMA mmap_size = 268435456",
    "PRAGMA query_only = 1",
)


class _Conn:
    """One SQLAlchemy connection held for the store's life, its aiosqlite driver and the
    sqlite3 connection underneath."""

    def __init__(self, *, sa_conn: AsyncConnection, driver: aiosqlite.Connection) -> None:
        self.sa_conn = sa_conn
        self._driver = driver
        # SQLAlchemy's own aiosqlite adapter reaches into the same internals (_tx, _conn).
        if not hasattr(driver, "_execute"):
            raise RuntimeError("this aiosqlite version lacks Connection._execute")
        self.db: sqlite3.Connection = driver._conn

    async def in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(db)`` in this connection's own thread (for what waits on the disk)."""
        result: T = await self._driver._execute(fn, self.db)
        return result


async def _connect(engine: AsyncEngine, *, pragmas: tuple[str, ...]) -> _Conn:
    sa_conn = await engine.connect()
    raw = await sa_conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, aiosqlite.Connection)
    conn = _Conn(sa_conn=sa_conn, driver=driver)
    # AUTOCOMMIT at the driver: our explicit BEGIN/COMMIT are the only transactions.
    assert conn.db.isolation_level is None
    for sql in pragmas:
        conn.db.execute(sql)
    return conn


class SQLiteBackend:
    """:class:`~k3py.server.datastore.dialect.Backend` for ``sqlite://`` endpoints."""

    def __init__(self, *, path: str | None, readers: int = 2) -> None:
        """``readers``: connections for long (chunked) scans; short reads share one more."""
        self.path = path  # None: in memory
        self._n_readers = max(1, readers)
        self._engine: AsyncEngine | None = None
        self._writer: _Conn | None = None
        self._point: _Conn | None = None  # short reads, never inside an await
        self._scanners: asyncio.Queue[_Conn] = asyncio.Queue()  # chunked scans
        self._all: list[_Conn] = []
        self._lock_fd: int | None = None

    # ---- lifecycle -----------------------------------------------------------

    async def open(self) -> Boot:
        args: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}
        if self.path is None:
            url = sa.engine.URL.create("sqlite+aiosqlite", database=":memory:")
        else:
            Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._lock_fd = _lock(self.path + ".lock")
            url = sa.engine.URL.create("sqlite+aiosqlite", database=self.path)
            args.update(pool_size=self._n_readers + 2, max_overflow=0)
        self._engine = create_async_engine(url, connect_args={"check_same_thread": False}, **args)
        try:
            return await self._open_connections(self._engine)
        except BaseException:
            await self.close()
            raise

    async def _open_connections(self, engine: AsyncEngine) -> Boot:
        self._writer = await _connect(engine, pragmas=_WRITER_PRAGMAS)
        self._all.append(self._writer)
        if self.path is not None:
            q.enable_wal(self._writer.db)
        await self._writer.sa_conn.run_sync(schema.metadata.create_all)
        if self.path is None:
            self._point = self._writer
        else:
            os.chmod(self.path, 0o600)
            for _ in range(self._n_readers + 1):
                self._all.append(await _connect(engine, pragmas=_READER_PRAGMAS))
            self._point = self._all[1]
            for conn in self._all[2:]:
                self._scanners.put_nowait(conn)
        return q.boot(self._writer.db)

    async def close(self) -> None:
        conns, self._all = self._all, []
        self._writer = self._point = None
        self._scanners = asyncio.Queue()
        for conn in conns:
            await conn.sa_conn.close()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def _db(self) -> sqlite3.Connection:
        if self._point is None:
            raise DatastoreError("datastore is closed")
        return self._point.db

    def _writer_conn(self) -> _Conn:
        if self._writer is None:
            raise DatastoreError("datastore is closed")
        return self._writer

    # ---- reads ---------------------------------------------------------------

    async def get(self, key: str) -> Row | None:
        return q.get(self._db(), key=key)

    async def scan(self, rng: KeyRange, *, start_after: str, limit: int) -> Snapshot:
        if self.path is None or 0 < limit <= q.SCAN_CHUNK:
            return q.scan(self._db(), rng=rng, start_after=start_after, limit=limit)
        if self._point is None:
            raise DatastoreError("datastore is closed")
        conn = await self._scanners.get()
        try:
            return await q.chunked_scan(conn.db, rng=rng, start_after=start_after, limit=limit)
        finally:
            self._scanners.put_nowait(conn)

    async def history(
        self, rng: KeyRange, *, start_after: str, limit: int, revision: int
    ) -> History:
        return q.history(
            self._db(), rng=rng, start_after=start_after, limit=limit, revision=revision
        )

    async def count(self, rng: KeyRange) -> int:
        return q.count(self._db(), rng=rng)

    async def events(
        self, rng: KeyRange, *, after: int, upto: int, limit: int
    ) -> tuple[list[LogRow], int, int]:
        return q.events(self._db(), rng=rng, after=after, upto=upto, limit=limit)

    async def compact_target(self, *, after: int, upto: int, cutoff: float) -> int:
        return q.compact_target(self._db(), after=after, upto=upto, cutoff=cutoff)

    # ---- the writer ----------------------------------------------------------

    async def apply(self, keys: list[str], *, plan: Callable[[list[Row]], P]) -> P:
        writer = self._writer_conn()
        planned = plan(q.load(writer.db, keys=keys))
        if planned.writes.log:
            await self._transact(writer, stage=lambda db: q.stage(db, writes=planned.writes))
        return planned

    async def delete_log(self, *, upto: int) -> None:
        await self._transact(
            self._writer_conn(), stage=lambda db: q.stage_delete_log(db, upto=upto)
        )

    async def checkpoint(self) -> None:
        if self.path is not None:
            await self._writer_conn().in_thread(q.checkpoint)

    async def head(self) -> int:
        return q.boot_head(self._writer_conn().db)

    async def _transact(self, conn: _Conn, *, stage: Callable[[sqlite3.Connection], None]) -> None:
        """BEGIN IMMEDIATE and ``stage`` on the loop; COMMIT (the fsync) in the thread."""
        db = conn.db
        db.execute("BEGIN IMMEDIATE")
        try:
            stage(db)
            if self.path is None:
                db.execute("COMMIT")
            else:
                await conn.in_thread(q.commit)
        except asyncio.CancelledError:
            raise  # the thread may still be committing: leave the connection to it
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


# ---- statements ---------------------------------------------------------------------


def _lock(path: str) -> int:
    """One process per database: revisions are assigned in memory by a single writer."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DatastoreError(f"{path}: the datastore is in use by another process") from None
    return fd
