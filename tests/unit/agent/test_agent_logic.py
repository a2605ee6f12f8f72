from __future__ import annotations

import pytest

from k3py.agent.kubelet import resources
from k3py.agent.kubelet.env import expand, field_value, resource_value
from k3py.agent.kubelet.logs import parse_cri_log_line
from k3py.agent.kubelet.node import parse_taint
from k3py.agent.kubelet.pods import Backoff, _phase, _registry_host, _tag
from k3py.cni.plugin import host_veth_name, nft_ruleset
from k3py.server.auth.authn import UserInfo
from k3py.server.auth.authz import RequestAttributes
from k3py.server.auth.nodeauthz import NodeAuthorizer
from k3py.server.join import _check_password, _hash_password


def test_env_expansion_rules() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$$(A)", env) == "$(A)"
    assert expand("$(MISSING)", env) == "$(MISSING)"
    assert expand("$(A", env) == "$(A"


def test_field_and_resource_refs() -> None:
    pod = {"metadata": {"name": "p", "namespace": "n", "labels": {"a": "1"}}, "spec": {"nodeName": "node"},
           "status": {"podIP": "10.42.0.9"}}
    assert field_value(pod, "metadata.labels['a']", node_ip="1.2.3.4") == "1"
    assert field_value(pod, "status.hostIP", node_ip="1.2.3.4") == "1.2.3.4"
    assert field_value(pod, "status.podIP", node_ip="") == "10.42.0.9"
    c = {"resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m"}}}
    assert resource_value(c, {"resource": "limits.memory", "divisor": "1Mi"}, allocatable={}) == "64"
    assert resource_value(c, {"resource": "requests.cpu", "divisor": "1m"}, allocatable={}) == "250"
    assert resource_value(c, {"resource": "limits.cpu"}, allocatable={"cpu": "2"}) == "2"


def test_qos_and_cri_resources() -> None:
    def pod(res: dict) -> dict:
        return {"metadata": {"uid": "u"}, "spec": {"containers": [{"name": "c", "resources": res}]}}

    g = pod({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}})
    b = pod({"requests": {"memory": "1Gi"}})
    e = pod({})
    assert [resources.qos_class(p) for p in (g, b, e)] == ["Guaranteed", "Burstable", "BestEffort"]
    r = resources.linux_container_resources(g, g["spec"]["containers"][0], node_memory=8 << 30)
    assert (r.cpu_shares, r.cpu_quota, r.cpu_period, r.memory_limit_in_bytes, r.oom_score_adj) == \
        (1024, 100000, 100000, 1 << 30, -997)
    rb = resources.linux_container_resources(b, b["spec"]["containers"][0], node_memory=8 << 30)
    assert rb.oom_score_adj == 1000 - 1000 // 8 and rb.cpu_shares == 2
    assert resources.pod_cgroup_parent(b) == "/kubepods/burstable/podu"


def test_phase_and_backoff() -> None:
    run = {"state": {"running": {}}}
    ok = {"state": {"terminated": {"exitCode": 0}}}
    bad = {"state": {"terminated": {"exitCode": 1}}}
    kw = {"init_statuses": [], "init_done": True, "spec": {}, "old_phase": None}
    assert _phase([run, ok], restart_policy="Never", **kw) == "Running"
    assert _phase([ok, ok], restart_policy="Never", **kw) == "Succeeded"
    assert _phase([ok, bad], restart_policy="Never", **kw) == "Failed"
    assert _phase([ok, bad], restart_policy="Always", **kw) == "Running"
    bo = Backoff()
    assert [bo.next(1) for _ in range(7)] == [10, 20, 40, 80, 160, 300, 300]
    assert bo.next(601) == 10


def test_image_names_and_logs_and_taints() -> None:
    assert _registry_host("127.0.0.1:5000/a/b:1") == "127.0.0.1:5000"
    assert _registry_host("busybox") == "docker.io" and _registry_host("library/busybox:1") == "docker.io"
    assert _tag("busybox") == "latest" and _tag("r:5000/x:v2") == "v2" and _tag("x@sha256:ab") == "digest"
    assert parse_cri_log_line(b"2026-11-22T10:00:00.1Z stdout P part\n") == \
        ("2026-11-22T10:00:00.1Z", "stdout", True, b"part")
    assert parse_taint("dedicated=gpu:NoSchedule") == {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    with pytest.raises(ValueError):
        parse_taint("oops:Sometimes")


def test_cni_names_and_rules() -> None:
    name = host_veth_name("abc", "eth0")
    assert name.startswith("veth") and len(name) <= 15 and name == host_veth_name("abc", "eth0")
    rules = nft_ruleset({"podCIDR": "10.42.1.0/24", "clusterCIDR": "10.42.0.0/16", "ipamDir": "/nonexistent/ipam"})
    assert "ip saddr 10.42.1.0/24 ip daddr != 10.42.0.0/16 masquerade" in rules
    assert rules.startswith("table ip k3py-cni {}\ndelete table ip k3py-cni\n")


async def test_node_authorizer() -> None:
    authz = NodeAuthorizer()
    node = UserInfo(name="system:node:w1", groups=("system:nodes", "system:authenticated"))

    async def allowed(user: UserInfo = node, **kw: str) -> bool:
        return (await authz.authorize(RequestAttributes(user=user, **kw))).allowed  # type: ignore[arg-type]

    assert await allowed(verb="list", resource="pods")
    assert await allowed(verb="update", resource="nodes", subresource="status", name="w1")
    assert not await allowed(verb="patch", resource="nodes", name="w2")
    assert await allowed(verb="update", resource="leases", api_group="coordination.k8s.io",
                         namespace="kube-node-lease", name="w1")
    assert not await allowed(verb="update", resource="leases", api_group="coordination.k8s.io",
                             namespace="kube-node-lease", name="w2")
    assert not await allowed(verb="create", resource="deployments", api_group="apps")
    assert not await allowed(verb="delete", resource="secrets")
    other = UserInfo(name="alice", groups=("system:authenticated",))
    assert not await allowed(user=other, verb="list", resource="pods")


def test_node_password_hash() -> None:
    h = _hash_password("correct horse battery")
    assert _check_password("correct horse battery", h)
    assert not _check_password("wrong", h) and not _check_password("x", "garbage")
