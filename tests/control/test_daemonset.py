"""DaemonSets on simulated nodes, driven by kubectl: a pod per eligible node (node
selectors, taints and tolerations), pods pinned to their node, nodes leaving and joining,
rolling updates (maxUnavailable, maxSurge), OnDelete, rollout status/history/undo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.control.conftest import ClusterHandle
from tests.control.test_statefulset import PodLog, _deleting, _gone, _name, _ready

Obj = dict[str, Any]
NODES = ("sim-0", "sim-1", "sim-2")


def ds_manifest(
    name: str = "agent",
    *,
    image: str = "busybox:1",
    node_selector: Obj | None = None,
    tolerations: list[Obj] | None = None,
    strategy: Obj | None = None,
    host_network: bool = False,
) -> str:
    pod_spec: Obj = {
        "containers": [{"name": "main", "image": image}],
        "terminationGracePeriodSeconds": 0,
    }
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if tolerations:
        pod_spec["tolerations"] = tolerations
    if host_network:
        pod_spec["hostNetwork"] = True
    spec: Obj = {
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
    }
    if strategy:
        spec["updateStrategy"] = strategy
    return json.dumps(
        {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name}, "spec": spec}
    )


def live_pods(cluster: ClusterHandle, ns: str, app: str) -> list[Obj]:
    items = cluster.get_json("pods", "-n", ns, "-l", f"app={app}")["items"]
    return [p for p in items if not _deleting(p)]


def nodes_of(cluster: ClusterHandle, ns: str, app: str, *, ready: bool = True) -> list[str]:
    """Nodes of the live pods (Ready ones only, unless ``ready`` is False), sorted."""
    return sorted(
        p["spec"].get("nodeName") or "?"
        for p in live_pods(cluster, ns, app)
        if _ready(p) or not ready
    )


def ds_status(cluster: ClusterHandle, ns: str, name: str) -> Obj:
    return cluster.get_json("ds", name, "-n", ns).get("status") or {}


def rollout_status(cluster: ClusterHandle, ns: str, what: str) -> str:
    return cluster.kubectl("rollout", "status", what, "-n", ns, "--timeout=60s", timeout=90).stdout


@pytest.fixture
def clean_nodes(cluster: ClusterHandle) -> Iterator[None]:
    """Labels and taints a test puts on the shared nodes are removed afterwards."""
    yield
    for node in NODES:
        cluster.kubectl("label", "node", node, "k3py.test/disk-", check=False)
        cluster.kubectl("taint", "node", node, "k3py.test/dedicated-", check=False)


# ---- tests -------------------------------------------------------------------------------


def test_one_pod_per_node_pinned_to_its_node(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds_manifest())
    out = rollout_status(cluster, ns, "ds/agent")
    assert 'daemon set "agent" successfully rolled out' in out
    assert nodes_of(cluster, ns, "agent") == list(NODES)
    st = ds_status(cluster, ns, "agent")
    assert st["desiredNumberScheduled"] == st["currentNumberScheduled"] == 3
    assert st["numberReady"] == st["numberAvailable"] == st["updatedNumberScheduled"] == 3
    assert st["numberMisscheduled"] == 0
    assert st["observedGeneration"] == 1
    revs = cluster.get_json("controllerrevisions", "-n", ns)["items"]
    assert len(revs) == 1
    hash_ = revs[0]["metadata"]["labels"]["controller-revision-hash"]
    assert revs[0]["metadata"]["name"] == f"agent-{hash_}"
    for pod in live_pods(cluster, ns, "agent"):
        labels = pod["metadata"]["labels"]
        assert labels["controller-revision-hash"] == hash_
        assert labels["pod-template-generation"] == "1"
        assert pod["metadata"]["generateName"] == "agent-"
        terms = pod["spec"]["affinity"]["nodeAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]["nodeSelectorTerms"]
        assert terms == [
            {
                "matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": [pod["spec"]["nodeName"]]}
                ]
            }
        ]
        tols = {(t["key"], t["effect"]) for t in pod["spec"]["tolerations"]}
        assert tols == {
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
        }
        assert all("tolerationSeconds" not in t for t in pod["spec"]["tolerations"])
    reasons = {
        (e["reason"], e["message"].split(":")[0])
        for e in cluster.get_json("events", "-n", ns)["items"]
        if e["involvedObject"]["kind"] == "DaemonSet"
    }
    assert ("SuccessfulCreate", "Created pod") in reasons
    # A deleted pod is replaced on the same node.
    victim = live_pods(cluster, ns, "agent")[0]
    cluster.kubectl("delete", "pod", _name(victim), "-n", ns, "--wait=false")
    cluster.wait_for(
        lambda: (
            nodes_of(cluster, ns, "agent") == list(NODES)
            and _name(victim) not in {_name(p) for p in live_pods(cluster, ns, "agent")}
        ),
        what="pod replaced",
    )


def test_host_network_pods_tolerate_network_unavailable(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds_manifest("net", host_network=True))
    pod = cluster.wait_for(lambda: live_pods(cluster, ns, "net"), what="a pod")[0]
    assert {
        "key": "node.kubernetes.io/network-unavailable",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in pod["spec"]["tolerations"]


def test_node_selector_follows_labels(cluster: ClusterHandle, ns: str, clean_nodes: None) -> None:
    cluster.kubectl("label", "node", "sim-1", "k3py.test/disk=ssd")
    cluster.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input=ds_manifest("ssd", node_selector={"k3py.test/disk": "ssd"}),
    )
    rollout_status(cluster, ns, "ds/ssd")
    assert nodes_of(cluster, ns, "ssd") == ["sim-1"]
    assert ds_status(cluster, ns, "ssd")["desiredNumberScheduled"] == 1
    cluster.kubectl("label", "node", "sim-2", "k3py.test/disk=ssd")
    cluster.wait_for(lambda: nodes_of(cluster, ns, "ssd") == ["sim-1", "sim-2"], what="sim-2 pod")
    cluster.kubectl("label", "node", "sim-1", "k3py.test/disk-")
    cluster.wait_for(
        lambda: nodes_of(cluster, ns, "ssd", ready=False) == ["sim-2"], what="sim-1 pod removed"
    )
    cluster.wait_for(
        lambda: ds_status(cluster, ns, "ssd").get("desiredNumberScheduled") == 1, what="status"
    )


def test_tainted_node_skipped_unless_tolerated(
    cluster: ClusterHandle, ns: str, clean_nodes: None
) -> None:
    cluster.kubectl("taint", "node", "sim-2", "k3py.test/dedicated=db:NoSchedule")
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds_manifest("plain"))
    tolerate = [
        {"key": "k3py.test/dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}
    ]
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds_manifest("tol", tolerations=tolerate))
    rollout_status(cluster, ns, "ds/plain")
    rollout_status(cluster, ns, "ds/tol")
    assert nodes_of(cluster, ns, "plain") == ["sim-0", "sim-1"]
    assert nodes_of(cluster, ns, "tol") == list(NODES)
    assert ds_status(cluster, ns, "plain")["desiredNumberScheduled"] == 2
    # A NoSchedule taint added later leaves running pods alone; NoExecute evicts them.
    cluster.kubectl("taint", "node", "sim-1", "k3py.test/dedicated=x:NoSchedule")
    cluster.wait_for(
        lambda: ds_status(cluster, ns, "plain").get("desiredNumberScheduled") == 1,
        what="sim-1 no longer desired",
    )
    assert nodes_of(cluster, ns, "plain") == ["sim-0", "sim-1"]
    assert ds_status(cluster, ns, "plain")["numberMisscheduled"] == 1
    cluster.kubectl("taint", "node", "sim-1", "k3py.test/dedicated=x:NoExecute")
    cluster.wait_for(
        lambda: nodes_of(cluster, ns, "plain", ready=False) == ["sim-0"], what="sim-1 pod removed"
    )
    cluster.kubectl("taint", "node", "sim-1", "k3py.test/dedicated-")
    cluster.kubectl("taint", "node", "sim-2", "k3py.test/dedicated-")
    cluster.wait_for(lambda: nodes_of(cluster, ns, "plain") == list(NODES), what="all nodes again")


def test_rolling_update_max_unavailable_history_and_undo(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds_manifest())
    rollout_status(cluster, ns, "ds/agent")
    old = {_name(p) for p in live_pods(cluster, ns, "agent")}
    log = PodLog(cluster, ns)
    try:
        cluster.kubectl("set", "image", "ds/agent", "main=busybox:2", "-n", ns)
        rollout_status(cluster, ns, "ds/agent")
        cluster.wait_for(
            lambda: (
                len(new := live_pods(cluster, ns, "agent")) == 3
                and not old & {_name(p) for p in new}
            ),
            what="every pod replaced",
        )
    finally:
        log.stop()
    pods = live_pods(cluster, ns, "agent")
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"}
    assert {p["metadata"]["labels"]["pod-template-generation"] for p in pods} == {"2"}
    assert sorted(p["spec"]["nodeName"] for p in pods) == list(NODES)
    # maxUnavailable 1: an old pod goes only after the previous replacement is Ready.
    deletions = [i for i, (t, p) in enumerate(log.events) if _name(p) in old and _gone(t, p)]
    first_deletion: dict[str, int] = {}
    for i in deletions:
        first_deletion.setdefault(_name(log.events[i][1]), i)
    order = sorted(first_deletion.values())
    assert len(order) == 3
    for prev, nxt in zip(order, order[1:], strict=False):
        ready_between = [
            i
            for i, (t, p) in enumerate(log.events[prev:nxt], start=prev)
            if _name(p) not in old and _ready(p)
        ]
        assert ready_between, "an old pod was deleted before a new one was Ready"

    hist = cluster.kubectl("rollout", "history", "ds/agent", "-n", ns).stdout
    assert [ln.split()[0] for ln in hist.splitlines()[2:] if ln.strip()] == ["1", "2"]
    assert (
        "busybox:1"
        in cluster.kubectl("rollout", "history", "ds/agent", "-n", ns, "--revision=1").stdout
    )
    assert "rolled back" in cluster.kubectl("rollout", "undo", "ds/agent", "-n", ns).stdout
    rollout_status(cluster, ns, "ds/agent")
    cluster.wait_for(
        lambda: (
            {p["spec"]["containers"][0]["image"] for p in live_pods(cluster, ns, "agent")}
            == {"busybox:1"}
            and len(live_pods(cluster, ns, "agent")) == 3
        ),
        what="rolled back",
    )
    revs = {r["revision"] for r in cluster.get_json("controllerrevisions", "-n", ns)["items"]}
    assert revs == {2, 3}


def test_rolling_update_with_surge_keeps_pods_available(cluster: ClusterHandle, ns: str) -> None:
    surge = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds_manifest(strategy=surge))
    rollout_status(cluster, ns, "ds/agent")
    old = {_name(p): p["spec"]["nodeName"] for p in live_pods(cluster, ns, "agent")}
    log = PodLog(cluster, ns)
    try:
        cluster.kubectl("set", "image", "ds/agent", "main=busybox:2", "-n", ns)
        rollout_status(cluster, ns, "ds/agent")
        cluster.wait_for(
            lambda: (
                len(new := live_pods(cluster, ns, "agent")) == 3
                and not set(old) & {_name(p) for p in new}
            ),
            what="every pod replaced",
        )
    finally:
        log.stop()
    # On every node the new pod was Ready before the old one was deleted.
    for name, node in old.items():
        gone = log.first(lambda t, p, n=name: _name(p) == n and _gone(t, p))
        replaced = log.first(
            lambda t, p, n=name, nd=node: (
                _name(p) not in old and _ready(p) and p["spec"].get("nodeName") == nd
            )
        )
        assert 0 <= replaced < gone, (name, replaced, gone)


def test_on_delete_replaces_only_deleted_pods(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds_manifest(strategy={"type": "OnDelete"}))
    cluster.wait_for(lambda: ds_status(cluster, ns, "agent").get("numberReady") == 3, what="ready")
    cluster.kubectl("set", "image", "ds/agent", "main=busybox:2", "-n", ns)
    cluster.wait_for(
        lambda: ds_status(cluster, ns, "agent").get("observedGeneration") == 2, what="observed"
    )
    st = ds_status(cluster, ns, "agent")
    assert st.get("updatedNumberScheduled", 0) == 0
    assert {p["spec"]["containers"][0]["image"] for p in live_pods(cluster, ns, "agent")} == {
        "busybox:1"
    }
    victim = next(p for p in live_pods(cluster, ns, "agent") if p["spec"]["nodeName"] == "sim-0")
    cluster.kubectl("delete", "pod", _name(victim), "-n", ns, "--wait=false")
    cluster.wait_for(
        lambda: (
            {
                p["spec"]["nodeName"]: p["spec"]["containers"][0]["image"]
                for p in live_pods(cluster, ns, "agent")
                if _ready(p)
            }
            == {"sim-0": "busybox:2", "sim-1": "busybox:1", "sim-2": "busybox:1"}
        ),
        what="sim-0 pod from the new template",
    )
    cluster.wait_for(
        lambda: ds_status(cluster, ns, "agent").get("updatedNumberScheduled") == 1, what="status"
    )


def test_node_leaving_and_joining(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=ds_manifest())
    rollout_status(cluster, ns, "ds/agent")
    cluster.kubectl("delete", "node", "sim-2", "--wait=false")
    try:
        cluster.wait_for(
            lambda: nodes_of(cluster, ns, "agent", ready=False) == ["sim-0", "sim-1"],
            what="the pod of the deleted node removed",
        )
        cluster.wait_for(
            lambda: ds_status(cluster, ns, "agent").get("desiredNumberScheduled") == 2,
            what="desired 2",
        )
    finally:

        async def restart() -> None:
            cluster.simulated.start_node("sim-2")

        cluster.call(restart())
    cluster.wait_for(
        lambda: nodes_of(cluster, ns, "agent") == list(NODES),
        timeout=60,
        what="a pod on the node that joined",
    )
    rollout_status(cluster, ns, "ds/agent")


# ---- pure helpers (no cluster) -------------------------------------------------------------


def _node(name: str, *, labels: Obj | None = None, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def test_eligibility_follows_selectors_affinity_and_taints() -> None:
    from k3py.server.controllers.daemonset import add_daemon_tolerations, should_run

    def spec(**kw: Any) -> Obj:
        s: Obj = {"containers": [{"name": "m", "image": "x"}], **kw}
        add_daemon_tolerations(s)
        return s

    plain = spec()
    assert should_run(_node("a"), pod_spec=plain) == (True, True)
    assert should_run(_node("a"), pod_spec=spec(nodeName="b")) == (False, False)
    assert should_run(_node("a", labels={"d": "ssd"}), pod_spec=spec(nodeSelector={"d": "ssd"}))[0]
    assert should_run(_node("a"), pod_spec=spec(nodeSelector={"d": "ssd"})) == (False, False)
    gt = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]}
                ]
            }
        }
    }
    assert should_run(_node("a", labels={"cores": "8"}), pod_spec=spec(affinity=gt))[0]
    assert not should_run(_node("a", labels={"cores": "2"}), pod_spec=spec(affinity=gt))[0]
    no_sched = {"key": "k", "value": "v", "effect": "NoSchedule"}
    no_exec = {"key": "k", "value": "v", "effect": "NoExecute"}
    assert should_run(_node("a", taints=[no_sched]), pod_spec=plain) == (False, True)
    assert should_run(_node("a", taints=[no_exec]), pod_spec=plain) == (False, False)
    tolerant = spec(tolerations=[{"key": "k", "operator": "Exists"}])
    assert should_run(_node("a", taints=[no_sched, no_exec]), pod_spec=tolerant) == (True, True)
    # The daemon tolerations: lost, cordoned or pressured nodes keep their pods.
    for key, effect in (
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ):
        assert should_run(_node("a", taints=[{"key": key, "effect": effect}]), pod_spec=plain)[1]
    unreachable = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
    ]
    assert should_run(_node("a", taints=unreachable), pod_spec=plain) == (False, True)
    again = spec(tolerations=list(plain["tolerations"]))
    assert again["tolerations"] == plain["tolerations"]  # adding them twice changes nothing


def test_target_node_affinity_replaces_required_terms() -> None:
    from k3py.server.controllers.daemonset import target_node, target_node_affinity

    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "d", "operator": "In", "values": ["ssd"]}]}
                ]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}],
        },
        "podAntiAffinity": {"x": 1},
    }
    out = target_node_affinity(aff, "n1")
    assert out["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
        ]
    }
    assert out["podAntiAffinity"] == {"x": 1}
    assert "preferredDuringSchedulingIgnoredDuringExecution" in out["nodeAffinity"]
    assert target_node({"spec": {"affinity": out}}) == "n1"
    assert target_node({"spec": {"nodeName": "n2", "affinity": out}}) == "n2"
    assert target_node({"spec": {}}) is None
