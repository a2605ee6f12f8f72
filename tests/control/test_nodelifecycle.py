"""Node loss on simulated nodes: lease expiry → Unknown → taints → pods not ready →
eviction after tolerationSeconds (not before, and never for pods tolerating forever);
recovery removes the taints; a deleted Node's pods are garbage-collected."""

from __future__ import annotations

import datetime as dt
import functools
import time
from typing import Any

from tests.control.conftest import ClusterHandle

TOLERATE = """
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute%s}
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute%s}
"""


def _pod(name: str, *, node: str, seconds: int | None) -> str:
    extra = f", tolerationSeconds: {seconds}" if seconds is not None else ""
    return (
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
        f"  nodeName: {node}\n  containers:\n  - {{name: app, image: nginx}}\n"
        + TOLERATE
        % (extra, extra)
    )


def _cond(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return dict(c)
    return {}


def _taints(cluster: ClusterHandle, node: str) -> set[tuple[str, str]]:
    n = cluster.get_json("node", node)
    return {(t["key"], t["effect"]) for t in n["spec"].get("taints", [])}


def _ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def _running(cluster: ClusterHandle, ns: str, name: str) -> bool:
    pod = cluster.get_json("pod", "-n", ns, name)
    return _cond(pod, "Ready").get("status") == "True"


def _stop(cluster: ClusterHandle, node: str) -> None:
    cluster.loop.call_soon_threadsafe(cluster.simulated.stop_node, node)


def _start(cluster: ClusterHandle, node: str) -> None:
    cluster.loop.call_soon_threadsafe(cluster.simulated.start_node, node)


def test_node_loss_taints_and_evicts_after_toleration(cluster: ClusterHandle, ns: str) -> None:
    for name, secs in (("short", 2), ("long", 3600), ("forever", None)):
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=_pod(name, node="sim-2", seconds=secs))
    for name in ("short", "long", "forever"):
        cluster.wait_for(functools.partial(_running, cluster, ns, name), what=f"{name} Ready")

    _stop(cluster, "sim-2")
    cluster.wait_for(
        lambda: _cond(cluster.get_json("node", "sim-2"), "Ready").get("status") == "Unknown",
        what="sim-2 Ready=Unknown",
    )
    node = cluster.get_json("node", "sim-2")
    assert _cond(node, "Ready")["reason"] == "NodeStatusUnknown"
    assert _cond(node, "Ready")["message"] == "Kubelet stopped posting node status."
    assert _cond(node, "MemoryPressure")["status"] == "Unknown"
    cluster.wait_for(
        lambda: {("node.kubernetes.io/unreachable", "NoExecute"),
                 ("node.kubernetes.io/unreachable", "NoSchedule")} <= _taints(cluster, "sim-2"),
        what="unreachable taints",
    )  # fmt: skip
    out = cluster.kubectl("get", "nodes").stdout
    assert "NotReady" in out

    # MarkPodsNotReady
    cluster.wait_for(lambda: not _running(cluster, ns, "forever"), what="forever Ready=False")

    short = cluster.wait_for(
        lambda: (p := cluster.get_json("pod", "-n", ns, "short"))["metadata"].get("deletionTimestamp") and p,
        what="short evicted",
    )  # fmt: skip
    taint = next(
        t for t in cluster.get_json("node", "sim-2")["spec"]["taints"]
        if t["key"] == "node.kubernetes.io/unreachable" and t["effect"] == "NoExecute"
    )  # fmt: skip
    grace = short["metadata"]["deletionGracePeriodSeconds"]
    deleted_at = _ts(short["metadata"]["deletionTimestamp"]) - grace
    assert deleted_at >= _ts(taint["timeAdded"]) + 2 - 1  # not before its 2 s (1 s resolution)
    assert _cond(short, "DisruptionTarget")["reason"] == "DeletionByTaintManager"
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector",
                             "involvedObject.name=short").stdout  # fmt: skip
    assert "TaintManagerEviction" in events and f"Marking for deletion Pod {ns}/short" in events
    for name in ("long", "forever"):
        assert not cluster.get_json("pod", "-n", ns, name)["metadata"].get("deletionTimestamp")
    desc = cluster.kubectl("describe", "node", "sim-2").stdout
    assert "node.kubernetes.io/unreachable:NoExecute" in desc

    _start(cluster, "sim-2")
    cluster.wait_for(
        lambda: _cond(cluster.get_json("node", "sim-2"), "Ready").get("status") == "True",
        what="sim-2 Ready again",
    )
    cluster.wait_for(lambda: not _taints(cluster, "sim-2"), what="taints removed")
    cluster.wait_for(lambda: _running(cluster, ns, "forever"), what="forever Ready again")
    cluster.wait_for(
        lambda: cluster.kubectl("get", "pod", "-n", ns, "short", check=False).returncode != 0,
        what="the returning kubelet finishes short's deletion",
    )
    assert not cluster.get_json("pod", "-n", ns, "long")["metadata"].get("deletionTimestamp")


def test_stop_annotation_and_deleted_node_pods_are_collected(
    cluster: ClusterHandle, ns: str
) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=_pod("orphan", node="sim-1", seconds=None))
    cluster.wait_for(lambda: _running(cluster, ns, "orphan"), what="orphan Ready")
    lease0 = cluster.get_json("lease", "-n", "kube-node-lease", "sim-1")["spec"]["renewTime"]

    cluster.kubectl("annotate", "node", "sim-1", "k3py.io/simulate-stopped=true")
    cluster.wait_for(
        lambda: _cond(cluster.get_json("node", "sim-1"), "Ready").get("status") == "Unknown",
        what="annotated node goes Unknown",
    )
    lease1 = cluster.get_json("lease", "-n", "kube-node-lease", "sim-1")["spec"]["renewTime"]
    time.sleep(2.5)  # more than two renew intervals (1 s): a running kubelet would renew
    assert (
        cluster.get_json("lease", "-n", "kube-node-lease", "sim-1")["spec"]["renewTime"] == lease1
    )
    assert _ts(lease1) >= _ts(lease0)
    cluster.kubectl("annotate", "node", "sim-1", "k3py.io/simulate-stopped-")
    cluster.wait_for(
        lambda: _cond(cluster.get_json("node", "sim-1"), "Ready").get("status") == "True",
        what="annotation removed: Ready again",
    )

    cluster.kubectl("delete", "node", "sim-1")
    cluster.wait_for(
        lambda: cluster.kubectl("get", "pod", "-n", ns, "orphan", check=False).returncode != 0,
        what="pod GC deletes the pod of the deleted node",
    )
    _start(cluster, "sim-1")
    cluster.wait_for(
        lambda: _cond(cluster.get_json("node", "sim-1"), "Ready").get("status") == "True",
        what="sim-1 registered again",
    )
