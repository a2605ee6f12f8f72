"""Node lifecycle (kube-controller-manager's node-lifecycle-controller), taint-based
eviction (taint-eviction-controller) and pod garbage collection (pod-garbage-collector).

Node health (``NodeLifecycleController``)
  Every ``node_monitor_period`` each Node is looked at.  Its *probe time* is the local
  monotonic time at which this controller last saw its Lease ``renewTime`` (namespace
  ``kube-node-lease``) or its Ready heartbeat change — upstream's "observed" times, so
  clock skew between kubelet and controller does not matter.  When the probe is older
  than ``node_monitor_grace_period`` the kubelet conditions become Unknown
  (``NodeStatusUnknown``, "Kubelet stopped posting node status."), a ``NodeNotReady``
  event is recorded and the node's pods are marked Ready=False (MarkPodsNotReady).
  Taints follow the conditions: NoSchedule taints by condition (not-ready, unreachable,
  memory/disk/pid-pressure, network-unavailable, unschedulable), and the NoExecute
  ``not-ready``/``unreachable`` taint (with ``timeAdded``).  Adding a NoExecute taint is
  rate limited per zone (``pod_eviction_rate`` per second; a zone with at least
  ``unhealthy_zone_threshold`` of its nodes not Ready, and more than two, is partially
  disrupted: 0.01/s if it has more than 50 nodes, else none; when every zone is fully
  disrupted no node is tainted and existing NoExecute taints are lifted, as upstream's
  "master disruption" mode).  Taints are removed as soon as the node is Ready again.

Taint eviction (``TaintEvictionController``)
  Pods on a node with NoExecute taints: a pod not tolerating one of them is deleted at
  once; tolerating ones after the smallest ``tolerationSeconds`` of the matching
  tolerations, counted from the taint's ``timeAdded`` (a toleration without
  ``tolerationSeconds`` never expires — DaemonSet pods carry those).  A pod is given the
  ``DisruptionTarget`` condition, then deleted with its own grace period;
  ``TaintManagerEviction`` events mark and cancel.

Pod GC (``PodGCController``)
  Pods bound to a Node that no longer exists (seen missing for a quarantine of
  min(40 s, grace period) and confirmed with a GET) are deleted at once; unscheduled
  pods being deleted are finished; terminated pods beyond 12,500 are deleted oldest
  first.

Upstream settings read from ``--kube-controller-manager-arg`` besides the timings:
``terminated-pod-gc-threshold``, ``secondary-node-eviction-rate``,
``large-cluster-size-threshold`` (see ``cm_arg``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from k3py.client import Conflict, NotFound, by_field, key_of, split_key
from k3py.client.resources import LEASES, NODES, PODS
from k3py.server.controllers.base import (
    Controller,
    every,
    get_condition,
    parse_time,
    pod_is_ready,
    set_condition,
)

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.nodelifecycle")

NODE_INDEX = "spec.nodeName"
LEASE_NAMESPACE = "kube-node-lease"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
CONDITION_TAINTS = {
    "MemoryPressure": "node.kubernetes.io/memory-pressure",
    "DiskPressure": "node.kubernetes.io/disk-pressure",
    "PIDPressure": "node.kubernetes.io/pid-pressure",
    "NetworkUnavailable": "node.kubernetes.io/network-unavailable",
}
KUBELET_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
SECONDARY_EVICTION_RATE = 0.01
LARGE_CLUSTER_THRESHOLD = 50
TERMINATED_POD_THRESHOLD = 12_500
ORPHAN_QUARANTINE = 40.0


def cm_arg(config: Any, key: str, default: float) -> float:
    """A ``--kube-controller-manager-arg key=value`` that is not a timing (upstream's flag
    names: terminated-pod-gc-threshold, secondary-node-eviction-rate,
    large-cluster-size-threshold), or ``default``."""
    if config is None or not hasattr(config, "component_args"):
        return default
    value = config.component_args("kube-controller-manager").get(key)
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


# ---- taints and tolerations ------------------------------------------------------------


def tolerates(tol: Obj, taint: Obj) -> bool:
    """Upstream's ``Toleration.ToleratesTaint``."""
    effect = tol.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = tol.get("key") or ""
    if key and key != taint.get("key"):
        return False
    op = tol.get("operator") or "Equal"
    if op == "Exists":
        return True
    if op == "Equal":
        return bool(key) and (tol.get("value") or "") == (taint.get("value") or "")
    return False


def no_execute_taints(node: Obj) -> list[Obj]:
    return [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]  # fmt: skip


def eviction_deadline(pod: Obj, taints: list[Obj], *, observed: float) -> float | None:
    """Seconds since the epoch at which ``pod`` is to be evicted for ``taints``: 0.0 for
    at once, None for never."""
    tols = (pod.get("spec") or {}).get("tolerations") or []
    deadline: float | None = None
    for taint in taints:
        matching = [t for t in tols if tolerates(t, taint)]
        if not matching:
            return 0.0
        secs = [t.get("tolerationSeconds") for t in matching]
        bounded = [float(s) for s in secs if isinstance(s, int | float)]
        if len(bounded) < len(secs):
            continue  # one toleration without a limit: this taint is tolerated forever
        added = parse_time(taint.get("timeAdded")) or observed
        d = added + max(0.0, min(bounded))
        deadline = d if deadline is None else min(deadline, d)
    return deadline


def zone_of(node: Obj) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    region = labels.get(REGION_LABEL, "")
    zone = labels.get(ZONE_LABEL, "")
    return f"{region}:\x00:{zone}" if region or zone else ""


def _cond_status(node: Obj, ctype: str) -> str:
    """The condition's status; "" when the kubelet never posted it (no taint for that: the
    node is marked Unknown only once its grace period has passed)."""
    c = get_condition(node.get("status"), ctype)
    return str(c.get("status") or "Unknown") if c else ""


# ---- node health -------------------------------------------------------------------------


@dataclass
class _Health:
    probe: float  # monotonic time of the last observed heartbeat or lease renewal
    heartbeat: str = ""
    renew: str = ""


class NodeLifecycleController(Controller):
    name = "node-lifecycle"
    workers = 4

    def setup(self) -> None:
        self.nodes = self.ctx.informer(NODES)
        self.leases = self.ctx.informer(LEASES, namespace=LEASE_NAMESPACE)
        self.pods = self.ctx.informer(PODS, indexers={NODE_INDEX: by_field("spec", "nodeName")})
        self.health: dict[str, _Health] = {}
        self.summary: dict[str, tuple[str, str]] = {}  # node -> (zone, Ready status posted)
        self.zone_next: dict[str, float] = {}  # zone -> monotonic time of the next taint allowed
        self.zone_rate: dict[str, float] = {}
        self.all_disrupted = False
        cfg = self.ctx.config
        self.secondary_rate = cm_arg(cfg, "secondary-node-eviction-rate", SECONDARY_EVICTION_RATE)
        self.large_cluster = int(
            cm_arg(cfg, "large-cluster-size-threshold", LARGE_CLUSTER_THRESHOLD)
        )
        self.nodes.add_handler(
            on_add=self._on_node, on_update=lambda _o, n: self._on_node(n),
            on_delete=self._on_node_delete,
        )  # fmt: skip
        self.leases.add_handler(
            on_add=self._on_lease, on_update=lambda _o, lease: self._on_lease(lease)
        )
        self.pods.add_handler(
            on_add=self._on_pod, on_update=lambda _o, p: self._on_pod(p), readonly=True
        )

    async def started(self) -> None:
        now = time.monotonic()
        for node in self.nodes.list():
            self._observe(node, now=now)
        for lease in self.leases.list():
            self._on_lease(lease)
        for h in self.health.values():
            h.probe = now  # a new leader gives every node a full grace period
        self._zones()
        for key in self.nodes.cache.keys():
            self.queue.add(key)

    def background(self) -> list[asyncio.Task[None]]:
        return [every(self.ctx.timings.node_monitor_period, self._monitor, name="node-monitor")]

    # -- observations (from informer handlers: no decoding in the periodic pass) --
    def _observe(self, node: Obj, *, now: float) -> None:
        name = node["metadata"]["name"]
        ready = get_condition(node.get("status"), "Ready") or {}
        self.summary[name] = (zone_of(node), str(ready.get("status") or "Unknown"))
        hb = str(ready.get("lastHeartbeatTime") or "")
        h = self.health.get(name)
        if h is None:
            self.health[name] = _Health(probe=now, heartbeat=hb)
        elif hb and hb != h.heartbeat:
            h.heartbeat = hb
            h.probe = now

    def _on_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        if name not in self.summary:
            self.recorder.normal(node, "RegisteredNode", f"Node {name} event: Registered Node {name} in Controller")  # fmt: skip
        self._observe(node, now=time.monotonic())
        self.enqueue(node)

    def _on_node_delete(self, node: Obj) -> None:
        self.health.pop(node["metadata"]["name"], None)
        self.summary.pop(node["metadata"]["name"], None)

    def _on_lease(self, lease: Obj) -> None:
        name = lease["metadata"]["name"]
        renew = str((lease.get("spec") or {}).get("renewTime") or "")
        h = self.health.get(name)
        if h is None:
            self.health[name] = _Health(probe=time.monotonic(), renew=renew)
        elif renew and renew != h.renew:
            h.renew = renew
            h.probe = time.monotonic()

    def _on_pod(self, pod: Obj) -> None:
        """A Ready pod on a node that is not Ready: MarkPodsNotReady through the node."""
        node = (pod.get("spec") or {}).get("nodeName")
        summary = self.summary.get(node) if node else None
        if summary is not None and summary[1] != "True" and pod_is_ready(pod):
            self.queue.add(node)  # type: ignore[arg-type]

    # -- the periodic pass --
    def _monitor(self) -> None:
        was = self.all_disrupted
        self._zones()
        if was != self.all_disrupted:
            for key in self.nodes.cache.keys():
                self.queue.add(key)
            return
        for name, (_zone, ready) in self.summary.items():
            if ready != "Unknown" and self._stale(name):
                self.queue.add(name)

    def _zones(self) -> None:
        """Per-zone disruption state → the rate at which NoExecute taints may be added."""
        ready: dict[str, int] = {}
        not_ready: dict[str, int] = {}
        for name, (z, status) in self.summary.items():
            ready.setdefault(z, 0)
            not_ready.setdefault(z, 0)
            if status == "True" and not self._stale(name):
                ready[z] += 1
            else:
                not_ready[z] += 1
        rate = self.ctx.timings.pod_eviction_rate
        threshold = self.ctx.timings.unhealthy_zone_threshold
        states = {}
        for z in ready:
            r, nr = ready[z], not_ready[z]
            if r == 0 and nr > 0:
                states[z] = "FullDisruption"
            elif nr > 2 and nr / (r + nr) >= threshold:
                states[z] = "PartialDisruption"
            else:
                states[z] = "Normal"
        self.all_disrupted = bool(states) and all(s == "FullDisruption" for s in states.values())
        for z, st in states.items():
            if st == "PartialDisruption":
                size = ready[z] + not_ready[z]
                self.zone_rate[z] = (
                    SECONDARY_EVICTION_RATE if size > LARGE_CLUSTER_THRESHOLD else 0.0
                )
            else:
                self.zone_rate[z] = rate

    def _stale(self, name: str) -> bool:
        h = self.health.get(name)
        if h is None:
            return False
        return time.monotonic() - h.probe > self.ctx.timings.node_monitor_grace_period

    def _may_taint(self, zone: str) -> float:
        """0 when a NoExecute taint may be added in ``zone`` now (and takes the token);
        else seconds to wait."""
        rate = self.zone_rate.get(zone, self.ctx.timings.pod_eviction_rate)
        if rate <= 0:
            return self.ctx.timings.node_monitor_period
        now = time.monotonic()
        nxt = self.zone_next.get(zone, 0.0)
        if now < nxt:
            return nxt - now
        self.zone_next[zone] = now + 1.0 / rate
        return 0.0

    # -- one node --
    async def reconcile(self, key: str) -> float | None:
        node = self.nodes.get(key)
        if node is None:
            return None
        if key not in self.health:
            self._observe(node, now=time.monotonic())
        if self._stale(key) and await self._mark_unknown(node):
            return None  # our status write comes back through the informer
        ready = _cond_status(node, "Ready")
        if ready in ("False", "Unknown"):
            await self._mark_pods_not_ready(node)
        return await self._taint(node, ready=ready)

    async def _mark_unknown(self, node: Obj) -> bool:
        status = node.setdefault("status", {})
        now = self.ctx.now_rfc3339()
        changed = False
        was_ready = _cond_status(node, "Ready") == "True"
        for ctype in KUBELET_CONDITIONS:
            prev = get_condition(status, ctype)
            if prev is None:
                cond = {"type": ctype, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.",
                        "lastHeartbeatTime": now}  # fmt: skip
            elif prev.get("status") != "Unknown":
                cond = {"type": ctype, "status": "Unknown", "reason": "NodeStatusUnknown",
                        "message": "Kubelet stopped posting node status."}  # fmt: skip
            else:
                continue
            changed |= set_condition(status, cond, now=now)
        if not changed:
            return False
        await self.client.update_status(NODES, node)
        if was_ready:
            name = node["metadata"]["name"]
            self.recorder.normal(node, "NodeNotReady", f"Node {name} status is now: NodeNotReady")
            log.info("node %s: kubelet stopped posting status; marked Unknown", name)
        return True

    async def _mark_pods_not_ready(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        now = self.ctx.now_rfc3339()
        for pod in self.pods.by_index(NODE_INDEX, name):
            status = pod.get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed"):
                continue
            c = get_condition(status, "Ready")
            if c is None or c.get("status") != "True":
                continue
            set_condition(status, {"type": "Ready", "status": "False"}, now=now)
            try:
                await self.client.update_status(PODS, pod)
            except (Conflict, NotFound):
                continue
            self.recorder.warning(pod, "NodeNotReady", "Node is not ready")

    async def _taint(self, node: Obj, *, ready: str) -> float | None:
        spec = node.setdefault("spec", {})
        taints: list[Obj] = [dict(t) for t in spec.get("taints") or []]
        want_ns = set()
        if ready == "False":
            want_ns.add(TAINT_NOT_READY)
        elif ready == "Unknown":
            want_ns.add(TAINT_UNREACHABLE)
        for ctype, tkey in CONDITION_TAINTS.items():
            if _cond_status(node, ctype) == "True":
                want_ns.add(tkey)
        if spec.get("unschedulable"):
            want_ns.add(TAINT_UNSCHEDULABLE)
        managed_ns = {TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE, *CONDITION_TAINTS.values()}  # fmt: skip
        stale = [
            t for t in taints
            if t.get("effect") == "NoSchedule" and t.get("key") in managed_ns
            and t.get("key") not in want_ns
        ]  # fmt: skip
        new = [t for t in taints if t not in stale]
        have_ns = {t.get("key") for t in new if t.get("effect") == "NoSchedule"}
        new.extend({"key": k, "effect": "NoSchedule"} for k in sorted(want_ns - have_ns))
        want_ne = {"False": TAINT_NOT_READY, "Unknown": TAINT_UNREACHABLE}.get(ready)
        if self.all_disrupted:
            want_ne = None
        ne_keys = {TAINT_NOT_READY, TAINT_UNREACHABLE}
        have_ne = [t for t in new if t.get("effect") == "NoExecute" and t.get("key") in ne_keys]
        again: float | None = None
        if want_ne is None:
            new = [t for t in new if t not in have_ne]
        elif not any(t.get("key") == want_ne for t in have_ne):
            fresh = {"key": want_ne, "effect": "NoExecute", "timeAdded": self.ctx.now_rfc3339()}
            if have_ne:  # swap not-ready <-> unreachable: no rate limit, as upstream
                new = [t for t in new if t not in have_ne] + [fresh]
            else:
                wait = self._may_taint(zone_of(node))
                if wait <= 0:
                    new.append(fresh)
                else:
                    again = wait
        else:
            new = [t for t in new if not (t in have_ne and t.get("key") != want_ne)]
        if new != taints:
            if new:
                spec["taints"] = new
            else:
                spec.pop("taints", None)
            await self.client.update(NODES, node)
        return again


# ---- taint-based eviction ----------------------------------------------------------------


class TaintEvictionController(Controller):
    name = "taint-eviction-controller"
    workers = 4

    def setup(self) -> None:
        self.nodes = self.ctx.informer(NODES)
        self.pods = self.ctx.informer(PODS, indexers={NODE_INDEX: by_field("spec", "nodeName")})
        self.marked: set[str] = set()  # pod keys with a pending (announced) eviction
        self.first_seen: dict[tuple[str, str], float] = {}  # (node, taints) -> wall time
        self.tainted: set[str] = set()  # nodes with NoExecute taints
        self.nodes.add_handler(
            on_add=self._on_node,
            on_update=self._on_node_update,
            on_delete=lambda n: self.tainted.discard(n["metadata"]["name"]),
        )
        self.pods.add_handler(
            on_add=self._on_pod,
            on_update=lambda _o, p: self._on_pod(p),
            on_delete=lambda p: self.marked.discard(key_of(p)),
            readonly=True,
        )

    async def started(self) -> None:
        for node in self.nodes.list():
            if no_execute_taints(node):
                self._enqueue_node_pods(node["metadata"]["name"])

    def _on_node(self, node: Obj) -> None:
        if no_execute_taints(node):
            self.tainted.add(node["metadata"]["name"])
            self._enqueue_node_pods(node["metadata"]["name"])

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        name = new["metadata"]["name"]
        taints = no_execute_taints(new)
        if taints:
            self.tainted.add(name)
        else:
            self.tainted.discard(name)
        if no_execute_taints(old) != taints:
            self._enqueue_node_pods(name)

    def _on_pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and (node in self.tainted or key_of(pod) in self.marked):
            self.enqueue(pod)

    def _enqueue_node_pods(self, node: str) -> None:
        for pod in self.pods.by_index(NODE_INDEX, node):
            self.enqueue(pod)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        pod = self.pods.get(name, namespace=ns)
        if pod is None:
            self.marked.discard(key)
            return None
        if pod["metadata"].get("deletionTimestamp"):
            self.marked.discard(key)
            return None
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        node = self.nodes.get(node_name) if node_name else None
        taints = no_execute_taints(node) if node else []
        now = self.ctx.clock()
        deadline = None
        if taints:
            if len(self.first_seen) > 10_000:
                self.first_seen.clear()
            observed = self.first_seen.setdefault((node_name, str(taints)), now)
            deadline = eviction_deadline(pod, taints, observed=observed)
        if deadline is None:
            if key in self.marked:
                self.marked.discard(key)
                self.recorder.normal(pod, "TaintManagerEviction", f"Cancelling deletion of Pod {key}")  # fmt: skip
            return None
        if deadline > now:
            if key not in self.marked:
                self.marked.add(key)
            return deadline - now + 0.01
        await self._evict(pod, key=key)
        return None

    async def _evict(self, pod: Obj, *, key: str) -> None:
        self.recorder.normal(pod, "TaintManagerEviction", f"Marking for deletion Pod {key}")
        status = pod.setdefault("status", {})
        cond = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint"}  # fmt: skip
        meta = pod["metadata"]
        if set_condition(status, cond, now=self.ctx.now_rfc3339()):
            try:
                await self.client.update_status(PODS, pod)
            except Conflict:
                pass
            except NotFound:
                return
        try:
            await self.client.delete(
                PODS, meta["name"], namespace=meta.get("namespace", ""),
                preconditions_uid=meta.get("uid"),
            )  # fmt: skip
        except (NotFound, Conflict):
            pass
        self.marked.discard(key)
        log.info("taint eviction: deleted pod %s", key)


# ---- pod garbage collection -----------------------------------------------------------------


class PodGCController(Controller):
    name = "pod-garbage-collector"
    workers = 1

    def setup(self) -> None:
        self.nodes = self.ctx.informer(NODES)
        self.pods = self.ctx.informer(PODS, indexers={NODE_INDEX: by_field("spec", "nodeName")})
        self.terminated_threshold = int(
            cm_arg(self.ctx.config, "terminated-pod-gc-threshold", TERMINATED_POD_THRESHOLD)
        )
        self.missing: dict[str, float] = {}  # node name -> monotonic time first seen missing
        self.terminated: set[str] = set()  # keys of Succeeded/Failed pods not being deleted
        self.unscheduled_deleting: set[str] = set()
        self.nodes.add_handler(on_delete=lambda n: self.queue.add("gc"))
        self.pods.add_handler(
            on_add=self._track,
            on_update=lambda _o, p: self._track(p),
            on_delete=self._untrack,
            readonly=True,
        )

    def _track(self, pod: Obj) -> None:
        key = key_of(pod)
        deleting = bool(pod["metadata"].get("deletionTimestamp"))
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and not deleting:
            self.terminated.add(key)
        else:
            self.terminated.discard(key)
        if deleting and not (pod.get("spec") or {}).get("nodeName"):
            self.unscheduled_deleting.add(key)
            self.queue.add("gc")
        else:
            self.unscheduled_deleting.discard(key)

    def _untrack(self, pod: Obj) -> None:
        key = key_of(pod)
        self.terminated.discard(key)
        self.unscheduled_deleting.discard(key)

    async def started(self) -> None:
        self.queue.add("gc")

    def background(self) -> list[asyncio.Task[None]]:
        period = min(20.0, max(0.5, self.ctx.timings.node_monitor_period * 4))
        return [every(period, lambda: self.queue.add("gc"), name="pod-gc")]

    @property
    def quarantine(self) -> float:
        return min(ORPHAN_QUARANTINE, self.ctx.timings.node_monitor_grace_period)

    async def reconcile(self, key: str) -> float | None:
        again = await self._orphans()
        await self._unscheduled_terminating()
        await self._terminated()
        return again

    async def _orphans(self) -> float | None:
        now = time.monotonic()
        known = set(self.nodes.cache.keys())
        bound = self.pods.cache.index_values(NODE_INDEX)
        missing = {n for n in bound if n and n not in known}
        self.missing = {n: self.missing.get(n, now) for n in missing}
        again: float | None = None
        for name, since in self.missing.items():
            left = since + self.quarantine - now
            if left > 0:
                again = left if again is None else min(again, left)
                continue
            try:
                await self.client.get(NODES, name)
                continue  # it exists after all (a stale cache)
            except NotFound:
                pass
            for pod in self.pods.by_index(NODE_INDEX, name):
                await self._force_delete(pod, reason="DeletionByPodGC",
                                         message="PodGC: node no longer exists")  # fmt: skip
        return None if again is None else again + 0.05

    async def _unscheduled_terminating(self) -> None:
        for key in list(self.unscheduled_deleting):
            ns, name = split_key(key)
            pod = self.pods.get(name, namespace=ns)
            if pod is not None:
                await self._force_delete(pod, reason="", message="")

    async def _terminated(self) -> None:
        excess = len(self.terminated) - self.terminated_threshold
        if excess <= 0 or self.terminated_threshold <= 0:  # upstream: 0 disables it
            return
        done = []
        for key in self.terminated:
            ns, name = split_key(key)
            pod = self.pods.get(name, namespace=ns)
            if pod is not None:
                done.append(pod)
        done.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        for pod in done[:excess]:
            await self._force_delete(pod, reason="", message="")

    async def _force_delete(self, pod: Obj, *, reason: str, message: str) -> None:
        meta = pod["metadata"]
        status = pod.setdefault("status", {})
        if reason and status.get("phase") not in ("Succeeded", "Failed"):
            cond = {
                "type": "DisruptionTarget",
                "status": "True",
                "reason": reason,
                "message": message,
            }
            set_condition(status, cond, now=self.ctx.now_rfc3339())
            status["phase"] = "Failed"
            try:
                await self.client.update_status(PODS, pod)
            except (Conflict, NotFound):
                pass
        try:
            await self.client.delete(
                PODS, meta["name"], namespace=meta.get("namespace", ""),
                grace_period_seconds=0, preconditions_uid=meta.get("uid"),
            )  # fmt: skip
            log.info("pod GC: deleted %s/%s", meta.get("namespace"), meta["name"])
        except (NotFound, Conflict):
            pass


CONTROLLERS = [NodeLifecycleController, TaintEvictionController, PodGCController]

__all__ = [
    "CONTROLLERS",
    "NodeLifecycleController",
    "PodGCController",
    "TaintEvictionController",
    "eviction_deadline",
    "no_execute_taints",
    "tolerates",
    "zone_of",
]
