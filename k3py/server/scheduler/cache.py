"""The scheduler's own view of the cluster: one ``NodeInfo`` per node (allocatable,
what bound and assumed pods request, pod count, host ports, labels, taints) built from
the Node and Pod informers, plus pods the scheduler *assumed* onto a node before the
binding is seen.

Assume/confirm/forget follows upstream's cache: ``assume`` counts the pod on its node at
once (so the next decision does not overcommit), the informer's event for the bound pod
``add_pod`` confirms it, a failed binding ``forget``s it.

``PodCounter`` tables count, per node, the pods matching a predicate (one per distinct
spreading selector or affinity term in use); they are kept up to date on every pod
add/remove, so spreading and affinity scores never walk every pod.  Unused tables are
dropped after a while.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from k3py.server.scheduler.podinfo import (
    CPU,
    EPHEMERAL,
    MEMORY,
    PODS,
    PodInfo,
    resource_value,
)

Obj = dict[str, Any]


class Taint:
    __slots__ = ("key", "value", "effect")

    def __init__(self, t: Obj) -> None:
        self.key = t.get("key") or ""
        self.value = t.get("value") or ""
        self.effect = t.get("effect") or ""


class NodeInfo:
    __slots__ = (
        "name", "exists", "labels", "taints", "unschedulable", "alloc_cpu", "alloc_mem",
        "alloc_eph", "alloc_pods", "alloc_scalar", "req_cpu", "req_mem", "req_eph",
        "req_scalar", "nz_cpu", "nz_mem", "pods", "ports", "static_gen", "static_cache",
        "anti_pods", "index", "rkey",
    )  # fmt: skip

    def __init__(self, name: str) -> None:
        self.name = name
        self.exists = False  # False: pods seen for a node the cache does not know (yet)
        self.labels: dict[str, str] = {}
        self.taints: tuple[Taint, ...] = ()
        self.unschedulable = False
        self.alloc_cpu = self.alloc_mem = self.alloc_eph = self.alloc_pods = 0
        self.alloc_scalar: dict[str, int] = {}
        self.req_cpu = self.req_mem = self.req_eph = 0
        self.req_scalar: dict[str, int] = {}
        self.nz_cpu = self.nz_mem = 0
        self.pods: dict[str, PodInfo] = {}
        self.ports: dict[tuple[str, str, int], int] = {}
        self.static_gen = 0
        self.static_cache: dict[bytes, Any] = {}  # static filter results per pod signature
        self.anti_pods = 0  # pods here with required anti-affinity
        self.index = -1  # position in Cache.node_list
        self.rkey = ""  # resource state (a str: its hash is cached); equal keys fit and
        # score alike

    def rekey(self) -> None:
        self.rkey = sys.intern(
            f"{self.alloc_cpu},{self.alloc_mem},{self.alloc_eph},{self.alloc_pods},"
            f"{len(self.pods)},{self.req_cpu},{self.req_mem},{self.req_eph},{self.nz_cpu},"
            f"{self.nz_mem}"
        )  # interned: equal states share one object, so scans touch little memory

    def set_node(self, node: Obj) -> bool:
        """Take the Node's scheduling-relevant fields; True when labels, taints or
        cordon changed (the static filter results are then stale)."""
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        alloc = (node.get("status") or {}).get("allocatable") or {}
        labels = dict(meta.get("labels") or {})
        labels.setdefault("kubernetes.io/hostname", self.name)
        taints_raw = spec.get("taints") or []
        unsched = bool(spec.get("unschedulable"))
        taints = tuple(Taint(t) for t in taints_raw)
        static_changed = (
            not self.exists
            or labels != self.labels
            or unsched != self.unschedulable
            or [(t.key, t.value, t.effect) for t in taints]
            != [(t.key, t.value, t.effect) for t in self.taints]
        )
        self.exists = True
        self.labels = labels
        self.taints = taints
        self.unschedulable = unsched
        self.alloc_cpu = resource_value(CPU, alloc.get(CPU, "0"))
        self.alloc_mem = resource_value(MEMORY, alloc.get(MEMORY, "0"))
        self.alloc_eph = resource_value(EPHEMERAL, alloc.get(EPHEMERAL, "0"))
        self.alloc_pods = resource_value(PODS, alloc.get(PODS, "0"))
        self.alloc_scalar = {
            k: resource_value(k, v) for k, v in alloc.items() if k not in (CPU, MEMORY, EPHEMERAL, PODS)
        }  # fmt: skip
        if static_changed:
            self.static_gen += 1
            self.static_cache = {}
        self.rekey()
        return static_changed

    def add(self, p: PodInfo, sign: int = 1) -> None:
        self.req_cpu += sign * p.cpu
        self.req_mem += sign * p.mem
        self.req_eph += sign * p.eph
        self.nz_cpu += sign * p.nz_cpu
        self.nz_mem += sign * p.nz_mem
        for k, v in p.scalar.items():
            self.req_scalar[k] = self.req_scalar.get(k, 0) + sign * v
        for port in p.ports:
            n = self.ports.get(port, 0) + sign
            if n > 0:
                self.ports[port] = n
            else:
                self.ports.pop(port, None)
        if p.anti_req:
            self.anti_pods += sign
        if sign > 0:
            self.pods[p.uid] = p
        else:
            self.pods.pop(p.uid, None)
        self.rekey()

    def clone(self) -> NodeInfo:
        """A copy whose pods can be added/removed without touching this one
        (preemption's what-if)."""
        c = NodeInfo(self.name)
        for attr in NodeInfo.__slots__:
            setattr(c, attr, getattr(self, attr))
        c.alloc_scalar = dict(self.alloc_scalar)
        c.req_scalar = dict(self.req_scalar)
        c.pods = dict(self.pods)
        c.ports = dict(self.ports)
        return c

    def port_conflict(self, ports: Iterable[tuple[str, str, int]]) -> bool:
        """Upstream's HostPortInfo.CheckConflict: 0.0.0.0 conflicts with every IP."""
        used = self.ports
        if not used:
            return False
        for ip, proto, port in ports:
            if ip == "0.0.0.0":
                for _uip, uproto, uport in used:
                    if uport == port and uproto == proto:
                        return True
            elif (ip, proto, port) in used or ("0.0.0.0", proto, port) in used:
                return True
        return False

    def __repr__(self) -> str:
        return f"NodeInfo({self.name}, cpu={self.req_cpu}/{self.alloc_cpu}, pods={len(self.pods)})"


class PodCounter:
    """Per-node counts of pods matching ``pred`` (kept current by the cache)."""

    __slots__ = ("pred", "counts", "used")

    def __init__(self, pred: Callable[[PodInfo], bool]) -> None:
        self.pred = pred
        self.counts: dict[str, int] = {}
        self.used = time.monotonic()

    def change(self, node: str, delta: int) -> None:
        n = self.counts.get(node, 0) + delta
        if n > 0:
            self.counts[node] = n
        else:
            self.counts.pop(node, None)


class Cache:
    """Nodes and the pods on them (bound or assumed)."""

    COUNTER_TTL = 600.0

    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.node_list: list[NodeInfo] = []  # existing nodes, stable order
        self.rkeys: list[str] = []  # node_list[i].rkey, kept aligned
        self.pods: dict[str, tuple[PodInfo, str]] = {}  # uid -> (pod, node)
        self.assumed: dict[str, float] = {}  # uid -> when assumed
        self.bound: set[str] = set()  # assumed uids whose binding call finished
        self.generation = 0  # bumps on any node set / static change
        self.counters: dict[Any, PodCounter] = {}
        self.anti_affinity_pods: dict[str, PodInfo] = {}  # uid -> pods with required anti
        self.affinity_pods: dict[str, PodInfo] = {}  # uid -> pods with terms other pods score
        self.topology: dict[str, dict[str, list[NodeInfo]]] = {}  # lazily built per key
        # static signature -> (generation, nodes passing the static filters)
        self.static_lists: dict[bytes, tuple[int, list[NodeInfo]]] = {}
        self._pns = (-1, False)

    # ---- nodes ---------------------------------------------------------------

    def set_node(self, node: Obj) -> bool:
        """Add or update; returns whether anything the filters read changed."""
        name = (node.get("metadata") or {}).get("name") or ""
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        was = ni.exists
        before = (ni.alloc_cpu, ni.alloc_mem, ni.alloc_eph, ni.alloc_pods, ni.alloc_scalar)
        static = ni.set_node(node)
        if not was:
            ni.index = len(self.node_list)
            self.node_list.append(ni)
            self.rkeys.append(ni.rkey)
        else:
            self.rkeys[ni.index] = ni.rkey
        if static:
            self.generation += 1
            self.topology.clear()
        after = (ni.alloc_cpu, ni.alloc_mem, ni.alloc_eph, ni.alloc_pods, ni.alloc_scalar)
        return static or before != after

    def remove_node(self, name: str) -> None:
        ni = self.nodes.get(name)
        if ni is None:
            return
        if ni.exists:
            self.node_list.remove(ni)
            for i, n in enumerate(self.node_list):
                n.index = i
            self.rkeys = [n.rkey for n in self.node_list]
        ni.exists = False
        ni.index = -1
        self.generation += 1
        self.topology.clear()
        if not ni.pods:
            del self.nodes[name]

    def _node(self, name: str) -> NodeInfo:
        ni = self.nodes.get(name)
        if ni is None:
            ni = self.nodes[name] = NodeInfo(name)
        return ni

    def has_prefer_no_schedule(self) -> bool:
        """Whether any node has a PreferNoSchedule taint (else TaintToleration's score is
        the same everywhere)."""
        if self._pns[0] != self.generation:
            found = any(t.effect == "PreferNoSchedule" for ni in self.node_list for t in ni.taints)
            self._pns = (self.generation, found)
        return self._pns[1]

    def domains(self, key: str) -> dict[str, list[NodeInfo]]:
        """Topology value -> existing nodes carrying label ``key``."""
        d = self.topology.get(key)
        if d is None:
            d = {}
            for ni in self.node_list:
                v = ni.labels.get(key)
                if v is not None:
                    d.setdefault(v, []).append(ni)
            self.topology[key] = d
        return d

    # ---- pods ----------------------------------------------------------------

    def _place(self, p: PodInfo, node: str) -> None:
        self.pods[p.uid] = (p, node)
        ni = self._node(node)
        ni.add(p)
        if ni.index >= 0:
            self.rkeys[ni.index] = ni.rkey
        if p.anti_req:
            self.anti_affinity_pods[p.uid] = p
        if p.aff_req or p.aff_pref or p.anti_pref:
            self.affinity_pods[p.uid] = p
        for c in self.counters.values():
            if c.pred(p):
                c.change(node, 1)

    def _unplace(self, uid: str) -> tuple[PodInfo, str] | None:
        entry = self.pods.pop(uid, None)
        if entry is None:
            return None
        p, node = entry
        ni = self.nodes.get(node)
        if ni is not None:
            ni.add(p, -1)
            if ni.index >= 0:
                self.rkeys[ni.index] = ni.rkey
            if not ni.exists and not ni.pods:
                del self.nodes[node]
        self.anti_affinity_pods.pop(uid, None)
        self.affinity_pods.pop(uid, None)
        for c in self.counters.values():
            if c.pred(p):
                c.change(node, -1)
        return entry

    def assume(self, p: PodInfo, node: str) -> None:
        self._unplace(p.uid)
        self._place(p, node)
        self.assumed[p.uid] = time.monotonic()

    def finish_binding(self, uid: str) -> None:
        if uid in self.assumed:
            self.bound.add(uid)

    def forget(self, uid: str) -> None:
        """Undo an assumption (the binding failed)."""
        if self.assumed.pop(uid, None) is not None:
            self.bound.discard(uid)
            self._unplace(uid)

    def is_assumed(self, uid: str) -> bool:
        return uid in self.assumed

    def add_pod(self, p: PodInfo) -> None:
        """A bound pod seen from the informer (added or updated); confirms an assumption."""
        self.assumed.pop(p.uid, None)
        self.bound.discard(p.uid)
        self._unplace(p.uid)
        self._place(p, p.node_name)

    def remove_pod(self, uid: str) -> PodInfo | None:
        self.assumed.pop(uid, None)
        self.bound.discard(uid)
        entry = self._unplace(uid)
        return entry[0] if entry else None

    def pod_node(self, uid: str) -> str | None:
        entry = self.pods.get(uid)
        return entry[1] if entry else None

    # ---- counters --------------------------------------------------------------

    def counter(self, key: Any, pred: Callable[[PodInfo], bool]) -> PodCounter:
        """The table for ``key`` (built from every pod on first use)."""
        c = self.counters.get(key)
        if c is None:
            c = PodCounter(pred)
            for p, node in self.pods.values():
                if pred(p):
                    c.change(node, 1)
            self.counters[key] = c
        c.used = time.monotonic()
        return c

    def drop_idle_counters(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in [k for k, c in self.counters.items() if now - c.used > self.COUNTER_TTL]:
            del self.counters[key]
