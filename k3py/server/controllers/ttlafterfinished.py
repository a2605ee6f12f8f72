"""TTL after finished: delete a finished Job ``spec.ttlSecondsAfterFinished`` seconds
after its Complete/Failed condition turned True (upstream's ttlafterfinished controller).

The cache decides when to look; a fresh GET confirms the TTL before the delete (the TTL
may have been changed meanwhile), and the delete carries the uid as a precondition and
``propagationPolicy: Foreground``, as upstream, so the garbage collector removes the
Job's pods before the Job itself disappears.
"""

from __future__ import annotations

from k3py.client import JOBS, Conflict, NotFound
from k3py.client.cache import split_key
from k3py.server.controllers.base import Controller, Obj, is_deleting, meta, parse_time


def finish_time(job: Obj) -> float | None:
    """When the Job finished (the Complete/Failed condition's transition), or None."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def needs_cleanup(job: Obj) -> bool:
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    return ttl is not None and finish_time(job) is not None


def time_left(job: Obj, *, now: float) -> float | None:
    """Seconds until the Job expires (<= 0: expired); None: nothing to clean up."""
    if is_deleting(job) or not needs_cleanup(job):
        return None
    finished = finish_time(job)
    assert finished is not None
    return finished + int(job["spec"]["ttlSecondsAfterFinished"]) - now


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    workers = 2

    def setup(self) -> None:
        self.jobs = self.ctx.informer(JOBS)
        self.jobs.add_handler(
            on_add=self._maybe_enqueue, on_update=lambda _old, new: self._maybe_enqueue(new)
        )

    async def started(self) -> None:
        for job in self.jobs.list():
            self._maybe_enqueue(job)

    def _maybe_enqueue(self, job: Obj) -> None:
        if not is_deleting(job) and needs_cleanup(job):
            self.enqueue(job)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        job = self.jobs.get(name, namespace=ns)
        if job is None:
            return None
        left = time_left(job, now=self.ctx.clock())
        if left is None:
            return None
        if left > 0:
            return left
        try:
            fresh = await self.client.get(JOBS, name, namespace=ns)
        except NotFound:
            return None
        left = time_left(fresh, now=self.ctx.clock())
        if left is None:
            return None
        if left > 0:
            return left
        try:
            await self.client.delete(
                JOBS,
                name,
                namespace=ns,
                propagation_policy="Foreground",
                preconditions_uid=meta(fresh).get("uid"),
            )
        except (NotFound, Conflict):
            return None  # gone, or replaced by another Job of that name (its own sync follows)
        return None


CONTROLLERS = [TTLAfterFinishedController]
