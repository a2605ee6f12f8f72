"""End-to-end fixtures: a real ``k3py server`` process with its embedded agent (containerd,
CNI, kubelet), driven by the real kubectl and the official Python client.

The session cluster runs in the root network namespace with node IP 127.0.0.1, so the
kubelet API, hostPorts and the API server are reached on loopback; pods live in their
own namespaces behind the ``k3py0`` bridge.  Test images are built from Debian's
busybox-static (tests/e2e/runtime_fixtures.py): the busybox image is dropped into
``<data-dir>/agent/images/`` so the agent imports it at start, as a user without a
registry would; the pause image is the agent's built-in one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
K3PY = str(Path(sys.executable).with_name("k3py"))
BUSYBOX = "k3py.local/busybox:1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Cluster:
    data_dir: Path
    port: int
    kubeconfig: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    node_name: str
    images: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def cri_address(self) -> str:
        return str(self.data_dir / "agent" / "containerd" / "containerd.sock")

    def crictl_containers(self, **labels: str) -> list[Any]:
        """CRI containers with these labels (a fresh CRI connection per call)."""
        import asyncio

        from k3py.agent.cri import api_pb2 as cri
        from k3py.agent.cri.client import CRIClient

        async def go() -> list[Any]:
            c = await CRIClient.connect(self.cri_address)
            try:
                return await c.list_containers(cri.ContainerFilter(label_selector=labels))
            finally:
                await c.close()

        return asyncio.run(go())

    def sandboxes(self, **labels: str) -> list[Any]:
        import asyncio

        from k3py.agent.cri import api_pb2 as cri
        from k3py.agent.cri.client import CRIClient

        async def go() -> list[Any]:
            c = await CRIClient.connect(self.cri_address)
            try:
                return await c.list_pod_sandbox(cri.PodSandboxFilter(label_selector=labels))
            finally:
                await c.close()

        return asyncio.run(go())

    def kubectl(self, *args: str, input: str | bytes | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), *args]
        res = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
            )
        return res

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def apply(self, manifest: str, namespace: str = "") -> None:
        extra = ["-n", namespace] if namespace else []
        self.kubectl("apply", *extra, "-f", "-", input=manifest)

    def wait_for(self, what: str, pred: Callable[[], Any], timeout: float = 60.0,
                 interval: float = 0.25) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = pred()
            except (AssertionError, KeyError, IndexError, json.JSONDecodeError) as e:
                last = e
            else:
                if last:
                    return last
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}\n{self.tail_log()}")

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self.get_json("pod", "-n", namespace, name)
        return out

    def wait_pod(self, namespace: str, name: str, pred: Callable[[dict[str, Any]], Any],
                 what: str = "", timeout: float = 60.0) -> dict[str, Any]:
        def check() -> Any:
            p = self.pod(namespace, name)
            return p if pred(p) else None

        out: dict[str, Any] = self.wait_for(what or f"pod {namespace}/{name}", check, timeout=timeout)
        return out

    def wait_running(self, namespace: str, name: str, timeout: float = 60.0) -> dict[str, Any]:
        return self.wait_pod(namespace, name, is_ready, f"pod {namespace}/{name} Ready", timeout)

    def tail_log(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "--- server log (tail) ---\n" + "\n".join(text[-lines:])

    def python_client(self) -> Any:
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))


def is_ready(pod: dict[str, Any]) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def container_status(pod: dict[str, Any], name: str) -> dict[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == name:
            out: dict[str, Any] = cs
            return out
    return {}


def start_server(data_dir: Path, *, node_name: str = "e2e-node", extra: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> Cluster:
    port = free_port()
    kubelet_port = free_port()
    kubeconfig = data_dir / "kubeconfig.yaml"
    log_path = data_dir / "server.log"
    cmd = [
        K3PY, "server", "--data-dir", str(data_dir), "--https-listen-port", str(port),
        "--node-ip", "127.0.0.1", "--node-name", node_name, "-o", str(kubeconfig),
        "--kubelet-arg", f"port={kubelet_port}", *extra,
    ]
    log = log_path.open("ab")
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    cluster = Cluster(data_dir=data_dir, port=port, kubeconfig=kubeconfig, proc=proc,
                      log_path=log_path, node_name=node_name)

    def node_ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"k3py server exited with {proc.returncode}\n{cluster.tail_log()}")
        if not kubeconfig.exists():
            return False
        res = cluster.kubectl("get", "node", node_name, "-o", "json", check=False)
        if res.returncode != 0:
            return False
        node = json.loads(res.stdout)
        conds = {c["type"]: c["status"] for c in node.get("status", {}).get("conditions", [])}
        return conds.get("Ready") == "True"

    cluster.wait_for(f"node {node_name} Ready", node_ready, timeout=120)
    return cluster


def stop_server(cluster: Cluster, *, remove_pods: bool = True) -> None:
    """Delete every pod (so the agent tears down sandboxes, netns, veths and IPs), then stop."""
    if remove_pods and cluster.proc.poll() is None:
        with contextlib.suppress(Exception):
            cluster.kubectl("delete", "pods", "--all", "--all-namespaces", "--wait=true",
                            "--grace-period=1", "--timeout=60s", check=False, timeout=90)
    if cluster.proc.poll() is None:
        os.killpg(cluster.proc.pid, signal.SIGTERM)
        try:
            cluster.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.proc.pid, signal.SIGKILL)
            cluster.proc.wait(10)
    cleanup_node(cluster.data_dir)


def cleanup_node(data_dir: Path, *, root_network: bool = True) -> None:
    """Remove what an agent leaves on the machine by design (running shims, mounts) so
    the next test session starts clean; ``root_network=False`` for an agent that lived in
    a namespace of its own (its bridge and rules went with the namespace)."""
    subprocess.run(["pkill", "-KILL", "-f", f"containerd.*{data_dir}"], check=False)
    time.sleep(0.2)
    mounts = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1]
            if target.startswith(str(data_dir)) or f"/run/k3py-{data_dir.name}" in target:
                mounts.append(target)
    for target in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    if root_network:
        subprocess.run(["ip", "link", "del", "k3py0"], check=False, capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", "k3py-cni"], check=False, capture_output=True)


@pytest.fixture(scope="session")
def e2e_images() -> Iterator[dict[str, Any]]:
    from tests.e2e.runtime_fixtures import build_test_images

    d = Path(tempfile.mkdtemp(prefix="k3py-img-"))
    yield build_test_images(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(e2e_images: dict[str, Any]) -> Iterator[Cluster]:
    if os.geteuid() != 0:
        raise RuntimeError("tests/e2e run as root (containerd, network namespaces)")
    if shutil.which("kubectl") is None:
        raise RuntimeError("kubectl is required")
    data_dir = Path(tempfile.mkdtemp(prefix="k3e-", dir="/tmp"))
    images_dir = data_dir / "agent" / "images"
    images_dir.mkdir(parents=True)
    shutil.copy(e2e_images["busybox"]["path"], images_dir / "busybox.tar")
    os.environ.setdefault("KUBECACHEDIR", str(data_dir / "kubecache"))
    c = start_server(data_dir)
    c.images = e2e_images
    try:
        yield c
    finally:
        stop_server(c)
        shutil.rmtree(data_dir, ignore_errors=True)


_ns_counter = iter(range(1, 1_000_000))


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = f"e2e-{os.getpid() % 10000}-{next(_ns_counter)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
