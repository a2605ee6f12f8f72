"""Node loss across controllers: a stopped simulated node goes NotReady, its Deployment
pods are evicted and run elsewhere, its DaemonSet pod is not moved to another node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import stop_server_thread
from tests.control.conftest import ClusterHandle, make_cluster

# Pods of these workloads tolerate an unreachable node for 2 s instead of 300 s.
APISERVER_ARGS = [
    "default-not-ready-toleration-seconds=2",
    "default-unreachable-toleration-seconds=2",
]

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 6
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx, resources: {requests: {cpu: 100m}}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: busybox}]
"""


@pytest.fixture
def lossy(tmp_path: Path) -> Iterator[ClusterHandle]:
    h = make_cluster(tmp_path, nodes=3, kube_apiserver_arg=APISERVER_ARGS)
    try:
        yield h
    finally:
        stop_server_thread(h)


def _pods(h: ClusterHandle, selector: str) -> list[dict]:  # type: ignore[type-arg]
    return h.get_json("pods", "-n", "default", "-l", selector)["items"]  # type: ignore[no-any-return]


def _running_ready(pods: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [
        p
        for p in pods
        if p["status"].get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def _node_ready(h: ClusterHandle, name: str) -> str:
    node = h.get_json("node", name)
    for c in node["status"].get("conditions", []):
        if c["type"] == "Ready":
            return str(c["status"])
    return ""


def test_lost_node_reschedules_deployment_pods_but_not_daemonset_pods(lossy: ClusterHandle) -> None:
    h = lossy
    h.wait_for(lambda: all(_node_ready(h, f"sim-{i}") == "True" for i in range(3)), what="3 Ready nodes")
    h.kubectl("apply", "-n", "default", "-f", "-", input=MANIFEST)
    h.wait_for(lambda: len(_running_ready(_pods(h, "app=web"))) == 6, timeout=60, what="6 web pods Ready")
    h.wait_for(lambda: len(_running_ready(_pods(h, "app=agent"))) == 3, timeout=60, what="3 agent pods Ready")

    web = _pods(h, "app=web")
    victim = web[0]["spec"]["nodeName"]
    lost_web = {p["metadata"]["name"] for p in web if p["spec"]["nodeName"] == victim}
    assert lost_web
    h.kubectl("annotate", "node", victim, "k3py.io/simulate-stopped=true")

    # The node goes Unknown and gets the unreachable NoExecute taint.
    h.wait_for(lambda: _node_ready(h, victim) == "Unknown", timeout=60, what=f"{victim} NotReady")
    taints = h.get_json("node", victim)["spec"].get("taints", [])
    assert {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"} in [
        {"key": t["key"], "effect": t["effect"]} for t in taints
    ]

    # The Deployment's pods are replaced on the surviving nodes.
    def replaced() -> bool:
        pods = _running_ready(_pods(h, "app=web"))
        return len(pods) == 6 and all(p["spec"]["nodeName"] != victim for p in pods)

    h.wait_for(replaced, timeout=90, what="6 web pods Ready on surviving nodes")
    names_now = {p["metadata"]["name"] for p in _running_ready(_pods(h, "app=web"))}
    assert not (names_now & lost_web)

    # The DaemonSet keeps one pod per node and never places a second one on a survivor.
    agents = [p for p in _pods(h, "app=agent") if not p["metadata"].get("deletionTimestamp")]
    per_node: dict[str, int] = {}
    for p in agents:
        node = p["spec"].get("nodeName") or ""
        per_node[node] = per_node.get(node, 0) + 1
    assert all(n == 1 for n in per_node.values()), per_node
    survivors = {f"sim-{i}" for i in range(3)} - {victim}
    assert survivors <= set(per_node)

    # The node comes back: Ready again, taints gone, and the DaemonSet covers it.
    h.kubectl("annotate", "node", victim, "k3py.io/simulate-stopped-")
    h.wait_for(lambda: _node_ready(h, victim) == "True", timeout=60, what=f"{victim} Ready again")
    h.wait_for(
        lambda: not [t for t in h.get_json("node", victim)["spec"].get("taints", []) if t["key"].startswith("node.kubernetes.io/")],
        timeout=30,
        what="taints removed",
    )
    h.wait_for(
        lambda: any(p["spec"].get("nodeName") == victim for p in _running_ready(_pods(h, "app=agent"))),
        timeout=60,
        what="agent pod Running on the returned node",
    )
