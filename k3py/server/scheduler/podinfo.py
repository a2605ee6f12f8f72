"""What the scheduler needs of a Pod, parsed once per informer event.

``PodInfo`` holds requests as plain ints (milli-CPU, bytes, counts), the non-zero
requests used for scoring (100m CPU / 200Mi memory per container that asks for none, as
upstream), host ports, tolerations, compiled node affinity and pod (anti-)affinity terms
and topology spread constraints.  Plugins only ever read these fields, so the per-node
work of a scheduling cycle touches ints and small tuples, never the Pod dict.

Requests follow upstream's ``PodRequests``: the larger of the sum of the containers
(plus restartable "sidecar" init containers) and of every init container (plus the
sidecars started before it), plus ``spec.overhead``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import orjson

from k3py.apimachinery import quantity
from k3py.apimachinery.selectors import Selector, from_label_selector

Obj = dict[str, Any]

CPU, MEMORY, EPHEMERAL, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
DEFAULT_SCHEDULER = "default-scheduler"
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


# ---- quantities ------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _milli(text: str) -> int:
    try:
        return math.ceil(quantity.parse(text).value * 1000)
    except (ValueError, ArithmeticError):
        return 0


@lru_cache(maxsize=4096)
def _whole(text: str) -> int:
    try:
        return math.ceil(quantity.parse(text).value)
    except (ValueError, ArithmeticError):
        return 0


def resource_value(name: str, value: Any) -> int:
    """A quantity as the scheduler counts it: milli for cpu, whole units otherwise."""
    text = value if isinstance(value, str) else str(value)
    return _milli(text) if name == CPU else _whole(text)


def resource_list(rl: Obj | None) -> dict[str, int]:
    if not rl:
        return {}
    return {k: resource_value(k, v) for k, v in rl.items()}


def _add(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


def _max(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        if v > into.get(k, 0):
            into[k] = v


def _nonzero(req: dict[str, int]) -> dict[str, int]:
    out = dict(req)
    if not out.get(CPU):
        out[CPU] = DEFAULT_MILLI_CPU
    if not out.get(MEMORY):
        out[MEMORY] = DEFAULT_MEMORY
    return out


def pod_requests(spec: Obj, *, non_zero: bool = False) -> dict[str, int]:
    """Upstream's ``resourcehelper.PodRequests`` (with ``NonMissingContainerRequests``
    for cpu/memory when ``non_zero``)."""
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        r = resource_list((c.get("resources") or {}).get("requests"))
        _add(total, _nonzero(r) if non_zero else r)
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        r = resource_list((c.get("resources") or {}).get("requests"))
        if non_zero:
            r = _nonzero(r)
        if c.get("restartPolicy") == "Always":
            _add(sidecars, r)
            _max(init_max, sidecars)
        else:
            step = dict(r)
            _add(step, sidecars)
            _max(init_max, step)
    _add(total, sidecars)
    _max(total, init_max)
    _add(total, resource_list(spec.get("overhead")))
    return total


# ---- node selection terms ------------------------------------------------------------


def _int_or_none(text: Any) -> int | None:
    try:
        return int(str(text))
    except ValueError:
        return None


def _compile_node_req(expr: Obj, *, field: bool) -> Any:
    """A NodeSelectorRequirement as a predicate over (labels, node name)."""
    key = expr.get("key") or ""
    op = expr.get("operator") or ""
    values = frozenset(str(v) for v in expr.get("values") or ())
    if field:
        if key != "metadata.name":
            return lambda _labels, _name: False
        if op == "In":
            return lambda _labels, name: name in values
        if op == "NotIn":
            return lambda _labels, name: name not in values
        return lambda _labels, _name: False
    if op == "In":
        return lambda labels, _name: key in labels and labels[key] in values
    if op == "NotIn":
        return lambda labels, _name: key not in labels or labels[key] not in values
    if op == "Exists":
        return lambda labels, _name: key in labels
    if op == "DoesNotExist":
        return lambda labels, _name: key not in labels
    if op in ("Gt", "Lt") and len(values) == 1:
        bound = _int_or_none(next(iter(values)))
        if bound is None:
            return lambda _labels, _name: False
        gt = op == "Gt"

        def compare(labels: Any, _name: str) -> bool:
            if key not in labels:
                return False
            v = _int_or_none(labels[key])
            if v is None:
                return False
            return v > bound if gt else v < bound

        return compare
    return lambda _labels, _name: False


class NodeTerm:
    """A NodeSelectorTerm: all expressions and fields must hold; an empty term matches
    nothing (upstream)."""

    __slots__ = ("checks",)

    def __init__(self, term: Obj) -> None:
        checks = [_compile_node_req(e, field=False) for e in term.get("matchExpressions") or []]
        checks += [_compile_node_req(e, field=True) for e in term.get("matchFields") or []]
        self.checks = tuple(checks)

    def matches(self, labels: dict[str, str], name: str) -> bool:
        if not self.checks:
            return False
        for c in self.checks:
            if not c(labels, name):
                return False
        return True


def node_selector_terms(sel: Obj | None) -> tuple[NodeTerm, ...] | None:
    """A required NodeSelector (ORed terms); None when absent."""
    if not sel:
        return None
    return tuple(NodeTerm(t) for t in sel.get("nodeSelectorTerms") or [])


# ---- tolerations -----------------------------------------------------------------------


class Toleration:
    __slots__ = ("key", "exists", "value", "effect")

    def __init__(self, t: Obj) -> None:
        self.key = t.get("key") or ""
        self.exists = t.get("operator") == "Exists"
        self.value = t.get("value") or ""
        self.effect = t.get("effect") or ""

    def tolerates(self, key: str, value: str, effect: str) -> bool:
        if self.effect and self.effect != effect:
            return False
        if self.key and self.key != key:
            return False
        if not self.key and not self.exists:
            return False
        return self.exists or self.value == value


def tolerated(tols: tuple[Toleration, ...], key: str, value: str, effect: str) -> bool:
    for t in tols:
        if t.tolerates(key, value, effect):
            return True
    return False


# ---- pod affinity terms -------------------------------------------------------------------


def _selector(ls: Obj | None) -> Selector:
    try:
        return from_label_selector(ls)
    except Exception:  # noqa: BLE001 - validated at admission; a bad one matches nothing
        return Selector.match_nothing()


class AffinityTerm:
    """A PodAffinityTerm with namespaces resolved: ``namespaces`` (a set) or, with a
    ``namespaceSelector``, ``ns_selector`` (matched against Namespace labels)."""

    __slots__ = ("selector", "namespaces", "ns_selector", "topology_key", "weight", "sig")

    def __init__(self, term: Obj, *, own_ns: str, labels: dict[str, str], weight: int = 0) -> None:
        ls = term.get("labelSelector")
        sel = _selector(ls)
        extra = []
        for k in term.get("matchLabelKeys") or []:
            if k in labels:
                extra.append({"key": k, "operator": "In", "values": [labels[k]]})
        for k in term.get("mismatchLabelKeys") or []:
            if k in labels:
                extra.append({"key": k, "operator": "NotIn", "values": [labels[k]]})
        if extra and ls is not None:
            merged = dict(ls)
            merged["matchExpressions"] = [*(ls.get("matchExpressions") or []), *extra]
            ls = merged
            sel = _selector(ls)
        self.selector = sel
        nss = term.get("namespaces") or []
        nsel = term.get("namespaceSelector")
        self.ns_selector: Selector | None = _selector(nsel) if nsel is not None else None
        if not nss and nsel is None:
            nss = [own_ns]
        self.namespaces = frozenset(nss)
        self.topology_key = term.get("topologyKey") or ""
        self.weight = weight
        self.sig = orjson.dumps(
            [ls, sorted(self.namespaces), nsel, self.topology_key], option=orjson.OPT_SORT_KEYS
        )

    def matches(self, pod: PodInfo, ns_labels: dict[str, dict[str, str]] | None) -> bool:
        if pod.namespace not in self.namespaces:
            if self.ns_selector is None:
                return False
            if ns_labels is None or not self.ns_selector.matches(ns_labels.get(pod.namespace)):
                return False
        return self.selector.matches(pod.labels)


def _affinity_terms(
    block: Obj | None, *, own_ns: str, labels: dict[str, str]
) -> tuple[tuple[AffinityTerm, ...], tuple[AffinityTerm, ...]]:
    if not block:
        return (), ()
    req = tuple(
        AffinityTerm(t, own_ns=own_ns, labels=labels)
        for t in block.get("requiredDuringSchedulingIgnoredDuringExecution") or []
    )
    pref = tuple(
        AffinityTerm(
            w.get("podAffinityTerm") or {},
            own_ns=own_ns,
            labels=labels,
            weight=int(w.get("weight") or 0),
        )  # fmt: skip
        for w in block.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    )
    return req, pref


# ---- topology spread ----------------------------------------------------------------------


class SpreadConstraint:
    __slots__ = (
        "max_skew", "topology_key", "hard", "selector", "min_domains",
        "honor_affinity", "honor_taints", "sig",
    )  # fmt: skip

    def __init__(self, c: Obj, *, labels: dict[str, str]) -> None:
        self.max_skew = int(c.get("maxSkew") or 1)
        self.topology_key = c.get("topologyKey") or ""
        self.hard = (c.get("whenUnsatisfiable") or "DoNotSchedule") == "DoNotSchedule"
        ls = c.get("labelSelector")
        keys = [k for k in c.get("matchLabelKeys") or [] if k in labels]
        if keys and ls is not None:
            ls = dict(ls)
            ls["matchExpressions"] = [
                *(ls.get("matchExpressions") or []),
                *({"key": k, "operator": "In", "values": [labels[k]]} for k in keys),
            ]
        self.selector = _selector(ls)
        self.min_domains = int(c.get("minDomains") or 1)
        self.honor_affinity = (c.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (c.get("nodeTaintsPolicy") or "Ignore") == "Honor"
        self.sig = orjson.dumps(ls, option=orjson.OPT_SORT_KEYS)


class SystemSpread(SpreadConstraint):
    """A system default constraint (hostname 3 / zone 5, ScheduleAnyway) over a given
    selector."""

    def __init__(self, *, key: str, max_skew: int, selector: Selector, sig: bytes) -> None:  # noqa: D107
        self.max_skew = max_skew
        self.topology_key = key
        self.hard = False
        self.selector = selector
        self.min_domains = 1
        self.honor_affinity = True
        self.honor_taints = False
        self.sig = sig


# ---- the pod ---------------------------------------------------------------------------------


class PodInfo:
    __slots__ = (
        "uid", "namespace", "name", "key", "labels", "rv", "priority", "priority_class",
        "preempt_never", "scheduler_name", "node_name", "nominated", "deleting", "terminal",
        "cpu", "mem", "eph", "scalar", "nz_cpu", "nz_mem", "ports", "node_selector",
        "req_node_terms", "pref_node_terms", "tolerations", "aff_req", "aff_pref",
        "anti_req", "anti_pref", "spread", "owner", "static_sig", "created", "ref",
        "has_priority", "grace", "cond", "started",
    )  # fmt: skip

    def __init__(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        status = pod.get("status") or {}
        self.uid: str = meta.get("uid") or ""
        self.namespace: str = meta.get("namespace") or ""
        self.name: str = meta.get("name") or ""
        self.key = f"{self.namespace}/{self.name}"
        self.labels: dict[str, str] = meta.get("labels") or {}
        self.rv: str = meta.get("resourceVersion") or ""
        self.created: str = meta.get("creationTimestamp") or ""
        self.has_priority = spec.get("priority") is not None
        self.priority: int = int(spec.get("priority") or 0)
        self.priority_class: str = spec.get("priorityClassName") or ""
        self.preempt_never = spec.get("preemptionPolicy") == "Never"
        self.scheduler_name: str = spec.get("schedulerName") or DEFAULT_SCHEDULER
        self.node_name: str = spec.get("nodeName") or ""
        self.nominated: str = status.get("nominatedNodeName") or ""
        self.deleting = bool(meta.get("deletionTimestamp"))
        self.terminal = status.get("phase") in ("Succeeded", "Failed")
        self.grace = spec.get("terminationGracePeriodSeconds")
        self.started: str = status.get("startTime") or self.created
        self.cond: tuple[str, str, str] | None = None  # PodScheduled (status, reason, message)
        for c in status.get("conditions") or ():
            if c.get("type") == "PodScheduled":
                self.cond = (c.get("status") or "", c.get("reason") or "", c.get("message") or "")
        req = pod_requests(spec)
        self.cpu = req.pop(CPU, 0)
        self.mem = req.pop(MEMORY, 0)
        self.eph = req.pop(EPHEMERAL, 0)
        req.pop(PODS, None)
        self.scalar: dict[str, int] = {k: v for k, v in req.items() if v}
        nz = pod_requests(spec, non_zero=True)
        self.nz_cpu = nz.get(CPU, 0)
        self.nz_mem = nz.get(MEMORY, 0)
        self.ports = _host_ports(spec)
        self.node_selector: dict[str, str] = spec.get("nodeSelector") or {}
        affinity = spec.get("affinity") or {}
        na = affinity.get("nodeAffinity") or {}
        req_na = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        self.req_node_terms = node_selector_terms(req_na)
        self.pref_node_terms = tuple(
            (int(p.get("weight") or 0), NodeTerm(p.get("preference") or {}))
            for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        )
        tols = spec.get("tolerations") or []
        self.tolerations = tuple(Toleration(t) for t in tols)
        self.aff_req, self.aff_pref = _affinity_terms(
            affinity.get("podAffinity"), own_ns=self.namespace, labels=self.labels
        )
        self.anti_req, self.anti_pref = _affinity_terms(
            affinity.get("podAntiAffinity"), own_ns=self.namespace, labels=self.labels
        )
        self.spread: tuple[SpreadConstraint, ...] = tuple(
            SpreadConstraint(c, labels=self.labels)
            for c in spec.get("topologySpreadConstraints") or []
        )
        owner = None
        for ref in meta.get("ownerReferences") or []:
            if ref.get("controller"):
                owner = (ref.get("kind") or "", ref.get("name") or "", ref.get("uid") or "")
                break
        self.owner: tuple[str, str, str] | None = owner
        self.static_sig = orjson.dumps(
            [self.node_name, self.node_selector, req_na, tols], option=orjson.OPT_SORT_KEYS
        )
        self.ref: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "resourceVersion": self.rv,
            },
        }

    @property
    def has_pod_affinity(self) -> bool:
        return bool(self.aff_req or self.anti_req)

    def __repr__(self) -> str:
        return f"PodInfo({self.key}, node={self.node_name!r}, prio={self.priority})"


def _host_ports(spec: Obj) -> tuple[tuple[str, str, int], ...]:
    out: list[tuple[str, str, int]] = []
    for group in ("initContainers", "containers"):
        for c in spec.get(group) or []:
            if group == "initContainers" and c.get("restartPolicy") != "Always":
                continue
            for p in c.get("ports") or []:
                hp = p.get("hostPort")
                if hp:
                    ip = p.get("hostIP") or "0.0.0.0"
                    out.append((ip, p.get("protocol") or "TCP", int(hp)))
    return tuple(out)
