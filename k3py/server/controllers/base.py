"""What every controller shares: the context (client, shared informers, event recorder,
timings), a ``Controller`` base with a de-duplicating work queue and workers, and small
object helpers (owner references, conditions, pod states, time).

A controller:

    class ReplicaSetController(Controller):
        name = "replicaset"

        def setup(self) -> None:                       # before informers start
            self.rs = self.ctx.informer(REPLICASETS)
            self.pods = self.ctx.informer(PODS, indexers={OWNER: by_owner_uid})
            self.watch(self.rs)                        # enqueue ns/name on every change
            self.pods.add_handler(on_add=..., ...)     # map pods to their owner's key

        async def reconcile(self, key: str) -> float | None:
            ...                                        # None: done; a float: look again after

Keys are ``namespace/name`` (``name`` for cluster-scoped objects) as ``k3py.client.key_of``
makes them.  ``reconcile`` must be idempotent: it reads the desired and observed state
from the caches and writes the difference; a raise retries it with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from k3py.client import Client, Informer, WorkQueue, key_of, process
from k3py.client.cache import IndexFunc
from k3py.client.resources import Resource

if TYPE_CHECKING:
    from k3py.server.controllers.events import EventRecorder

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers")


# ---- timings -----------------------------------------------------------------


@dataclass
class Timings:
    """Control-loop timings; the defaults are upstream's.  Tests shorten them."""

    node_monitor_period: float = 5.0  # how often node lifecycle looks at leases
    node_monitor_grace_period: float = 50.0  # lease older than this → NotReady/Unknown
    node_lease_renew_interval: float = 10.0  # kubelet (and simulated node) lease renewal
    node_lease_duration: int = 40  # leaseDurationSeconds written by kubelets
    node_status_report_frequency: float = 300.0  # unchanged node status re-sent after
    pod_eviction_rate: float = 0.1  # evictions per second per zone (upstream 0.1)
    unhealthy_zone_threshold: float = 0.55
    leader_lease_duration: float = 15.0
    leader_renew_deadline: float = 10.0
    leader_retry_period: float = 2.0
    scheduler_backoff_initial: float = 1.0
    scheduler_backoff_max: float = 10.0
    scheduler_unschedulable_flush: float = 300.0  # retry unschedulable pods at least this often
    gc_interval: float = 30.0  # full garbage-collector resync
    job_pod_failure_backoff: float = 10.0  # Job: delay before re-creating a failed pod, doubling
    job_pod_failure_backoff_max: float = 600.0


# ---- shared informers ------------------------------------------------------------


class Informers:
    """One informer per (resource, namespace, selectors), shared by every controller.

    Controllers ask for informers and add handlers and indexers in ``setup``; the
    manager then starts them all and waits for their first list before any worker runs.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._by_key: dict[tuple[Resource, str, str, str], Informer] = {}

    def get(
        self,
        res: Resource,
        *,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        indexers: dict[str, IndexFunc] | None = None,
    ) -> Informer:
        key = (res, namespace, label_selector, field_selector)
        inf = self._by_key.get(key)
        if inf is None:
            inf = self.client.informer(
                res, namespace=namespace, label_selector=label_selector,
                field_selector=field_selector,
            )  # fmt: skip
            self._by_key[key] = inf
        for name, fn in (indexers or {}).items():
            if name not in inf.cache._indexers:  # noqa: SLF001 - shared informers share indexes
                inf.add_indexer(name, fn)
        return inf

    def all(self) -> list[Informer]:
        return list(self._by_key.values())

    def start(self) -> None:
        for inf in self._by_key.values():
            inf.start()

    async def wait_synced(self) -> None:
        await asyncio.gather(*(inf.wait_synced() for inf in self._by_key.values()))

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self._by_key.values()))


# ---- context and base class -------------------------------------------------------


@dataclass
class Context:
    client: Client
    informers: Informers
    recorder: EventRecorder
    timings: Timings = field(default_factory=Timings)
    clock: Callable[[], float] = time.time  # wall-clock seconds (timestamps, deadlines)
    config: Any = None  # the ServerConfig (cluster CIDR, ...), when run in the server

    def informer(self, res: Resource, **kw: Any) -> Informer:
        return self.informers.get(res, **kw)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def now_rfc3339(self) -> str:
        return rfc3339(self.now())


class Controller:
    """A named reconcile loop over keys, fed by informer handlers."""

    name = "controller"
    workers = 2

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder
        self.queue: WorkQueue[str] = WorkQueue(name=self.name)
        self._tasks: list[asyncio.Task[None]] = []

    # -- to override --
    def setup(self) -> None:
        """Ask for informers and add handlers (called once, before informers start)."""

    async def reconcile(self, key: str) -> float | None:
        raise NotImplementedError

    async def started(self) -> None:
        """Called once the caches are synced, before workers start (e.g. enqueue all)."""

    # -- helpers --
    def enqueue(self, obj: Obj) -> None:
        self.queue.add(key_of(obj))

    def watch(self, inf: Informer) -> None:
        """Enqueue the object's own key on every add, update and delete."""
        inf.add_handler(
            on_add=self.enqueue,
            on_update=lambda _old, new: self.enqueue(new),
            on_delete=self.enqueue,
            readonly=True,
        )

    def enqueue_all(self, inf: Informer) -> None:
        for obj in inf.list():
            self.enqueue(obj)

    # -- life cycle --
    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for i in range(self.workers):
            self._tasks.append(
                loop.create_task(process(self.queue, self.reconcile), name=f"{self.name}-{i}")
            )
        self._tasks.extend(self.background())

    def background(self) -> list[asyncio.Task[None]]:
        """Extra tasks (periodic resyncs) a controller runs beside its workers."""
        return []

    async def stop(self) -> None:
        self.queue.shut_down()
        await cancel_tasks(self._tasks)


async def cancel_tasks(tasks: list[asyncio.Task[Any]] | set[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks``, wait for each to end (whatever it raised), and empty the
    collection."""
    todo = list(tasks)
    for t in todo:
        t.cancel()
    for t in todo:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    tasks.clear()


def every(seconds: float, fn: Callable[[], Any], *, name: str) -> asyncio.Task[None]:
    """A task calling ``fn`` (sync or async) every ``seconds``; failures are logged."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                r = fn()
                if asyncio.iscoroutine(r):
                    await r
            except Exception:  # noqa: BLE001 - a periodic task survives one failure
                log.exception("%s failed", name)

    return asyncio.get_running_loop().create_task(loop(), name=name)


# ---- object helpers ------------------------------------------------------------------


def rfc3339(t: dt.datetime | float) -> str:
    """``2026-11-22T08:00:00Z`` of a datetime or of seconds since the epoch."""
    if isinstance(t, dt.datetime):
        return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def micro_time(t: float) -> str:
    """A MicroTime (Lease renewTime): RFC 3339 with microseconds."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(s: Any) -> float | None:
    """Seconds since the epoch of an RFC 3339 timestamp (None for None/garbage)."""
    if not isinstance(s, str) or not s:
        return None
    try:
        return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, dict) else {}


def controller_ref(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref  # type: ignore[no-any-return]
    return None


def owner_reference(owner: Obj, *, controller: bool = True, block: bool = True) -> Obj:
    """The ownerReference a controller puts on what it creates."""
    m = meta(owner)
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": m["name"],
        "uid": m["uid"],
        "controller": controller,
        "blockOwnerDeletion": block,
    }


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == meta(owner).get("uid")


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def get_condition(status: Obj | None, ctype: str) -> Obj | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c  # type: ignore[no-any-return]
    return None


def set_condition(status: Obj, cond: Obj, *, now: str) -> bool:
    """Put ``cond`` (type, status, reason, message) into ``status.conditions``; the
    transition time moves only when the status changes.  Returns whether anything
    changed."""
    conds: list[Obj] = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c.get("type") == cond["type"]:
            new = dict(c)
            new.update(cond)
            if c.get("status") != cond.get("status"):
                new["lastTransitionTime"] = now
            else:
                new["lastTransitionTime"] = c.get("lastTransitionTime") or now
            if new == c:
                return False
            if "lastUpdateTime" in c or "lastUpdateTime" in cond:
                new["lastUpdateTime"] = now
            conds[i] = new
            return True
    new = dict(cond)
    new.setdefault("lastTransitionTime", now)
    conds.append(new)
    return True


def pod_is_ready(pod: Obj) -> bool:
    c = get_condition(pod.get("status"), "Ready")
    return c is not None and c.get("status") == "True"


def pod_is_active(pod: Obj) -> bool:
    """Not finished and not being deleted (ReplicaSet's notion of an active pod)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_deleting(pod)


def pod_is_available(pod: Obj, *, min_ready_seconds: int, now: float) -> bool:
    if not pod_is_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    c = get_condition(pod.get("status"), "Ready") or {}
    t = parse_time(c.get("lastTransitionTime"))
    return t is not None and t + min_ready_seconds <= now


class Expectations:
    """How many creates/deletes a controller still expects to see in its caches for a
    key, so that it does not act twice on a stale cache (client-go's
    ControllerExpectations).  Expectations expire after ``ttl`` seconds."""

    def __init__(self, *, ttl: float = 300.0) -> None:
        self.ttl = ttl
        self._exp: dict[str, tuple[int, int, float]] = {}

    def expect(self, key: str, *, adds: int = 0, deletes: int = 0) -> None:
        a, d, _ = self._exp.get(key, (0, 0, 0.0))
        self._exp[key] = (a + adds, d + deletes, time.monotonic())

    def observed_add(self, key: str) -> None:
        if key in self._exp:
            a, d, t = self._exp[key]
            self._exp[key] = (a - 1, d, t)

    def observed_delete(self, key: str) -> None:
        if key in self._exp:
            a, d, t = self._exp[key]
            self._exp[key] = (a, d - 1, t)

    def satisfied(self, key: str) -> bool:
        e = self._exp.get(key)
        if e is None:
            return True
        a, d, t = e
        if (a <= 0 and d <= 0) or time.monotonic() - t > self.ttl:
            self._exp.pop(key, None)
            return True
        return False

    def forget(self, key: str) -> None:
        self._exp.pop(key, None)
