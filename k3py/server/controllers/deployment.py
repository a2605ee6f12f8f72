"""Deployments: ReplicaSets per pod template, rolled as upstream's
``pkg/controller/deployment`` rolls them (kube-controller-manager 1.32).

A Deployment owns one ReplicaSet per distinct pod template, named
``<deployment>-<pod-template-hash>``; the hash (fnv32a of the template in canonical JSON,
plus ``status.collisionCount``, spelled in the alphabet ``bcdfghjklmnpqrstvwxz2456789``)
is added to the ReplicaSet's selector, labels and template labels so the sets never
select each other's pods.  The "new" ReplicaSet is the oldest one whose template equals
the Deployment's ignoring that label; every other one is "old".

One reconcile, from the caches (``state is only what the API holds``):

1. Claim ReplicaSets: adopt orphans matching the selector, release owned ones that no
   longer match.
2. Paused, or a scaling event (an active ReplicaSet's ``desired-replicas`` annotation
   differs from ``spec.replicas``): scale without rolling — proportionally over the
   active sets during a rollout (``max-replicas`` annotations give the proportions).
3. Otherwise roll: Recreate scales every old set to 0, waits until no old pod exists,
   then creates/scales the new one; RollingUpdate scales the new set up while the
   total stays within ``replicas + maxSurge`` and scales old sets down while available
   pods stay at least ``replicas - maxUnavailable`` (surge rounds up, unavailable down;
   both 0 means unavailable 1), unhealthy old replicas first.
4. Status: counts summed over the sets, the Available condition, and Progressing
   (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated, NewReplicaSetAvailable,
   ProgressDeadlineExceeded, DeploymentPaused/Resumed); a stuck rollout is looked at
   again when its deadline passes.  Completed rollouts delete the oldest zero-sized
   sets beyond ``revisionHistoryLimit``.

Revisions: each new set gets ``deployment.kubernetes.io/revision`` = max(old) + 1; a set
that becomes new again (``kubectl rollout undo``) takes the next number and keeps its old
numbers in ``revision-history``.  The Deployment carries the revision of its new set.

Our own writes are layered over the caches (``FreshObjects``) so a reconcile right after
a write does not decide from the state before it.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import orjson

from k3py.client import AlreadyExists, ApiError, Conflict, NotFound, key_of, split_key
from k3py.client.resources import DEPLOYMENTS, PODS, REPLICASETS
from k3py.server.controllers.base import Controller, controller_ref, is_deleting, meta, parse_time
from k3py.server.controllers.podcontrol import (
    CONTROLLER_INDEX,
    FreshObjects,
    by_controller,
    claim,
    controller_ref_for,
    labels_of,
    name_of,
    namespace_terminating,
    orphan_key,
    owner_alive_check,
    selector_of,
    shared_pod_events,
    uid_of,
)

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.deployment")

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SKIP_ANNOTATIONS = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Condition reasons (deploymentutil).
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
RS_UPDATED_REASON = "ReplicaSetUpdated"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
MIN_AVAILABLE = "MinimumReplicasAvailable"
MIN_UNAVAILABLE = "MinimumReplicasUnavailable"


# ---- small accessors ------------------------------------------------------------------


def spec_of(obj: Obj) -> Obj:
    s = obj.get("spec")
    return s if isinstance(s, dict) else {}


def status_of(obj: Obj) -> Obj:
    s = obj.get("status")
    return s if isinstance(s, dict) else {}


def annotations_of(obj: Obj) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def replicas(obj: Obj) -> int:
    r = spec_of(obj).get("replicas")
    return 1 if r is None else int(r)


def status_count(obj: Obj | None, field: str) -> int:
    return int(status_of(obj).get(field) or 0) if obj is not None else 0


def _int_annotation(obj: Obj, key: str) -> int | None:
    try:
        return int(annotations_of(obj)[key])
    except (KeyError, TypeError, ValueError):
        return None


def revision_of(rs: Obj) -> int:
    return _int_annotation(rs, REVISION) or 0


def _copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


def _created(obj: Obj) -> tuple[float, str]:
    return (parse_time(meta(obj).get("creationTimestamp")) or 0.0, name_of(obj))


def _go_round(x: float) -> int:
    """math.Round: halves away from zero."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


# ---- surge and unavailability -----------------------------------------------------------


def scaled_value(value: Any, *, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent (an invalid value counts as 0)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return 0
    try:
        pct = int(text[:-1])
    except ValueError:
        return 0
    scaled = pct * total / 100
    return int(math.ceil(scaled) if round_up else math.floor(scaled))


def is_rolling(d: Obj) -> bool:
    return ((spec_of(d).get("strategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate"


def resolve_fenceposts(d: Obj) -> tuple[int, int]:
    ru = (spec_of(d).get("strategy") or {}).get("rollingUpdate") or {}
    desired = replicas(d)
    surge = scaled_value(ru.get("maxSurge"), total=desired, round_up=True)
    unavailable = scaled_value(ru.get("maxUnavailable"), total=desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return resolve_fenceposts(d)[0] if is_rolling(d) else 0


def max_unavailable(d: Obj) -> int:
    if not is_rolling(d) or replicas(d) == 0:
        return 0
    return min(resolve_fenceposts(d)[1], replicas(d))


def has_progress_deadline(d: Obj) -> bool:
    p = spec_of(d).get("progressDeadlineSeconds")
    return p is not None and int(p) != MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    r = spec_of(d).get("revisionHistoryLimit")
    return r is not None and int(r) != MAX_INT32


# ---- templates and hashes -------------------------------------------------------------


def _fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def compute_hash(template: Obj, collision_count: int | None) -> str:
    """The pod-template-hash: fnv32a over the template's canonical JSON (and the
    collision count as upstream adds it), its decimal digits in the safe alphabet."""
    data = orjson.dumps(_normalize(template), option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0"
    return "".join(SAFE_ALPHABET[b % len(SAFE_ALPHABET)] for b in str(_fnv32a(data)).encode())


def _normalize(value: Any) -> Any:
    """Nulls, empty maps and empty lists dropped (Semantic.DeepEqual treats them as unset)."""
    if isinstance(value, dict):
        out = {k: _normalize(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    return value


def _without_hash(template: Obj | None) -> Any:
    t = _copy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return _normalize(t)


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    return bool(_without_hash(a) == _without_hash(b))


def find_new_rs(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (ignoring the hash)."""
    want = _without_hash(spec_of(d).get("template"))
    for rs in sorted(rss, key=_created):
        if _without_hash(spec_of(rs).get("template")) == want:
            return rs
    return None


def max_revision(rss: list[Obj]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


# ---- annotations on ReplicaSets -------------------------------------------------------


def set_replicas_annotations(rs: Obj, *, desired: int, max_replicas: int) -> bool:
    ann = meta(rs).setdefault("annotations", {})
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(key) != value:
            ann[key] = value
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, *, desired: int, max_replicas: int) -> bool:
    ann = annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


def _copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    ann = meta(rs).setdefault("annotations", {})
    changed = False
    for k, v in annotations_of(d).items():
        if k in SKIP_ANNOTATIONS or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, *, new_revision: int, exists: bool) -> bool:
    """SetNewReplicaSetAnnotations: copy the Deployment's annotations, raise the
    revision (keeping earlier ones in revision-history), and on create the replica
    annotations."""
    changed = _copy_deployment_annotations(d, rs)
    ann = meta(rs).setdefault("annotations", {})
    old_text = ann.get(REVISION)
    try:
        old = int(old_text) if old_text else 0
    except ValueError:
        return False
    if old < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old_text:
            _append_revision_history(ann, old_text)
    if not exists and set_replicas_annotations(
        rs, desired=replicas(d), max_replicas=replicas(d) + max_surge(d)
    ):
        changed = True
    return changed


def _append_revision_history(ann: dict[str, str], old: str) -> None:
    history = ann.get(REVISION_HISTORY, "")
    if not history:
        ann[REVISION_HISTORY] = old
        return
    parts = history.split(",")
    total = len(history) + len(old) + 1
    start = 0
    while total > MAX_REVISION_HISTORY_CHARS and start < len(parts):
        total -= len(parts[start]) + 1
        start += 1
    if total <= MAX_REVISION_HISTORY_CHARS:
        ann[REVISION_HISTORY] = ",".join([*parts[start:], old])


# ---- replica arithmetic ------------------------------------------------------------------


def active(rss: list[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas(rs) > 0]


def total_spec(rss: list[Obj | None]) -> int:
    return sum(replicas(rs) for rs in rss if rs is not None)


def total_status(rss: list[Obj | None], field: str) -> int:
    return sum(status_count(rs, field) for rs in rss if rs is not None)


def new_rs_new_replicas(d: Obj, all_rss: list[Obj | None], new_rs: Obj) -> int:
    if not is_rolling(d):
        return replicas(d)
    max_total = replicas(d) + max_surge(d)
    current = total_spec(all_rss)
    if current >= max_total:
        return replicas(new_rs)
    scale_up = min(max_total - current, replicas(d) - replicas(new_rs))
    return replicas(new_rs) + scale_up


def find_active_or_latest(new_rs: Obj | None, old_rss: list[Obj]) -> Obj | None:
    if new_rs is None and not old_rss:
        return None
    olds = sorted(old_rss, key=_created, reverse=True)
    live = active([*olds, new_rs])
    if not live:
        return new_rs if new_rs is not None else olds[0]
    return live[0] if len(live) == 1 else None


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    desired = _int_annotation(rs, DESIRED_REPLICAS)
    return (
        desired == replicas(d)
        and replicas(rs) == replicas(d)
        and status_count(rs, "availableReplicas") == replicas(d)
    )


def _rs_fraction(rs: Obj, d: Obj) -> int:
    if replicas(d) == 0:
        return -replicas(rs)
    deployment_replicas = replicas(d) + max_surge(d)
    annotated = _int_annotation(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = status_count(d, "replicas")
    if not annotated:
        return 0
    return _go_round(replicas(rs) * deployment_replicas / annotated) - replicas(rs)


def get_proportion(rs: Obj, d: Obj, *, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = _rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


# ---- conditions and status -------------------------------------------------------------


def new_condition(ctype: str, status: str, reason: str, message: str, *, now: str) -> Obj:
    return {
        "type": ctype, "status": status, "lastUpdateTime": now, "lastTransitionTime": now,
        "reason": reason, "message": message,
    }  # fmt: skip


def get_dcondition(status: Obj, ctype: str) -> Obj | None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def set_dcondition(status: Obj, cond: Obj) -> None:
    """SetDeploymentCondition: same status and reason is no change; the transition time
    stays while the status does."""
    current = get_dcondition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"]:
        if current.get("reason") == cond["reason"]:
            return
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    remove_dcondition(status, cond["type"])
    status.setdefault("conditions", []).append(cond)


def remove_dcondition(status: Obj, ctype: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def calculate_status(all_rss: list[Obj | None], new_rs: Obj | None, d: Obj, *, now: str) -> Obj:
    available = total_status(all_rss, "availableReplicas")
    unavailable = max(0, total_spec(all_rss) - available)
    counts = {
        "observedGeneration": int(meta(d).get("generation") or 0),
        "replicas": total_status(all_rss, "replicas"),
        "updatedReplicas": status_count(new_rs, "replicas"),
        "readyReplicas": total_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    status: Obj = {k: v for k, v in counts.items() if v}
    old = status_of(d)
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = [dict(c) for c in old["conditions"]]
    if available >= replicas(d) - max_unavailable(d):
        cond = new_condition("Available", "True", MIN_AVAILABLE,
                             "Deployment has minimum availability.", now=now)  # fmt: skip
    else:
        cond = new_condition("Available", "False", MIN_UNAVAILABLE,
                             "Deployment does not have minimum availability.", now=now)  # fmt: skip
    set_dcondition(status, cond)
    return status


def deployment_complete(d: Obj, status: Obj) -> bool:
    n = replicas(d)
    return (
        int(status.get("updatedReplicas") or 0) == n
        and int(status.get("replicas") or 0) == n
        and int(status.get("availableReplicas") or 0) == n
        and int(status.get("observedGeneration") or 0) >= int(meta(d).get("generation") or 0)
    )


def deployment_progressing(d: Obj, new: Obj) -> bool:
    old = status_of(d)

    def g(s: Obj, f: str) -> int:
        return int(s.get(f) or 0)

    return (
        g(new, "updatedReplicas") > g(old, "updatedReplicas")
        or g(new, "replicas") - g(new, "updatedReplicas")
        < g(old, "replicas") - g(old, "updatedReplicas")
        or g(new, "readyReplicas") > g(old, "readyReplicas")
        or g(new, "availableReplicas") > g(old, "availableReplicas")
    )


def deployment_timed_out(d: Obj, status: Obj, *, now: float) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_dcondition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    since = parse_time(cond.get("lastUpdateTime"))
    deadline = int(spec_of(d).get("progressDeadlineSeconds") or 0)
    return since is not None and since + deadline < now


class Retry(Exception):
    """Look at the Deployment again shortly (a lost write race, a collision)."""


# ---- the controller ---------------------------------------------------------------------


class DeploymentController(Controller):
    name = "deployment"
    workers = 4

    def setup(self) -> None:
        self.recorder = self.recorder.for_component("deployment-controller")
        self.deployments = self.ctx.informer(DEPLOYMENTS)
        self.rss = self.ctx.informer(REPLICASETS, indexers={CONTROLLER_INDEX: by_controller})
        self.pods = self.ctx.informer(PODS)
        events = shared_pod_events(self.pods)
        self.slim = events.slim
        self.fresh_d = FreshObjects()
        self.fresh_rs = FreshObjects()
        self._failures: dict[str, int] = {}
        self.deployments.add_handler(
            on_add=self.enqueue, on_update=self._d_updated, on_delete=self._d_deleted
        )
        self.rss.add_handler(
            on_add=self._rs_added, on_update=self._rs_updated, on_delete=self._rs_deleted
        )
        events.subscribe(on_delete=self._pod_deleted)

    async def started(self) -> None:
        self.enqueue_all(self.deployments)

    # ---- handlers --------------------------------------------------------------------

    def _d_updated(self, old: Obj, new: Obj) -> None:
        self.fresh_d.seen(new)
        self.enqueue(new)

    def _d_deleted(self, d: Obj) -> None:
        self.fresh_d.forget(key_of(d))
        self.enqueue(d)

    def _owner_of_rs(self, rs: Obj) -> str | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment" or ref.get("apiVersion") != "apps/v1":
            return None
        ns = meta(rs).get("namespace") or ""
        d = self.deployments.get(str(ref.get("name") or ""), namespace=ns)
        if d is None or uid_of(d) != ref.get("uid"):
            return None
        return key_of(d)

    def _enqueue_for_orphan(self, rs: Obj) -> None:
        ns = meta(rs).get("namespace") or ""
        labels = labels_of(rs)
        for d in self.deployments.list(ns):
            sel = spec_of(d).get("selector")
            if sel and selector_of(sel).matches(labels):
                self.enqueue(d)

    def _rs_added(self, rs: Obj) -> None:
        key = self._owner_of_rs(rs)
        if key is not None:
            self.queue.add(key)
        elif controller_ref(rs) is None and not is_deleting(rs):
            self._enqueue_for_orphan(rs)

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        self.fresh_rs.seen(new)
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        old_ref, new_ref = controller_ref(old), controller_ref(new)
        if (old_ref or {}).get("uid") != (new_ref or {}).get("uid") and old_ref is not None:
            key = self._owner_of_rs(old)
            if key is not None:
                self.queue.add(key)
        if new_ref is not None:
            key = self._owner_of_rs(new)
            if key is not None:
                self.queue.add(key)
        elif labels_of(old) != labels_of(new) or old_ref is not None:
            self._enqueue_for_orphan(new)

    def _rs_deleted(self, rs: Obj) -> None:
        self.fresh_rs.forget(key_of(rs))
        key = self._owner_of_rs(rs)
        if key is not None:
            self.queue.add(key)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for old pods to be gone: the last one's deletion resumes it."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get(str(ref.get("name") or ""), namespace=meta(pod).get("namespace") or "")
        if rs is None:
            return
        key = self._owner_of_rs(rs)
        if key is None:
            return
        ns, name = split_key(key)
        d = self.deployments.get(name, namespace=ns)
        if d is not None and not is_rolling(d):
            self.queue.add(key)

    # ---- reconcile -------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        cached = self.deployments.get(name, namespace=ns)
        if cached is None:
            self._failures.pop(key, None)
            return None
        d = _copy(self.fresh_d.fresh(cached))
        d.setdefault("apiVersion", DEPLOYMENTS.api_version)
        d.setdefault("kind", DEPLOYMENTS.kind)
        try:
            again = await self._sync(d)
        except NotFound:
            return None  # deleted meanwhile: its delete event brings it back if needed
        except (Conflict, Retry) as e:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
            log.debug("deployment %s: %s; again shortly", key, e)
            return float(min(10.0, 0.05 * 2**failures))
        self._failures.pop(key, None)
        return again

    async def _sync(self, d: Obj) -> float | None:
        if spec_of(d).get("selector") == {}:
            self.recorder.warning(d, "SelectingAll",
                                  "This deployment is selecting all pods. A non-empty selector is required.")  # fmt: skip
            gen = int(meta(d).get("generation") or 0)
            if int(status_of(d).get("observedGeneration") or 0) < gen:
                d.setdefault("status", {})["observedGeneration"] = gen
                await self._update_status(d)
            return None
        rs_list = await self._claim_replicasets(d)
        if is_deleting(d):
            new_rs, old_rss = await self._all_rss(d, rs_list, create=False)
            await self._sync_deployment_status([*old_rss, new_rs], new_rs, d)
            return None
        await self._check_paused_conditions(d)
        if spec_of(d).get("paused") or await self._is_scaling_event(d, rs_list):
            return await self._sync_scale(d, rs_list)
        if is_rolling(d):
            return await self._rollout_rolling(d, rs_list)
        return await self._rollout_recreate(d, rs_list)

    # ---- ReplicaSets of a Deployment --------------------------------------------------

    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        ns = meta(d).get("namespace") or ""
        candidates = [
            self.fresh_rs.fresh(rs)
            for index in (uid_of(d), orphan_key(ns))
            for rs in self.rss.by_index(CONTROLLER_INDEX, index)
        ]
        return await claim(
            self.client,
            res=REPLICASETS,
            owner=d,
            owner_res=DEPLOYMENTS,
            selector=selector_of(spec_of(d).get("selector")),
            candidates=candidates,
            can_adopt=owner_alive_check(self.client, res=DEPLOYMENTS, owner=d),
        )

    async def _all_rss(
        self, d: Obj, rs_list: list[Obj], *, create: bool
    ) -> tuple[Obj | None, list[Obj]]:
        """(new ReplicaSet or None, old ones), with revisions synced."""
        new = find_new_rs(d, rs_list)
        olds = [rs for rs in rs_list if rs is not new]
        return await self._new_rs(d, rs_list=rs_list, olds=olds, create=create), olds

    async def _new_rs(
        self, d: Obj, *, rs_list: list[Obj], olds: list[Obj], create: bool
    ) -> Obj | None:
        existing = find_new_rs(d, rs_list)
        new_revision = max_revision(olds) + 1
        if existing is not None:
            return await self._sync_existing_new_rs(d, existing, new_revision=new_revision)
        if not create:
            return None
        return await self._create_new_rs(d, olds=olds, new_revision=new_revision)

    async def _sync_existing_new_rs(self, d: Obj, rs: Obj, *, new_revision: int) -> Obj:
        copy = _copy(rs)
        changed = set_new_rs_annotations(d, copy, new_revision=new_revision, exists=True)
        min_ready = int(spec_of(d).get("minReadySeconds") or 0)
        if changed or int(spec_of(copy).get("minReadySeconds") or 0) != min_ready:
            patch = {
                "metadata": {"annotations": annotations_of(copy)},
                "spec": {"minReadySeconds": min_ready},
            }
            updated = await self._patch_rs(rs, patch)
            _replace(rs, updated)
            return rs
        needs_update = _set_deployment_revision(d, annotations_of(rs).get(REVISION, ""))
        if has_progress_deadline(d) and get_dcondition(status_of(d), "Progressing") is None:
            msg = f'Found new replica set "{name_of(rs)}"'
            set_dcondition(d.setdefault("status", {}), self._cond(
                "Progressing", "True", FOUND_NEW_RS_REASON, msg))  # fmt: skip
            needs_update = True
        if needs_update:
            await self._update_status(d)
        return rs

    def _new_rs_object(self, d: Obj) -> Obj:
        spec = spec_of(d)
        template = _copy(spec.get("template") or {})
        collision = status_of(d).get("collisionCount")
        h = compute_hash(template, None if collision is None else int(collision))
        tmeta = template.setdefault("metadata", {})
        tmeta["labels"] = {**(tmeta.get("labels") or {}), HASH_LABEL: h}
        selector = _copy(spec.get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: h}
        return {
            "apiVersion": REPLICASETS.api_version,
            "kind": REPLICASETS.kind,
            "metadata": {
                "name": f"{name_of(d)}-{h}",
                "namespace": meta(d).get("namespace"),
                "ownerReferences": [controller_ref_for(d, res=DEPLOYMENTS)],
                "labels": dict(tmeta["labels"]),
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": int(spec.get("minReadySeconds") or 0),
                "selector": selector,
                "template": template,
            },
        }

    async def _create_new_rs(self, d: Obj, *, olds: list[Obj], new_revision: int) -> Obj:
        rs = self._new_rs_object(d)
        count = new_rs_new_replicas(d, [*olds, rs], rs)
        rs["spec"]["replicas"] = count
        set_new_rs_annotations(d, rs, new_revision=new_revision, exists=False)
        existed = False
        try:
            created = self.fresh_rs.wrote(await self.client.create(REPLICASETS, rs))
        except AlreadyExists:
            existed = True
            created = await self._existing_or_collision(d, rs)
        except ApiError as e:
            if namespace_terminating(e):
                raise
            msg = f'Failed to create new replica set "{name_of(rs)}": {e.message or e}'
            if has_progress_deadline(d):
                set_dcondition(d.setdefault("status", {}), self._cond(
                    "Progressing", "False", FAILED_RS_CREATE_REASON, msg))  # fmt: skip
                try:
                    await self._update_status(d)
                except ApiError:
                    pass
            self.recorder.warning(d, FAILED_RS_CREATE_REASON, msg)
            raise
        if not existed and count > 0:
            self.recorder.normal(d, "ScalingReplicaSet",
                                 f"Scaled up replica set {name_of(created)} from 0 to {count}")  # fmt: skip
        needs_update = _set_deployment_revision(d, str(new_revision))
        if not existed and has_progress_deadline(d):
            msg = f'Created new replica set "{name_of(created)}"'
            set_dcondition(d.setdefault("status", {}), self._cond(
                "Progressing", "True", NEW_RS_REASON, msg))  # fmt: skip
            needs_update = True
        if needs_update:
            await self._update_status(d)
        return created

    async def _existing_or_collision(self, d: Obj, rs: Obj) -> Obj:
        """The name is taken: ours with the same template (a stale cache), or a hash
        collision, which bumps collisionCount and tries again with another name."""
        ns = meta(d).get("namespace") or ""
        found = await self.client.get_or_none(REPLICASETS, name_of(rs), namespace=ns)
        if found is None:
            raise Retry(f"replica set {name_of(rs)} exists but cannot be read")
        ref = controller_ref(found)
        if (
            ref is not None
            and ref.get("uid") == uid_of(d)
            and equal_ignore_hash(spec_of(d).get("template"), spec_of(found).get("template"))
        ):
            return self.fresh_rs.wrote(found)
        status = d.setdefault("status", {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self._update_status(d)
        raise Retry(f"hash collision for replica set {name_of(rs)}")

    # ---- scaling ReplicaSets -----------------------------------------------------------

    async def _patch_rs(self, rs: Obj, patch: Obj) -> Obj:
        updated = await self.client.patch(
            REPLICASETS, name_of(rs), patch, namespace=meta(rs).get("namespace") or ""
        )
        return self.fresh_rs.wrote(updated)

    async def _scale_rs(self, rs: Obj, new_scale: int, d: Obj) -> bool:
        """scaleReplicaSet: size and replica annotations; an event when the size moves."""
        desired, most = replicas(d), replicas(d) + max_surge(d)
        size_changes = replicas(rs) != new_scale
        if not size_changes and not replicas_annotations_need_update(
            rs, desired=desired, max_replicas=most
        ):
            return False
        old_scale = replicas(rs)
        patch = {
            "metadata": {"annotations": {DESIRED_REPLICAS: str(desired), MAX_REPLICAS: str(most)}},
            "spec": {"replicas": new_scale},
        }
        _replace(rs, await self._patch_rs(rs, patch))
        if size_changes:
            op = "up" if old_scale < new_scale else "down"
            self.recorder.normal(d, "ScalingReplicaSet",
                                 f"Scaled {op} replica set {name_of(rs)} from {old_scale} to {new_scale}")  # fmt: skip
        return size_changes

    async def _scale_rs_and_record(self, rs: Obj, new_scale: int, d: Obj) -> bool:
        if replicas(rs) == new_scale:
            return False
        return await self._scale_rs(rs, new_scale, d)

    async def _is_scaling_event(self, d: Obj, rs_list: list[Obj]) -> bool:
        new_rs, olds = await self._all_rss(d, rs_list, create=False)
        for rs in active([*olds, new_rs]):
            desired = _int_annotation(rs, DESIRED_REPLICAS)
            if desired is not None and desired != replicas(d):
                return True
        return False

    async def _sync_scale(self, d: Obj, rs_list: list[Obj]) -> float | None:
        """Paused or scaled: resize without rolling (upstream's ``sync``)."""
        new_rs, olds = await self._all_rss(d, rs_list, create=False)
        await self._scale(d, new_rs, olds)
        if spec_of(d).get("paused"):
            await self._cleanup(d, olds)
        await self._sync_deployment_status([*olds, new_rs], new_rs, d)
        return None

    async def _scale(self, d: Obj, new_rs: Obj | None, olds: list[Obj]) -> None:
        target = find_active_or_latest(new_rs, olds)
        if target is not None:
            if replicas(target) != replicas(d):
                await self._scale_rs_and_record(target, replicas(d), d)
            return
        if is_saturated(d, new_rs):
            for old in active(list(olds)):
                await self._scale_rs_and_record(old, 0, d)
            return
        if is_rolling(d):
            await self._scale_proportionally(d, active([*olds, new_rs]))

    async def _scale_proportionally(self, d: Obj, rss: list[Obj]) -> None:
        allowed = replicas(d) + max_surge(d) if replicas(d) > 0 else 0
        to_add = allowed - total_spec(list(rss))
        if to_add > 0:  # bigger first; among equals newer first when growing
            rss.sort(key=lambda r: (-replicas(r), -_created(r)[0], _neg_name(r)))
        elif to_add < 0:  # bigger first; among equals older first when shrinking
            rss.sort(key=lambda r: (-replicas(r), _created(r)))
        added = 0
        sizes: dict[str, int] = {}
        for rs in rss:
            if to_add:
                p = get_proportion(rs, d, to_add=to_add, added=added)
                sizes[name_of(rs)] = replicas(rs) + p
                added += p
            else:
                sizes[name_of(rs)] = replicas(rs)
        for i, rs in enumerate(rss):
            if i == 0 and to_add:
                sizes[name_of(rs)] = max(0, sizes[name_of(rs)] + to_add - added)
            await self._scale_rs(rs, sizes[name_of(rs)], d)

    # ---- rolling update ------------------------------------------------------------------

    async def _rollout_rolling(self, d: Obj, rs_list: list[Obj]) -> float | None:
        new_rs, olds = await self._all_rss(d, rs_list, create=True)
        assert new_rs is not None
        all_rss: list[Obj | None] = [*olds, new_rs]
        if await self._reconcile_new_rs(d, all_rss, new_rs):
            return await self._sync_rollout_status(all_rss, new_rs, d)
        if await self._reconcile_old_rss(d, all_rss, active(list(olds)), new_rs):
            return await self._sync_rollout_status(all_rss, new_rs, d)
        if deployment_complete(d, status_of(d)):
            await self._cleanup(d, olds)
        return await self._sync_rollout_status(all_rss, new_rs, d)

    async def _reconcile_new_rs(self, d: Obj, all_rss: list[Obj | None], new_rs: Obj) -> bool:
        if replicas(new_rs) == replicas(d):
            return False
        if replicas(new_rs) > replicas(d):
            return await self._scale_rs_and_record(new_rs, replicas(d), d)
        count = new_rs_new_replicas(d, all_rss, new_rs)
        return await self._scale_rs_and_record(new_rs, count, d)

    async def _reconcile_old_rss(
        self, d: Obj, all_rss: list[Obj | None], olds: list[Obj], new_rs: Obj
    ) -> bool:
        if total_spec(list(olds)) == 0:
            return False
        min_available = replicas(d) - max_unavailable(d)
        new_unavailable = replicas(new_rs) - status_count(new_rs, "availableReplicas")
        max_scaled_down = total_spec(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        cleaned = await self._cleanup_unhealthy(d, olds, limit=max_scaled_down)
        scaled = await self._scale_down_olds(d, [*olds, new_rs], olds)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, d: Obj, olds: list[Obj], *, limit: int) -> int:
        """Old replicas that are not available go first, whatever maxUnavailable says."""
        olds.sort(key=_created)
        done = 0
        for rs in olds:
            if done >= limit:
                break
            size, avail = replicas(rs), status_count(rs, "availableReplicas")
            if size == 0 or size == avail:
                continue
            n = min(limit - done, size - avail)
            await self._scale_rs_and_record(rs, size - n, d)
            done += n
        return done

    async def _scale_down_olds(self, d: Obj, all_rss: list[Obj | None], olds: list[Obj]) -> int:
        min_available = replicas(d) - max_unavailable(d)
        available = total_status(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        olds.sort(key=_created)
        todo = available - min_available
        done = 0
        for rs in olds:
            if done >= todo:
                break
            if replicas(rs) == 0:
                continue
            n = min(replicas(rs), todo - done)
            await self._scale_rs_and_record(rs, replicas(rs) - n, d)
            done += n
        return done

    # ---- recreate ------------------------------------------------------------------------

    async def _rollout_recreate(self, d: Obj, rs_list: list[Obj]) -> float | None:
        new_rs, olds = await self._all_rss(d, rs_list, create=False)
        all_rss: list[Obj | None] = [*olds, new_rs]
        scaled = False
        for rs in active(list(olds)):
            scaled = await self._scale_rs_and_record(rs, 0, d) or scaled
        if scaled or self._old_pods_running(new_rs, olds):
            return await self._sync_rollout_status(all_rss, new_rs, d)
        if new_rs is None:
            new_rs, olds = await self._all_rss(d, rs_list, create=True)
            all_rss = [*olds, new_rs]
        assert new_rs is not None
        await self._scale_rs_and_record(new_rs, replicas(d), d)
        if deployment_complete(d, status_of(d)):
            await self._cleanup(d, olds)
        return await self._sync_rollout_status(all_rss, new_rs, d)

    def _old_pods_running(self, new_rs: Obj | None, olds: list[Obj]) -> bool:
        if total_status(list(olds), "replicas") > 0:
            return True
        for rs in olds:
            for pod in self.slim.by_index(uid_of(rs)):
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                    return True
        return False

    # ---- history --------------------------------------------------------------------------

    async def _cleanup(self, d: Obj, olds: list[Obj]) -> None:
        """Delete the oldest zero-sized ReplicaSets beyond revisionHistoryLimit."""
        if not has_revision_history_limit(d):
            return
        alive = [rs for rs in olds if not is_deleting(rs)]
        diff = len(alive) - int(spec_of(d).get("revisionHistoryLimit") or 0)
        if diff <= 0:
            return
        alive.sort(key=lambda rs: (revision_of(rs), _created(rs)))
        for rs in alive[:diff]:
            generation = int(meta(rs).get("generation") or 0)
            if (
                status_count(rs, "replicas") != 0
                or replicas(rs) != 0
                or generation > status_count(rs, "observedGeneration")
            ):
                continue
            try:
                await self.client.delete(
                    REPLICASETS, name_of(rs), namespace=meta(rs).get("namespace") or ""
                )
            except NotFound:
                pass

    # ---- status --------------------------------------------------------------------------

    def _cond(self, ctype: str, status: str, reason: str, message: str) -> Obj:
        return new_condition(ctype, status, reason, message, now=self.ctx.now_rfc3339())

    async def _check_paused_conditions(self, d: Obj) -> None:
        if not has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = get_dcondition(status, "Progressing")
        if cond is not None and cond.get("reason") == TIMED_OUT_REASON:
            return
        paused = bool(spec_of(d).get("paused"))
        paused_cond = cond is not None and cond.get("reason") == PAUSED_REASON
        if paused and not paused_cond:
            set_dcondition(status, self._cond("Progressing", "Unknown", PAUSED_REASON,
                                              "Deployment is paused"))  # fmt: skip
        elif not paused and paused_cond:
            set_dcondition(status, self._cond("Progressing", "Unknown", RESUMED_REASON,
                                              "Deployment is resumed"))  # fmt: skip
        else:
            return
        await self._update_status(d)

    async def _sync_deployment_status(
        self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj
    ) -> None:
        status = calculate_status(all_rss, new_rs, d, now=self.ctx.now_rfc3339())
        if status != status_of(d):
            d["status"] = status
            await self._update_status(d)

    async def _sync_rollout_status(
        self, all_rss: list[Obj | None], new_rs: Obj | None, d: Obj
    ) -> float | None:
        status = calculate_status(all_rss, new_rs, d, now=self.ctx.now_rfc3339())
        if not has_progress_deadline(d):
            remove_dcondition(status, "Progressing")
        current = get_dcondition(status_of(d), "Progressing")
        complete_before = (
            int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
            and current is not None
            and current.get("reason") == NEW_RS_AVAILABLE_REASON
        )
        if has_progress_deadline(d) and not complete_before:
            self._estimate_progress(d, status, new_rs=new_rs, current=current)
        failures = self._replica_failures(all_rss, new_rs)
        if failures:
            set_dcondition(status, failures[0])
        else:
            remove_dcondition(status, "ReplicaFailure")
        if status == status_of(d):
            return self._stuck_requeue(d, status)
        d["status"] = status
        await self._update_status(d)
        return None

    def _estimate_progress(
        self, d: Obj, status: Obj, *, new_rs: Obj | None, current: Obj | None
    ) -> None:
        name = name_of(d)
        if deployment_complete(d, status):
            msg = (f'ReplicaSet "{name_of(new_rs)}" has successfully progressed.' if new_rs
                   else f'Deployment "{name}" has successfully progressed.')  # fmt: skip
            set_dcondition(status, self._cond("Progressing", "True", NEW_RS_AVAILABLE_REASON, msg))
        elif deployment_progressing(d, status):
            msg = (f'ReplicaSet "{name_of(new_rs)}" is progressing.' if new_rs
                   else f'Deployment "{name}" is progressing.')  # fmt: skip
            cond = self._cond("Progressing", "True", RS_UPDATED_REASON, msg)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_dcondition(status, "Progressing")
            set_dcondition(status, cond)
        elif deployment_timed_out(d, status, now=self.ctx.clock()):
            msg = (f'ReplicaSet "{name_of(new_rs)}" has timed out progressing.' if new_rs
                   else f'Deployment "{name}" has timed out progressing.')  # fmt: skip
            set_dcondition(status, self._cond("Progressing", "False", TIMED_OUT_REASON, msg))

    @staticmethod
    def _replica_failures(all_rss: list[Obj | None], new_rs: Obj | None) -> list[Obj]:
        def failures(rs: Obj | None) -> list[Obj]:
            return [
                {
                    "type": "ReplicaFailure",
                    "status": c.get("status"),
                    "lastUpdateTime": c.get("lastTransitionTime"),
                    "lastTransitionTime": c.get("lastTransitionTime"),
                    "reason": c.get("reason"),
                    "message": c.get("message"),
                }  # fmt: skip
                for c in status_of(rs or {}).get("conditions") or []
                if c.get("type") == "ReplicaFailure"
            ]

        own = failures(new_rs)
        return own or [c for rs in all_rss for c in failures(rs)]

    def _stuck_requeue(self, d: Obj, status: Obj) -> float | None:
        """A rollout without progress: look again when its deadline passes."""
        current = get_dcondition(status_of(d), "Progressing")
        if not has_progress_deadline(d) or current is None:
            return None
        if deployment_complete(d, status) or current.get("reason") == TIMED_OUT_REASON:
            return None
        since = parse_time(current.get("lastUpdateTime"))
        if since is None:
            return None
        after = since + int(spec_of(d).get("progressDeadlineSeconds") or 0) - self.ctx.clock()
        return 0.5 if after < 1 else after + 1

    async def _update_status(self, d: Obj) -> None:
        """Write status (and the revision annotation, which upstream's status strategy
        lets through; where ours resets annotations, a patch of the object follows)."""
        want = annotations_of(d).get(REVISION)
        updated = await self.client.update_status(DEPLOYMENTS, d)
        if want is not None and annotations_of(updated).get(REVISION) != want:
            updated = await self.client.patch(
                DEPLOYMENTS,
                name_of(d),
                {"metadata": {"annotations": {REVISION: want}}},
                namespace=meta(d).get("namespace") or "",
            )
        self.fresh_d.wrote(updated)
        _replace(d, {**updated, "apiVersion": DEPLOYMENTS.api_version, "kind": DEPLOYMENTS.kind})


def _set_deployment_revision(d: Obj, revision: str) -> bool:
    ann = meta(d).setdefault("annotations", {})
    if ann.get(REVISION) == revision:
        return False
    ann[REVISION] = revision
    return True


def _replace(target: Obj, new: Obj) -> None:
    target.clear()
    target.update(new)


def _neg_name(rs: Obj) -> tuple[int, ...]:
    """Sorts names descending (the newer-first tie-break of ReplicaSetsBySizeNewer)."""
    return tuple(-ord(c) for c in name_of(rs))


CONTROLLERS = [DeploymentController]
