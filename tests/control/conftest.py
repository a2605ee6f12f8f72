"""Fixtures for control-loop tests: a k3py server with scheduler, controllers and
simulated nodes, in-process, with short timings.

    def test_something(cluster, ns):
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=MANIFEST)
        cluster.wait_for(lambda: ready_replicas(cluster, ns) == 3, what="3 ready replicas")

``cluster`` is module-scoped (3 simulated nodes, cpu=4, memory=16Gi, pods=110); a test
that needs its own shape calls ``make_cluster(tmp_path, nodes=..., ...)`` and stops it
with ``stop_server_thread``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from k3py.server.controllers.base import Context, Informers
from k3py.server.controllers.manager import Manager
from tests.conftest import ServerHandle, server_config, start_server_thread, stop_server_thread

# Short timings so node loss, back-off and leases play out in seconds.
FAST_CM_ARGS = (
    "node-monitor-period=0.5s",
    "node-monitor-grace-period=4s",
    "node-eviction-rate=100",
)
FAST_SCHED_ARGS = ("pod-initial-backoff-seconds=0.2", "pod-max-backoff-seconds=1")
FAST_KUBELET_ARGS = ("node-lease-duration-seconds=4",)


class ClusterHandle(ServerHandle):
    def wait_for(
        self, pred: Callable[[], Any], *, timeout: float = 30.0, what: str = "", every: float = 0.1
    ) -> Any:
        """Poll ``pred`` until it returns something truthy; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = pred()
            if last:
                return last
            time.sleep(every)
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what or pred}; last: {last!r}"
        )

    def get_json(self, *args: str) -> Any:
        """``kubectl get ... -o json`` parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def client(self) -> Any:
        """The running server's in-process k3py Client (use with ``call``)."""
        return self.running.control.client

    @property
    def simulated(self) -> Any:
        return self.running.control.simulated


def start_only(h: ServerHandle, factories: list[Any]) -> Manager:
    """Run just ``factories`` (no leader election) against the server in ``h``."""
    cp = h.running.control
    cfg = h.running.config

    async def go() -> Manager:
        mgr = Manager(
            name="test-controllers",
            make_context=lambda inf: Context(
                client=cp.client,
                informers=inf,
                recorder=cp.sink.recorder("test"),
                timings=cp.timings,
                config=cfg,
            ),  # fmt: skip
            factories=factories,
            elector=None,
            informers=lambda: Informers(cp.client),
        )
        mgr.start()
        await asyncio.wait_for(mgr.running.wait(), 30)
        return mgr

    mgr: Manager = h.call(go())
    return mgr


def make_cluster(
    data_dir: Path,
    *,
    nodes: int = 3,
    capacity: str = "cpu=4,memory=16Gi,pods=110",
    cm_args: tuple[str, ...] = FAST_CM_ARGS,
    sched_args: tuple[str, ...] = FAST_SCHED_ARGS,
    kubelet_args: tuple[str, ...] = FAST_KUBELET_ARGS,
    **overrides: Any,
) -> ClusterHandle:
    overrides.setdefault("disable_controller_manager", False)
    overrides.setdefault("disable_scheduler", False)
    cfg = server_config(
        data_dir,
        simulate_nodes=nodes,
        simulate_node_capacity=capacity,
        kube_controller_manager_arg=list(cm_args),
        kube_scheduler_arg=list(sched_args),
        kubelet_arg=list(kubelet_args),
        **overrides,
    )
    h = start_server_thread(cfg)
    os.environ.setdefault("KUBECACHEDIR", str(data_dir / "kubecache"))
    return ClusterHandle(**h.__dict__)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    h = make_cluster(tmp_path_factory.mktemp("k3py-cluster"))
    try:
        h.wait_for(lambda: _ready_nodes(h) >= 3, timeout=30, what="3 Ready simulated nodes")
        yield h
    finally:
        stop_server_thread(h)


def _ready_nodes(h: ClusterHandle) -> int:
    nodes = h.get_json("nodes")["items"]
    return sum(
        1
        for n in nodes
        for c in n.get("status", {}).get("conditions", [])
        if c["type"] == "Ready" and c["status"] == "True"
    )


_counter = iter(range(1, 1_000_000))


@pytest.fixture
def ns(cluster: ClusterHandle) -> Iterator[str]:
    """A fresh namespace per test, removed afterwards."""
    name = f"c{os.getpid() % 10000}-{next(_counter)}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
