"""Pure logic of simulated nodes, node IPAM and node lifecycle: capacity parsing, pod
address allocation, the simulated container life, CIDR sets, tolerations."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest

from k3py.server.controllers.base import Timings
from k3py.server.controllers.events import EventSink
from k3py.server.controllers.nodeipam import CidrSet, cidr_sets
from k3py.server.controllers.nodelifecycle import (
    NodeLifecycleController,
    _Health,
    eviction_deadline,
    tolerates,
    zone_of,
)
from k3py.server.simnodes import (
    _Node,
    container_run,
    node_internal_ip,
    parse_capacity,
    pod_requests,
)

# ---- parse_capacity ------------------------------------------------------------------------


def test_parse_capacity_ok() -> None:
    assert parse_capacity("cpu=4,memory=16Gi,pods=110") == {
        "cpu": "4",
        "memory": "16Gi",
        "pods": "110",
    }
    assert parse_capacity(" cpu = 500m , nvidia.com/gpu=2 ") == {
        "cpu": "500m",
        "nvidia.com/gpu": "2",
    }


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("cpu", "not name=quantity"),
        ("cpu=", "not name=quantity"),
        ("=4", "not name=quantity"),
        ("cpu=4,,pods=3", "empty item"),
        ("cpu=four", "cpu='four'"),
        ("cpu=4,cpu=5", "given twice"),
        ("pods=1.5", "not a whole number"),
        ("memory=-1Gi", "negative"),
        ("bad name!=1", "invalid resource name"),
    ],
)
def test_parse_capacity_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=None) as e:
        parse_capacity(text)
    assert fragment in str(e.value)


# ---- pod addresses ---------------------------------------------------------------------------


def _node() -> _Node:
    sink = EventSink(None)  # type: ignore[arg-type]  # never written to here
    return _Node(name="n", index=0, ip=node_internal_ip(0), recorder=sink.recorder("kubelet"))


def test_allocation_is_stable_unique_and_reused_after_release() -> None:
    n = _node()
    assert n.allocate("u0") is None  # no podCIDR yet
    assert n.set_cidr("10.42.3.0/24")
    a = n.allocate("u1")
    assert a == "10.42.3.2"
    assert n.allocate("u1") == a
    ips = {n.allocate(f"p{i}") for i in range(252)}
    assert None not in ips and len(ips) == 252 and a not in ips
    assert n.allocate("one-too-many") is None  # .2 … .254 are all taken
    n.release("u1")
    assert n.allocate("late") == a
    for ip in ips:
        assert ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network("10.42.3.0/24")


def test_reserve_keeps_adopted_addresses() -> None:
    n = _node()
    n.set_cidr("10.42.1.0/24")
    n.reserve(uid="old", ip="10.42.1.2")
    n.reserve(uid="elsewhere", ip="10.99.0.5")  # not in the range: ignored
    assert n.allocate("old") == "10.42.1.2"
    assert n.allocate("new") != "10.42.1.2"
    assert "elsewhere" not in n.ips


def test_node_internal_ips_are_distinct() -> None:
    ips = {node_internal_ip(i) for i in range(5000)}
    assert len(ips) == 5000
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network("10.254.0.0/16") for ip in ips)


# ---- the simulated container life -------------------------------------------------------------


def _pod(policy: str, **ann: str) -> dict[str, Any]:
    return {"metadata": {"annotations": ann}, "spec": {"restartPolicy": policy}}


def test_always_runs_forever() -> None:
    r = container_run(_pod("Always"), start=100.0, now=10_000.0)
    assert (r.phase, r.ready, r.restarts, r.again) == ("Running", True, 0, None)
    assert "running" in r.state


def test_never_completes_after_duration() -> None:
    p = _pod("Never", **{"k3py.io/simulate-duration": "30s"})
    r = container_run(p, start=100.0, now=110.0)
    assert r.phase == "Running" and r.again == pytest.approx(20.01)
    r = container_run(p, start=100.0, now=130.0)
    assert r.phase == "Succeeded" and r.state["terminated"]["exitCode"] == 0
    assert r.state["terminated"]["reason"] == "Completed"
    r = container_run(_pod("Never", **{"k3py.io/simulate-exit-code": "2"}), start=0.0, now=0.0)
    assert r.phase == "Failed" and r.state["terminated"]["exitCode"] == 2
    assert r.state["terminated"]["reason"] == "Error"


def test_on_failure_restarts_with_back_off() -> None:
    p = _pod("OnFailure", **{"k3py.io/simulate-exit-code": "1"})
    r = container_run(p, start=0.0, now=0.0)  # exited, restarted at once, exited: 10 s back-off
    assert r.phase == "Running" and r.restarts == 1 and not r.ready
    assert r.state["waiting"]["reason"] == "CrashLoopBackOff"
    assert r.last_state["terminated"]["exitCode"] == 1
    assert container_run(p, start=0.0, now=10.5).restarts == 2  # then 20 s
    assert container_run(p, start=0.0, now=30.5).restarts == 3  # then 40 s
    late = container_run(p, start=0.0, now=100_000.0)  # saturated at 300 s: arithmetic jump
    assert late.restarts > 300 and late.state["waiting"]["message"].startswith("back-off 300s")
    ok = container_run(_pod("OnFailure"), start=0.0, now=0.0)
    assert ok.phase == "Succeeded"


def test_on_failure_with_duration_runs_between_crashes() -> None:
    p = _pod("OnFailure", **{"k3py.io/simulate-exit-code": "1", "k3py.io/simulate-duration": "5s"})
    assert container_run(p, start=0.0, now=4.0).restarts == 0
    r = container_run(p, start=0.0, now=7.0)  # restarted at 5 s at once, running
    assert r.restarts == 1 and r.ready and r.last_state["terminated"]["finishedAt"]
    r = container_run(p, start=0.0, now=12.0)  # crashed at 10 s, 10 s back-off
    assert r.restarts == 1 and "waiting" in r.state


# ---- node IPAM ----------------------------------------------------------------------------------


def test_cidr_set_allocates_every_range_once() -> None:
    s = CidrSet(ipaddress.ip_network("10.42.0.0/22"), 24)
    got = [s.allocate() for _ in range(4)]
    assert [str(n) for n in got] == ["10.42.0.0/24", "10.42.1.0/24", "10.42.2.0/24", "10.42.3.0/24"]
    assert s.allocate() is None
    s.release(ipaddress.ip_network("10.42.2.0/24"))
    assert str(s.allocate()) == "10.42.2.0/24"
    assert not s.occupy(ipaddress.ip_network("10.43.0.0/24"))


def test_cidr_sets_dual_stack_and_bad_masks() -> None:
    sets = cidr_sets("10.42.0.0/16,fd00:42::/56")
    assert [(s.cluster.version, s.mask) for s in sets] == [(4, 24), (6, 64)]
    assert sets[0].size == 256 and sets[1].size == 256
    with pytest.raises(ValueError, match="larger"):
        CidrSet(ipaddress.ip_network("10.42.0.0/24"), 16)


# ---- tolerations and eviction deadlines ------------------------------------------------------------

UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
               "timeAdded": "2026-01-01T00:00:00Z"}  # fmt: skip
T0 = 1767225600.0  # 2026-01-01T00:00:00Z


def test_tolerates() -> None:
    assert tolerates({"operator": "Exists"}, UNREACHABLE)
    assert tolerates(
        {"key": UNREACHABLE["key"], "operator": "Exists", "effect": "NoExecute"}, UNREACHABLE
    )
    assert not tolerates(
        {"key": UNREACHABLE["key"], "operator": "Exists", "effect": "NoSchedule"}, UNREACHABLE
    )
    assert not tolerates({"key": "other", "operator": "Exists"}, UNREACHABLE)
    assert tolerates(
        {"key": "k", "value": "v", "effect": "NoExecute"},
        {"key": "k", "value": "v", "effect": "NoExecute"},
    )
    assert not tolerates(
        {"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoExecute"}
    )


def _with(*tols: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"tolerations": list(tols)}}


def test_eviction_deadline() -> None:
    assert eviction_deadline(_with(), [UNREACHABLE], observed=5.0) == 0.0
    tol = {"key": UNREACHABLE["key"], "operator": "Exists", "effect": "NoExecute"}
    assert eviction_deadline(_with(tol), [UNREACHABLE], observed=5.0) is None
    assert (
        eviction_deadline(_with({**tol, "tolerationSeconds": 300}), [UNREACHABLE], observed=5.0)
        == T0 + 300
    )
    both = _with({**tol, "tolerationSeconds": 300}, {**tol, "tolerationSeconds": 2})
    assert eviction_deadline(both, [UNREACHABLE], observed=5.0) == T0 + 2
    no_time = {"key": "x", "effect": "NoExecute"}
    assert (
        eviction_deadline(
            _with({"operator": "Exists", "tolerationSeconds": 7}), [no_time], observed=50.0
        )
        == 57.0
    )


def test_zone_of() -> None:
    assert zone_of({"metadata": {"labels": {}}}) == ""
    a = zone_of({"metadata": {"labels": {"topology.kubernetes.io/zone": "a"}}})
    b = zone_of({"metadata": {"labels": {"topology.kubernetes.io/zone": "b"}}})
    assert a and b and a != b


# ---- kubelet admission ------------------------------------------------------------------------


def test_pod_requests_and_admission() -> None:
    pod = {"spec": {
        "containers": [{"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
                       {"resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "1"}}}],
        "initContainers": [{"resources": {"requests": {"cpu": "3"}}},
                           {"restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}],
        "overhead": {"cpu": "10m"},
    }}  # fmt: skip
    req = pod_requests(pod)
    assert req["cpu"] == 3000 + 10  # the big init container dominates
    assert req["memory"] == 1024**3 * 1000 and req["nvidia.com/gpu"] == 1000 and req["pods"] == 1000
    n = _node()
    alloc = {"cpu": 4000, "memory": 16 * 1024**3 * 1000, "pods": 2000}
    assert n.admit("a", pod_requests({"spec": {"containers": [{"resources": {"requests": {"cpu": "3"}}}]}}), allocatable=alloc) == ""  # fmt: skip
    assert n.admit("b", pod_requests({"spec": {"containers": [{"resources": {"requests": {"cpu": "2"}}}]}}), allocatable=alloc) == "cpu"  # fmt: skip
    assert n.admit("c", pod_requests({"spec": {"containers": [{}]}}), allocatable=alloc) == ""
    assert n.admit("d", pod_requests({"spec": {"containers": [{}]}}), allocatable=alloc) == "pods"
    assert n.admit("e", req, allocatable={**alloc, "pods": 9000, "cpu": 99000}) == "nvidia.com/gpu"
    n.release("a")
    assert n.admit("b", pod_requests({"spec": {"containers": [{"resources": {"requests": {"cpu": "2"}}}]}}), allocatable=alloc) == ""  # fmt: skip


# ---- zone disruption states -----------------------------------------------------------------------


class _FakeInformer:
    def add_handler(self, **_: Any) -> None:
        pass


class _FakeCtx:
    def __init__(self) -> None:
        self.timings = Timings(pod_eviction_rate=0.5, unhealthy_zone_threshold=0.55)
        self.client = None
        self.recorder = None
        self.config = None

    def informer(self, *_: Any, **__: Any) -> _FakeInformer:
        return _FakeInformer()


def _controller(states: dict[str, tuple[str, str, bool]]) -> NodeLifecycleController:
    """states: node -> (zone, Ready status, stale)."""
    c = NodeLifecycleController(_FakeCtx())  # type: ignore[arg-type]
    c.setup()
    now = time.monotonic()
    for name, (zone, ready, stale) in states.items():
        c.summary[name] = (zone, ready)
        c.health[name] = _Health(probe=now - (1000 if stale else 0))
    return c


def test_zone_states_and_taint_rate() -> None:
    healthy = {f"a{i}": ("za", "True", False) for i in range(10)}
    c = _controller({**healthy, "b0": ("zb", "True", True)})  # one stale node in zone b
    c._zones()
    assert not c.all_disrupted
    assert c.zone_rate == {"za": 0.5, "zb": 0.5}  # zone b fully disrupted: primary rate
    assert c._may_taint("zb") == 0.0
    assert 0 < c._may_taint("zb") <= 2.0  # one token per 1/rate seconds

    partial = {f"a{i}": ("za", "True" if i < 4 else "Unknown", False) for i in range(10)}
    c = _controller(partial)
    c._zones()
    assert c.zone_rate["za"] == 0.0  # partially disrupted small zone: no taints at all
    assert c._may_taint("za") > 0

    c = _controller({f"a{i}": ("za", "True", True) for i in range(3)})
    c._zones()
    assert c.all_disrupted  # every zone down: upstream stops evicting (and lifts taints)
