"""Filter and score plugins (upstream's default profile), over ``NodeInfo``/``PodInfo``.

Filters return ``None`` (fits) or a ``Status``: the plugin, its reasons (the strings
upstream prints in "0/3 nodes are available: ...") and whether preemption could help
(``Unschedulable``) or not (``UnschedulableAndUnresolvable``).  They run in upstream's
order and a node's first failure is its status.

The *static* filters (NodeUnschedulable, NodeName, TaintToleration, NodeAffinity) depend
only on the node's labels/taints/cordon and on the pod's nodeSelector, affinity and
tolerations; their result is cached per node under the pod's ``static_sig`` until the
node's labels, taints or cordon change.

Pod-level pre-computations (upstream's PreFilter/PreScore state) for inter-pod affinity
and topology spreading live in ``InterPodState`` and ``SpreadState``; they read per-node
match counts from the cache's ``PodCounter`` tables instead of walking every pod.
"""

from __future__ import annotations

import math
from typing import Any

from k3py.apimachinery.selectors import Selector
from k3py.server.scheduler.cache import Cache, NodeInfo
from k3py.server.scheduler.podinfo import (
    HOSTNAME,
    AffinityTerm,
    PodInfo,
    SpreadConstraint,
    tolerated,
)

MAX_SCORE = 100
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

# filter reasons (upstream's strings)
R_UNSCHEDULABLE = "node(s) were unschedulable"
R_NODE_NAME = "node(s) didn't match the requested node name"
R_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
R_PORTS = "node(s) didn't have free ports for the requested pod ports"
R_TOO_MANY_PODS = "Too many pods"
R_POD_AFFINITY = "node(s) didn't match pod affinity rules"
R_POD_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
R_EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"
R_SPREAD = "node(s) didn't match pod topology spread constraints"
R_SPREAD_LABEL = "node(s) didn't match pod topology spread constraints (missing required label)"


class Status:
    __slots__ = ("plugin", "reasons", "unresolvable")

    def __init__(self, plugin: str, reasons: tuple[str, ...], *, unresolvable: bool) -> None:
        self.plugin = plugin
        self.reasons = reasons
        self.unresolvable = unresolvable

    def __repr__(self) -> str:
        return f"Status({self.plugin}, {self.reasons}, unresolvable={self.unresolvable})"


_S_UNSCHED = Status("NodeUnschedulable", (R_UNSCHEDULABLE,), unresolvable=True)
_S_NODE_NAME = Status("NodeName", (R_NODE_NAME,), unresolvable=True)
_S_AFFINITY = Status("NodeAffinity", (R_AFFINITY,), unresolvable=True)
_S_PORTS = Status("NodePorts", (R_PORTS,), unresolvable=False)
_S_POD_AFF = Status("InterPodAffinity", (R_POD_AFFINITY,), unresolvable=True)
_S_POD_ANTI = Status("InterPodAffinity", (R_POD_ANTI_AFFINITY,), unresolvable=False)
_S_EXISTING_ANTI = Status("InterPodAffinity", (R_EXISTING_ANTI,), unresolvable=False)
_S_SPREAD = Status("PodTopologySpread", (R_SPREAD,), unresolvable=False)
_S_SPREAD_LABEL = Status("PodTopologySpread", (R_SPREAD_LABEL,), unresolvable=True)
_OK = object()


# ---- static filters ---------------------------------------------------------------------


def node_affinity_ok(ni: NodeInfo, p: PodInfo) -> bool:
    labels = ni.labels
    for k, v in p.node_selector.items():
        if labels.get(k) != v:
            return False
    terms = p.req_node_terms
    if terms is None:
        return True
    name = ni.name
    for t in terms:
        if t.matches(labels, name):
            return True
    return False


def untolerated_taint(ni: NodeInfo, p: PodInfo, *, effects: tuple[str, ...]) -> Any:
    for t in ni.taints:
        if t.effect in effects and not tolerated(p.tolerations, t.key, t.value, t.effect):
            return t
    return None


_HARD_EFFECTS = ("NoSchedule", "NoExecute")


def static_filter(ni: NodeInfo, p: PodInfo) -> Status | None:
    """NodeUnschedulable, NodeName, TaintToleration, NodeAffinity (cached per node)."""
    cached = ni.static_cache.get(p.static_sig)
    if cached is not None:
        return None if cached is _OK else cached  # type: ignore[no-any-return]
    st = _static(ni, p)
    ni.static_cache[p.static_sig] = _OK if st is None else st
    return st


def _static(ni: NodeInfo, p: PodInfo) -> Status | None:
    if ni.unschedulable and not tolerated(p.tolerations, UNSCHEDULABLE_TAINT, "", "NoSchedule"):
        return _S_UNSCHED
    if p.node_name and p.node_name != ni.name:
        return _S_NODE_NAME
    t = untolerated_taint(ni, p, effects=_HARD_EFFECTS)
    if t is not None:
        reason = f"node(s) had untolerated taint {{{t.key}: {t.value}}}"
        return Status("TaintToleration", (reason,), unresolvable=True)
    if not node_affinity_ok(ni, p):
        return _S_AFFINITY
    return None


# ---- resources and ports --------------------------------------------------------------------


def insufficient(ni: NodeInfo, p: PodInfo, extra: Any = None) -> tuple[str, ...]:
    """NodeResourcesFit's reasons (empty: fits).  ``extra`` is what nominated pods of at
    least this priority already claim on the node: (cpu, mem, eph, pods, scalar)."""
    ecpu = emem = eeph = epods = 0
    escalar: dict[str, int] = {}
    if extra is not None:
        ecpu, emem, eeph, epods, escalar = extra
    out: list[str] = []
    if len(ni.pods) + epods + 1 > ni.alloc_pods:
        out.append(R_TOO_MANY_PODS)
    if not (p.cpu or p.mem or p.eph or p.scalar):
        return tuple(out)
    if p.cpu and p.cpu > ni.alloc_cpu - ni.req_cpu - ecpu:
        out.append("Insufficient cpu")
    if p.mem and p.mem > ni.alloc_mem - ni.req_mem - emem:
        out.append("Insufficient memory")
    if p.eph and p.eph > ni.alloc_eph - ni.req_eph - eeph:
        out.append("Insufficient ephemeral-storage")
    for name, want in p.scalar.items():
        free = ni.alloc_scalar.get(name, 0) - ni.req_scalar.get(name, 0) - escalar.get(name, 0)
        if want > free:
            out.append(f"Insufficient {name}")
    return tuple(out)


def ports_filter(ni: NodeInfo, p: PodInfo) -> Status | None:
    if p.ports and ni.port_conflict(p.ports):
        return _S_PORTS
    return None


# ---- inter-pod affinity ----------------------------------------------------------------------

Pair = tuple[str, str]


def _term_counter(cache: Cache, term: AffinityTerm, ns_labels: dict[str, dict[str, str]]) -> Any:
    return cache.counter(("term", term.sig), lambda p: term.matches(p, ns_labels))


def _pairs_from_counts(
    cache: Cache, counts: dict[str, int], key: str, into: dict[Pair, int], *, weight: int = 1
) -> None:
    for node, n in counts.items():
        ni = cache.nodes.get(node)
        if ni is None or not ni.exists:
            continue
        v = ni.labels.get(key)
        if v is not None:
            pair = (key, v)
            into[pair] = into.get(pair, 0) + n * weight


class InterPodState:
    """InterPodAffinity's PreFilter state (None when the plugin has nothing to check)."""

    __slots__ = ("pod", "affinity", "anti", "existing", "self_match")

    def __init__(self, cache: Cache, p: PodInfo, ns_labels: dict[str, dict[str, str]]) -> None:
        self.pod = p
        self.affinity: dict[Pair, int] = {}
        self.anti: dict[Pair, int] = {}
        self.existing: dict[Pair, int] = {}
        if p.aff_req:
            terms = p.aff_req
            key = ("allterms", tuple(t.sig for t in terms))
            c = cache.counter(key, lambda q: all(t.matches(q, ns_labels) for t in terms))
            for t in terms:
                _pairs_from_counts(cache, c.counts, t.topology_key, self.affinity)
        for t in p.anti_req:
            _pairs_from_counts(
                cache, _term_counter(cache, t, ns_labels).counts, t.topology_key, self.anti
            )
        for q in cache.anti_affinity_pods.values():
            node = cache.pod_node(q.uid)
            ni = cache.nodes.get(node or "")
            if ni is None or not ni.exists:
                continue
            for t in q.anti_req:
                if t.matches(p, ns_labels):
                    v = ni.labels.get(t.topology_key)
                    if v is not None:
                        pair = (t.topology_key, v)
                        self.existing[pair] = self.existing.get(pair, 0) + 1
        self.self_match = all(t.matches(p, ns_labels) for t in p.aff_req)

    @staticmethod
    def needed(cache: Cache, p: PodInfo) -> bool:
        return bool(p.aff_req or p.anti_req or cache.anti_affinity_pods)

    def filter(self, ni: NodeInfo) -> Status | None:
        labels = ni.labels
        p = self.pod
        if p.aff_req:
            exist = True
            for t in p.aff_req:
                v = labels.get(t.topology_key)
                if v is None:
                    return _S_POD_AFF
                if self.affinity.get((t.topology_key, v), 0) <= 0:
                    exist = False
            if not exist and not (not self.affinity and self.self_match):
                return _S_POD_AFF
        if self.anti:
            for t in p.anti_req:
                v = labels.get(t.topology_key)
                if v is not None and self.anti.get((t.topology_key, v), 0) > 0:
                    return _S_POD_ANTI
        if self.existing:
            for k, v in labels.items():
                if self.existing.get((k, v), 0) > 0:
                    return _S_EXISTING_ANTI
        return None


# ---- topology spread (filter) -------------------------------------------------------------------


def _spread_counter(cache: Cache, c: SpreadConstraint, ns: str) -> Any:
    sel = c.selector
    return cache.counter(
        ("spread", ns, c.sig),
        lambda q: q.namespace == ns and not q.deleting and sel.matches(q.labels),
    )


def _node_included(ni: NodeInfo, p: PodInfo, c: SpreadConstraint) -> bool:
    if c.honor_affinity and not node_affinity_ok(ni, p):
        return False
    if c.honor_taints and untolerated_taint(ni, p, effects=_HARD_EFFECTS) is not None:
        return False
    return True


class SpreadFilterState:
    """PodTopologySpread's PreFilter state for DoNotSchedule constraints."""

    __slots__ = ("pod", "constraints", "pair_counts", "min_counts", "domains", "self_match")

    def __init__(self, cache: Cache, p: PodInfo) -> None:
        self.pod = p
        self.constraints = [c for c in p.spread if c.hard]
        self.pair_counts: dict[Pair, int] = {}
        keys = [c.topology_key for c in self.constraints]
        counters = [_spread_counter(cache, c, p.namespace) for c in self.constraints]
        for ni in cache.node_list:
            labels = ni.labels
            if any(k not in labels for k in keys):
                continue
            for c, counter in zip(self.constraints, counters, strict=True):
                if not _node_included(ni, p, c):
                    continue
                pair = (c.topology_key, labels[c.topology_key])
                self.pair_counts[pair] = self.pair_counts.get(pair, 0) + counter.counts.get(
                    ni.name, 0
                )
        self.min_counts: dict[str, int] = {}
        self.domains: dict[str, int] = {}
        for (k, _v), n in self.pair_counts.items():
            self.domains[k] = self.domains.get(k, 0) + 1
            if k not in self.min_counts or n < self.min_counts[k]:
                self.min_counts[k] = n
        self.self_match = [c.selector.matches(p.labels) for c in self.constraints]

    def filter(self, ni: NodeInfo) -> Status | None:
        labels = ni.labels
        for c, me in zip(self.constraints, self.self_match, strict=True):
            k = c.topology_key
            v = labels.get(k)
            if v is None:
                return _S_SPREAD_LABEL
            lowest = self.min_counts.get(k, 0)
            if self.domains.get(k, 0) < c.min_domains:
                lowest = 0
            skew = self.pair_counts.get((k, v), 0) + (1 if me else 0) - lowest
            if skew > c.max_skew:
                return _S_SPREAD
        return None


# ---- scores ---------------------------------------------------------------------------------------


def least_allocated(ni: NodeInfo, p: PodInfo) -> int:
    total = 0
    n = 0
    if ni.alloc_cpu:
        req = ni.nz_cpu + p.nz_cpu
        total += 0 if req > ni.alloc_cpu else (ni.alloc_cpu - req) * MAX_SCORE // ni.alloc_cpu
        n += 1
    if ni.alloc_mem:
        req = ni.nz_mem + p.nz_mem
        total += 0 if req > ni.alloc_mem else (ni.alloc_mem - req) * MAX_SCORE // ni.alloc_mem
        n += 1
    return total // n if n else 0


def balanced_allocation(ni: NodeInfo, p: PodInfo) -> int:
    fr: list[float] = []
    if ni.alloc_cpu:
        fr.append(min(1.0, (ni.req_cpu + p.cpu) / ni.alloc_cpu))
    if ni.alloc_mem:
        fr.append(min(1.0, (ni.req_mem + p.mem) / ni.alloc_mem))
    if len(fr) == 2:
        std = abs(fr[0] - fr[1]) / 2
    else:
        std = 0.0
    return int((1 - std) * MAX_SCORE)


def default_normalize(scores: list[int], *, reverse: bool) -> list[int]:
    top = max(scores) if scores else 0
    if top == 0:
        return [MAX_SCORE if reverse else 0 for _ in scores]
    out = [MAX_SCORE * s // top for s in scores]
    return [MAX_SCORE - s for s in out] if reverse else out


def node_affinity_scores(nodes: list[NodeInfo], p: PodInfo) -> list[int]:
    raw = []
    for ni in nodes:
        s = 0
        for w, term in p.pref_node_terms:
            if term.matches(ni.labels, ni.name):
                s += w
        raw.append(s)
    return default_normalize(raw, reverse=False)


def taint_scores(nodes: list[NodeInfo], p: PodInfo) -> list[int]:
    raw = []
    for ni in nodes:
        n = 0
        for t in ni.taints:
            if t.effect == "PreferNoSchedule" and not tolerated(
                tuple(x for x in p.tolerations if x.effect in ("", "PreferNoSchedule")),
                t.key, t.value, t.effect,
            ):  # fmt: skip
                n += 1
        raw.append(n)
    return default_normalize(raw, reverse=True)


def interpod_scores(
    cache: Cache, nodes: list[NodeInfo], p: PodInfo, ns_labels: dict[str, dict[str, str]]
) -> list[int] | None:
    """InterPodAffinity's score (None: skipped, as upstream's PreScore Skip)."""
    topo: dict[Pair, int] = {}
    for t in p.aff_pref:
        _pairs_from_counts(
            cache, _term_counter(cache, t, ns_labels).counts, t.topology_key, topo,
            weight=t.weight,
        )  # fmt: skip
    for t in p.anti_pref:
        _pairs_from_counts(
            cache, _term_counter(cache, t, ns_labels).counts, t.topology_key, topo,
            weight=-t.weight,
        )  # fmt: skip
    for q in cache.affinity_pods.values():
        ni = cache.nodes.get(cache.pod_node(q.uid) or "")
        if ni is None or not ni.exists or not ni.labels:
            continue
        for terms, w_fixed, sign in (
            (q.aff_req, 1, 1), (q.aff_pref, 0, 1), (q.anti_pref, 0, -1)
        ):  # fmt: skip
            for t in terms:
                if t.matches(p, ns_labels):
                    v = ni.labels.get(t.topology_key)
                    if v is not None:
                        pair = (t.topology_key, v)
                        topo[pair] = topo.get(pair, 0) + sign * (w_fixed or t.weight)
    if not any(topo.values()):
        return None
    raw = []
    for ni in nodes:
        s = 0
        for (k, v), n in topo.items():
            if ni.labels.get(k) == v:
                s += n
        raw.append(s)
    lo, hi = min(raw), max(raw)
    if hi - lo <= 0:
        return [0] * len(raw)
    return [int(MAX_SCORE * (s - lo) / (hi - lo)) for s in raw]


def spread_scores(
    cache: Cache,
    nodes: list[NodeInfo],
    p: PodInfo,
    constraints: list[SpreadConstraint],
    *,
    system: bool,
) -> list[int] | None:
    """PodTopologySpread's ScheduleAnyway score (upstream's scoring.go)."""
    if not constraints or not nodes:
        return None
    require_all = not system
    keys = [c.topology_key for c in constraints]
    ignored: set[str] = set()
    pair_counts: dict[Pair, int] = {}
    topo_size = [0] * len(constraints)
    for ni in nodes:
        if require_all and any(k not in ni.labels for k in keys):
            ignored.add(ni.name)
            continue
        for i, c in enumerate(constraints):
            if c.topology_key == HOSTNAME:
                continue
            pair = (c.topology_key, ni.labels.get(c.topology_key, ""))
            if pair not in pair_counts:
                pair_counts[pair] = 0
                topo_size[i] += 1
    weights = []
    for i, c in enumerate(constraints):
        sz = topo_size[i]
        if c.topology_key == HOSTNAME:
            sz = len(nodes) - len(ignored)
        weights.append(math.log(sz + 2))
    counters = [_spread_counter(cache, c, p.namespace) for c in constraints]
    for i, c in enumerate(constraints):
        if c.topology_key == HOSTNAME:
            continue
        for node, n in counters[i].counts.items():
            other = cache.nodes.get(node)
            if other is None or not other.exists:
                continue
            ni = other
            if require_all and any(k not in ni.labels for k in keys):
                continue
            if not _node_included(ni, p, c):
                continue
            pair = (c.topology_key, ni.labels.get(c.topology_key, ""))
            if pair in pair_counts:
                pair_counts[pair] += n
    raw: list[int] = []
    for ni in nodes:
        if ni.name in ignored:
            raw.append(0)
            continue
        s = 0.0
        for i, c in enumerate(constraints):
            v = ni.labels.get(c.topology_key)
            if v is None:
                continue
            if c.topology_key == HOSTNAME:
                cnt = counters[i].counts.get(ni.name, 0)
            else:
                cnt = pair_counts.get((c.topology_key, v), 0)
            s += cnt * weights[i] + (c.max_skew - 1)
        raw.append(int(math.floor(s + 0.5)))
    considered = [s for ni, s in zip(nodes, raw, strict=True) if ni.name not in ignored]
    lo = min(considered) if considered else 0
    hi = max(considered) if considered else 0
    out = []
    for ni, s in zip(nodes, raw, strict=True):
        if ni.name in ignored:
            out.append(0)
        elif hi == 0:
            out.append(MAX_SCORE)
        else:
            out.append(MAX_SCORE * (hi + lo - s) // hi)
    return out


def system_spread_constraints(selector: Selector, sig: bytes) -> list[SpreadConstraint]:
    from k3py.server.scheduler.podinfo import ZONE, SystemSpread

    return [
        SystemSpread(key=HOSTNAME, max_skew=3, selector=selector, sig=sig),
        SystemSpread(key=ZONE, max_skew=5, selector=selector, sig=sig),
    ]
