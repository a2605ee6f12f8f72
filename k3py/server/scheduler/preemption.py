"""Preemption (upstream's DefaultPreemption PostFilter), the pure part.

When a pod fits nowhere, every node whose failure preemption could fix (an
``Unschedulable`` status, not ``UnschedulableAndUnresolvable``) is tried: remove all pods
of lower priority; if the pod then fits, add them back one by one, most important first
(PDB-protected ones first), keeping each that still leaves room — the rest are the
victims.  Among the candidate nodes the choice is upstream's: fewest PDB violations, then
lowest highest-victim priority, then lowest priority sum, then fewest victims, then the
latest-started highest-priority victim.  Candidates are searched from a random offset and
the search stops after max(100, 10 % of nodes) candidates, as upstream.

Known simplification: the what-if checks resources, host ports and the static filters;
inter-pod affinity and spreading are evaluated against the cluster before removal.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from k3py.apimachinery.selectors import Selector
from k3py.server.scheduler import plugins as pl
from k3py.server.scheduler.cache import Cache, NodeInfo
from k3py.server.scheduler.framework import Algorithm, FitError, fit_message
from k3py.server.scheduler.podinfo import PodInfo

NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NEVER = "not eligible due to preemptionPolicy=Never."
TERMINATING = "not eligible due to a terminating pod on the nominated node."
_OFFSET = 2**31


@dataclass
class PDB:
    namespace: str
    selector: Selector
    allowed: int
    disrupted: frozenset[str] = frozenset()


@dataclass
class Candidate:
    node: str
    victims: list[PodInfo]
    violations: int


@dataclass
class Outcome:
    node: str | None  # the nominated node, when victims were chosen
    message: str  # the post-filter message ("" on success)
    victims: list[PodInfo] = field(default_factory=list)


def _importance(q: PodInfo) -> tuple[int, str]:
    # higher priority first, then the earlier start (upstream's MoreImportantPod)
    return (-q.priority, q.started)


class Preemptor:
    def __init__(self, cache: Cache, algo: Algorithm, *, rng: random.Random | None = None) -> None:
        self.cache = cache
        self.algo = algo
        self.rng = rng or random.Random()

    def preempt(self, p: PodInfo, fe: FitError, *, pdbs: list[PDB]) -> Outcome:
        if p.preempt_never:
            return Outcome(None, NEVER)
        if p.nominated:
            ni = self.cache.nodes.get(p.nominated)
            if ni is not None and any(
                q.deleting and q.priority < p.priority for q in ni.pods.values()
            ):
                return Outcome(None, TERMINATING)
        statuses: dict[str, pl.Status] = {}
        potential: list[NodeInfo] = []
        for ni in self.cache.node_list:
            st = fe.statuses.get(ni.name)
            if st is None:
                continue
            if st.unresolvable:
                statuses[ni.name] = pl.Status(st.plugin, (NOT_HELPFUL,), unresolvable=True)
            else:
                potential.append(ni)
        candidates: list[Candidate] = []
        if potential:
            limit = max(100, len(self.cache.node_list) // 10)
            start = self.rng.randrange(len(potential))
            extra_all = self.algo._extra(p) if self.algo.nominated else {}  # noqa: SLF001
            for ni in potential[start:] + potential[:start]:
                found = self.select_victims(ni, p, pdbs=pdbs, extra=extra_all.get(ni.name))
                if isinstance(found, pl.Status):
                    statuses[ni.name] = found
                    continue
                candidates.append(found)
                if len(candidates) >= limit:
                    break
        if not candidates:
            return Outcome(None, fit_message(num_nodes=len(statuses), statuses=statuses.values()))
        best = pick_one(candidates)
        return Outcome(best.node, "", best.victims)

    def select_victims(
        self, ni: NodeInfo, p: PodInfo, *, pdbs: list[PDB], extra: Any = None
    ) -> Candidate | pl.Status:
        lower = [q for q in ni.pods.values() if q.priority < p.priority]
        if not lower:
            return pl.Status("DefaultPreemption", (NO_VICTIMS,), unresolvable=True)
        sim = ni.clone()
        for q in lower:
            sim.add(q, -1)
        st = self.algo.filter_node(sim, p, extra=extra)
        if st is not None:
            return st
        lower.sort(key=_importance)
        violating, fine = split_by_pdb(lower, pdbs)
        victims: list[PodInfo] = []
        violations = 0
        for group, counts in ((violating, True), (fine, False)):
            for q in group:
                sim.add(q)
                if self.algo.filter_node(sim, p, extra=extra) is not None:
                    sim.add(q, -1)
                    victims.append(q)
                    if counts:
                        violations += 1
        return Candidate(ni.name, victims, violations)


def split_by_pdb(pods: list[PodInfo], pdbs: list[PDB]) -> tuple[list[PodInfo], list[PodInfo]]:
    """Upstream's filterPodsWithPDBViolation (pods in order; budgets consumed as we go)."""
    allowed = [b.allowed for b in pdbs]
    violating: list[PodInfo] = []
    fine: list[PodInfo] = []
    for q in pods:
        bad = False
        for i, b in enumerate(pdbs):
            if b.namespace != q.namespace or b.selector.empty or not b.selector.matches(q.labels):
                continue
            if q.name in b.disrupted:
                continue
            allowed[i] -= 1
            if allowed[i] < 0:
                bad = True
        (violating if bad else fine).append(q)
    return violating, fine


def pick_one(cands: list[Candidate]) -> Candidate:
    """Upstream's pickOneNodeForPreemption."""
    if len(cands) == 1:
        return cands[0]

    def keep_min(cs: list[Candidate], key: Any) -> list[Candidate]:
        vals = [key(c) for c in cs]
        lo = min(vals)
        return [c for c, v in zip(cs, vals, strict=True) if v == lo]

    cs = keep_min(cands, lambda c: c.violations)
    cs = keep_min(cs, lambda c: max((v.priority for v in c.victims), default=-_OFFSET))
    cs = keep_min(cs, lambda c: sum(v.priority + _OFFSET + 1 for v in c.victims))
    cs = keep_min(cs, lambda c: len(c.victims))
    if len(cs) > 1:
        # the latest start time among each node's highest-priority victims wins
        def earliest_top(c: Candidate) -> str:
            if not c.victims:
                return ""
            top = max(v.priority for v in c.victims)
            return min(v.started for v in c.victims if v.priority == top)

        latest = max(earliest_top(c) for c in cs)
        cs = [c for c in cs if earliest_top(c) == latest]
    return cs[0]
