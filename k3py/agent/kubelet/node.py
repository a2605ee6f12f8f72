"""The kubelet's Node: registration, status and the heartbeat Lease.

* ``register`` creates the Node (or adopts the one of that name after a restart, keeping
  what others set: podCIDR, taints added later, user labels) with the standard labels,
  ``--node-label``s and, on first registration, ``--node-taint``s.
* The status (capacity/allocatable from the host, addresses, nodeInfo, conditions, images)
  is posted when it changes — Ready follows the runtime's RuntimeReady/NetworkReady — and
  at least every ``node-status-report-frequency`` (5 min, as upstream); the heartbeat is
  the Lease in ``kube-node-lease``, renewed every 10 s (a quarter of its 40 s duration).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

from k3py.agent.config import AgentConfig
from k3py.agent.cri.client import CRIClient, CRIError
from k3py.agent.kubelet.resources import to_bytes, to_milli
from k3py.client import AlreadyExists, Client, Conflict, NotFound
from k3py.client.resources import LEASES, NODES
from k3py.config import parse_duration
from k3py.server.controllers.base import get_condition, micro_time, rfc3339, set_condition

log = logging.getLogger("k3py.agent.node")

Obj = dict[str, Any]
LEASE_NAMESPACE = "kube-node-lease"
KUBELET_VERSION = "v1.32.3-k3py"
INSTANCE_TYPE = "k3py"


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


def parse_taint(text: str) -> Obj:
    """``key=value:Effect`` or ``key:Effect`` (as ``--node-taint``)."""
    body, _, effect = text.rpartition(":")
    if not body or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise ValueError(f"invalid taint {text!r}: want key[=value]:NoSchedule|PreferNoSchedule|NoExecute")
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


class NodeAgent:
    def __init__(self, cfg: AgentConfig, client: Client, cri: CRIClient, *, control_plane: bool = False) -> None:
        self.cfg = cfg
        self.client = client
        self.cri = cri
        self.control_plane = control_plane
        self.name = cfg.node_name
        self.uid = ""
        args = cfg.kubelet_args()
        self.lease_duration = int(args.get("node-lease-duration-seconds", "40"))
        self.report_every = parse_duration(args.get("node-status-report-frequency", "5m"))
        self.status_every = parse_duration(args.get("node-status-update-frequency", "10s"))
        self.max_pods = int(args.get("max-pods", "110"))
        self.capacity, self.allocatable = self._resources(args)
        self._tasks: list[asyncio.Task[None]] = []
        self._poke = asyncio.Event()
        self._last_report = 0.0
        self.runtime_version = ""
        self.network_ready = False
        self.runtime_ready = False
        self.not_ready_message = ""

    # ---- resources --------------------------------------------------------------------

    def _resources(self, args: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        cpus = os.cpu_count() or 1
        mem = mem_total_bytes()
        st = os.statvfs(self.cfg.data_dir if self.cfg.data_dir.exists() else "/")
        disk = st.f_blocks * st.f_frsize
        capacity = {
            "cpu": str(cpus),
            "memory": f"{mem // 1024}Ki",
            "pods": str(self.max_pods),
            "ephemeral-storage": f"{disk // 1024}Ki",
            "hugepages-2Mi": "0",
            "hugepages-1Gi": "0",
        }
        reserved_cpu = 0
        reserved_mem = 0
        for key in ("kube-reserved", "system-reserved"):
            for item in filter(None, args.get(key, "").split(",")):
                name, _, value = item.partition("=")
                if name == "cpu":
                    reserved_cpu += to_milli(value)
                elif name == "memory":
                    reserved_mem += to_bytes(value)
        evict = 100 * 1024 * 1024
        for item in filter(None, args.get("eviction-hard", "").split(",")):
            name, _, value = item.partition("<")
            if name.strip() == "memory.available" and not value.endswith("%"):
                evict = to_bytes(value)
        allocatable = dict(capacity)
        allocatable["cpu"] = f"{max(0, cpus * 1000 - reserved_cpu)}m" if reserved_cpu else str(cpus)
        allocatable["memory"] = f"{max(0, mem - reserved_mem - evict) // 1024}Ki"
        allocatable["ephemeral-storage"] = str(int(disk * 0.9))
        return capacity, allocatable

    # ---- the Node object ----------------------------------------------------------------

    def labels(self) -> dict[str, str]:
        labels = {
            "beta.kubernetes.io/arch": host_arch(),
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": host_arch(),
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": INSTANCE_TYPE,
        }
        if self.control_plane:
            labels["node-role.kubernetes.io/control-plane"] = "true"
            labels["node-role.kubernetes.io/master"] = "true"
        labels.update(parse_labels(self.cfg.node_labels))
        return labels

    def status(self, old: Obj | None) -> Obj:
        old = old or {}
        now = rfc3339(time.time())
        status: Obj = {
            "capacity": dict(self.capacity),
            "allocatable": dict(self.allocatable),
            "conditions": [dict(c) for c in old.get("conditions") or []],
            "addresses": [
                {"type": "InternalIP", "address": self.cfg.node_ip},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": int(self.cfg.kubelet_port)}},
            "nodeInfo": {
                "machineID": _read("/etc/machine-id"),
                "systemUUID": _read("/sys/class/dmi/id/product_uuid") or _read("/etc/machine-id"),
                "bootID": _read("/proc/sys/kernel/random/boot_id"),
                "kernelVersion": platform.release(),
                "osImage": os_image(),
                "containerRuntimeVersion": self.runtime_version,
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": host_arch(),
            },
        }
        ready = self.runtime_ready and self.network_ready
        for ctype, reason, message, value in (
            ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", "False"),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", "False"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available", "False"),
            ("Ready", "KubeletReady" if ready else "KubeletNotReady",
             "kubelet is posting ready status" if ready else self.not_ready_message, "True" if ready else "False"),
        ):  # fmt: skip
            prev = get_condition(status, ctype)
            cond = {"type": ctype, "status": value, "reason": reason, "message": message,
                    "lastHeartbeatTime": (prev or {}).get("lastHeartbeatTime") or now}
            set_condition(status, cond, now=now)
        if "images" in old:
            status["images"] = old["images"]
        return status

    async def _images(self) -> list[Obj]:
        try:
            images = await self.cri.list_images()
        except CRIError:
            return []
        ordered = sorted(images, key=lambda i: -int(i.size))
        out: list[Obj] = [{"names": list(i.repo_tags) + list(i.repo_digests), "sizeBytes": int(i.size)} for i in ordered]
        return out[:50]

    async def _runtime_state(self) -> None:
        try:
            if not self.runtime_version:
                v = await self.cri.version()
                self.runtime_version = f"{v.runtime_name}://{v.runtime_version}"
            st = await self.cri.status()
        except CRIError as e:
            self.runtime_ready = self.network_ready = False
            self.not_ready_message = f"container runtime is down: {e}"
            return
        conds = {c.type: c for c in st.status.conditions}
        rt, net = conds.get("RuntimeReady"), conds.get("NetworkReady")
        self.runtime_ready = bool(rt and rt.status)
        self.network_ready = bool(net and net.status)
        if not self.runtime_ready:
            self.not_ready_message = f"container runtime status check may not have completed yet: RuntimeReady=false reason:{rt.reason if rt else ''} message:{rt.message if rt else ''}"
        elif not self.network_ready:
            self.not_ready_message = (f"container runtime network not ready: NetworkReady=false "
                                      f"reason:{net.reason if net else ''} message:{net.message if net else ''}")

    async def register(self) -> Obj:
        await self._runtime_state()
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
        try:
            node = await self.client.create(NODES, body)
            log.info("registered node %s", self.name)
        except AlreadyExists:
            node = await self.client.get(NODES, self.name)
            labels = node["metadata"].get("labels") or {}
            want = self.labels()
            if any(labels.get(k) != v for k, v in want.items()):
                node = await self.client.patch(NODES, self.name, {"metadata": {"labels": want}})
            log.info("adopted existing node %s", self.name)
        self.uid = node["metadata"]["uid"]
        node = await self._post(node, force=True)
        await self._renew()
        return node

    async def _post(self, node: Obj, *, force: bool = False) -> Obj:
        old = node.get("status") or {}
        desired = self.status(old)
        desired["images"] = await self._images()
        due = force or time.monotonic() - self._last_report >= self.report_every
        if not due and all(old.get(k) == v for k, v in desired.items()):
            return node
        now = rfc3339(time.time())
        for c in desired["conditions"]:
            c["lastHeartbeatTime"] = now
        node["status"] = desired
        for _ in range(3):
            try:
                updated = await self.client.update_status(NODES, node)
                self._last_report = time.monotonic()
                return updated
            except Conflict:
                fresh = await self.client.get(NODES, self.name)
                fresh["status"] = desired
                node = fresh
        return node

    async def wait_pod_cidr(self, timeout: float = 60.0) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            node = await self.client.get(NODES, self.name)
            cidr = str((node.get("spec") or {}).get("podCIDR") or "")
            if cidr:
                return cidr
            if loop.time() > deadline:
                raise TimeoutError(f"node {self.name} got no podCIDR in {timeout:.0f}s (is the controller manager running?)")
            await asyncio.sleep(0.2)

    # ---- loops ----------------------------------------------------------------------------

    def poke(self) -> None:
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
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.status_every):
                    await self._poke.wait()
            self._poke.clear()
            try:
                await self._runtime_state()
                node = await self.client.get(NODES, self.name)
                await self._post(node)
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

    async def _renew(self) -> None:
        now = micro_time(time.time())
        owner = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.uid}]
        lease = await self.client.get_or_none(LEASES, self.name, namespace=LEASE_NAMESPACE)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE, "ownerReferences": owner},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": self.lease_duration,
                         "renewTime": now},
            }
            with contextlib.suppress(AlreadyExists):
                await self.client.create(LEASES, body)
            return
        spec = lease.setdefault("spec", {})
        spec.update(holderIdentity=self.name, leaseDurationSeconds=self.lease_duration, renewTime=now)
        if not any(r.get("uid") == self.uid for r in lease["metadata"].get("ownerReferences") or []):
            lease["metadata"]["ownerReferences"] = owner
        with contextlib.suppress(Conflict, NotFound):
            await self.client.update(LEASES, lease)
