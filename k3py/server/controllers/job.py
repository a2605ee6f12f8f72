"""The Job controller (batch/v1, upstream 1.32 semantics).

How a sync goes (``reconcile``, upstream's ``syncJob``):

1. Read the Job and its pods (by controller uid) from the caches.  Pods carry the
   ``batch.kubernetes.io/job-tracking`` finalizer from birth; a finished pod is counted
   exactly once: its uid goes to ``status.uncountedTerminatedPods`` (written first), then
   its finalizer is removed, then it moves from the uncounted list into
   ``succeeded``/``failed``.  So a crash between two steps never loses or repeats a count.
2. Decide whether the Job is finishing: ``podFailurePolicy`` FailJob, ``backoffLimit``
   exceeded, ``activeDeadlineSeconds`` passed, per-index limits, ``successPolicy``, or
   enough completions.  Failure first records the interim ``FailureTarget`` condition and
   success ``SuccessCriteriaMet``; the terminal ``Failed``/``Complete`` condition is added
   only once no pod is terminating and nothing is left uncounted (1.32's delayed terminal
   conditions).
3. Otherwise ``manage``: delete pods when suspended or above the wanted number, create
   pods (slow-start batches, Indexed completion indexes, pod-failure back-off 10 s
   doubling to 10 min after failures).

Expectations (creates/deletes not yet seen in the cache, and finalizer removals not yet
seen) keep a sync from acting twice on a stale cache.  Pods whose Job is gone or finished
and still carry the finalizer are cleaned by a second queue (upstream's orphan queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from k3py.apimachinery.selectors import from_label_selector
from k3py.client import JOBS, PODS, AlreadyExists, NotFound, WorkQueue, key_for, process
from k3py.client.cache import split_key
from k3py.server.controllers.base import (
    Context,
    Controller,
    Expectations,
    Obj,
    controller_ref,
    get_condition,
    is_deleting,
    meta,
    owner_reference,
    parse_time,
    pod_is_ready,
)

log = logging.getLogger("k3py.controllers.job")

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
OWNER_UID = "job-owner-uid"  # pod index: uid of the controlling Job

MAX_UNCOUNTED = 500  # upstream's MaxUncountedPods
MAX_CREATE_DELETE = 500  # MaxPodCreateDeletePerSync
SLOW_START = 1  # controller.SlowStartInitialBatchSize


# ---- small helpers ------------------------------------------------------------------------


def is_finished(job: Obj) -> tuple[bool, str]:
    """(finished, "Complete" | "Failed" | "")."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return True, str(c["type"])
    return False, ""


def has_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or [])


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def uid(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


def is_indexed(job: Obj) -> bool:
    return (job.get("spec") or {}).get("completionMode") == "Indexed"


def suspended(job: Obj) -> bool:
    return bool((job.get("spec") or {}).get("suspend"))


def completions(job: Obj) -> int | None:
    c = (job.get("spec") or {}).get("completions")
    return int(c) if c is not None else None


def backoff_limit_per_index(job: Obj) -> int | None:
    v = (job.get("spec") or {}).get("backoffLimitPerIndex")
    return int(v) if v is not None else None


def only_replace_failed(job: Obj) -> bool:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    if phase(pod) == "Failed":
        return True
    if only_replace_failed(job):
        return False
    return is_deleting(pod) and phase(pod) != "Succeeded"


def is_active(pod: Obj) -> bool:
    return phase(pod) not in ("Succeeded", "Failed") and not is_deleting(pod)


def is_terminating(pod: Obj) -> bool:
    return is_deleting(pod) and phase(pod) not in ("Succeeded", "Failed")


def completion_index(pod: Obj) -> int:
    """The pod's completion index, -1 when absent or bad."""
    v = (meta(pod).get("annotations") or {}).get(COMPLETION_INDEX)
    try:
        i = int(str(v))
    except (TypeError, ValueError):
        return -1
    return i if i >= 0 else -1


def _int_annotation(pod: Obj, key: str) -> int:
    try:
        return max(0, int((meta(pod).get("annotations") or {}).get(key, "0")))
    except (TypeError, ValueError):
        return 0


def new_condition(ctype: str, status: str, reason: str, message: str, *, now: str) -> Obj:
    return {
        "type": ctype,
        "status": status,
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }


def ensure_condition(conds: list[Obj], cond: Obj) -> bool:
    """upstream's ``ensureJobConditionStatus``: replace a differing condition of that
    type, or append one that is not False.  Returns whether anything changed."""
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            if (c.get("status"), c.get("reason", ""), c.get("message", "")) != (
                cond["status"], cond["reason"], cond["message"],
            ):  # fmt: skip
                conds[i] = cond
                return True
            return False
    if cond["status"] != "False":
        conds.append(cond)
        return True
    return False


# ---- completion indexes ("0-2,4") -----------------------------------------------------------


def parse_indexes(text: str | None, *, limit: int) -> set[int]:
    """The indexes of a ``completedIndexes``/``failedIndexes`` string below ``limit``."""
    out: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        lo_s, _, hi_s = part.partition("-")
        try:
            lo = int(lo_s)
            hi = int(hi_s) if hi_s else lo
        except ValueError:
            continue
        if lo >= limit:
            break
        out.update(range(lo, min(hi, limit - 1) + 1))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """Intervals as upstream writes them: ``0-2,4``, and ``5,6`` for a pair."""
    parts: list[str] = []
    run: list[int] = []
    for i in sorted(set(indexes)):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(_interval(run[0], run[-1]))
        run = [i]
    if run:
        parts.append(_interval(run[0], run[-1]))
    return ",".join(parts)


def _interval(first: int, last: int) -> str:
    if last == first:
        return str(first)
    return f"{first},{last}" if last == first + 1 else f"{first}-{last}"


# ---- pod failure policy --------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyMatch:
    fail_job_message: str | None = None
    count: bool = True
    action: str | None = None


def match_pod_failure_policy(policy: Obj | None, pod: Obj) -> PolicyMatch:
    """upstream's ``matchPodFailurePolicy``: the first rule matching a failed pod."""
    if policy is None:
        return PolicyMatch()
    m = meta(pod)
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        if rule.get("onExitCodes") is not None:
            cs = _matching_container(pod.get("status") or {}, rule["onExitCodes"])
            if cs is None:
                continue
            code = cs["state"]["terminated"].get("exitCode")
            msg = (
                f"Container {cs.get('name')} for pod {m.get('namespace')}/{m.get('name')} "
                f"failed with exit code {code} matching {action} rule at index {index}"
            )
        elif rule.get("onPodConditions") is not None:
            cond = _matching_condition(pod.get("status") or {}, rule["onPodConditions"])
            if cond is None:
                continue
            msg = (
                f"Pod {m.get('namespace')}/{m.get('name')} has condition {cond.get('type')} "
                f"matching {action} rule at index {index}"
            )
        else:
            continue
        if action == "Ignore":
            return PolicyMatch(count=False, action=action)
        if action == "FailJob":
            return PolicyMatch(fail_job_message=msg, action=action)
        if action in ("Count", "FailIndex"):
            return PolicyMatch(action=action)
    return PolicyMatch()


def _matching_container(status: Obj, req: Obj) -> Obj | None:
    for key in ("containerStatuses", "initContainerStatuses"):
        for cs in status.get(key) or []:
            term = (cs.get("state") or {}).get("terminated")
            if term is None:
                continue
            name = req.get("containerName")
            if name is not None and name != cs.get("name"):
                continue
            code = int(term.get("exitCode") or 0)
            if code == 0:
                continue
            values = req.get("values") or []
            op = req.get("operator")
            if (op == "In" and code in values) or (op == "NotIn" and code not in values):
                return cs  # type: ignore[no-any-return]
    return None


def _matching_condition(status: Obj, patterns: list[Obj]) -> Obj | None:
    for cond in status.get("conditions") or []:
        for p in patterns:
            if cond.get("type") == p.get("type") and cond.get("status") == p.get("status", "True"):
                return cond  # type: ignore[no-any-return]
    return None


# ---- success policy ---------------------------------------------------------------------


def match_success_policy(
    policy: Obj | None, *, completions: int, succeeded: set[int]
) -> str | None:
    """The SuccessCriteriaMet message when a rule of ``successPolicy`` holds."""
    if policy is None or not succeeded:
        return None
    for index, rule in enumerate(policy.get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is not None:
            required = parse_indexes(rule["succeededIndexes"], limit=completions)
            if not required:
                continue
            have = len(required & succeeded)
            if (count is None and have == len(required)) or (count is not None and have >= count):
                return f"Matched rules at index {index}"
        elif count is not None and len(succeeded) >= count:
            return f"Matched rules at index {index}"
    return None


# ---- finish times and back-off ------------------------------------------------------------------


def finished_time(pod: Obj) -> float:
    """upstream's ``getFinishedTime``: containers' latest finish, else Ready=False's
    transition, else deletion time minus grace, else creation."""
    latest: float | None = None
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    for cs in statuses:
        t = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t is None:
            latest = None
            break
        latest = t if latest is None else max(latest, t)
    if latest is not None:
        return latest
    ready = get_condition(pod.get("status"), "Ready")
    if ready is not None and ready.get("status") == "False":
        t = parse_time(ready.get("lastTransitionTime"))
        if t is not None:
            return t
    m = meta(pod)
    t = parse_time(m.get("deletionTimestamp"))
    if t is not None:
        return t - float(m.get("deletionGracePeriodSeconds") or 0)
    return parse_time(m.get("creationTimestamp")) or 0.0


@dataclass
class BackoffRecord:
    failures_after_last_success: int = 0
    last_failure_time: float | None = None


def next_backoff_record(
    old: BackoffRecord, *, succeeded: list[Obj], failed: list[Obj]
) -> BackoffRecord:
    rec = BackoffRecord(old.failures_after_last_success, old.last_failure_time)
    if not succeeded:
        if failed:
            rec.failures_after_last_success += len(failed)
            rec.last_failure_time = max(finished_time(p) for p in failed)
        return rec
    rec = BackoffRecord()
    last_success = max(finished_time(p) for p in succeeded)
    for t in sorted((finished_time(p) for p in failed), reverse=True):
        if t <= last_success:
            break
        if rec.last_failure_time is None:
            rec.last_failure_time = t
        rec.failures_after_last_success += 1
    return rec


def remaining_backoff(
    *, failures: int, last_failure: float | None, now: float, base: float, cap: float
) -> float:
    if failures == 0 or last_failure is None:
        return 0.0
    delay = base
    for _ in range(1, failures):
        delay *= 2
        if delay >= cap:
            delay = cap
            break
    elapsed = now - last_failure
    return 0.0 if delay < elapsed else delay - elapsed


# ---- the sync's working state ----------------------------------------------------------


@dataclass
class SyncState:
    job: Obj
    pods: list[Obj]
    active_pods: list[Obj]
    ready: int
    terminating: int
    uncounted_succeeded: set[str]
    uncounted_failed: set[str]
    expected_rm: set[str]
    succeeded: int = 0
    failed: int = 0
    finished: Obj | None = None
    prev_succeeded_indexes: set[int] = field(default_factory=set)
    succeeded_indexes: set[int] = field(default_factory=set)
    failed_indexes: set[int] | None = None
    delayed_per_index: dict[int, Obj] = field(default_factory=dict)
    backoff: BackoffRecord = field(default_factory=BackoffRecord)


def _pods_sorted_for_removal(pods: list[Obj]) -> list[Obj]:
    """``controller.ActivePods`` order: unscheduled, pending, not ready, newer first."""
    rank = {"Pending": 0, "Unknown": 1, "Running": 2}

    def key(p: Obj) -> tuple[int, int, int, float]:
        created = parse_time(meta(p).get("creationTimestamp")) or 0.0
        return (
            1 if (p.get("spec") or {}).get("nodeName") else 0,
            rank.get(phase(p), 0),
            1 if pod_is_ready(p) else 0,
            -created,
        )

    return sorted(pods, key=key)


def pods_for_removal(job: Obj, pods: list[Obj], at_least: int) -> list[Obj]:
    """Duplicated or out-of-range indexes first (Indexed Jobs), then by removal order."""
    rm: list[Obj] = []
    left = pods
    if is_indexed(job):
        total = completions(job) or 0
        left = []
        by_index: dict[int, list[Obj]] = {}
        for p in pods:
            ix = completion_index(p)
            if ix < 0 or ix >= total:
                rm.append(p)
            else:
                by_index.setdefault(ix, []).append(p)
        for same in by_index.values():
            ordered = _pods_sorted_for_removal(same)
            rm.extend(ordered[:-1])
            left.append(ordered[-1])
    if len(rm) < at_least:
        rm.extend(_pods_sorted_for_removal(left)[: at_least - len(rm)])
    return rm


def first_pending_indexes(st: SyncState, *, count: int, total: int) -> list[int]:
    taken = set(st.succeeded_indexes)
    taken.update(completion_index(p) for p in st.active_pods)
    if st.failed_indexes:
        taken.update(st.failed_indexes)
    out: list[int] = []
    for i in range(total):
        if len(out) >= count:
            break
        if i not in taken:
            out.append(i)
    return out


def pod_from_template(job: Obj, *, index: int, failure_counts: tuple[int, int] | None) -> Obj:
    """The pod the Job creates (``CreatePodsWithGenerateName``)."""
    spec = job.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    tmeta = template.get("metadata") or {}
    pspec = template.get("spec") or {}
    name = meta(job)["name"]
    labels = dict(tmeta.get("labels") or {})
    annotations = dict(tmeta.get("annotations") or {})
    finalizers = list(tmeta.get("finalizers") or [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    generate = f"{name}-"
    if index >= 0:
        _add_index_env(pspec)
        annotations[COMPLETION_INDEX] = str(index)
        labels[COMPLETION_INDEX] = str(index)
        pspec["hostname"] = f"{name}-{index}"
        suffix = f"-{index}-"
        generate = (
            (name + suffix) if len(name + suffix) <= 58 else name[: 58 - len(suffix)] + suffix
        )
        if failure_counts is not None:
            annotations[INDEX_FAILURE_COUNT] = str(failure_counts[0])
            if failure_counts[1]:
                annotations[INDEX_IGNORED_FAILURE_COUNT] = str(failure_counts[1])
    elif len(generate) > 58:
        generate = generate[:58]
    pod_meta: Obj = {
        "generateName": generate,
        "namespace": meta(job).get("namespace"),
        "ownerReferences": [owner_reference(job)],
        "finalizers": finalizers,
    }
    if labels:
        pod_meta["labels"] = labels
    if annotations:
        pod_meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pspec}


def _add_index_env(pspec: Obj) -> None:
    ref = {"fieldRef": {"fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}}
    for key in ("initContainers", "containers"):
        for c in pspec.get(key) or []:
            env = c.setdefault("env", [])
            if not any(e.get("name") == COMPLETION_INDEX_ENV for e in env):
                env.append({"name": COMPLETION_INDEX_ENV, "valueFrom": copy.deepcopy(ref)})


def past_backoff_limit_on_failure(job: Obj, pods: list[Obj]) -> bool:
    spec = job.get("spec") or {}
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = 0
    for p in pods:
        if phase(p) in ("Running", "Pending"):
            st = p.get("status") or {}
            for key in ("initContainerStatuses", "containerStatuses"):
                restarts += sum(int(cs.get("restartCount") or 0) for cs in st.get(key) or [])
    limit = int(spec.get("backoffLimit", 6))
    return restarts > 0 if limit == 0 else restarts >= limit


# ---- the controller ----------------------------------------------------------------------------


def _owner_uid(obj: Obj) -> list[str]:
    """Pods by the uid of their controlling Job; orphans under ``orphan/<namespace>``."""
    ref = controller_ref(obj)
    if ref is None:
        return [f"orphan/{meta(obj).get('namespace') or ''}"]
    return [str(ref["uid"])] if ref.get("kind") == "Job" and ref.get("uid") else []


def _labels(obj: Obj) -> dict[str, str]:
    return dict(meta(obj).get("labels") or {})


class JobController(Controller):
    name = "job"
    workers = 4
    batch_period = 1.0  # upstream's syncJobBatchPeriod: pod events are batched this long

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        # upstream's DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff, from Timings
        self.pod_failure_backoff = ctx.timings.job_pod_failure_backoff
        self.pod_failure_backoff_max = ctx.timings.job_pod_failure_backoff_max
        self.recorder = self.recorder.for_component("job-controller")
        self.expectations = Expectations()
        self.rm_finalizers: dict[str, set[str]] = {}  # job key -> pod uids
        self.backoffs: dict[str, BackoffRecord] = {}
        self.orphans: WorkQueue[str] = WorkQueue(name="job-orphan-pods")

    def setup(self) -> None:
        self.jobs = self.ctx.informer(JOBS)
        self.pods = self.ctx.informer(PODS, indexers={OWNER_UID: _owner_uid})
        self.jobs.add_handler(
            on_add=self._job_added, on_update=self._job_updated, on_delete=self._job_deleted
        )
        self.pods.add_handler(
            on_add=self._pod_added,
            on_update=self._pod_updated,
            on_delete=self._pod_deleted,
            readonly=True,
        )

    async def started(self) -> None:
        self.enqueue_all(self.jobs)

    def background(self) -> list[asyncio.Task[None]]:
        loop = asyncio.get_running_loop()
        return [loop.create_task(process(self.orphans, self._sync_orphan), name="job-orphans")]

    async def stop(self) -> None:
        self.orphans.shut_down()
        await super().stop()

    # ---- event handlers ----

    def _later(self, key: str, delay: float | None = None) -> None:
        self.queue.add_after(key, self.batch_period if delay is None else max(delay, 0.0))

    def _job_added(self, job: Obj) -> None:
        self.enqueue(job)

    def _job_updated(self, old: Obj, new: Obj) -> None:
        key = key_for(namespace=meta(new).get("namespace", ""), name=meta(new)["name"])
        if meta(old).get("generation") == meta(new).get("generation"):
            self._later(key)
        else:
            self.queue.add(key)
        if is_finished(new)[0]:
            self._cleanup_pod_finalizers(new)
        start = parse_time((new.get("status") or {}).get("startTime"))
        ads = (new.get("spec") or {}).get("activeDeadlineSeconds")
        if (
            start is not None
            and ads is not None
            and ads != (old.get("spec") or {}).get("activeDeadlineSeconds")
        ):
            self._later(key, start + ads - self.ctx.clock())

    def _job_deleted(self, job: Obj) -> None:
        self.enqueue(job)
        self._cleanup_pod_finalizers(job)

    def _cleanup_pod_finalizers(self, job: Obj) -> None:
        for pod in self.pods.by_index(OWNER_UID, uid(job)):
            if has_finalizer(pod):
                self.orphans.add(key_for(namespace=meta(pod)["namespace"], name=meta(pod)["name"]))

    def _job_of(self, pod: Obj) -> Obj | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        job = self.jobs.get(ref.get("name", ""), namespace=meta(pod).get("namespace", ""))
        if job is None or uid(job) != ref.get("uid"):
            return None
        return job

    def _orphan(self, pod: Obj) -> None:
        if has_finalizer(pod):
            self.orphans.add(key_for(namespace=meta(pod)["namespace"], name=meta(pod)["name"]))

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_gone(pod, final=False)
            return
        job = self._job_of(pod)
        if job is None or is_finished(job)[0]:
            self._orphan(pod)  # nobody will count it: just drop the finalizer
            if job is None:
                if controller_ref(pod) is None:
                    self._enqueue_selecting(pod)  # someone may adopt it
                return
        key = self._key(job)
        self.expectations.observed_add(key)
        self._later(key)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if is_deleting(new):
            self._pod_gone(new, final=False)
            return
        old_job = self._job_of(old)
        job = self._job_of(new)
        if old_job is not None and (job is None or uid(job) != uid(old_job)):
            self._later(self._key(old_job))
        if job is None or is_finished(job)[0]:
            self._orphan(new)
            changed = _labels(old) != _labels(new) or controller_ref(old) != controller_ref(new)
            if controller_ref(new) is None and changed:
                self._enqueue_selecting(new)
            return
        key = self._key(job)
        if not has_finalizer(new):
            self.rm_finalizers.get(key, set()).discard(uid(new))
        self._later(key)

    def _enqueue_selecting(self, pod: Obj) -> None:
        """Wake the unfinished Jobs whose selector matches an orphan pod."""
        labels = _labels(pod)
        for job in self.jobs.list(meta(pod).get("namespace") or ""):
            if is_finished(job)[0]:
                continue
            try:
                selector = from_label_selector((job.get("spec") or {}).get("selector"))
            except Exception:  # noqa: BLE001 - a bad selector selects nothing
                continue
            if selector.matches(labels):
                self._later(self._key(job))

    def _pod_deleted(self, pod: Obj) -> None:
        self._pod_gone(pod, final=True)

    def _pod_gone(self, pod: Obj, *, final: bool) -> None:
        job = self._job_of(pod)
        if job is None or is_finished(job)[0]:
            if not final:
                self._orphan(pod)
            return
        key = self._key(job)
        self.expectations.observed_delete(key)
        if final or not has_finalizer(pod):
            self.rm_finalizers.get(key, set()).discard(uid(pod))
        self._later(key)

    @staticmethod
    def _key(job: Obj) -> str:
        return key_for(namespace=meta(job).get("namespace", ""), name=meta(job)["name"])

    # ---- orphan pods ----

    async def _sync_orphan(self, key: str) -> float | None:
        ns, name = split_key(key)
        pod = self.pods.get(name, namespace=ns)
        if pod is None or not has_finalizer(pod):
            return None
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("kind") != "Job" or ref.get("apiVersion") != "batch/v1":
                return None
            job = self._job_of(pod)
            if job is not None and not is_finished(job)[0]:
                return None
        await self._remove_finalizer(pod)
        return None

    async def _remove_finalizer(self, pod: Obj) -> None:
        body = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
        with contextlib.suppress(NotFound):
            await self.client.patch(
                PODS,
                meta(pod)["name"],
                body,
                namespace=meta(pod)["namespace"],
                patch_type="strategic",
            )

    # ---- the sync ----

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        job = self.jobs.get(name, namespace=ns)
        if job is None:
            self.expectations.forget(key)
            self.rm_finalizers.pop(key, None)
            self.backoffs.pop(key, None)
            return None
        if is_finished(job)[0]:
            self.backoffs.pop(key, None)
            return None
        spec = job.get("spec") or {}
        if spec.get("completionMode", "NonIndexed") not in ("NonIndexed", "Indexed"):
            self.recorder.warning(
                job, "UnknownCompletionMode", "Skipped Job sync because completion mode is unknown"
            )
            return None
        if spec.get("managedBy") not in (None, "kubernetes.io/job-controller"):
            return None
        return await self._sync(key, job)

    async def _claim(self, job: Obj) -> list[Obj]:
        """upstream's ``getPodsForJob``: the pods this Job controls, after releasing owned
        pods its selector no longer matches and adopting matching orphans (which get the
        tracking finalizer with the owner reference)."""
        ns = meta(job).get("namespace") or ""
        deleting = is_deleting(job)
        try:
            selector = from_label_selector((job.get("spec") or {}).get("selector"))
        except Exception:  # noqa: BLE001 - a bad selector matches nothing
            selector = None
        out: list[Obj] = []
        for p in self.pods.by_index(OWNER_UID, uid(job)):
            if meta(p).get("namespace") != ns:
                continue
            if selector is not None and selector.matches(_labels(p)):
                out.append(p)
            elif not deleting:
                await self._release(p, job)
        if selector is None or deleting:
            return out
        orphans = [
            p
            for p in self.pods.by_index(OWNER_UID, f"orphan/{ns}")
            if not is_deleting(p) and selector.matches(_labels(p))
        ]
        if orphans and await self._can_adopt(job):
            for p in orphans:
                adopted = await self._adopt(p, job)
                if adopted is not None:
                    out.append(adopted)
        return out

    async def _can_adopt(self, job: Obj) -> bool:
        try:
            fresh = await self.client.get(JOBS, meta(job)["name"], namespace=meta(job)["namespace"])
        except NotFound:
            return False
        return uid(fresh) == uid(job) and not is_deleting(fresh)

    async def _adopt(self, pod: Obj, job: Obj) -> Obj | None:
        body = {
            "metadata": {
                "ownerReferences": [owner_reference(job)],
                "uid": uid(pod),
                "finalizers": [TRACKING_FINALIZER],
            }
        }
        m = meta(pod)
        try:
            return await self.client.patch(
                PODS, m["name"], body, namespace=m["namespace"], patch_type="strategic"
            )
        except NotFound:
            return None

    async def _release(self, pod: Obj, job: Obj) -> None:
        body = {
            "metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": uid(job)}],
                "uid": uid(pod),
            }
        }
        m = meta(pod)
        with contextlib.suppress(NotFound):
            await self.client.patch(
                PODS, m["name"], body, namespace=m["namespace"], patch_type="strategic"
            )

    def _state(self, key: str, job: Obj, pods: list[Obj]) -> SyncState:
        status = job.setdefault("status", {})
        unc = status.setdefault("uncountedTerminatedPods", {})
        active = [p for p in pods if is_active(p)]
        return SyncState(
            job=job,
            pods=pods,
            active_pods=active,
            ready=sum(1 for p in active if pod_is_ready(p)),
            terminating=sum(1 for p in pods if is_terminating(p)),
            uncounted_succeeded=set(unc.get("succeeded") or []),
            uncounted_failed=set(unc.get("failed") or []),
            expected_rm=set(self.rm_finalizers.get(key, set())),
        )

    def _new_finished(self, st: SyncState) -> tuple[list[Obj], list[Obj]]:
        job, total = st.job, completions(st.job)
        ok: list[Obj] = []
        bad: list[Obj] = []
        for p in st.pods:
            u = uid(p)
            if not has_finalizer(p) or u in st.expected_rm:
                continue
            if is_indexed(job):
                ix = completion_index(p)
                if ix < 0 or ix >= (total or 0):
                    continue
            if phase(p) == "Succeeded" and u not in st.uncounted_succeeded:
                ok.append(p)
            elif is_pod_failed(p, job) and u not in st.uncounted_failed:
                bad.append(p)
        return ok, bad

    async def _sync(self, key: str, job: Obj) -> float | None:
        now = self.ctx.clock()
        now_s = self.ctx.now_rfc3339()
        spec, status = job.get("spec") or {}, job.setdefault("status", {})
        satisfied = self.expectations.satisfied(key)
        st = self._state(key, job, await self._claim(job))
        active = len(st.active_pods)
        new_ok, new_bad = self._new_finished(st)
        policy = spec.get("podFailurePolicy")
        counted_bad = sum(1 for p in new_bad if match_pod_failure_policy(policy, p).count)
        st.succeeded = int(status.get("succeeded") or 0) + len(new_ok) + len(st.uncounted_succeeded)
        st.failed = int(status.get("failed") or 0) + counted_bad + len(st.uncounted_failed)
        if status.get("startTime") is None and not suspended(job):
            status["startTime"] = now_s
        st.backoff = next_backoff_record(
            self.backoffs.get(key, BackoffRecord()), succeeded=new_ok, failed=new_bad
        )
        requeue: float | None = None

        st.finished = self._criteria_met(job)
        if st.finished is None:
            target = get_condition(status, "FailureTarget")
            if target is not None and target.get("status") == "True":
                st.finished = new_condition(
                    "Failed", "True", target.get("reason", ""), target.get("message", ""), now=now_s
                )
            else:
                msg = self._fail_job_message(job, st.pods)
                if msg is not None:
                    st.finished = new_condition(
                        "FailureTarget", "True", "PodFailurePolicy", msg, now=now_s
                    )
        if st.finished is None:
            ads = spec.get("activeDeadlineSeconds")
            start = parse_time(status.get("startTime"))
            if st.failed > int(spec.get("backoffLimit", 6)) or past_backoff_limit_on_failure(
                job, st.pods
            ):
                st.finished = self._failure(
                    "BackoffLimitExceeded", "Job has reached the specified backoff limit", now=now_s
                )
            elif (
                ads is not None and start is not None and not suspended(job) and now - start >= ads
            ):
                st.finished = self._failure(
                    "DeadlineExceeded", "Job was active longer than specified deadline", now=now_s
                )
            elif ads is not None and start is not None and not suspended(job):
                requeue = start + ads - now
        if is_indexed(job):
            self._indexed_state(st, now_s=now_s)

        suspend_changed = False
        action_err: BaseException | None = None
        if st.finished is not None:
            deleted_ready, deleted, err = await self._delete_active(job, st.active_pods)
            if deleted != active or not satisfied:
                st.finished = None
            active -= deleted
            st.terminating += deleted
            st.ready -= deleted_ready
            action_err = err
        else:
            managed = False
            if satisfied and not is_deleting(job):
                try:
                    active, again = await self._manage(key, job, st, now=now)
                except _ManageError as e:
                    active, again, action_err = e.active, None, e.cause
                managed = True
                if again is not None:
                    requeue = again if requeue is None else min(requeue, again)
            total = completions(job)
            if total is None:
                complete = st.succeeded > 0 and active == 0
            else:
                complete = st.succeeded >= total and active == 0
            if complete:
                st.finished = new_condition(
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now=now_s,
                )
            elif managed:
                suspend_changed = self._suspend_condition(job, now_s=now_s)

        needs = suspend_changed or active != int(status.get("active") or 0)
        needs = (
            needs or st.ready != status.get("ready") or st.terminating != status.get("terminating")
        )
        _set_count(status, "active", active)
        status["ready"] = st.ready
        status["terminating"] = st.terminating
        await self._track(key, st, needs_flush=needs, now_s=now_s)
        if action_err is not None:
            raise action_err
        return requeue

    def _criteria_met(self, job: Obj) -> Obj | None:
        c = get_condition(job.get("status"), "SuccessCriteriaMet")
        return c if c is not None and c.get("status") == "True" else None

    def _failure(self, reason: str, message: str, *, now: str) -> Obj:
        return new_condition("FailureTarget", "True", reason, message, now=now)

    def _fail_job_message(self, job: Obj, pods: list[Obj]) -> str | None:
        policy = (job.get("spec") or {}).get("podFailurePolicy")
        if policy is None:
            return None
        for p in pods:
            if is_pod_failed(p, job):
                msg = match_pod_failure_policy(policy, p).fail_job_message
                if msg is not None:
                    return msg
        return None

    def _suspend_condition(self, job: Obj, *, now_s: str) -> bool:
        conds = job["status"].setdefault("conditions", [])
        if suspended(job):
            changed = ensure_condition(
                conds,
                new_condition("Suspended", "True", "JobSuspended", "Job suspended", now=now_s),
            )
            if changed:
                self.recorder.normal(job, "Suspended", "Job suspended")
        else:
            changed = ensure_condition(
                conds, new_condition("Suspended", "False", "JobResumed", "Job resumed", now=now_s)
            )
            if changed:
                self.recorder.normal(job, "Resumed", "Job resumed")
                job["status"]["startTime"] = now_s
        if not conds:
            job["status"].pop("conditions", None)
        return changed

    # ---- Indexed Jobs ----

    def _indexed_state(self, st: SyncState, *, now_s: str) -> None:
        job = st.job
        spec, status = job["spec"], job["status"]
        total = completions(job) or 0
        st.prev_succeeded_indexes = parse_indexes(status.get("completedIndexes"), limit=total)
        new = {
            completion_index(p)
            for p in st.pods
            if phase(p) == "Succeeded" and 0 <= completion_index(p) < total and has_finalizer(p)
        }
        st.succeeded_indexes = st.prev_succeeded_indexes | new
        st.succeeded = len(st.succeeded_indexes)
        limit = backoff_limit_per_index(job)
        if limit is not None:
            st.failed_indexes = self._failed_indexes(st, limit=limit, total=total)
            if st.finished is None:
                max_failed = spec.get("maxFailedIndexes")
                n_failed = len(st.failed_indexes)
                if max_failed is not None and n_failed > int(max_failed):
                    st.finished = self._failure(
                        "MaxFailedIndexesExceeded",
                        "Job has exceeded the specified maximal number of failed indexes",
                        now=now_s,
                    )
                elif n_failed > 0 and n_failed + len(st.succeeded_indexes) >= total:
                    st.finished = self._failure(
                        "FailedIndexes", "Job has failed indexes", now=now_s
                    )
            st.delayed_per_index = self._delayed_per_index(st, total=total)
        if st.finished is None:
            msg = match_success_policy(
                spec.get("successPolicy"), completions=total, succeeded=st.succeeded_indexes
            )
            if msg is not None:
                st.finished = new_condition(
                    "SuccessCriteriaMet", "True", "SuccessPolicy", msg, now=now_s
                )

    def _failed_indexes(self, st: SyncState, *, limit: int, total: int) -> set[int]:
        job = st.job
        out = parse_indexes(job["status"].get("failedIndexes"), limit=total)
        policy = job["spec"].get("podFailurePolicy")
        for p in st.pods:
            ix = completion_index(p)
            if ix < 0 or ix >= total or not is_pod_failed(p, job):
                continue
            m = match_pod_failure_policy(policy, p)
            if m.action == "FailIndex":
                out.add(ix)
            elif m.count and _int_annotation(p, INDEX_FAILURE_COUNT) >= limit:
                out.add(ix)
        return out

    def _delayed_per_index(self, st: SyncState, *, total: int) -> dict[int, Obj]:
        """The last failed pod of each still-running index: its finalizer stays until the
        replacement (carrying its failure count) exists."""
        out: dict[int, Obj] = {}
        done = st.succeeded_indexes | (st.failed_indexes or set())
        for p in st.pods:
            ix = completion_index(p)
            if ix < 0 or ix >= total or ix in done:
                continue
            if not has_finalizer(p) or uid(p) in st.expected_rm or not is_pod_failed(p, st.job):
                continue
            prev = out.get(ix)
            if prev is None or finished_time(p) >= finished_time(prev):
                out[ix] = p
        return out

    def _index_failure_counts(self, job: Obj, last_failed: Obj | None) -> tuple[int, int]:
        if last_failed is None:
            return 0, 0
        failures = _int_annotation(last_failed, INDEX_FAILURE_COUNT)
        ignored = _int_annotation(last_failed, INDEX_IGNORED_FAILURE_COUNT)
        if match_pod_failure_policy(job["spec"].get("podFailurePolicy"), last_failed).count:
            failures += 1
        else:
            ignored += 1
        return failures, ignored

    # ---- pods: create and delete ----

    async def _manage(
        self, key: str, job: Obj, st: SyncState, *, now: float
    ) -> tuple[int, float | None]:
        active = len(st.active_pods)
        spec = job["spec"]
        parallelism = int(spec.get("parallelism", 1))
        if suspended(job):
            to_delete = pods_for_removal(job, st.active_pods, active)
            return await self._delete_for(key, job, st, to_delete, active=active), None
        total = completions(job)
        if total is None:
            want = active if st.succeeded > 0 else parallelism
        else:
            want = max(0, min(total - st.succeeded, parallelism))
        to_delete = pods_for_removal(job, st.active_pods, max(0, active - want))[:MAX_CREATE_DELETE]
        if to_delete:
            return await self._delete_for(key, job, st, to_delete, active=active), None
        terminating = st.terminating if only_replace_failed(job) else 0
        diff = want - terminating - active
        if diff <= 0:
            return active, None
        per_index = backoff_limit_per_index(job) is not None
        if not per_index:
            wait = remaining_backoff(
                failures=st.backoff.failures_after_last_success,
                last_failure=st.backoff.last_failure_time,
                now=now,
                base=self.pod_failure_backoff,
                cap=self.pod_failure_backoff_max,
            )
            if wait > 0:
                return active, max(wait, self.batch_period)
        diff = min(diff, MAX_CREATE_DELETE)
        indexes: list[int] = [-1] * diff
        if is_indexed(job):
            indexes = first_pending_indexes(st, count=diff, total=total or 0)
            if per_index:
                indexes, wait = self._ready_indexes(job, st, indexes, now=now)
                if not indexes:
                    return active, max(wait, self.batch_period)
        created = await self._create(key, job, st, indexes)
        return active + created, None

    def _ready_indexes(
        self, job: Obj, st: SyncState, indexes: list[int], *, now: float
    ) -> tuple[list[int], float]:
        ready: list[int] = []
        waits: list[float] = []
        for ix in indexes:
            last = st.delayed_per_index.get(ix)
            if last is None:
                ready.append(ix)
                continue
            failures = _int_annotation(last, INDEX_FAILURE_COUNT) + 1
            w = remaining_backoff(
                failures=failures, last_failure=finished_time(last), now=now,
                base=self.pod_failure_backoff, cap=self.pod_failure_backoff_max,
            )  # fmt: skip
            if w <= 0:
                ready.append(ix)
            else:
                waits.append(w)
        return ready, (min(waits) if waits and not ready else 0.0)

    async def _create(self, key: str, job: Obj, st: SyncState, indexes: list[int]) -> int:
        self.expectations.forget(key)
        self.expectations.expect(key, adds=len(indexes))
        per_index = backoff_limit_per_index(job) is not None
        created = 0
        errors: list[BaseException] = []
        batch = min(len(indexes), SLOW_START)
        pending = list(indexes)
        while pending:
            now_batch, pending = pending[:batch], pending[batch:]
            results = await asyncio.gather(
                *(self._create_one(job, ix, st, per_index=per_index) for ix in now_batch),
                return_exceptions=True,
            )
            for r in results:
                if isinstance(r, BaseException):
                    self.expectations.observed_add(key)
                    errors.append(r)
                else:
                    created += 1
            if errors:
                for _ in pending:
                    self.expectations.observed_add(key)
                break
            batch = min(2 * batch, len(pending))
        if errors:
            raise _ManageError(active=len(st.active_pods) + created, cause=errors[0])
        return created

    async def _create_one(self, job: Obj, index: int, st: SyncState, *, per_index: bool) -> None:
        counts = (
            self._index_failure_counts(job, st.delayed_per_index.get(index))
            if per_index and index >= 0
            else None
        )
        pod = pod_from_template(job, index=index, failure_counts=counts)
        try:
            out = await self.client.create(PODS, pod, namespace=meta(job)["namespace"])
        except AlreadyExists:
            raise
        except Exception as e:
            if "is being terminated" in str(e):
                return None  # namespace going away: later creates fail too
            self.recorder.warning(job, "FailedCreate", f"Error creating: {e}")
            raise
        self.recorder.normal(job, "SuccessfulCreate", f"Created pod: {meta(out)['name']}")
        return None

    async def _delete_for(
        self, key: str, job: Obj, st: SyncState, pods: list[Obj], *, active: int
    ) -> int:
        """Delete pods (finalizer first) while managing; returns the new active count."""
        self.expectations.forget(key)
        self.expectations.expect(key, deletes=len(pods))
        results = await asyncio.gather(
            *(self._delete_pod(job, p, strip=True) for p in pods), return_exceptions=True
        )
        removed = 0
        err: BaseException | None = None
        for p, r in zip(pods, results, strict=True):
            if isinstance(r, BaseException):
                self.expectations.observed_delete(key)
                if not isinstance(r, NotFound):
                    err = r
                    continue
            removed += 1
            st.ready -= 1 if pod_is_ready(p) else 0
        st.terminating += removed
        if err is not None:
            raise _ManageError(active=active - removed, cause=err)
        return active - removed

    async def _delete_active(
        self, job: Obj, pods: list[Obj]
    ) -> tuple[int, int, BaseException | None]:
        """Delete active pods of a finishing Job, keeping finalizers (counted later)."""
        results = await asyncio.gather(
            *(self._delete_pod(job, p, strip=False) for p in pods), return_exceptions=True
        )
        ready = deleted = 0
        err: BaseException | None = None
        for p, r in zip(pods, results, strict=True):
            if isinstance(r, BaseException) and not isinstance(r, NotFound):
                err = r
                continue
            deleted += 1
            ready += 1 if pod_is_ready(p) else 0
        return ready, deleted, err

    async def _delete_pod(self, job: Obj, pod: Obj, *, strip: bool) -> None:
        m = meta(pod)
        if strip and has_finalizer(pod):
            await self._remove_finalizer(pod)
        try:
            await self.client.delete(PODS, m["name"], namespace=m["namespace"])
        except NotFound:
            raise
        except Exception as e:
            self.recorder.warning(job, "FailedDelete", f"Error deleting: {e}")
            raise
        self.recorder.normal(job, "SuccessfulDelete", f"Deleted pod: {m['name']}")

    # ---- counting finished pods and finishing the Job ----

    async def _track(self, key: str, st: SyncState, *, needs_flush: bool, now_s: str) -> None:
        """upstream's ``trackJobStatusAndRemoveFinalizers``."""
        job = st.job
        status = job["status"]
        indexed = is_indexed(job)
        total = completions(job) or 0
        policy = job["spec"].get("podFailurePolicy")
        unc = status.setdefault("uncountedTerminatedPods", {})
        unc_ok: list[str] = list(unc.get("succeeded") or [])
        unc_bad: list[str] = list(unc.get("failed") or [])
        pods = sorted(st.pods, key=completion_index) if indexed else st.pods
        with_fin = {uid(p) for p in pods if has_finalizer(p) and uid(p) not in st.expected_rm}
        if _clean_uncounted(status, with_fin):
            needs_flush = True
            unc_ok, unc_bad = list(unc.get("succeeded") or []), list(unc.get("failed") or [])
        to_strip: list[Obj] = []
        new_ix: set[int] = set()
        reached_max = False
        for p in pods:
            u = uid(p)
            if not has_finalizer(p) or u in st.expected_rm:
                continue
            failed = is_pod_failed(p, job)
            if not self._can_strip(st, p, failed=failed):
                continue
            to_strip.append(p)
            if phase(p) == "Succeeded" and u not in st.uncounted_failed:
                if indexed:
                    ix = completion_index(p)
                    if 0 <= ix < total and ix not in st.prev_succeeded_indexes:
                        new_ix.add(ix)
                        needs_flush = True
                elif u not in st.uncounted_succeeded and u not in unc_ok:
                    needs_flush = True
                    unc_ok.append(u)
            elif failed or (
                st.finished is not None and st.finished["type"] != "SuccessCriteriaMet"
            ):
                ix = completion_index(p)
                valid = not indexed or 0 <= ix < total
                if u not in st.uncounted_failed and u not in unc_bad and valid:
                    if match_pod_failure_policy(policy, p).count:
                        needs_flush = True
                        unc_bad.append(u)
            if len(new_ix) + len(unc_ok) + len(unc_bad) >= MAX_UNCOUNTED:
                reached_max = True
                break
        _set_uncounted(status, succeeded=unc_ok, failed=unc_bad)
        if indexed:
            st.succeeded_indexes = st.succeeded_indexes | new_ix
            text = format_indexes(st.succeeded_indexes)
            if text != (status.get("completedIndexes") or ""):
                needs_flush = True
            _set_count(status, "succeeded", len(st.succeeded_indexes))
            if text:
                status["completedIndexes"] = text
            else:
                status.pop("completedIndexes", None)
            failed_text = (
                format_indexes(st.failed_indexes) if st.failed_indexes is not None else None
            )
            if failed_text != status.get("failedIndexes"):
                needs_flush = True
                if failed_text is None:
                    status.pop("failedIndexes", None)
                else:
                    status["failedIndexes"] = failed_text
        conds = status.setdefault("conditions", [])
        if st.finished is not None and st.finished["type"] == "FailureTarget":
            conds.append(st.finished)
            needs_flush = True
            st.finished = new_condition(
                "Failed", "True", st.finished["reason"], st.finished["message"], now=now_s
            )
        if st.finished is not None and st.finished["type"] == "SuccessCriteriaMet":
            if get_condition(status, "SuccessCriteriaMet") is None:
                conds.append(st.finished)
                needs_flush = True
            st.finished = new_condition(
                "Complete", "True", st.finished["reason"], st.finished["message"], now=now_s
            )
        if not conds:
            status.pop("conditions", None)
        needs_flush = await self._flush_and_strip(
            key, st, to_strip, with_fin, needs_flush=needs_flush
        )
        finished = not reached_max and self._enact_finished(st, now_s=now_s)
        if finished or needs_flush:
            st.job = await self.client.update_status(JOBS, st.job)
            if finished:
                self._record_finished(st.job, st.finished or {})

    def _can_strip(self, st: SyncState, pod: Obj, *, failed: bool) -> bool:
        if is_deleting(st.job) or st.finished is not None or phase(pod) == "Succeeded":
            return True
        if not failed:
            return False
        if backoff_limit_per_index(st.job) is not None:
            delayed = st.delayed_per_index.get(completion_index(pod))
            if delayed is not None and uid(delayed) == uid(pod):
                return False
        return True

    async def _flush_and_strip(
        self, key: str, st: SyncState, pods: list[Obj], with_fin: set[str], *, needs_flush: bool
    ) -> bool:
        if needs_flush:
            st.job = await self.client.update_status(JOBS, st.job)
            self.backoffs[key] = st.backoff
            needs_flush = False
        err: BaseException | None = None
        if pods:
            self.rm_finalizers.setdefault(key, set()).update(uid(p) for p in pods)
            results = await asyncio.gather(*(self._strip(p) for p in pods), return_exceptions=True)
            for p, r in zip(pods, results, strict=True):
                if isinstance(r, BaseException):
                    self.rm_finalizers.get(key, set()).discard(uid(p))
                    if not isinstance(r, NotFound):
                        err = r
                        continue
                with_fin.discard(uid(p))
        if _clean_uncounted(st.job.setdefault("status", {}), with_fin):
            needs_flush = True
        if err is not None:
            if needs_flush:
                st.job = await self.client.update_status(JOBS, st.job)
            raise err
        return needs_flush

    async def _strip(self, pod: Obj) -> None:
        body = {"metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}}
        m = meta(pod)
        await self.client.patch(
            PODS, m["name"], body, namespace=m["namespace"], patch_type="strategic"
        )

    def _enact_finished(self, st: SyncState, *, now_s: str) -> bool:
        if st.finished is None:
            return False
        status = st.job.setdefault("status", {})
        unc = status.get("uncountedTerminatedPods") or {}
        if unc.get("succeeded") or unc.get("failed"):
            return False
        if st.terminating > 0:
            return False
        cond = dict(st.finished)
        cond["lastProbeTime"] = cond["lastTransitionTime"] = now_s
        ensure_condition(status.setdefault("conditions", []), cond)
        if cond["type"] == "Complete":
            status["completionTime"] = cond["lastTransitionTime"]
        return True

    def _record_finished(self, job: Obj, cond: Obj) -> None:
        if cond.get("type") == "Complete":
            total = completions(job)
            if total is not None and int((job.get("status") or {}).get("succeeded") or 0) > total:
                self.recorder.warning(
                    job,
                    "TooManySucceededPods",
                    "Too many succeeded pods running after completion count reached",
                )
            self.recorder.normal(job, "Completed", "Job completed")
        else:
            self.recorder.warning(job, cond.get("reason", "Failed"), cond.get("message", ""))


class _ManageError(Exception):
    def __init__(self, *, active: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.active = active
        self.cause = cause


def _set_count(status: Obj, key: str, value: int) -> None:
    if value:
        status[key] = value
    else:
        status.pop(key, None)


def _set_uncounted(status: Obj, *, succeeded: list[str], failed: list[str]) -> None:
    unc: Obj = {}
    if succeeded:
        unc["succeeded"] = succeeded
    if failed:
        unc["failed"] = failed
    status["uncountedTerminatedPods"] = unc


def _clean_uncounted(status: Obj, with_fin: set[str]) -> bool:
    """Move uncounted pods whose finalizer is gone into the counters."""
    unc = status.setdefault("uncountedTerminatedPods", {})
    changed = False
    for key, counter in (("succeeded", "succeeded"), ("failed", "failed")):
        uids = list(unc.get(key) or [])
        keep = [u for u in uids if u in with_fin]
        if len(keep) != len(uids):
            changed = True
            _set_count(status, counter, int(status.get(counter) or 0) + len(uids) - len(keep))
            if keep:
                unc[key] = keep
            else:
                unc.pop(key, None)
    return changed


CONTROLLERS = [JobController]
