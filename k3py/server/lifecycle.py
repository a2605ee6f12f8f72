"""What the API server does by itself: bootstrap objects, serve CRDs, finish deletions.

* Bootstrap: the four system namespaces, the ``kubernetes`` Service with its
  Endpoints/EndpointSlice pointing at this server, and the ``kube-dns`` Service.
* CRDs: every stored CRD is turned into catalogue entries, synchronously after each
  write (so a custom resource can be created right after its CRD) and at boot.
* Namespace deletion: a Terminating namespace is emptied, then its ``kubernetes``
  finalizer is removed and the store deletes it.
* CRD deletion: instances are deleted, then the cleanup finalizer is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import Any

import orjson

from k3py.server import errors
from k3py.server.admission import CRD_FINALIZER
from k3py.server.datastore.types import WatchCutOff
from k3py.server.registry.catalog import Catalog, ResourceInfo
from k3py.server.registry.store import DeleteOptions, ObjectStore, WriteContext

log = logging.getLogger("k3py.lifecycle")
Obj = dict[str, Any]

SYSTEM = WriteContext(user="system:apiserver", groups=("system:masters",), field_manager="kube-apiserver")


def crd_resource_infos(crd: Obj) -> list[ResourceInfo]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group", "")
    versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
    storage = next((v.get("name") for v in spec.get("versions") or [] if v.get("storage")), None)
    out = []
    for v in versions:
        subs = []
        vsubs = v.get("subresources") or {}
        if "status" in vsubs:
            subs.append("status")
        if "scale" in vsubs:
            subs.append("scale")
        entry = dict(v)
        entry["_listKind"] = names.get("listKind") or names.get("kind", "") + "List"
        entry["_shortNames"] = names.get("shortNames") or []
        entry["_categories"] = names.get("categories") or []
        out.append(
            ResourceInfo(
                group=group,
                version=v["name"],
                kind=names.get("kind", ""),
                plural=names.get("plural", ""),
                singular=names.get("singular") or names.get("kind", "").lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                subresources=tuple(subs),
                crd=entry,
                preferred=v["name"] == storage,
            )
        )
    return out


class CRDServing:
    """Keeps the catalogue in step with stored CRDs."""

    def __init__(self, *, store: ObjectStore, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    def register(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        self.catalog.put_custom(crd_resource_infos(crd), group=spec.get("group", ""), plural=names.get("plural", ""))

    def unregister(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        self.catalog.remove_custom(group=spec.get("group", ""), plural=(spec.get("names") or {}).get("plural", ""))

    async def load_all(self) -> None:
        info = self.catalog.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert info is not None
        page = await self.store.ds.list(info.key_root)
        for rec in page.records:
            self.register(orjson.loads(rec.value))

    async def after_write(self, info: ResourceInfo, obj: Obj, deleted: bool) -> None:
        if info.group != "apiextensions.k8s.io" or info.kind != "CustomResourceDefinition":
            return
        if deleted:
            self.unregister(obj)
        else:
            self.register(obj)


async def bootstrap(*, store: ObjectStore, catalog: Catalog, advertise_ip: str, port: int, service_cidr: str, cluster_dns: str) -> None:
    ns_info = catalog.get("", "v1", "namespaces")
    assert ns_info is not None
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        await _ensure(store, ns_info, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    first_ip = str(next(ipaddress.ip_network(service_cidr, strict=False).hosts()))
    svc = catalog.get("", "v1", "services")
    assert svc is not None
    await _ensure(store, svc, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"clusterIP": first_ip, "clusterIPs": [first_ip], "type": "ClusterIP", "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    })
    await _ensure(store, svc, {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
                     "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}},
        "spec": {"clusterIP": cluster_dns, "clusterIPs": [cluster_dns], "type": "ClusterIP", "selector": {"k8s-app": "kube-dns"},
                 "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                           {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                           {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]},
    })
    if ipaddress.ip_address(advertise_ip).is_loopback:
        # Endpoints may not hold loopback addresses (as upstream): a server that
        # advertises 127.0.0.1 (tests) publishes no endpoints for `kubernetes`.
        log.info("advertise address %s is loopback: no endpoints for the kubernetes Service", advertise_ip)
        return
    ep = catalog.get("", "v1", "endpoints")
    assert ep is not None
    endpoints = {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": advertise_ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
    }
    await _ensure(store, ep, endpoints, update=True)
    es = catalog.get("discovery.k8s.io", "v1", "endpointslices")
    assert es is not None
    await _ensure(store, es, {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "kubernetes", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "kubernetes", "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": [advertise_ip], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }, update=True)


async def _ensure(store: ObjectStore, info: ResourceInfo, obj: Obj, *, update: bool = False) -> None:
    meta = obj["metadata"]
    exists = await store.ds.get(info.key(meta.get("namespace", ""), meta["name"])) is not None
    try:
        if not exists:
            await store.create(info, orjson.loads(orjson.dumps(obj)), ctx=SYSTEM)
            return
    except errors.APIError as e:
        if e.reason != "AlreadyExists":
            raise
    if not update:
        return

    def mutate(cur: Obj) -> Obj:
        for k, v in obj.items():
            if k not in ("metadata", "apiVersion", "kind"):
                cur[k] = v
        return cur

    await store.modify(info, meta.get("namespace", ""), meta["name"], mutate, ctx=SYSTEM)


class Finisher:
    """Watches Namespaces and CRDs marked for deletion and finishes the job."""

    def __init__(self, *, store: ObjectStore, catalog: Catalog, interval: float = 1.0) -> None:
        self.store = store
        self.catalog = catalog
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="k3py-finisher")
        self._watch_task = asyncio.create_task(self._watch(), name="k3py-finisher-watch")

    async def stop(self) -> None:
        # Python 3.11's wait_for can swallow a cancel that races with the kick
        # (gh-86296): the flag ends the loop whatever happens to the cancel.
        self._stopping = True
        self._kick.set()
        for t in (self._task, getattr(self, "_watch_task", None)):
            if t:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t

    async def _watch(self) -> None:
        prefixes = ("/core/namespaces/", "/apiextensions.k8s.io/customresourcedefinitions/")
        while True:
            try:
                w = self.store.ds.watch("/", after_revision=self.store.ds.current_revision())
                async for batch in w:
                    if any(ev.key.startswith(prefixes) for ev in batch):
                        self._kick.set()
            except WatchCutOff:
                self._kick.set()
                continue
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("finisher watch failed")
                await asyncio.sleep(1)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                busy = await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep going
                log.exception("finisher sweep failed")
                busy = True
            if self._stopping:
                return
            self._kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), timeout=self.interval if busy else 30.0)

    async def sweep(self) -> bool:
        busy = False
        ns_info = self.catalog.get("", "v1", "namespaces")
        crd_info = self.catalog.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert ns_info is not None and crd_info is not None
        for rec in (await self.store.ds.list(ns_info.key_root)).records:
            ns = orjson.loads(rec.value)
            if ns["metadata"].get("deletionTimestamp"):
                busy = True
                await self._finish_namespace(ns_info, ns)
        for rec in (await self.store.ds.list(crd_info.key_root)).records:
            crd = orjson.loads(rec.value)
            if crd["metadata"].get("deletionTimestamp"):
                busy = True
                await self._finish_crd(crd_info, crd)
        return busy

    async def _finish_namespace(self, info: ResourceInfo, ns: Obj) -> None:
        name = ns["metadata"]["name"]
        remaining = 0
        seen: set[str] = set()
        for r in self.catalog.all():
            if not r.namespaced or r.virtual or r.key_root in seen:
                continue
            seen.add(r.key_root)
            page = await self.store.ds.list(r.prefix(name))
            for rec in page.records:
                remaining += 1
                obj_name = orjson.loads(rec.value)["metadata"]["name"]
                with contextlib.suppress(errors.APIError):
                    await self.store.delete(r, name, obj_name, opts=DeleteOptions(propagation_policy="Background"))
        if remaining:
            return
        spec_fins = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != "kubernetes"]

        def mutate(cur: Obj) -> Obj:
            cur.setdefault("spec", {})["finalizers"] = spec_fins
            if not spec_fins:
                cur["spec"].pop("finalizers", None)
            return cur

        with contextlib.suppress(errors.APIError):
            await self.store.modify(info, "", name, mutate, ctx=WriteContext(user="system:apiserver", subresource="finalize"))

    async def _mark_crd_terminating(self, info: ResourceInfo, crd: Obj) -> None:
        """The Terminating condition, as upstream's CRD finalizer sets it (via /status)."""
        conds = (crd.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Terminating" and c.get("status") == "True" for c in conds):
            return
        from k3py.server.admission import crd_status
        from k3py.server.registry.store import now_rfc3339

        def mutate(cur: Obj) -> Obj:
            crd_status(info, cur, orjson.loads(orjson.dumps(cur)), now_rfc3339(self.store.clock()))
            return cur

        ctx = WriteContext(user="system:apiserver", field_manager="kube-apiserver", subresource="status")
        with contextlib.suppress(errors.APIError):
            await self.store.modify(info, "", crd["metadata"]["name"], mutate, ctx=ctx)

    async def _finish_crd(self, info: ResourceInfo, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        group = spec.get("group", "")
        plural = (spec.get("names") or {}).get("plural", "")
        key_root = f"/{group}/{plural}/"
        page = await self.store.ds.list(key_root)
        infos = [r for r in self.catalog.all() if r.group == group and r.plural == plural]
        await self._mark_crd_terminating(info, crd)
        if page.records and infos:
            r = infos[0]
            for rec in page.records:
                meta = orjson.loads(rec.value)["metadata"]
                with contextlib.suppress(errors.APIError):
                    await self.store.delete(r, meta.get("namespace", ""), meta["name"], opts=DeleteOptions())
            return
        if page.records:
            for rec in page.records:
                with contextlib.suppress(Exception):
                    await self.store.ds.delete(rec.key)
            return

        def mutate(cur: Obj) -> Obj:
            cur["metadata"]["finalizers"] = [f for f in cur["metadata"].get("finalizers") or [] if f != CRD_FINALIZER]
            return cur

        with contextlib.suppress(errors.APIError):
            await self.store.modify(info, "", crd["metadata"]["name"], mutate, ctx=SYSTEM)
