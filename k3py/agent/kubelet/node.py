"""The kubelet's Node: registration, status and the heartbeat Lease.

* ``register`` creates the Node (or adopts the one of that name after a restart, keeping
  what others set: podCIDR, taints, annotations) with the standard labels (os, arch,
  hostname, ``node.kubernetes.io/instance-type=k3py``, the control-plane roles when
  embedded in a server) and ``--node-label``s; ``--node-taint``s only on creation, as
  upstream registers taints.
* The status (capacity/allocatable from the host, addresses, nodeInfo, conditions, the 50
  largest images) is recomputed every ``node-status-update-frequency`` (10 s) and on
  ``poke()``, and posted only when it differs from the stored one, or at least every
  ``node-status-report-frequency`` (5 min) — upstream's Lease-era semantics.  Every post
  stamps all conditions' ``lastHeartbeatTime``; ``lastTransitionTime`` moves only when a
  condition's status changes.  Ready follows the CRI Status (RuntimeReady/NetworkReady)
  with upstream's messages.
* Allocatable = capacity - kube-reserved - system-reserved - the hard eviction thresholds
  (``memory.available`` 100Mi and ``nodefs.available`` 10 % by default; a signal given in
  ``--kubelet-arg eviction-hard`` replaces its default, the others keep theirs).
* The heartbeat is the Lease ``kube-node-lease/<node>`` (holder = node name, owned by the
  Node), renewed every quarter of ``node-lease-duration-seconds`` (40 s → 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import platform
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from k3py import GIT_VERSION
from k3py.agent.config import AgentConfig
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.kubelet.resources import to_bytes, to_milli
from k3py.apimachinery import quantity
from k3py.client import AlreadyExists, Client, Conflict, NotFound
from k3py.client.resources import LEASES, NODES

log = logging.getLogger("k3py.agent.node")

Obj = dict[str, Any]
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = GIT_VERSION  # what the server reports as gitVersion, as K3s does
INSTANCE_TYPE = "k3py"
MAX_IMAGES = 50
MAX_NAMES_PER_IMAGE = 5
DEFAULT_EVICTION_HARD = {"memory.available": "100Mi", "nodefs.available": "10%"}
CONDITION_ORDER = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")


class RuntimeService(Protocol):
    """What the NodeAgent needs of the CRI client (``CRIClient`` has it)."""

    async def version(self) -> cri.VersionResponse: ...

    async def status(self) -> cri.StatusResponse: ...

    async def list_images(self, filter: cri.ImageFilter | None = None) -> list[cri.Image]: ...


# ---- small host facts ------------------------------------------------------------------


def host_arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(m, m)


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return "Linux"


def mem_total_bytes() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def micro_time(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds of a Go duration (``10s``, ``1m30s``); a bare number is seconds."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        return float(text)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"invalid duration {text!r}")
    return total


def parse_taint(text: str) -> Obj:
    """``key=value:Effect`` or ``key:Effect`` (as ``--node-taint``)."""
    body, _, effect = text.rpartition(":")
    if not body or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(
            f"invalid taint {text!r}: want key[=value]:NoSchedule|PreferNoSchedule|NoExecute"
        )
    key, _, value = body.partition("=")
    taint: Obj = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint


def parse_labels(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"invalid node label {item!r}: want key=value")
        out[key] = value
    return out


# ---- capacity and allocatable ------------------------------------------------------------


def _pairs(text: str, sep: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, _, value = item.partition(sep)
        out[name.strip()] = value.strip()
    return out


def _threshold(value: str, capacity: int) -> int:
    if value.endswith("%"):
        return int(capacity * float(value[:-1]) / 100)
    return to_bytes(value)


def node_resources(
    *, args: dict[str, str], cpus: int, memory: int, disk: int, max_pods: int
) -> tuple[dict[str, str], dict[str, str]]:
    """(capacity, allocatable) as upstream's kubelet reports them."""
    capacity = {
        "cpu": str(cpus),
        "ephemeral-storage": f"{disk // 1024}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": f"{memory // 1024}Ki",
        "pods": str(max_pods),
    }
    reserved_cpu = reserved_mem = reserved_disk = 0
    for key in ("kube-reserved", "system-reserved"):
        pairs = _pairs(args.get(key, ""), "=")
        reserved_cpu += to_milli(pairs["cpu"]) if "cpu" in pairs else 0
        reserved_mem += to_bytes(pairs["memory"]) if "memory" in pairs else 0
        if "ephemeral-storage" in pairs:
            reserved_disk += to_bytes(pairs["ephemeral-storage"])
    eviction = {**DEFAULT_EVICTION_HARD, **_pairs(args.get("eviction-hard", ""), "<")}
    evict_mem = _threshold(eviction.get("memory.available", "0"), memory)
    evict_disk = _threshold(eviction.get("nodefs.available", "0"), disk)
    allocatable = dict(capacity)
    if reserved_cpu:
        allocatable["cpu"] = f"{max(0, cpus * 1000 - reserved_cpu)}m"
    mem = max(0, memory - reserved_mem - evict_mem)
    allocatable["memory"] = f"{mem // 1024}Ki" if mem % 1024 == 0 else str(mem)
    allocatable["ephemeral-storage"] = str(max(0, disk - reserved_disk - evict_disk))
    return capacity, allocatable


def _disk_bytes(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    st = os.statvfs(path)
    return st.f_blocks * st.f_frsize


# ---- conditions ------------------------------------------------------------------------------


def merge_conditions(old: list[Obj], wanted: list[Obj], *, now: str) -> list[Obj]:
    """``wanted`` (type/status/reason/message) over ``old``: heartbeats carried over (the
    poster stamps them), transition times kept unless the status changed; other
    conditions (set by others, e.g. NetworkUnavailable) kept as they are."""
    by_type = {c.get("type"): c for c in old}
    out: list[Obj] = []
    for w in wanted:
        prev = by_type.pop(w["type"], None)
        cond = dict(w)
        if prev is not None and prev.get("status") == w["status"]:
            cond["lastTransitionTime"] = prev.get("lastTransitionTime") or now
        else:
            cond["lastTransitionTime"] = now
        cond["lastHeartbeatTime"] = (prev or {}).get("lastHeartbeatTime") or now
        out.append(cond)
    out.extend(by_type.values())
    order = {t: i for i, t in enumerate(CONDITION_ORDER)}
    out.sort(key=lambda c: order.get(c.get("type", ""), -1))
    return out


def _cri_condition(conds: dict[str, Any], name: str) -> str:
    c = conds.get(name)
    if c is None:
        return f"{name}=false reason: message:"
    return f"{name}={str(bool(c.status)).lower()} reason:{c.reason} message:{c.message}"


def runtime_errors(status: cri.StatusResponse | None, error: str = "") -> list[str]:
    """The kubelet's ``runtimeState`` errors for a CRI Status (empty: Ready)."""
    if status is None:
        return [f"container runtime is down: {error}" if error else "container runtime is down"]
    conds = {c.type: c for c in status.status.conditions}
    errs: list[str] = []
    if not (conds.get("RuntimeReady") and conds["RuntimeReady"].status):
        errs.append(f"container runtime not ready: {_cri_condition(conds, 'RuntimeReady')}")
    if not (conds.get("NetworkReady") and conds["NetworkReady"].status):
        errs.append(f"container runtime network not ready: {_cri_condition(conds, 'NetworkReady')}")
    return errs


def ready_condition(errors: list[str]) -> Obj:
    if not errors:
        return {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
        }
    message = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": message}


PRESSURE_CONDITIONS = (
    ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
)


def image_list(images: list[cri.Image]) -> list[Obj]:
    """The Node's ``status.images``: largest first, at most 50, up to 5 names each."""
    out: list[Obj] = []
    ordered = sorted(images, key=lambda i: (-int(i.size), list(i.repo_digests), list(i.repo_tags)))
    for img in ordered:
        names = (list(img.repo_digests) + list(img.repo_tags))[:MAX_NAMES_PER_IMAGE]
        if names:
            out.append({"names": names, "sizeBytes": int(img.size)})
        if len(out) >= MAX_IMAGES:
            break
    return out


def _quantities(values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (values or {}).items():
        try:
            out[k] = quantity.parse(v).value
        except (ValueError, TypeError):
            out[k] = v
    return out


def same_status(old: Obj, desired: Obj) -> bool:
    """Whether posting ``desired`` would change nothing (quantities compared by value, as
    the server may store them in canonical form)."""
    for key, value in desired.items():
        if key in ("capacity", "allocatable"):
            if _quantities(old.get(key)) != _quantities(value):
                return False
        elif old.get(key) != value:
            return False
    return True


class NodeAgent:
    def __init__(
        self,
        cfg: AgentConfig,
        client: Client,
        cri: RuntimeService,
        *,
        control_plane: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.client = client
        self.cri = cri
        self.control_plane = control_plane
        self.clock = clock
        self.name = cfg.node_name
        self.uid = ""
        args = cfg.kubelet_args()
        self.lease_duration = int(args.get("node-lease-duration-seconds", "40"))
        self.report_every = parse_duration(args.get("node-status-report-frequency", "5m"))
        self.status_every = parse_duration(args.get("node-status-update-frequency", "10s"))
        self.max_pods = int(args.get("max-pods", "110"))
        self.memory_capacity = mem_total_bytes()
        self.capacity, self.allocatable = node_resources(
            args=args,
            cpus=os.cpu_count() or 1,
            memory=self.memory_capacity,
            disk=_disk_bytes(cfg.data_dir),
            max_pods=self.max_pods,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._poke = asyncio.Event()
        self._last_report = 0.0
        self._lease: Obj | None = None
        self.runtime_version = ""
        self.errors: list[str] = ["container runtime status check may not have completed yet"]
        self.posts = 0  # status writes (for tests and debugging)

    @property
    def ready(self) -> bool:
        return not self.errors

    # ---- the Node object ----------------------------------------------------------------

    def labels(self) -> dict[str, str]:
        arch = host_arch()
        labels = {
            "beta.kubernetes.io/arch": arch,
            "beta.kubernetes.io/instance-type": INSTANCE_TYPE,
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": INSTANCE_TYPE,
        }
        if self.control_plane:
            labels["node-role.kubernetes.io/control-plane"] = "true"
            labels["node-role.kubernetes.io/master"] = "true"
        labels.update(parse_labels(self.cfg.node_labels))
        return labels

    def node_info(self) -> Obj:
        machine_id = _read("/etc/machine-id")
        return {
            "machineID": machine_id,
            "systemUUID": _read("/sys/class/dmi/id/product_uuid") or machine_id,
            "bootID": _read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": platform.release(),
            "osImage": os_image(),
            "containerRuntimeVersion": self.runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": host_arch(),
        }

    def status(self, old: Obj | None, *, images: list[Obj] | None = None) -> Obj:
        """The desired status; heartbeats carried over from ``old`` (see ``merge_conditions``)."""
        old = old or {}
        now = rfc3339(self.clock())
        wanted = [
            {"type": t, "status": "False", "reason": r, "message": m}
            for t, r, m in PRESSURE_CONDITIONS
        ]
        wanted.append(ready_condition(self.errors))
        addresses = [{"type": "Hostname", "address": self.name}]
        if self.cfg.node_ip:
            addresses.insert(0, {"type": "InternalIP", "address": self.cfg.node_ip})
        status: Obj = {
            "capacity": dict(self.capacity),
            "allocatable": dict(self.allocatable),
            "conditions": merge_conditions(list(old.get("conditions") or []), wanted, now=now),
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": int(self.cfg.kubelet_port)}},
            "nodeInfo": self.node_info(),
        }
        if images is not None:
            status["images"] = images
        elif "images" in old:
            status["images"] = old["images"]
        return status

    async def _images(self) -> list[Obj] | None:
        try:
            return image_list(await self.cri.list_images())
        except Exception as e:  # noqa: BLE001 - keep the last list
            log.debug("listing images failed: %s", e)
            return None

    async def refresh_runtime_state(self) -> None:
        try:
            if not self.runtime_version:
                v = await self.cri.version()
                self.runtime_version = f"{v.runtime_name}://{v.runtime_version}"
            st = await self.cri.status()
        except Exception as e:  # noqa: BLE001 - any failure means the runtime is down
            self.errors = runtime_errors(None, str(e))
            return
        self.errors = runtime_errors(st)

    def _body(self) -> Obj:
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": self.labels(),
                "annotations": {
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {"providerID": f"k3py://{self.name}"},
        }
        taints = [parse_taint(t) for t in self.cfg.node_taints]
        if taints:
            body["spec"]["taints"] = taints
        return body

    async def register(self) -> Obj:
        """Create the Node or adopt the existing one; post the status and the Lease."""
        await self.refresh_runtime_state()
        try:
            node = await self.client.create(NODES, self._body())
            log.info("registered node %s", self.name)
        except AlreadyExists:
            node = await self.client.get(NODES, self.name)
            labels = node["metadata"].get("labels") or {}
            want = self.labels()
            if any(labels.get(k) != v for k, v in want.items()):
                node = await self.client.patch(NODES, self.name, {"metadata": {"labels": want}})
            log.info("adopted existing node %s", self.name)
        self.uid = node["metadata"]["uid"]
        self._lease = None
        node = await self._post(node, force=True)
        await self._renew()
        return node

    async def _post(self, node: Obj, *, force: bool = False) -> Obj:
        old = node.get("status") or {}
        desired = self.status(old, images=await self._images())
        due = force or time.monotonic() - self._last_report >= self.report_every
        if not due and same_status(old, desired):
            return node
        now = rfc3339(self.clock())
        for c in desired["conditions"]:
            c["lastHeartbeatTime"] = now
        for _ in range(3):
            node["status"] = {**old, **desired}
            try:
                updated = await self.client.update_status(NODES, node)
            except Conflict:
                node = await self.client.get(NODES, self.name)
                old = node.get("status") or {}
                desired["conditions"] = merge_conditions(
                    list(old.get("conditions") or []), desired["conditions"], now=now
                )
                continue
            self._last_report = time.monotonic()
            self.posts += 1
            return updated
        return node

    async def update_status(self) -> Obj:
        """One status round: runtime state, then post when changed or due."""
        await self.refresh_runtime_state()
        node = await self.client.get(NODES, self.name)
        if node["metadata"]["uid"] != self.uid:
            self.uid = node["metadata"]["uid"]
            self._lease = None
        return await self._post(node)

    async def wait_pod_cidr(self, timeout: float = 60.0) -> str:
        """Watch the Node until ``spec.podCIDR`` is set (the node IPAM controller's work)."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    node = await self.client.get(NODES, self.name)
                    cidr = str((node.get("spec") or {}).get("podCIDR") or "")
                    if cidr:
                        return cidr
                    with contextlib.suppress(Exception):
                        cidr = await self._watch_cidr(node["metadata"].get("resourceVersion", ""))
                        if cidr:
                            return cidr
                    await asyncio.sleep(0.2)
        except TimeoutError:
            raise TimeoutError(
                f"node {self.name} got no podCIDR in {timeout:.0f}s "
                "(is the controller manager running?)"
            ) from None

    async def _watch_cidr(self, rv: str) -> str:
        stream = self.client.watch(
            NODES,
            field_selector=f"metadata.name={self.name}",
            resource_version=rv,
            timeout_seconds=60,
        )
        try:
            async for ev in stream:
                if ev.type in ("ADDED", "MODIFIED"):
                    cidr = str((ev.object.get("spec") or {}).get("podCIDR") or "")
                    if cidr:
                        return cidr
        finally:
            await stream.aclose()
        return ""

    # ---- loops ----------------------------------------------------------------------------

    def poke(self) -> None:
        """Recompute (and post if changed) the status now."""
        self._poke.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._status_loop(), name="node-status"),
            asyncio.create_task(self._lease_loop(), name="node-lease"),
        ]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []

    async def _status_loop(self) -> None:
        while True:
            # While NotReady (e.g. before the CNI config exists) look again every second, as
            # upstream's runtime-state check (5 s) would, so Ready follows quickly.
            wait = min(1.0, self.status_every) if self.errors else self.status_every
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self.update_status()
            except NotFound:
                log.warning("node %s was deleted; registering again", self.name)
                with contextlib.suppress(Exception):
                    await self.register()
            except Exception as e:  # noqa: BLE001 - keep reporting
                log.warning("node status update failed: %s", e)

    async def _lease_loop(self) -> None:
        interval = max(1.0, self.lease_duration / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._renew()
            except Exception as e:  # noqa: BLE001 - keep renewing
                log.warning("node lease renewal failed: %s", e)

    def _owner(self) -> list[Obj]:
        return [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}]

    async def _renew(self) -> None:
        """Renew the Lease: an update of the last one seen, a get/create when that fails."""
        now = micro_time(self.clock())
        lease = self._lease
        if lease is not None:
            lease["spec"]["renewTime"] = now
            with contextlib.suppress(Conflict, NotFound):
                self._lease = await self.client.update(LEASES, lease)
                return
        lease = await self.client.get_or_none(LEASES, self.name, namespace=LEASE_NAMESPACE)
        spec = {
            "holderIdentity": self.name,
            "leaseDurationSeconds": self.lease_duration,
            "renewTime": now,
        }
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": LEASE_NAMESPACE,
                    "ownerReferences": self._owner(),
                },
                "spec": spec,
            }
            try:
                self._lease = await self.client.create(LEASES, body)
            except AlreadyExists:
                self._lease = None
            return
        lease.setdefault("spec", {}).update(spec)
        refs = lease["metadata"].get("ownerReferences") or []
        if self.uid and not any(r.get("uid") == self.uid for r in refs):
            lease["metadata"]["ownerReferences"] = self._owner()
        try:
            self._lease = await self.client.update(LEASES, lease)
        except (Conflict, NotFound):
            self._lease = None
