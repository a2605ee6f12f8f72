"""DaemonSets: one pod on every eligible node, as upstream's ``pkg/controller/daemon``
(v1.32).

Eligibility (``NodeShouldRunDaemonPod``) is decided on the pod the set would create:
the template plus the tolerations every daemon pod gets (``not-ready`` and
``unreachable`` NoExecute without a time limit; ``disk-pressure``, ``memory-pressure``,
``pid-pressure``, ``unschedulable`` NoSchedule; ``network-unavailable`` NoSchedule for
``hostNetwork`` pods).  A node *should run* a pod when ``spec.nodeName``, the node
selector and the required node affinity match it and it has no NoSchedule/NoExecute
taint the pod does not tolerate; an existing pod *may continue* there as long as no
NoExecute taint is untolerated.

One reconcile, from the informer caches:

1. Claim the pods (adopt matching orphans, release owned pods that stopped matching)
   and the ControllerRevisions; the revision whose data is the current template is
   *current* (created if missing, re-numbered to the newest), the others *old*.
2. Unless earlier creates/deletes are still unobserved (expectations), per node: create
   a pod where one should run and none does, delete failed pods (with a per-node
   back-off), succeeded pods, extra pods (the oldest stays) and pods on nodes where
   none may continue or that no longer exist.  New pods carry
   ``controller-revision-hash`` and ``pod-template-generation`` labels and target their
   node with a required node affinity ``matchFields metadata.name In [node]`` (the
   scheduler binds them; they never go anywhere else).
3. RollingUpdate (when step 2 changed nothing): without surge, delete old pods while
   fewer than ``maxUnavailable`` pods are unavailable (unavailable old pods first); with
   ``maxSurge``, create new pods beside old ones and delete each old pod once its
   replacement is available.  OnDelete replaces pods only when someone deletes them.
4. History beyond ``revisionHistoryLimit`` is deleted (revisions of live pods stay);
   status: desired/current/misscheduled/ready/updated/available/unavailable counts and
   ``observedGeneration``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import orjson

from k3py.client import ApiError, Conflict, NotFound, key_of, split_key
from k3py.client.resources import CONTROLLERREVISIONS, DAEMONSETS, NODES, PODS
from k3py.server.controllers.base import (
    Controller,
    controller_ref,
    is_deleting,
    meta,
    parse_time,
    pod_is_available,
    pod_is_ready,
)
from k3py.server.controllers.history import (
    REVISION_HASH_LABEL,
    HistoryWriter,
    claim_revisions,
    hash_of,
    hash_template,
    new_revision,
    revision_number,
    same_template,
    sort_revisions,
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
    selector_of,
    uid_of,
)

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.daemonset")

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
_NO_SCHEDULE_TOLERATED = (
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/unschedulable",
)
NETWORK_UNAVAILABLE = "node.kubernetes.io/network-unavailable"
_BACKOFF_INITIAL, _BACKOFF_MAX = 1.0, 900.0


# ---- tolerations, taints, node affinity --------------------------------------------------


def _add_toleration(tolerations: list[Obj], tol: Obj) -> None:
    """AddOrUpdateTolerationInPodSpec: replace one with the same key/operator/value/effect."""
    for t in tolerations:
        if all(
            (t.get(k) or "") == (tol.get(k) or "") for k in ("key", "operator", "value", "effect")
        ):
            return
    tolerations.append(tol)


def add_daemon_tolerations(pod_spec: Obj) -> None:
    """AddOrUpdateDaemonPodTolerations."""
    tols: list[Obj] = pod_spec.setdefault("tolerations", [])
    for key in (NOT_READY, UNREACHABLE):
        _add_toleration(tols, {"key": key, "operator": "Exists", "effect": "NoExecute"})
    keys = list(_NO_SCHEDULE_TOLERATED)
    if pod_spec.get("hostNetwork"):
        keys.append(NETWORK_UNAVAILABLE)
    for key in keys:
        _add_toleration(tols, {"key": key, "operator": "Exists", "effect": "NoSchedule"})


def tolerates(tol: Obj, taint: Obj) -> bool:
    if tol.get("effect") and tol.get("effect") != taint.get("effect"):
        return False
    if tol.get("key") and tol.get("key") != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (tol.get("value") or "") == (taint.get("value") or "")


def untolerated(taints: list[Obj], tolerations: list[Obj], effects: tuple[str, ...]) -> bool:
    return any(
        t.get("effect") in effects and not any(tolerates(tol, t) for tol in tolerations)
        for t in taints
    )


def _requirement_matches(req: Obj, value: str | None) -> bool:
    op, values = req.get("operator"), [str(v) for v in req.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            have, want = int(value), int(values[0])
        except ValueError:
            return False
        return have > want if op == "Gt" else have < want
    return False


def _term_matches(term: Obj, node: Obj) -> bool:
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = labels_of(node)
    name = str(meta(node).get("name") or "")
    return all(_requirement_matches(r, labels.get(r.get("key", ""))) for r in exprs) and all(
        r.get("key") == "metadata.name" and _requirement_matches(r, name) for r in fields
    )


def required_affinity_matches(pod_spec: Obj, node: Obj) -> bool:
    """GetRequiredNodeAffinity(pod).Match(node): nodeSelector and required terms."""
    labels = labels_of(node)
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or None
    if required is None:
        return True
    return any(_term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def daemon_pod_spec(ds: Obj) -> Obj:
    """The spec a daemon pod would have (template plus daemon tolerations)."""
    template = (ds.get("spec") or {}).get("template") or {}
    spec: Obj = orjson.loads(orjson.dumps(template.get("spec") or {}))
    add_daemon_tolerations(spec)
    return spec


def should_run(node: Obj, *, pod_spec: Obj) -> tuple[bool, bool]:
    """NodeShouldRunDaemonPod: (should run, should continue running)."""
    name = meta(node).get("name")
    if pod_spec.get("nodeName") and pod_spec["nodeName"] != name:
        return False, False
    if not required_affinity_matches(pod_spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tols = pod_spec.get("tolerations") or []
    if untolerated(taints, tols, ("NoSchedule", "NoExecute")):
        return False, not untolerated(taints, tols, ("NoExecute",))
    return True, True


def target_node_affinity(affinity: Obj | None, node_name: str) -> Obj:
    """ReplaceDaemonSetPodNodeNameNodeAffinity: require exactly ``node_name``."""
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
    out = dict(affinity or {})
    node_aff = dict(out.get("nodeAffinity") or {})
    required = dict(node_aff.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    required["nodeSelectorTerms"] = [term]
    node_aff["requiredDuringSchedulingIgnoredDuringExecution"] = required
    out["nodeAffinity"] = node_aff
    return out


def target_node(pod: Obj) -> str | None:
    """GetTargetNodeName: spec.nodeName, else the node its affinity pins it to."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = required.get("nodeSelectorTerms") or []
    if len(terms) != 1:
        return None
    fields = terms[0].get("matchFields") or []
    for f in fields:
        values = f.get("values") or []
        if f.get("key") == "metadata.name" and f.get("operator") == "In" and len(values) == 1:
            return str(values[0])
    return None


# ---- generations, hashes, counts ----------------------------------------------------------


def template_generation(ds: Obj) -> str | None:
    """The template generation: upstream's annotation, else ``metadata.generation``."""
    ann = (meta(ds).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    if ann:
        return str(ann)
    gen = meta(ds).get("generation")
    return str(gen) if gen else None


def pod_template(ds: Obj, *, generation: str | None, hash_: str) -> Obj:
    """CreatePodTemplate: the template with daemon tolerations and the two labels."""
    template: Obj = orjson.loads(orjson.dumps((ds.get("spec") or {}).get("template") or {}))
    add_daemon_tolerations(template.setdefault("spec", {}))
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    if hash_:
        labels[REVISION_HASH_LABEL] = hash_
    return template


def pod_updated(pod: Obj, *, hash_: str, generation: str | None) -> bool:
    labels = labels_of(pod)
    return bool(
        (generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation)
        or (hash_ and labels.get(REVISION_HASH_LABEL) == hash_)
    )


def scaled_value(value: Any, *, total: int) -> int:
    """GetScaledValueFromIntOrPercent, rounding up."""
    if value is None:
        return 0
    if isinstance(value, str):
        if value.endswith("%"):
            try:
                return math.ceil(int(value[:-1]) * total / 100)
            except ValueError:
                return 0
        try:
            return int(value)
        except ValueError:
            return 0
    return int(value)


def namespace_terminating(e: ApiError) -> bool:
    return any("NamespaceTerminating" in (c.get("reason"), c.get("type")) for c in e.causes)


def _creation_order(pod: Obj) -> tuple[bool, float, str]:
    """podByCreationTimestampAndPhase: scheduled first, then oldest, then by name."""
    return (
        not (pod.get("spec") or {}).get("nodeName"),
        parse_time(meta(pod).get("creationTimestamp")) or 0.0,
        str(meta(pod).get("name") or ""),
    )


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _available(pod: Obj, *, min_ready: int, now: float) -> bool:
    return pod_is_available(pod, min_ready_seconds=min_ready, now=now)


def _live(pods: list[Obj]) -> list[Obj]:
    """Pods leaving out those finished and being deleted (getNodesToDaemonPods)."""
    return [p for p in pods if not (_phase(p) in ("Succeeded", "Failed") and is_deleting(p))]


def pods_by_node(pods: list[Obj]) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for p in pods:
        node = target_node(p)
        if node is not None:
            out.setdefault(node, []).append(p)
    return out


def compute_status(
    ds: Obj, *, nodes: list[Obj], pods: list[Obj], hash_: str, now: float
) -> dict[str, int]:
    pod_spec = daemon_pod_spec(ds)
    by_node = pods_by_node(_live(pods))
    generation = template_generation(ds)
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    desired = current = mis = ready = updated = available = 0
    for node in nodes:
        run, _ = should_run(node, pod_spec=pod_spec)
        on_node = sorted(by_node.get(str(meta(node).get("name")), []), key=_creation_order)
        if not run:
            mis += bool(on_node)
            continue
        desired += 1
        if not on_node:
            continue
        current += 1
        pod = on_node[0]
        if pod_is_ready(pod):
            ready += 1
            available += _available(pod, min_ready=min_ready, now=now)
        updated += pod_updated(pod, hash_=hash_, generation=generation)
    return {
        "desiredNumberScheduled": desired,
        "currentNumberScheduled": current,
        "numberMisscheduled": mis,
        "numberReady": ready,
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
        "numberUnavailable": desired - available,
    }


def build_status(ds: Obj, counts: dict[str, int], *, observed: bool) -> Obj:
    old = ds.get("status") or {}
    status: Obj = {
        "currentNumberScheduled": counts["currentNumberScheduled"],
        "numberMisscheduled": counts["numberMisscheduled"],
        "desiredNumberScheduled": counts["desiredNumberScheduled"],
        "numberReady": counts["numberReady"],
    }
    generation = int(meta(ds).get("generation") or 0) if observed else old.get("observedGeneration")
    if generation:
        status["observedGeneration"] = generation
    for f in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
        if counts[f]:
            status[f] = counts[f]
    for f in ("collisionCount", "conditions"):
        if old.get(f) is not None:
            status[f] = old[f]
    return status


# ---- the controller -------------------------------------------------------------------------


class DaemonSetController(Controller):
    name = "daemonset"
    workers = 2

    def setup(self) -> None:
        self.sets = self.ctx.informer(DAEMONSETS)
        self.pods = self.ctx.informer(PODS, indexers={CONTROLLER_INDEX: by_controller})
        self.nodes = self.ctx.informer(NODES)
        self.revisions = self.ctx.informer(
            CONTROLLERREVISIONS, indexers={CONTROLLER_INDEX: by_controller}
        )
        self.history = HistoryWriter(self.client)
        self.podcontrol = PodControl(self.client, self.recorder)
        self.expectations = ControllerExpectations()
        self.fresh = FreshObjects()
        self._backoff: dict[str, tuple[float, float]] = {}  # ds uid/node -> (delay, until)
        self.sets.add_handler(
            on_add=self.enqueue, on_update=self._set_updated, on_delete=self._set_deleted
        )
        self.pods.add_handler(
            on_add=self._pod_added,
            on_update=self._pod_updated,
            on_delete=self._pod_deleted,
            readonly=True,
        )
        self.nodes.add_handler(
            on_add=lambda _n: self._enqueue_all(),
            on_update=self._node_updated,
            on_delete=lambda _n: self._enqueue_all(),
        )
        self.revisions.add_handler(
            on_add=self._owned_changed,
            on_update=lambda _o, n: self._owned_changed(n),
            on_delete=self._owned_changed,
        )

    async def started(self) -> None:
        self.enqueue_all(self.sets)

    # ---- handlers ------------------------------------------------------------------

    def _enqueue_all(self) -> None:
        self.enqueue_all(self.sets)

    def _set_updated(self, old: Obj, new: Obj) -> None:
        self.fresh.seen(new)
        self.enqueue(new)

    def _set_deleted(self, obj: Obj) -> None:
        key = key_of(obj)
        self.fresh.forget(key)
        self.expectations.delete(key)
        self.enqueue(obj)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        def shape(n: Obj) -> Any:
            conditions = (n.get("status") or {}).get("conditions") or []
            conds = {c.get("type"): c.get("status") for c in conditions}
            return (labels_of(n), n.get("spec"), conds)

        if shape(old) != shape(new):
            self._enqueue_all()

    def _owner_key(self, obj: Obj) -> str | None:
        ref = controller_ref(obj)
        if ref is None or ref.get("kind") != "DaemonSet" or ref.get("apiVersion") != "apps/v1":
            return None
        ns = meta(obj).get("namespace") or ""
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
            for ds in self.sets.list(ns):
                if selector_of((ds.get("spec") or {}).get("selector")).matches(labels_of(obj)):
                    self.enqueue(ds)

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
        self._owned_changed(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if is_deleting(new) and not is_deleting(old):
            self._pod_deleted(new)
            return
        if (controller_ref(old) or {}).get("uid") != (controller_ref(new) or {}).get("uid"):
            self._owned_changed(old)
        self._owned_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.queue.add(key)

    def target(self, ds: Obj) -> Obj:
        return {**ds, "apiVersion": "apps/v1", "kind": "DaemonSet"}

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
            self.expectations.delete(key)
            self.fresh.forget(key)
            return None
        ds = self.target(self.fresh.fresh(cached))
        selector = (ds.get("spec") or {}).get("selector") or {}
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            msg = "This daemon set is selecting all pods. A non-empty selector is required."
            self.recorder.warning(ds, "SelectingAll", msg)
            return None
        if is_deleting(ds):
            return None
        cur, old = await self._construct_history(ds)
        hash_ = hash_of(cur)
        nodes = self.nodes.list()
        delays: list[float] = []
        observed = False
        if self.expectations.satisfied(key):
            pods = await self._claim_pods(ds)
            delays += await self._manage(ds, nodes=nodes, pods=pods, hash_=hash_, key=key)
            if self.expectations.satisfied(key):
                strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type")
                if strategy in (None, "RollingUpdate"):
                    pods = await self._claim_pods(ds)  # the cache after manage's writes
                    await self._rolling_update(ds, nodes=nodes, pods=pods, hash_=hash_, key=key)
            await self._cleanup_history(ds, old)
            observed = True
        now = self.ctx.clock()
        pods = self.pods.by_index(CONTROLLER_INDEX, uid_of(ds))
        counts = compute_status(ds, nodes=nodes, pods=pods, hash_=hash_, now=now)
        await self._write_status(ds, build_status(ds, counts, observed=observed))
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready > 0 and counts["numberReady"] != counts["numberAvailable"]:
            delays.append(float(min_ready))
        return min(delays) if delays else None

    async def _claim_pods(self, ds: Obj) -> list[Obj]:
        ns = meta(ds).get("namespace") or ""
        candidates = [
            *self.pods.by_index(CONTROLLER_INDEX, uid_of(ds)),
            *self.pods.by_index(CONTROLLER_INDEX, orphan_key(ns)),
        ]
        return await claim(
            self.client, res=PODS, owner=ds, owner_res=DAEMONSETS,
            selector=selector_of((ds.get("spec") or {}).get("selector")),
            candidates=candidates,
            can_adopt=owner_alive_check(self.client, res=DAEMONSETS, owner=ds),
        )  # fmt: skip

    # ---- history --------------------------------------------------------------------

    async def _construct_history(self, ds: Obj) -> tuple[Obj, list[Obj]]:
        ns = meta(ds).get("namespace") or ""
        candidates = [
            *self.revisions.by_index(CONTROLLER_INDEX, uid_of(ds)),
            *self.revisions.by_index(CONTROLLER_INDEX, orphan_key(ns)),
        ]
        histories = await claim_revisions(
            self.client, owner=ds, owner_res=DAEMONSETS,
            selector=selector_of((ds.get("spec") or {}).get("selector")),
            candidates=candidates,
            can_adopt=owner_alive_check(self.client, res=DAEMONSETS, owner=ds),
        )  # fmt: skip
        current = [h for h in histories if same_template(h, ds)]
        old = [h for h in histories if not same_template(h, ds)]
        next_number = max((revision_number(h) for h in old), default=0) + 1
        if not current:
            return await self._snapshot(ds, revision=next_number), old
        current = sort_revisions(current)
        cur = current[-1]
        for dup in current[:-1]:  # dedupCurHistories (pods keep their labels)
            await self.history.delete(dup)
        if revision_number(cur) < next_number:
            cur = await self.history.set_revision(cur, next_number)
        return cur, old

    async def _snapshot(self, ds: Obj, *, revision: int) -> Obj:
        collisions = (ds.get("status") or {}).get("collisionCount")
        template = (ds.get("spec") or {}).get("template") or {}
        hash_ = hash_template(template, collision_count=collisions)
        rev = new_revision(
            ds, owner_res=DAEMONSETS, revision=revision, collision_count=collisions,
            name_hash=hash_,
        )  # fmt: skip
        created, _ = await self.history.create(rev, owner=ds, collision_count=0, rename=False)
        if same_template(created, ds):
            return created
        # A different template under our name: bump collisionCount and try again.
        m = meta(ds)
        current = await self.client.get(DAEMONSETS, m["name"], namespace=m["namespace"])
        if (current.get("status") or {}).get("collisionCount") == collisions:
            current.setdefault("status", {})["collisionCount"] = int(collisions or 0) + 1
            self.fresh.wrote(await self.client.update_status(DAEMONSETS, current))
        raise RuntimeError(f"hash collision for DaemonSet {key_of(ds)}; retrying")

    async def _cleanup_history(self, ds: Obj, old: list[Obj]) -> None:
        limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
        to_kill = len(old) - (10 if limit is None else int(limit))
        if to_kill <= 0:
            return
        live = {
            labels_of(p).get(REVISION_HASH_LABEL)
            for p in self.pods.by_index(CONTROLLER_INDEX, uid_of(ds))
        }
        for rev in sort_revisions(old):
            if to_kill <= 0:
                break
            if hash_of(rev) in live:
                continue
            await self.history.delete(rev)
            to_kill -= 1

    # ---- manage ---------------------------------------------------------------------

    async def _manage(
        self, ds: Obj, *, nodes: list[Obj], pods: list[Obj], hash_: str, key: str
    ) -> list[float]:
        pod_spec = daemon_pod_spec(ds)
        by_node = pods_by_node(_live(pods))
        need: list[str] = []
        delete: list[Obj] = []
        delays: list[float] = []
        node_names = set()
        for node in nodes:
            name = str(meta(node).get("name"))
            node_names.add(name)
            n, d, delay = self._pods_should_be_on_node(
                ds, node, pods=by_node.get(name), pod_spec=pod_spec, hash_=hash_
            )
            need += n
            delete += d
            if delay is not None:
                delays.append(delay)
        gone = [
            p
            for name, on_node in by_node.items()
            if name not in node_names
            for p in on_node
            if not is_deleting(p) or (p.get("spec") or {}).get("nodeName")
        ]
        await self._sync_nodes(ds, delete=delete, create=need, hash_=hash_, key=key)
        await self._delete_on_gone_nodes(ds, gone)
        return delays

    async def _delete_on_gone_nodes(self, ds: Obj, pods: list[Obj]) -> None:
        """Pods of nodes that no longer exist go at once (no kubelet will confirm a
        graceful deletion; upstream's pod GC does the same)."""
        for pod in pods:
            m = meta(pod)
            try:
                await self.client.delete(
                    PODS, m["name"], namespace=m["namespace"], grace_period_seconds=0,
                    preconditions_uid=uid_of(pod) or None,
                )  # fmt: skip
            except (NotFound, Conflict):
                continue
            if not is_deleting(pod):
                self.recorder.normal(ds, "SuccessfulDelete", f"Deleted pod: {m['name']}")

    def _pods_should_be_on_node(
        self, ds: Obj, node: Obj, *, pods: list[Obj] | None, pod_spec: Obj, hash_: str
    ) -> tuple[list[str], list[Obj], float | None]:
        name = str(meta(node).get("name"))
        run, cont = should_run(node, pod_spec=pod_spec)
        need: list[str] = []
        delete: list[Obj] = []
        delay: float | None = None
        if run and pods is None:
            return [name], [], None
        if not pods:
            return [], [], None
        if not cont:
            return [], [p for p in pods if not is_deleting(p)], None
        running: list[Obj] = []
        for pod in pods:
            if is_deleting(pod):
                continue
            if _phase(pod) == "Failed":
                wait = self._failed_backoff(ds, name)
                if wait > 0:
                    delay = wait if delay is None else min(delay, wait)
                    continue
                pn = meta(pod).get("name")
                msg = (
                    f"Found failed daemon pod {meta(pod).get('namespace')}/{pn} on node {name},"
                    " will try to kill it"
                )
                self.recorder.warning(ds, "FailedDaemonPod", msg)
                delete.append(pod)
            elif _phase(pod) == "Succeeded":
                delete.append(pod)
            else:
                running.append(pod)
        running.sort(key=_creation_order)
        if not self._surge(ds):
            return need, delete + running[1:], delay
        if len(running) <= 1:
            if not running and run:
                need.append(name)
            return need, delete, delay
        new_pod = old_pod = None
        for pod in running:
            if labels_of(pod).get(REVISION_HASH_LABEL) == hash_:
                if new_pod is None:
                    new_pod = pod
                    continue
            elif old_pod is None:
                old_pod = pod
                continue
            delete.append(pod)
        if new_pod is not None and old_pod is not None:
            min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
            if not pod_is_ready(old_pod) or _available(
                new_pod, min_ready=min_ready, now=self.ctx.clock()
            ):
                delete.append(old_pod)
        return need, delete, delay

    def _failed_backoff(self, ds: Obj, node: str) -> float:
        """Seconds until a failed pod on ``node`` may be deleted again (0: now; the
        back-off doubles from 1 s to 15 min as upstream's failedPodsBackoff)."""
        key = f"{uid_of(ds)}/{node}"
        now = time.monotonic()
        delay, until = self._backoff.get(key, (0.0, 0.0))
        if now < until:
            return until - now
        delay = min(_BACKOFF_MAX, delay * 2) if delay else _BACKOFF_INITIAL
        self._backoff[key] = (delay, now + delay)
        return 0.0

    def _surge(self, ds: Obj) -> bool:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return False
        surge = (strategy.get("rollingUpdate") or {}).get("maxSurge")
        return surge not in (None, 0, "0", "0%")

    async def _sync_nodes(
        self, ds: Obj, *, delete: list[Obj], create: list[str], hash_: str, key: str
    ) -> None:
        create, delete = create[:BURST_REPLICAS], delete[:BURST_REPLICAS]
        if not create and not delete:
            return
        self.expectations.expect_creations(key, len(create))
        self.expectations.expect_deletions(key, [key_of(p) for p in delete])
        template = pod_template(ds, generation=template_generation(ds), hash_=hash_)
        owner_ref = controller_ref_for(ds, res=DAEMONSETS)
        errors: list[BaseException] = []

        async def create_on(node: str) -> None:
            t = orjson.loads(orjson.dumps(template))
            t["spec"]["affinity"] = target_node_affinity(t["spec"].get("affinity"), node)
            try:
                await self.podcontrol.create_pod(template=t, owner=ds, owner_ref=owner_ref)
            except Exception:
                self.expectations.lower_creations(key, 1)
                raise

        pos, batch = 0, 1
        while pos < len(create):
            chunk = create[pos : pos + batch]
            results = await asyncio.gather(*(create_on(n) for n in chunk), return_exceptions=True)
            failed = [r for r in results if isinstance(r, BaseException)]
            if failed:
                self.expectations.lower_creations(key, len(create) - pos - len(chunk))
                errors += failed
                break
            pos += len(chunk)
            batch *= 2

        async def delete_one(pod: Obj) -> None:
            m = meta(pod)
            try:
                await self.podcontrol.delete_pod(namespace=m["namespace"], name=m["name"], owner=ds)
            except Exception:
                self.expectations.deletion_observed(key, key_of(pod))
                raise

        results = await asyncio.gather(*(delete_one(p) for p in delete), return_exceptions=True)
        errors += [r for r in results if isinstance(r, BaseException)]
        for pod in delete:  # already gone (NotFound), or its event came and went
            cached = self.pods.get(meta(pod)["name"], namespace=meta(pod)["namespace"])
            if cached is None or uid_of(cached) != uid_of(pod) or is_deleting(cached):
                self.expectations.deletion_observed(key, key_of(pod))
        if errors:
            raise errors[0]

    # ---- rolling update --------------------------------------------------------------

    def _desired_counts(
        self, ds: Obj, *, nodes: list[Obj], by_node: dict[str, list[Obj]]
    ) -> tuple[int, int, int]:
        """(maxSurge, maxUnavailable, desired): updatedDesiredNodeCounts."""
        pod_spec = daemon_pod_spec(ds)
        desired = 0
        for node in nodes:
            if should_run(node, pod_spec=pod_spec)[0]:
                desired += 1
                by_node.setdefault(str(meta(node).get("name")), [])
        rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        unavailable = scaled_value(rolling.get("maxUnavailable", 1), total=desired)
        surge = scaled_value(rolling.get("maxSurge"), total=desired)
        if desired > 0 and unavailable == 0 and surge == 0:
            unavailable = 1
        return surge, unavailable, desired

    async def _rolling_update(
        self, ds: Obj, *, nodes: list[Obj], pods: list[Obj], hash_: str, key: str
    ) -> None:
        by_node = pods_by_node(_live(pods))
        surge, max_unavailable, desired = self._desired_counts(ds, nodes=nodes, by_node=by_node)
        generation = template_generation(ds)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        now = self.ctx.clock()

        def avail(p: Obj) -> bool:
            return _available(p, min_ready=min_ready, now=now)

        def split(on_node: list[Obj]) -> tuple[Obj | None, Obj | None, bool]:
            new = old = None
            for p in on_node:
                if is_deleting(p):
                    continue
                if pod_updated(p, hash_=hash_, generation=generation):
                    if new is not None:
                        return None, None, False
                    new = p
                else:
                    if old is not None:
                        return None, None, False
                    old = p
            return new, old, True

        if surge == 0:
            unavailable = 0
            allowed: list[Obj] = []
            candidates: list[Obj] = []
            for _node, on_node in sorted(by_node.items()):
                new, old, ok = split(on_node)
                if not ok or (new is None) == (old is None):
                    unavailable += 1
                elif new is not None:
                    unavailable += not avail(new)
                elif old is not None and not avail(old):
                    allowed.append(old)
                    unavailable += 1
                elif old is not None and unavailable < max_unavailable:
                    candidates.append(old)
            room = max(0, max_unavailable - unavailable)
            victims = allowed + candidates[:room]
            await self._sync_nodes(ds, delete=victims, create=[], hash_=hash_, key=key)
            return

        nodes_by_name = {str(meta(n).get("name")): n for n in nodes}
        pod_spec = daemon_pod_spec(ds)
        to_delete: list[Obj] = []
        should_not_run: list[Obj] = []
        candidate_nodes: list[str] = []
        allowed_nodes: list[str] = []
        num_surge = num_available = 0
        for node_name, on_node in sorted(by_node.items()):
            new, old, ok = split(on_node)
            if not ok:
                num_surge += 1
                continue
            shown = old if old is not None else new
            if shown is not None and avail(shown):
                num_available += 1
            node = nodes_by_name.get(node_name)
            runs = node is not None and should_run(node, pod_spec=pod_spec)[0]
            if old is None:
                continue
            if new is None:
                if not avail(old):
                    if not runs:
                        to_delete.append(old)
                    else:
                        allowed_nodes.append(node_name)
                elif not runs:
                    should_not_run.append(old)
                elif num_surge < surge:
                    candidate_nodes.append(node_name)
                continue
            if not avail(new):
                num_surge += 1
                continue
            to_delete.append(old)
        deletable = num_available - desired
        if deletable > 0:
            to_delete += should_not_run[:deletable]
        room = max(0, surge - num_surge)
        create = allowed_nodes + candidate_nodes[:room]
        await self._sync_nodes(ds, delete=to_delete, create=create, hash_=hash_, key=key)

    # ---- status ---------------------------------------------------------------------

    async def _write_status(self, ds: Obj, status: Obj) -> None:
        if status == (ds.get("status") or {}):
            return
        m = meta(ds)
        try:
            self.fresh.wrote(await self.client.update_status(DAEMONSETS, {**ds, "status": status}))
            return
        except NotFound:
            return
        except Conflict:
            pass
        fresh = await self.client.get_or_none(DAEMONSETS, m["name"], namespace=m["namespace"])
        if fresh is None or uid_of(fresh) != uid_of(ds):
            return
        if int(meta(fresh).get("generation") or 0) != int(m.get("generation") or 0):
            self.enqueue(fresh)
            return
        collisions = (fresh.get("status") or {}).get("collisionCount")
        fresh["status"] = {k: v for k, v in status.items() if k != "collisionCount"}
        if collisions is not None:
            fresh["status"]["collisionCount"] = collisions
        try:
            self.fresh.wrote(await self.client.update_status(DAEMONSETS, fresh))
        except (Conflict, NotFound):
            self.enqueue(fresh)
        except ApiError:
            raise


CONTROLLERS = [DaemonSetController]
