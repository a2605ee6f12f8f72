"""PodInfo: requests (init containers, sidecars, overhead, non-zero defaults), ports,
tolerations, node selector terms."""

from __future__ import annotations

from k3py.server.scheduler.podinfo import (
    DEFAULT_MEMORY,
    NodeTerm,
    PodInfo,
    Toleration,
    pod_requests,
)
from tests.unit.scheduler.helpers import pod


def c(cpu: str | None = None, mem: str | None = None, **kw: object) -> dict[str, object]:
    req = {}
    if cpu:
        req["cpu"] = cpu
    if mem:
        req["memory"] = mem
    return {"name": "x", "resources": {"requests": req}, **kw}


def test_requests_sum_containers_and_max_with_init() -> None:
    spec = {"containers": [c("100m", "1Gi"), c("200m")], "initContainers": [c("500m", "512Mi")]}
    assert pod_requests(spec) == {"cpu": 500, "memory": 1024**3}


def test_sidecars_add_to_containers_and_later_inits() -> None:
    spec = {
        "initContainers": [
            c("100m", restartPolicy="Always"),  # sidecar: runs alongside everything after
            c("1"),  # plain init: 1 + the sidecar started before it
        ],
        "containers": [c("200m")],
    }
    assert pod_requests(spec)["cpu"] == 1100
    spec["initContainers"][1] = c("50m")
    assert pod_requests(spec)["cpu"] == 300  # containers + sidecar


def test_overhead_and_extended_resources() -> None:
    spec = {
        "containers": [
            {"name": "x", "resources": {"requests": {"cpu": "1", "example.com/gpu": "2"}}}
        ],
        "overhead": {"cpu": "250m", "memory": "100Mi"},
    }
    p = PodInfo({"metadata": {"name": "a", "uid": "u"}, "spec": spec})
    assert (p.cpu, p.mem, p.scalar) == (1250, 100 * 1024**2, {"example.com/gpu": 2})


def test_non_zero_requests_for_scoring() -> None:
    p = PodInfo(pod(cpu=None, memory=None))
    assert (p.cpu, p.mem) == (0, 0)
    assert (p.nz_cpu, p.nz_mem) == (100, DEFAULT_MEMORY)


def test_host_ports_and_defaults() -> None:
    body = pod()
    body["spec"]["containers"][0]["ports"] = [
        {"containerPort": 80, "hostPort": 8080},
        {"containerPort": 53, "hostPort": 53, "protocol": "UDP", "hostIP": "10.0.0.1"},
        {"containerPort": 9090},
    ]
    assert PodInfo(body).ports == (("0.0.0.0", "TCP", 8080), ("10.0.0.1", "UDP", 53))


def test_tolerations() -> None:
    exists_all = Toleration({"operator": "Exists"})
    assert exists_all.tolerates("any", "v", "NoSchedule")
    eq = Toleration({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"})
    assert eq.tolerates("k", "v", "NoSchedule")
    assert not eq.tolerates("k", "w", "NoSchedule")
    assert not eq.tolerates("k", "v", "NoExecute")
    assert Toleration({"key": "k", "operator": "Exists"}).tolerates("k", "x", "NoExecute")
    assert not Toleration({"value": "v"}).tolerates("k", "v", "NoSchedule")  # no key needs Exists


def test_node_terms_operators() -> None:
    labels = {"rank": "5", "zone": "a"}
    gt = NodeTerm({"matchExpressions": [{"key": "rank", "operator": "Gt", "values": ["4"]}]})
    lt = NodeTerm({"matchExpressions": [{"key": "rank", "operator": "Lt", "values": ["5"]}]})
    assert gt.matches(labels, "n") and not lt.matches(labels, "n")
    notin = NodeTerm({"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["x"]}]})
    assert notin.matches(labels, "n")  # absent label: NotIn holds
    dne = NodeTerm({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]})
    assert not dne.matches(labels, "n")
    field = NodeTerm({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]})
    assert field.matches({}, "n") and not field.matches({}, "m")
    assert not NodeTerm({}).matches(labels, "n")  # an empty term matches nothing
    bad = NodeTerm({"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["1"]}]})
    assert not bad.matches(labels, "n")  # not an integer


def test_affinity_term_namespaces() -> None:
    body = pod(ns="team", labels={"app": "a"})
    body["spec"]["affinity"] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": {"app": "a"}},
                    "topologyKey": "kubernetes.io/hostname",
                },
                {
                    "labelSelector": {"matchLabels": {"app": "a"}},
                    "topologyKey": "zone",
                    "namespaceSelector": {"matchLabels": {"env": "prod"}},
                },
            ]
        }
    }
    p = PodInfo(body)
    own, by_selector = p.anti_req
    other = PodInfo(pod(ns="other", labels={"app": "a"}))
    same = PodInfo(pod(ns="team", labels={"app": "a"}))
    assert own.matches(same, None) and not own.matches(other, None)
    ns_labels = {"other": {"env": "prod"}, "team": {}}
    assert by_selector.matches(other, ns_labels)
    assert not by_selector.matches(same, ns_labels)
