"""API server benchmarks (issue 2).

    .venv/bin/python -m bench.bench_api [--pods 10000] [--seconds 5]

Measures, in one run on one disk:
  * raw durable SQLite commits/s (WAL, synchronous=FULL, one ~1.5 KB row per txn)
  * durable ConfigMap creates/s through HTTPS with 32 concurrent clients, and the ratio
  * GET / LIST all / LIST by label selector p50/p99 with N pods stored
  * watch delivery latency p50/p99 for 100 concurrent watchers while writing
  * cold start to /readyz (empty data dir, and a restart), RSS idle and with N pods

Every loop is bounded in count and time; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

from bench.common import ServerProc, configmap, pct, pod, rss_mb, start_server


def raw_sqlite_commits(path: Path, *, seconds: float, max_rows: int = 200_000) -> float:
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v BLOB)")
    payload = orjson.dumps(configmap("x"))
    n = 0
    t0 = time.perf_counter()
    while n < max_rows and time.perf_counter() - t0 < seconds:
        db.execute("BEGIN")
        db.execute("INSERT INTO t VALUES (?, ?)", (f"k{n}", payload))
        db.execute("COMMIT")
        n += 1
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


async def creates(
    srv: ServerProc, *, clients: int, seconds: float, max_total: int = 200_000
) -> tuple[float, int]:
    ctx = srv.ssl_context()
    url = f"{srv.url}/api/v1/namespaces/default/configmaps"
    count = 0
    errors = 0
    stop_at = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(ssl=ctx, limit=clients)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker(w: int) -> None:
            nonlocal count, errors
            i = 0
            while time.perf_counter() < stop_at and count < max_total:
                body = orjson.dumps(configmap(f"cm-{w}-{i}"))
                i += 1
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as r:
                    await r.read()
                    if r.status == 201:
                        count += 1
                    else:
                        errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(clients)))
        elapsed = time.perf_counter() - t0
    return count / elapsed, errors


async def load_pods(srv: ServerProc, n: int, *, clients: int = 32) -> None:
    ctx = srv.ssl_context()
    url = f"{srv.url}/api/v1/namespaces/default/pods"
    conn = aiohttp.TCPConnector(ssl=ctx, limit=clients)
    queue = list(range(n))
    async with aiohttp.ClientSession(connector=conn) as session:

        async def worker() -> None:
            while queue:
                i = queue.pop()
                labels = {"app": f"app-{i % 100}", "tier": "bench"}
                async with session.post(
                    url,
                    data=orjson.dumps(pod(f"pod-{i:05d}", labels)),
                    headers={"Content-Type": "application/json"},
                ) as r:
                    await r.read()
                    if r.status != 201:
                        raise RuntimeError(f"pod create failed: {r.status}")

        await asyncio.gather(*(worker() for _ in range(clients)))


async def timed_gets(
    srv: ServerProc, path: str, *, samples: int, headers: dict[str, str] | None = None
) -> tuple[list[float], int]:
    ctx = srv.ssl_context()
    lat = []
    size = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        for _ in range(samples):
            t0 = time.perf_counter()
            async with session.get(srv.url + path, headers=headers or {}) as r:
                body = await r.read()
                assert r.status == 200, (r.status, body[:300])
            lat.append((time.perf_counter() - t0) * 1000)
            size = len(body)
    return lat, size


async def watch_latency(srv: ServerProc, *, watchers: int, writes: int, rate: float) -> list[float]:
    ctx = srv.ssl_context()
    ns_url = f"{srv.url}/api/v1/namespaces"
    sent: dict[str, float] = {}
    lat: list[float] = []
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=ctx, limit=watchers + 8)
    ) as session:
        async with session.post(
            ns_url,
            data=orjson.dumps(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "watchbench"}}
            ),
            headers={"Content-Type": "application/json"},
        ) as r:
            await r.read()
        async with session.get(f"{ns_url}/watchbench/configmaps") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        got = 0
        done = asyncio.Event()

        async def watcher() -> None:
            nonlocal got
            url = f"{ns_url}/watchbench/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=120"
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=150)) as r:
                seen = 0
                async for line in r.content:
                    now = time.perf_counter()
                    ev = orjson.loads(line)
                    name = ev["object"]["metadata"]["name"]
                    if name in sent:
                        lat.append((now - sent[name]) * 1000)
                    seen += 1
                    got += 1
                    if seen >= writes:
                        break
            if got >= watchers * writes:
                done.set()

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.sleep(1.0)
        for i in range(writes):
            name = f"w-{i}"
            sent[name] = time.perf_counter()
            async with session.post(
                f"{ns_url}/watchbench/configmaps",
                data=orjson.dumps(configmap(name, 200)),
                headers={"Content-Type": "application/json"},
            ) as r:
                await r.read()
            await asyncio.sleep(1.0 / rate)
        try:
            await asyncio.wait_for(done.wait(), 30)
        except TimeoutError:
            pass
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return lat


def measure(srv: ServerProc, args: argparse.Namespace, raw: float) -> None:
    print(f"cold start to /readyz (empty data dir): {srv.start_seconds:.2f} s")
    time.sleep(1.0)
    idle = rss_mb(srv.proc.pid)
    print(f"RSS idle: {idle:.0f} MB")
    rate, errs = asyncio.run(creates(srv, clients=args.clients, seconds=args.seconds))
    print(f"ConfigMap creates/s over HTTPS, {args.clients} clients: {rate:,.0f} (errors {errs})")
    print(f"ratio creates / raw commits: {rate / raw:.2f}x")

    if args.pods <= 0:
        return
    t0 = time.perf_counter()
    asyncio.run(load_pods(srv, args.pods))
    print(f"stored {args.pods} pods in {time.perf_counter() - t0:.1f} s")
    get_lat, _ = asyncio.run(
        timed_gets(srv, "/api/v1/namespaces/default/pods/pod-00042", samples=300)
    )
    print(f"GET pod: p50 {pct(get_lat, 50):.1f} ms, p99 {pct(get_lat, 99):.1f} ms")
    list_lat, size = asyncio.run(timed_gets(srv, "/api/v1/namespaces/default/pods", samples=10))
    print(
        f"LIST {args.pods} pods ({size / 1e6:.1f} MB): p50 {pct(list_lat, 50):.0f} ms, p99 {pct(list_lat, 99):.0f} ms"
    )
    sel_lat, size = asyncio.run(
        timed_gets(srv, "/api/v1/namespaces/default/pods?labelSelector=app%3Dapp-7", samples=20)
    )
    print(f"LIST by label (1%): p50 {pct(sel_lat, 50):.0f} ms, p99 {pct(sel_lat, 99):.0f} ms")
    table_lat, _ = asyncio.run(
        timed_gets(
            srv,
            "/api/v1/namespaces/default/pods?limit=500",
            samples=10,
            headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"},
        )
    )
    print(
        f"LIST Table page of 500 (kubectl get pods): p50 {pct(table_lat, 50):.0f} ms, p99 {pct(table_lat, 99):.0f} ms"
    )
    print(f"RSS with {args.pods} pods: {rss_mb(srv.proc.pid):.0f} MB")

    lat = asyncio.run(watch_latency(srv, watchers=100, writes=100, rate=20))
    print(
        f"watch delivery, 100 watchers x 100 writes: p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms ({len(lat)} events)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", type=int, default=32)
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="k3py-bench-", dir=os.environ.get("BENCH_DIR")))
    raw = raw_sqlite_commits(data / "raw.db", seconds=args.seconds)
    print(f"raw durable SQLite commits/s (1 row/txn, WAL, FULL): {raw:,.0f}")

    srv = start_server(data / "srv")
    try:
        measure(srv, args, raw)
    finally:
        srv.stop()

    again = start_server(data / "srv")
    print(
        f"restart to /readyz (existing data dir with {args.pods} pods): {again.start_seconds:.2f} s"
    )
    again.stop()


if __name__ == "__main__":
    main()
