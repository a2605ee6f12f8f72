"""PodDisruptionBudgets on simulated nodes: the disruption controller's status, the
eviction API honouring it (429 with upstream's Status), and the real kubectl's drain,
cordon, uncordon and taint."""

from __future__ import annotations

import json
from typing import Any

import pytest

from k3py.client import ApiError, NotFound, TooManyRequests
from k3py.client.resources import PODDISRUPTIONBUDGETS, PODS
from tests.control.conftest import ClusterHandle

Obj = dict[str, Any]
NEVER_READY = [{"conditionType": "example.com/never"}]  # simulated pods stay not Ready


# ---- helpers ----------------------------------------------------------------------


def apply(cluster: ClusterHandle, ns: str, *objs: Obj) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": list(objs)}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc))


def pod(name: str, *, app: str, node: str = "", gates: list[Obj] | None = None, **spec: Any) -> Obj:
    body: Obj = {"containers": [{"name": "c", "image": "nginx:1.27"}], **spec}
    if node:
        body["nodeName"] = node
    if gates:
        body["readinessGates"] = gates
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": body,
    }


def pdb(name: str, *, app: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": app}}, **spec},
    }


def pdb_status(cluster: ClusterHandle, ns: str, name: str) -> Obj:
    return cluster.get_json("pdb", name, "-n", ns).get("status") or {}  # type: ignore[no-any-return]


def wait_status(cluster: ClusterHandle, ns: str, name: str, **want: Any) -> Obj:
    def ok() -> Obj | None:
        st = pdb_status(cluster, ns, name)
        return st if all(st.get(k) == v for k, v in want.items()) else None

    return cluster.wait_for(ok, timeout=45, what=f"pdb {name} status {want}")  # type: ignore[no-any-return]


def ready_pods(cluster: ClusterHandle, ns: str, app: str) -> int:
    items = cluster.get_json("pods", "-n", ns, "-l", f"app={app}")["items"]
    return sum(
        1
        for p in items
        if not p["metadata"].get("deletionTimestamp")
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p.get("status", {}).get("conditions", [])
        )
    )


def pod_names(cluster: ClusterHandle, ns: str, app: str) -> list[str]:
    items = cluster.get_json("pods", "-n", ns, "-l", f"app={app}")["items"]
    return sorted(p["metadata"]["name"] for p in items)


def evict(cluster: ClusterHandle, ns: str, name: str) -> None:
    cluster.call(cluster.client().evict(namespace=ns, pod=name))


def condition(st: Obj) -> Obj:
    return next(c for c in st.get("conditions", []) if c["type"] == "DisruptionAllowed")


# ---- status -------------------------------------------------------------------------


def test_pdb_status_from_bare_pods(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, *(pod(f"web-{i}", app="web", node="sim-0") for i in range(3)))
    apply(cluster, ns, pdb("web", app="web", minAvailable=2))
    st = wait_status(
        cluster, ns, "web", currentHealthy=3, desiredHealthy=2, expectedPods=3, disruptionsAllowed=1
    )
    assert st["observedGeneration"] == 1
    cond = condition(st)
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == (
        "True",
        "SufficientPods",
        1,
    )
    # A spec change is a new generation; raising the bar removes the allowance.
    cluster.kubectl(
        "patch", "pdb", "web", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":3}}'
    )
    st = wait_status(
        cluster, ns, "web", observedGeneration=2, desiredHealthy=3, disruptionsAllowed=0
    )
    assert (condition(st)["status"], condition(st)["reason"]) == ("False", "InsufficientPods")
    out = cluster.kubectl("get", "pdb", "web", "-n", ns).stdout
    assert out.split("\n")[1].split()[:4] == ["web", "3", "N/A", "0"]


def test_pdb_percentage_without_controller_fails_safe(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, pod("lonely", app="lonely", node="sim-0"))
    apply(cluster, ns, pdb("lonely", app="lonely", minAvailable="50%"))
    st = wait_status(cluster, ns, "lonely", disruptionsAllowed=0, observedGeneration=1)
    # Unmanaged pods with a percentage: expected scale 0, nothing may be disrupted.
    assert st["expectedPods"] == 0


def test_pdb_status_from_deployment_scale(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("create", "deployment", "app", "--image=nginx:1.27", "--replicas=4", "-n", ns)
    apply(cluster, ns, pdb("pct", app="app", maxUnavailable="25%"))
    wait_status(
        cluster, ns, "pct", expectedPods=4, desiredHealthy=3, currentHealthy=4, disruptionsAllowed=1
    )
    cluster.kubectl("delete", "pdb", "pct", "-n", ns)
    apply(cluster, ns, pdb("half", app="app", minAvailable="50%"))
    wait_status(cluster, ns, "half", expectedPods=4, desiredHealthy=2, disruptionsAllowed=2)
    cluster.kubectl("scale", "deployment", "app", "--replicas=6", "-n", ns)
    wait_status(
        cluster,
        ns,
        "half",
        expectedPods=6,
        desiredHealthy=3,
        currentHealthy=6,
        disruptionsAllowed=3,
    )


# ---- eviction -------------------------------------------------------------------------


def test_eviction_honours_budget(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, *(pod(f"db-{i}", app="db", node="sim-1") for i in range(3)))
    apply(cluster, ns, pdb("db", app="db", minAvailable=2))
    wait_status(cluster, ns, "db", currentHealthy=3, disruptionsAllowed=1)
    evict(cluster, ns, "db-0")
    st = pdb_status(cluster, ns, "db")
    assert st["disruptionsAllowed"] == 0
    assert "db-0" in st.get("disruptedPods", {}) or st["currentHealthy"] == 2
    with pytest.raises(TooManyRequests) as exc:
        evict(cluster, ns, "db-1")
    err = exc.value
    assert err.code == 429 and err.reason == "TooManyRequests"
    assert err.message == "Cannot evict pod as it would violate the pod's disruption budget."
    (cause,) = err.causes
    assert cause["reason"] == "DisruptionBudget"
    assert cause["message"].startswith("The disruption budget db needs 2 healthy pods and has ")
    cluster.wait_for(lambda: pod_names(cluster, ns, "db") == ["db-1", "db-2"], what="db-0 gone")
    wait_status(cluster, ns, "db", currentHealthy=2, disruptionsAllowed=0)
    assert "disruptedPods" not in pdb_status(cluster, ns, "db")
    # Once the budget allows it again, eviction works.
    cluster.kubectl(
        "patch", "pdb", "db", "-n", ns, "--type=merge", "-p", '{"spec":{"minAvailable":1}}'
    )
    wait_status(cluster, ns, "db", observedGeneration=2, disruptionsAllowed=1)
    evict(cluster, ns, "db-1")


def test_eviction_of_pending_and_unhealthy_pods(cluster: ClusterHandle, ns: str) -> None:
    apply(
        cluster, ns,
        pod("ok-0", app="mix", node="sim-2"),
        pod("ok-1", app="mix", node="sim-2"),
        pod("sick", app="mix", node="sim-2", gates=NEVER_READY),
        pod("pending", app="mix", nodeSelector={"no-such": "node"}),
        pdb("mix", app="mix", minAvailable=3),
    )  # fmt: skip
    wait_status(
        cluster, ns, "mix", currentHealthy=2, desiredHealthy=3, disruptionsAllowed=0, expectedPods=4
    )
    evict(cluster, ns, "pending")  # pending pods need no budget
    # IfHealthyBudget (default): an unready pod is protected while the budget is unmet.
    with pytest.raises(TooManyRequests):
        evict(cluster, ns, "sick")
    cluster.kubectl(
        "patch",
        "pdb",
        "mix",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec":{"unhealthyPodEvictionPolicy":"AlwaysAllow"}}',
    )
    wait_status(cluster, ns, "mix", observedGeneration=2)
    evict(cluster, ns, "sick")
    cluster.wait_for(
        lambda: pod_names(cluster, ns, "mix") == ["ok-0", "ok-1"], what="pending and sick gone"
    )


def test_eviction_with_two_budgets_is_refused(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, pod("two", app="two", node="sim-0"))
    apply(cluster, ns, pdb("a", app="two", maxUnavailable=1), pdb("b", app="two", maxUnavailable=1))
    cluster.wait_for(lambda: ready_pods(cluster, ns, "two") == 1, what="pod ready")
    with pytest.raises(ApiError) as exc:
        evict(cluster, ns, "two")
    assert exc.value.code == 500
    assert exc.value.message == (
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    )
    with pytest.raises(NotFound):
        evict(cluster, ns, "no-such-pod")
    assert (
        cluster.call(cluster.client().get(PODDISRUPTIONBUDGETS, "a", namespace=ns))["spec"][
            "maxUnavailable"
        ]
        == 1
    )


# ---- kubectl: cordon, taint, drain -------------------------------------------------------


def node(cluster: ClusterHandle, name: str) -> Obj:
    return cluster.get_json("node", name)  # type: ignore[no-any-return]


def test_cordon_uncordon_and_taint(cluster: ClusterHandle) -> None:
    try:
        out = cluster.kubectl("cordon", "sim-2").stdout
        assert "node/sim-2 cordoned" in out
        assert node(cluster, "sim-2")["spec"]["unschedulable"] is True
        cluster.kubectl("taint", "nodes", "sim-2", "dedicated=test:NoSchedule")
        taints = node(cluster, "sim-2")["spec"]["taints"]
        assert {"key": "dedicated", "value": "test", "effect": "NoSchedule"} in taints
        assert any(t["key"] == "node.kubernetes.io/unschedulable" for t in taints)
        cluster.kubectl("taint", "nodes", "sim-2", "dedicated=test:NoSchedule-")
        assert all(
            t["key"] != "dedicated" for t in node(cluster, "sim-2")["spec"].get("taints", [])
        )
    finally:
        cluster.kubectl("taint", "nodes", "sim-2", "dedicated-", check=False)
        out = cluster.kubectl("uncordon", "sim-2").stdout
    assert "node/sim-2 uncordoned" in out
    assert not node(cluster, "sim-2")["spec"].get("unschedulable")


def test_drain_respects_budget(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, *(pod(f"drain-{i}", app="drain", node="sim-1") for i in range(3)))
    apply(cluster, ns, pdb("drain", app="drain", minAvailable=2))
    wait_status(cluster, ns, "drain", currentHealthy=3, disruptionsAllowed=1)
    try:
        res = cluster.kubectl(
            "drain", "sim-1", "--ignore-daemonsets", "--delete-emptydir-data", "--force",
            "--timeout=12s", check=False, timeout=90,
        )  # fmt: skip
        assert res.returncode != 0
        assert "node/sim-1 cordoned" in res.stdout
        assert "Cannot evict pod as it would violate the pod's disruption budget." in res.stderr
        assert node(cluster, "sim-1")["spec"]["unschedulable"] is True
        cluster.wait_for(lambda: len(pod_names(cluster, ns, "drain")) == 2, what="one pod evicted")
        # Without the budget the drain finishes.
        cluster.kubectl("delete", "pdb", "drain", "-n", ns)
        res = cluster.kubectl(
            "drain", "sim-1", "--ignore-daemonsets", "--delete-emptydir-data", "--force",
            "--timeout=60s", timeout=90,
        )  # fmt: skip
        assert "node/sim-1 drained" in res.stdout
        assert pod_names(cluster, ns, "drain") == []
    finally:
        cluster.kubectl("uncordon", "sim-1")


def test_drain_moves_deployment_pods_within_budget(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("create", "deployment", "mover", "--image=nginx:1.27", "--replicas=3", "-n", ns)
    apply(cluster, ns, pdb("mover", app="mover", maxUnavailable=1))
    wait_status(cluster, ns, "mover", currentHealthy=3, expectedPods=3, disruptionsAllowed=1)
    pods = cluster.get_json("pods", "-n", ns, "-l", "app=mover")["items"]
    target = pods[0]["spec"]["nodeName"]
    try:
        res = cluster.kubectl(
            "drain", target, "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=90s",
            timeout=120,
        )  # fmt: skip
        assert f"node/{target} drained" in res.stdout
        assert "evicting pod" in res.stdout or "evicted" in res.stdout

        def moved() -> bool:
            items = cluster.get_json("pods", "-n", ns, "-l", "app=mover")["items"]
            live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
            return len(live) == 3 and all(
                p["spec"].get("nodeName") not in ("", None, target) for p in live
            )

        cluster.wait_for(moved, timeout=60, what="deployment pods moved off the drained node")
        cluster.wait_for(
            lambda: ready_pods(cluster, ns, "mover") == 3, timeout=60, what="3 ready again"
        )
    finally:
        cluster.kubectl("uncordon", target)


def test_pods_listed_by_node_field_selector(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, pod("here", app="fs", node="sim-0"), pod("there", app="fs", node="sim-2"))
    out = cluster.kubectl(
        "get", "pods", "-n", ns, "--field-selector", "spec.nodeName=sim-0", "-o", "name"
    ).stdout.split()
    assert out == ["pod/here"]
    client = cluster.client()
    listed = cluster.call(client.list(PODS, namespace=ns, field_selector="spec.nodeName=sim-2"))
    assert [p["metadata"]["name"] for p in listed.items] == ["there"]
