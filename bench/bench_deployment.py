"""A Deployment of N replicas from apply to all Ready on simulated nodes (issue 3).

    .venv/bin/python -m bench.bench_deployment [--replicas 1000] [--nodes 100]

Starts the real ``k3py server --simulate-nodes 100`` as a subprocess, waits for the
nodes to be Ready, server-side applies one Deployment over HTTPS and polls its status
until ``availableReplicas`` reaches the replica count.  Prints the milestones (all pods
created, all scheduled, all available), seconds and pods/s, and the server's CPU time
and RSS.  Every loop is bounded by ``--timeout``; all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from bench.common import ServerProc, rss_mb, start_server
from k3py.client import Client
from k3py.client.resources import DEPLOYMENTS, NODES

NS = "default"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def deployment(name: str, replicas: int) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.27",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ]
                },
            },
        },
    }


async def wait_nodes(client: Client, *, count: int, limit: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        nodes = (await client.list(NODES)).items
        ready = sum(
            1
            for n in nodes
            for c in (n.get("status") or {}).get("conditions") or []
            if c.get("type") == "Ready" and c.get("status") == "True"
        )
        if ready >= count:
            return time.monotonic() - t0
        await asyncio.sleep(0.2)
    raise SystemExit(f"only some of {count} nodes became Ready in {limit:.0f} s")


async def rollout(client: Client, *, replicas: int, limit: float) -> dict[str, float]:
    """Seconds from apply to: all pods exist, all Ready, all available."""
    marks: dict[str, float] = {}
    t0 = time.monotonic()
    await client.apply(DEPLOYMENTS, deployment("bench", replicas), namespace=NS, force=True)
    next_report = 5.0
    while time.monotonic() - t0 < limit:
        st = (await client.get(DEPLOYMENTS, "bench", namespace=NS)).get("status") or {}
        elapsed = time.monotonic() - t0
        for mark, field in (("created", "replicas"), ("ready", "readyReplicas"),
                            ("available", "availableReplicas")):  # fmt: skip
            if mark not in marks and int(st.get(field) or 0) >= replicas:
                marks[mark] = elapsed
        if elapsed >= next_report:
            print(f"  {elapsed:5.1f} s: {st.get('replicas', 0)} pods, "
                  f"{st.get('readyReplicas', 0)} ready, {st.get('availableReplicas', 0)} available")  # fmt: skip
            next_report += 5.0
        if "available" in marks:
            return marks
        await asyncio.sleep(0.1)
    raise SystemExit(f"not all {replicas} replicas available after {limit:.0f} s: {marks}")


async def run(srv: ServerProc, args: argparse.Namespace) -> None:
    client = Client.from_kubeconfig(srv.kubeconfig, field_manager="bench")
    try:
        t_nodes = await wait_nodes(client, count=args.nodes, limit=120)
        print(f"{args.nodes} simulated nodes Ready after {t_nodes:.1f} s")
        cpu0, t0 = cpu_seconds(srv.proc.pid), time.monotonic()
        marks = await rollout(client, replicas=args.replicas, limit=args.timeout)
        cpu = cpu_seconds(srv.proc.pid) - cpu0
        wall = time.monotonic() - t0
    finally:
        await client.close()
    total = marks["available"]
    print(f"all {args.replicas} pods created: {marks.get('created', float('nan')):.1f} s")
    print(f"all {args.replicas} pods Ready: {marks.get('ready', float('nan')):.1f} s")
    print(f"apply to availableReplicas == {args.replicas}: {total:.1f} s "
          f"({args.replicas / total:.0f} pods/s)")  # fmt: skip
    print(f"server CPU during the rollout: {cpu:.1f} s ({cpu / wall:.0%} of one core)")
    print(f"server RSS after: {rss_mb(srv.proc.pid):.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicas", type=int, default=1000)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    srv = start_server(extra=["--simulate-nodes", str(args.nodes)])
    try:
        print(f"server ready in {srv.start_seconds:.2f} s (data dir {srv.data_dir})")
        asyncio.run(run(srv, args))
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
