"""ResourceQuota: the usage arithmetic (upstream's quota evaluators) and the controller
that keeps ``status.hard``/``status.used`` true.

Design note
    The evaluators are pure functions over plain objects, shared by the server's quota
    admission (``k3py.server.policy``, which charges usage into ``status.used`` before an
    object is stored) and by this controller (which recomputes usage from informer
    caches).  Resource lists are ``dict[str, Quantity]``; ``format_list`` renders them.

    * pods: ``pods``, ``count/pods``, ``cpu``/``memory``/``ephemeral-storage`` (= requests),
      ``requests.*``, ``limits.*``, hugepages and extended ``requests.<name>``; terminal pods
      and pods past their deletion grace count only for ``count/pods``.  Scopes:
      Terminating, NotTerminating, BestEffort, NotBestEffort, PriorityClass,
      CrossNamespacePodAffinity.
    * services: ``services``, ``count/services``, ``services.nodeports``,
      ``services.loadbalancers``.
    * persistentvolumeclaims: ``persistentvolumeclaims``, ``requests.storage`` and the
      per-StorageClass ``<class>.storageclass.storage.k8s.io/...`` names.
    * anything else: ``count/<resource>[.<group>]`` (plus the legacy names ``configmaps``,
      ``secrets``, ``replicationcontrollers``, ``resourcequotas``).

    The controller recomputes a quota when it is created or its ``spec.hard`` changes,
    when an object in its namespace is deleted or its usage changes (replenishment),
    and every ``RESYNC_SECONDS``.  Kinds it has no informer for (``count/jobs.batch``...)
    are counted with a list and re-checked every ``UNWATCHED_RECHECK_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from k3py.apimachinery import quantity as qty
from k3py.apimachinery.quantity import Quantity
from k3py.apimachinery.selectors import Selector, from_label_selector
from k3py.client import NotFound
from k3py.client.resources import (
    BUILTIN,
    CONFIGMAPS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    REPLICATIONCONTROLLERS,
    RESOURCEQUOTAS,
    SECRETS,
    SERVICES,
    Resource,
)
from k3py.server.controllers.base import Controller, every, meta, parse_time

Obj = dict[str, Any]
ResourceList = dict[str, Quantity]
log = logging.getLogger("k3py.controllers.resourcequota")

RESYNC_SECONDS = 300.0  # upstream --resource-quota-sync-period
UNWATCHED_RECHECK_SECONDS = 15.0
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
_ZERO = Quantity(Fraction(0), qty.DECIMAL_SI)
_ONE = Quantity(Fraction(1), qty.DECIMAL_SI)


class QuotaRejected(Exception):
    """A request the quota does not admit; ``str()`` is upstream's message (without the
    ``<resource> "<name>" is forbidden:`` prefix the API layer adds)."""


# ---- resource lists -------------------------------------------------------------------


def parse_list(d: Any) -> ResourceList:
    out: ResourceList = {}
    for k, v in (d or {}).items() if isinstance(d, dict) else ():
        try:
            out[str(k)] = qty.parse(v)
        except (qty.QuantityError, TypeError, ValueError):
            continue
    return out


def format_list(rl: ResourceList) -> dict[str, str]:
    return {k: str(v) for k, v in sorted(rl.items())}


def add(a: ResourceList, b: ResourceList) -> ResourceList:
    out = dict(a)
    for k, v in b.items():
        out[k] = qty.add(out[k], v) if k in out else v
    return out


def subtract_non_negative(a: ResourceList, b: ResourceList) -> ResourceList:
    out: ResourceList = {}
    for k, v in a.items():
        d = qty.sub(v, b[k]) if k in b else v
        out[k] = d if d.value > 0 else _ZERO
    return out


def mask(rl: ResourceList, names: Iterable[str]) -> ResourceList:
    keep = set(names)
    return {k: v for k, v in rl.items() if k in keep}


def remove_zeros(rl: ResourceList) -> ResourceList:
    return {k: v for k, v in rl.items() if v.value != 0}


def equals(a: ResourceList, b: ResourceList) -> bool:
    return a.keys() == b.keys() and all(a[k].value == b[k].value for k in a)


def exceeded(new: ResourceList, hard: ResourceList) -> list[str]:
    """``quota.LessThanOrEqual``: the names whose new usage is above the hard limit."""
    return sorted(k for k, h in hard.items() if k in new and new[k].value > h.value)


def pretty(rl: ResourceList) -> str:
    return ",".join(f"{k}={rl[k]}" for k in sorted(rl))


def _count(n: int) -> Quantity:
    return Quantity(Fraction(n), qty.DECIMAL_SI)


# ---- scopes ---------------------------------------------------------------------------


def scope_selectors(quota: Obj) -> list[Obj]:
    spec = quota.get("spec") or {}
    out = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    out += list(((spec.get("scopeSelector") or {}).get("matchExpressions")) or [])
    return out


def _scope_selector(sel: Obj) -> Selector:
    expr = {
        "key": str(sel.get("scopeName") or ""),
        "operator": sel.get("operator") or "Exists",
        "values": list(sel.get("values") or []),
    }
    try:
        return from_label_selector({"matchExpressions": [expr]})
    except Exception:  # noqa: BLE001 - validation keeps bad selectors out
        return Selector.match_nothing()


# ---- evaluators ---------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluator:
    """How one kind is charged: its resource names, usage, scopes, constraints."""

    group: str
    resource: str
    names: tuple[str, ...]
    usage_fn: Callable[[Obj, float], ResourceList]
    prefixes: tuple[str, ...] = ()
    ops: tuple[str, ...] = ("CREATE",)
    scope_fn: Callable[[Obj, Obj], bool] | None = None
    constraints_fn: Callable[[list[str], Obj], str | None] | None = None
    extended_requests: bool = False

    def handles(self, op: str) -> bool:
        return op in self.ops

    def matching_resources(self, names: Iterable[str]) -> list[str]:
        out = []
        for n in names:
            if (
                n in self.names
                or any(n.startswith(p) for p in self.prefixes)
                or (self.extended_requests and _extended_request(n))
            ):
                out.append(n)
        return out

    def matches_scope(self, selector: Obj, obj: Obj) -> bool:
        return self.scope_fn(selector, obj) if self.scope_fn is not None else False

    def matches(self, quota: Obj, obj: Obj) -> bool:
        """``generic.Matches``: the quota limits one of our resources, and every scope
        selector of the quota matches the object."""
        hard = ((quota.get("status") or {}).get("hard")) or {}
        if not self.matching_resources(hard):
            return False
        return all(self.matches_scope(s, obj) for s in scope_selectors(quota))

    def usage(self, obj: Obj, now: float) -> ResourceList:
        return self.usage_fn(obj, now)

    def constraints(self, required: list[str], obj: Obj) -> str | None:
        return self.constraints_fn(required, obj) if self.constraints_fn else None


def count_name(group: str, resource: str) -> str:
    return f"count/{resource}.{group}" if group else f"count/{resource}"


def _native(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _extended_request(name: str) -> bool:
    return name.startswith("requests.") and not _native(name)


# -- pods --


def _containers(spec: Obj, key: str) -> list[Obj]:
    return [c for c in spec.get(key) or [] if isinstance(c, dict)]


def _res(c: Obj, which: str) -> ResourceList:
    return parse_list((c.get("resources") or {}).get(which))


def _max(a: ResourceList, b: ResourceList) -> ResourceList:
    out = dict(a)
    for k, v in b.items():
        if k not in out or v.value > out[k].value:
            out[k] = v
    return out


def pod_aggregate(spec: Obj, which: str) -> ResourceList:
    """``resourcehelper.PodRequests``/``PodLimits`` (sidecar-aware, with overhead)."""
    total: ResourceList = {}
    for c in _containers(spec, "containers"):
        total = add(total, _res(c, which))
    restartable: ResourceList = {}
    init_max: ResourceList = {}
    for c in _containers(spec, "initContainers"):
        r = _res(c, which)
        if c.get("restartPolicy") == "Always":
            total = add(total, r)
            restartable = add(restartable, r)
            r = restartable
        else:
            r = add(r, restartable)
        init_max = _max(init_max, r)
    total = _max(total, init_max)
    overhead = parse_list(spec.get("overhead"))
    if which == "requests":
        return add(total, overhead)
    return {k: qty.add(v, overhead[k]) if k in overhead else v for k, v in total.items()}


def _pod_compute(requests: ResourceList, limits: ResourceList) -> ResourceList:
    out: ResourceList = {"pods": _ONE}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            out[name] = requests[name]
            out[f"requests.{name}"] = requests[name]
        if name in limits:
            out[f"limits.{name}"] = limits[name]
    for name, v in requests.items():
        if name.startswith("hugepages-"):
            out[name] = v
            out[f"requests.{name}"] = v
        elif not _native(name):
            out[f"requests.{name}"] = v
    return out


def pod_counts_compute(pod: Obj, now: float) -> bool:
    """``QuotaV1Pod``: not terminal, and not past its deletion grace period."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    m = meta(pod)
    if m.get("deletionTimestamp") and m.get("deletionGracePeriodSeconds") is not None:
        t = parse_time(m["deletionTimestamp"])
        if t is not None and t < now:
            return False
    return True


def pod_usage(pod: Obj, now: float) -> ResourceList:
    out: ResourceList = {"count/pods": _ONE}
    if not pod_counts_compute(pod, now):
        return out
    spec = pod.get("spec") or {}
    return add(out, _pod_compute(pod_aggregate(spec, "requests"), pod_aggregate(spec, "limits")))


def pod_is_best_effort(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    for c in _containers(spec, "containers") + _containers(spec, "initContainers"):
        for which in ("requests", "limits"):
            rl = _res(c, which)
            if any(rl[k].value > 0 for k in ("cpu", "memory") if k in rl):
                return False
    return True


def _cross_namespace_affinity(pod: Obj) -> bool:
    aff = (pod.get("spec") or {}).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        a = aff.get(kind) or {}
        terms = list(a.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
        terms += [
            w.get("podAffinityTerm") or {}
            for w in a.get("preferredDuringSchedulingIgnoredDuringExecution") or []
        ]
        if any(t.get("namespaces") or t.get("namespaceSelector") is not None for t in terms):
            return True
    return False


def pod_matches_scope(selector: Obj, pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    scope = selector.get("scopeName")
    if scope in ("Terminating", "NotTerminating"):
        ads = spec.get("activeDeadlineSeconds")
        terminating = isinstance(ads, int) and ads >= 0
        return terminating if scope == "Terminating" else not terminating
    if scope in ("BestEffort", "NotBestEffort"):
        return pod_is_best_effort(pod) == (scope == "BestEffort")
    if scope == "PriorityClass":
        pc = spec.get("priorityClassName") or ""
        if (selector.get("operator") or "Exists") == "Exists":
            return bool(pc)
        labels = {"PriorityClass": pc} if pc else {}
        return _scope_selector(selector).matches(labels)
    if scope == "CrossNamespacePodAffinity":
        return _cross_namespace_affinity(pod)
    return False


VALIDATION_SET = ("cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory")


def pod_constraints(required: list[str], pod: Obj) -> str | None:
    """Every container must state what a quota on cpu/memory tracks."""
    need = set(required) & set(VALIDATION_SET)
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for c in _containers(spec, "containers") + _containers(spec, "initContainers"):
        have = set(_pod_compute(_res(c, "requests"), _res(c, "limits")))
        for name in need - have:
            missing.setdefault(name, set()).add(str(c.get("name") or ""))
    if not missing:
        return None
    parts = [f"{r} for: {','.join(sorted(missing[r]))}" for r in sorted(missing)]
    return "must specify " + "; ".join(parts)


POD_RESOURCES = (
    "count/pods", "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
    "pods",
)  # fmt: skip

# -- services --


def service_usage(svc: Obj, _now: float) -> ResourceList:
    spec = svc.get("spec") or {}
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    out: ResourceList = {
        "count/services": _ONE, "services": _ONE,
        "services.loadbalancers": _ZERO, "services.nodeports": _ZERO,
    }  # fmt: skip
    stype = spec.get("type") or "ClusterIP"
    if stype == "NodePort":
        out["services.nodeports"] = _count(len(ports))
    elif stype == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is False:
            out["services.nodeports"] = _count(sum(1 for p in ports if p.get("nodePort")))
        else:
            out["services.nodeports"] = _count(len(ports))
        out["services.loadbalancers"] = _ONE
    return out


# -- persistent volume claims --


def pvc_class(pvc: Obj) -> str:
    ann = meta(pvc).get("annotations") or {}
    beta = ann.get("volume.beta.kubernetes.io/storage-class")
    if beta:
        return str(beta)
    return str((pvc.get("spec") or {}).get("storageClassName") or "")


def pvc_usage(pvc: Obj, _now: float) -> ResourceList:
    out: ResourceList = {"persistentvolumeclaims": _ONE, "count/persistentvolumeclaims": _ONE}
    sc = pvc_class(pvc)
    if sc:
        out[f"{sc}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = _ONE
    requests = parse_list(((pvc.get("spec") or {}).get("resources") or {}).get("requests"))
    allocated = parse_list((pvc.get("status") or {}).get("allocatedResources"))
    storage = requests.get("storage")
    if storage is not None and "storage" in allocated and allocated["storage"] > storage:
        storage = allocated["storage"]
    if storage is not None:
        out["requests.storage"] = storage
        if sc:
            out[f"{sc}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
    return out


# -- registry --

LEGACY_ALIASES = {
    ("", "configmaps"): "configmaps",
    ("", "secrets"): "secrets",
    ("", "replicationcontrollers"): "replicationcontrollers",
    ("", "resourcequotas"): "resourcequotas",
}

PODS_EVALUATOR = Evaluator(
    "", "pods", POD_RESOURCES, pod_usage, prefixes=("hugepages-", "requests.hugepages-"),
    scope_fn=pod_matches_scope, constraints_fn=pod_constraints, extended_requests=True,
)  # fmt: skip
SERVICES_EVALUATOR = Evaluator(
    "", "services",
    ("count/services", "services", "services.loadbalancers", "services.nodeports"),
    service_usage, ops=("CREATE", "UPDATE"),
)  # fmt: skip
PVC_NAMES = ("count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage")


def _pvc_matching(names: Iterable[str]) -> list[str]:
    return [
        n for n in names
        if n in PVC_NAMES
        or (STORAGE_CLASS_SUFFIX in n and n.endswith(("/requests.storage", "/persistentvolumeclaims")))
    ]  # fmt: skip


class _PVCEvaluator(Evaluator):
    def matching_resources(self, names: Iterable[str]) -> list[str]:
        return _pvc_matching(names)


PVC_EVALUATOR = _PVCEvaluator(
    "", "persistentvolumeclaims", PVC_NAMES, pvc_usage, ops=("CREATE", "UPDATE")
)

_SPECIAL = {
    ("", "pods"): PODS_EVALUATOR,
    ("", "services"): SERVICES_EVALUATOR,
    ("", "persistentvolumeclaims"): PVC_EVALUATOR,
}
_GENERIC: dict[tuple[str, str], Evaluator] = {}


def object_count_evaluator(group: str, resource: str) -> Evaluator:
    name = count_name(group, resource)
    alias = LEGACY_ALIASES.get((group, resource))
    names = (name, alias) if alias else (name,)

    def usage(_obj: Obj, _now: float) -> ResourceList:
        return dict.fromkeys(names, _ONE)

    return Evaluator(group, resource, names, usage)


def evaluator_for(group: str, resource: str) -> Evaluator:
    ev = _SPECIAL.get((group, resource))
    if ev is None:
        ev = _GENERIC.get((group, resource))
        if ev is None:
            ev = _GENERIC[(group, resource)] = object_count_evaluator(group, resource)
    return ev


def parse_count_name(name: str) -> tuple[str, str] | None:
    """``count/deployments.apps`` → ("apps", "deployments")."""
    if not name.startswith("count/"):
        return None
    resource, _, group = name[len("count/") :].partition(".")
    return group, resource


def evaluators_for_names(names: Iterable[str]) -> list[Evaluator]:
    """Every evaluator that tracks one of ``names`` (a quota's hard resources)."""
    found: dict[tuple[str, str], Evaluator] = {}
    names = list(names)
    for ev in _SPECIAL.values():
        if ev.matching_resources(names):
            found[(ev.group, ev.resource)] = ev
    for alias_key, alias in LEGACY_ALIASES.items():
        if alias in names:
            found[alias_key] = evaluator_for(*alias_key)
    for n in names:
        gr = parse_count_name(n)
        if gr is not None and gr not in found:
            found[gr] = evaluator_for(*gr)
    return list(found.values())


# ---- admission check ------------------------------------------------------------------


@dataclass
class Charge:
    """What an admitted request adds to each quota (index into the quotas given)."""

    used: dict[int, ResourceList]


def check_request(
    quotas: list[Obj], *, ev: Evaluator, obj: Obj, old: Obj | None, now: float
) -> Charge:
    """``CheckRequest``: raise ``QuotaRejected`` or return the new usage per quota."""
    interesting: list[int] = []
    for i, q in enumerate(quotas):
        if not ev.matches(q, obj):
            continue
        status = q.get("status") or {}
        hard_names = list((status.get("hard") or {}).keys())
        restricted = ev.matching_resources(hard_names)
        err = ev.constraints(restricted, obj)
        if err:
            raise QuotaRejected(f"failed quota: {meta(q).get('name')}: {err}")
        used = status.get("used") or {}
        if any(r not in used for r in restricted):
            names = ",".join(sorted(restricted))
            raise QuotaRejected(
                f"status unknown for quota: {meta(q).get('name')}, resources: {names}"
            )
        interesting.append(i)
    if not interesting:
        return Charge({})
    usage = ev.usage(obj, now)
    negative = sorted(k for k, v in usage.items() if v.value < 0)
    if negative:
        raise QuotaRejected(f"quota usage is negative for resource(s): {','.join(negative)}")
    deltas = dict.fromkeys(interesting, usage)
    if old is not None and meta(old).get("resourceVersion"):
        delta = subtract_non_negative(usage, ev.usage(old, now))
        for i in interesting:
            if ev.matches(quotas[i], old):
                deltas[i] = delta
    out: dict[int, ResourceList] = {}
    for i, d in deltas.items():
        d = remove_zeros(d)
        if not d:
            continue
        status = quotas[i].get("status") or {}
        hard = parse_list(status.get("hard"))
        used = parse_list(status.get("used"))
        requested = mask(d, hard)
        new_used = add(used, requested)
        over = exceeded(mask(new_used, requested), hard)
        if over:
            raise QuotaRejected(
                f"exceeded quota: {meta(quotas[i]).get('name')}, "
                f"requested: {pretty(mask(requested, over))}, "
                f"used: {pretty(mask(used, over))}, limited: {pretty(mask(hard, over))}"
            )
        out[i] = new_used
    return Charge(out)


# ---- usage of a namespace (the controller's side) ------------------------------------------


def object_matches_quota_scopes(ev: Evaluator, quota: Obj, *, obj: Obj) -> bool:
    return all(ev.matches_scope(s, obj) for s in scope_selectors(quota))


def calculate_usage(
    quota: Obj, *, objects: Callable[[Evaluator], list[Obj]], now: float
) -> ResourceList:
    """``quota.CalculateUsage``: usage of every resource in ``spec.hard`` that an
    evaluator tracks, zero where nothing is used."""
    hard_names = list(((quota.get("spec") or {}).get("hard") or {}).keys())
    total: ResourceList = {}
    matched: set[str] = set()
    for ev in evaluators_for_names(hard_names):
        names = ev.matching_resources(hard_names)
        matched.update(names)
        used: ResourceList = dict.fromkeys(names, _ZERO)
        for obj in objects(ev):
            if object_matches_quota_scopes(ev, quota, obj=obj):
                used = add(used, ev.usage(obj, now))
        total = add(total, used)
    return mask(total, matched)


# ---- the controller ------------------------------------------------------------------------

WATCHED: dict[tuple[str, str], Resource] = {
    ("", "pods"): PODS,
    ("", "services"): SERVICES,
    ("", "persistentvolumeclaims"): PERSISTENTVOLUMECLAIMS,
    ("", "configmaps"): CONFIGMAPS,
    ("", "secrets"): SECRETS,
    ("", "replicationcontrollers"): REPLICATIONCONTROLLERS,
    ("", "resourcequotas"): RESOURCEQUOTAS,
}


def builtin_resource(group: str, plural: str) -> Resource | None:
    for r in BUILTIN:
        if r.group == group and r.plural == plural and r.namespaced:
            return r
    return None


class ResourceQuotaController(Controller):
    name = "resourcequota"

    def setup(self) -> None:
        self.quotas = self.ctx.informer(RESOURCEQUOTAS)
        self.quotas.add_handler(on_add=self.enqueue, on_update=self._quota_updated, on_delete=None)
        self.watched = {gr: self.ctx.informer(res) for gr, res in WATCHED.items()}
        for gr, inf in self.watched.items():
            inf.add_handler(
                on_update=self._on_update(evaluator_for(*gr)),
                on_delete=self._replenish,
                readonly=True,
            )

    def _quota_updated(self, old: Obj, new: Obj) -> None:
        if not equals(
            parse_list((old.get("spec") or {}).get("hard")),
            parse_list((new.get("spec") or {}).get("hard")),
        ) or (old.get("spec") or {}).get("scopes") != (new.get("spec") or {}).get("scopes"):
            self.enqueue(new)

    def _on_update(self, ev: Evaluator) -> Callable[[Obj, Obj], None]:
        def handler(old: Obj, new: Obj) -> None:
            if not self.quotas.cache.index_keys("namespace", meta(new).get("namespace") or ""):
                return  # no quota in this namespace: nothing to recompute
            now = self.ctx.clock()
            if not equals(ev.usage(old, now), ev.usage(new, now)):
                self._replenish(new)

        return handler

    def _replenish(self, obj: Obj) -> None:
        ns = meta(obj).get("namespace") or ""
        for q in self.quotas.list(ns):
            self.enqueue(q)

    async def started(self) -> None:
        self.enqueue_all(self.quotas)

    def background(self) -> list[Any]:
        return [every(RESYNC_SECONDS, lambda: self.enqueue_all(self.quotas), name="quota-resync")]

    async def _objects(self, ev: Evaluator, *, namespace: str, unwatched: list[bool]) -> list[Obj]:
        inf = self.watched.get((ev.group, ev.resource))
        if inf is not None:
            return inf.list(namespace)
        unwatched.append(True)
        res = builtin_resource(ev.group, ev.resource)
        if res is None:
            return []
        return (await self.client.list_all(res, namespace=namespace)).items

    async def reconcile(self, key: str) -> float | None:
        namespace, _, name = key.partition("/")
        quota = self.quotas.get(name, namespace=namespace)
        if quota is None:
            return None
        hard_names = list(((quota.get("spec") or {}).get("hard") or {}).keys())
        unwatched: list[bool] = []
        lists: dict[tuple[str, str], list[Obj]] = {}
        for ev in evaluators_for_names(hard_names):
            lists[(ev.group, ev.resource)] = await self._objects(
                ev, namespace=namespace, unwatched=unwatched
            )
        usage = calculate_usage(
            quota, objects=lambda ev: lists.get((ev.group, ev.resource), []), now=time.time()
        )
        await self._write(quota, usage)
        return UNWATCHED_RECHECK_SECONDS if unwatched else None

    async def _write(self, quota: Obj, usage: ResourceList) -> None:
        spec_hard = parse_list((quota.get("spec") or {}).get("hard"))
        status = quota.get("status") or {}
        old_used = parse_list(status.get("used"))
        used = mask({**old_used, **usage}, spec_hard)
        dirty = not equals(parse_list(status.get("hard")), spec_hard) or "used" not in status
        if not dirty and equals(used, old_used):
            return
        quota["status"] = {"hard": format_list(spec_hard), "used": format_list(used)}
        try:
            await self.client.update_status(RESOURCEQUOTAS, quota)
        except NotFound:
            return
        # A Conflict (an admission charge or a spec change won the race) raises: the work
        # queue retries with back-off, once the informer has the newer quota.


CONTROLLERS = [ResourceQuotaController]
