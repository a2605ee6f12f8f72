"""Scheduler throughput (issue 3): pods bound per second with many nodes.

    .venv/bin/python -m bench.bench_scheduler [--nodes 1000] [--pods 5000] [--clients 16]

Starts a real server subprocess with ``--simulate-nodes N`` (or, with ``--plain-nodes``,
creates N Node objects itself and runs no simulated kubelet), waits until the API holds
the N nodes, then creates the pods over HTTPS from ``--clients`` concurrent connections
while a watch counts pods that got ``spec.nodeName``.  Reports the time from the first
create to the last binding, pods bound/s over that span (the goal is 300), the bind rate
once all creates were done, and the server's CPU time.  Every loop is bounded in count
and time; all traffic goes to 127.0.0.1.

``--pending-first`` measures the scheduler alone on a backlog, as the issue words it
("5,000 pending pods"): the pods are created while the server runs with
``--disable-scheduler``; the server is then restarted on the same data dir with its
scheduler, and the span runs from the restarted server's /readyz to the last binding
(it includes the scheduler's informer sync of every node and pod).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import aiohttp
import orjson

from bench.common import ServerProc, pod, rss_mb, start_server

GOAL = 300.0


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def node_body(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "16Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


async def count_nodes(session: aiohttp.ClientSession, srv: ServerProc) -> int:
    async with session.get(f"{srv.url}/api/v1/nodes") as r:
        body = orjson.loads(await r.read())
    return len(body.get("items") or [])


async def make_nodes(session: aiohttp.ClientSession, srv: ServerProc, n: int) -> None:
    names = [f"bench-node-{i}" for i in range(n)]

    async def worker() -> None:
        while names:
            body = orjson.dumps(node_body(names.pop()))
            async with session.post(
                f"{srv.url}/api/v1/nodes", data=body, headers={"Content-Type": "application/json"}
            ) as r:
                await r.read()

    await asyncio.gather(*(worker() for _ in range(16)))


class Watcher:
    """Counts pods in the namespace that have a node."""

    def __init__(self) -> None:
        self.bound: set[str] = set()
        self.first_bound = 0.0
        self.last_bound = 0.0
        self.done = asyncio.Event()
        self.target = 0

    async def run(
        self, session: aiohttp.ClientSession, srv: ServerProc, ns: str, *, from_start: bool = False
    ) -> None:
        """Count from now on; ``from_start``: also every pod already there (the watch's
        synthetic ADDED events)."""
        url = f"{srv.url}/api/v1/namespaces/{ns}/pods?watch=1"
        rv = ""
        if not from_start:
            async with session.get(f"{srv.url}/api/v1/namespaces/{ns}/pods?limit=1") as r:
                rv = orjson.loads(await r.read())["metadata"]["resourceVersion"]
            url = f"{srv.url}/api/v1/namespaces/{ns}/pods?watch=1&resourceVersion={rv}"
        while not self.done.is_set():
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=None)) as r:
                async for line in r.content:
                    ev = orjson.loads(line)
                    obj = ev.get("object") or {}
                    rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                    if (obj.get("spec") or {}).get("nodeName"):
                        name = obj["metadata"]["name"]
                        if name not in self.bound:
                            now = time.perf_counter()
                            self.first_bound = self.first_bound or now
                            self.last_bound = now
                            self.bound.add(name)
                            if len(self.bound) >= self.target:
                                self.done.set()
                                return
            url = f"{srv.url}/api/v1/namespaces/{ns}/pods?watch=1&resourceVersion={rv}"


async def run(srv: ServerProc, args: argparse.Namespace) -> None:
    ctx = srv.ssl_context()
    conn = aiohttp.TCPConnector(ssl=ctx, limit=args.clients + 4)
    async with aiohttp.ClientSession(connector=conn) as session:
        if args.plain_nodes:
            await make_nodes(session, srv, args.nodes)
        deadline = time.monotonic() + 300
        while await count_nodes(session, srv) < args.nodes:
            if time.monotonic() > deadline:
                raise SystemExit("nodes did not register within 300 s")
            await asyncio.sleep(0.5)
        await asyncio.sleep(args.settle)  # let node registration writes calm down
        ns = "bench-sched"
        async with session.post(
            f"{srv.url}/api/v1/namespaces",
            data=orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            headers={"Content-Type": "application/json"},
        ) as r:
            await r.read()
        watcher = Watcher()
        watcher.target = args.pods
        watch_task = asyncio.create_task(watcher.run(session, srv, ns))
        await asyncio.sleep(0.5)
        todo = list(range(args.pods))
        errors = 0
        url = f"{srv.url}/api/v1/namespaces/{ns}/pods"

        async def creator() -> None:
            nonlocal errors
            while todo:
                i = todo.pop()
                body = orjson.dumps(pod(f"pod-{i:05d}", {"app": "bench-sched"}))
                async with session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as r:
                    await r.read()
                    if r.status != 201:
                        errors += 1

        cpu0 = cpu_seconds(srv.proc.pid)
        t0 = time.perf_counter()
        await asyncio.gather(*(creator() for _ in range(args.clients)))
        t_created = time.perf_counter()
        bound_at_created = len(watcher.bound)
        try:
            await asyncio.wait_for(watcher.done.wait(), args.timeout)
        except TimeoutError:
            print(f"timed out: {len(watcher.bound)}/{args.pods} bound after {args.timeout}s")
        watch_task.cancel()
        cpu1 = cpu_seconds(srv.proc.pid)
        t_end = watcher.last_bound or time.perf_counter()
        n = len(watcher.bound)
        span = t_end - t0
        rate = n / span if span > 0 else 0.0
        tail = (n - bound_at_created) / (t_end - t_created) if t_end > t_created else float("nan")
        print(f"nodes {args.nodes} ({'plain Node objects' if args.plain_nodes else 'simulated'}), pods {args.pods}, create clients {args.clients}")  # fmt: skip
        print(f"creates: {args.pods - errors} in {t_created - t0:.2f}s = {(args.pods - errors) / (t_created - t0):.0f}/s ({errors} errors)")  # fmt: skip
        print(f"bound: {n}/{args.pods}; first create -> last bound {span:.2f}s")
        print(f"pods bound/s: {rate:.0f}  (goal {GOAL:.0f}/s: ratio {rate / GOAL:.2f})")
        print(f"bound while creating: {bound_at_created}; bind rate after creates done: {tail:.0f}/s")  # fmt: skip
        await asyncio.sleep(11)  # the scheduler logs its counters every 10 s
        stats = [ln for ln in (srv.data_dir / "server.log").read_text().splitlines()
                 if "scheduler stats:" in ln]  # fmt: skip
        if stats:
            print("scheduler's own:", stats[-1].split("scheduler stats: ", 1)[1])
        print(f"server CPU: {cpu1 - cpu0:.1f}s over {span:.1f}s ({(cpu1 - cpu0) / span * 100:.0f}% of one core); RSS {rss_mb(srv.proc.pid):.0f} MB")  # fmt: skip


async def create_pods(session: aiohttp.ClientSession, srv: ServerProc, args: argparse.Namespace, ns: str) -> int:
    async with session.post(
        f"{srv.url}/api/v1/namespaces",
        data=orjson.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        headers={"Content-Type": "application/json"},
    ) as r:
        await r.read()
    todo = list(range(args.pods))
    errors = 0
    url = f"{srv.url}/api/v1/namespaces/{ns}/pods"

    async def creator() -> None:
        nonlocal errors
        while todo:
            body = orjson.dumps(pod(f"pod-{todo.pop():05d}", {"app": "bench-sched"}))
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
                errors += r.status != 201

    await asyncio.gather(*(creator() for _ in range(args.clients)))
    return errors


async def wait_nodes(session: aiohttp.ClientSession, srv: ServerProc, n: int) -> None:
    deadline = time.monotonic() + 300
    while await count_nodes(session, srv) < n:
        if time.monotonic() > deadline:
            raise SystemExit("nodes did not register within 300 s")
        await asyncio.sleep(0.5)


def pending_first(args: argparse.Namespace, extra: list[str]) -> None:
    ns = "bench-sched"
    srv = start_server(extra=[*extra, "--disable-scheduler"])
    data_dir = srv.data_dir

    async def phase1() -> None:
        conn = aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=args.clients + 4)
        async with aiohttp.ClientSession(connector=conn) as session:
            if args.plain_nodes:
                await make_nodes(session, srv, args.nodes)
            await wait_nodes(session, srv, args.nodes)
            errors = await create_pods(session, srv, args, ns)
            print(f"backlog: {args.pods - errors} pending pods created ({errors} errors), scheduler off")

    try:
        asyncio.run(phase1())
    finally:
        srv.stop()
    t_start = time.perf_counter()
    srv = start_server(data_dir, extra=extra)
    t_ready = time.perf_counter()

    async def phase2() -> None:
        conn = aiohttp.TCPConnector(ssl=srv.ssl_context(), limit=8)
        async with aiohttp.ClientSession(connector=conn) as session:
            cpu0 = cpu_seconds(srv.proc.pid)
            watcher = Watcher()
            watcher.target = args.pods
            task = asyncio.create_task(watcher.run(session, srv, ns, from_start=True))
            try:
                await asyncio.wait_for(watcher.done.wait(), args.timeout)
            except TimeoutError:
                print(f"timed out: {len(watcher.bound)}/{args.pods} bound after {args.timeout}s")
            task.cancel()
            n = len(watcher.bound)
            t_end = watcher.last_bound or time.perf_counter()
            cpu1 = cpu_seconds(srv.proc.pid)
            span = t_end - t_ready
            rate = n / span if span > 0 else 0.0
            print(f"nodes {args.nodes} ({'plain Node objects' if args.plain_nodes else 'simulated'}), pending pods {args.pods}")
            print(f"server restart to /readyz: {t_ready - t_start:.2f}s; /readyz -> all bound: {span:.2f}s ({n} bound)")
            print(f"pods bound/s: {rate:.0f}  (goal {GOAL:.0f}/s: ratio {rate / GOAL:.2f})")
            print(f"server CPU: {cpu1 - cpu0:.1f}s over {span:.1f}s ({(cpu1 - cpu0) / span * 100:.0f}% of one core); RSS {rss_mb(srv.proc.pid):.0f} MB")  # fmt: skip

    try:
        asyncio.run(phase2())
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--cluster-cidr", default="10.64.0.0/12")
    ap.add_argument("--plain-nodes", action="store_true", help="create Node objects, no kubelet")
    ap.add_argument("--pending-first", action="store_true", help="time the scheduler on a backlog of pending pods")
    args = ap.parse_args()
    extra = [] if args.plain_nodes else ["--simulate-nodes", str(args.nodes)]
    if not args.plain_nodes:
        # the default 10.42.0.0/16 holds 256 node /24s; 10.64.0.0/12 holds 4,096 (and
        # overlaps neither it nor the service CIDR 10.43.0.0/16)
        extra += ["--cluster-cidr", args.cluster_cidr]
    if args.pending_first:
        pending_first(args, extra)
        return
    srv = start_server(extra=extra)
    try:
        asyncio.run(run(srv, args))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
