"""The scheduling queue (upstream's PriorityQueue): active, back-off and unschedulable.

* **active**: a heap by priority (highest first), then by the time the pod entered the
  queue (oldest first).  ``pop`` hands out one pod at a time; it is then *in flight*
  until ``done``.
* **back-off**: pods that failed recently wait ``initial * 2**(attempts-1)`` (capped at
  ``max``) seconds, then move to active.
* **unschedulable**: pods that fit nowhere wait for a cluster change that may help
  (``move_all``: node added or changed, pod deleted...), or at most ``flush`` seconds.
  A pod whose attempt started before the last ``move_all`` goes to back-off instead (the
  change may have helped it: upstream's moveRequestCycle).

Entries are keyed by pod UID.  Heaps use lazy deletion: each entry carries a sequence
number and only the one matching ``QueuedPod.seq`` counts.  The queue is pure (a clock
is injected) apart from ``wait``, which sleeps until a pod may be ready.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable

from k3py.server.scheduler.podinfo import PodInfo

ACTIVE, BACKOFF, UNSCHEDULABLE, IN_FLIGHT = "active", "backoff", "unschedulable", "inflight"


class QueuedPod:
    __slots__ = (
        "pod", "added", "attempts", "backoff_until", "where", "seq", "cycle",
        "unschedulable_since", "plugins", "updated",
    )  # fmt: skip

    def __init__(self, pod: PodInfo, *, now: float) -> None:
        self.pod = pod
        self.added = now  # enters the active queue's time order
        self.attempts = 0
        self.backoff_until = 0.0
        self.where = ""
        self.seq = 0
        self.cycle = 0  # scheduling cycle of the last pop
        self.unschedulable_since = 0.0
        self.plugins: frozenset[str] = frozenset()  # filters that rejected it last time
        self.updated = False  # the pod changed while in flight

    def __repr__(self) -> str:
        return f"QueuedPod({self.pod.key}, {self.where}, attempts={self.attempts})"


class SchedulingQueue:
    def __init__(
        self,
        *,
        backoff_initial: float = 1.0,
        backoff_max: float = 10.0,
        unschedulable_flush: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.unschedulable_flush = unschedulable_flush
        self.clock = clock
        self.pods: dict[str, QueuedPod] = {}
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self.unschedulable: dict[str, QueuedPod] = {}
        self.rejected_by: dict[str, int] = {}  # plugin -> unschedulable pods it rejected
        self._seq = itertools.count(1)
        self.cycle = 0  # scheduling cycles started
        self.move_cycle = -1  # cycle at the last move_all
        self._wake: asyncio.Event | None = None

    # ---- sizes -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.pods)

    def counts(self) -> dict[str, int]:
        out = {ACTIVE: 0, BACKOFF: 0, UNSCHEDULABLE: 0, IN_FLIGHT: 0}
        for qp in self.pods.values():
            out[qp.where] += 1
        return out

    def get(self, uid: str) -> QueuedPod | None:
        return self.pods.get(uid)

    # ---- moving between queues -----------------------------------------------------

    def _to_active(self, qp: QueuedPod) -> None:
        self._leave_unschedulable(qp.pod.uid)
        qp.where = ACTIVE
        qp.seq = next(self._seq)
        heapq.heappush(self._active, (-qp.pod.priority, qp.added, qp.seq, qp.pod.uid))
        if self._wake is not None:
            self._wake.set()

    def _to_backoff(self, qp: QueuedPod) -> None:
        self._leave_unschedulable(qp.pod.uid)
        qp.where = BACKOFF
        qp.seq = next(self._seq)
        heapq.heappush(self._backoff, (qp.backoff_until, qp.seq, qp.pod.uid))
        if self._wake is not None:
            self._wake.set()

    def _to_unschedulable(self, qp: QueuedPod) -> None:
        self._leave_unschedulable(qp.pod.uid)  # re-inserted last: the dict stays in time order
        qp.where = UNSCHEDULABLE
        qp.seq = next(self._seq)
        qp.unschedulable_since = self.clock()
        self.unschedulable[qp.pod.uid] = qp
        for name in qp.plugins:
            self.rejected_by[name] = self.rejected_by.get(name, 0) + 1

    def _leave_unschedulable(self, uid: str) -> None:
        qp = self.unschedulable.pop(uid, None)
        if qp is not None:
            for name in qp.plugins:
                n = self.rejected_by.get(name, 0) - 1
                if n > 0:
                    self.rejected_by[name] = n
                else:
                    self.rejected_by.pop(name, None)

    def _backoff_or_active(self, qp: QueuedPod) -> None:
        if qp.backoff_until > self.clock():
            self._to_backoff(qp)
        else:
            self._to_active(qp)

    def backoff_duration(self, attempts: int) -> float:
        d = self.backoff_initial
        for _ in range(1, attempts):
            d *= 2
            if d > self.backoff_max:
                return self.backoff_max
        return min(d, self.backoff_max)

    # ---- informer side ----------------------------------------------------------------

    def add(self, pod: PodInfo) -> None:
        """A new pending pod, or a newer version of one (``update``)."""
        qp = self.pods.get(pod.uid)
        if qp is None:
            qp = self.pods[pod.uid] = QueuedPod(pod, now=self.clock())
            self._to_active(qp)
            return
        self.update(pod)

    def update(self, pod: PodInfo) -> None:
        qp = self.pods.get(pod.uid)
        if qp is None:
            self.add(pod)
            return
        old, qp.pod = qp.pod, pod
        if qp.where == IN_FLIGHT:
            qp.updated = True
        elif qp.where == ACTIVE:
            if old.priority != pod.priority:
                self._to_active(qp)  # re-sorted; the old heap entry is stale now
        elif qp.where == BACKOFF:
            pass
        elif qp.where == UNSCHEDULABLE and old.static_sig + _sched_bits(old) != (
            pod.static_sig + _sched_bits(pod)
        ):
            self._backoff_or_active(qp)  # its scheduling constraints changed

    def delete(self, uid: str) -> None:
        qp = self.pods.pop(uid, None)
        if qp is not None:
            self._leave_unschedulable(uid)
            qp.where = ""
            qp.seq = 0

    # ---- scheduler side -------------------------------------------------------------------

    def pop_ready(self) -> QueuedPod | None:
        """The best active pod (after moving due back-offs), or None."""
        self._flush_backoff()
        while self._active:
            _, _, seq, uid = heapq.heappop(self._active)
            qp = self.pods.get(uid)
            if qp is None or qp.seq != seq or qp.where != ACTIVE:
                continue
            qp.where = IN_FLIGHT
            qp.attempts += 1
            qp.updated = False
            self.cycle += 1
            qp.cycle = self.cycle
            return qp
        return None

    async def pop(self) -> QueuedPod:
        """Wait for a pod to schedule."""
        if self._wake is None:
            self._wake = asyncio.Event()
        while True:
            qp = self.pop_ready()
            if qp is not None:
                return qp
            self._wake.clear()
            timeout = self._next_due()
            try:
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    def _next_due(self) -> float | None:
        now = self.clock()
        times: list[float] = []
        while self._backoff:
            due, seq, uid = self._backoff[0]
            qp = self.pods.get(uid)
            if qp is None or qp.seq != seq or qp.where != BACKOFF:
                heapq.heappop(self._backoff)
                continue
            times.append(due - now)
            break
        if self.unschedulable:
            oldest = next(iter(self.unschedulable.values())).unschedulable_since
            times.append(oldest + self.unschedulable_flush - now)
        if not times:
            return None
        return max(0.001, min(times))

    def _flush_backoff(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, uid = heapq.heappop(self._backoff)
            qp = self.pods.get(uid)
            if qp is not None and qp.seq == seq and qp.where == BACKOFF:
                self._to_active(qp)
        # the dict keeps insertion order: the first entry waited longest
        while self.unschedulable:
            qp = next(iter(self.unschedulable.values()))
            if now - qp.unschedulable_since < self.unschedulable_flush:
                break
            self._backoff_or_active(qp)

    def done_scheduled(self, uid: str) -> None:
        """The pod was assumed onto a node: it leaves the queue."""
        self.delete(uid)

    def requeue_unschedulable(self, qp: QueuedPod, *, plugins: frozenset[str]) -> None:
        """The pod fits nowhere: unschedulable, or back-off when the cluster changed
        during its attempt (or the pod itself did)."""
        if self.pods.get(qp.pod.uid) is not qp:
            return  # deleted meanwhile
        qp.plugins = plugins
        qp.backoff_until = self.clock() + self.backoff_duration(qp.attempts)
        if qp.updated or qp.cycle <= self.move_cycle:
            self._backoff_or_active(qp)
        else:
            self._to_unschedulable(qp)

    def requeue_error(self, qp: QueuedPod) -> None:
        """Scheduling or binding failed for another reason: back-off."""
        if self.pods.get(qp.pod.uid) is not qp:
            self.pods[qp.pod.uid] = qp
        qp.backoff_until = self.clock() + self.backoff_duration(max(qp.attempts, 1))
        self._to_backoff(qp)

    def move_all(
        self,
        *,
        event: str,
        pred: Callable[[QueuedPod], bool] | None = None,
        plugins: frozenset[str] | None = None,
    ) -> int:
        """A cluster change that may make unschedulable pods fit: move them to back-off
        or active.  ``plugins`` narrows the move to pods some of these plugins rejected
        (skipped at once when there are none), ``pred`` narrows further."""
        self.move_cycle = self.cycle
        if plugins is not None:
            if not any(name in self.rejected_by for name in plugins):
                return 0
            inner = pred

            def pred(qp: QueuedPod) -> bool:
                return bool(qp.plugins & plugins) and (inner is None or inner(qp))

        moved = 0
        for qp in list(self.unschedulable.values()):
            if pred is None or pred(qp):
                self._backoff_or_active(qp)
                moved += 1
        return moved


def _sched_bits(p: PodInfo) -> bytes:
    return f"{p.priority}|{p.cpu}|{p.mem}|{p.eph}|{sorted(p.scalar.items())}|{p.ports}|{sorted(p.labels.items())}".encode()
