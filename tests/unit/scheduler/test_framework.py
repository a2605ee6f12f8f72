"""Whole decisions: least-allocated placement, assumptions, sampling, fit errors,
preemption."""

from __future__ import annotations

import random

import pytest

from k3py.apimachinery.selectors import selector_from_set
from k3py.server.scheduler.cache import Cache
from k3py.server.scheduler.framework import Algorithm, FitError
from k3py.server.scheduler.podinfo import PodInfo
from k3py.server.scheduler.preemption import (
    NO_VICTIMS,
    NOT_HELPFUL,
    PDB,
    Candidate,
    Preemptor,
    pick_one,
)
from tests.unit.scheduler.helpers import bind, cache_with, info, node, pod


def algo(c: Cache) -> Algorithm:
    return Algorithm(c, ns_labels={}, rng=random.Random(1))


def test_prefers_least_allocated_and_assumes() -> None:
    c = cache_with(node("a"), node("b"))
    bind(c, pod(cpu="2", memory="8Gi"), "a")
    a = algo(c)
    p = info(cpu="1", memory="1Gi")
    name, _, feasible = a.schedule(p)
    assert (name, feasible) == ("b", 2)
    c.assume(p, name)
    assert c.nodes["b"].req_cpu == 1000


def test_assumed_pods_prevent_overcommit() -> None:
    c = cache_with(node("a", cpu="1"), node("b", cpu="1"))
    a = algo(c)
    placed = []
    for _ in range(2):
        p = info(cpu="600m")
        n, _, _ = a.schedule(p)
        c.assume(p, n)
        placed.append(n)
    assert sorted(placed) == ["a", "b"]
    with pytest.raises(FitError) as e:
        a.schedule(info(cpu="600m"))
    assert e.value.message() == "0/2 nodes are available: 2 Insufficient cpu."
    c.forget(next(iter(c.nodes["a"].pods)))
    assert a.schedule(info(cpu="600m"))[0] == "a"


def test_only_enough_nodes_are_scored_and_start_rotates() -> None:
    c = cache_with(*(node(f"n{i}") for i in range(1000)))
    a = algo(c)
    _, evaluated, feasible = a.schedule(info())
    assert (evaluated, feasible) == (420, 420)
    assert a.next_start == 420
    # a pod with a static constraint takes the general path and still stops early
    p = info(tolerations=[{"key": "x", "operator": "Exists"}], topologySpreadConstraints=[])
    bind(c, pod(labels={"q": "1"}), "n3")
    _, evaluated, feasible = a.schedule(info(affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"q": "1"}}, "topologyKey": "kubernetes.io/hostname"}
        ]}}))  # fmt: skip
    assert feasible == 420
    assert a.schedule(p)[2] == 420


def test_no_nodes() -> None:
    with pytest.raises(FitError) as e:
        algo(Cache()).schedule(info())
    assert e.value.message() == "no nodes available to schedule pods"


def test_fit_error_counts_every_node() -> None:
    c = cache_with(
        node("a", taints=[{"key": "key", "value": "value", "effect": "NoSchedule"}]),
        node("b", cpu="1"),
        node("c", cpu="1"),
    )
    with pytest.raises(FitError) as e:
        algo(c).schedule(info(cpu="2"))
    assert e.value.message() == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu."
    )


def preempt_setup() -> tuple[Cache, Algorithm, Preemptor]:
    c = cache_with(node("a", cpu="2"), node("b", cpu="2"))
    a = algo(c)
    return c, a, Preemptor(c, a, rng=random.Random(1))


def test_preemption_picks_fewest_lowest_victims() -> None:
    c, a, pre = preempt_setup()
    bind(c, pod(name="a-low", cpu="1", priority=1), "a")
    bind(c, pod(name="a-mid", cpu="1", priority=5), "a")
    bind(c, pod(name="b-mid1", cpu="1", priority=5), "b")
    bind(c, pod(name="b-mid2", cpu="1", priority=5), "b")
    p = info(cpu="1", priority=10)
    with pytest.raises(FitError) as e:
        a.schedule(p)
    out = pre.preempt(p, e.value, pdbs=[])
    assert out.node == "a"
    assert [v.name for v in out.victims] == ["a-low"]


def test_preemption_respects_pdb_and_policy() -> None:
    c, a, pre = preempt_setup()
    bind(c, pod(name="a1", cpu="2", priority=1, labels={"app": "guarded"}), "a")
    bind(c, pod(name="b1", cpu="2", priority=1, labels={"app": "free"}), "b")
    p = info(cpu="2", priority=10)
    with pytest.raises(FitError) as e:
        a.schedule(p)
    pdb = PDB(namespace="default", selector=selector_from_set({"app": "guarded"}), allowed=0)
    out = pre.preempt(p, e.value, pdbs=[pdb])
    assert out.node == "b" and [v.name for v in out.victims] == ["b1"]
    never = info(cpu="2", priority=10, preemptionPolicy="Never")
    assert (
        pre.preempt(never, e.value, pdbs=[]).message
        == "not eligible due to preemptionPolicy=Never."
    )


def test_preemption_messages() -> None:
    c = cache_with(node("a", cpu="1"), node("t", taints=[{"key": "k", "effect": "NoSchedule"}]))
    bind(c, pod(cpu="1", priority=100), "a")
    a = algo(c)
    pre = Preemptor(c, a)
    p = info(cpu="1", priority=0)
    with pytest.raises(FitError) as e:
        a.schedule(p)
    out = pre.preempt(p, e.value, pdbs=[])
    assert out.node is None
    assert out.message == (f"0/2 nodes are available: 1 {NO_VICTIMS}, 1 {NOT_HELPFUL}.")


def test_preemption_victim_must_make_room() -> None:
    c, a, pre = preempt_setup()
    bind(c, pod(cpu="1500m", priority=100), "a")
    bind(c, pod(cpu="1500m", priority=100), "b")
    bind(c, pod(cpu="100m", priority=1), "a")
    p = info(cpu="1", priority=10)
    with pytest.raises(FitError) as e:
        a.schedule(p)
    out = pre.preempt(p, e.value, pdbs=[])
    assert out.node is None
    assert out.message == f"0/2 nodes are available: 1 Insufficient cpu, 1 {NO_VICTIMS}."


def test_nominated_pods_keep_their_room() -> None:
    c = cache_with(node("a", cpu="1"))
    a = algo(c)
    vip = info(cpu="1", priority=100)
    a.nominate(vip, "a")
    for prio in (0, 100):  # lower or equal priority: the room is kept for the vip
        with pytest.raises(FitError):
            a.schedule(info(cpu="1", priority=prio))
    assert a.schedule(info(cpu="1", priority=200))[0] == "a"
    assert a.schedule(vip)[0] == "a"


def test_pick_one_order() -> None:
    def pi(prio: int, started: str = "2026-01-01T00:00:00Z") -> PodInfo:
        return info(priority=prio, created=started)

    x = Candidate("x", [pi(5)], 0)
    y = Candidate("y", [pi(1), pi(1)], 0)
    z = Candidate("z", [pi(1)], 1)
    assert pick_one([x, y, z]).node == "y"  # no PDB violation, lower highest priority
    w = Candidate("w", [pi(1)], 0)
    assert pick_one([x, y, w]).node == "w"  # fewer/lower victims


def test_default_spreading_of_a_controllers_pods() -> None:
    c = cache_with(node("a"), node("b"))
    for _ in range(2):
        bind(c, pod(cpu="10m", memory="16Mi", labels={"app": "web"}), "a")
    bind(c, pod(cpu="1", memory="16Mi", labels={"app": "other"}), "b")
    p = info(cpu="10m", memory="16Mi", labels={"app": "web"})
    plain = Algorithm(c, ns_labels={}, rng=random.Random(1))
    assert plain.schedule(p)[0] == "a"  # resources alone: the emptier node
    sel = selector_from_set({"app": "web"})
    spread = Algorithm(
        c, ns_labels={}, rng=random.Random(1), default_selector=lambda _p: (sel, b"web")
    )
    assert spread.schedule(p)[0] == "b"  # the system default hostname spreading wins
