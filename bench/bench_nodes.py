"""Simulated-node benchmarks (issue 3).

    .venv/bin/python -m bench.bench_nodes idle [--nodes 1000] [--seconds 300]
    .venv/bin/python -m bench.bench_nodes loss [--nodes 10] [--replicas 30] [--timings short|default]
    .venv/bin/python -m bench.bench_nodes pods [--nodes 100] [--pods 5000]

``idle``: a server with ``--simulate-nodes N`` (every node renewing its Lease every 10 s)
left alone for ``--seconds`` after all nodes are Ready: the server process's CPU as a
share of one core (utime+stime from /proc/<pid>/stat), its RSS, the SQLite database size
(state.db + -wal + -shm) at the end, and how fresh the Leases are (all still renewed).
Goal: at most 25 % of a core for 1,000 nodes.

``loss``: a server with N simulated nodes and a Deployment whose pods tolerate
``unreachable``/``not-ready`` for ``--toleration`` seconds; the node holding the most of
its pods is stopped with ``kubectl annotate node … k3py.io/simulate-stopped=true`` and
the time until all replicas are Running and Ready on other nodes is measured, with the
moments the node went NotReady, got its NoExecute taint and lost its first pod.
``--timings short`` uses node-monitor-grace-period=4s (Lease every 1 s) and 5 s
tolerations; ``--timings default`` upstream's 40 s Lease / 50 s grace and the 300 s
default tolerations (expect about 6 minutes).

``pods``: N pods created with ``spec.nodeName`` already set (no scheduler involved) by 32
concurrent HTTPS clients; the time until all are Running and Ready measures the
simulated kubelet's throughput (bounded by the API's create rate when that is lower);
``--held`` creates them with every kubelet stopped (the annotation) and measures from
the moment they are started again: the kubelets' own rate.

Every loop is bounded in time; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import ServerProc, rss_mb, start_server
from k3py.client import Client
from k3py.client.resources import DEPLOYMENTS, LEASES, NODES, PODS

Obj = dict[str, Any]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks


def db_bytes(data_dir: Path) -> int:
    base = data_dir / "server" / "db" / "state.db"
    return sum(
        p.stat().st_size for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if p.exists()
    )


def cluster_cidr_for(nodes: int) -> str:
    """A cluster CIDR with a /24 for every node (K3s's default /16 holds only 256)."""
    bits = max(8, math.ceil(math.log2(max(nodes, 1))))
    return f"10.64.0.0/{24 - bits}" if bits <= 10 else f"10.0.0.0/{24 - bits}"


def kubectl(srv: ServerProc, *args: str) -> str:
    res = subprocess.run(
        ["kubectl", "--kubeconfig", str(srv.kubeconfig), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if res.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


def _ready(obj: Obj) -> bool:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


async def wait_nodes_ready(client: Client, *, n: int, limit: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        nodes = (await client.list_all(NODES)).items
        if sum(1 for x in nodes if _ready(x) and x["spec"].get("podCIDR")) >= n:
            return time.monotonic() - t0
        await asyncio.sleep(1.0)
    raise SystemExit(f"{n} nodes not Ready with a podCIDR within {limit:.0f} s")


# ---- idle -------------------------------------------------------------------------------


async def idle(args: argparse.Namespace) -> None:
    extra = ["--simulate-nodes", str(args.nodes), "--cluster-cidr", cluster_cidr_for(args.nodes)]
    extra += args.server_arg
    srv = start_server(extra=extra)
    pid = srv.proc.pid
    try:
        client = Client.from_kubeconfig(srv.kubeconfig)
        try:
            t_ready = await wait_nodes_ready(client, n=args.nodes, limit=300)
            print(
                f"{args.nodes} nodes Ready in {t_ready:.1f} s (server up in {srv.start_seconds:.1f} s)"
            )
            await asyncio.sleep(args.warmup)
            db0 = db_bytes(srv.data_dir)
            c0, w0 = cpu_seconds(pid), time.monotonic()
            samples: list[tuple[float, float, int]] = []
            end = w0 + args.seconds
            while time.monotonic() < end:
                await asyncio.sleep(min(30.0, max(0.0, end - time.monotonic())))
                c, w = cpu_seconds(pid), time.monotonic()
                samples.append((w - w0, c - c0, db_bytes(srv.data_dir)))
            c1, w1 = cpu_seconds(pid), time.monotonic()
            share = (c1 - c0) / (w1 - w0)
            rss = rss_mb(pid)
            db1 = db_bytes(srv.data_dir)
            leases = (await client.list_all(LEASES, namespace="kube-node-lease")).items
            now = time.time()
            ages = []
            for lease in leases:
                renew = lease["spec"].get("renewTime", "")
                ts = time.mktime(time.strptime(renew[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
                ages.append(now - ts)
            nodes = (await client.list_all(NODES)).items
            ready = sum(1 for x in nodes if _ready(x))
        finally:
            await client.close()
    finally:
        srv.stop()
    print(f"idle {args.seconds:.0f} s with {args.nodes} simulated nodes:")
    for t, c, size in samples:
        print(
            f"  t={t:6.0f} s  cumulative CPU share {c / t * 100:5.1f} %  database {size / 1e6:6.1f} MB"
        )
    print(f"  server CPU: {share * 100:.1f} % of one core (goal <= 25 %)")
    print(f"  RSS at the end: {rss:.0f} MB")
    print(f"  database: {db0 / 1e6:.1f} MB after warm-up -> {db1 / 1e6:.1f} MB at the end")
    print(
        f"  leases: {len(leases)}, oldest renewTime {max(ages, default=0):.1f} s ago; Ready nodes {ready}"
    )


# ---- node loss ---------------------------------------------------------------------------


def _deployment(replicas: int, toleration: int | None) -> Obj:
    spec: Obj = {"containers": [{"name": "app", "image": "nginx",
                                 "resources": {"requests": {"cpu": "10m"}}}]}  # fmt: skip
    if toleration is not None:
        spec["tolerations"] = [
            {"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": toleration}
            for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "loss", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "loss"}},
            "template": {"metadata": {"labels": {"app": "loss"}}, "spec": spec},
        },
    }


def _serving(pods: list[Obj], *, lost: str) -> int:
    return sum(
        1 for p in pods
        if not p["metadata"].get("deletionTimestamp") and p["spec"].get("nodeName") not in ("", None, lost)
        and (p.get("status") or {}).get("phase") == "Running" and _ready(p)
    )  # fmt: skip


async def loss(args: argparse.Namespace) -> None:
    short = args.timings == "short"
    extra = ["--simulate-nodes", str(args.nodes), *args.server_arg]
    toleration: int | None = None
    if short:
        toleration = args.toleration
        extra += [
            "--kube-controller-manager-arg", "node-monitor-grace-period=4s",
            "--kube-controller-manager-arg", "node-monitor-period=0.5s",
            "--kubelet-arg", "node-lease-duration-seconds=4",
        ]  # fmt: skip
    srv = start_server(extra=extra)
    try:
        client = Client.from_kubeconfig(srv.kubeconfig)
        try:
            await wait_nodes_ready(client, n=args.nodes, limit=120)
            await client.create(DEPLOYMENTS, _deployment(args.replicas, toleration))
            t0 = time.monotonic()
            while True:
                pods = (
                    await client.list(PODS, namespace="default", label_selector="app=loss")
                ).items
                if _serving(pods, lost="") >= args.replicas:
                    break
                if time.monotonic() - t0 > 120:
                    raise SystemExit(
                        f"the Deployment did not get {args.replicas} Ready pods in 120 s "
                        f"({_serving(pods, lost='')} Ready, {len(pods)} pods): are the Deployment "
                        "and ReplicaSet controllers and the scheduler present?"
                    )
                await asyncio.sleep(0.2)
            print(f"Deployment of {args.replicas} Ready in {time.monotonic() - t0:.1f} s")
            per_node: dict[str, int] = {}
            for p in pods:
                per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
            lost = max(per_node, key=lambda n: per_node[n])
            print(f"stopping {lost} (holds {per_node[lost]} of the pods)")
            kubectl(srv, "annotate", "node", lost, "k3py.io/simulate-stopped=true")
            t_stop = time.monotonic()
            marks: dict[str, float] = {}
            limit = 120.0 if short else 600.0
            while time.monotonic() - t_stop < limit:
                node = await client.get(NODES, lost)
                if "not ready" not in marks and not _ready(node):
                    marks["not ready"] = time.monotonic() - t_stop
                taints = [
                    t for t in node["spec"].get("taints") or [] if t.get("effect") == "NoExecute"
                ]
                if "tainted" not in marks and taints:
                    marks["tainted"] = time.monotonic() - t_stop
                pods = (
                    await client.list(PODS, namespace="default", label_selector="app=loss")
                ).items
                if "first eviction" not in marks and any(
                    p["metadata"].get("deletionTimestamp") and p["spec"].get("nodeName") == lost
                    for p in pods
                ):
                    marks["first eviction"] = time.monotonic() - t_stop
                if _serving(pods, lost=lost) >= args.replicas:
                    marks["all Running elsewhere"] = time.monotonic() - t_stop
                    break
                await asyncio.sleep(0.2)
            else:
                raise SystemExit(f"pods not all Running elsewhere within {limit:.0f} s: {marks}")
        finally:
            await client.close()
    finally:
        srv.stop()
    what = ("short timings: Lease 1 s, grace 4 s, tolerationSeconds "
            f"{toleration}" if short else "default timings: Lease 10 s, grace 50 s, 300 s tolerations")  # fmt: skip
    print(f"node loss with {args.nodes} nodes, {args.replicas} replicas ({what}):")
    for k, v in marks.items():
        print(f"  {k:22s} {v:6.1f} s after the stop")


# ---- pods through the simulated kubelet ----------------------------------------------------


async def pods(args: argparse.Namespace) -> None:
    extra = ["--simulate-nodes", str(args.nodes), "--cluster-cidr", cluster_cidr_for(args.nodes),
             *args.server_arg]  # fmt: skip
    srv = start_server(extra=extra)
    pid = srv.proc.pid
    try:
        client = Client.from_kubeconfig(srv.kubeconfig)
        try:
            await wait_nodes_ready(client, n=args.nodes, limit=300)
            sem = asyncio.Semaphore(32)

            async def create(i: int) -> None:
                body = {
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": f"p-{i}", "namespace": "default", "labels": {"bench": "pods"}},
                    "spec": {"nodeName": f"sim-{i % args.nodes}",
                             "containers": [{"name": "app", "image": "nginx"}]},
                }  # fmt: skip
                async with sem:
                    await client.create(PODS, body)

            if args.held:  # kubelets stopped while the pods are created: then all at once
                kubectl(srv, "annotate", "nodes", "--all", "k3py.io/simulate-stopped=true")
            c0 = cpu_seconds(pid)
            t0 = time.monotonic()
            await asyncio.gather(*(create(i) for i in range(args.pods)))
            t_created = time.monotonic() - t0
            if args.held:
                kubectl(srv, "annotate", "nodes", "--all", "k3py.io/simulate-stopped-")
                c0 = cpu_seconds(pid)
                t0 = time.monotonic()
            running = 0
            while time.monotonic() - t0 < 600:
                items = (
                    await client.list_all(PODS, namespace="default", label_selector="bench=pods")
                ).items
                running = sum(
                    1
                    for p in items
                    if (p.get("status") or {}).get("phase") == "Running" and _ready(p)
                )
                if running >= args.pods:
                    break
                await asyncio.sleep(0.5)
            t_running = time.monotonic() - t0
            cpu = cpu_seconds(pid) - c0
        finally:
            await client.close()
    finally:
        srv.stop()
    print(f"{args.pods} pods bound to {args.nodes} simulated nodes (created by 32 clients):")
    print(f"  all created after {t_created:.1f} s ({args.pods / t_created:.0f} creates/s)")
    if args.held:
        print("  (kubelets held stopped during the creates; times below from their restart)")
    print(
        f"  all Running+Ready after {t_running:.1f} s ({args.pods / t_running:.0f} pods/s end to end); {running} Running"
    )
    print(f"  server CPU during it: {cpu:.1f} s ({cpu / t_running * 100:.0f} % of one core)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("idle")
    a.add_argument("--nodes", type=int, default=1000)
    a.add_argument("--seconds", type=float, default=300.0)
    a.add_argument("--warmup", type=float, default=20.0)
    b = sub.add_parser("loss")
    b.add_argument("--nodes", type=int, default=10)
    b.add_argument("--replicas", type=int, default=30)
    b.add_argument("--timings", choices=["short", "default"], default="short")
    b.add_argument("--toleration", type=int, default=5)
    c = sub.add_parser("pods")
    c.add_argument("--nodes", type=int, default=100)
    c.add_argument("--pods", type=int, default=5000)
    c.add_argument(
        "--held", action="store_true", help="create with kubelets stopped, then start them"
    )
    for p in (a, b, c):
        p.add_argument("--server-arg", action="append", default=[],
                       help="an extra `k3py server` argument (repeat), e.g. --server-arg=--disable-scheduler")  # fmt: skip
    args = ap.parse_args()
    run = {"idle": idle, "loss": loss, "pods": pods}[args.cmd]
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
