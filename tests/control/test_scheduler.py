"""The scheduler on simulated nodes (3 nodes: cpu=4, memory=16Gi, pods=110), driven with
kubectl: placement by resources, selectors, affinity, taints, spreading, host ports,
cordon/uncordon/taint, FailedScheduling messages, retry when room frees, preemption."""

from __future__ import annotations

import json
from typing import Any

from tests.control.conftest import ClusterHandle


def pod_manifest(
    name: str,
    *,
    cpu: str = "100m",
    memory: str = "64Mi",
    labels: dict[str, str] | None = None,
    **spec: Any,
) -> str:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "resources": {"requests": {"cpu": cpu, "memory": memory}},
                }
            ],
            "terminationGracePeriodSeconds": 0,
            **spec,
        },
    }
    return json.dumps(body)


def create(cluster: ClusterHandle, ns: str, manifest: str) -> None:
    cluster.kubectl("create", "-n", ns, "-f", "-", input=manifest)


def pod(cluster: ClusterHandle, ns: str, name: str) -> dict[str, Any]:
    out: dict[str, Any] = cluster.get_json("pod", "-n", ns, name)
    return out


def node_of(cluster: ClusterHandle, ns: str, name: str) -> str:
    return str(pod(cluster, ns, name)["spec"].get("nodeName") or "")


def wait_bound(cluster: ClusterHandle, ns: str, name: str) -> str:
    return str(cluster.wait_for(lambda: node_of(cluster, ns, name), what=f"{name} bound"))


def events(cluster: ClusterHandle, ns: str, name: str, reason: str) -> list[dict[str, Any]]:
    items = cluster.get_json("events", "-n", ns)["items"]
    return [
        e for e in items if e["involvedObject"].get("name") == name and e.get("reason") == reason
    ]


def unschedulable_message(cluster: ClusterHandle, ns: str, name: str) -> str:
    for c in pod(cluster, ns, name).get("status", {}).get("conditions", []):
        if c["type"] == "PodScheduled" and c["status"] == "False":
            assert c["reason"] == "Unschedulable"
            return str(c["message"])
    return ""


def test_scheduled_event_and_condition(cluster: ClusterHandle, ns: str) -> None:
    create(cluster, ns, pod_manifest("web"))
    node = wait_bound(cluster, ns, "web")
    assert node.startswith("sim-")
    evs = cluster.wait_for(lambda: events(cluster, ns, "web", "Scheduled"), what="Scheduled event")
    assert evs[0]["message"] == f"Successfully assigned {ns}/web to {node}"
    assert evs[0]["source"]["component"] == "default-scheduler"
    conds = {c["type"]: c["status"] for c in pod(cluster, ns, "web")["status"]["conditions"]}
    assert conds["PodScheduled"] == "True"


def test_insufficient_cpu_then_room_frees(cluster: ClusterHandle, ns: str) -> None:
    create(cluster, ns, pod_manifest("huge", cpu="100"))
    msg = cluster.wait_for(
        lambda: unschedulable_message(cluster, ns, "huge"), what="Unschedulable condition"
    )
    assert msg == (
        "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
        "3 No preemption victims found for incoming pod.."  # upstream's double period
    )
    evs = cluster.wait_for(lambda: events(cluster, ns, "huge", "FailedScheduling"), what="event")
    assert evs[0]["type"] == "Warning"
    assert evs[0]["message"] == msg
    assert pod(cluster, ns, "huge")["status"]["phase"] == "Pending"
    assert node_of(cluster, ns, "huge") == ""


# ---- shared helpers for the tests below -------------------------------------------------------

NODES = ("sim-0", "sim-1", "sim-2")


def cleanup_pods(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force",
                    "--wait=false", check=False)  # fmt: skip
    cluster.wait_for(
        lambda: not cluster.get_json("pods", "-n", ns)["items"], what="pods deleted", timeout=60
    )


def pending_message(cluster: ClusterHandle, ns: str, name: str) -> str:
    return str(cluster.wait_for(
        lambda: unschedulable_message(cluster, ns, name), what=f"{name} Unschedulable"
    ))  # fmt: skip


def test_room_frees_then_scheduled(cluster: ClusterHandle, ns: str) -> None:
    try:
        for i in range(3):
            create(cluster, ns, pod_manifest(f"big-{i}", cpu="3"))
        placed = {wait_bound(cluster, ns, f"big-{i}") for i in range(3)}
        assert placed == set(NODES)  # 3 cpu each: one per node
        create(cluster, ns, pod_manifest("extra", cpu="3"))
        msg = pending_message(cluster, ns, "extra")
        assert msg.startswith("0/3 nodes are available: 3 Insufficient cpu.")
        freed = node_of(cluster, ns, "big-1")
        cluster.kubectl("delete", "pod", "-n", ns, "big-1", "--grace-period=0", "--force")
        assert wait_bound(cluster, ns, "extra") == freed
    finally:
        cleanup_pods(cluster, ns)


def test_node_selector_and_affinity(cluster: ClusterHandle, ns: str) -> None:
    try:
        for i, n in enumerate(NODES):
            cluster.kubectl("label", "node", n, f"rank={i * 4 + 1}", "--overwrite")  # 1 5 9
        cluster.kubectl("label", "node", "sim-1", "disk=ssd", "--overwrite")
        create(cluster, ns, pod_manifest("sel", nodeSelector={"disk": "ssd"}))
        assert wait_bound(cluster, ns, "sel") == "sim-1"
        create(cluster, ns, pod_manifest("nosel", nodeSelector={"disk": "hdd"}))
        assert pending_message(cluster, ns, "nosel") == (
            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.."
        )
        between = {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "rank", "operator": "Gt", "values": ["4"]},
            {"key": "rank", "operator": "Lt", "values": ["8"]},
        ]}]}  # fmt: skip
        create(cluster, ns, pod_manifest("gtlt", affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": between}}))  # fmt: skip
        assert wait_bound(cluster, ns, "gtlt") == "sim-1"
        by_name = {"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["sim-2"]}]}]}  # fmt: skip
        create(cluster, ns, pod_manifest("field", affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": by_name}}))  # fmt: skip
        assert wait_bound(cluster, ns, "field") == "sim-2"
        prefer = [{"weight": 100, "preference": {"matchExpressions": [
            {"key": "rank", "operator": "In", "values": ["1"]}]}}]  # fmt: skip
        for i in range(3):
            create(cluster, ns, pod_manifest(f"pref-{i}", affinity={"nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": prefer}}))  # fmt: skip
            assert wait_bound(cluster, ns, f"pref-{i}") == "sim-0"
        cluster.kubectl("label", "node", "sim-0", "disk=hdd", "--overwrite")
        assert wait_bound(cluster, ns, "nosel") == "sim-0"  # a node update retries it
    finally:
        cluster.kubectl("label", "node", *NODES, "rank-", "disk-", check=False)
        cleanup_pods(cluster, ns)


def test_taints_and_tolerations(cluster: ClusterHandle, ns: str) -> None:
    try:
        cluster.kubectl("taint", "nodes", "sim-0", "sim-1", "dedicated=gpu:NoSchedule")
        for i in range(3):
            create(cluster, ns, pod_manifest(f"plain-{i}"))
            assert wait_bound(cluster, ns, f"plain-{i}") == "sim-2"
        tol = [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]
        create(cluster, ns, pod_manifest("tol", tolerations=tol,
                                         nodeSelector={"kubernetes.io/hostname": "sim-0"}))  # fmt: skip
        assert wait_bound(cluster, ns, "tol") == "sim-0"
        create(cluster, ns, pod_manifest("pinned",
                                         nodeSelector={"kubernetes.io/hostname": "sim-1"}))  # fmt: skip
        assert pending_message(cluster, ns, "pinned").startswith(
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
            "2 node(s) had untolerated taint {dedicated: gpu}."
        )
        cluster.kubectl("taint", "nodes", "sim-1", "dedicated=gpu:NoSchedule-")
        assert wait_bound(cluster, ns, "pinned") == "sim-1"
    finally:
        cluster.kubectl("taint", "nodes", *NODES, "dedicated-", check=False)
        cleanup_pods(cluster, ns)


def test_cordon_and_uncordon(cluster: ClusterHandle, ns: str) -> None:
    try:
        cluster.kubectl("cordon", "sim-0", "sim-1")
        for i in range(2):
            create(cluster, ns, pod_manifest(f"p-{i}"))
            assert wait_bound(cluster, ns, f"p-{i}") == "sim-2"
        create(cluster, ns, pod_manifest("pinned",
                                         nodeSelector={"kubernetes.io/hostname": "sim-0"}))  # fmt: skip
        msg = pending_message(cluster, ns, "pinned")
        assert msg.startswith(
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
            "2 node(s) were unschedulable."
        ), msg
        cluster.kubectl("uncordon", "sim-0")
        assert wait_bound(cluster, ns, "pinned") == "sim-0"
    finally:
        cluster.kubectl("uncordon", *NODES, check=False)
        cleanup_pods(cluster, ns)


def test_pod_anti_affinity(cluster: ClusterHandle, ns: str) -> None:
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "db"}},
         "topologyKey": "kubernetes.io/hostname"}]}}  # fmt: skip
    try:
        for i in range(3):
            create(cluster, ns, pod_manifest(f"db-{i}", labels={"app": "db"}, affinity=anti))
        placed = {wait_bound(cluster, ns, f"db-{i}") for i in range(3)}
        assert placed == set(NODES)
        create(cluster, ns, pod_manifest("db-3", labels={"app": "db"}, affinity=anti))
        assert pending_message(cluster, ns, "db-3").startswith(
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
        )
        # a pod without terms of its own is kept off by db's anti-affinity? No: db's terms
        # select app=db only, so "web" schedules anywhere
        create(cluster, ns, pod_manifest("web"))
        wait_bound(cluster, ns, "web")
        # required affinity: next to db-0
        near = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "db"}},
             "topologyKey": "kubernetes.io/hostname"}]}}  # fmt: skip
        create(cluster, ns, pod_manifest("cache", affinity=near))
        assert wait_bound(cluster, ns, "cache") in NODES
        # existing pods' anti-affinity keeps a matching newcomer away
        guard = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"role": "noisy"}},
             "topologyKey": "kubernetes.io/hostname"}]}}  # fmt: skip
        create(cluster, ns, pod_manifest("quiet", affinity=guard,
                                         nodeSelector={"kubernetes.io/hostname": "sim-0"}))  # fmt: skip
        wait_bound(cluster, ns, "quiet")
        create(cluster, ns, pod_manifest("noisy", labels={"role": "noisy"},
                                         nodeSelector={"kubernetes.io/hostname": "sim-0"}))  # fmt: skip
        assert pending_message(cluster, ns, "noisy").startswith(
            "0/3 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity "
            "rules, 2 node(s) didn't match Pod's node affinity/selector."
        )
        cluster.kubectl("delete", "pod", "-n", ns, "quiet", "--grace-period=0", "--force")
        assert wait_bound(cluster, ns, "noisy") == "sim-0"
    finally:
        cleanup_pods(cluster, ns)


def test_topology_spread(cluster: ClusterHandle, ns: str) -> None:
    try:
        cluster.kubectl("label", "node", "sim-0", "sim-1", "topology.kubernetes.io/zone=a")
        cluster.kubectl("label", "node", "sim-2", "topology.kubernetes.io/zone=b")
        spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                   "whenUnsatisfiable": "DoNotSchedule",
                   "labelSelector": {"matchLabels": {"app": "s"}}}]  # fmt: skip
        zones = {"sim-0": "a", "sim-1": "a", "sim-2": "b"}
        count = {"a": 0, "b": 0}
        for i in range(6):
            create(cluster, ns, pod_manifest(f"s-{i}", labels={"app": "s"},
                                             topologySpreadConstraints=spread))  # fmt: skip
            count[zones[wait_bound(cluster, ns, f"s-{i}")]] += 1
            assert abs(count["a"] - count["b"]) <= 1
        assert count == {"a": 3, "b": 3}
        # pinned to zone a, counting every node (nodeAffinityPolicy Ignore): a 4th pod in
        # a fits (skew 1), a 5th would make the skew 2
        ignore = [dict(spread[0], nodeAffinityPolicy="Ignore")]
        for name in ("s-a1", "s-a2"):
            create(cluster, ns, pod_manifest(name, labels={"app": "s"},
                                             nodeSelector={"topology.kubernetes.io/zone": "a"},
                                             topologySpreadConstraints=ignore))  # fmt: skip
        wait_bound(cluster, ns, "s-a1")
        assert pending_message(cluster, ns, "s-a2").startswith(
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
            "2 node(s) didn't match pod topology spread constraints."
        )
        cluster.kubectl("delete", "pod", "-n", ns, "s-a1", "--grace-period=0", "--force")
        assert zones[wait_bound(cluster, ns, "s-a2")] == "a"
    finally:
        cluster.kubectl("label", "node", *NODES, "topology.kubernetes.io/zone-", check=False)
        cleanup_pods(cluster, ns)


def test_host_ports(cluster: ClusterHandle, ns: str) -> None:
    def with_port(name: str) -> str:
        body = json.loads(pod_manifest(name))
        body["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 8080}]
        return json.dumps(body)

    try:
        for i in range(3):
            create(cluster, ns, with_port(f"hp-{i}"))
        assert {wait_bound(cluster, ns, f"hp-{i}") for i in range(3)} == set(NODES)
        create(cluster, ns, with_port("hp-3"))
        assert pending_message(cluster, ns, "hp-3").startswith(
            "0/3 nodes are available: 3 node(s) didn't have free ports for the requested pod ports."
        )
        gone = node_of(cluster, ns, "hp-0")
        cluster.kubectl("delete", "pod", "-n", ns, "hp-0", "--grace-period=0", "--force")
        assert wait_bound(cluster, ns, "hp-3") == gone
    finally:
        cleanup_pods(cluster, ns)


PRIORITY_CLASSES = """
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: sched-test-low}
value: 10
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: sched-test-high}
value: 1000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: sched-test-high-never}
value: 1000
preemptionPolicy: Never
"""


def test_priority_preemption(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=PRIORITY_CLASSES)
    try:
        for i in range(3):
            create(cluster, ns, pod_manifest(f"low-{i}", cpu="3",
                                             priorityClassName="sched-test-low"))  # fmt: skip
        assert {wait_bound(cluster, ns, f"low-{i}") for i in range(3)} == set(NODES)
        create(cluster, ns, pod_manifest("polite", cpu="3",
                                         priorityClassName="sched-test-high-never"))  # fmt: skip
        assert pending_message(cluster, ns, "polite") == (
            "0/3 nodes are available: 3 Insufficient cpu. "
            "preemption: not eligible due to preemptionPolicy=Never.."
        )
        create(cluster, ns, pod_manifest("vip", cpu="3", priorityClassName="sched-test-high"))
        node = wait_bound(cluster, ns, "vip")
        lows = [p for p in cluster.get_json("pods", "-n", ns)["items"]
                if p["metadata"]["name"].startswith("low-")]  # fmt: skip
        assert len(lows) == 2
        assert node not in {p["spec"]["nodeName"] for p in lows}
        evs = [e for e in cluster.get_json("events", "-n", ns)["items"]
               if e["reason"] == "Preempted"]  # fmt: skip
        assert len(evs) == 1
        assert evs[0]["message"].startswith("Preempted by pod ")
        assert evs[0]["message"].endswith(f" on node {node}")
        assert pod(cluster, ns, "polite")["spec"].get("nodeName") is None
    finally:
        cleanup_pods(cluster, ns)
        cluster.kubectl("delete", "-f", "-", input=PRIORITY_CLASSES, check=False)
