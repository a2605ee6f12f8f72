"""The manifests users copy from examples/ run on simulated nodes: workloads come up,
Services get endpoints, Jobs complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.control.conftest import ClusterHandle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _ready(obj: dict[str, Any], field: str, want: int) -> bool:
    return int(obj.get("status", {}).get(field) or 0) >= want


def test_web_statefulset_daemonset_and_jobs_examples(cluster: ClusterHandle, ns: str) -> None:
    h = cluster
    for name in ("web.yaml", "statefulset.yaml", "jobs.yaml"):
        h.kubectl("apply", "-n", ns, "-f", str(EXAMPLES / name))
    h.wait_for(lambda: _ready(h.get_json("deploy", "web", "-n", ns), "availableReplicas", 2),
               timeout=60, what="web Deployment available")  # fmt: skip
    h.wait_for(lambda: _ready(h.get_json("sts", "db", "-n", ns), "readyReplicas", 3),
               timeout=90, what="db StatefulSet ready")  # fmt: skip
    pvcs = {p["metadata"]["name"] for p in h.get_json("pvc", "-n", ns)["items"]}
    assert {"data-db-0", "data-db-1", "data-db-2"} <= pvcs
    h.wait_for(lambda: _ready(h.get_json("job", "pi", "-n", ns), "succeeded", 3),
               timeout=60, what="pi Job complete")  # fmt: skip
    slices = h.get_json("endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web")["items"]
    addresses = [a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]]
    assert len(addresses) == 2
    cj = h.get_json("cronjob", "tick", "-n", ns)
    assert cj["spec"]["schedule"] == "*/5 * * * *"


def test_daemonset_example_runs_one_pod_per_node(cluster: ClusterHandle) -> None:
    h = cluster
    h.kubectl("apply", "-f", str(EXAMPLES / "daemonset.yaml"))
    try:
        nodes = len(h.get_json("nodes")["items"])
        h.wait_for(
            lambda: _ready(h.get_json("ds", "node-agent", "-n", "kube-system"), "numberReady", nodes),
            timeout=60,
            what="node-agent on every node",
        )
    finally:
        h.kubectl("delete", "-f", str(EXAMPLES / "daemonset.yaml"), "--wait=false", check=False)
