"""Filters, scores and the messages they make."""

from __future__ import annotations

from k3py.server.scheduler import plugins as pl
from k3py.server.scheduler.framework import feasible_nodes_to_find, fit_message
from k3py.server.scheduler.podinfo import PodInfo
from tests.unit.scheduler.helpers import bind, cache_with, info, node, pod

HOST = "kubernetes.io/hostname"


def test_static_filters_in_order_with_upstream_reasons() -> None:
    c = cache_with(
        node("cordoned", unschedulable=True, taints=[{"key": "a", "value": "b", "effect": "NoSchedule"}]),
        node("tainted", taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
                                {"key": "soft", "effect": "PreferNoSchedule"}]),
        node("plain", labels={"disk": "ssd"}),
    )  # fmt: skip
    p = info(nodeSelector={"disk": "ssd"})
    got = {ni.name: pl.static_filter(ni, p) for ni in c.node_list}
    assert got["cordoned"] is not None and got["cordoned"].reasons == (pl.R_UNSCHEDULABLE,)
    assert got["tainted"] is not None
    assert got["tainted"].reasons == ("node(s) had untolerated taint {dedicated: gpu}",)
    assert got["tainted"].unresolvable
    assert got["plain"] is None
    other = info(nodeSelector={"disk": "hdd"})
    st = pl.static_filter(c.nodes["plain"], other)
    assert st is not None and st.reasons == (pl.R_AFFINITY,)
    tolerant = info(tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"},
                                 {"key": "a", "operator": "Exists"}])  # fmt: skip
    assert pl.static_filter(c.nodes["cordoned"], tolerant) is None


def test_static_cache_invalidated_by_node_change() -> None:
    c = cache_with(node("n"))
    p = info(nodeSelector={"x": "y"})
    assert pl.static_filter(c.nodes["n"], p) is not None
    c.set_node(node("n", labels={"x": "y"}))
    assert pl.static_filter(c.nodes["n"], p) is None


def test_insufficient_resources_and_pod_count() -> None:
    c = cache_with(node("n", cpu="1", memory="1Gi", pods="2", extra={"example.com/gpu": "1"}))
    bind(c, pod(cpu="800m", memory="512Mi"), "n")
    ni = c.nodes["n"]
    assert pl.insufficient(ni, info(cpu="100m", memory="100Mi")) == ()
    assert pl.insufficient(ni, info(cpu="300m", memory="600Mi")) == (
        "Insufficient cpu", "Insufficient memory",
    )  # fmt: skip
    gpu = pod()
    gpu["spec"]["containers"][0]["resources"]["requests"]["example.com/gpu"] = "2"
    assert pl.insufficient(ni, PodInfo(gpu)) == ("Insufficient example.com/gpu",)
    bind(c, pod(cpu=None, memory=None), "n")
    assert pl.insufficient(ni, info(cpu=None, memory=None)) == ("Too many pods",)


def test_host_port_conflicts() -> None:
    c = cache_with(node("n"))
    body = pod()
    body["spec"]["containers"][0]["ports"] = [
        {"containerPort": 1, "hostPort": 80, "hostIP": "10.0.0.1"}
    ]
    bind(c, body, "n")
    ni = c.nodes["n"]

    def with_port(ip: str, port: int, proto: str = "TCP") -> PodInfo:
        b = pod()
        b["spec"]["containers"][0]["ports"] = [
            {"containerPort": 1, "hostPort": port, "hostIP": ip, "protocol": proto}
        ]
        return PodInfo(b)

    assert pl.ports_filter(ni, with_port("0.0.0.0", 80)) is not None  # wildcard conflicts
    assert pl.ports_filter(ni, with_port("10.0.0.1", 80)) is not None
    assert pl.ports_filter(ni, with_port("10.0.0.2", 80)) is None
    assert pl.ports_filter(ni, with_port("10.0.0.1", 80, "UDP")) is None
    assert pl.ports_filter(ni, with_port("10.0.0.1", 81)) is None


def anti(labels: dict[str, str], key: str = HOST) -> dict[str, object]:
    return {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}  # fmt: skip


def near(labels: dict[str, str], key: str = HOST) -> dict[str, object]:
    return {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": labels}, "topologyKey": key}]}}  # fmt: skip


def test_inter_pod_affinity_and_anti_affinity() -> None:
    c = cache_with(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}),
                   node("c", labels={"zone": "z2"}))  # fmt: skip
    bind(c, pod(labels={"app": "db"}), "a")
    p = info(labels={"app": "web"}, affinity=near({"app": "db"}, "zone"))
    st = pl.InterPodState(c, p, {})
    assert [st.filter(c.nodes[n]) is None for n in "abc"] == [True, True, False]
    q = info(labels={"app": "db"}, affinity=anti({"app": "db"}))
    st = pl.InterPodState(c, q, {})
    assert st.filter(c.nodes["a"]) is not None and st.filter(c.nodes["a"]).reasons == (  # type: ignore[union-attr]
        pl.R_POD_ANTI_AFFINITY,
    )
    assert st.filter(c.nodes["b"]) is None
    # the first pod of a group with affinity to itself may go anywhere
    first = info(labels={"app": "new"}, affinity=near({"app": "new"}))
    assert pl.InterPodState(c, first, {}).filter(c.nodes["c"]) is None


def test_existing_pods_anti_affinity() -> None:
    c = cache_with(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z1"}),
                   node("c", labels={"zone": "z2"}))  # fmt: skip
    bind(c, pod(labels={"app": "quiet"}, affinity=anti({"role": "noisy"}, "zone")), "a")
    noisy = info(labels={"role": "noisy"})
    st = pl.InterPodState(c, noisy, {})
    res = [st.filter(c.nodes[n]) for n in "abc"]
    assert res[0] is not None and res[0].reasons == (pl.R_EXISTING_ANTI,)
    assert res[1] is not None and res[2] is None
    assert pl.InterPodState(c, info(labels={"role": "calm"}), {}).filter(c.nodes["a"]) is None


def spread(max_skew: int, key: str, *, hard: bool = True, **kw: object) -> list[dict[str, object]]:
    return [{"maxSkew": max_skew, "topologyKey": key,
             "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app": "s"}}, **kw}]  # fmt: skip


def test_topology_spread_filter() -> None:
    c = cache_with(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}),
                   node("c"))  # fmt: skip
    bind(c, pod(labels={"app": "s"}), "a")
    p = info(labels={"app": "s"}, topologySpreadConstraints=spread(1, "zone"))
    st = pl.SpreadFilterState(c, p)
    a, b, cc = (st.filter(c.nodes[n]) for n in "abc")
    assert a is not None and a.reasons == (pl.R_SPREAD,)  # 1 + 1 - 0 > 1
    assert b is None
    assert cc is not None and cc.reasons == (pl.R_SPREAD_LABEL,) and cc.unresolvable
    # minDomains above the number of domains makes the global minimum 0
    bind(c, pod(labels={"app": "s"}), "b")
    p2 = info(labels={"app": "s"}, topologySpreadConstraints=spread(1, "zone", minDomains=3))
    st2 = pl.SpreadFilterState(c, p2)
    assert st2.filter(c.nodes["a"]) is not None  # 1 + 1 - 0 > 1
    p3 = info(labels={"app": "s"}, topologySpreadConstraints=spread(1, "zone"))
    assert pl.SpreadFilterState(c, p3).filter(c.nodes["a"]) is None  # 1 + 1 - 1


def test_spread_node_affinity_policy() -> None:
    c = cache_with(node("a", labels={"zone": "z1"}), node("b", labels={"zone": "z2"}))
    bind(c, pod(labels={"app": "s"}), "a")
    sel = {"zone": "z1"}
    honor = info(labels={"app": "s"}, nodeSelector=sel, topologySpreadConstraints=spread(1, "zone"))
    assert pl.SpreadFilterState(c, honor).filter(c.nodes["a"]) is None  # only z1 counts
    ignore = info(labels={"app": "s"}, nodeSelector=sel,
                  topologySpreadConstraints=spread(1, "zone", nodeAffinityPolicy="Ignore"))  # fmt: skip
    assert pl.SpreadFilterState(c, ignore).filter(c.nodes["a"]) is not None


def test_resource_scores() -> None:
    c = cache_with(node("n", cpu="4", memory="4Gi"))
    bind(c, pod(cpu="2", memory="1Gi"), "n")
    ni = c.nodes["n"]
    p = info(cpu="1", memory="1Gi")
    # least allocated: cpu (4-3)/4 = 25, memory (4-2)/4 = 50 -> 37
    assert pl.least_allocated(ni, p) == 37
    # balanced: fractions .75 and .5 -> std .125 -> 87
    assert pl.balanced_allocation(ni, p) == 87


def test_spread_scores_prefer_emptier_nodes() -> None:
    c = cache_with(node("a"), node("b"), node("c"))
    for n in ("a", "a", "b"):
        bind(c, pod(labels={"app": "s"}), n)
    p = info(labels={"app": "s"}, topologySpreadConstraints=spread(1, HOST, hard=False))
    nodes = c.node_list
    scores = pl.spread_scores(c, nodes, p, list(p.spread), system=False)
    assert scores is not None
    assert scores[2] > scores[1] > scores[0]


def test_interpod_preferred_scores() -> None:
    c = cache_with(node("a"), node("b"))
    bind(c, pod(labels={"app": "db"}), "a")
    pref = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}},
                                           "topologyKey": HOST}}]}}  # fmt: skip
    p = info(affinity=pref)
    assert pl.interpod_scores(c, c.node_list, p, {}) == [100, 0]


def test_taint_and_node_affinity_scores() -> None:
    c = cache_with(
        node("a", taints=[{"key": "k", "effect": "PreferNoSchedule"}]), node("b", labels={"x": "1"})
    )
    p = info(affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 10, "preference": {"matchExpressions": [{"key": "x", "operator": "Exists"}]}}]}})  # fmt: skip
    assert pl.taint_scores(c.node_list, p) == [0, 100]
    assert pl.node_affinity_scores(c.node_list, p) == [0, 100]


def test_fit_message_sorted_histogram() -> None:
    st = [
        pl.Status("NodeResourcesFit", ("Insufficient cpu",), unresolvable=False),
        pl.Status(
            "NodeResourcesFit", ("Insufficient cpu", "Insufficient memory"), unresolvable=False
        ),
        pl.Status(
            "TaintToleration", ("node(s) had untolerated taint {key: value}",), unresolvable=True
        ),
    ]
    assert fit_message(num_nodes=3, statuses=st, post_filter="preemption: x") == (
        "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint "
        "{key: value}, 2 Insufficient cpu. preemption: x."
    )


def test_feasible_nodes_to_find() -> None:
    assert feasible_nodes_to_find(50) == 50
    assert feasible_nodes_to_find(100) == 100
    assert feasible_nodes_to_find(1000) == 420
    assert feasible_nodes_to_find(5000) == 500
    assert feasible_nodes_to_find(10000) == 500  # 5 % floor
