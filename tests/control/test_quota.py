"""ResourceQuota and LimitRange admission, the ResourceQuota controller and Priority
admission, driven by the real kubectl (upstream's messages) on the control-plane cluster."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from k3py.client import Forbidden
from k3py.client.resources import PODS, RESOURCEQUOTAS
from tests.control.conftest import ClusterHandle

Obj = dict[str, Any]


# ---- helpers ----------------------------------------------------------------------


def apply(cluster: ClusterHandle, ns: str, *objs: Obj) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": list(objs)}
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc))


def create_fails(cluster: ClusterHandle, ns: str, obj: Obj) -> str:
    res = cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(obj), check=False)
    assert res.returncode != 0, f"expected a refusal, got: {res.stdout}"
    return res.stderr


def pod(name: str, *, requests: Obj | None = None, limits: Obj | None = None, **spec: Any) -> Obj:
    resources: Obj = {}
    if requests:
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    container: Obj = {"name": "c1", "image": "nginx:1.27"}
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [container], **spec},
    }


def quota(name: str, hard: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": name},
        "spec": {"hard": hard, **spec},
    }


def wait_quota(cluster: ClusterHandle, ns: str, name: str, used: Obj | None = None) -> Obj:
    """Wait until the controller has filled status (and ``used`` matches, if given)."""

    def ready() -> Obj | None:
        q = cluster.get_json("resourcequota", name, "-n", ns)
        st = q.get("status") or {}
        if st.get("hard") != q["spec"]["hard"] or "used" not in st:
            return None
        if used is not None and st["used"] != used:
            return None
        return q

    return cluster.wait_for(ready, timeout=30, what=f"quota {name} status {used}")  # type: ignore[no-any-return]


# ---- ResourceQuota -----------------------------------------------------------------


def test_quota_status_and_exceeded_message(cluster: ClusterHandle, ns: str) -> None:
    apply(
        cluster, ns, quota("compute", {"pods": "3", "requests.cpu": "1", "requests.memory": "1Gi"})
    )
    wait_quota(cluster, ns, "compute", {"pods": "0", "requests.cpu": "0", "requests.memory": "0"})
    apply(cluster, ns, pod("p1", requests={"cpu": "600m", "memory": "512Mi"}))
    q = cluster.get_json("resourcequota", "compute", "-n", ns)
    assert q["status"]["used"] == {"pods": "1", "requests.cpu": "600m", "requests.memory": "512Mi"}
    # A create that fails with AlreadyExists charges nothing.
    assert "AlreadyExists" in create_fails(
        cluster, ns, pod("p1", requests={"cpu": "1m", "memory": "1Mi"})
    )
    q = cluster.get_json("resourcequota", "compute", "-n", ns)
    assert q["status"]["used"] == {"pods": "1", "requests.cpu": "600m", "requests.memory": "512Mi"}
    err = create_fails(cluster, ns, pod("p2", requests={"cpu": "600m", "memory": "128Mi"}))
    assert (
        'pods "p2" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, '
        "used: requests.cpu=600m, limited: requests.cpu=1"
    ) in err
    # Within the quota: admitted and charged.
    apply(cluster, ns, pod("p3", requests={"cpu": "400m", "memory": "512Mi"}))
    wait_quota(cluster, ns, "compute", {"pods": "2", "requests.cpu": "1", "requests.memory": "1Gi"})
    out = cluster.kubectl("describe", "quota", "compute", "-n", ns).stdout
    assert "requests.cpu" in out and "1     1" in out


def test_quota_requires_limits_when_tracked(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, quota("limits", {"limits.cpu": "2", "limits.memory": "1Gi"}))
    wait_quota(cluster, ns, "limits")
    err = create_fails(cluster, ns, pod("nolimits", requests={"cpu": "100m"}))
    assert (
        'pods "nolimits" is forbidden: failed quota: limits: must specify '
        "limits.cpu for: c1; limits.memory for: c1"
    ) in err
    apply(cluster, ns, pod("ok", limits={"cpu": "1", "memory": "256Mi"}))
    wait_quota(cluster, ns, "limits", {"limits.cpu": "1", "limits.memory": "256Mi"})


def test_quota_released_when_pod_deleted(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, quota("count", {"pods": "1", "count/pods": "5"}))
    wait_quota(cluster, ns, "count")
    apply(cluster, ns, pod("first"))
    err = create_fails(cluster, ns, pod("second"))
    assert "exceeded quota: count, requested: pods=1, used: pods=1, limited: pods=1" in err
    cluster.kubectl("delete", "pod", "first", "-n", ns, "--grace-period=0", "--force")
    wait_quota(cluster, ns, "count", {"pods": "0", "count/pods": "0"})
    apply(cluster, ns, pod("second"))
    wait_quota(cluster, ns, "count", {"pods": "1", "count/pods": "1"})


def test_concurrent_creates_never_exceed_quota(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, quota("three", {"pods": "3"}))
    wait_quota(cluster, ns, "three")
    client = cluster.client()

    async def one(i: int) -> bool:
        try:
            await client.create(PODS, pod(f"race-{i}"), namespace=ns)
            return True
        except Forbidden:
            return False

    async def burst() -> list[bool]:
        return await asyncio.gather(*(one(i) for i in range(10)))

    results = cluster.call(burst())
    assert sum(results) == 3
    q = cluster.call(client.get(RESOURCEQUOTAS, "three", namespace=ns))
    assert q["status"]["used"] == {"pods": "3"}
    assert len(cluster.get_json("pods", "-n", ns)["items"]) == 3


def test_quota_services_nodeports_and_loadbalancers(cluster: ClusterHandle, ns: str) -> None:
    apply(
        cluster,
        ns,
        quota("svc", {"services": "5", "services.nodeports": "1", "services.loadbalancers": "0"}),
    )
    wait_quota(cluster, ns, "svc")
    cluster.kubectl("create", "service", "nodeport", "np1", "--tcp=80:80", "-n", ns)
    wait_quota(
        cluster,
        ns,
        "svc",
        {"services": "1", "services.nodeports": "1", "services.loadbalancers": "0"},
    )
    res = cluster.kubectl(
        "create", "service", "nodeport", "np2", "--tcp=81:81", "-n", ns, check=False
    )
    assert res.returncode != 0
    assert (
        'services "np2" is forbidden: exceeded quota: svc, requested: services.nodeports=1, '
        "used: services.nodeports=1, limited: services.nodeports=1"
    ) in res.stderr
    res = cluster.kubectl(
        "create", "service", "loadbalancer", "lb", "--tcp=82:82", "-n", ns, check=False
    )
    assert "requested: services.loadbalancers=1,services.nodeports=1" in res.stderr
    cluster.kubectl("create", "service", "clusterip", "plain", "--tcp=80:80", "-n", ns)
    # Turning the ClusterIP service into a NodePort one is charged on update too.
    res = cluster.kubectl(
        "patch", "service", "plain", "-n", ns, "-p", '{"spec":{"type":"NodePort"}}', check=False
    )
    assert res.returncode != 0 and "exceeded quota: svc" in res.stderr


def test_quota_object_counts(cluster: ClusterHandle, ns: str) -> None:
    apply(
        cluster,
        ns,
        quota("objects", {"secrets": "1", "count/deployments.apps": "1", "count/jobs.batch": "0"}),
    )
    wait_quota(cluster, ns, "objects")
    cluster.kubectl("create", "secret", "generic", "s1", "--from-literal=a=b", "-n", ns)
    res = cluster.kubectl(
        "create", "secret", "generic", "s2", "--from-literal=a=b", "-n", ns, check=False
    )
    assert (
        'secrets "s2" is forbidden: exceeded quota: objects, requested: secrets=1, used: secrets=1, limited: secrets=1'
        in res.stderr
    )
    cluster.kubectl("create", "deployment", "d1", "--image=nginx:1.27", "--replicas=0", "-n", ns)
    res = cluster.kubectl("create", "deployment", "d2", "--image=nginx:1.27", "-n", ns, check=False)
    assert (
        'deployments.apps "d2" is forbidden: exceeded quota: objects, requested: '
        "count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1"
    ) in res.stderr
    res = cluster.kubectl("create", "job", "j1", "--image=busybox", "-n", ns, check=False)
    assert "exceeded quota: objects, requested: count/jobs.batch=1" in res.stderr
    wait_quota(
        cluster,
        ns,
        "objects",
        {"secrets": "1", "count/deployments.apps": "1", "count/jobs.batch": "0"},
    )


def test_quota_pvc_storage(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, quota("storage", {"requests.storage": "1Gi", "persistentvolumeclaims": "5",
                                         "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "0"}))  # fmt: skip
    wait_quota(cluster, ns, "storage")

    def pvc(name: str, size: str, cls: str | None = None) -> Obj:
        spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
        if cls:
            spec["storageClassName"] = cls
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": spec,
        }

    apply(cluster, ns, pvc("a", "600Mi"))
    err = create_fails(cluster, ns, pvc("b", "600Mi"))
    assert (
        'persistentvolumeclaims "b" is forbidden: exceeded quota: storage, requested: '
        "requests.storage=600Mi, used: requests.storage=600Mi, limited: requests.storage=1Gi"
    ) in err
    err = create_fails(cluster, ns, pvc("c", "100Mi", "gold"))
    assert "requested: gold.storageclass.storage.k8s.io/persistentvolumeclaims=1" in err
    wait_quota(cluster, ns, "storage", {"requests.storage": "600Mi", "persistentvolumeclaims": "1",
                                        "gold.storageclass.storage.k8s.io/persistentvolumeclaims": "0"})  # fmt: skip


def test_quota_scopes(cluster: ClusterHandle, ns: str) -> None:
    apply(
        cluster, ns,
        quota("besteffort", {"pods": "1"}, scopes=["BestEffort"]),
        quota("terminating", {"pods": "1"}, scopes=["Terminating"]),
    )  # fmt: skip
    wait_quota(cluster, ns, "besteffort")
    wait_quota(cluster, ns, "terminating")
    apply(cluster, ns, pod("be1"))
    err = create_fails(cluster, ns, pod("be2"))
    assert "exceeded quota: besteffort" in err
    # Not best-effort: not counted by the BestEffort quota.
    apply(cluster, ns, pod("burstable", requests={"cpu": "10m"}))
    apply(cluster, ns, pod("deadline", requests={"cpu": "10m"}, activeDeadlineSeconds=600))
    err = create_fails(
        cluster, ns, pod("deadline2", requests={"cpu": "10m"}, activeDeadlineSeconds=600)
    )
    assert "exceeded quota: terminating" in err
    wait_quota(cluster, ns, "besteffort", {"pods": "1"})
    wait_quota(cluster, ns, "terminating", {"pods": "1"})


def test_quota_priority_class_scope_and_priority_admission(cluster: ClusterHandle, ns: str) -> None:
    pc_name = f"high-{ns}"
    pc = {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": pc_name},
        "value": 1000,
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pc))
    try:
        selector = {
            "matchExpressions": [
                {"scopeName": "PriorityClass", "operator": "In", "values": [pc_name]}
            ]
        }
        apply(cluster, ns, quota("high", {"pods": "1"}, scopeSelector=selector))
        wait_quota(cluster, ns, "high")
        apply(cluster, ns, pod("h1", priorityClassName=pc_name))
        err = create_fails(cluster, ns, pod("h2", priorityClassName=pc_name))
        assert "exceeded quota: high" in err
        apply(cluster, ns, pod("plain"))
        h1 = cluster.get_json("pod", "h1", "-n", ns)
        assert h1["spec"]["priority"] == 1000
        assert h1["spec"]["preemptionPolicy"] == "PreemptLowerPriority"
        plain = cluster.get_json("pod", "plain", "-n", ns)
        assert plain["spec"]["priority"] == 0 and "priorityClassName" not in plain["spec"]
        apply(cluster, ns, pod("crit", priorityClassName="system-cluster-critical"))
        assert cluster.get_json("pod", "crit", "-n", ns)["spec"]["priority"] == 2000000000
        err = create_fails(cluster, ns, pod("nope", priorityClassName="no-such-class"))
        assert 'pods "nope" is forbidden: no PriorityClass with name no-such-class was found' in err
        err = create_fails(cluster, ns, pod("fixed", priority=5))
        assert "the integer value of priority (5) must not be provided in pod spec" in err
    finally:
        cluster.kubectl("delete", "priorityclass", pc_name, check=False)


def test_system_and_global_default_priority_classes(cluster: ClusterHandle, ns: str) -> None:
    names = cluster.kubectl("get", "priorityclasses", "-o", "name").stdout.split()
    assert "priorityclass.scheduling.k8s.io/system-cluster-critical" in names
    assert "priorityclass.scheduling.k8s.io/system-node-critical" in names
    default = f"default-{ns}"
    pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": default},
          "value": 7, "globalDefault": True, "preemptionPolicy": "Never"}  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pc))
    try:
        second = {**pc, "metadata": {"name": f"other-{ns}"}}
        res = cluster.kubectl("create", "-f", "-", input=json.dumps(second), check=False)
        assert (
            f"PriorityClass {default} is marked as default. Only one default can exist"
            in res.stderr
        )
        apply(cluster, ns, pod("defaulted"))
        spec = cluster.get_json("pod", "defaulted", "-n", ns)["spec"]
        assert (spec["priorityClassName"], spec["priority"], spec["preemptionPolicy"]) == (
            default,
            7,
            "Never",
        )
    finally:
        cluster.kubectl("delete", "priorityclass", default, check=False)


# ---- LimitRange ------------------------------------------------------------------------


def limit_range(name: str, *limits: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": {"name": name},
        "spec": {"limits": list(limits)},
    }


def test_limitrange_defaults_and_annotation(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, limit_range("defaults", {
        "type": "Container", "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "100m"},
    }))  # fmt: skip
    apply(cluster, ns, pod("bare"), pod("partial", limits={"cpu": "300m"}))
    bare = cluster.get_json("pod", "bare", "-n", ns)
    res = bare["spec"]["containers"][0]["resources"]
    assert res == {
        "limits": {"cpu": "500m", "memory": "256Mi"},
        "requests": {"cpu": "100m", "memory": "256Mi"},
    }
    assert bare["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container c1; cpu, memory limit for container c1"
    )
    partial = cluster.get_json("pod", "partial", "-n", ns)["spec"]["containers"][0]["resources"]
    # The container's own limit wins; its request defaults to that limit (API defaulting).
    assert partial["limits"] == {"cpu": "300m", "memory": "256Mi"}
    assert partial["requests"]["cpu"] == "300m"


def test_limitrange_min_max_ratio(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, limit_range("bounds",
        {"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"}, "maxLimitRequestRatio": {"cpu": "4"}},
        {"type": "Pod", "max": {"memory": "1Gi"}},
    ))  # fmt: skip
    mem = {"memory": "512Mi"}
    err = create_fails(cluster, ns, pod("big", requests={"cpu": "1"}, limits={"cpu": "4", **mem}))
    assert 'pods "big" is forbidden: maximum cpu usage per Container is 2, but limit is 4\n' in err
    err = create_fails(
        cluster, ns, pod("tiny", requests={"cpu": "50m"}, limits={"cpu": "100m", **mem})
    )
    assert "minimum cpu usage per Container is 100m, but request is 50m" in err
    err = create_fails(
        cluster, ns, pod("ratio", requests={"cpu": "100m"}, limits={"cpu": "1", **mem})
    )
    assert (
        "cpu max limit to request ratio per Container is 4, but provided ratio is 10.000000" in err
    )
    err = create_fails(
        cluster, ns, pod("mem", requests={"cpu": "1"}, limits={"cpu": "2", "memory": "2Gi"})
    )
    assert 'pods "mem" is forbidden: maximum memory usage per Pod is 1Gi, but limit is 2Gi' in err
    # Several violations: one aggregated message, as upstream.
    err = create_fails(cluster, ns, pod("both", requests={"cpu": "1"}, limits={"cpu": "4"}))
    assert (
        "[maximum cpu usage per Container is 2, but limit is 4, "
        "maximum memory usage per Pod is 1Gi.  No limit is specified]"
    ) in err
    apply(
        cluster,
        ns,
        pod("fits", requests={"cpu": "500m", "memory": "512Mi"}, limits={"cpu": "1", **mem}),
    )


def test_limitrange_pvc(cluster: ClusterHandle, ns: str) -> None:
    apply(
        cluster,
        ns,
        limit_range(
            "storage",
            {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}},
        ),
    )
    claim: Obj = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "small"},
                  "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "500Mi"}}}}  # fmt: skip
    err = create_fails(cluster, ns, claim)
    assert (
        'persistentvolumeclaims "small" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi'
        in err
    )
    claim["metadata"]["name"] = "large"
    claim["spec"]["resources"]["requests"]["storage"] = "10Gi"
    err = create_fails(cluster, ns, claim)
    assert "maximum storage usage per PersistentVolumeClaim is 5Gi, but request is 10Gi" in err
