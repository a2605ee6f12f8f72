"""Admission run by the store before validation: the checks and defaults that need
other objects (namespace lifecycle, Service IP and NodePort allocation, CRD status)."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from typing import Any

import orjson

from k3py.server import errors
from k3py.server.registry.catalog import Catalog, ResourceInfo
from k3py.server.registry.store import ObjectStore, WriteContext

Obj = dict[str, Any]

CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class NamespaceLifecycle:
    def __init__(self, *, store: ObjectStore, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    async def __call__(self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: WriteContext) -> None:
        if old is not None or not info.namespaced:
            return
        ns_name = (obj.get("metadata") or {}).get("namespace", "")
        ns_info = self.catalog.get("", "v1", "namespaces")
        assert ns_info is not None
        rec = await self.store.ds.get(ns_info.key("", ns_name))
        if rec is None:
            raise errors.not_found("namespaces", ns_name)
        if b'"deletionTimestamp"' not in rec.value:
            return  # stored JSON never escapes the name: no need to parse the namespace
        ns = orjson.loads(rec.value)
        if ns["metadata"].get("deletionTimestamp") and not (info.group == "" and info.kind == "Event"):
            name = (obj.get("metadata") or {}).get("name") or ""
            raise errors.APIError(
                403,
                "Forbidden",
                f'{info.resource_name} "{name}" is forbidden: unable to create new content in namespace {ns_name} because it is being terminated',
                details={"name": name, "group": info.group, "kind": info.plural, "causes": [{"reason": "NamespaceTerminating", "message": f"namespace {ns_name} is being terminated", "field": "metadata.namespace"}]},
            )


class ServiceAllocator:
    """ClusterIPs from the service CIDR and NodePorts from the range.

    The set in use is read from stored Services under a lock, plus a short-lived
    reservation of what was just handed out (so two concurrent creates never get the
    same address before either is stored)."""

    RESERVE_SECONDS = 120.0

    def __init__(self, *, store: ObjectStore, catalog: Catalog, service_cidr: str, node_port_range: tuple[int, int]) -> None:
        self.store = store
        self.catalog = catalog
        self.net = ipaddress.ip_network(service_cidr, strict=False)
        self.ports = node_port_range
        self.lock = asyncio.Lock()
        self.reserved_ips: dict[str, float] = {}
        self.reserved_ports: dict[int, float] = {}

    async def _in_use(self, *, exclude_uid: str = "") -> tuple[set[str], set[int]]:
        info = self.catalog.get("", "v1", "services")
        assert info is not None
        page = await self.store.ds.list(info.key_root)
        ips: set[str] = set()
        ports: set[int] = set()
        for rec in page.records:
            svc = orjson.loads(rec.value)
            if svc["metadata"].get("uid") == exclude_uid:
                continue
            spec = svc.get("spec") or {}
            for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
                if ip and ip != "None":
                    ips.add(ip)
            for p in spec.get("ports") or []:
                if p.get("nodePort"):
                    ports.add(int(p["nodePort"]))
        now = time.monotonic()
        ips |= {ip for ip, t in self.reserved_ips.items() if t > now}
        ports |= {p for p, t in self.reserved_ports.items() if t > now}
        return ips, ports

    async def __call__(self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: WriteContext) -> None:
        if info.group != "" or info.kind != "Service" or ctx.subresource == "status":
            return
        spec = obj.setdefault("spec", {})
        old_spec = (old or {}).get("spec") or {}
        if old is not None:
            # Keep what was allocated when the writer did not say (patchAllocatedValues).
            if not spec.get("clusterIP") and old_spec.get("clusterIP"):
                spec["clusterIP"] = old_spec["clusterIP"]
                if old_spec.get("clusterIPs"):
                    spec["clusterIPs"] = old_spec["clusterIPs"]
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or []}
                for p in spec.get("ports") or []:
                    if not p.get("nodePort") and old_ports.get((p.get("port"), p.get("protocol", "TCP"))):
                        p["nodePort"] = old_ports[(p.get("port"), p.get("protocol", "TCP"))]
        stype = spec.get("type", "ClusterIP")
        if stype == "ExternalName":
            return
        needs_ip = spec.get("clusterIP") in (None, "")
        needs_ports = stype in ("NodePort", "LoadBalancer") and any(not p.get("nodePort") for p in spec.get("ports") or [])
        requested_ip = spec.get("clusterIP") if spec.get("clusterIP") not in (None, "", "None") else None
        if requested_ip and requested_ip == old_spec.get("clusterIP"):
            requested_ip = None
        requested_ports = [
            (i, int(p["nodePort"])) for i, p in enumerate(spec.get("ports") or [])
            if p.get("nodePort") and int(p["nodePort"]) not in {q.get("nodePort") for q in old_spec.get("ports") or []}
        ] if stype in ("NodePort", "LoadBalancer") else []
        if stype == "ClusterIP":
            for p in spec.get("ports") or []:
                p.pop("nodePort", None)
        if not (needs_ip or needs_ports or requested_ip or requested_ports):
            if spec.get("clusterIP") and not spec.get("clusterIPs"):
                spec["clusterIPs"] = [spec["clusterIP"]]
            return
        name = (obj.get("metadata") or {}).get("name", "")
        async with self.lock:
            ips, ports = await self._in_use(exclude_uid=(obj.get("metadata") or {}).get("uid", ""))
            causes: list[errors.Cause] = []
            if requested_ip:
                try:
                    addr = ipaddress.ip_address(requested_ip)
                    if addr not in self.net:
                        causes.append({"reason": "FieldValueInvalid", "field": "spec.clusterIPs", "message": f'Invalid value: ["{requested_ip}"]: failed to allocate IP {requested_ip}: the provided IP ({requested_ip}) is not in the valid range. The range of valid IPs is {self.net}'})
                    elif requested_ip in ips:
                        causes.append({"reason": "FieldValueInvalid", "field": "spec.clusterIPs", "message": f'Invalid value: ["{requested_ip}"]: failed to allocate IP {requested_ip}: provided IP is already allocated'})
                except ValueError:
                    causes.append({"reason": "FieldValueInvalid", "field": "spec.clusterIPs[0]", "message": f'Invalid value: "{requested_ip}": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'})
            for i, port in requested_ports:
                if not self.ports[0] <= port <= self.ports[1]:
                    causes.append({"reason": "FieldValueInvalid", "field": f"spec.ports[{i}].nodePort", "message": f"Invalid value: {port}: provided port is not in the valid range. The range of valid ports is {self.ports[0]}-{self.ports[1]}"})
                elif port in ports:
                    causes.append({"reason": "FieldValueInvalid", "field": f"spec.ports[{i}].nodePort", "message": f"Invalid value: {port}: provided port is already allocated"})
            if causes:
                raise errors.invalid("Service", name, causes)
            if needs_ip:
                ip = self._pick_ip(ips)
                spec["clusterIP"] = ip
                spec["clusterIPs"] = [ip]
                if not ctx.dry_run:
                    self.reserved_ips[ip] = time.monotonic() + self.RESERVE_SECONDS
            elif spec.get("clusterIP") and not spec.get("clusterIPs"):
                spec["clusterIPs"] = [spec["clusterIP"]]
            if requested_ip and not ctx.dry_run:
                self.reserved_ips[requested_ip] = time.monotonic() + self.RESERVE_SECONDS
            if stype in ("NodePort", "LoadBalancer"):
                for _, port in requested_ports:
                    ports.add(port)
                for p in spec.get("ports") or []:
                    if not p.get("nodePort"):
                        p["nodePort"] = self._pick_port(ports)
                        ports.add(p["nodePort"])
                    if not ctx.dry_run:
                        self.reserved_ports[int(p["nodePort"])] = time.monotonic() + self.RESERVE_SECONDS

    def _pick_ip(self, used: set[str]) -> str:
        size = self.net.num_addresses
        base = int(self.net.network_address)
        # Offset 1 is the kubernetes Service, 10 the DNS service: start after the
        # lower band like upstream's range split, then fall back to a scan.
        for _ in range(64):
            cand = str(ipaddress.ip_address(base + random.randint(16, size - 2)))
            if cand not in used:
                return cand
        for off in range(1, size - 1):
            cand = str(ipaddress.ip_address(base + off))
            if cand not in used:
                return cand
        raise errors.APIError(500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")

    def _pick_port(self, used: set[int]) -> int:
        lo, hi = self.ports
        for _ in range(64):
            p = random.randint(lo, hi)
            if p not in used:
                return p
        for p in range(lo, hi + 1):
            if p not in used:
                return p
        raise errors.APIError(500, "InternalError", "Internal error occurred: failed to allocate a nodePort: range is full")


class PodDefaults:
    """ServiceAccount admission's part that needs no other object, and
    DefaultTolerationSeconds (``--kube-apiserver-arg default-not-ready-toleration-seconds``,
    ``default-unreachable-toleration-seconds``; 300 s each by default)."""

    def __init__(self, *, not_ready_seconds: int = 300, unreachable_seconds: int = 300) -> None:
        self.seconds = {
            "node.kubernetes.io/not-ready": not_ready_seconds,
            "node.kubernetes.io/unreachable": unreachable_seconds,
        }

    async def __call__(self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: WriteContext) -> None:
        if info.group != "" or info.kind != "Pod" or old is not None:
            return
        spec = obj.setdefault("spec", {})
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        spec["serviceAccountName"] = sa
        spec["serviceAccount"] = sa
        self._default_toleration_seconds(spec)

    def _default_toleration_seconds(self, spec: Obj) -> None:
        tolerations = spec.get("tolerations") or []
        for key, seconds in self.seconds.items():
            if not any(
                t.get("key") in (key, None, "") and t.get("effect") in ("NoExecute", None, "")
                for t in tolerations
            ):
                tolerations.append(
                    {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds}
                )
        spec["tolerations"] = tolerations


pod_defaults = PodDefaults()


def crd_status(info: ResourceInfo, obj: Obj, old: Obj | None, now: str) -> None:
    """A CRD is accepted and established at once: our catalogue serves it synchronously."""
    spec = obj.get("spec") or {}
    versions = spec.get("versions") or []
    storage = [v.get("name") for v in versions if v.get("storage")]
    status = obj.setdefault("status", {}) or {}
    obj["status"] = status
    stored = list((old or {}).get("status", {}).get("storedVersions") or [])
    for v in storage:
        if v and v not in stored:
            stored.append(v)
    names = dict(spec.get("names") or {})
    if names and not names.get("listKind") and names.get("kind"):
        names["listKind"] = names["kind"] + "List"
    if names and not names.get("singular") and names.get("kind"):
        names["singular"] = str(names["kind"]).lower()
    old_conds = {c.get("type"): c for c in (status.get("conditions") or [])}

    def cond(t: str, reason: str, message: str, value: str = "True") -> Obj:
        prev = old_conds.get(t)
        ts = prev["lastTransitionTime"] if prev and prev.get("status") == value else now
        return {"type": t, "status": value, "lastTransitionTime": ts, "reason": reason, "message": message}

    conds = [
        cond("NamesAccepted", "NoConflicts", "no conflicts found"),
        cond("Established", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        conds.append(cond("Terminating", "InstanceDeletionInProgress", "CustomResource deletion is in progress"))
    status["conditions"] = conds
    status["acceptedNames"] = names
    status["storedVersions"] = stored


class CRDAdmission:
    def __init__(self, *, clock: Any) -> None:
        self.clock = clock

    async def __call__(self, info: ResourceInfo, obj: Obj, old: Obj | None, ctx: WriteContext) -> None:
        if info.group != "apiextensions.k8s.io" or info.kind != "CustomResourceDefinition":
            return
        from k3py.server.registry import structural
        from k3py.server.registry.store import now_rfc3339

        name = (obj.get("metadata") or {}).get("name", "")
        structural.default_crd(obj)
        causes = structural.validate_crd(obj, old=old)
        if causes:
            raise errors.invalid("CustomResourceDefinition", name, causes, "apiextensions.k8s.io")
        meta = obj["metadata"]
        if old is None:
            fins = list(meta.get("finalizers") or [])
            if CRD_FINALIZER not in fins:
                fins.append(CRD_FINALIZER)
            meta["finalizers"] = fins
        if ctx.subresource != "status":
            crd_status(info, obj, old, now_rfc3339(self.clock()))
