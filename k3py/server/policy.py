"""Server-side policy that needs the object store: Priority, LimitRanger and
ResourceQuota admission, and the PodDisruptionBudget check of ``pods/eviction``.

Design note
    Admission plugins are async callables ``(info, obj, old, ctx)`` run by the store
    before validation (``store.admit``); ``install`` appends ours in upstream's order:
    Priority (resolve ``priorityClassName``), LimitRanger (defaults, then min/max checks),
    ResourceQuota last (it sees the final object).  They read other objects straight from
    the datastore (a prefix scan is ~30 µs), so a quota or LimitRange applies to the very
    next request.

    Quota admission charges what it admits into the quota's ``status.used`` before the
    object is stored, with the quota's resourceVersion as precondition (upstream's
    optimistic update): two concurrent creates cannot both take the last unit — the loser
    re-reads and is rejected.  A per-namespace lock makes that race rare in one server.
    Objects that then fail to be stored stay charged until the ResourceQuota controller
    recomputes usage (upstream behaves the same); validation runs before the charge to
    keep that rare.

    The eviction check (``state.caches["eviction_check"]``) follows upstream's
    EvictionREST: terminal, pending and deleting pods go without a budget; one matching
    PDB is checked and its ``status.disruptionsAllowed`` decremented (the pod recorded in
    ``disruptedPods``) before the API deletes the pod; more than one PDB is a 500.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from k3py.apimachinery import quantity as qty
from k3py.apimachinery.selectors import from_label_selector
from k3py.server import errors
from k3py.server.controllers import resourcequota as rq
from k3py.server.registry.catalog import Catalog, ResourceInfo
from k3py.server.registry.store import ObjectStore, WriteContext, now_rfc3339

Obj = dict[str, Any]

SYSTEM_PRIORITY_CLASSES = {
    "system-node-critical": (
        2000001000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    "system-cluster-critical": (
        2000000000,
        "Used for system critical pods that must run in the cluster, but can be moved to "
        "another node if necessary.",
    ),
}
LIMIT_RANGER_ANNOTATION = "kubernetes.io/limit-ranger"
MAX_DISRUPTED_PODS = 2000
QUOTA_RETRIES = 5
EVICTION_RETRIES = 20
_tasks: set[asyncio.Task[None]] = set()


def system_ctx(*, subresource: str = "") -> WriteContext:
    return WriteContext(
        user="system:apiserver", field_manager="kube-apiserver", subresource=subresource
    )


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def admission_forbidden(info: ResourceInfo, obj: Obj, *, err: str) -> errors.APIError:
    """``admission.NewForbidden``: ``pods "web" is forbidden: <err>``."""
    m = _meta(obj)
    name = str(m.get("name") or m.get("generateName") or "")
    what = errors.qualified(info.plural, info.group)
    msg = f'{what} "{name}" is forbidden: {err}' if name else f"{what} is forbidden: {err}"
    details: Obj = {"name": name} if name else {}
    if info.group:
        details["group"] = info.group
    details["kind"] = info.plural
    return errors.APIError(403, "Forbidden", msg, details=details)


def aggregate(msgs: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message, or ``[a, b]`` (deduplicated)."""
    seen: list[str] = []
    for m in msgs:
        if m not in seen:
            seen.append(m)
    return seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]"


async def _list(store: ObjectStore, info: ResourceInfo | None, *, namespace: str) -> list[Obj]:
    if info is None:
        return []
    page = await store.ds.list(info.prefix(namespace))
    return [r.obj() for r in page.records]


# ---- Priority ---------------------------------------------------------------------------


class PriorityAdmission:
    """``spec.priorityClassName`` → ``spec.priority`` and ``spec.preemptionPolicy`` on pod
    create (the global default class, or 0); one global default PriorityClass at most."""

    def __init__(self, *, store: ObjectStore, catalog: Catalog) -> None:
        self.store = store
        self.classes = catalog.get("scheduling.k8s.io", "v1", "priorityclasses")

    async def __call__(
        self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: WriteContext
    ) -> None:
        if ctx.subresource:
            return
        if info.group == "" and info.kind == "Pod":
            spec = obj.setdefault("spec", {})
            if old is not None:
                old_spec = old.get("spec") or {}
                for f in ("priority", "preemptionPolicy"):
                    if spec.get(f) is None and old_spec.get(f) is not None:
                        spec[f] = old_spec[f]
                return
            await self._admit_pod(info, obj, spec)
        elif info.group == "scheduling.k8s.io" and info.kind == "PriorityClass":
            await self._check_default(info, obj, old)

    async def _get_class(self, name: str) -> Obj | None:
        if self.classes is not None:
            rec = await self.store.ds.get(self.classes.key("", name))
            if rec is not None:
                return rec.obj()
        if name in SYSTEM_PRIORITY_CLASSES:
            return {
                "value": SYSTEM_PRIORITY_CLASSES[name][0],
                "preemptionPolicy": "PreemptLowerPriority",
            }
        return None

    async def default_class(self) -> Obj | None:
        """The global default class (the lowest value if several claim it)."""
        if self.classes is None:
            return None
        page = await self.store.ds.list(self.classes.prefix(""))
        defaults = [r.obj() for r in page.records if b'"globalDefault":true' in r.value]
        defaults = [pc for pc in defaults if pc.get("globalDefault") is True]
        return min(defaults, key=lambda pc: int(pc.get("value") or 0)) if defaults else None

    async def _admit_pod(self, info: ResourceInfo, obj: Obj, spec: Obj) -> None:
        name = spec.get("priorityClassName") or ""
        if not name:
            pc = await self.default_class()
            if pc is not None:
                spec["priorityClassName"] = _meta(pc).get("name")
            value = int(pc.get("value") or 0) if pc else 0
            policy = pc.get("preemptionPolicy") if pc else "PreemptLowerPriority"
        else:
            pc = await self._get_class(str(name))
            if pc is None:
                raise admission_forbidden(
                    info, obj, err=f"no PriorityClass with name {name} was found"
                )
            value = int(pc.get("value") or 0)
            policy = pc.get("preemptionPolicy")
        given = spec.get("priority")
        if given is not None and given != value:
            raise admission_forbidden(
                info, obj, err=
                f"the integer value of priority ({given}) must not be provided in pod spec; "
                f"priority admission controller computed {value} from the given PriorityClass name",
            )  # fmt: skip
        spec["priority"] = value
        if policy:
            given_policy = spec.get("preemptionPolicy")
            if given_policy and given_policy != policy:
                raise admission_forbidden(
                    info, obj, err=
                    f"the string value of PreemptionPolicy ({given_policy}) must not be provided "
                    f"in pod spec; priority admission controller computed {policy} from the "
                    "given PriorityClass name",
                )  # fmt: skip
            spec["preemptionPolicy"] = policy

    async def _check_default(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        if not obj.get("globalDefault"):
            return
        current = await self.default_class()
        if current is None:
            return
        name = _meta(current).get("name")
        if old is None or name != _meta(obj).get("name"):
            raise admission_forbidden(
                info,
                obj,
                err=f"PriorityClass {name} is marked as default. Only one default can exist",
            )


async def ensure_system_priority_classes(*, store: ObjectStore, catalog: Catalog) -> None:
    """The built-in classes upstream's apiserver creates at start."""
    info = catalog.get("scheduling.k8s.io", "v1", "priorityclasses")
    if info is None:
        return
    for name, (value, description) in SYSTEM_PRIORITY_CLASSES.items():
        if await store.ds.get(info.key("", name)) is not None:
            continue
        obj = {
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "description": description,
        }  # fmt: skip
        try:
            await store.create(info, obj, ctx=system_ctx())
        except errors.APIError as e:
            if e.reason != "AlreadyExists":
                raise


# ---- LimitRanger ----------------------------------------------------------------------------


def _rlist(d: Any) -> dict[str, qty.Quantity]:
    return rq.parse_list(d)


def _enforced(q: qty.Quantity) -> int:
    return qty.milli_value(q)


def min_constraint(
    kind: str, name: str, *, enforced: qty.Quantity, req: rq.ResourceList, lim: rq.ResourceList
) -> str | None:
    r, lm = req.get(name), lim.get(name)
    if r is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if qty.milli_value(r) < _enforced(enforced):
        return f"minimum {name} usage per {kind} is {enforced}, but request is {r}"
    if lm is not None and qty.milli_value(lm) < _enforced(enforced):
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {lm}"
    return None


def max_constraint(
    kind: str, name: str, *, enforced: qty.Quantity, req: rq.ResourceList, lim: rq.ResourceList
) -> str | None:
    r, lm = req.get(name), lim.get(name)
    if lm is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if qty.milli_value(lm) > _enforced(enforced):
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {lm}"
    if r is not None and qty.milli_value(r) > _enforced(enforced):
        return f"maximum {name} usage per {kind} is {enforced}, but request is {r}"
    return None


def max_request_constraint(
    kind: str, name: str, *, enforced: qty.Quantity, req: rq.ResourceList
) -> str | None:
    r = req.get(name)
    if r is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified"
    if qty.milli_value(r) > _enforced(enforced):
        return f"maximum {name} usage per {kind} is {enforced}, but request is {r}"
    return None


def ratio_constraint(
    kind: str, name: str, *, enforced: qty.Quantity, req: rq.ResourceList, lim: rq.ResourceList
) -> str | None:
    r, lm = req.get(name), lim.get(name)
    rv = qty.milli_value(r) if r is not None else 0
    lv = qty.milli_value(lm) if lm is not None else 0
    if rv == 0:
        return (
            f"{name} max limit to request ratio per {kind} is {enforced}, "
            "but no request is specified or request is 0"
        )
    if lv == 0:
        return (
            f"{name} max limit to request ratio per {kind} is {enforced}, "
            "but no limit is specified or limit is 0"
        )
    ratio = lv / rv
    if ratio * 1000 > qty.milli_value(enforced):
        return (
            f"{name} max limit to request ratio per {kind} is {enforced}, "
            f"but provided ratio is {ratio:f}"
        )
    return None


def _check_item(kind: str, item: Obj, *, req: rq.ResourceList, lim: rq.ResourceList) -> list[str]:
    out: list[str] = []
    for name, v in sorted(_rlist(item.get("min")).items()):
        out.append(min_constraint(kind, name, enforced=v, req=req, lim=lim) or "")
    for name, v in sorted(_rlist(item.get("max")).items()):
        out.append(max_constraint(kind, name, enforced=v, req=req, lim=lim) or "")
    for name, v in sorted(_rlist(item.get("maxLimitRequestRatio")).items()):
        out.append(ratio_constraint(kind, name, enforced=v, req=req, lim=lim) or "")
    return [m for m in out if m]


def merge_pod_defaults(limit_range: Obj, pod: Obj) -> None:
    """``PodMutateLimitFunc``: defaults of ``type: Container`` items into every container
    that does not state them, with the ``kubernetes.io/limit-ranger`` annotation."""
    requests: Obj = {}
    limits: Obj = {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            requests.update(item.get("defaultRequest") or {})
            limits.update(item.get("default") or {})
    if not requests and not limits:
        return
    notes: list[str] = []
    spec = pod.get("spec") or {}
    for key, label in (("containers", "container"), ("initContainers", "init container")):
        for c in spec.get(key) or []:
            res = c.setdefault("resources", {})
            set_req = _fill(res, "requests", defaults=requests)
            set_lim = _fill(res, "limits", defaults=limits)
            if set_req:
                notes.append(f"{', '.join(sorted(set_req))} request for {label} {c.get('name')}")
            if set_lim:
                notes.append(f"{', '.join(sorted(set_lim))} limit for {label} {c.get('name')}")
    if notes:
        ann = pod.setdefault("metadata", {}).setdefault("annotations", {})
        ann[LIMIT_RANGER_ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)


def _fill(res: Obj, which: str, *, defaults: Obj) -> list[str]:
    if not defaults:
        return []
    cur = res.get(which) or {}
    added = [k for k in defaults if k not in cur]
    for k in added:
        cur[k] = defaults[k]
    if cur:
        res[which] = cur
    return added


def validate_pod(limit_range: Obj, pod: Obj) -> list[str]:
    """``PodValidateLimitFunc``."""
    spec = pod.get("spec") or {}
    msgs: list[str] = []
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        kind = item.get("type")
        if kind == "Container":
            for key in ("containers", "initContainers"):
                for c in spec.get(key) or []:
                    res = c.get("resources") or {}
                    req, lim = _rlist(res.get("requests")), _rlist(res.get("limits"))
                    msgs += _check_item(kind, item, req=req, lim=lim)
        elif kind == "Pod":
            req = rq.pod_aggregate({k: v for k, v in spec.items() if k != "overhead"}, "requests")
            lim = rq.pod_aggregate({k: v for k, v in spec.items() if k != "overhead"}, "limits")
            msgs += _check_item(kind, item, req=req, lim=lim)
    return msgs


def validate_pvc(limit_range: Obj, pvc: Obj) -> list[str]:
    """``PersistentVolumeClaimValidateLimitFunc`` (requests only)."""
    req = _rlist(((pvc.get("spec") or {}).get("resources") or {}).get("requests"))
    msgs: list[str] = []
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") != "PersistentVolumeClaim":
            continue
        for name, v in sorted(_rlist(item.get("min")).items()):
            msgs.append(
                min_constraint("PersistentVolumeClaim", name, enforced=v, req=req, lim={}) or ""
            )
        for name, v in sorted(_rlist(item.get("max")).items()):
            msgs.append(
                max_request_constraint("PersistentVolumeClaim", name, enforced=v, req=req) or ""
            )
    return [m for m in msgs if m]


class LimitRanger:
    def __init__(self, *, store: ObjectStore, catalog: Catalog) -> None:
        self.store = store
        self.ranges = catalog.get("", "v1", "limitranges")

    async def __call__(
        self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: WriteContext
    ) -> None:
        if info.group != "" or info.kind not in ("Pod", "PersistentVolumeClaim") or ctx.subresource:
            return
        if info.kind == "Pod" and old is not None:
            return
        if old is not None and _meta(old).get("deletionTimestamp"):
            return
        namespace = str(_meta(obj).get("namespace") or "")
        ranges = await _list(self.store, self.ranges, namespace=namespace)
        if not ranges:
            return
        if info.kind == "Pod":
            for lr in ranges:
                merge_pod_defaults(lr, obj)
        for lr in ranges:
            msgs = validate_pod(lr, obj) if info.kind == "Pod" else validate_pvc(lr, obj)
            if msgs:
                raise admission_forbidden(info, obj, err=aggregate(msgs))


# ---- ResourceQuota ---------------------------------------------------------------------------


class QuotaAdmission:
    def __init__(self, *, store: ObjectStore, catalog: Catalog) -> None:
        self.store = store
        self.quotas = catalog.get("", "v1", "resourcequotas")
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, namespace: str) -> asyncio.Lock:
        lock = self._locks.get(namespace)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[namespace] = lock
        return lock

    async def __call__(
        self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: WriteContext
    ) -> None:
        if not info.namespaced or ctx.subresource or self.quotas is None:
            return
        ev = rq.evaluator_for(info.group, info.plural)
        if not ev.handles("CREATE" if old is None else "UPDATE"):
            return
        namespace = str(_meta(obj).get("namespace") or "")
        if (
            old is None
            and not (await self.store.ds.list(self.quotas.prefix(namespace), limit=1)).records
        ):
            return
        async with self._lock(namespace):
            await self._admit(info, obj, old, ctx=ctx, ev=ev, namespace=namespace)

    async def _admit(
        self, info: ResourceInfo, obj: Obj, old: Obj | None, *,
        ctx: WriteContext, ev: rq.Evaluator, namespace: str,
    ) -> None:  # fmt: skip
        assert self.quotas is not None
        validated = False
        for _attempt in range(QUOTA_RETRIES):
            quotas = await _list(self.store, self.quotas, namespace=namespace)
            if not quotas:
                return
            now = self.store.clock().timestamp()
            try:
                charge = rq.check_request(quotas, ev=ev, obj=obj, old=old, now=now)
            except rq.QuotaRejected as e:
                raise admission_forbidden(info, obj, err=str(e)) from None
            if not charge.used or ctx.dry_run or await self._exists(info, obj, old):
                return
            if not validated:
                self.store._validate(info, obj, old)  # noqa: SLF001 - fail before charging
                validated = True
            try:
                for i, used in charge.used.items():
                    await self._charge(quotas[i], used)
                return
            except errors.APIError as e:
                if e.reason != "Conflict":
                    raise
        raise errors.conflict("resourcequotas", "", "", "too many concurrent quota updates")

    async def _exists(self, info: ResourceInfo, obj: Obj, old: Obj | None) -> bool:
        """A create of a name that is taken fails with AlreadyExists: charge nothing."""
        m = _meta(obj)
        if old is not None or not m.get("name"):
            return False
        key = info.key(str(m.get("namespace") or ""), str(m["name"]))
        return await self.store.ds.get(key) is not None

    async def _charge(self, quota: Obj, used: rq.ResourceList) -> None:
        assert self.quotas is not None
        status = quota.setdefault("status", {})
        status["used"] = {**(status.get("used") or {}), **rq.format_list(used)}
        m = _meta(quota)
        await self.store.update(
            self.quotas, str(m.get("namespace")), str(m.get("name")), quota,
            ctx=system_ctx(subresource="status"),
        )  # fmt: skip


# ---- eviction ------------------------------------------------------------------------------


def too_many_requests(message: str, *, cause: str, retry_after: int = 0) -> errors.APIError:
    details: Obj = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    headers = {}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
        headers["Retry-After"] = str(retry_after)
    return errors.APIError(429, "TooManyRequests", message, details=details, headers=headers)


EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."


def stale_budget(name: str) -> errors.APIError:
    return too_many_requests(
        EVICTION_REFUSED,
        cause=f"The disruption budget {name} is still being processed by the server.",
        retry_after=10,
    )


def can_ignore_pdb(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(_meta(pod).get("deletionTimestamp"))


def pod_ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c.get("status") == "True"
    return False


def pdbs_for_pod(pdbs: list[Obj], pod: Obj) -> list[Obj]:
    """The PDBs whose selector matches the pod (an empty selector matches nothing here)."""
    labels = _meta(pod).get("labels") or {}
    out = []
    for pdb in pdbs:
        try:
            sel = from_label_selector((pdb.get("spec") or {}).get("selector"))
        except Exception:  # noqa: BLE001 - an invalid selector matches nothing
            continue
        if not sel.empty and sel.matches(labels):
            out.append(pdb)
    return out


def disruption_allowed_condition(status: Obj, *, now: str) -> None:
    """``pdbhelper.UpdateDisruptionAllowedCondition``."""
    allowed = int(status.get("disruptionsAllowed") or 0) > 0
    cond = {
        "type": "DisruptionAllowed",
        "status": "True" if allowed else "False",
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "lastTransitionTime": now,
        "reason": "SufficientPods" if allowed else "InsufficientPods",
        "message": "",
    }
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    for i, c in enumerate(conds):
        if c.get("type") == "DisruptionAllowed":
            if c.get("status") == cond["status"]:
                cond["lastTransitionTime"] = c.get("lastTransitionTime") or now
            cond["message"] = c.get("message", "") if c.get("reason") == cond["reason"] else ""
            conds[i] = cond
            break
    else:
        conds.append(cond)
    status["conditions"] = conds


class EvictionCheck:
    """``state.caches["eviction_check"](namespace, name)``: raises when the eviction
    would break the pod's disruption budget, else records it in the budget."""

    def __init__(self, *, store: ObjectStore, catalog: Catalog) -> None:
        self.store = store
        self.pods = catalog.get("", "v1", "pods")
        self.pdbs = catalog.get("policy", "v1", "poddisruptionbudgets")

    async def __call__(self, namespace: str, name: str, *, dry_run: bool = False) -> None:
        if self.pods is None or self.pdbs is None:
            return
        rec = await self.store.ds.get(self.pods.key(namespace, name))
        if rec is None:
            return  # the delete answers 404
        pod = rec.obj()
        if can_ignore_pdb(pod):
            return
        matching = pdbs_for_pod(await _list(self.store, self.pdbs, namespace=namespace), pod)
        if len(matching) > 1:
            raise errors.APIError(
                500, "",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                "does not support.",
            )  # fmt: skip
        if not matching:
            return
        pdb = matching[0]
        status = pdb.get("status") or {}
        if not pod_ready(pod):
            if (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
                return
            desired = int(status.get("desiredHealthy") or 0)
            if int(status.get("currentHealthy") or 0) >= desired > 0:
                return
        await self._decrement(pdb, pod_name=name, dry_run=dry_run)

    async def _decrement(self, pdb: Obj, *, pod_name: str, dry_run: bool) -> None:
        assert self.pdbs is not None
        m = _meta(pdb)
        namespace, name = str(m.get("namespace")), str(m.get("name"))
        for attempt in range(EVICTION_RETRIES):
            if attempt:
                rec = await self.store.ds.get(self.pdbs.key(namespace, name))
                if rec is None:
                    return
                pdb = rec.obj()
            if not self._check_and_decrement(pdb, pod_name=pod_name) or dry_run:
                return
            try:
                await self.store.update(
                    self.pdbs, namespace, name, pdb, ctx=system_ctx(subresource="status")
                )
                return
            except errors.APIError as e:
                if e.reason != "Conflict":
                    raise
        raise errors.APIError(
            504, "Timeout",
            f"Timeout: couldn't update PodDisruptionBudget \"{name}\" due to conflicts",
            details={"retryAfterSeconds": 10},
        )  # fmt: skip

    def _check_and_decrement(self, pdb: Obj, *, pod_name: str) -> bool:
        m = _meta(pdb)
        name = str(m.get("name"))
        status = pdb.setdefault("status", {})
        if int(status.get("observedGeneration") or 0) < int(m.get("generation") or 0):
            raise stale_budget(name)
        allowed = int(status.get("disruptionsAllowed") or 0)
        what = f'poddisruptionbudget.policy "{name}" is forbidden'
        if allowed < 0:
            raise errors.APIError(403, "Forbidden", f"{what}: pdb disruptions allowed is negative",
                                  details={"name": name, "group": "policy", "kind": "poddisruptionbudget"})  # fmt: skip
        if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
            raise errors.APIError(
                403, "Forbidden",
                f"{what}: DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                details={"name": name, "group": "policy", "kind": "poddisruptionbudget"},
            )  # fmt: skip
        if allowed == 0:
            raise too_many_requests(
                EVICTION_REFUSED,
                cause=f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
                f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently",
            )
        now = now_rfc3339(self.store.clock())
        status["disruptionsAllowed"] = allowed - 1
        if allowed - 1 == 0:
            disruption_allowed_condition(status, now=now)
        disrupted = dict(status.get("disruptedPods") or {})
        disrupted[pod_name] = now
        status["disruptedPods"] = disrupted
        return True


# ---- wiring ------------------------------------------------------------------------------


def install(*, store: ObjectStore, catalog: Catalog, state: Any) -> None:
    """Append the admission plugins (Priority, LimitRanger, ResourceQuota) to
    ``store.admit``, set the eviction check, and create the system PriorityClasses."""
    plugins: list[Callable[[ResourceInfo, Obj, Obj | None, WriteContext], Awaitable[None]]] = [
        PriorityAdmission(store=store, catalog=catalog),
        LimitRanger(store=store, catalog=catalog),
        QuotaAdmission(store=store, catalog=catalog),
    ]
    store.admit.extend(plugins)
    state.caches["eviction_check"] = EvictionCheck(store=store, catalog=catalog)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = loop.create_task(
        ensure_system_priority_classes(store=store, catalog=catalog), name="k3py-priorityclasses"
    )
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


__all__ = [
    "EvictionCheck",
    "LimitRanger",
    "PriorityAdmission",
    "QuotaAdmission",
    "ensure_system_priority_classes",
    "install",
]
