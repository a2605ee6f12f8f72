"""ReplicaSet and ReplicationController: keep ``spec.replicas`` active pods, as upstream's
``pkg/controller/replicaset`` (which also runs ReplicationControllers).

One reconcile of a ReplicaSet, from the informer caches:

1. The active pods it controls, after claiming (``podcontrol.claim``): orphans matching
   the selector are adopted, owned pods whose labels stopped matching are released.
2. If the expectations of the last sync are met (every create and delete it made has
   come back through the pod informer), create the missing pods (slow-start batches,
   at most ``BURST_REPLICAS`` a sync) or delete the surplus (upstream's ranking: pending
   before running, not-ready before ready, pods doubled up on a node first, newest
   first).  Without that guard a reconcile on a cache that has not caught up would
   create or delete twice.
3. Status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready for
   ``minReadySeconds``), observedGeneration and the ReplicaFailure condition when a
   create or delete failed.

Nothing is remembered between reconciles except expectations, which start empty after a
restart or a change of leader: the caches are listed before any worker runs, so the
first sync sees every pod.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from k3py.apimachinery.selectors import Selector, selector_from_set
from k3py.client import ApiError, Conflict, NotFound, key_for, key_of, split_key
from k3py.client.resources import PODS, REPLICASETS, REPLICATIONCONTROLLERS, Resource
from k3py.server.controllers.base import (
    Controller,
    controller_ref,
    get_condition,
    is_deleting,
    meta,
    pod_is_active,
    pod_is_available,
    pod_is_ready,
)
from k3py.server.controllers.podcontrol import (
    BURST_REPLICAS,
    CONTROLLER_INDEX,
    ControllerExpectations,
    FreshObjects,
    PodControl,
    by_controller,
    claim,
    controller_ref_for,
    labels_of,
    orphan_key,
    owner_alive_check,
    pods_to_delete,
    selector_of,
    shared_pod_events,
    uid_of,
)

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.replicaset")

_OPTIONAL_COUNTS = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas")


def calculate_status(
    rs: Obj, pods: list[Obj], *, error: Exception | None, now: float, now_rfc: str
) -> Obj:
    """The status of ``rs`` owning the active ``pods`` (upstream's calculateStatus)."""
    spec = rs.get("spec") or {}
    status = dict(rs.get("status") or {})
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for p in pods:
        labels = labels_of(p)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if pod_is_ready(p):
            ready += 1
            if pod_is_available(p, min_ready_seconds=min_ready, now=now):
                available += 1
    conditions = [dict(c) for c in status.get("conditions") or []]
    failure = get_condition(status, "ReplicaFailure")
    if error is not None and failure is None:
        diff = len(pods) - int(spec.get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        message = error.message if isinstance(error, ApiError) else str(error)
        conditions.append({
            "type": "ReplicaFailure", "status": "True", "lastTransitionTime": now_rfc,
            "reason": reason, "message": message,
        })  # fmt: skip
    elif error is None and failure is not None:
        conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
    status["replicas"] = len(pods)
    for field, value in zip(_OPTIONAL_COUNTS, (fully, ready, available), strict=True):
        if value:
            status[field] = value
        else:
            status.pop(field, None)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


class ReplicaSetController(Controller):
    name = "replicaset"
    workers = 4
    res: ClassVar[Resource] = REPLICASETS
    component: ClassVar[str] = "replicaset-controller"

    def setup(self) -> None:
        self.recorder = self.recorder.for_component(self.component)
        self.owners = self.ctx.informer(self.res, indexers={CONTROLLER_INDEX: by_controller})
        self.pods = self.ctx.informer(PODS)
        events = shared_pod_events(self.pods)
        self.slim = events.slim
        self._uids: dict[str, str] = {}  # owner key -> uid, for pod events
        self.expectations = ControllerExpectations()
        self.fresh = FreshObjects()
        self.podcontrol = PodControl(self.client, self.recorder)
        self._failures: dict[str, int] = {}
        self.owners.add_handler(
            on_add=self._owner_added,
            on_update=self._owner_updated,
            on_delete=self._owner_deleted,
        )
        events.subscribe(
            on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted
        )

    async def started(self) -> None:
        self.enqueue_all(self.owners)

    # ---- what selects the pods (ReplicationControllers differ) ----------------------

    def selector(self, owner: Obj) -> Selector:
        return selector_of((owner.get("spec") or {}).get("selector"))

    # ---- informer handlers -----------------------------------------------------------

    def _owner_added(self, obj: Obj) -> None:
        self._uids[key_of(obj)] = uid_of(obj)
        self.enqueue(obj)

    def _owner_updated(self, old: Obj, new: Obj) -> None:
        self._uids[key_of(new)] = uid_of(new)
        self.fresh.seen(new)
        self.enqueue(new)

    def _owner_deleted(self, obj: Obj) -> None:
        key = key_of(obj)
        self._uids.pop(key, None)
        self.expectations.delete(key)
        self.fresh.forget(key)
        self._failures.pop(key, None)
        self.queue.add(key)

    def _owner_key(self, pod: Obj, ref: Obj) -> str | None:
        """The key of the owner ``ref`` names, if it is one of ours and exists."""
        if ref.get("kind") != self.res.kind or ref.get("apiVersion") != self.res.api_version:
            return None
        key = key_for(namespace=meta(pod).get("namespace") or "", name=str(ref.get("name") or ""))
        return key if ref.get("uid") and self._uids.get(key) == ref.get("uid") else None

    def _enqueue_matching(self, pod: Obj) -> None:
        """An orphan changed: every owner whose selector matches may adopt it."""
        ns = meta(pod).get("namespace") or ""
        labels = labels_of(pod)
        for owner in self.owners.list(ns):
            if not is_deleting(owner) and self.selector(owner).matches(labels):
                self.enqueue(owner)

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        ref = controller_ref(pod)
        if ref is None:
            self._enqueue_matching(pod)
            return
        key = self._owner_key(pod, ref)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        labels_changed = labels_of(old) != labels_of(new)
        if is_deleting(new):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        new_ref, old_ref = controller_ref(new), controller_ref(old)
        ref_changed = (new_ref or {}).get("uid") != (old_ref or {}).get("uid")
        if ref_changed and old_ref is not None:
            key = self._owner_key(old, old_ref)
            if key is not None:
                self.queue.add(key)
        if new_ref is not None:
            key = self._owner_key(new, new_ref)
            if key is not None:
                self.queue.add(key)
            return
        if labels_changed or ref_changed:
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None:
            return
        key = self._owner_key(pod, ref)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.queue.add(key)

    # ---- reconcile -----------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        try:
            return await self._sync(key)
        except NotFound:
            return None  # the owner (or its namespace) went away meanwhile
        except Conflict:
            return 0.1  # a lost write race: look again with the newer state

    async def _sync(self, key: str) -> float | None:
        ns, name = split_key(key)
        cached = self.owners.get(name, namespace=ns)
        if cached is None:
            self.expectations.delete(key)
            self.fresh.forget(key)
            return None
        owner = self.fresh.fresh(cached)
        needs_sync = self.expectations.satisfied(key)
        pods = await self._claimed_pods(owner)
        error: Exception | None = None
        if needs_sync and not is_deleting(owner):
            error = await self._manage(owner, pods, key=key)
        now = self.ctx.clock()
        status = calculate_status(owner, pods, error=error, now=now, now_rfc=self.ctx.now_rfc3339())
        await self._write_status(owner, status)
        if error is not None:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            return float(min(30.0, 0.5 * 2**failures))
        self._failures.pop(key, None)
        spec = owner.get("spec") or {}
        min_ready = int(spec.get("minReadySeconds") or 0)
        if min_ready > 0 and status.get("availableReplicas", 0) < status.get("readyReplicas", 0):
            return float(min_ready)
        return None

    async def _claimed_pods(self, owner: Obj) -> list[Obj]:
        ns = meta(owner).get("namespace") or ""
        candidates = [
            p
            for index in (uid_of(owner), orphan_key(ns))
            for p in self.slim.by_index(index)
            if pod_is_active(p)
        ]
        return await claim(
            self.client,
            res=PODS,
            owner=owner,
            owner_res=self.res,
            selector=self.selector(owner),
            candidates=candidates,
            can_adopt=owner_alive_check(self.client, res=self.res, owner=owner),
        )

    async def _manage(self, owner: Obj, pods: list[Obj], *, key: str) -> Exception | None:
        spec = owner.get("spec") or {}
        diff = len(pods) - int(spec.get("replicas", 1))
        if diff < 0:
            count = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, count)
            created, error = await self.podcontrol.create_many(
                count=count,
                template=spec.get("template") or {},
                owner=self._event_target(owner),
                owner_ref=controller_ref_for(owner, res=self.res),
            )
            if count - created > 0:
                self.expectations.lower_creations(key, count - created)
            return error
        if diff > 0:
            return await self._delete_surplus(owner, pods, count=min(diff, BURST_REPLICAS), key=key)
        return None

    async def _delete_surplus(
        self, owner: Obj, pods: list[Obj], *, count: int, key: str
    ) -> Exception | None:
        victims = pods_to_delete(
            pods, count=count, related=self._related_pods(owner, pods), now=self.ctx.clock()
        )
        self.expectations.expect_deletions(key, [key_of(p) for p in victims])
        target = self._event_target(owner)

        async def one(pod: Obj) -> None:
            try:
                await self.podcontrol.delete_pod(
                    namespace=meta(pod).get("namespace") or "", name=meta(pod)["name"], owner=target
                )
            except Exception:
                self.expectations.deletion_observed(key, key_of(pod))
                raise

        results = await asyncio.gather(*(one(p) for p in victims), return_exceptions=True)
        errors = [r for r in results if isinstance(r, Exception)]
        return errors[0] if errors else None

    def _related_pods(self, owner: Obj, pods: list[Obj]) -> list[Obj]:
        """Pods of every ReplicaSet controlled by the same Deployment (for ranking)."""
        ref = controller_ref(owner)
        if ref is None or not ref.get("uid"):
            return pods
        out: list[Obj] = []
        for sibling in self.owners.by_index(CONTROLLER_INDEX, str(ref["uid"])):
            out.extend(self.slim.by_index(uid_of(sibling)))
        return out

    def _event_target(self, owner: Obj) -> Obj:
        out = dict(owner)
        out.setdefault("apiVersion", self.res.api_version)
        out.setdefault("kind", self.res.kind)
        return out

    async def _write_status(self, owner: Obj, status: Obj) -> None:
        generation = int(meta(owner).get("generation") or 0)
        if generation:
            status["observedGeneration"] = generation
        if status == (owner.get("status") or {}):
            return
        obj = dict(owner)
        obj["status"] = status
        m = meta(owner)
        try:
            self.fresh.wrote(await self.client.update_status(self.res, obj))
            return
        except NotFound:
            return
        except Conflict:
            pass
        fresh = await self.client.get_or_none(
            self.res, m["name"], namespace=m.get("namespace") or ""
        )
        if fresh is None or uid_of(fresh) != uid_of(owner):
            return
        fresh["status"] = status
        self.fresh.wrote(await self.client.update_status(self.res, fresh))


class ReplicationControllerController(ReplicaSetController):
    """v1 ReplicationControllers: the same loop with a map selector."""

    name = "replicationcontroller"
    workers = 2
    res: ClassVar[Resource] = REPLICATIONCONTROLLERS
    component: ClassVar[str] = "replication-controller"

    def selector(self, owner: Obj) -> Selector:
        sel = (owner.get("spec") or {}).get("selector")
        if not sel:
            return Selector.match_nothing()
        return selector_from_set({str(k): str(v) for k, v in sel.items()})


CONTROLLERS = [ReplicaSetController, ReplicationControllerController]
