"""The CronJob controller (upstream's ControllerV2, 1.32).

One reconcile per CronJob: drop finished Jobs beyond the history limits, reconcile
``status.active`` with the Jobs it owns (SawCompletedJob, MissingJob, UnexpectedJob),
then decide about the most recent unmet schedule time (``cron.most_recent_schedule_time``):
too late for ``startingDeadlineSeconds`` (MissSchedule), already handled, held back by
``concurrencyPolicy: Forbid``, or due — then Replace deletes the running Jobs and a Job
named ``<cronjob>-<scheduled minutes since the epoch>`` is created.  The name is the lock
that keeps a restarted controller from starting the same run twice.  The reconcile asks
to be looked at again 100 ms after the next schedule time.

``ctx.clock`` is the only clock read, so tests drive schedules with a fake clock.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging

from k3py.apimachinery import cron
from k3py.client import CRONJOBS, JOBS, AlreadyExists, NotFound, key_for
from k3py.client.cache import split_key
from k3py.server.controllers.base import (
    Context,
    Controller,
    Obj,
    controller_ref,
    is_controlled_by,
    is_deleting,
    meta,
    owner_reference,
    parse_time,
    rfc3339,
)

log = logging.getLogger("k3py.controllers.cronjob")

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
OWNER_NAME = "cronjob-owner"  # job index: "ns/name" of the controlling CronJob


def _owner_key(job: Obj) -> list[str]:
    ref = controller_ref(job)
    if ref is None or ref.get("kind") != "CronJob":
        return []
    return [key_for(namespace=meta(job).get("namespace", ""), name=str(ref.get("name", "")))]


def finished_condition(job: Obj) -> str:
    """ "Complete", "Failed" or "" (not finished)."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return ""


def job_name(cronjob: Obj, scheduled: float) -> str:
    return f"{meta(cronjob)['name']}-{int(scheduled) // 60}"


def job_from_template(cronjob: Obj, scheduled: float, *, zone: dt.tzinfo) -> Obj:
    """upstream's ``getJobFromTemplate2``."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = cron.format_rfc3339(scheduled, zone)
    m: Obj = {
        "name": job_name(cronjob, scheduled),
        "namespace": meta(cronjob).get("namespace"),
        "annotations": annotations,
        "ownerReferences": [owner_reference(cronjob)],
    }
    if tmeta.get("labels"):
        m["labels"] = dict(tmeta["labels"])
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": m,
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


def job_reference(job: Obj) -> Obj:
    m = meta(job)
    return {
        "kind": "Job",
        "namespace": m.get("namespace"),
        "name": m.get("name"),
        "uid": m.get("uid"),
        "apiVersion": "batch/v1",
        "resourceVersion": m.get("resourceVersion"),
    }


def _start_time_key(job: Obj) -> tuple[int, float, str]:
    t = parse_time((job.get("status") or {}).get("startTime"))
    return (0, t, meta(job)["name"]) if t is not None else (1, 0.0, meta(job)["name"])


class CronJobController(Controller):
    name = "cronjob"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.recorder = self.recorder.for_component("cronjob-controller")
        self.default_zone = cron.local_zone()  # schedules without timeZone: "Local"

    def setup(self) -> None:
        self.cronjobs = self.ctx.informer(CRONJOBS)
        self.jobs = self.ctx.informer(JOBS, indexers={OWNER_NAME: _owner_key})
        self.cronjobs.add_handler(
            on_add=self.enqueue, on_update=self._cronjob_updated, on_delete=self.enqueue
        )
        self.jobs.add_handler(
            on_add=self._job_changed,
            on_update=self._job_updated,
            on_delete=self._job_changed,
        )

    async def started(self) -> None:
        self.enqueue_all(self.cronjobs)

    # ---- handlers ----

    def _job_changed(self, job: Obj) -> None:
        for key in _owner_key(job):
            self.queue.add(key)

    def _job_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        for key in {*_owner_key(old), *_owner_key(new)}:
            self.queue.add(key)

    def _cronjob_updated(self, old: Obj, new: Obj) -> None:
        ospec, nspec = old.get("spec") or {}, new.get("spec") or {}
        if ospec.get("schedule") == nspec.get("schedule") and ospec.get("timeZone") == nspec.get(
            "timeZone"
        ):
            self.enqueue(new)
            return
        try:
            sched = self._schedule(new)
        except cron.CronError:
            self.recorder.warning(
                new,
                "UnParseableCronJobSchedule",
                f"unparseable schedule for cronjob: {nspec.get('schedule')}",
            )
            return
        delay = cron.next_schedule_delay(
            schedule=sched, earliest=self._earliest(new), now=self.ctx.clock()
        )
        if delay is not None:
            self.queue.add_after(self._key(new), delay)

    @staticmethod
    def _key(obj: Obj) -> str:
        return key_for(namespace=meta(obj).get("namespace", ""), name=meta(obj)["name"])

    def _schedule(self, cj: Obj) -> cron.Schedule:
        spec = cj.get("spec") or {}
        return cron.parse(
            str(spec.get("schedule") or ""),
            time_zone=spec.get("timeZone"),
            default_zone=self.default_zone,
        )

    @staticmethod
    def _earliest(cj: Obj) -> float:
        last = parse_time((cj.get("status") or {}).get("lastScheduleTime"))
        if last is not None:
            return last
        return parse_time(meta(cj).get("creationTimestamp")) or 0.0

    # ---- the sync ----

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        cj = self.cronjobs.get(name, namespace=ns)
        if cj is None:
            return None
        jobs = self.jobs.by_index(OWNER_NAME, key)
        work = copy.deepcopy(cj)
        work.setdefault("status", {})
        changed = await self._cleanup_finished(work, jobs)
        requeue: float | None = None
        error: Exception | None = None
        try:
            requeue, synced = await self._sync(work, jobs)
            changed = changed or synced
        except Exception as e:  # noqa: BLE001 - status first, then retry with back-off
            error = e
            changed = True
        if changed:
            status = work["status"]
            if not status.get("active"):
                status.pop("active", None)
            await self.client.update_status(CRONJOBS, work)
        if error is not None:
            raise error
        return requeue

    async def _sync(self, cj: Obj, jobs: list[Obj]) -> tuple[float | None, bool]:
        """upstream's ``syncCronJob``: (requeue after, status changed)."""
        now = self.ctx.clock()
        changed = await self._reconcile_active(cj, jobs)
        changed = await self._forget_missing(cj, jobs) or changed
        if is_deleting(cj):
            return None, changed
        spec = cj.get("spec") or {}
        tz = spec.get("timeZone")
        if tz is not None:
            try:
                cron.load_zone(tz)
            except cron.CronError as e:
                self.recorder.warning(cj, "UnknownTimeZone", f'invalid timeZone: "{tz}": {e}')
                return None, changed
        if spec.get("suspend"):
            return None, changed
        schedule = str(spec.get("schedule") or "")
        if "TZ" in schedule:
            self.recorder.warning(
                cj,
                "UnsupportedSchedule",
                f'CRON_TZ or TZ used in schedule "{schedule}" is not officially supported, '
                "see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ "
                "for more details",
            )
        try:
            sched = self._schedule(cj)
        except cron.CronError as e:
            self.recorder.warning(
                cj, "UnparseableSchedule", f'unparseable schedule: "{schedule}" : {e}'
            )
            return None, changed
        return await self._maybe_start(cj, sched=sched, now=now, changed=changed)

    def _next(self, cj: Obj, sched: cron.Schedule, now: float) -> float | None:
        return cron.next_schedule_delay(schedule=sched, earliest=self._earliest(cj), now=now)

    async def _maybe_start(
        self, cj: Obj, *, sched: cron.Schedule, now: float, changed: bool
    ) -> tuple[float | None, bool]:
        spec = cj.get("spec") or {}
        deadline = spec.get("startingDeadlineSeconds")
        try:
            _, scheduled, missed = cron.most_recent_schedule_time(
                schedule=sched,
                earliest=self._earliest(cj),
                now=now,
                starting_deadline_seconds=deadline,
            )
        except cron.CronError as e:
            self.recorder.warning(
                cj, "InvalidSchedule", f"invalid schedule: {spec.get('schedule')} : {e}"
            )
            return None, changed
        if scheduled is None:
            return self._next(cj, sched, now), changed
        if missed == "many":
            self.recorder.warning(
                cj,
                "TooManyMissedTimes",
                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                "or check clock skew",
            )
        if deadline is not None and scheduled + deadline < now:
            self.recorder.warning(
                cj,
                "MissSchedule",
                f"Missed scheduled time to start a job: {cron.format_rfc1123z(scheduled)}",
            )
            return self._next(cj, sched, now), changed
        status = cj["status"]
        name = job_name(cj, scheduled)
        last = parse_time(status.get("lastScheduleTime"))
        if any(a.get("name") == name for a in status.get("active") or []) or last == scheduled:
            return self._next(cj, sched, now), changed
        if spec.get("concurrencyPolicy") == "Forbid" and status.get("active"):
            self.recorder.normal(
                cj,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy "
                "is Forbid",
            )
            return self._next(cj, sched, now), changed
        if spec.get("concurrencyPolicy") == "Replace":
            for ref in list(status.get("active") or []):
                try:
                    job = await self.client.get(JOBS, ref["name"], namespace=ref["namespace"])
                except Exception as e:
                    self.recorder.warning(cj, "FailedGet", f"Get job: {e}")
                    raise
                if not await self._delete_job(cj, job):
                    raise RuntimeError(f"could not replace job {ref['namespace']}/{ref['name']}")
                changed = True
        return await self._create(cj, sched=sched, scheduled=scheduled, now=now, changed=changed)

    async def _create(
        self, cj: Obj, *, sched: cron.Schedule, scheduled: float, now: float, changed: bool
    ) -> tuple[float | None, bool]:
        tz = (cj.get("spec") or {}).get("timeZone")
        zone = cron.load_zone(tz or "")
        body = job_from_template(cj, scheduled, zone=zone)
        ns = meta(cj)["namespace"]
        try:
            job = await self.client.create(JOBS, body, namespace=ns)
        except AlreadyExists:
            job = await self.client.get(JOBS, body["metadata"]["name"], namespace=ns)
            if not is_controlled_by(job, cj):
                return None, changed
            if any(a.get("uid") == meta(job).get("uid") for a in cj["status"].get("active") or []):
                return None, changed
            log.info(
                "cronjob %s/%s: job %s already exists", ns, meta(cj)["name"], meta(job)["name"]
            )
        except Exception as e:
            if "is being terminated" not in str(e):
                self.recorder.warning(cj, "FailedCreate", f"Error creating job: {e}")
            raise
        else:
            self.recorder.normal(cj, "SuccessfulCreate", f"Created job {meta(job)['name']}")
        status = cj["status"]
        status.setdefault("active", []).append(job_reference(job))
        status["lastScheduleTime"] = rfc3339(dt.datetime.fromtimestamp(scheduled, dt.UTC))
        return self._next(cj, sched, now), True

    async def _reconcile_active(self, cj: Obj, jobs: list[Obj]) -> bool:
        changed = False
        for job in jobs:
            status = cj["status"]
            juid = meta(job).get("uid")
            found = any(a.get("uid") == juid for a in status.get("active") or [])
            cond = finished_condition(job)
            if not found and not cond:
                # Our cache may not show our own status write yet: ask the API.
                fresh = await self.client.get(
                    CRONJOBS, meta(cj)["name"], namespace=meta(cj)["namespace"]
                )
                if any(
                    a.get("uid") == juid for a in (fresh.get("status") or {}).get("active") or []
                ):
                    cj.clear()
                    cj.update(fresh)
                    cj.setdefault("status", {})
                    continue
                self.recorder.warning(
                    cj,
                    "UnexpectedJob",
                    f"Saw a job that the controller did not create or forgot: {meta(job)['name']}",
                )
            elif cond:
                if found:
                    _remove_active(status, juid)
                    self.recorder.normal(
                        cj,
                        "SawCompletedJob",
                        f"Saw completed job: {meta(job)['name']}, condition: {cond}",
                    )
                    changed = True
                if cond == "Complete":
                    done = (job.get("status") or {}).get("completionTime")
                    last = parse_time(status.get("lastSuccessfulTime"))
                    t = parse_time(done)
                    if done and (last is None or (t is not None and t > last)):
                        status["lastSuccessfulTime"] = done
                        changed = True
        return changed

    async def _forget_missing(self, cj: Obj, jobs: list[Obj]) -> bool:
        """Active entries whose Job is gone (checked against the API, not the cache)."""
        status = cj["status"]
        have = {meta(j).get("uid") for j in jobs}
        changed = False
        for ref in list(status.get("active") or []):
            if ref.get("uid") in have:
                continue
            try:
                await self.client.get(JOBS, ref.get("name", ""), namespace=ref.get("namespace", ""))
            except NotFound:
                self.recorder.normal(
                    cj, "MissingJob", f"Active job went missing: {ref.get('name')}"
                )
                _remove_active(status, ref.get("uid"))
                changed = True
        return changed

    async def _cleanup_finished(self, cj: Obj, jobs: list[Obj]) -> bool:
        spec = cj.get("spec") or {}
        ok_limit = spec.get("successfulJobsHistoryLimit")
        bad_limit = spec.get("failedJobsHistoryLimit")
        if ok_limit is None and bad_limit is None:
            return False
        ok = [j for j in jobs if finished_condition(j) == "Complete"]
        bad = [j for j in jobs if finished_condition(j) == "Failed"]
        changed = False
        for limit, group in ((ok_limit, ok), (bad_limit, bad)):
            if limit is None or len(group) <= int(limit):
                continue
            group.sort(key=_start_time_key)
            for job in group[: len(group) - int(limit)]:
                changed = await self._delete_job(cj, job) or changed
        return changed

    async def _delete_job(self, cj: Obj, job: Obj) -> bool:
        m = meta(job)
        try:
            await self.client.delete(
                JOBS, m["name"], namespace=m["namespace"], propagation_policy="Background"
            )
        except NotFound:
            pass
        except Exception as e:  # noqa: BLE001 - reported as an event, as upstream
            self.recorder.warning(cj, "FailedDelete", f"Deleted job: {e}")
            return False
        _remove_active(cj["status"], m.get("uid"))
        self.recorder.normal(cj, "SuccessfulDelete", f"Deleted job {m['name']}")
        return True


def _remove_active(status: Obj, juid: object) -> None:
    status["active"] = [a for a in status.get("active") or [] if a.get("uid") != juid]


CONTROLLERS = [CronJobController]
