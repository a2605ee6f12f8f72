"""The scheduler as a control loop (kube-scheduler's ``scheduleOne`` in one task).

Informer handlers keep the cache (nodes, bound pods) and the queue (pending pods of
``default-scheduler``) current; one loop pops the best pod, decides synchronously
(``Algorithm.schedule``: pure Python over the cache, no awaits), *assumes* the pod onto
the node and hands the ``pods/binding`` write to a task, so the next decision does not
wait for the write; a failed binding forgets the assumption and re-queues the pod with
back-off.  At most ``MAX_BINDS_IN_FLIGHT`` bindings run at once.

A pod that fits nowhere gets upstream's ``FailedScheduling`` event and ``PodScheduled``
False/Unschedulable condition (written only when the message changes), and may preempt
lower-priority pods: victims get a ``DisruptionTarget`` condition, a ``Preempted`` event
and are deleted; the pod's ``status.nominatedNodeName`` is set, and the node's room is
kept for it (lower-priority pods do not take it meanwhile).

Priorities: ``spec.priority`` when the API server resolved it; otherwise the scheduler
resolves ``priorityClassName`` (or the globalDefault class) from a PriorityClass
informer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from k3py.apimachinery.selectors import Requirement, Selector, from_label_selector
from k3py.client import Conflict, NotFound
from k3py.client.resources import (
    NAMESPACES,
    NODES,
    PODDISRUPTIONBUDGETS,
    PODS,
    PRIORITYCLASSES,
    REPLICASETS,
    REPLICATIONCONTROLLERS,
    SERVICES,
    STATEFULSETS,
)
from k3py.server.controllers.base import Context, Controller, cancel_tasks, every
from k3py.server.scheduler.cache import Cache
from k3py.server.scheduler.framework import Algorithm, FitError
from k3py.server.scheduler.podinfo import DEFAULT_SCHEDULER, PodInfo
from k3py.server.scheduler.preemption import PDB, Preemptor
from k3py.server.scheduler.queue import QueuedPod, SchedulingQueue

Obj = dict[str, Any]
log = logging.getLogger("k3py.scheduler")

SYSTEM_PRIORITIES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}
MAX_BINDS_IN_FLIGHT = 256
SPREAD_PLUGINS = frozenset({"InterPodAffinity", "PodTopologySpread"})


class Scheduler(Controller):
    name = "scheduler"
    workers = 0
    scheduler_name = DEFAULT_SCHEDULER

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        t = ctx.timings
        self.cache = Cache()
        self.sq = SchedulingQueue(
            backoff_initial=t.scheduler_backoff_initial,
            backoff_max=t.scheduler_backoff_max,
            unschedulable_flush=t.scheduler_unschedulable_flush,
        )
        self.ns_labels: dict[str, dict[str, str]] = {}
        self.algo = Algorithm(
            self.cache, ns_labels=self.ns_labels, default_selector=self.default_selector
        )
        self.preemptor = Preemptor(self.cache, self.algo)
        self.priority_classes: dict[str, tuple[int, bool, bool]] = {}  # value, never, default
        self.services: dict[str, dict[str, dict[str, str]]] = {}  # ns -> name -> selector
        self.owners: dict[tuple[str, str, str], Selector] = {}  # (kind, ns, name) -> selector
        self.pdbs: dict[str, PDB] = {}
        self._binds = asyncio.Semaphore(MAX_BINDS_IN_FLIGHT)
        self._side: set[asyncio.Task[Any]] = set()
        self.stats = {"scheduled": 0, "unschedulable": 0, "bind_errors": 0, "preemptions": 0}
        self.busy_seconds = 0.0  # CPU time spent deciding (no awaits)
        self.handler_seconds = 0.0  # CPU time spent in pod informer handlers
        self.handler_calls = 0
        self._logged: tuple[int, ...] = ()

    # ---- informers ---------------------------------------------------------------

    def setup(self) -> None:
        ctx = self.ctx
        ctx.informer(PODS).add_handler(
            on_add=self._pod_added,
            on_update=self._pod_updated,
            on_delete=self._pod_deleted,
            readonly=True,
        )
        ctx.informer(NODES).add_handler(
            on_add=self._node_set, on_update=lambda _o, n: self._node_set(n),
            on_delete=self._node_deleted,
        )  # fmt: skip
        ctx.informer(PRIORITYCLASSES).add_handler(
            on_add=self._pc_set, on_update=lambda _o, n: self._pc_set(n), on_delete=self._pc_del
        )
        ctx.informer(NAMESPACES).add_handler(
            on_add=self._ns_set, on_update=lambda _o, n: self._ns_set(n), on_delete=self._ns_del
        )
        ctx.informer(SERVICES).add_handler(
            on_add=self._svc_set, on_update=lambda _o, n: self._svc_set(n),
            on_delete=self._svc_del,
        )  # fmt: skip
        for res in (REPLICASETS, STATEFULSETS, REPLICATIONCONTROLLERS):
            ctx.informer(res).add_handler(
                on_add=self._owner_set, on_update=lambda _o, n: self._owner_set(n),
                on_delete=self._owner_del,
            )  # fmt: skip
        ctx.informer(PODDISRUPTIONBUDGETS).add_handler(
            on_add=self._pdb_set, on_update=lambda _o, n: self._pdb_set(n),
            on_delete=self._pdb_del,
        )  # fmt: skip

    async def started(self) -> None:
        # priority classes may have arrived after some pods: sort the queue again
        for qp in list(self.sq.pods.values()):
            if not qp.pod.has_priority:
                self._resolve_priority(qp.pod)
                self.sq.update(qp.pod)
                if qp.where == "active":
                    self.sq._to_active(qp)  # noqa: SLF001 - re-sort with the new priority

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._loop(), name="scheduler-loop"))
        self._tasks.append(every(60.0, self.cache.drop_idle_counters, name="scheduler-counters"))
        self._tasks.append(every(10.0, self.log_stats, name="scheduler-stats"))

    def log_stats(self) -> None:
        """One INFO line when something happened (benchmarks read it from the log)."""
        st = self.stats
        now = (st["scheduled"], st["unschedulable"], st["bind_errors"], st["preemptions"])
        if now == self._logged:
            return
        self._logged = now
        attempts = max(1, st["scheduled"] + st["unschedulable"])
        log.info(
            "scheduler stats: scheduled=%d unschedulable=%d bind_errors=%d preemptions=%d "
            "decide_us_per_attempt=%.0f handler_us_per_event=%.0f events=%d queue=%s nodes=%d",
            *now, self.busy_seconds / attempts * 1e6,
            self.handler_seconds / max(1, self.handler_calls) * 1e6, self.handler_calls,
            self.sq.counts(), len(self.cache.node_list),
        )  # fmt: skip

    async def stop(self) -> None:
        await super().stop()
        await cancel_tasks(self._side)

    async def reconcile(self, key: str) -> float | None:  # unused: the loop is ours
        return None

    # ---- pods ----------------------------------------------------------------------

    def responsible(self, p: PodInfo) -> bool:
        return p.scheduler_name == self.scheduler_name

    def _pod_added(self, pod: Obj) -> None:
        t0 = time.thread_time()
        self._pod_changed(None, PodInfo(pod))
        self.handler_seconds += time.thread_time() - t0
        self.handler_calls += 1

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        t0 = time.thread_time()
        self._pod_changed(old, PodInfo(new))
        self.handler_seconds += time.thread_time() - t0
        self.handler_calls += 1

    def _pod_changed(self, old: Obj | None, p: PodInfo) -> None:
        self._resolve_priority(p)
        if p.node_name:
            self.sq.delete(p.uid)
            self.algo.unnominate(p.uid)
            if p.terminal:
                if self.cache.remove_pod(p.uid) is not None:
                    self.sq.move_all(event="AssignedPodDelete")
                return
            known = self.cache.pod_node(p.uid) is not None
            was_assumed = self.cache.is_assumed(p.uid)
            prev = self.cache.pods.get(p.uid)
            self.cache.add_pod(p)
            if not known:
                self.sq.move_all(event="AssignedPodAdd", plugins=SPREAD_PLUGINS)
            elif not was_assumed and prev is not None and prev[0].labels != p.labels:
                self.sq.move_all(event="AssignedPodUpdate", plugins=SPREAD_PLUGINS)
            return
        if self.cache.is_assumed(p.uid):
            return  # being bound
        if old is not None and (old.get("spec") or {}).get("nodeName"):
            return  # nodeName cannot be unset; ignore odd events
        if not self.responsible(p) or p.deleting or p.terminal:
            self.sq.delete(p.uid)
            self.algo.unnominate(p.uid)
            return
        self.sq.add(p)

    def _pod_deleted(self, pod: Obj) -> None:
        uid = (pod.get("metadata") or {}).get("uid") or ""
        self.sq.delete(uid)
        self.algo.unnominate(uid)
        if self.cache.remove_pod(uid) is not None:
            self.sq.move_all(event="AssignedPodDelete")

    # ---- nodes -----------------------------------------------------------------------

    def _node_set(self, node: Obj) -> None:
        if self.cache.set_node(node):
            self.sq.move_all(event="NodeChange")

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node((node.get("metadata") or {}).get("name") or "")

    # ---- priority classes, namespaces, selectors, budgets ---------------------------------

    def _pc_set(self, pc: Obj) -> None:
        name = (pc.get("metadata") or {}).get("name") or ""
        self.priority_classes[name] = (
            int(pc.get("value") or 0),
            pc.get("preemptionPolicy") == "Never",
            bool(pc.get("globalDefault")),
        )

    def _pc_del(self, pc: Obj) -> None:
        self.priority_classes.pop((pc.get("metadata") or {}).get("name") or "", None)

    def _resolve_priority(self, p: PodInfo) -> None:
        if p.has_priority:
            return
        if p.priority_class:
            found = self.priority_classes.get(p.priority_class)
            if found is not None:
                p.priority = found[0]
                p.preempt_never = p.preempt_never or found[1]
            elif p.priority_class in SYSTEM_PRIORITIES:
                p.priority = SYSTEM_PRIORITIES[p.priority_class]
            return
        for value, never, default in self.priority_classes.values():
            if default:
                p.priority = value
                p.preempt_never = p.preempt_never or never
                return

    def _ns_set(self, ns: Obj) -> None:
        meta = ns.get("metadata") or {}
        name = meta.get("name") or ""
        labels = dict(meta.get("labels") or {})
        if self.ns_labels.get(name) != labels:
            if name in self.ns_labels:
                self.cache.counters.clear()  # namespaceSelector matches may change
            self.ns_labels[name] = labels

    def _ns_del(self, ns: Obj) -> None:
        self.ns_labels.pop((ns.get("metadata") or {}).get("name") or "", None)

    def _svc_set(self, svc: Obj) -> None:
        meta = svc.get("metadata") or {}
        sel = (svc.get("spec") or {}).get("selector") or {}
        per = self.services.setdefault(meta.get("namespace") or "", {})
        if sel:
            per[meta.get("name") or ""] = dict(sel)
        else:
            per.pop(meta.get("name") or "", None)

    def _svc_del(self, svc: Obj) -> None:
        meta = svc.get("metadata") or {}
        self.services.get(meta.get("namespace") or "", {}).pop(meta.get("name") or "", None)

    def _owner_set(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (obj.get("kind") or "", meta.get("namespace") or "", meta.get("name") or "")
        sel = (obj.get("spec") or {}).get("selector")
        try:
            if key[0] == "ReplicationController":
                s = Selector(Requirement(k, "=", (str(v),)) for k, v in (sel or {}).items())
            else:
                s = from_label_selector(sel)
        except Exception:  # noqa: BLE001 - validated at admission
            return
        self.owners[key] = s

    def _owner_del(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        key = (obj.get("kind") or "", meta.get("namespace") or "", meta.get("name") or "")
        self.owners.pop(key, None)

    def _pdb_set(self, pdb: Obj) -> None:
        meta = pdb.get("metadata") or {}
        try:
            sel = from_label_selector((pdb.get("spec") or {}).get("selector"))
        except Exception:  # noqa: BLE001
            return
        status = pdb.get("status") or {}
        self.pdbs[f"{meta.get('namespace')}/{meta.get('name')}"] = PDB(
            namespace=meta.get("namespace") or "",
            selector=sel,
            allowed=int(status.get("disruptionsAllowed") or 0),
            disrupted=frozenset(status.get("disruptedPods") or {}),
        )

    def _pdb_del(self, pdb: Obj) -> None:
        meta = pdb.get("metadata") or {}
        self.pdbs.pop(f"{meta.get('namespace')}/{meta.get('name')}", None)

    def default_selector(self, p: PodInfo) -> tuple[Selector, bytes] | None:
        """Upstream's ``helper.DefaultSelector``: the pod's Services' selectors merged,
        plus its ReplicaSet/StatefulSet/ReplicationController selector."""
        merged: dict[str, str] = {}
        for sel in self.services.get(p.namespace, {}).values():
            if all(p.labels.get(k) == v for k, v in sel.items()):
                merged.update(sel)
        reqs = [Requirement(k, "=", (v,)) for k, v in merged.items()]
        if p.owner is not None:
            kind, name, _uid = p.owner
            if kind in ("ReplicaSet", "StatefulSet", "ReplicationController"):
                s = self.owners.get((kind, p.namespace, name))
                if s is not None:
                    reqs.extend(s.requirements)
        if not reqs:
            return None
        combined = Selector(reqs)
        return combined, f"default|{combined}".encode()

    # ---- the loop ------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await self._binds.acquire()
            try:
                qp = await self.sq.pop()
            except BaseException:
                self._binds.release()
                raise
            t0 = time.thread_time()
            bound = False
            try:
                bound = self.schedule_one(qp)
            except Exception:  # noqa: BLE001 - one pod's failure must not stop the loop
                log.exception("scheduling %s failed", qp.pod.key)
                self.sq.requeue_error(qp)
            finally:
                self.busy_seconds += time.thread_time() - t0
                if not bound:
                    self._binds.release()
            await asyncio.sleep(0)

    def schedule_one(self, qp: QueuedPod) -> bool:
        """Decide for one pod; True when a binding task was started."""
        p = qp.pod
        self._resolve_priority(p)
        try:
            node, _evaluated, _feasible = self.algo.schedule(p)
        except FitError as fe:
            self._unschedulable(qp, fe)
            return False
        self.cache.assume(p, node)
        self.sq.done_scheduled(p.uid)
        self.algo.unnominate(p.uid)
        self._spawn(self._bind(qp, node), release=True)
        return True

    def _spawn(self, coro: Any, *, release: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._side.add(task)

        def finished(t: asyncio.Task[Any]) -> None:
            self._side.discard(t)
            if release:
                self._binds.release()

        task.add_done_callback(finished)

    async def _bind(self, qp: QueuedPod, node: str) -> None:
        p = qp.pod
        try:
            await self.client.bind(namespace=p.namespace, pod=p.name, node=node)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure: forget and retry
            self.stats["bind_errors"] += 1
            self.cache.forget(p.uid)
            if isinstance(e, NotFound):
                return
            if isinstance(e, Conflict) and "already assigned" in str(e):
                return
            log.info("binding %s to %s failed: %s", p.key, node, e)
            self.recorder.warning(p.ref, "FailedScheduling", f"Binding rejected: {e}")
            self.sq.requeue_error(qp)
            return
        self.stats["scheduled"] += 1
        self.cache.finish_binding(p.uid)
        self.recorder.normal(
            p.ref, "Scheduled", f"Successfully assigned {p.namespace}/{p.name} to {node}"
        )

    # ---- failures and preemption ------------------------------------------------------------------

    def _unschedulable(self, qp: QueuedPod, fe: FitError) -> None:
        p = qp.pod
        self.stats["unschedulable"] += 1
        nominated: str | None = None
        clear_nomination = False
        if fe.statuses:
            out = self.preemptor.preempt(p, fe, pdbs=list(self.pdbs.values()))
            fe.post_filter = f"preemption: {out.message}" if out.message else ""
            if out.node is not None:
                nominated = out.node
                self.stats["preemptions"] += 1
                self._preempt(p, out.node, out.victims)
            elif p.nominated and out.message != "":
                clear_nomination = True
                self.algo.unnominate(p.uid)
        msg = fe.message()
        self.recorder.warning(p.ref, "FailedScheduling", msg)
        want = ("False", "Unschedulable", msg)
        if p.cond != want or nominated is not None or clear_nomination:
            p.cond = want
            self._spawn(self._patch_status(p, msg, nominated, clear=clear_nomination))
        self.sq.requeue_unschedulable(qp, plugins=fe.plugins)

    async def _patch_status(
        self, p: PodInfo, msg: str, nominated: str | None, *, clear: bool
    ) -> None:
        status: Obj = {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": msg,
                    "lastProbeTime": None,
                    "lastTransitionTime": self.ctx.now_rfc3339(),
                }
            ]
        }
        if nominated is not None:
            status["nominatedNodeName"] = nominated
        elif clear:
            status["nominatedNodeName"] = None
        body = {"metadata": {"uid": p.uid}, "status": status}
        with contextlib.suppress(NotFound, Conflict):
            await self.client.patch(
                PODS, p.name, body, namespace=p.namespace, patch_type="strategic",
                subresource="status",
            )  # fmt: skip

    def _preempt(self, p: PodInfo, node: str, victims: list[PodInfo]) -> None:
        self.algo.nominate(p, node)
        # lower-priority pods nominated to that node lose their claim
        for uid, (n, q) in list(self.algo.nominated.items()):
            if n == node and q.priority < p.priority:
                self.algo.unnominate(uid)
        for v in victims:
            if not v.deleting:
                self._spawn(self._evict(v, p, node))

    async def _evict(self, v: PodInfo, p: PodInfo, node: str) -> None:
        cond = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": f"{self.scheduler_name}: preempting to accommodate a higher priority pod",
            "lastTransitionTime": self.ctx.now_rfc3339(),
        }
        try:
            await self.client.patch(
                PODS, v.name, {"metadata": {"uid": v.uid}, "status": {"conditions": [cond]}},
                namespace=v.namespace, patch_type="strategic", subresource="status",
            )  # fmt: skip
            await self.client.delete(PODS, v.name, namespace=v.namespace, preconditions_uid=v.uid)
        except (NotFound, Conflict):
            return
        self.recorder.normal(v.ref, "Preempted", f"Preempted by pod {p.uid} on node {node}")
