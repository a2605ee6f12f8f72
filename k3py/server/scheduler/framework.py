"""One scheduling decision (upstream's ``schedulePod``): filter, score, select.

Filtering walks the node list from a rotating start index and stops once it has found
``feasible_nodes_to_find`` nodes (upstream's adaptive percentageOfNodesToScore: 50 % -
nodes/125, at least 5 % and at least 100 nodes), so a thousand nodes are not all scored;
when no node fits, every node has been looked at and the per-node statuses make the
"0/N nodes are available: ..." message.  The common pod (requests only, no affinity, no
spreading, no host ports) takes a fast path of integer comparisons per node.

Scores are upstream's default plugins and weights: NodeResourcesFit (LeastAllocated) 1,
NodeResourcesBalancedAllocation 1, NodeAffinity 2, TaintToleration 3, PodTopologySpread 2
(with the system default constraints — hostname maxSkew 3, zone maxSkew 5 — over the
selectors of the pod's Services/ReplicaSet/StatefulSet/ReplicationController when it has
no constraints of its own), InterPodAffinity 2.  Plugins with nothing to say (upstream's
PreScore Skip, or a constant score) are not computed.  Ties are broken at random.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from itertools import compress
from typing import Any

from k3py.apimachinery.selectors import Selector
from k3py.server.scheduler import plugins as pl
from k3py.server.scheduler.cache import Cache, NodeInfo
from k3py.server.scheduler.podinfo import PodInfo

NO_NODES = "no nodes available to schedule pods"


def feasible_nodes_to_find(num_nodes: int, percentage: int = 0) -> int:
    """Upstream's ``numFeasibleNodesToFind`` with the default (adaptive) percentage."""
    if num_nodes < 100 or percentage >= 100:
        return num_nodes
    pct = percentage
    if pct <= 0:
        pct = max(5, 50 - num_nodes // 125)
    num = num_nodes * pct // 100
    return max(num, 100)


class FitError(Exception):
    """No node fits: the per-node statuses for the message and for preemption."""

    def __init__(
        self, pod: PodInfo, *, num_nodes: int, statuses: dict[str, pl.Status], prefilter: str = ""
    ) -> None:
        super().__init__(pod.key)
        self.pod = pod
        self.num_nodes = num_nodes
        self.statuses = statuses
        self.prefilter = prefilter
        self.post_filter = ""

    @property
    def plugins(self) -> frozenset[str]:
        return frozenset(s.plugin for s in self.statuses.values())

    def message(self) -> str:
        if self.num_nodes == 0 and not self.statuses:
            return NO_NODES
        return fit_message(
            num_nodes=self.num_nodes, statuses=self.statuses.values(),
            prefilter=self.prefilter, post_filter=self.post_filter,
        )  # fmt: skip


def reason_histogram(statuses: Any) -> str:
    counts: dict[str, int] = {}
    for st in statuses:
        for r in st.reasons:
            counts[r] = counts.get(r, 0) + 1
    return ", ".join(sorted(f"{n} {r}" for r, n in counts.items()))


def fit_message(
    *, num_nodes: int, statuses: Any, prefilter: str = "", post_filter: str = ""
) -> str:
    """Upstream's ``FitError.Error()``."""
    msg = f"0/{num_nodes} nodes are available:"
    if prefilter:
        msg += f" {prefilter}."
    else:
        hist = reason_histogram(statuses)
        if hist:
            msg += f" {hist}."
    if post_filter:
        msg += f" {post_filter}."
    return msg


class Extra:
    """What nominated pods of at least the incoming pod's priority claim per node."""

    @staticmethod
    def of(pods: list[PodInfo]) -> tuple[int, int, int, int, dict[str, int]]:
        cpu = mem = eph = 0
        scalar: dict[str, int] = {}
        for q in pods:
            cpu += q.cpu
            mem += q.mem
            eph += q.eph
            for k, v in q.scalar.items():
                scalar[k] = scalar.get(k, 0) + v
        return cpu, mem, eph, len(pods), scalar


DefaultSelector = Callable[[PodInfo], tuple[Selector, bytes] | None]


class Algorithm:
    def __init__(
        self,
        cache: Cache,
        *,
        ns_labels: dict[str, dict[str, str]],
        default_selector: DefaultSelector | None = None,
        rng: random.Random | None = None,
        percentage: int = 0,
    ) -> None:
        self.cache = cache
        self.ns_labels = ns_labels
        self.default_selector = default_selector
        self.rng = rng or random.Random()
        self.percentage = percentage
        self.next_start = 0
        # uid -> (node, pod) for pods nominated to a node by preemption
        self.nominated: dict[str, tuple[str, PodInfo]] = {}

    # ---- nominated pods --------------------------------------------------------------

    def nominate(self, p: PodInfo, node: str) -> None:
        self.nominated[p.uid] = (node, p)

    def unnominate(self, uid: str) -> None:
        self.nominated.pop(uid, None)

    def _extra(self, p: PodInfo) -> dict[str, Any]:
        per: dict[str, list[PodInfo]] = {}
        for uid, (node, q) in self.nominated.items():
            if uid != p.uid and q.priority >= p.priority:
                per.setdefault(node, []).append(q)
        return {node: Extra.of(qs) for node, qs in per.items()}

    # ---- filtering -----------------------------------------------------------------------

    def filter_node(
        self,
        ni: NodeInfo,
        p: PodInfo,
        *,
        extra: Any = None,
        ipa: pl.InterPodState | None = None,
        spf: pl.SpreadFilterState | None = None,
    ) -> pl.Status | None:
        """All filters on one node, in upstream's order; the first failure."""
        st = pl.static_filter(ni, p)
        if st is not None:
            return st
        st = pl.ports_filter(ni, p)
        if st is not None:
            return st
        reasons = pl.insufficient(ni, p, extra)
        if reasons:
            return pl.Status("NodeResourcesFit", reasons, unresolvable=False)
        if spf is not None:
            st = spf.filter(ni)
            if st is not None:
                return st
        if ipa is not None:
            st = ipa.filter(ni)
            if st is not None:
                return st
        return None

    def prefilter(self, p: PodInfo) -> tuple[pl.InterPodState | None, pl.SpreadFilterState | None]:
        ipa = pl.InterPodState(self.cache, p, self.ns_labels) if pl.InterPodState.needed(
            self.cache, p
        ) else None  # fmt: skip
        spf = pl.SpreadFilterState(self.cache, p) if any(c.hard for c in p.spread) else None
        return ipa, spf

    def static_feasible(self, p: PodInfo) -> list[NodeInfo]:
        """Nodes passing the static filters for the pod's signature (kept until a node's
        labels, taints or cordon change, or a node comes or goes)."""
        cache = self.cache
        entry = cache.static_lists.get(p.static_sig)
        if entry is not None and entry[0] == cache.generation:
            return entry[1]
        if len(cache.static_lists) > 2000:
            cache.static_lists.clear()
        nodes = [ni for ni in cache.node_list if pl.static_filter(ni, p) is None]
        cache.static_lists[p.static_sig] = (cache.generation, nodes)
        return nodes

    def find_feasible(self, p: PodInfo) -> tuple[list[NodeInfo], dict[str, pl.Status]]:
        """Feasible nodes (stopping at enough of them) and the statuses of the nodes that
        failed (every node's, when none is feasible)."""
        want = feasible_nodes_to_find(len(self.cache.node_list), self.percentage)
        nodes = self.static_feasible(p)
        n = len(nodes)
        extra = self._extra(p) if self.nominated else {}
        ipa, spf = self.prefilter(p)
        statuses: dict[str, pl.Status] = {}
        feasible: list[NodeInfo] = []
        start = self.next_start % n if n else 0
        order = nodes[start:] + nodes[:start] if start else nodes
        cpu, mem, eph = p.cpu, p.mem, p.eph
        processed = 0
        if not (extra or ipa or spf or p.ports or p.scalar):
            fits: dict[str, bool] = {}
            for ni in order:
                processed += 1
                k = ni.rkey
                fit = fits.get(k)
                if fit is None:
                    fit = fits[k] = not (
                        len(ni.pods) >= ni.alloc_pods
                        or (cpu and cpu > ni.alloc_cpu - ni.req_cpu)
                        or (mem and mem > ni.alloc_mem - ni.req_mem)
                        or (eph and eph > ni.alloc_eph - ni.req_eph)
                    )
                if not fit:
                    statuses[ni.name] = pl.Status(
                        "NodeResourcesFit", pl.insufficient(ni, p), unresolvable=False
                    )
                    continue
                feasible.append(ni)
                if len(feasible) >= want:
                    break
        else:
            for ni in order:
                processed += 1
                st = self._dynamic(ni, p, extra=extra.get(ni.name), ipa=ipa, spf=spf)
                if st is not None:
                    statuses[ni.name] = st
                    continue
                feasible.append(ni)
                if len(feasible) >= want:
                    break
        if n:
            self.next_start = (start + processed) % n
        if not feasible and len(nodes) < len(self.cache.node_list):
            for ni in self.cache.node_list:
                st = pl.static_filter(ni, p)
                if st is not None:
                    statuses[ni.name] = st
        return feasible, statuses

    def _dynamic(
        self,
        ni: NodeInfo,
        p: PodInfo,
        *,
        extra: Any,
        ipa: pl.InterPodState | None,
        spf: pl.SpreadFilterState | None,
    ) -> pl.Status | None:
        st = pl.ports_filter(ni, p)
        if st is not None:
            return st
        reasons = pl.insufficient(ni, p, extra)
        if reasons:
            return pl.Status("NodeResourcesFit", reasons, unresolvable=False)
        if spf is not None:
            st = spf.filter(ni)
            if st is not None:
                return st
        if ipa is not None:
            st = ipa.filter(ni)
            if st is not None:
                return st
        return None

    # ---- the decision ------------------------------------------------------------------------

    def schedule(self, p: PodInfo) -> tuple[str, int, int]:
        """(node, nodes evaluated, feasible nodes) or raise ``FitError``."""
        nodes = self.cache.node_list
        if not nodes:
            raise FitError(p, num_nodes=0, statuses={})
        if p.nominated:
            ni = self.cache.nodes.get(p.nominated)
            if ni is not None and ni.exists:
                ipa, spf = self.prefilter(p)
                extra = self._extra(p).get(ni.name) if self.nominated else None
                if self.filter_node(ni, p, extra=extra, ipa=ipa, spf=spf) is None:
                    return ni.name, 1, 1
        if self._plain(p):
            found = self._schedule_plain(p)
            if found is not None:
                return found
        feasible, statuses = self.find_feasible(p)
        evaluated = len(feasible) + len(statuses)
        if not feasible:
            raise FitError(p, num_nodes=len(nodes), statuses=statuses)
        if len(feasible) == 1:
            return feasible[0].name, evaluated, 1
        scores = self.score(p, feasible)
        return self._select(feasible, scores).name, evaluated, len(feasible)

    def _plain(self, p: PodInfo) -> bool:
        """Only resources matter for this pod's filters and scores (the fused path)."""
        cache = self.cache
        return not (
            p.ports or p.scalar or p.spread or p.pref_node_terms or p.aff_req or p.anti_req
            or p.aff_pref or p.anti_pref or cache.anti_affinity_pods or cache.affinity_pods
            or self.nominated or cache.has_prefer_no_schedule()
            or (self.default_selector is not None and self.default_selector(p) is not None)
        )  # fmt: skip

    def _schedule_plain(self, p: PodInfo) -> tuple[str, int, int] | None:
        """Filter and score in one pass, memoized per node resource state; None when no
        node fits (the caller then builds the statuses)."""
        want = feasible_nodes_to_find(len(self.cache.node_list), self.percentage)
        nodes = self.static_feasible(p)
        n = len(nodes)
        if not n:
            return None
        start = self.next_start % n
        cpu, mem, eph = p.cpu, p.mem, p.eph
        least, balanced = pl.least_allocated, pl.balanced_allocation

        def fit_score(ni: NodeInfo) -> int:
            if (
                len(ni.pods) >= ni.alloc_pods
                or (cpu and cpu > ni.alloc_cpu - ni.req_cpu)
                or (mem and mem > ni.alloc_mem - ni.req_mem)
                or (eph and eph > ni.alloc_eph - ni.req_eph)
            ):
                return -1
            return least(ni, p) + balanced(ni, p)

        # Usually every node passes the static filters and every node of the window fits:
        # then the window is simply the next ``want`` nodes, and one score per distinct
        # resource state decides (a scan of interned keys, not of the nodes).
        if n == len(self.cache.node_list):
            found_plain = self._plain_window(p, start=start, want=want, fit_score=fit_score)
            if found_plain is not None:
                return found_plain
        order = nodes[start:] + nodes[:start] if start else nodes
        memo: dict[str, int] = {}
        best = -1
        ties = []
        found = processed = 0
        for ni in order:
            processed += 1
            s = memo.get(ni.rkey)
            if s is None:
                s = memo[ni.rkey] = fit_score(ni)
            if s < 0:
                continue
            found += 1
            if s > best:
                best = s
                ties = [ni]
            elif s == best:
                ties.append(ni)
            if found >= want:
                break
        if not found:
            return None
        self.next_start = (start + processed) % n
        pick = ties[0] if len(ties) == 1 else ties[self.rng.randrange(len(ties))]
        return pick.name, processed, found

    def _plain_window(
        self, p: PodInfo, *, start: int, want: int, fit_score: Callable[[NodeInfo], int]
    ) -> tuple[str, int, int] | None:
        nodes = self.cache.node_list
        rk = self.cache.rkeys
        n = len(nodes)
        keys = rk[start : start + want]
        if len(keys) < want:
            keys += rk[: min(start, want - len(keys))]
        scores: dict[str, int] = {}
        for k in set(keys):
            s = fit_score(nodes[(start + keys.index(k)) % n])
            if s < 0:
                return None
            scores[k] = s
        top = max(scores.values())
        best = {k for k, v in scores.items() if v == top}
        at = list(compress(range(len(keys)), map(best.__contains__, keys)))  # C loops only
        i = at[0] if len(at) == 1 else at[self.rng.randrange(len(at))]
        self.next_start = (start + len(keys)) % n
        return nodes[(start + i) % n].name, len(keys), len(keys)

    def score(self, p: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        memo: dict[str, int] = {}
        totals = []
        for ni in nodes:
            s = memo.get(ni.rkey)
            if s is None:
                s = memo[ni.rkey] = pl.least_allocated(ni, p) + pl.balanced_allocation(ni, p)
            totals.append(s)
        if p.pref_node_terms:
            _add(totals, pl.node_affinity_scores(nodes, p), 2)
        if any(t.effect == "PreferNoSchedule" for ni in nodes for t in ni.taints):
            _add(totals, pl.taint_scores(nodes, p), 3)
        if p.aff_pref or p.anti_pref or self.cache.affinity_pods:
            ips = pl.interpod_scores(self.cache, nodes, p, self.ns_labels)
            if ips is not None:
                _add(totals, ips, 2)
        spread = self._soft_spread(p)
        if spread is not None:
            constraints, system = spread
            sps = pl.spread_scores(self.cache, nodes, p, constraints, system=system)
            if sps is not None:
                _add(totals, sps, 2)
        return totals

    def _soft_spread(self, p: PodInfo) -> tuple[list[Any], bool] | None:
        if p.spread:
            soft = [c for c in p.spread if not c.hard]
            return (soft, False) if soft else None
        if self.default_selector is None:
            return None
        found = self.default_selector(p)
        if found is None:
            return None
        sel, sig = found
        return pl.system_spread_constraints(sel, sig), True

    def _select(self, nodes: list[NodeInfo], scores: list[int]) -> NodeInfo:
        top = max(scores)
        best = [ni for ni, s in zip(nodes, scores, strict=True) if s == top]
        return best[0] if len(best) == 1 else best[self.rng.randrange(len(best))]


def _add(totals: list[int], scores: list[int], weight: int) -> None:
    for i, s in enumerate(scores):
        totals[i] += s * weight
