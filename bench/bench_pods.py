"""Pod startup latency, exec round trip and agent RSS on real containerd.

A ``k3py server --disable-agent`` and a separate ``k3py agent`` process (joined with the
token, node IP 127.0.0.1) run on this machine; the busybox image is imported at agent
start.  Measured in one run:

* bare CRI: RunPodSandbox + CreateContainer + StartContainer straight against the
  agent's containerd (same image, same CNI), one by one and 30 at once — the reference;
* pods: create → Running as seen through a watch, 30 created at once and 30 one by one;
* ``kubectl exec POD -- true`` round trips;
* RSS of the agent process (and of its containerd) with 30 pods running.

Usage: .venv/bin/python -m bench.bench_pods [--pods 30] [--execs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import K3PY, free_port, pct, rss_mb, start_server

ROOT = Path(__file__).resolve().parents[1]
BUSYBOX = "k3py.local/busybox:1"


def pod_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "pods"}},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "c", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sleep", "3600"]}]},
    }


async def bare_cri(address: str, log_dir: Path, n: int, *, concurrent: bool) -> list[float]:
    from k3py.agent.cri import api_pb2 as cri
    from k3py.agent.cri.client import CRIClient

    client = await CRIClient.connect(address)
    times: list[float] = []
    ids: list[str] = []

    async def one(i: int) -> None:
        uid = uuid.uuid4().hex
        cfg = cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=f"bare-{i}", uid=uid, namespace="bench"),
            hostname=f"bare-{i}", log_directory=str(log_dir / uid),
            labels={"k3py.io/bench": "bare"},
            linux=cri.LinuxPodSandboxConfig(security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(pid=cri.CONTAINER))),
        )
        (log_dir / uid).mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        sid = await client.run_pod_sandbox(cfg)
        cid = await client.create_container(sid, cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name="c"), image=cri.ImageSpec(image=BUSYBOX),
            command=["sleep", "3600"], log_path="c/0.log"), cfg)
        await client.start_container(cid)
        times.append(time.monotonic() - t0)
        ids.append(sid)

    try:
        if concurrent:
            await asyncio.gather(*(one(i) for i in range(n)))
        else:
            for i in range(n):
                await one(i)
    finally:
        for sid in ids:
            await client.stop_pod_sandbox(sid)
            await client.remove_pod_sandbox(sid)
        await client.close()
    return times


async def api_pods(kubeconfig: Path, n: int, *, concurrent: bool, prefix: str) -> list[float]:
    from k3py.client import Client
    from k3py.client.interface import WatchOptions
    from k3py.client.resources import PODS

    client = Client.from_kubeconfig(kubeconfig)
    created: dict[str, float] = {}
    running: dict[str, float] = {}
    done = asyncio.Event()
    listing = await client.list(PODS, namespace="default")

    async def watch() -> None:
        stream = client.transport.watch(PODS, namespace="default",
                                        opts=WatchOptions(resource_version=listing.resource_version))
        try:
            async for ev in stream:
                obj = ev.object
                name = obj["metadata"]["name"]
                if name.startswith(prefix) and (obj.get("status") or {}).get("phase") == "Running" \
                        and name not in running:
                    running[name] = time.monotonic()
                    if len(running) == n:
                        done.set()
                    waiters.get(name, asyncio.Event()).set()
        finally:
            await stream.aclose()

    waiters: dict[str, asyncio.Event] = {}
    task = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    try:
        if concurrent:
            async def make(i: int) -> None:
                name = f"{prefix}{i}"
                created[name] = time.monotonic()
                await client.create(PODS, pod_body(name), namespace="default")
            await asyncio.gather(*(make(i) for i in range(n)))
            async with asyncio.timeout(300):
                await done.wait()
        else:
            for i in range(n):
                name = f"{prefix}{i}"
                waiters[name] = asyncio.Event()
                created[name] = time.monotonic()
                await client.create(PODS, pod_body(name), namespace="default")
                async with asyncio.timeout(120):
                    await waiters[name].wait()
    finally:
        task.cancel()
        await client.close()
    return [running[k] - created[k] for k in created if k in running]


def kubectl(kubeconfig: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                          timeout=timeout)


def children_rss(pid: int, name: str) -> float:
    total = 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and cmd.endswith(name):
            total += rss_mb(int(d.name))
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=30)
    ap.add_argument("--execs", type=int, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (containerd, network namespaces)")
    from k3py.agent.images import build_busybox_image

    work = Path(tempfile.mkdtemp(prefix="k3b-", dir="/tmp"))
    server = start_server(work / "server", extra=["--bind-address", "0.0.0.0"])
    agent_dir = work / "agent"
    (agent_dir / "agent" / "images").mkdir(parents=True)
    build_busybox_image(path=agent_dir / "agent" / "images" / "busybox.tar", ref=BUSYBOX, entrypoint=["/bin/sh"])
    token = (server.data_dir / "server" / "token").read_text().strip()
    log = (work / "agent.log").open("ab")
    agent = subprocess.Popen([K3PY, "agent", "--server", server.url, "--token", token, "--data-dir", str(agent_dir),
                              "--node-name", "bench-node", "--node-ip", "127.0.0.1",
                              "--kubelet-arg", f"port={free_port()}"],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    kc = server.kubeconfig
    try:
        t0 = time.monotonic()
        while kubectl(kc, "wait", "--for=condition=Ready", "node/bench-node", "--timeout=5s").returncode != 0:
            if time.monotonic() - t0 > 120 or agent.poll() is not None:
                sys.exit(f"agent did not become Ready; see {work / 'agent.log'}")
        print(f"agent start to node Ready: {time.monotonic() - t0:.2f} s")
        address = str(agent_dir / "agent" / "containerd" / "containerd.sock")
        logs = work / "bare-logs"
        n = args.pods

        bare_seq = asyncio.run(bare_cri(address, logs, 10, concurrent=False))
        bare_par = asyncio.run(bare_cri(address, logs, n, concurrent=True))
        print(f"bare CRI sandbox+create+start, one by one (10): p50 {pct(bare_seq, 50):.3f} s, "
              f"p99 {pct(bare_seq, 99):.3f} s")
        print(f"bare CRI, {n} at once: p50 {pct(bare_par, 50):.3f} s, p99 {pct(bare_par, 99):.3f} s")

        once = asyncio.run(api_pods(kc, n, concurrent=True, prefix="burst-"))
        print(f"pods, {n} created at once, create->Running: p50 {pct(once, 50):.3f} s, p99 {pct(once, 99):.3f} s"
              f"  (ratio to bare CRI at once: p50 {pct(once, 50) / pct(bare_par, 50):.2f}x, "
              f"p99 {pct(once, 99) / pct(bare_par, 99):.2f}x)")
        rss_agent = rss_mb(agent.pid)
        rss_containerd = children_rss(agent.pid, "containerd")
        print(f"agent RSS with {n} pods: {rss_agent:.0f} MB (its containerd: {rss_containerd:.0f} MB)")

        execs: list[float] = []
        for _ in range(args.execs):
            t = time.monotonic()
            res = kubectl(kc, "exec", "burst-0", "--", "true")
            if res.returncode != 0:
                print("exec failed:", res.stderr)
                break
            execs.append(time.monotonic() - t)
        print(f"kubectl exec POD -- true round trip ({len(execs)}): p50 {pct(execs, 50) * 1000:.0f} ms, "
              f"p99 {pct(execs, 99) * 1000:.0f} ms")

        kubectl(kc, "delete", "pods", "-l", "bench=pods", "--wait=true", "--timeout=120s", timeout=180)
        seq = asyncio.run(api_pods(kc, n, concurrent=False, prefix="seq-"))
        print(f"pods, {n} one by one, create->Running: p50 {pct(seq, 50):.3f} s, p99 {pct(seq, 99):.3f} s"
              f"  (ratio to bare CRI one by one: p50 {pct(seq, 50) / pct(bare_seq, 50):.2f}x, "
              f"p99 {pct(seq, 99) / pct(bare_seq, 99):.2f}x)")
        kubectl(kc, "delete", "pods", "-l", "bench=pods", "--wait=true", "--timeout=120s", timeout=180)
    finally:
        if agent.poll() is None:
            os.killpg(agent.pid, signal.SIGTERM)
            agent.wait(30)
        server.stop()
        subprocess.run(["pkill", "-KILL", "-f", f"containerd.*{agent_dir}"], check=False)
        from tests.e2e.conftest import cleanup_node

        cleanup_node(agent_dir)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
