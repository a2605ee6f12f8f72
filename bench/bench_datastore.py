"""Datastore benchmarks.

    .venv/bin/python -m bench.bench_datastore [--dir DIR] [--seconds 3] [--writers 32]

Measures, in one run on one disk (``--dir``, default the system temp dir):
  (a) raw durable SQLite commits/s: sqlite3, WAL, synchronous=FULL, one ~2 KB row per
      transaction — the ceiling for one-write-per-transaction storage (and, for
      reference, rows/s at 100 rows per transaction);
  (b) the datastore's durable creates/s with N concurrent writers (group commit), and
      the ratio b/a (goal >= 1.0).  (a) and (b) alternate in rounds so that drift in
      the disk's speed hits both alike;
  then: updates with optimistic concurrency, a watcher's delivery during the writes,
  LIST of 10,000 ~4 KB objects (goal well under 500 ms), GET, COUNT, and the same reads
  and a batch of writes while CPU-bound tasks keep the event loop busy.

Runs on uvloop like the server (``--no-uvloop`` for the stdlib loop).  Every loop is
bounded in time and count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from k3py.server.datastore import SQLDatastore, open_datastore


def configmap(name: str, *, size: int = 2000) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": "bench",
            "uid": "0b0e7c1e-2f3a-4c5d-9e8f-0123456789ab",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"app": "bench", "tier": "backend"},
        },
        "data": {},
    }
    fill = size - len(orjson.dumps(obj)) - 20
    obj["data"]["payload"] = "x" * max(0, fill)
    return obj


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * (len(v) - 1))))]


class RawSQLite:
    """sqlite3 alone: WAL, synchronous=FULL, ~2 KB rows."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self.payload = orjson.dumps(configmap("raw"))
        self.n = 0

    def run(self, *, seconds: float, rows_per_txn: int = 1, max_rows: int = 2_000_000) -> int:
        """Rows committed in ``seconds``, one transaction per ``rows_per_txn`` rows."""
        done = 0
        t0 = time.perf_counter()
        while done < max_rows and time.perf_counter() - t0 < seconds:
            rows = [(f"k{self.n + i}", self.payload) for i in range(rows_per_txn)]
            self.n += rows_per_txn
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO t VALUES (?, ?)", rows)
            self.db.execute("COMMIT")
            done += rows_per_txn
        return done


class Creates:
    """N writers creating ~2 KB ConfigMaps, run in rounds."""

    def __init__(self, ds: SQLDatastore, *, writers: int) -> None:
        self.ds = ds
        self.writers = writers
        self.template = configmap("tmpl")
        self.next = 0
        self.latencies: list[float] = []

    async def run(self, *, seconds: float) -> int:
        deadline = time.perf_counter() + seconds
        before = len(self.latencies)

        async def writer() -> None:
            while time.perf_counter() < deadline:
                i = self.next
                self.next += 1
                meta = {**self.template["metadata"], "name": f"cm-{i}"}
                t = time.perf_counter()
                await self.ds.create(
                    f"/core/configmaps/bench/cm-{i:07d}", {**self.template, "metadata": meta}
                )
                self.latencies.append(time.perf_counter() - t)

        await asyncio.gather(*(writer() for _ in range(self.writers)))
        return len(self.latencies) - before


async def concurrent_updates(ds: SQLDatastore, *, writers: int, seconds: float) -> float:
    """Each writer updates its own key with expected_revision (read-modify-write)."""
    keys = [f"/core/configmaps/bench-upd/u-{w}" for w in range(writers)]
    recs = await asyncio.gather(*(ds.create(k, configmap(k)) for k in keys))
    done = 0
    deadline = time.perf_counter() + seconds

    async def writer(key: str, rev: int) -> None:
        nonlocal done
        obj = configmap(key)
        while time.perf_counter() < deadline:
            rec = await ds.update(key, obj, expected_revision=rev)
            rev = rec.revision
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(writer(k, r.revision) for k, r in zip(keys, recs, strict=True)))
    return done / (time.perf_counter() - t0)


async def fill(ds: SQLDatastore, *, n: int) -> None:
    for start in range(0, n, 1000):
        await asyncio.gather(
            *(
                ds.create(f"/core/pods/list/p-{i:06d}", configmap(f"p-{i}", size=4000))
                for i in range(start, min(n, start + 1000))
            )
        )


async def reads(ds: SQLDatastore, *, n: int, lists: int = 5) -> tuple[float, float, float, float]:
    """(best LIST ms, GET p50 µs, GET p99 µs, COUNT ms) over the n ~4 KB objects."""
    times = []
    for _ in range(lists):
        t = time.perf_counter()
        res = await ds.list("/core/pods/list/")
        times.append(time.perf_counter() - t)
        assert len(res.records) == n
    gets = []
    for i in range(0, n, max(1, n // 1000)):
        t = time.perf_counter()
        await ds.get(f"/core/pods/list/p-{i:06d}")
        gets.append(time.perf_counter() - t)
    t = time.perf_counter()
    await ds.count("/core/pods/list/")
    count_ms = (time.perf_counter() - t) * 1e3
    return min(times) * 1e3, pct(gets, 50) * 1e6, pct(gets, 99) * 1e6, count_ms


async def write_batches(ds: SQLDatastore, *, batches: int, size: int = 32) -> float:
    """Median wall time of a batch of ``size`` concurrent updates, in ms."""
    keys = [f"/core/pods/list/p-{i:06d}" for i in range(size)]
    times = []
    for _ in range(batches):
        t = time.perf_counter()
        await asyncio.gather(*(ds.update(k, configmap(k, size=4000)) for k in keys))
        times.append(time.perf_counter() - t)
    return pct(times, 50) * 1e3


async def cpu_hog(stop: asyncio.Event, *, slice_s: float) -> None:
    """Keep the loop busy with CPU-bound slices, like request handlers under load."""
    while not stop.is_set():
        t = time.perf_counter()
        while time.perf_counter() - t < slice_s:
            sum(range(100))
        await asyncio.sleep(0)


async def under_busy_loop(ds: SQLDatastore, *, n: int) -> None:
    stop = asyncio.Event()
    hogs = [asyncio.create_task(cpu_hog(stop, slice_s=0.002)) for _ in range(2)]
    try:
        list_ms, get50, get99, _ = await reads(ds, n=n, lists=2)
        try:
            batch_ms = await asyncio.wait_for(write_batches(ds, batches=3), 60)
            batch = f"{batch_ms:10.1f} ms"
        except TimeoutError:
            batch = "   > 20 s"
    finally:
        stop.set()
        await asyncio.gather(*hogs)
    si = sys.getswitchinterval() * 1e3
    print(f"  with the loop busy (2 tasks in 2 ms CPU slices; switch interval {si:g} ms):")
    print(f"    LIST {n:,} x ~4 KB                              : {list_ms:10.1f} ms")
    print(f"    GET p50 / p99                                  : {get50:7.0f} / {get99:.0f} µs")
    print(f"    a batch of 32 updates (median of 3)            : {batch}")


async def run(args: argparse.Namespace, work: Path) -> None:
    raw = RawSQLite(work / "raw.db")
    ds = open_datastore(f"sqlite:///{work / 'state.db'}", compaction_interval=None)
    await ds.start()
    try:
        watch = ds.watch("/core/configmaps/", after_revision=0)
        seen = 0

        async def consume() -> None:
            nonlocal seen
            async for batch in watch:
                seen += len(batch)

        consumer = asyncio.create_task(consume())
        creates = Creates(ds, writers=args.writers)
        raw_rows = ds_rows = 0
        per_round = args.seconds / args.rounds
        for _ in range(args.rounds):
            raw_rows += raw.run(seconds=per_round)
            ds_rows += await creates.run(seconds=per_round)
        raw_rate = raw_rows / args.seconds
        rate = ds_rows / args.seconds
        raw100 = raw.run(seconds=min(1.0, per_round), rows_per_txn=100) / min(1.0, per_round)
        st = ds.stats
        lat = creates.latencies
        print(f"(a) raw SQLite, WAL, synchronous=FULL, 1 row/txn : {raw_rate:10,.0f} commits/s")
        print(f"    (the same, 100 rows/txn                        : {raw100:10,.0f} rows/s)")
        print(f"(b) datastore creates, {args.writers} writers, durable  : {rate:10,.0f} creates/s")
        print(
            f"    {st.batches:,} transactions, mean {st.writes / max(1, st.batches):.1f} and "
            f"max {st.largest_batch} writes each; latency p50 {pct(lat, 50) * 1e3:.2f} ms, "
            f"p99 {pct(lat, 99) * 1e3:.2f} ms"
        )
        print(f"    ratio b/a                                      : {rate / raw_rate:10.2f}")
        for _ in range(100):
            if seen >= ds_rows:
                break
            await asyncio.sleep(0.02)
        print(f"    watcher received                               : {seen:10,d} of {ds_rows:,}")
        await watch.close()
        consumer.cancel()

        upd = await concurrent_updates(ds, writers=args.writers, seconds=args.seconds / 2)
        print(f"    updates, expected_revision, {args.writers} writers    : {upd:10,.0f} /s")

        await fill(ds, n=args.objects)
        list_ms, get50, get99, count_ms = await reads(ds, n=args.objects)
        print(f"    LIST {args.objects:,} x ~4 KB objects                 : {list_ms:10.1f} ms")
        print(f"    GET p50 / p99                                  : {get50:7.0f} / {get99:.0f} µs")
        print(f"    COUNT {args.objects:,}                               : {count_ms:10.2f} ms")
        await under_busy_loop(ds, n=args.objects)
    finally:
        await ds.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dir", default=None, help="where the databases go (same disk as data)")
    ap.add_argument("--seconds", type=float, default=4.0, help="for (a) and for (b) each")
    ap.add_argument("--rounds", type=int, default=4, help="alternations of (a) and (b)")
    ap.add_argument("--writers", type=int, default=32)
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval")
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    work = Path(tempfile.mkdtemp(prefix="k3py-bench-ds-", dir=args.dir))
    try:
        if args.no_uvloop:
            asyncio.run(run(args, work))
        else:
            import uvloop

            uvloop.run(run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loop = "asyncio" if args.no_uvloop else "uvloop"
    print(f"    (disk: {os.path.realpath(work)}, loop: {loop})")


if __name__ == "__main__":
    main()
