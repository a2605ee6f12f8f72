"""StatefulSets: pods with stable names, hostnames and storage, as upstream's
``pkg/controller/statefulset`` (v1.32).

One reconcile of a StatefulSet, from the informer caches:

1. Claim its pods (adopt orphans named ``<set>-<ordinal>`` that match the selector,
   release owned pods that stopped matching) and its ControllerRevisions.
2. Revisions (``history.py``): the *update* revision is the current template (an equal
   older revision is re-numbered rather than duplicated); the *current* revision is the
   one ``status.currentRevision`` names.
3. Sort pods into ``replicas`` (ordinals ``start .. start+replicas-1``, missing ones
   built at the current revision below the partition, else at the update revision) and
   ``condemned`` (ordinals beyond, highest first).
4. Replicas in ordinal order: failed or succeeded pods are deleted and recreated;
   missing pods get their PVCs (``<template>-<set>-<ordinal>``) and then the pod.  With
   ``OrderedReady`` (monotonic) the round ends at the first pod created, terminating, or
   not Running+Ready+available; ``Parallel`` processes all of them.
5. PVC owner references follow ``persistentVolumeClaimRetentionPolicy``: whenDeleted
   Delete → a controller reference to the set; whenScaled Delete → a controller reference
   to the pod once it is scaled down, so the garbage collector deletes the claim with it.
6. Condemned pods are deleted from the highest ordinal (monotonic: one at a time, only
   when every replica is healthy); then RollingUpdate deletes the highest-ordinal pod at
   or above the partition whose revision is not the update revision (waiting for each
   replacement to be healthy; ``maxUnavailable`` > 1 deletes several at once).  OnDelete
   replaces a pod only when someone deletes it.
7. Status (replicas, ready, available, current, updated, revisions, collisionCount,
   observedGeneration; current := update once all replicas are updated and ready) and
   history truncated to ``revisionHistoryLimit`` (revisions pods still use are kept).

Pods carry ``controller-revision-hash: <revision name>``,
``statefulset.kubernetes.io/pod-name`` and ``apps.kubernetes.io/pod-index``; ``hostname``
is the pod name and ``subdomain`` the set's ``serviceName``.  Events are upstream's:
``SuccessfulCreate "create Pod web-0 in StatefulSet web successful"``, ``SuccessfulDelete``,
``create Claim www-web-0 Pod web-0 in StatefulSet web success``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from k3py.client import AlreadyExists, ApiError, Conflict, NotFound, key_of, split_key
from k3py.client.resources import (
    CONTROLLERREVISIONS,
    PERSISTENTVOLUMECLAIMS,
    PODS,
    STATEFULSETS,
)
from k3py.server.controllers.base import (
    Controller,
    controller_ref,
    is_deleting,
    meta,
    pod_is_available,
    pod_is_ready,
)
from k3py.server.controllers.history import (
    REVISION_HASH_LABEL,
    HistoryWriter,
    apply_revision,
    claim_revisions,
    equal_revision,
    find_equal,
    new_revision,
    next_revision,
    revisions_to_truncate,
    sort_revisions,
)
from k3py.server.controllers.podcontrol import (
    CONTROLLER_INDEX,
    FreshObjects,
    by_controller,
    claim,
    controller_ref_for,
    labels_of,
    orphan_key,
    owner_alive_check,
    pod_from_template,
    selector_of,
    uid_of,
)

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.statefulset")

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
RETAIN, DELETE = "Retain", "Delete"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")
_STALE_CLAIM_RETRY = 1.0


def namespace_terminating(e: ApiError) -> bool:
    return any("NamespaceTerminating" in (c.get("reason"), c.get("type")) for c in e.causes)


# ---- identity --------------------------------------------------------------------------


def parent_and_ordinal(pod: Obj) -> tuple[str, int]:
    """(set name, ordinal) from a pod name ``<set>-<ordinal>``; ordinal -1 if none."""
    m = _ORDINAL.match(str(meta(pod).get("name") or ""))
    if m is None:
        return "", -1
    return m.group(1), int(m.group(2))


def ordinal_of(pod: Obj) -> int:
    return parent_and_ordinal(pod)[1]


def start_ordinal(sts: Obj) -> int:
    ordinals = (sts.get("spec") or {}).get("ordinals") or {}
    return int(ordinals.get("start") or 0)


def replicas_of(sts: Obj) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def in_ordinal_range(sts: Obj, ordinal: int) -> bool:
    start = start_ordinal(sts)
    return start <= ordinal < start + replicas_of(sts)


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{meta(sts)['name']}-{ordinal}"


def is_member(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    return ordinal >= 0 and parent == meta(sts).get("name")


def identity_matches(sts: Obj, pod: Obj) -> bool:
    parent, ordinal = parent_and_ordinal(pod)
    m, labels = meta(pod), labels_of(pod)
    return (
        ordinal >= 0
        and parent == meta(sts).get("name")
        and m.get("namespace") == meta(sts).get("namespace")
        and labels.get(POD_NAME_LABEL) == m.get("name")
        and labels.get(POD_INDEX_LABEL) == str(ordinal)
    )


def pod_revision(pod: Obj | None) -> str:
    return str(labels_of(pod or {}).get(REVISION_HASH_LABEL) or "")


# ---- pod states ---------------------------------------------------------------------------


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def running_and_ready(pod: Obj) -> bool:
    return _phase(pod) == "Running" and pod_is_ready(pod)


def running_and_available(pod: Obj, *, min_ready: int, now: float) -> bool:
    return _phase(pod) == "Running" and pod_is_available(pod, min_ready_seconds=min_ready, now=now)


def is_healthy(pod: Obj) -> bool:
    return running_and_ready(pod) and not is_deleting(pod)


# ---- storage ------------------------------------------------------------------------------


def claim_name(template: Obj, *, sts: Obj, ordinal: int) -> str:
    return f"{meta(template).get('name')}-{meta(sts)['name']}-{ordinal}"


def claims_for(sts: Obj, ordinal: int) -> dict[str, Obj]:
    """The PVCs of ordinal ``ordinal``, by claim template name (getPersistentVolumeClaims)."""
    spec = sts.get("spec") or {}
    match_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    out: dict[str, Obj] = {}
    for template in spec.get("volumeClaimTemplates") or []:
        tmeta = meta(template)
        cmeta: Obj = {
            k: orjson.loads(orjson.dumps(v))
            for k, v in tmeta.items()
            if k in ("labels", "annotations", "finalizers")
        }
        cmeta["name"] = claim_name(template, sts=sts, ordinal=ordinal)
        cmeta["namespace"] = meta(sts).get("namespace")
        cmeta["labels"] = {**(cmeta.get("labels") or {}), **match_labels}
        out[str(tmeta.get("name"))] = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": cmeta,
            "spec": orjson.loads(orjson.dumps(template.get("spec") or {})),
        }
    return out


def retention_policy(sts: Obj) -> tuple[str, str]:
    """(whenDeleted, whenScaled); anything unknown is Retain."""
    p = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    deleted = p.get("whenDeleted") if p.get("whenDeleted") in (RETAIN, DELETE) else RETAIN
    scaled = p.get("whenScaled") if p.get("whenScaled") in (RETAIN, DELETE) else RETAIN
    return str(deleted), str(scaled)


_STS_KIND = ("apps/v1", "StatefulSet")
_POD_KIND = ("v1", "Pod")


def _matches_ref(ref: Obj, *, owner: Obj, kind: tuple[str, str]) -> bool:
    return (ref.get("apiVersion"), ref.get("kind")) == kind and ref.get("name") == meta(owner).get(
        "name"
    )


def _refs(obj: Obj) -> list[Obj]:
    return list(meta(obj).get("ownerReferences") or [])


def _has_ref(claim_: Obj, owner: Obj) -> bool:
    uid = uid_of(owner)
    return bool(uid) and any(r.get("uid") == uid for r in _refs(claim_))


def _has_stale_ref(claim_: Obj, owner: Obj, *, kind: tuple[str, str]) -> bool:
    for ref in _refs(claim_):
        if _matches_ref(ref, owner=owner, kind=kind):
            return ref.get("uid") != uid_of(owner)
    return False


def _unexpected_controller(claim_: Obj, sts: Obj, pod: Obj) -> bool:
    if retention_policy(sts) == (RETAIN, RETAIN):
        return False
    for ref in _refs(claim_):
        if _matches_ref(ref, owner=sts, kind=_STS_KIND):
            if ref.get("uid") != uid_of(sts):
                return True
            continue
        if _matches_ref(ref, owner=pod, kind=_POD_KIND):
            if ref.get("uid") != uid_of(pod):
                return True
            continue
        if ref.get("controller"):
            return True
    return False


def _non_controller_owner(claim_: Obj, sts: Obj, pod: Obj) -> bool:
    uids = {uid_of(sts), uid_of(pod)} - {""}
    return any(r.get("uid") in uids and not r.get("controller") for r in _refs(claim_))


def claim_owner_up_to_date(claim_: Obj, *, sts: Obj, pod: Obj) -> bool:
    """isClaimOwnerUpToDate: the claim's owner references agree with the policy."""
    if _has_stale_ref(claim_, sts, kind=_STS_KIND) or _has_stale_ref(claim_, pod, kind=_POD_KIND):
        return True  # left alone: a previous incarnation's, for the garbage collector
    if _unexpected_controller(claim_, sts, pod):
        return not (_has_ref(claim_, sts) or _has_ref(claim_, pod))
    if _non_controller_owner(claim_, sts, pod):
        return False
    deleted, scaled = retention_policy(sts)
    scaled_down = not in_ordinal_range(sts, ordinal_of(pod))
    want_set = deleted == DELETE and (scaled == RETAIN or not scaled_down)
    want_pod = scaled == DELETE and scaled_down
    return _has_ref(claim_, sts) == want_set and _has_ref(claim_, pod) == want_pod


def _controller_ref(owner: Obj, *, kind: tuple[str, str]) -> Obj:
    return {
        "apiVersion": kind[0],
        "kind": kind[1],
        "name": meta(owner)["name"],
        "uid": uid_of(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _add_controller_ref(refs: list[Obj], owner: Obj, *, kind: tuple[str, str]) -> list[Obj]:
    for ref in refs:
        if ref.get("uid") == uid_of(owner):
            ref["controller"] = True
            return refs
    return [*refs, _controller_ref(owner, kind=kind)]


def claim_owner_refs(claim_: Obj, *, sts: Obj, pod: Obj) -> list[Obj]:
    """updateClaimOwnerRefForSetAndPod: the owner references the claim should have."""
    unexpected = _unexpected_controller(claim_, sts, pod)
    refs = [
        dict(r)
        for r in _refs(claim_)
        if not (
            _matches_ref(r, owner=sts, kind=_STS_KIND) or _matches_ref(r, owner=pod, kind=_POD_KIND)
        )
    ]
    if unexpected:
        return refs
    deleted, scaled = retention_policy(sts)
    scaled_down = not in_ordinal_range(sts, ordinal_of(pod))
    if scaled == DELETE and scaled_down and uid_of(pod):
        refs = _add_controller_ref(refs, pod, kind=_POD_KIND)
    if deleted == DELETE and (scaled == RETAIN or not scaled_down):
        refs = _add_controller_ref(refs, sts, kind=_STS_KIND)
    return refs


# ---- new pods -----------------------------------------------------------------------------


def new_pod(sts: Obj, *, ordinal: int, revision: str) -> Obj:
    """The pod of ``ordinal`` from ``sts``'s template (newStatefulSetPod)."""
    spec = sts.get("spec") or {}
    name = pod_name(sts, ordinal)
    pod = pod_from_template(
        spec.get("template") or {},
        owner=sts,
        owner_ref=controller_ref_for(sts, res=STATEFULSETS),
        name=name,
    )
    labels = pod["metadata"].setdefault("labels", {})
    labels[POD_NAME_LABEL] = name
    labels[POD_INDEX_LABEL] = str(ordinal)
    labels[REVISION_HASH_LABEL] = revision
    pspec = pod["spec"]
    pspec["hostname"] = name
    if spec.get("serviceName"):
        pspec["subdomain"] = spec["serviceName"]
    claims = claims_for(sts, ordinal)
    volumes = [
        {"name": tname, "persistentVolumeClaim": {"claimName": meta(c)["name"]}}
        for tname, c in claims.items()
    ]
    volumes += [v for v in pspec.get("volumes") or [] if v.get("name") not in claims]
    if volumes:
        pspec["volumes"] = volumes
    return pod


# ---- status -------------------------------------------------------------------------------


def compute_status(
    pods: list[Obj], *, min_ready: int, now: float, current: str, update: str
) -> dict[str, int]:
    replicas = ready = available = current_n = updated = 0
    for pod in pods:
        replicas += 1
        if running_and_ready(pod):
            ready += 1
            if running_and_available(pod, min_ready=min_ready, now=now):
                available += 1
        if not is_deleting(pod):
            rev = pod_revision(pod)
            current_n += rev == current
            updated += rev == update
    return {
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": available,
        "currentReplicas": current_n,
        "updatedReplicas": updated,
    }


def build_status(
    sts: Obj, *, counts: dict[str, int], current: str, update: str, collisions: int
) -> Obj:
    """The status object as upstream serializes it (zero counts omitted where it omits
    them), with completeRollingUpdate applied."""
    strategy = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type") or "RollingUpdate"
    counts = dict(counts)
    if (
        strategy == "RollingUpdate"
        and counts["updatedReplicas"] == counts["replicas"]
        and counts["readyReplicas"] == counts["replicas"]
    ):
        counts["currentReplicas"] = counts["updatedReplicas"]
        current = update
    status: Obj = {}
    generation = int(meta(sts).get("generation") or 0)
    if generation:
        status["observedGeneration"] = generation
    status["replicas"] = counts["replicas"]
    for f in ("readyReplicas", "currentReplicas", "updatedReplicas"):
        if counts[f]:
            status[f] = counts[f]
    if current:
        status["currentRevision"] = current
    if update:
        status["updateRevision"] = update
    status["collisionCount"] = collisions
    conditions = (sts.get("status") or {}).get("conditions")
    if conditions:
        status["conditions"] = conditions
    status["availableReplicas"] = counts["availableReplicas"]
    return status


def _max_unavailable(sts: Obj) -> int:
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    value = rolling.get("maxUnavailable")
    if value is None:
        return 1
    if isinstance(value, str) and value.endswith("%"):
        try:
            pct = int(value[:-1])
        except ValueError:
            return 1
        n = replicas_of(sts) * pct // 100  # rounded down, as upstream
        return max(1, n)
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def _partition(sts: Obj) -> int:
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(rolling.get("partition") or 0)


# ---- one round ----------------------------------------------------------------------------


class _Exit(Exception):
    """Stop processing this round (monotonic mode waiting for a pod)."""


class _ClaimBeingDeleted(Exception):
    """A claim the pod needs is still being deleted: wait for it to go."""


@dataclass
class _Round:
    """The state of one sync of one StatefulSet (upstream's updateStatefulSet)."""

    ctl: StatefulSetController
    sts: Obj
    current_rev: Obj
    update_rev: Obj
    now: float
    current_set: Obj = field(init=False)
    update_set: Obj = field(init=False)
    replicas: list[Obj | None] = field(default_factory=list)
    condemned: list[Obj] = field(default_factory=list)
    monotonic: bool = True
    requeue: float | None = None
    partitioned: bool = False

    def __post_init__(self) -> None:
        self.current_set = apply_revision(self.sts, self.current_rev)
        self.update_set = apply_revision(self.sts, self.update_rev)
        self.monotonic = (self.sts.get("spec") or {}).get("podManagementPolicy") != "Parallel"

    @property
    def current_name(self) -> str:
        return str(meta(self.current_rev).get("name") or "")

    @property
    def update_name(self) -> str:
        return str(meta(self.update_rev).get("name") or "")

    @property
    def min_ready(self) -> int:
        return int((self.sts.get("spec") or {}).get("minReadySeconds") or 0)

    def pods(self) -> list[Obj]:
        return [p for p in [*self.replicas, *self.condemned] if p is not None]

    def partition_pods(self, pods: list[Obj]) -> None:
        start, count = start_ordinal(self.sts), replicas_of(self.sts)
        self.replicas = [None] * count
        for pod in pods:
            ordinal = ordinal_of(pod)
            if in_ordinal_range(self.sts, ordinal):
                self.replicas[ordinal - start] = pod
            elif ordinal >= 0:
                self.condemned.append(pod)
        self.condemned.sort(key=ordinal_of, reverse=True)
        self.partitioned = True

    def versioned_pod(self, ordinal: int) -> Obj:
        """newVersionedStatefulSetPod: below the partition (or the current replicas, for
        a RollingUpdate without parameters), the current revision; else the update one."""
        cs = self.current_set
        strategy = (cs.get("spec") or {}).get("updateStrategy") or {}
        rolling = strategy.get("rollingUpdate")
        start = start_ordinal(cs)
        current_replicas = int((cs.get("status") or {}).get("currentReplicas") or 0)
        if (
            strategy.get("type", "RollingUpdate") == "RollingUpdate"
            and rolling is None
            and ordinal < start + current_replicas
        ) or (rolling is not None and ordinal < start + int(rolling.get("partition") or 0)):
            return new_pod(cs, ordinal=ordinal, revision=self.current_name)
        return new_pod(self.update_set, ordinal=ordinal, revision=self.update_name)

    def first_unhealthy(self) -> Obj | None:
        for pod in self.replicas:
            if pod is not None and not is_healthy(pod):
                return pod
        for pod in reversed(self.condemned):
            if not is_healthy(pod):
                return pod
        return None

    async def run_for_all(self, count: int, fn: Callable[[int], Awaitable[None]]) -> bool:
        """Monotonic: in order, stopping at the first ``_Exit`` (returns True).
        Parallel: all at once; errors are raised."""
        if self.monotonic:
            for i in range(count):
                try:
                    await fn(i)
                except _Exit:
                    return True
            return False
        results = await asyncio.gather(*(fn(i) for i in range(count)), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, _Exit):
                raise r
        return False

    # -- the steps --

    async def process_replica(self, i: int) -> None:
        ctl, sts = self.ctl, self.sts
        pod = self.replicas[i]
        ordinal = i + start_ordinal(sts)
        if pod is not None and _phase(pod) in ("Failed", "Succeeded") and not is_deleting(pod):
            name = meta(pod)["name"]
            ns = meta(sts).get("namespace")
            what = f"StatefulSet {ns}/{meta(sts)['name']} is recreating"
            if _phase(pod) == "Failed":
                ctl.recorder.warning(
                    ctl.target(sts), "RecreatingFailedPod", f"{what} failed Pod {name}"
                )
            else:
                ctl.recorder.normal(
                    ctl.target(sts), "RecreatingTerminatedPod", f"{what} terminated Pod {name}"
                )
            await ctl.delete_pod(sts, pod)
            pod = self.replicas[i] = None
        if pod is None:
            fresh = self.versioned_pod(ordinal)
            if ctl.claim_is_stale(sts, fresh):
                self.requeue = _STALE_CLAIM_RETRY
                raise _Exit
            try:
                created = await ctl.create_pod(self.update_set, fresh)
            except _ClaimBeingDeleted:
                self.requeue = _STALE_CLAIM_RETRY
                raise _Exit from None
            if created is None:  # already there (our cache lags): look again soon
                raise _Exit
            self.replicas[i] = created
            if self.monotonic:
                raise _Exit
            return
        if _phase(pod) == "Pending":
            try:
                await ctl.create_claims(sts, pod)
            except _ClaimBeingDeleted:
                self.requeue = _STALE_CLAIM_RETRY
                raise _Exit from None
        if is_deleting(pod) and self.monotonic:
            raise _Exit
        if not running_and_ready(pod) and self.monotonic:
            raise _Exit
        if (
            not running_and_available(pod, min_ready=self.min_ready, now=self.now)
            and self.monotonic
        ):
            raise _Exit
        if not identity_matches(sts, pod):
            self.replicas[i] = await ctl.fix_identity(sts, pod)
        await ctl.fix_claims(self.update_set, pod)

    async def fix_condemned_claims(self, i: int) -> None:
        await self.ctl.fix_claims(self.update_set, self.condemned[i])

    async def process_condemned(self, i: int, *, first_unhealthy: Obj | None) -> None:
        pod = self.condemned[i]
        if is_deleting(pod):
            if self.monotonic:
                raise _Exit
            return
        is_first = first_unhealthy is not None and meta(first_unhealthy).get("name") == meta(
            pod
        ).get("name")
        if self.monotonic and not is_first:
            if not running_and_ready(pod):
                raise _Exit
            if not running_and_available(pod, min_ready=self.min_ready, now=self.now):
                raise _Exit
        await self.ctl.delete_pod(self.sts, pod)
        self.condemned[i] = _as_deleting(pod)
        raise _Exit

    async def rolling_update(self) -> None:
        strategy = (self.sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        rolling = strategy.get("rollingUpdate") or {}
        update_min = _partition(self.sts)
        replicas = [p for p in self.replicas if p is not None]
        if len(replicas) != len(self.replicas):
            return
        if rolling.get("maxUnavailable") is not None:
            await self._update_max_unavailable(replicas, update_min=update_min)
            return
        for target in range(len(replicas) - 1, update_min - 1, -1):
            pod = replicas[target]
            if pod_revision(pod) != self.update_name and not is_deleting(pod):
                await self.ctl.delete_pod(self.sts, pod)
                self.replicas[target] = _as_deleting(pod)
                return
            if not is_healthy(pod):
                return

    async def _update_max_unavailable(self, replicas: list[Obj], *, update_min: int) -> None:
        max_unavailable = _max_unavailable(self.sts)
        unavailable = sum(1 for p in replicas if not is_healthy(p))
        if unavailable >= max_unavailable:
            return
        budget = max_unavailable - unavailable
        for target in range(len(replicas) - 1, update_min - 1, -1):
            if budget <= 0:
                return
            pod = replicas[target]
            if pod_revision(pod) != self.update_name and not is_deleting(pod):
                await self.ctl.delete_pod(self.sts, pod)
                self.replicas[target] = _as_deleting(pod)
                budget -= 1

    async def run(self, pods: list[Obj]) -> None:
        self.partition_pods(pods)
        if is_deleting(self.sts):
            return
        if await self.run_for_all(len(self.replicas), self.process_replica):
            return
        if await self.run_for_all(len(self.condemned), self.fix_condemned_claims):
            return
        first = self.first_unhealthy()

        async def condemn(i: int) -> None:
            await self.process_condemned(i, first_unhealthy=first)

        if await self.run_for_all(len(self.condemned), condemn):
            return
        await self.rolling_update()


def _as_deleting(pod: Obj) -> Obj:
    out = dict(pod)
    out["metadata"] = {**meta(pod), "deletionTimestamp": "deleting"}
    return out


# ---- the controller -------------------------------------------------------------------------


class StatefulSetController(Controller):
    name = "statefulset"
    workers = 3

    def setup(self) -> None:
        self.sets = self.ctx.informer(STATEFULSETS)
        self.pods = self.ctx.informer(PODS, indexers={CONTROLLER_INDEX: by_controller})
        self.revisions = self.ctx.informer(
            CONTROLLERREVISIONS, indexers={CONTROLLER_INDEX: by_controller}
        )
        self.claims = self.ctx.informer(PERSISTENTVOLUMECLAIMS)
        self.history = HistoryWriter(self.client)
        self.fresh = FreshObjects()
        self.fresh_claims = FreshObjects()
        self.sets.add_handler(
            on_add=self.enqueue, on_update=self._set_updated, on_delete=self._set_deleted
        )
        self.pods.add_handler(
            on_add=self._pod_changed,
            on_update=self._pod_updated,
            on_delete=self._pod_changed,
            readonly=True,
        )
        self.revisions.add_handler(
            on_add=self._owned_changed,
            on_update=lambda _o, n: self._owned_changed(n),
            on_delete=self._owned_changed,
        )
        self.claims.add_handler(on_update=lambda _o, n: self.fresh_claims.seen(n))

    async def started(self) -> None:
        self.enqueue_all(self.sets)

    # ---- handlers ------------------------------------------------------------------

    def _set_updated(self, old: Obj, new: Obj) -> None:
        self.fresh.seen(new)
        self.enqueue(new)

    def _set_deleted(self, obj: Obj) -> None:
        self.fresh.forget(key_of(obj))
        self.enqueue(obj)

    def _owner_key(self, obj: Obj) -> str | None:
        ref = controller_ref(obj)
        ns = meta(obj).get("namespace") or ""
        if ref is None:
            return None
        if ref.get("kind") != "StatefulSet" or ref.get("apiVersion") != "apps/v1":
            return None
        owner = self.sets.get(str(ref.get("name") or ""), namespace=ns)
        if owner is None or uid_of(owner) != ref.get("uid"):
            return None
        return key_of(owner)

    def _owned_changed(self, obj: Obj) -> None:
        key = self._owner_key(obj)
        if key is not None:
            self.queue.add(key)
        elif controller_ref(obj) is None:
            ns = meta(obj).get("namespace") or ""
            for sts in self.sets.list(ns):
                if selector_of((sts.get("spec") or {}).get("selector")).matches(labels_of(obj)):
                    self.enqueue(sts)

    def _pod_changed(self, pod: Obj) -> None:
        self._owned_changed(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if (controller_ref(old) or {}).get("uid") != (controller_ref(new) or {}).get("uid"):
            self._owned_changed(old)
        self._owned_changed(new)

    def target(self, sts: Obj) -> Obj:
        """The set as an event's involved object (cached objects may lack kind)."""
        return {**sts, "apiVersion": "apps/v1", "kind": "StatefulSet"}

    # ---- reconcile ------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        try:
            return await self._sync(key)
        except ApiError as e:
            if namespace_terminating(e):
                return None  # nothing more can be created there
            raise

    async def _sync(self, key: str) -> float | None:
        ns, name = split_key(key)
        cached = self.sets.get(name, namespace=ns)
        if cached is None:
            self.fresh.forget(key)
            return None
        sts = self.target(self.fresh.fresh(cached))
        selector = (sts.get("spec") or {}).get("selector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            return None  # validation forbids it; never select every pod
        pods = await self._claim(sts, res=PODS, informer=self.pods, member=True)
        revisions = await self._claim_revisions(sts)
        revisions = sort_revisions(revisions)
        current, update, collisions = await self._revisions(sts, revisions)
        rnd = _Round(self, sts, current, update, now=self.ctx.clock())
        try:
            await rnd.run(pods)
        finally:
            counts = compute_status(
                rnd.pods() if rnd.partitioned else pods, min_ready=rnd.min_ready, now=rnd.now,
                current=rnd.current_name, update=rnd.update_name,
            )  # fmt: skip
            status = build_status(
                sts, counts=counts, current=rnd.current_name, update=rnd.update_name,
                collisions=collisions,
            )  # fmt: skip
            await self._write_status(sts, status)
        await self._truncate(sts, revisions, rnd)
        delays = [d for d in (rnd.requeue,) if d is not None]
        if rnd.min_ready > 0 and status["availableReplicas"] != replicas_of(sts):
            delays.append(float(rnd.min_ready))
        return min(delays) if delays else None

    async def _claim(self, sts: Obj, *, res: Any, informer: Any, member: bool = False) -> list[Obj]:
        ns = meta(sts).get("namespace") or ""
        owned = informer.by_index(CONTROLLER_INDEX, uid_of(sts))
        orphans = [
            o
            for o in informer.by_index(CONTROLLER_INDEX, orphan_key(ns))
            if not member or is_member(sts, o)
        ]
        return await claim(
            self.client,
            res=res,
            owner=sts,
            owner_res=STATEFULSETS,
            selector=selector_of((sts.get("spec") or {}).get("selector")),
            candidates=[*owned, *orphans],
            can_adopt=owner_alive_check(self.client, res=STATEFULSETS, owner=sts),
        )

    async def _claim_revisions(self, sts: Obj) -> list[Obj]:
        ns = meta(sts).get("namespace") or ""
        return await claim_revisions(
            self.client,
            owner=sts,
            owner_res=STATEFULSETS,
            selector=selector_of((sts.get("spec") or {}).get("selector")),
            candidates=[
                *self.revisions.by_index(CONTROLLER_INDEX, uid_of(sts)),
                *self.revisions.by_index(CONTROLLER_INDEX, orphan_key(ns)),
            ],
            can_adopt=owner_alive_check(self.client, res=STATEFULSETS, owner=sts),
        )

    async def _revisions(self, sts: Obj, revisions: list[Obj]) -> tuple[Obj, Obj, int]:
        """(current, update, collision count): getStatefulSetRevisions."""
        status = sts.get("status") or {}
        collisions = int(status.get("collisionCount") or 0)
        update = new_revision(
            sts, owner_res=STATEFULSETS, revision=next_revision(revisions),
            collision_count=collisions,
        )  # fmt: skip
        equal = find_equal(revisions, update)
        if equal and equal_revision(revisions[-1], equal[-1]):
            update = revisions[-1]
        elif equal:
            update = await self.history.set_revision(equal[-1], int(update["revision"]))
        else:
            update, collisions = await self.history.create(
                update, owner=sts, collision_count=collisions
            )
        current = next(
            (r for r in revisions if meta(r).get("name") == status.get("currentRevision")), None
        )
        return current or update, update, collisions

    async def _truncate(self, sts: Obj, revisions: list[Obj], rnd: _Round) -> None:
        live = {rnd.current_name, rnd.update_name}
        live.update(pod_revision(p) for p in rnd.pods())
        limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        for rev in revisions_to_truncate(revisions, live=live, limit=limit):
            await self.history.delete(rev)

    async def _write_status(self, sts: Obj, status: Obj) -> None:
        if status == (sts.get("status") or {}):
            return
        m = meta(sts)
        obj = {**sts, "status": status}
        try:
            self.fresh.wrote(await self.client.update_status(STATEFULSETS, obj))
            return
        except NotFound:
            return
        except Conflict:
            pass
        fresh = await self.client.get_or_none(STATEFULSETS, m["name"], namespace=m["namespace"])
        if fresh is None or uid_of(fresh) != uid_of(sts):
            return
        if int(meta(fresh).get("generation") or 0) != int(m.get("generation") or 0):
            self.enqueue(fresh)  # the spec moved on: the next round writes the status
            return
        fresh["status"] = status
        self.fresh.wrote(await self.client.update_status(STATEFULSETS, fresh))

    # ---- events (upstream's recordPodEvent / recordClaimEvent) ------------------------

    def pod_event(self, sts: Obj, *, verb: str, pod: str, error: str | None = None) -> None:
        what = f"{verb} Pod {pod} in StatefulSet {meta(sts)['name']}"
        if error is None:
            self.recorder.normal(
                self.target(sts), f"Successful{verb.title()}", f"{what} successful"
            )
        else:
            msg = f"{what} failed error: {error}"
            self.recorder.warning(self.target(sts), f"Failed{verb.title()}", msg)

    def claim_event(self, sts: Obj, *, claim: str, pod: str, error: str | None = None) -> None:
        set_name = meta(sts)["name"]
        if error is None:
            msg = f"create Claim {claim} Pod {pod} in StatefulSet {set_name} success"
            self.recorder.normal(self.target(sts), "SuccessfulCreate", msg)
        else:
            what = f"create Claim {claim} for Pod {pod} in StatefulSet {set_name}"
            msg = f"{what} failed error: {error}"
            self.recorder.warning(self.target(sts), "FailedCreate", msg)

    # ---- pods ----------------------------------------------------------------------

    async def create_pod(self, sts: Obj, pod: Obj) -> Obj | None:
        """Create the pod's claims, then the pod (None: it already exists)."""
        await self.create_claims(sts, pod)
        name = meta(pod)["name"]
        try:
            created = await self.client.create(PODS, pod)
        except AlreadyExists:
            return None
        except ApiError as e:
            self.pod_event(sts, verb="create", pod=name, error=e.message)
            raise
        self.pod_event(sts, verb="create", pod=name)
        await self.fix_claims(sts, created)
        return created

    async def delete_pod(self, sts: Obj, pod: Obj) -> None:
        name = meta(pod)["name"]
        try:
            await self.client.delete(
                PODS, name, namespace=meta(pod).get("namespace") or "",
                preconditions_uid=uid_of(pod) or None,
            )  # fmt: skip
        except (NotFound, Conflict):
            return
        except ApiError as e:
            self.pod_event(sts, verb="delete", pod=name, error=e.message)
            raise
        self.pod_event(sts, verb="delete", pod=name)

    async def fix_identity(self, sts: Obj, pod: Obj) -> Obj:
        """updateIdentity: the pod-name and pod-index labels."""
        name = meta(pod)["name"]
        labels = {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal_of(pod))}
        try:
            updated = await self.client.patch(
                PODS, name, {"metadata": {"labels": labels}}, namespace=meta(pod)["namespace"]
            )
        except NotFound:
            return pod
        self.pod_event(sts, verb="update", pod=name)
        return updated

    # ---- claims --------------------------------------------------------------------

    def _cached_claim(self, namespace: str, name: str) -> Obj | None:
        c = self.claims.get(name, namespace=namespace)
        return None if c is None else self.fresh_claims.fresh(c)

    def claim_is_stale(self, sts: Obj, pod: Obj) -> bool:
        """PodClaimIsStale: with whenScaled Delete, a claim still owned by an earlier pod
        of this name must go (the garbage collector deletes it) before the pod returns."""
        if retention_policy(sts)[1] == RETAIN:
            return False
        ns = meta(sts)["namespace"]
        for c in claims_for(sts, ordinal_of(pod)).values():
            existing = self._cached_claim(ns, meta(c)["name"])
            if existing is not None and _has_stale_ref(existing, pod, kind=_POD_KIND):
                return True
        return False

    async def create_claims(self, sts: Obj, pod: Obj) -> None:
        ns = meta(sts)["namespace"]
        pod_n = meta(pod)["name"]
        errors: list[str] = []
        being_deleted = False
        for c in claims_for(sts, ordinal_of(pod)).values():
            cname = meta(c)["name"]
            existing = self._cached_claim(ns, cname)
            if existing is not None:
                being_deleted = being_deleted or is_deleting(existing)
                continue
            deleted, scaled = retention_policy(sts)
            if deleted == DELETE and (scaled == RETAIN or in_ordinal_range(sts, ordinal_of(pod))):
                c["metadata"]["ownerReferences"] = [_controller_ref(sts, kind=_STS_KIND)]
            try:
                self.fresh_claims.wrote(await self.client.create(PERSISTENTVOLUMECLAIMS, c))
            except AlreadyExists:
                continue
            except ApiError as e:
                if namespace_terminating(e):
                    raise
                errors.append(f"failed to create PVC {cname}: {e.message}")
                self.claim_event(sts, claim=cname, pod=pod_n, error=e.message)
                continue
            self.claim_event(sts, claim=cname, pod=pod_n)
        if errors:
            raise RuntimeError("; ".join(errors))
        if being_deleted:
            raise _ClaimBeingDeleted

    async def fix_claims(self, sts: Obj, pod: Obj) -> None:
        """UpdatePodClaimForRetentionPolicy, for claims whose owners disagree."""
        ns = meta(sts)["namespace"]
        for c in claims_for(sts, ordinal_of(pod)).values():
            existing = self._cached_claim(ns, meta(c)["name"])
            if existing is None or claim_owner_up_to_date(existing, sts=sts, pod=pod):
                continue
            if _unexpected_controller(existing, sts, pod):
                msg = (
                    f"PersistentVolumeClaim {meta(c)['name']} has a conflicting OwnerReference"
                    " that acts as a manging controller, the retention policy is ignored for"
                    " this claim"
                )
                self.recorder.warning(self.target(sts), "ConflictingController", msg)
            refs = claim_owner_refs(existing, sts=sts, pod=pod)
            existing["metadata"]["ownerReferences"] = refs
            if not refs:
                existing["metadata"].pop("ownerReferences")
            try:
                updated = await self.client.update(PERSISTENTVOLUMECLAIMS, existing)
            except NotFound:
                continue
            self.fresh_claims.wrote(updated)


CONTROLLERS = [StatefulSetController]
