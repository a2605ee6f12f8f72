"""PodDisruptionBudget status (upstream's disruption controller).

For each PDB: the pods its selector matches in its namespace; ``expectedPods`` and
``desiredHealthy`` from ``minAvailable``/``maxUnavailable`` (an integer ``minAvailable``
counts the pods; a percentage or ``maxUnavailable`` needs the scale of the pods'
controllers — Deployment, ReplicaSet, StatefulSet, ReplicationController, or any
builtin's ``scale`` subresource); ``currentHealthy`` counts Ready pods that are neither
being deleted nor recently evicted (``disruptedPods``, written by the eviction API and
forgotten after ``DELETION_TIMEOUT``); ``disruptionsAllowed`` = current − desired (0 when
nothing is expected).  A PDB that cannot be computed gets ``disruptionsAllowed`` 0 and a
``SyncFailed`` condition (upstream's fail-safe), so evictions stop rather than overrun.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from k3py.apimachinery.selectors import Selector
from k3py.client import Conflict, NotFound
from k3py.client.resources import (
    DEPLOYMENTS,
    PODDISRUPTIONBUDGETS,
    PODS,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    STATEFULSETS,
    for_kind,
)
from k3py.server.controllers.base import (
    Controller,
    controller_ref,
    is_deleting,
    meta,
    parse_time,
    pod_is_ready,
)
from k3py.server.controllers.podcontrol import selector_of

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.disruption")

DELETION_TIMEOUT = 120.0  # seconds an evicted pod may take to be marked for deletion


class SyncError(Exception):
    pass


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        try:
            return int(text)
        except ValueError:
            raise SyncError(
                "invalid value for IntOrString: invalid type: string is not a percentage"
            ) from None
    try:
        pct = int(text[:-1])
    except ValueError:
        raise SyncError(
            f'invalid value "{text}": strconv.Atoi: parsing "{text[:-1]}": invalid syntax'
        ) from None  # noqa: E501
    scaled = pct * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def condition(status: Obj, *, allowed: bool, now: str, reason: str = "", message: str = "") -> None:
    """``apimeta.SetStatusCondition`` for the DisruptionAllowed condition."""
    reason = reason or ("SufficientPods" if allowed else "InsufficientPods")
    new = {
        "type": "DisruptionAllowed",
        "status": "True" if allowed else "False",
        "observedGeneration": int(status.get("observedGeneration") or 0),
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
    conds = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    for i, c in enumerate(conds):
        if c.get("type") == "DisruptionAllowed":
            if c.get("status") == new["status"]:
                new["lastTransitionTime"] = c.get("lastTransitionTime") or now
            conds[i] = new
            break
    else:
        conds.append(new)
    status["conditions"] = conds


def conditions_up_to_date(pdb: Obj) -> bool:
    status = pdb.get("status") or {}
    if int(status.get("observedGeneration") or 0) != int(meta(pdb).get("generation") or 0):
        return False
    for c in status.get("conditions") or []:
        if c.get("type") == "DisruptionAllowed":
            if int(status.get("disruptionsAllowed") or 0) > 0:
                return bool(c.get("status") == "True" and c.get("reason") == "SufficientPods")
            return bool(c.get("status") == "False" and c.get("reason") == "InsufficientPods")
    return False


class DisruptionController(Controller):
    name = "disruption"

    def setup(self) -> None:
        self.pdbs = self.ctx.informer(PODDISRUPTIONBUDGETS)
        self.pods = self.ctx.informer(PODS)
        self.rcs = self.ctx.informer(REPLICATIONCONTROLLERS)
        self.rss = self.ctx.informer(REPLICASETS)
        self.deployments = self.ctx.informer(DEPLOYMENTS)
        self.statefulsets = self.ctx.informer(STATEFULSETS)
        self.watch(self.pdbs)
        self.pods.add_handler(
            on_add=self._pod_changed,
            on_update=lambda _old, new: self._pod_changed(new),
            on_delete=self._pod_changed,
            readonly=True,
        )

    async def started(self) -> None:
        self.enqueue_all(self.pdbs)

    def _pod_changed(self, pod: Obj) -> None:
        labels = meta(pod).get("labels") or {}
        for pdb in self.pdbs.list(str(meta(pod).get("namespace") or "")):
            sel = self._selector(pdb)
            if sel.matches(labels):
                self.enqueue(pdb)

    @staticmethod
    def _selector(pdb: Obj) -> Selector:
        return selector_of((pdb.get("spec") or {}).get("selector"))

    # ---- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        namespace, _, name = key.partition("/")
        pdb = self.pdbs.get(name, namespace=namespace)
        if pdb is None:
            return None
        try:
            return await self._sync(pdb)
        except Conflict:
            raise
        except NotFound:
            return None
        except SyncError as e:
            self.recorder.warning(
                pdb,
                "CalculateExpectedPodCountFailed",
                f"Failed to calculate the number of expected pods: {e}",
            )
            await self._fail_safe(pdb, str(e))
            return None

    def _pods_for(self, pdb: Obj) -> list[Obj]:
        sel = self._selector(pdb)
        ns = str(meta(pdb).get("namespace") or "")
        return [p for p in self.pods.list(ns) if sel.matches(meta(p).get("labels") or {})]

    async def _sync(self, pdb: Obj) -> float | None:
        pods = self._pods_for(pdb)
        if not pods:
            self.recorder.normal(pdb, "NoPods", "No matching pods found")
        expected, desired, unmanaged = await self._expected(pdb, pods)
        if unmanaged:
            self.recorder.warning(
                pdb,
                "UnmanagedPods",
                "Pods selected by this PodDisruptionBudget (selector: "
                f"{(pdb.get('spec') or {}).get('selector')}) were found to be unmanaged. As a "
                "result, the status of the PDB cannot be calculated correctly, which may result "
                'in undefined behavior. To account for these pods please set ".spec.minAvailable" '
                "field of the PDB to an integer value.",
            )
        now = self.ctx.clock()
        disrupted, recheck = self._disrupted(pdb, pods, now=now)
        healthy = sum(
            1
            for p in pods
            if not is_deleting(p) and meta(p).get("name") not in disrupted and pod_is_ready(p)
        )
        await self._update(
            pdb, current=healthy, desired=desired, expected=expected, disrupted=disrupted
        )
        return recheck

    async def _expected(self, pdb: Obj, pods: list[Obj]) -> tuple[int, int, list[str]]:
        spec = pdb.get("spec") or {}
        if spec.get("maxUnavailable") is not None:
            expected, unmanaged = await self._scale(pods)
            max_unavailable = scaled_value(spec["maxUnavailable"], expected, round_up=True)
            return expected, max(expected - max_unavailable, 0), unmanaged
        min_available = spec.get("minAvailable")
        if isinstance(min_available, int):
            return len(pods), min_available, []
        if min_available is not None:
            expected, unmanaged = await self._scale(pods)
            return expected, scaled_value(min_available, expected, round_up=True), unmanaged
        return 0, 0, []

    async def _scale(self, pods: list[Obj]) -> tuple[int, list[str]]:
        scales: dict[str, int] = {}
        unmanaged: list[str] = []
        for pod in pods:
            ref = controller_ref(pod)
            if ref is None:
                unmanaged.append(str(meta(pod).get("name")))
                continue
            if ref.get("uid") in scales:
                continue
            found = await self._find_controller(ref, str(meta(pod).get("namespace") or ""))
            if found is None:
                raise SyncError(f'found no controllers for pod "{meta(pod).get("name")}"')
            scales[found[0]] = found[1]
        return sum(scales.values()), unmanaged

    async def _find_controller(self, ref: Obj, namespace: str) -> tuple[str, int] | None:
        kind, group = ref.get("kind"), str(ref.get("apiVersion") or "").rpartition("/")[0]
        name, uid = str(ref.get("name") or ""), ref.get("uid")
        if kind == "ReplicationController" and group == "":
            return _owned(self.rcs.get(name, namespace=namespace), uid)
        if kind == "ReplicaSet" and group in ("apps", "extensions"):
            rs = self.rss.get(name, namespace=namespace)
            if rs is None or meta(rs).get("uid") != uid:
                return None
            owner = controller_ref(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                dep = self.deployments.get(str(owner.get("name")), namespace=namespace)
                return _owned(dep, owner.get("uid"))
            return _owned(rs, uid)
        if kind == "StatefulSet" and group == "apps":
            return _owned(self.statefulsets.get(name, namespace=namespace), uid)
        res = for_kind(str(ref.get("apiVersion") or ""), str(kind or ""))
        if res is None:
            return None
        try:
            scale = await self.client.get(res, name, namespace=namespace, subresource="scale")
        except Exception:  # noqa: BLE001 - not found, or no scale subresource
            return None
        if meta(scale).get("uid") != uid:
            return None
        return str(uid), int((scale.get("spec") or {}).get("replicas") or 0)

    def _disrupted(
        self, pdb: Obj, pods: list[Obj], *, now: float
    ) -> tuple[dict[str, str], float | None]:
        known = (pdb.get("status") or {}).get("disruptedPods") or {}
        out: dict[str, str] = {}
        recheck: float | None = None
        for pod in pods:
            pname = str(meta(pod).get("name"))
            if is_deleting(pod) or pname not in known:
                continue
            t = parse_time(known[pname])
            if t is None:
                continue
            expires = t + DELETION_TIMEOUT
            if expires < now:
                self.recorder.warning(
                    pod,
                    "NotDeleted",
                    f"Pod was expected by PDB {meta(pdb).get('namespace')}/{meta(pdb).get('name')} "
                    "to be deleted but it wasn't",
                )
                continue
            out[pname] = known[pname]
            recheck = expires - now if recheck is None else min(recheck, expires - now)
        return out, recheck

    async def _update(
        self, pdb: Obj, *, current: int, desired: int, expected: int, disrupted: dict[str, str]
    ) -> None:
        allowed = current - desired
        if expected <= 0 or allowed <= 0:
            allowed = 0
        status = pdb.get("status") or {}
        generation = int(meta(pdb).get("generation") or 0)
        if (
            status.get("currentHealthy") == current
            and status.get("desiredHealthy") == desired
            and status.get("expectedPods") == expected
            and status.get("disruptionsAllowed") == allowed
            and (status.get("disruptedPods") or {}) == disrupted
            and status.get("observedGeneration") == generation
            and conditions_up_to_date(pdb)
        ):
            return
        new: Obj = {"observedGeneration": generation}
        if disrupted:
            new["disruptedPods"] = disrupted
        new.update(
            disruptionsAllowed=allowed, currentHealthy=current, desiredHealthy=desired,
            expectedPods=expected, conditions=status.get("conditions") or [],
        )  # fmt: skip
        condition(new, allowed=allowed > 0, now=self.ctx.now_rfc3339())
        pdb["status"] = new
        await self.client.update_status(PODDISRUPTIONBUDGETS, pdb)

    async def _fail_safe(self, pdb: Obj, message: str) -> None:
        status = dict(pdb.get("status") or {})
        status["disruptionsAllowed"] = 0
        condition(
            status, allowed=False, now=self.ctx.now_rfc3339(), reason="SyncFailed", message=message
        )
        pdb["status"] = status
        await self.client.update_status(PODDISRUPTIONBUDGETS, pdb)


def _owned(obj: Obj | None, uid: Any) -> tuple[str, int] | None:
    if obj is None or meta(obj).get("uid") != uid:
        return None
    replicas = (obj.get("spec") or {}).get("replicas")
    return str(uid), int(replicas if replicas is not None else 1)


CONTROLLERS = [DisruptionController]
