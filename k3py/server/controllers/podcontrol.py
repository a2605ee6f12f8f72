"""What controllers that own pods (ReplicaSet, ReplicationController, Job, StatefulSet,
DaemonSet, ...) share, after upstream's ``pkg/controller/controller_utils.go`` and
``controller_ref_manager.go``:

* ``pod_from_template``: a Pod from a PodTemplateSpec with the owner's controller
  reference, ``generateName: <owner>-`` (or a fixed name), labels, annotations, finalizers.
* ``PodControl``: create / delete one pod and record the events kubectl describe shows
  (``SuccessfulCreate "Created pod: web-x7k2p"``, ``FailedCreate``, ``SuccessfulDelete``,
  ``FailedDelete``); ``create_many`` creates in slow-start batches of 1, 2, 4, 8, ...
  and stops at the first batch with a failure, so a quota or admission error costs one
  failed request instead of hundreds.
* ``ControllerExpectations``: creations counted, deletions tracked by pod key (a pod
  seen first with a deletionTimestamp and then gone counts once), so a reconcile on a
  cache that has not caught up with our own writes does not act twice.
* ``rank_for_deletion`` / ``pods_to_delete``: upstream's ``ActivePodsWithRanks``
  order, the pods to remove first when scaling down.
* ``claim``: the ControllerRef manager: adopt orphans that match the selector (after a
  fresh read shows the owner alive), release owned objects that no longer match.
* ``by_controller`` index: owned objects by their controller's uid, orphans under
  ``orphan/<namespace>``.
* ``FreshObjects``: the newest of what the cache has and what we last wrote ourselves.
* ``shared_pod_events(pod_informer)``: one informer handler fanned out to every owner
  controller, with ``SlimPods`` (small read-only copies indexed like ``by_controller``):
  an owner of a thousand pods then counts them without decoding a thousand pods per
  reconcile, and the informer decodes one copy per change instead of one per controller.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from k3py.apimachinery.selectors import Selector, from_label_selector
from k3py.client import AlreadyExists, ApiError, Client, Conflict, NotFound, key_of
from k3py.client.resources import PODS, Resource
from k3py.server.controllers.base import (
    controller_ref,
    get_condition,
    is_deleting,
    meta,
    parse_time,
    pod_is_active,
    pod_is_ready,
)

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.podcontrol")

BURST_REPLICAS = 500  # upstream's burstReplicas: most pods created/deleted in one sync
SLOW_START_INITIAL_BATCH = 1
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
CONTROLLER_INDEX = "controller-uid-or-orphan"


# ---- indexes and selectors ---------------------------------------------------------


def orphan_key(namespace: str) -> str:
    return f"orphan/{namespace}"


def by_controller(obj: Obj) -> list[str]:
    """Index: the controller's uid, or ``orphan/<namespace>`` for objects without one."""
    ref = controller_ref(obj)
    if ref is not None and ref.get("uid"):
        return [str(ref["uid"])]
    return [orphan_key(str(meta(obj).get("namespace") or ""))]


def selector_of(label_selector: Obj | None) -> Selector:
    """A LabelSelector compiled (an invalid one matches nothing)."""
    try:
        return from_label_selector(label_selector)
    except Exception:  # noqa: BLE001 - validation keeps these out; be safe anyway
        return Selector.match_nothing()


def labels_of(obj: Obj) -> dict[str, str]:
    return meta(obj).get("labels") or {}


def uid_of(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def controller_ref_for(owner: Obj, *, res: Resource) -> Obj:
    """The controller ownerReference to ``owner`` (of resource ``res``)."""
    m = meta(owner)
    return {
        "apiVersion": res.api_version,
        "kind": res.kind,
        "name": m["name"],
        "uid": m["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


# ---- pods from templates ------------------------------------------------------------


def pod_from_template(template: Obj, *, owner: Obj, owner_ref: Obj | None, name: str = "") -> Obj:
    """A Pod to create for ``owner`` (GetPodFromTemplate): ``generateName`` is
    ``<owner name>-`` unless ``name`` is given."""
    tmeta = template.get("metadata") or {}
    pmeta: Obj = {"namespace": meta(owner).get("namespace") or "default"}
    if name:
        pmeta["name"] = name
    else:
        pmeta["generateName"] = f"{name_of(owner)}-"
    for f in ("labels", "annotations"):
        if tmeta.get(f):
            pmeta[f] = dict(tmeta[f])
    if tmeta.get("finalizers"):
        pmeta["finalizers"] = list(tmeta["finalizers"])
    if owner_ref is not None:
        pmeta["ownerReferences"] = [owner_ref]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pmeta,
        "spec": _copy(template.get("spec") or {}),
    }


def _copy(obj: Any) -> Any:
    import orjson

    return orjson.loads(orjson.dumps(obj))


def _error_text(e: Exception) -> str:
    return e.message if isinstance(e, ApiError) and e.message else str(e)


async def slow_start_batch(
    count: int, fn: Callable[[], Awaitable[Any]], *, initial: int = SLOW_START_INITIAL_BATCH
) -> tuple[int, Exception | None]:
    """Call ``fn`` ``count`` times in batches of 1, 2, 4, ... (each batch concurrently);
    stop after the first batch with a failure.  Returns (successes, first error)."""
    remaining = count
    successes = 0
    batch = min(remaining, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for r in errors:
            if isinstance(r, asyncio.CancelledError):
                raise r
        successes += batch - len(errors)
        if errors:
            err = errors[0]
            return successes, err if isinstance(err, Exception) else Exception(str(err))
        remaining -= batch
        batch = min(2 * batch, remaining)
    return successes, None


class PodControl:
    """Creates and deletes pods for a controller, recording upstream's events."""

    def __init__(self, client: Client, recorder: Any) -> None:
        self.client = client
        self.recorder = recorder

    async def create_pod(
        self, *, template: Obj, owner: Obj, owner_ref: Obj | None, name: str = ""
    ) -> Obj:
        pod = pod_from_template(template, owner=owner, owner_ref=owner_ref, name=name)
        if not pod["metadata"].get("labels"):
            raise ValueError("unable to create pods, no labels")
        try:
            created = await self.client.create(PODS, pod)
        except ApiError as e:
            if not namespace_terminating(e):
                self.recorder.warning(owner, "FailedCreate", f"Error creating: {_error_text(e)}")
            raise
        self.recorder.normal(owner, "SuccessfulCreate", f"Created pod: {name_of(created)}")
        return created

    async def create_many(
        self, *, count: int, template: Obj, owner: Obj, owner_ref: Obj | None
    ) -> tuple[int, Exception | None]:
        """``count`` pods from ``template`` in slow-start batches: (created, first error).
        Creates refused because the namespace is terminating count as done."""

        async def one() -> None:
            try:
                await self.create_pod(template=template, owner=owner, owner_ref=owner_ref)
            except ApiError as e:
                if not namespace_terminating(e):
                    raise

        return await slow_start_batch(count, one)

    async def delete_pod(self, *, namespace: str, name: str, owner: Obj) -> None:
        """Delete a pod (NotFound is fine and recorded as nothing)."""
        try:
            await self.client.delete(PODS, name, namespace=namespace)
        except NotFound:
            return
        except ApiError as e:
            self.recorder.warning(owner, "FailedDelete", f"Error deleting: {_error_text(e)}")
            raise
        self.recorder.normal(owner, "SuccessfulDelete", f"Deleted pod: {name}")


def namespace_terminating(e: ApiError) -> bool:
    """StatusCause's type is ``reason`` in JSON."""
    return any("NamespaceTerminating" in (c.get("reason"), c.get("type")) for c in e.causes)


# ---- expectations -------------------------------------------------------------------


class ControllerExpectations:
    """client-go's UIDTrackingControllerExpectations: adds are counted, deletes are
    tracked by pod key so that seeing the same pod's deletion twice counts once.
    Expectations older than ``ttl`` seconds are considered met (a lost watch event
    must not stall a controller forever)."""

    def __init__(self, *, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._adds: dict[str, int] = {}
        self._dels: dict[str, set[str]] = {}
        self._at: dict[str, float] = {}

    def expect_creations(self, key: str, count: int) -> None:
        self._adds[key] = self._adds.get(key, 0) + count
        self._at[key] = self.clock()

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._dels.setdefault(key, set()).update(pod_keys)
        self._at[key] = self.clock()

    def creation_observed(self, key: str) -> None:
        if key in self._adds:
            self._adds[key] -= 1

    def lower_creations(self, key: str, count: int) -> None:
        if key in self._adds:
            self._adds[key] -= count

    def deletion_observed(self, key: str, pod_key: str) -> None:
        pending = self._dels.get(key)
        if pending is not None:
            pending.discard(pod_key)

    def satisfied(self, key: str) -> bool:
        if key not in self._at:
            return True
        if self._adds.get(key, 0) <= 0 and not self._dels.get(key):
            return True
        if self.clock() - self._at[key] > self.ttl:
            log.info("expectations of %s expired", key)
            return True
        return False

    def delete(self, key: str) -> None:
        self._adds.pop(key, None)
        self._dels.pop(key, None)
        self._at.pop(key, None)


# ---- which pods to delete first -----------------------------------------------------

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


def _ready_time(pod: Obj) -> float | None:
    c = get_condition(pod.get("status"), "Ready")
    return parse_time((c or {}).get("lastTransitionTime"))


def _log_rank(t: float | None, now: float) -> int:
    """Upstream's LogarithmicScaleDown bucket: floor(log2(age in ns)), -1 for none."""
    if t is None:
        return -1
    d = (now - t) * 1e9
    return int(math.log2(d)) if d > 0 else -1


def _max_restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _deletion_cost(pod: Obj) -> int:
    try:
        return int((meta(pod).get("annotations") or {}).get(DELETION_COST, 0))
    except (TypeError, ValueError):
        return 0


def _deletion_key(pod: Obj, rank: int, now: float) -> tuple[Any, ...]:
    """Smaller sorts first (deleted first), as upstream's ActivePodsWithRanks.Less."""
    ready = pod_is_ready(pod)
    created = parse_time(meta(pod).get("creationTimestamp"))
    return (
        bool((pod.get("spec") or {}).get("nodeName")),  # unassigned < assigned
        _PHASE_ORDINAL.get((pod.get("status") or {}).get("phase") or "", 0),
        ready,  # not ready < ready
        _deletion_cost(pod),  # lower cost first
        -rank,  # more colocated related pods first
        _log_rank(_ready_time(pod), now) if ready else 0,  # ready more recently first
        -_max_restarts(pod),  # more restarts first
        _log_rank(created, now),  # newer first
        uid_of(pod),
    )


def rank_for_deletion(pods: list[Obj], *, related: list[Obj], now: float) -> list[Obj]:
    """``pods`` ordered as upstream deletes them when scaling down.  ``related`` are the
    pods of the same workload (all ReplicaSets of a Deployment): a pod sharing its node
    with more active related pods goes first."""
    on_node: dict[str, int] = {}
    for p in related:
        if pod_is_active(p):
            node = (p.get("spec") or {}).get("nodeName") or ""
            on_node[node] = on_node.get(node, 0) + 1
    return sorted(
        pods,
        key=lambda p: _deletion_key(
            p, on_node.get((p.get("spec") or {}).get("nodeName") or "", 0), now
        ),
    )


def pods_to_delete(pods: list[Obj], *, count: int, related: list[Obj], now: float) -> list[Obj]:
    if count >= len(pods):
        return list(pods)
    return rank_for_deletion(pods, related=related, now=now)[:count]


# ---- adoption and release (ControllerRefManager) ----------------------------------------


async def claim(
    client: Client,
    *,
    res: Resource,
    owner: Obj,
    owner_res: Resource,
    selector: Selector,
    candidates: list[Obj],
    can_adopt: Callable[[], Awaitable[bool]],
) -> list[Obj]:
    """The candidates ``owner`` controls after adopting matching orphans and releasing
    owned ones whose labels no longer match (``ClaimPods`` / ``ClaimReplicaSets``)."""
    owner_uid = uid_of(owner)
    owner_deleting = is_deleting(owner)
    adopt_ok: bool | None = None
    claimed: list[Obj] = []
    for obj in candidates:
        ref = controller_ref(obj)
        matches = selector.matches(labels_of(obj))
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches:
                claimed.append(obj)
            elif not owner_deleting:
                await _release(client, res=res, obj=obj, owner_uid=owner_uid)
            continue
        if owner_deleting or not matches or is_deleting(obj):
            continue
        if adopt_ok is None:
            adopt_ok = await can_adopt()
        if not adopt_ok:
            continue
        adopted = await _adopt(
            client, res=res, obj=obj, ref=controller_ref_for(owner, res=owner_res)
        )
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _adopt(client: Client, *, res: Resource, obj: Obj, ref: Obj) -> Obj | None:
    m = meta(obj)
    patch = {"metadata": {"ownerReferences": [ref], "uid": m.get("uid")}}
    try:
        return await client.patch(
            res, name_of(obj), patch, namespace=m.get("namespace") or "", patch_type="strategic"
        )
    except (NotFound, Conflict):
        return None
    except ApiError as e:
        log.info("adopting %s %s failed: %s", res.kind, key_of(obj), e)
        return None


async def _release(client: Client, *, res: Resource, obj: Obj, owner_uid: str) -> None:
    m = meta(obj)
    patch = {
        "metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
            "uid": m.get("uid"),
        }
    }
    try:
        await client.patch(
            res, name_of(obj), patch, namespace=m.get("namespace") or "", patch_type="strategic"
        )
    except (NotFound, Conflict, AlreadyExists):
        return
    except ApiError as e:
        log.info("releasing %s %s failed: %s", res.kind, key_of(obj), e)


def owner_alive_check(
    client: Client, *, res: Resource, owner: Obj
) -> Callable[[], Awaitable[bool]]:
    """``canAdopt``: a fresh read (not the cache) shows the owner, same uid, not deleting."""

    async def check() -> bool:
        m = meta(owner)
        fresh = await client.get_or_none(res, m["name"], namespace=m.get("namespace") or "")
        return fresh is not None and uid_of(fresh) == m.get("uid") and not is_deleting(fresh)

    return check


# ---- slim pods -----------------------------------------------------------------------------


def slim_pod(pod: Obj) -> Obj:
    """What owners read of a pod (identity, labels, owners, node, phase, Ready, restart
    counts, timestamps, the deletion-cost annotation) in the same shape as a Pod, so
    every helper here takes either."""
    m = meta(pod)
    sm: Obj = {k: m[k] for k in _SLIM_META if k in m}
    cost = (m.get("annotations") or {}).get(DELETION_COST)
    if cost is not None:
        sm["annotations"] = {DELETION_COST: cost}
    st = pod.get("status") or {}
    ready = get_condition(st, "Ready")
    sst: Obj = {"phase": st.get("phase")}
    if ready is not None:
        sst["conditions"] = [ready]
    restarts = [
        {"restartCount": c.get("restartCount", 0)} for c in st.get("containerStatuses") or []
    ]
    if restarts:
        sst["containerStatuses"] = restarts
    return {
        "metadata": sm,
        "spec": {"nodeName": (pod.get("spec") or {}).get("nodeName")},
        "status": sst,
    }


_SLIM_META = (
    "name", "namespace", "uid", "labels", "ownerReferences", "creationTimestamp",
    "deletionTimestamp", "resourceVersion",
)  # fmt: skip


class SlimPods:
    """Slim copies of every pod, kept by informer handlers and indexed like
    ``by_controller``: an owner of a thousand pods reads them without decoding a
    thousand full pods from the informer cache on every reconcile.  The objects are
    shared: do not mutate them."""

    def __init__(self) -> None:
        self._index: dict[str, dict[str, Obj]] = {}
        self._where: dict[str, str] = {}

    def attach(self, informer: Any) -> None:
        """Follow ``informer`` (add this before handlers that read from here)."""
        informer.add_handler(
            on_add=self.put,
            on_update=lambda _old, new: self.put(new),
            on_delete=self.remove,
            readonly=True,
        )

    def put(self, pod: Obj) -> None:
        key = key_of(pod)
        self._drop(key)
        [index] = by_controller(pod)
        self._where[key] = index
        self._index.setdefault(index, {})[key] = slim_pod(pod)

    def remove(self, pod: Obj) -> None:
        self._drop(key_of(pod))

    def _drop(self, key: str) -> None:
        index = self._where.pop(key, None)
        if index is not None:
            bucket = self._index.get(index)
            if bucket is not None:
                bucket.pop(key, None)
                if not bucket:
                    del self._index[index]

    def by_index(self, index: str) -> list[Obj]:
        """Pods controlled by the owner with this uid, or ``orphan_key(namespace)``."""
        return list((self._index.get(index) or {}).values())


class SharedPodEvents:
    """One handler on the pod informer for every controller that asks, instead of one
    each: the informer decodes a private copy of each changed pod (two on updates) per
    handler, which at a thousand pods is most of a rollout's CPU.  Subscribers receive
    the same objects and must not mutate them; ``slim`` is kept here too."""

    def __init__(self, informer: Any) -> None:
        self.slim = SlimPods()
        self._subs: list[tuple[Any, Any, Any]] = []
        informer.add_handler(
            on_add=self._add, on_update=self._update, on_delete=self._delete, readonly=True
        )

    def subscribe(
        self,
        *,
        on_add: Callable[[Obj], None] | None = None,
        on_update: Callable[[Obj, Obj], None] | None = None,
        on_delete: Callable[[Obj], None] | None = None,
    ) -> None:
        self._subs.append((on_add, on_update, on_delete))

    def _add(self, pod: Obj) -> None:
        self.slim.put(pod)
        self._each(0, pod)

    def _update(self, old: Obj, new: Obj) -> None:
        self.slim.put(new)
        self._each(1, old, new)

    def _delete(self, pod: Obj) -> None:
        self.slim.remove(pod)
        self._each(2, pod)

    def _each(self, which: int, *args: Obj) -> None:
        for sub in self._subs:
            fn = sub[which]
            if fn is None:
                continue
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - one subscriber's bug must not stop the rest
                log.exception("pod event handler %r failed", fn)


_SHARED: weakref.WeakKeyDictionary[Any, SharedPodEvents] = weakref.WeakKeyDictionary()


def shared_pod_events(informer: Any) -> SharedPodEvents:
    """The ``SharedPodEvents`` of this (not yet started) pod informer."""
    ev = _SHARED.get(informer)
    if ev is None:
        ev = _SHARED[informer] = SharedPodEvents(informer)
    return ev


# ---- our own writes over a lagging cache -------------------------------------------------


def _rv(obj: Obj) -> int:
    try:
        return int(meta(obj).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class FreshObjects:
    """Objects this controller wrote, kept until the informer shows them (or newer):
    ``fresh(obj)`` returns whichever of the cached and written copies is newer."""

    def __init__(self) -> None:
        self._written: dict[str, Obj] = {}

    def wrote(self, obj: Obj) -> Obj:
        self._written[key_of(obj)] = obj
        return obj

    def seen(self, obj: Obj) -> None:
        """Informer handler: the cache caught up with (or passed) what we wrote."""
        key = key_of(obj)
        mine = self._written.get(key)
        if mine is not None and _rv(obj) >= _rv(mine):
            del self._written[key]

    def forget(self, key: str) -> None:
        self._written.pop(key, None)

    def fresh(self, obj: Obj) -> Obj:
        mine = self._written.get(key_of(obj))
        if mine is not None and uid_of(mine) == uid_of(obj) and _rv(mine) > _rv(obj):
            return _copy(mine)  # type: ignore[no-any-return]
        return obj


__all__ = [
    "BURST_REPLICAS",
    "CONTROLLER_INDEX",
    "ControllerExpectations",
    "FreshObjects",
    "PodControl",
    "SharedPodEvents",
    "SlimPods",
    "by_controller",
    "claim",
    "controller_ref_for",
    "orphan_key",
    "owner_alive_check",
    "namespace_terminating",
    "pod_from_template",
    "pods_to_delete",
    "rank_for_deletion",
    "selector_of",
    "shared_pod_events",
    "slim_pod",
    "slow_start_batch",
]
