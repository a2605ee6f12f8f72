"""Simulated nodes: a hollow kubelet (like kwok) for any number of nodes, running no
containers.

Design
  * One ``SimulatedNodes`` serves every simulated node through the API only: one Node
    informer, one Pod informer over *all* pods indexed by ``spec.nodeName`` (a field
    selector per node does not scale to a thousand nodes), and two work queues — node
    names and pod keys — each drained by a few workers.
  * A node reconcile registers (or, after a server restart, adopts) its Node, keeps the
    status the kubelet would post (re-posted when it differs, e.g. after the node
    lifecycle controller marked it Unknown, and at least every
    ``node_status_report_frequency``), follows ``spec.podCIDR`` from node IPAM and the
    ``k3py.io/simulate-stopped`` annotation.
  * Leases: node ``i`` of ``n`` renews in time slot ``i mod slots``; one task walks the
    slots, so a thousand renewals are spread evenly over the interval, in small batches.
  * A pod reconcile computes the status the kubelet would report (Running and Ready with
    an IP from the node's podCIDR; Succeeded/Failed for pods that run to completion) from
    the cached pod, keeping existing timestamps, and writes only when it differs.  A pod
    being deleted is finished with ``gracePeriodSeconds=0`` (after the optional
    ``k3py.io/simulate-termination-delay``, bounded by the grace period).
  * A stopped node (``stop_node`` or the annotation) renews nothing and touches none of
    its pods: to the control plane it is a lost node.  A deleted Node stays away until
    ``start_node`` (or a server restart) registers it again.

What users steer with annotations
  * Node ``k3py.io/simulate-stopped: "true"`` — the node's kubelet stops (node loss);
    removing it brings the node back.
  * Pod ``k3py.io/simulate-duration`` (Go duration, default 0) — how long containers of
    Never/OnFailure pods run before they exit; ``k3py.io/simulate-exit-code`` — their exit
    code (non-zero: Failed, or restarts with CrashLoopBackOff under OnFailure; under Always
    the annotation makes containers exit and restart too);
    ``k3py.io/simulate-termination-delay`` — how long a deleted pod takes to stop (at most
    its grace period).

Kubelet admission: a pod whose requests (cpu, memory, pods, extended resources) do not
fit the node's allocatable next to the pods already admitted is rejected (phase Failed,
``OutOfcpu`` …), as the kubelet does for pods bound past the scheduler.  A deleted pod
that carries finalizers first gets a terminal status (exit code 143, Failed), so that
controllers tracking it (Jobs) see how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from k3py.apimachinery import quantity
from k3py.apimachinery.names import check_qualified_name
from k3py.client import (
    AlreadyExists,
    Client,
    Conflict,
    Informer,
    NotFound,
    WorkQueue,
    by_field,
    key_of,
    process,
    split_key,
)
from k3py.client.resources import LEASES, NODES, PODS
from k3py.config import parse_duration
from k3py.server.controllers.base import (
    Timings,
    cancel_tasks,
    get_condition,
    micro_time,
    parse_time,
    rfc3339,
    set_condition,
)
from k3py.server.controllers.events import EventRecorder, EventSink

Obj = dict[str, Any]
log = logging.getLogger("k3py.simnodes")

ANN_SIMULATED = "k3py.io/simulated"
ANN_STOPPED = "k3py.io/simulate-stopped"
ANN_DURATION = "k3py.io/simulate-duration"
ANN_EXIT_CODE = "k3py.io/simulate-exit-code"
ANN_TERMINATION_DELAY = "k3py.io/simulate-termination-delay"
NODE_INDEX = "spec.nodeName"
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.3-k3py"
RUNTIME_VERSION = "simulated://1.0.0"
INSTANCE_TYPE = "k3py-simulated"
DEFAULT_CAPACITY = {"cpu": "4", "memory": "16Gi", "pods": "110", "ephemeral-storage": "100Gi"}
_SLOT = 0.1  # seconds between two lease-renewal batches
_FIRST_POD_OFFSET = 2  # .0 network, .1 the bridge (as flannel's cni0)


# ---- capacity ---------------------------------------------------------------------


def parse_capacity(text: str) -> dict[str, str]:
    """``"cpu=4,memory=16Gi,pods=110"`` → ``{"cpu": "4", "memory": "16Gi", "pods": "110"}``.

    Keys are resource names (qualified names), values quantities (``pods`` a whole
    number); a bad item raises ``ValueError`` naming it."""
    out: dict[str, str] = {}
    if not text or not text.strip():
        raise ValueError("node capacity: empty (expected e.g. cpu=4,memory=16Gi,pods=110)")
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ValueError(f"node capacity {text!r}: empty item")
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise ValueError(f"node capacity {text!r}: {item!r} is not name=quantity")
        errs = check_qualified_name(key)
        if errs:
            raise ValueError(f"node capacity: invalid resource name {key!r}: {'; '.join(errs)}")
        if key in out:
            raise ValueError(f"node capacity: {key!r} given twice")
        try:
            q = quantity.parse(value)
        except quantity.QuantityError as e:
            raise ValueError(f"node capacity: {key}={value!r}: {e}") from None
        if q.value < 0:
            raise ValueError(f"node capacity: {key}={value!r} is negative")
        if key == "pods" and q.value.denominator != 1:
            raise ValueError(f"node capacity: pods={value!r} is not a whole number")
        out[key] = str(q)
    return out


# ---- small helpers --------------------------------------------------------------------


def _duration(text: Any, *, default: float = 0.0) -> float:
    if not isinstance(text, str) or not text.strip():
        return default
    try:
        return max(0.0, parse_duration(text))
    except ValueError:
        return default


def _exit_code(text: Any) -> int:
    try:
        return int(str(text).strip()) if text is not None else 0
    except ValueError:
        return 1


def _hash(text: str, n: int = 32) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def node_internal_ip(index: int) -> str:
    """A fake, never-routed address (10.254.0.0/16) for simulated node ``index``."""
    return f"10.254.{(index // 254) % 256}.{index % 254 + 1}"


def _ann(obj: Obj) -> dict[str, Any]:
    return (obj.get("metadata") or {}).get("annotations") or {}


# ---- what a simulated container does -------------------------------------------------------

BACKOFF_INITIAL = 10.0  # the kubelet's CrashLoopBackOff: 10 s doubling up to 5 minutes
BACKOFF_MAX = 300.0


@dataclass(frozen=True)
class Run:
    """The state of a pod's (simulated) containers at one moment, derived from time alone
    so that every reconcile computes the same status."""

    phase: str  # Running, Succeeded or Failed
    state: Obj  # the containers' ``state``
    last_state: Obj  # their ``lastState``
    restarts: int
    ready: bool
    again: float | None  # seconds until the state changes by itself


def _terminated(code: int, *, started: float, finished: float) -> Obj:
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                           "startedAt": rfc3339(started), "finishedAt": rfc3339(finished)}}  # fmt: skip


def container_run(pod: Obj, *, start: float, now: float) -> Run:
    """What the containers of ``pod`` (started at ``start``) do at ``now``.

    Containers run until deleted, except: with ``restartPolicy`` Never or OnFailure they
    exit after ``k3py.io/simulate-duration`` (default 0) with ``k3py.io/simulate-exit-code``
    (default 0); a failed container under OnFailure, and any container under Always
    whose pod sets the exit-code annotation, is restarted with the kubelet's back-off
    (immediately, then 10 s, 20 s, … 300 s), showing ``CrashLoopBackOff`` in between."""
    ann = _ann(pod)
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    d = _duration(ann.get(ANN_DURATION))
    code = _exit_code(ann.get(ANN_EXIT_CODE))
    running = {"running": {"startedAt": rfc3339(start)}}
    restarting = (policy == "OnFailure" and code != 0) or (policy == "Always" and ANN_EXIT_CODE in ann)  # fmt: skip
    if policy == "Always" and not restarting:
        return Run("Running", running, {}, 0, True, None)
    if not restarting:
        if now < start + d:
            return Run("Running", running, {}, 0, True, start + d - now + 0.01)
        phase = "Succeeded" if code == 0 else "Failed"
        return Run(phase, _terminated(code, started=start, finished=start + d), {}, 0, False, None)
    t, k, prev = start, 0, start
    while True:
        end = t + d
        if now < end:
            last = {} if k == 0 else _terminated(code, started=prev, finished=prev + d)
            state = {"running": {"startedAt": rfc3339(t)}}
            return Run("Running", state, last, k, True, end - now + 0.01)
        wait = 0.0 if k == 0 else min(BACKOFF_INITIAL * 2 ** (k - 1), BACKOFF_MAX)
        if now < end + wait:
            state = {"waiting": {"reason": "CrashLoopBackOff",
                                 "message": f"back-off {int(wait)}s restarting failed container"}}  # fmt: skip
            last = _terminated(code, started=t, finished=end)
            return Run("Running", state, last, k, False, end + wait - now + 0.01)
        period = d + wait
        n = int((now - t) // period) if wait >= BACKOFF_MAX else 0
        if n >= 2:  # saturated back-off: skip whole periods at once
            prev, t, k = t + (n - 1) * period, t + n * period, k + n
            continue
        prev, t, k = t, end + wait, k + 1


def _container_status(c: Obj, prev: Obj, *, uid: str, run: Run, pod_ref: str) -> Obj:
    name, image = c.get("name", ""), c.get("image", "")
    cid = f"simulated://{_hash(f'{uid}/{name}/{run.restarts}', 64)}"
    state = run.state
    if "waiting" in state:
        w = dict(state["waiting"])
        w["message"] = f"{w['message']}={name} pod={pod_ref}"
        state = {"waiting": w}
    elif "terminated" in state:
        state = {"terminated": {**state["terminated"], "containerID": cid}}
    out: Obj = {
        "name": name,
        "image": image,
        "imageID": f"simulated://sha256:{_hash(image, 64)}",
        "containerID": cid,
        "restartCount": run.restarts,
        "lastState": run.last_state,
        "state": state,
        "ready": run.ready,
        "started": "running" in state,
    }
    if "waiting" in state:
        out.pop("containerID")
    del prev
    return out


def pod_requests(pod: Obj) -> dict[str, int]:
    """The pod's effective requests in milli-units (upstream's PodRequests: containers and
    sidecars summed, at least the largest init container, plus overhead), with ``pods``."""
    spec = pod.get("spec") or {}

    def of(c: Obj) -> dict[str, int]:
        res = c.get("resources") or {}
        reqs = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        out = {}
        for r, q in reqs.items():
            try:
                out[r] = quantity.milli_value(str(q))
            except quantity.QuantityError:
                continue
        return out

    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for r, v in of(c).items():
            total[r] = total.get(r, 0) + v
    sidecars: dict[str, int] = {}  # of the sidecars started so far
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        req = of(c)
        for r, v in req.items():  # an init container runs beside the sidecars before it
            init_max[r] = max(init_max.get(r, 0), v + sidecars.get(r, 0))
        if c.get("restartPolicy") == "Always":
            for r, v in req.items():
                sidecars[r] = sidecars.get(r, 0) + v
    for r, v in sidecars.items():
        total[r] = total.get(r, 0) + v
    for r, v in init_max.items():
        total[r] = max(total.get(r, 0), v)
    for r, q in (spec.get("overhead") or {}).items():
        try:
            total[r] = total.get(r, 0) + quantity.milli_value(str(q))
        except quantity.QuantityError:
            continue
    total["pods"] = 1000
    return total


def _shown(resource: str, milli: int) -> int:
    return milli if resource == "cpu" else -(-milli // 1000)


# ---- per-node state -------------------------------------------------------------------


@dataclass
class _Node:
    name: str
    index: int
    ip: str
    recorder: EventRecorder
    running: bool = True  # stop_node / start_node
    stopped_by_annotation: bool = False
    deleted: bool = False  # the Node was deleted by someone: stay away until start_node
    uid: str = ""
    lease: Obj | None = None
    next_report: float = 0.0  # monotonic time when the status is re-posted even if unchanged
    cidr: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    ips: dict[str, str] = field(default_factory=dict)  # pod uid -> ip
    next_offset: int = _FIRST_POD_OFFSET
    admitted: dict[str, dict[str, int]] = field(default_factory=dict)  # pod uid -> requests
    used: dict[str, int] = field(default_factory=dict)  # resource -> sum (milli-units)

    @property
    def active(self) -> bool:
        return self.running and not self.stopped_by_annotation and not self.deleted

    def set_cidr(self, text: str) -> bool:
        """Follow ``spec.podCIDR``; returns whether it changed."""
        try:
            net = ipaddress.ip_network(text, strict=False) if text else None
        except ValueError:
            net = None
        if net == self.cidr:
            return False
        self.cidr = net
        self.ips = {u: ip for u, ip in self.ips.items() if net and ipaddress.ip_address(ip) in net}
        return True

    def reserve(self, *, uid: str, ip: str) -> None:
        if self.cidr is not None and ipaddress.ip_address(ip) in self.cidr:
            self.ips[uid] = ip

    def allocate(self, uid: str) -> str | None:
        """The pod's address (the same one on every call), or None when the range is full."""
        have = self.ips.get(uid)
        if have is not None:
            return have
        if self.cidr is None:
            return None
        size = self.cidr.num_addresses
        last = size - 1 if self.cidr.version == 4 else size  # keep the broadcast free
        span = last - _FIRST_POD_OFFSET
        if span <= 0 or len(self.ips) >= span:
            return None
        used = set(self.ips.values())
        off = self.next_offset
        for _ in range(span):
            if off >= last:
                off = _FIRST_POD_OFFSET
            ip = str(self.cidr.network_address + off)
            off += 1
            if ip not in used:
                self.ips[uid] = ip
                self.next_offset = off
                return ip
        return None

    def release(self, uid: str) -> None:
        """The pod ended or went away: its address and its resources are free again."""
        self.ips.pop(uid, None)
        req = self.admitted.pop(uid, None)
        for r, v in (req or {}).items():
            self.used[r] = self.used.get(r, 0) - v

    def admit(self, uid: str, req: dict[str, int], *, allocatable: dict[str, int]) -> str:
        """Take the pod's requests; "" when they fit, else the first resource that does not
        (the kubelet's admission: a pod bound to a full node is rejected)."""
        if uid in self.admitted:
            return ""
        for r, v in req.items():
            if v > 0 and self.used.get(r, 0) + v > allocatable.get(r, 0):
                return r
        self.admitted[uid] = req
        for r, v in req.items():
            self.used[r] = self.used.get(r, 0) + v
        return ""


# ---- the fleet ---------------------------------------------------------------------------


class SimulatedNodes:
    def __init__(
        self,
        client: Client,
        *,
        names: list[str],
        capacity: dict[str, str],
        timings: Timings,
        sink: EventSink,
        pod_workers: int = 128,
        node_workers: int = 4,
    ) -> None:
        self.client = client
        self.timings = timings
        self.sink = sink
        self.capacity = {**DEFAULT_CAPACITY, **capacity}
        self.allocatable = {r: quantity.milli_value(q) for r, q in self.capacity.items()}
        self.nodes: dict[str, _Node] = {
            n: _Node(name=n, index=i, ip=node_internal_ip(i), recorder=sink.recorder("kubelet", host=n))
            for i, n in enumerate(names)
        }  # fmt: skip
        self.node_informer: Informer = client.informer(NODES)
        self.pod_informer: Informer = client.informer(
            PODS, indexers={NODE_INDEX: by_field("spec", "nodeName")}
        )
        self.node_queue: WorkQueue[str] = WorkQueue(name="simnodes-nodes")
        self.pod_queue: WorkQueue[str] = WorkQueue(name="simnodes-pods", qps=1000, burst=1000)
        self._pod_workers = pod_workers
        self._node_workers = node_workers
        self._tasks: list[asyncio.Task[None]] = []
        self.start_task: asyncio.Task[None] | None = None  # set by the control plane
        self._deleting_seen: dict[str, float] = {}  # pod uid -> wall time first seen deleting
        self._killed: set[str] = set()  # pod uids with Killing events recorded
        self._started_events: set[str] = set()
        self.boot_time = time.time()
        self.lease_renewals = 0
        self.status_writes = 0

    # ---- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        self.node_informer.add_handler(
            on_add=self._on_node, on_update=lambda _o, n: self._on_node(n),
            on_delete=self._on_node_delete,
        )  # fmt: skip
        self.pod_informer.add_handler(
            on_add=self._on_pod, on_update=lambda _o, p: self._on_pod(p),
            on_delete=self._on_pod_delete,
readonly=True,)  # fmt: skip
        self.node_informer.start()
        self.pod_informer.start()
        async with asyncio.timeout(60):
            await self.node_informer.wait_synced()
            await self.pod_informer.wait_synced()
        self._adopt_pod_ips()
        loop = asyncio.get_running_loop()
        for i in range(self._node_workers):
            work = process(self.node_queue, self._reconcile_node)
            self._tasks.append(loop.create_task(work, name=f"simnodes-node-{i}"))
        for i in range(self._pod_workers):
            work = process(self.pod_queue, self._reconcile_pod)
            self._tasks.append(loop.create_task(work, name=f"simnodes-pod-{i}"))
        self._tasks.append(loop.create_task(self._lease_loop(), name="simnodes-leases"))
        for name in self.nodes:
            self.node_queue.add(name)

    async def stop(self) -> None:
        self.node_queue.shut_down()
        self.pod_queue.shut_down()
        await cancel_tasks(self._tasks)
        await self.node_informer.stop()
        await self.pod_informer.stop()

    def stop_node(self, name: str) -> None:
        """Simulate node loss: its Lease is no longer renewed, its pods no longer tended."""
        self.nodes[name].running = False

    def start_node(self, name: str) -> None:
        """Bring a stopped (or deleted) node back: it registers, renews and serves again."""
        st = self.nodes[name]
        st.running = True
        st.deleted = False
        self.node_queue.add(name)
        self._enqueue_pods_of(name)
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop().create_task(self._renew(st))

    def is_running(self, name: str) -> bool:
        return self.nodes[name].active

    # ---- informer handlers --------------------------------------------------------------

    def _on_node(self, node: Obj) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        if name in self.nodes:
            self.node_queue.add(name)

    def _on_node_delete(self, node: Obj) -> None:
        name = (node.get("metadata") or {}).get("name", "")
        st = self.nodes.get(name)
        if st is None:
            return
        if (node.get("metadata") or {}).get("uid") == st.uid:
            st.deleted = True
            st.uid = ""
            st.lease = None

    def _on_pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node in self.nodes:
            self.pod_queue.add(key_of(pod))

    def _on_pod_delete(self, pod: Obj) -> None:
        st = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        uid = (pod.get("metadata") or {}).get("uid", "")
        if st is not None:
            st.release(uid)
        self._deleting_seen.pop(uid, None)
        self._killed.discard(uid)
        self._started_events.discard(uid)

    def _enqueue_pods_of(self, node: str) -> None:
        for pod in self.pod_informer.by_index(NODE_INDEX, node):
            self.pod_queue.add(key_of(pod))

    def _adopt_pod_ips(self) -> None:
        """After a restart: the addresses pods already have stay theirs."""
        for node in self.node_informer.list():
            st = self.nodes.get((node.get("metadata") or {}).get("name", ""))
            if st is not None:
                st.set_cidr((node.get("spec") or {}).get("podCIDR") or "")
        for st in self.nodes.values():
            for pod in self.pod_informer.by_index(NODE_INDEX, st.name):
                status = pod.get("status") or {}
                ip = status.get("podIP")
                if status.get("phase") not in ("Succeeded", "Failed") and status.get("startTime"):
                    uid = pod["metadata"].get("uid", "")
                    if ip:
                        st.reserve(uid=uid, ip=ip)
                    st.admitted[uid] = req = pod_requests(pod)
                    for r, v in req.items():
                        st.used[r] = st.used.get(r, 0) + v

    # ---- nodes ------------------------------------------------------------------------------

    def _node_object(self, st: _Node) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": st.name,
                "labels": self._labels(st),
                "annotations": {
                    ANN_SIMULATED: "true",
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {"providerID": f"k3py-simulated://{st.name}"},
            "status": self._node_status(st, None, now=time.time()),
        }

    def _labels(self, st: _Node) -> dict[str, str]:
        return {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "kubernetes.io/hostname": st.name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": INSTANCE_TYPE,
            "type": "simulated-node",
        }

    def _node_status(self, st: _Node, old: Obj | None, *, now: float) -> Obj:
        """The status the kubelet posts; heartbeats stay as they were (the caller bumps
        them when a post is due)."""
        old = old or {}
        ts = rfc3339(now)
        status: Obj = {
            "capacity": dict(self.capacity),
            "allocatable": dict(self.capacity),
            "conditions": [dict(c) for c in old.get("conditions") or []],
            "addresses": [
                {"type": "InternalIP", "address": st.ip},
                {"type": "Hostname", "address": st.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": _hash(f"machine-{st.name}"),
                "systemUUID": _hash(f"uuid-{st.name}"),
                "bootID": _hash(f"boot-{st.name}-{self.boot_time}"),
                "kernelVersion": "6.1.0-k3py-simulated",
                "osImage": "k3py simulated node",
                "containerRuntimeVersion": RUNTIME_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }
        for ctype, reason, message in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "KubeletReady", "kubelet is posting ready status"),
        ):  # fmt: skip
            cond = {"type": ctype, "status": "True" if ctype == "Ready" else "False",
                    "reason": reason, "message": message}  # fmt: skip
            prev = get_condition(status, ctype)
            cond["lastHeartbeatTime"] = (prev or {}).get("lastHeartbeatTime") or ts
            set_condition(status, cond, now=ts)
        for key in ("images", "volumesInUse", "volumesAttached", "config"):
            if key in old:
                status[key] = old[key]
        return status

    async def _reconcile_node(self, name: str) -> float | None:
        st = self.nodes[name]
        node = self.node_informer.get(name)
        if node is None:
            if st.deleted or not st.running:
                return None
            try:
                created = await self.client.create(NODES, self._node_object(st))
            except AlreadyExists:
                return 1.0  # the informer has not seen it yet
            st.uid = created["metadata"]["uid"]
            every = self.timings.node_status_report_frequency
            st.next_report = time.monotonic() + every * random.uniform(0.5, 1.0)  # spread a fleet
            self.status_writes += 1
            st.recorder.normal(created, "Starting", "Starting kubelet.")
            st.recorder.normal(created, "NodeReady", f"Node {name} status is now: NodeReady")
            await self._renew(st)
            return st.next_report - time.monotonic()
        meta = node.get("metadata") or {}
        st.uid = meta.get("uid", "")
        st.deleted = False
        was_active = st.active
        st.stopped_by_annotation = str(_ann(node).get(ANN_STOPPED, "")).lower() == "true"
        if st.set_cidr((node.get("spec") or {}).get("podCIDR") or ""):
            self._enqueue_pods_of(name)
        if not st.active:
            return None
        if not was_active:
            self._enqueue_pods_of(name)
        return await self._post_status(st, node)

    async def _post_status(self, st: _Node, node: Obj) -> float:
        now = time.time()
        old = node.get("status") or {}
        desired = self._node_status(st, old, now=now)
        every = self.timings.node_status_report_frequency
        due = time.monotonic() >= st.next_report
        labels = (node.get("metadata") or {}).get("labels") or {}
        want_labels = self._labels(st)
        if any(labels.get(k) != v for k, v in want_labels.items()):
            await self.client.patch(NODES, st.name, {"metadata": {"labels": want_labels}})
        if not due and all(old.get(k) == v for k, v in desired.items()):
            return max(1.0, st.next_report - time.monotonic())
        for c in desired["conditions"]:
            c["lastHeartbeatTime"] = rfc3339(now)
        node["status"] = desired
        await self.client.update_status(NODES, node)
        spread = 0.5 if st.next_report == 0.0 else 0.9  # the first post after a restart: spread
        st.next_report = time.monotonic() + every * random.uniform(spread, 1.0)
        self.status_writes += 1
        return st.next_report - time.monotonic()

    # ---- leases -------------------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        interval = max(self.timings.node_lease_renew_interval, _SLOT)
        slots = max(1, int(interval / _SLOT))
        batches: list[list[_Node]] = [[] for _ in range(slots)]
        for i, st in enumerate(self.nodes.values()):
            batches[i % slots].append(st)
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        while True:
            live = [st for st in batches[k % slots] if st.active and st.uid]
            if live:
                results = await asyncio.gather(
                    *(self._renew(st) for st in live), return_exceptions=True
                )
                for st, r in zip(live, results, strict=True):
                    if isinstance(r, Exception):
                        log.warning("lease of %s not renewed: %s", st.name, r)
            k += 1
            await asyncio.sleep(max(0.0, start + k * (interval / slots) - loop.time()))

    async def _renew(self, st: _Node, *, retry: bool = True) -> None:
        if not st.active or not st.uid:
            return
        now = micro_time(time.time())
        lease = st.lease
        if lease is None:
            lease = await self.client.get_or_none(LEASES, st.name, namespace=LEASE_NAMESPACE)
        owner = [{"apiVersion": "v1", "kind": "Node", "name": st.name, "uid": st.uid}]
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": st.name,
                    "namespace": LEASE_NAMESPACE,
                    "ownerReferences": owner,
                },
                "spec": {
                    "holderIdentity": st.name,
                    "leaseDurationSeconds": int(self.timings.node_lease_duration),
                    "renewTime": now,
                },
            }
            try:
                st.lease = await self.client.create(LEASES, body)
                self.lease_renewals += 1
            except AlreadyExists:
                st.lease = None
                if retry:
                    await self._renew(st, retry=False)
            return
        spec = lease.setdefault("spec", {})
        spec["holderIdentity"] = st.name
        spec["leaseDurationSeconds"] = int(self.timings.node_lease_duration)
        spec["renewTime"] = now
        refs = lease["metadata"].get("ownerReferences") or []
        if not any(r.get("uid") == st.uid for r in refs):
            lease["metadata"]["ownerReferences"] = owner
        try:
            st.lease = await self.client.update(LEASES, lease)
            self.lease_renewals += 1
        except (Conflict, NotFound):
            st.lease = None  # fetched (or created) again, at once
            if retry:
                await self._renew(st, retry=False)

    # ---- pods ---------------------------------------------------------------------------------

    async def _reconcile_pod(self, key: str) -> float | None:
        ns, name = split_key(key)
        pod = self.pod_informer.get(name, namespace=ns)
        if pod is None:
            return None
        st = self.nodes.get((pod.get("spec") or {}).get("nodeName") or "")
        if st is None or not st.active:
            return None
        meta = pod["metadata"]
        uid = meta.get("uid", "")
        if meta.get("deletionTimestamp"):
            return await self._finish_deletion(pod, st)
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            st.release(uid)
            return None
        if st.cidr is None:
            return None  # node IPAM has not given the node a range yet; a node update requeues
        if uid not in st.admitted:
            if status.get("startTime"):  # it ran here before (a restart): keep it
                st.admitted[uid] = {}
            else:
                short = st.admit(uid, pod_requests(pod), allocatable=self.allocatable)
                if short:
                    await self._reject(pod, st, resource=short)
                    return None
        ip = st.allocate(uid)
        if ip is None:
            msg = (
                "Failed to create pod sandbox: failed to allocate for range 0: "
                f"no IP addresses available in range set: {st.cidr}"
            )
            st.recorder.warning(pod, "FailedCreatePodSandBox", msg)
            return 10.0
        now = time.time()
        desired, again = self._pod_status(pod, st, ip=ip, now=now)
        if desired != status:
            pod["status"] = desired
            await self.client.update_status(PODS, pod)
            self.status_writes += 1
            self._pod_events(pod, st, desired)
        if desired.get("phase") in ("Succeeded", "Failed"):
            st.release(uid)
        return again

    async def _reject(self, pod: Obj, st: _Node, *, resource: str) -> None:
        """The kubelet's admission failure (``OutOfcpu``, ``OutOfpods``, ...)."""
        req = pod_requests(pod).get(resource, 0)
        used = st.used.get(resource, 0)
        cap = self.allocatable.get(resource, 0)
        reason = f"OutOf{resource}"
        message = (f"Pod was rejected: Node didn't have enough resource: {resource}, requested: "
                   f"{_shown(resource, req)}, used: {_shown(resource, used)}, capacity: {_shown(resource, cap)}")  # fmt: skip
        status = pod.setdefault("status", {})
        status.update(
            phase="Failed", reason=reason, message=message, startTime=rfc3339(time.time())
        )
        await self.client.update_status(PODS, pod)
        self.status_writes += 1
        st.recorder.warning(pod, reason, message)

    def _pod_events(self, pod: Obj, st: _Node, status: Obj) -> None:
        meta = pod["metadata"]
        uid = meta.get("uid", "")
        for cs in status.get("containerStatuses") or []:
            if (cs.get("state") or {}).get("waiting", {}).get("reason") == "CrashLoopBackOff":
                ref = f"{meta.get('name')}_{meta.get('namespace')}({uid})"
                msg = f"Back-off restarting failed container {cs['name']} in pod {ref}"
                st.recorder.warning(pod, "BackOff", msg)
        if uid in self._started_events:
            return
        self._started_events.add(uid)
        for c in (pod.get("spec") or {}).get("containers") or []:
            n, image = c.get("name", ""), c.get("image", "")
            st.recorder.normal(
                pod, "Pulled", f'Container image "{image}" already present on machine'
            )
            st.recorder.normal(pod, "Created", f"Created container: {n}")
            st.recorder.normal(pod, "Started", f"Started container {n}")

    def _pod_status(self, pod: Obj, st: _Node, *, ip: str, now: float) -> tuple[Obj, float | None]:
        """The kubelet's view of a pod; (status, seconds until it changes by itself)."""
        spec = pod.get("spec") or {}
        old = pod.get("status") or {}
        ts = rfc3339(now)
        start_s = old.get("startTime") or ts
        start = parse_time(start_s) or now
        status: Obj = dict(old)
        status["conditions"] = [dict(c) for c in old.get("conditions") or []]
        status["hostIP"] = st.ip
        status["hostIPs"] = [{"ip": st.ip}]
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
        status["startTime"] = start_s
        run = container_run(pod, start=start, now=now)
        meta = pod["metadata"]
        old_cs = {c.get("name"): c for c in old.get("containerStatuses") or []}
        status["containerStatuses"] = [
            _container_status(
                c,
                old_cs.get(c.get("name")) or {},
                uid=meta.get("uid", ""),
                run=run,
                pod_ref=f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})",
            )  # fmt: skip
            for c in spec.get("containers") or []
        ]
        inits = spec.get("initContainers") or []
        if inits:
            old_is = {c.get("name"): c for c in old.get("initContainerStatuses") or []}
            status["initContainerStatuses"] = [
                self._init_status(c, old_is.get(c.get("name")) or {}, pod=pod, start=start_s)
                for c in inits
            ]
        finished = run.phase != "Running"
        status["phase"] = run.phase
        names = " ".join(c.get("name", "") for c in spec.get("containers") or [])
        if finished:
            cready: tuple[str, str, str] = ("False", "PodCompleted", "")
        elif run.ready:
            cready = ("True", "", "")
        else:
            cready = ("False", "ContainersNotReady", f"containers with unready status: [{names}]")
        gates_ok, gate_msg = self._gates(spec, status)
        ready = cready if cready[0] == "False" or gates_ok else ("False", "ReadinessGatesNotReady", gate_msg)  # fmt: skip
        conds = [
            ("PodReadyToStartContainers", ("False" if finished else "True", "", "")),
            ("Initialized", ("True", "PodCompleted" if finished and inits else "", "")),
            ("Ready", ready),
            ("ContainersReady", cready),
            ("PodScheduled", ("True", "", "")),
        ]
        for ctype, (cstatus, reason, message) in conds:
            cond: Obj = {"type": ctype, "status": cstatus, "lastProbeTime": None}
            if reason:
                cond["reason"] = reason
            if message:
                cond["message"] = message
            prev = get_condition(status, ctype)
            if prev is not None:
                for k in ("reason", "message"):
                    if k not in cond:
                        prev.pop(k, None)
            set_condition(status, cond, now=ts)
        return status, run.again

    @staticmethod
    def _gates(spec: Obj, status: Obj) -> tuple[bool, str]:
        for gate in spec.get("readinessGates") or []:
            ctype = gate.get("conditionType", "")
            c = get_condition(status, ctype)
            if c is None:
                return False, f'corresponding condition of pod readiness gate "{ctype}" does not exist.'  # fmt: skip
            if c.get("status") != "True":
                return False, f'the status of pod readiness gate "{ctype}" is not "True", but {c.get("status")}'  # fmt: skip
        return True, ""

    @staticmethod
    def _init_status(c: Obj, prev: Obj, *, pod: Obj, start: str) -> Obj:
        name, image = c.get("name", ""), c.get("image", "")
        uid = pod["metadata"].get("uid", "")
        cid = prev.get("containerID") or f"simulated://{_hash(f'{uid}/init/{name}', 64)}"
        out: Obj = {
            "name": name,
            "image": image,
            "imageID": f"simulated://sha256:{_hash(image, 64)}",
            "containerID": cid,
            "restartCount": int(prev.get("restartCount") or 0),
            "lastState": prev.get("lastState") or {},
        }
        if c.get("restartPolicy") == "Always":  # a sidecar keeps running
            out["state"] = prev.get("state") or {"running": {"startedAt": start}}
            out["ready"] = True
            out["started"] = True
        else:
            out["state"] = prev.get("state") or {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": start, "finishedAt": start,
                "containerID": cid,
            }}  # fmt: skip
            out["ready"] = True
            out["started"] = False
        return out

    async def _finish_deletion(self, pod: Obj, st: _Node) -> float | None:
        meta = pod["metadata"]
        uid = meta.get("uid", "")
        seen = self._deleting_seen.setdefault(uid, time.time())
        if uid not in self._killed:
            self._killed.add(uid)
            running = [
                c.get("name", "")
                for c in (pod.get("status") or {}).get("containerStatuses") or []
                if "running" in (c.get("state") or {})
            ]
            for n in running:
                st.recorder.normal(pod, "Killing", f"Stopping container {n}")
        grace = meta.get("deletionGracePeriodSeconds")
        delay = _duration(_ann(pod).get(ANN_TERMINATION_DELAY))
        if isinstance(grace, int):
            delay = min(delay, float(grace))
        finish = seen + delay
        requested_end = parse_time(meta.get("deletionTimestamp"))
        if requested_end is not None:
            finish = min(finish, requested_end)  # the grace period ran out while we were away
        left = finish - time.time()
        if left > 0:
            return left
        if meta.get("finalizers") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):  # fmt: skip
            await self._terminal_status(pod)  # someone (a Job) still looks at it: say how it ended
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(
                PODS, meta["name"], namespace=meta.get("namespace", ""),
                grace_period_seconds=0, preconditions_uid=uid,
            )  # fmt: skip
        st.release(uid)
        return None

    async def _terminal_status(self, pod: Obj) -> None:
        """Containers stopped by SIGTERM (exit code 143): the pod ends Failed, as a real
        kubelet reports it before the pod object goes away."""
        status = pod.setdefault("status", {})
        now = time.time()
        for cs in status.get("containerStatuses") or []:
            started = parse_time(((cs.get("state") or {}).get("running") or {}).get("startedAt")) or now  # fmt: skip
            cs["state"] = _terminated(143, started=started, finished=now)
            cs["ready"] = False
            cs["started"] = False
        status["phase"] = "Failed"
        ts = rfc3339(now)
        for ctype in ("Ready", "ContainersReady", "PodReadyToStartContainers"):
            if get_condition(status, ctype) is not None:
                set_condition(status, {"type": ctype, "status": "False"}, now=ts)
        with contextlib.suppress(NotFound, Conflict):
            await self.client.update_status(PODS, pod)
            self.status_writes += 1


__all__ = [
    "ANN_DURATION",
    "ANN_EXIT_CODE",
    "ANN_SIMULATED",
    "ANN_STOPPED",
    "ANN_TERMINATION_DELAY",
    "SimulatedNodes",
    "container_run",
    "node_internal_ip",
    "parse_capacity",
    "pod_requests",
]


def check_cidr_room(cfg: Any) -> None:
    """Refuse a fleet larger than the cluster CIDR can give a podCIDR each (K3s's
    10.42.0.0/16 in /24s holds 256 nodes), with the flag that fixes it."""
    from k3py.server.controllers.nodeipam import _masks

    mask_v4, _ = _masks(cfg)
    room = 0
    for part in str(cfg.cluster_cidr).split(","):
        net = ipaddress.ip_network(part.strip(), strict=False)
        if net.version == 4 and mask_v4 >= net.prefixlen:
            room += 2 ** (mask_v4 - net.prefixlen)
    need = int(cfg.simulate_nodes) + (0 if cfg.disable_agent else 1)
    if room and need > room:
        bits = max(0, (need - 1).bit_length())
        raise ValueError(
            f"--simulate-nodes {cfg.simulate_nodes}: --cluster-cidr {cfg.cluster_cidr} holds "
            f"{room} node ranges of /{mask_v4}, {need} are needed; give a larger one, "
            f"e.g. --cluster-cidr 10.64.0.0/{mask_v4 - bits}"
        )
