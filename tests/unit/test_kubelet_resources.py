"""Requests/limits into CRI resources, QoS classes, oom_score_adj and cgroup parents."""

from __future__ import annotations

from typing import Any

from k3py.agent.kubelet import resources as r

GI = 1 << 30


def pod(*containers: dict[str, Any], init: list[dict[str, Any]] | None = None, **spec: Any) -> dict:
    cs = [{"name": f"c{i}", "resources": res} for i, res in enumerate(containers)]
    body: dict[str, Any] = {"metadata": {"uid": "u1"}, "spec": {"containers": cs, **spec}}
    if init:
        body["spec"]["initContainers"] = init
    return body


GUARANTEED = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}


def test_qos_classes_follow_upstream_sums() -> None:
    assert r.qos_class(pod(GUARANTEED)) == "Guaranteed"
    assert r.qos_class(pod({})) == "BestEffort"
    assert r.qos_class(pod({"requests": {"cpu": "0"}})) == "BestEffort"  # zero ignored
    assert r.qos_class(pod({"requests": {"memory": "1Gi"}})) == "Burstable"
    # Limits only (requests not defaulted): upstream counts it Burstable.
    assert r.qos_class(pod({"limits": {"cpu": "1", "memory": "1Gi"}})) == "Burstable"
    # One container without limits makes the pod Burstable.
    assert r.qos_class(pod(GUARANTEED, {})) == "Burstable"
    # requests != limits
    lim = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}
    assert r.qos_class(pod(lim)) == "Burstable"
    # init containers count too
    init = [{"name": "i", "resources": {"requests": {"cpu": "100m"}}}]
    assert r.qos_class(pod({}, init=init)) == "Burstable"
    # extended resources do not matter
    gpu = {
        "limits": {**GUARANTEED["limits"], "example.com/gpu": "1"},
        "requests": GUARANTEED["requests"],
    }
    assert r.qos_class(pod(gpu)) == "Guaranteed"
    # a recorded status.qosClass wins (it never changes for a pod)
    p = pod({})
    p["status"] = {"qosClass": "Burstable"}
    assert r.qos_class(p) == "Burstable" and r.compute_qos_class(p) == "BestEffort"


def test_cpu_shares_and_quota_bounds() -> None:
    assert r.cpu_shares(0) == 2 and r.cpu_shares(1) == 2 and r.cpu_shares(250) == 256
    assert r.cpu_shares(1000) == 1024 and r.cpu_shares(10**6) == 262144
    assert r.cpu_quota(0) == 0 and r.cpu_quota(1) == 1000 and r.cpu_quota(1500) == 150000


def test_linux_container_resources() -> None:
    g = pod(GUARANTEED)
    res = r.linux_container_resources(g, g["spec"]["containers"][0], node_memory=8 * GI)
    assert (res.cpu_shares, res.cpu_quota, res.cpu_period) == (1024, 100000, 100000)
    assert (res.memory_limit_in_bytes, res.oom_score_adj) == (GI, -997)
    b = pod({"requests": {"memory": "1Gi", "cpu": "100m"}, "limits": {"memory": "2Gi"}})
    rb = r.linux_container_resources(b, b["spec"]["containers"][0], node_memory=8 * GI)
    assert rb.cpu_shares == 102 and rb.cpu_quota == 0 and rb.cpu_period == 0
    assert rb.memory_limit_in_bytes == 2 * GI and rb.oom_score_adj == 875
    e = pod({})
    re_ = r.linux_container_resources(e, e["spec"]["containers"][0], node_memory=8 * GI)
    assert (re_.cpu_shares, re_.memory_limit_in_bytes, re_.oom_score_adj) == (2, 0, 1000)
    # requests defaulted from limits when the API server did not
    lo = pod({"limits": {"cpu": "2"}})
    assert r.linux_container_resources(lo, lo["spec"]["containers"][0]).cpu_shares == 2048


def test_oom_score_adj_bounds_sidecars_and_critical_pods() -> None:
    big = pod({"requests": {"memory": "8Gi"}})
    assert r.oom_score_adj(big, big["spec"]["containers"][0], node_memory=8 * GI) == 3
    tiny = pod({"requests": {"memory": "1"}})
    assert r.oom_score_adj(tiny, tiny["spec"]["containers"][0], node_memory=8 * GI) == 999
    crit = pod({"requests": {"memory": "1Mi"}}, priorityClassName="system-node-critical")
    assert r.oom_score_adj(crit, crit["spec"]["containers"][0], node_memory=8 * GI) == -997
    sidecar = {"name": "s", "restartPolicy": "Always", "resources": {"requests": {"cpu": "1m"}}}
    p = pod({"requests": {"memory": "4Gi"}}, init=[sidecar])
    # the sidecar requests no memory (1000) but scores like the smallest regular container
    assert r.oom_score_adj(p, sidecar, node_memory=8 * GI) == 500
    assert r.oom_score_adj(p, p["spec"]["containers"][0], node_memory=8 * GI) == 500


def test_cgroup_parents() -> None:
    assert r.pod_cgroup_parent(pod(GUARANTEED)) == "/kubepods/podu1"
    assert r.pod_cgroup_parent(pod({"requests": {"cpu": "1"}})) == "/kubepods/burstable/podu1"
    assert r.pod_cgroup_parent(pod({})) == "/kubepods/besteffort/podu1"
