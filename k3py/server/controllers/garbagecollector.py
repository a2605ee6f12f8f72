"""The garbage collector: ownerReferences, and Background / Foreground / Orphan deletion
(upstream's garbagecollector, same decisions).

The graph
    One node per uid, for every object monitored (as upstream): its identity
    (resource, namespace, name), its ownerReferences, its dependents (uids) and its
    deletion state (being deleted; waiting for dependents = ``foregroundDeletion``
    finalizer; orphaning = ``orphan`` finalizer).  Owners referenced but never observed
    are "virtual" nodes: they hold their dependents until these are checked.  Informer
    handlers keep the graph in step; they never call the API.

    Monitors: the shared (full-object) informers for resources other controllers watch
    anyway (pods, workloads, services, slices, nodes, ...), and for the rest (configmaps,
    secrets, leases, RBAC, custom resources, ...) informers of our own that keep only
    metadata, so the collector does not hold every Secret in memory.  Custom resources
    are followed through the CRD informer: a monitor per CRD (its storage version).

Work (one queue of keys ``d:<uid>`` "attempt to delete" and ``o:<uid>`` "orphan")
    attempt to delete a dependent: re-read it (live GET); classify each ownerReference by
    a live GET of the owner: *dangling* (404 or another uid; remembered, uids never come
    back), *waiting* (owner being deleted in the foreground) or *solid*.  With a solid
    owner, dangling and waiting references are removed from it; otherwise it is deleted
    (Foreground when a waiting owner needs it and it has dependents itself, else with
    the propagation its own finalizers ask for, Background by default), with a uid
    precondition.  Owners of kinds we cannot resolve count as solid.
    an owner in the foreground: its dependents were enqueued when it was marked; once
    no dependent with ``blockOwnerDeletion: true`` remains, its ``foregroundDeletion``
    finalizer is removed and the API server deletes it.
    orphan: the owner's reference is removed from every dependent, then the ``orphan``
    finalizer.
    Writes are merge patches carrying the resourceVersion read (a lost race is a
    Conflict, retried).

Triggers: an object deleted enqueues its dependents; a dependent gone or changed
enqueues its owners in the foreground; an object whose owner is not in the graph is
checked (live GETs decide: that is how dependents created for owners that never existed
go); and every ``timings.gc_interval`` the stuck cases (owners waiting, orphaning,
virtual owners) are looked at again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from k3py.client import ApiError, Conflict, Informer, NotFound, Resource, WatchEvent
from k3py.client import resources as R
from k3py.server.controllers.base import Controller, every, meta

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.gc")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"

_rbac = "rbac.authorization.k8s.io"
_admission = "admissionregistration.k8s.io"

# Watched through the shared informers (other controllers keep full copies anyway).
SHARED: tuple[Resource, ...] = (
    R.PODS, R.REPLICASETS, R.DEPLOYMENTS, R.STATEFULSETS, R.DAEMONSETS, R.JOBS, R.CRONJOBS,
    R.CONTROLLERREVISIONS, R.ENDPOINTSLICES, R.ENDPOINTS, R.SERVICES,
    R.PERSISTENTVOLUMECLAIMS, R.NODES, R.NAMESPACES, R.SERVICEACCOUNTS,
    R.CUSTOMRESOURCEDEFINITIONS,
)  # fmt: skip

# Watched by metadata-only monitors of our own (probed first: unserved ones are skipped).
LIGHT: tuple[Resource, ...] = (
    R.CONFIGMAPS, R.SECRETS, R.LEASES, R.PERSISTENTVOLUMES, R.RESOURCEQUOTAS, R.LIMITRANGES,
    R.REPLICATIONCONTROLLERS, R.HORIZONTALPODAUTOSCALERS, R.PODDISRUPTIONBUDGETS,
    R.INGRESSES, R.INGRESSCLASSES, R.NETWORKPOLICIES, R.STORAGECLASSES, R.PRIORITYCLASSES,
    R.CERTIFICATESIGNINGREQUESTS,
    Resource("", "v1", "podtemplates", "PodTemplate"),
    Resource(_rbac, "v1", "roles", "Role"),
    Resource(_rbac, "v1", "rolebindings", "RoleBinding"),
    Resource(_rbac, "v1", "clusterroles", "ClusterRole", False),
    Resource(_rbac, "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource("storage.k8s.io", "v1", "csidrivers", "CSIDriver", False),
    Resource("storage.k8s.io", "v1", "csinodes", "CSINode", False),
    Resource("storage.k8s.io", "v1", "volumeattachments", "VolumeAttachment", False),
    Resource("node.k8s.io", "v1", "runtimeclasses", "RuntimeClass", False),
    Resource(_admission, "v1", "mutatingwebhookconfigurations",
             "MutatingWebhookConfiguration", False),
    Resource(_admission, "v1", "validatingwebhookconfigurations",
             "ValidatingWebhookConfiguration", False),
    Resource("apiregistration.k8s.io", "v1", "apiservices", "APIService", False),
)  # fmt: skip

ABSENT_CACHE_SIZE = 10_000
MAX_WRITE_ATTEMPTS = 5


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0] if "/" in api_version else ""


def slim(obj: Obj) -> Obj:
    """What the collector keeps of an object from a metadata-only monitor."""
    m = meta(obj)
    keep = ("name", "namespace", "uid", "resourceVersion", "ownerReferences",
            "deletionTimestamp", "finalizers")  # fmt: skip
    return {
        "apiVersion": obj.get("apiVersion", ""),
        "kind": obj.get("kind", ""),
        "metadata": {k: m[k] for k in keep if k in m},
    }


class MetadataInformer(Informer):
    """An informer whose cache holds only the metadata the collector needs."""

    async def _replace(self, items: list[Obj]) -> None:
        await super()._replace([slim(o) for o in items])

    async def _on_event(self, ev: WatchEvent) -> None:
        await super()._on_event(WatchEvent(ev.type, slim(ev.object)))


class Owner(NamedTuple):
    """An ownerReference as the graph keeps it (strings interned: many dependents share
    one owner)."""

    uid: str
    api_version: str
    kind: str
    name: str
    block: bool

    @classmethod
    def of(cls, ref: Obj) -> Owner:
        return cls(
            sys.intern(str(ref["uid"])),
            sys.intern(str(ref.get("apiVersion") or "")),
            sys.intern(str(ref.get("kind") or "")),
            sys.intern(str(ref.get("name") or "")),
            bool(ref.get("blockOwnerDeletion")),
        )


@dataclass(slots=True, eq=False)
class GraphNode:
    uid: str
    res: Resource | None = None  # None: a virtual owner of a kind we cannot resolve
    namespace: str = ""
    name: str = ""
    owners: tuple[Owner, ...] = ()
    dependents: set[str] = field(default_factory=set)
    observed: bool = False  # seen by a monitor (else: virtual, known from references)
    deleting: bool = False
    foreground: bool = False  # deleting and waiting for its dependents
    orphaning: bool = False  # deleting and orphaning its dependents

    def blocks(self, owner_uid: str) -> bool:
        return any(r.uid == owner_uid and r.block for r in self.owners)


class GarbageCollector(Controller):
    name = "garbagecollector"
    workers = 4

    def setup(self) -> None:
        self.nodes: dict[str, GraphNode] = {}
        self.absent: OrderedDict[str, None] = OrderedDict()
        self.kinds: dict[tuple[str, str], Resource] = {}
        self.monitors: dict[Resource, Informer] = {}  # our own (light and custom)
        self.custom: dict[tuple[str, str], Resource] = {}  # (group, plural) -> monitored
        self._running = False
        for res in (*SHARED, *LIGHT, *R.BUILTIN):
            self.kinds.setdefault((res.group, res.kind), res)
        for res in SHARED:
            inf = self.ctx.informer(res)
            self._follow(inf, res)
        crds = self.ctx.informer(R.CUSTOMRESOURCEDEFINITIONS)
        crds.add_handler(
            on_add=self._crd_seen,
            on_update=lambda _o, n: self._crd_seen(n),
            on_delete=self._crd_gone,
        )

    # ---- monitors ------------------------------------------------------------------------

    def _follow(self, inf: Informer, res: Resource) -> None:
        inf.add_handler(
            on_add=lambda o: self.observe(o, res),
            on_update=lambda _o, n: self.observe(n, res),
            on_delete=self.forget,
            readonly=True,
        )

    def _monitor(self, res: Resource) -> Informer:
        inf = MetadataInformer(self.client.transport, res)
        self._follow(inf, res)
        self.monitors[res] = inf
        return inf

    async def started(self) -> None:
        """Start our own monitors and wait (a bounded time) for those that can list."""
        listable: list[Informer] = []
        for res in [*LIGHT, *self.custom.values()]:
            if res in self.monitors:
                continue
            served = await self._served(res)
            if not served and res in LIGHT:
                continue  # a built-in this server does not serve
            inf = self._monitor(res)
            inf.start()
            if served:
                listable.append(inf)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(*(m.wait_synced() for m in listable))
        self._running = True
        self.resync()

    async def _served(self, res: Resource) -> bool:
        try:
            await self.client.list(res, limit=1)
        except ApiError:
            log.debug("gc: %s cannot be listed", res)
            return False
        return True

    def background(self) -> list[asyncio.Task[None]]:
        return [every(self.ctx.timings.gc_interval, self.resync, name="gc-resync")]

    async def stop(self) -> None:
        self._running = False
        await super().stop()
        monitors, self.monitors = self.monitors, {}
        await asyncio.gather(*(m.stop() for m in monitors.values()))

    def _crd_seen(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
        versions = [v for v in spec.get("versions") or [] if v.get("served", True)]
        if not (group and plural and kind and versions):
            return
        storage = next((v for v in versions if v.get("storage")), versions[0])
        res = Resource(group, storage["name"], plural, kind, spec.get("scope") != "Cluster")
        self.kinds[(group, kind)] = res
        if (group, plural) in self.custom:
            return
        self.custom[(group, plural)] = res
        if self._running:
            self._monitor(res).start()

    async def _crd_gone(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        res = self.custom.pop((group, plural), None)
        if res is None:
            return
        self.kinds.pop((group, res.kind), None)
        inf = self.monitors.pop(res, None)
        if inf is not None:
            await inf.stop()

    def resource_for(self, *, api_version: str, kind: str) -> Resource | None:
        return self.kinds.get((_group(api_version), kind))

    # ---- the graph (informer handlers: quick, no API calls) -----------------------------

    def _node(self, uid: str) -> GraphNode:
        node = self.nodes.get(uid)
        if node is None:
            node = self.nodes[uid] = GraphNode(uid)
        return node

    def _drop_if_unused(self, node: GraphNode) -> None:
        if not node.observed and not node.dependents:
            self.nodes.pop(node.uid, None)

    def _enqueue(self, prefix: str, uid: str) -> None:
        if self._running:
            self.queue.add(f"{prefix}:{uid}")

    def observe(self, obj: Obj, res: Resource) -> None:
        m = meta(obj)
        uid = m.get("uid")
        if not uid:
            return
        refs = tuple(
            Owner.of(r)
            for r in m.get("ownerReferences") or []
            if isinstance(r, dict) and r.get("uid")
        )
        node = self._node(uid)
        deleting = bool(m.get("deletionTimestamp"))
        finalizers = m.get("finalizers") or []
        foreground = deleting and FOREGROUND in finalizers
        orphaning = deleting and ORPHAN in finalizers
        old_refs = node.owners
        became_foreground = foreground and not node.foreground
        became_orphaning = orphaning and not node.orphaning
        changed = refs != old_refs or deleting != node.deleting
        node.res, node.name = res, m.get("name", "")
        node.namespace = sys.intern(m.get("namespace", ""))
        node.observed = True
        node.deleting, node.foreground, node.orphaning = deleting, foreground, orphaning
        node.owners = refs
        if refs != old_refs:
            self._relink(node, old_refs)
        if changed:
            for ref in (*old_refs, *refs):
                owner = self.nodes.get(ref.uid)
                if owner is not None and owner.foreground:
                    self._enqueue("d", owner.uid)
        if became_foreground:
            self._enqueue("d", uid)
            for dep in node.dependents:
                self._enqueue("d", dep)
        if became_orphaning:
            self._enqueue("o", uid)

    def _relink(self, node: GraphNode, old_refs: tuple[Owner, ...]) -> None:
        new_uids = {r.uid for r in node.owners}
        for ref in old_refs:
            if ref.uid in new_uids:
                continue
            owner = self.nodes.get(ref.uid)
            if owner is not None:
                owner.dependents.discard(node.uid)
                self._drop_if_unused(owner)
        old_uids = {r.uid for r in old_refs}
        for ref in node.owners:
            if ref.uid in old_uids:
                continue
            owner = self._node(ref.uid)
            owner.dependents.add(node.uid)
            if not owner.observed:
                owner.res = owner.res or self.resource_for(
                    api_version=ref.api_version, kind=ref.kind
                )
                owner.name = owner.name or ref.name
            if not owner.observed or owner.deleting:
                self._enqueue("d", node.uid)  # a live look decides

    def forget(self, obj: Obj) -> None:
        uid = meta(obj).get("uid")
        node = self.nodes.get(uid or "")
        if node is None:
            return
        self._mark_absent(node.uid)
        for ref in node.owners:
            owner = self.nodes.get(ref.uid)
            if owner is not None:
                owner.dependents.discard(node.uid)
                if owner.foreground:
                    self._enqueue("d", owner.uid)
                self._drop_if_unused(owner)
        node.owners = ()
        node.observed = False
        node.deleting = node.foreground = node.orphaning = False
        for dep in node.dependents:
            self._enqueue("d", dep)
        self._drop_if_unused(node)

    def _mark_absent(self, uid: str) -> None:
        self.absent[uid] = None
        self.absent.move_to_end(uid)
        while len(self.absent) > ABSENT_CACHE_SIZE:
            self.absent.popitem(last=False)

    def resync(self) -> None:
        """Look again at whatever may be stuck: owners waiting for or orphaning their
        dependents, and dependents of owners never observed."""
        if not self._running:
            return
        for node in list(self.nodes.values()):
            if node.observed and node.foreground:
                self._enqueue("d", node.uid)
            if node.observed and node.orphaning:
                self._enqueue("o", node.uid)
            if not node.observed:
                for dep in node.dependents:
                    self._enqueue("d", dep)

    # ---- work ----------------------------------------------------------------------------

    async def reconcile(self, key: str) -> float | None:
        kind, _, uid = key.partition(":")
        node = self.nodes.get(uid)
        if node is None or not node.observed or node.res is None:
            return None
        if kind == "o":
            await self.orphan_dependents(node)
        else:
            await self.attempt_to_delete(node)
        return None

    async def _get_live(self, node: GraphNode) -> Obj | None:
        """The object as the API has it now (None: gone, or another object by now)."""
        assert node.res is not None
        try:
            obj = await self.client.get(node.res, node.name, namespace=node.namespace)
        except NotFound:
            return None
        return obj if meta(obj).get("uid") == node.uid else None

    async def attempt_to_delete(self, node: GraphNode) -> None:
        if node.deleting and not node.foreground:
            return  # a one-way trip: its dependents are looked at once it is gone
        latest = await self._get_live(node)
        if latest is None:
            return  # the informer's delete event will come
        finalizers = meta(latest).get("finalizers") or []
        if meta(latest).get("deletionTimestamp") and FOREGROUND in finalizers:
            await self._process_foreground(node, latest)
            return
        refs = [r for r in meta(latest).get("ownerReferences") or [] if r.get("uid")]
        if not refs:
            return
        solid, dangling, waiting = await self.classify(node, refs)
        if solid:
            if dangling or waiting:
                gone = {r["uid"] for r in (*dangling, *waiting)}
                await self._edit_owner_refs(
                    node, lambda rs: [r for r in rs if r.get("uid") not in gone]
                )
            return
        if waiting and node.dependents:
            if any(self.nodes[d].foreground for d in node.dependents if d in self.nodes):
                # A cycle may be forming: unblock our owners before going foreground.
                await self._edit_owner_refs(node, _unblocked)
            await self._delete(node, "Foreground")
            return
        if ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        await self._delete(node, policy)

    async def classify(
        self, node: GraphNode, refs: list[Obj]
    ) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """(solid, dangling, waiting-for-dependents) owner references."""
        solid: list[Obj] = []
        dangling: list[Obj] = []
        waiting: list[Obj] = []
        for ref in refs:
            state = await self._owner_state(node, ref)
            {"solid": solid, "dangling": dangling, "waiting": waiting}[state].append(ref)
        return solid, dangling, waiting

    async def _owner_state(self, node: GraphNode, ref: Obj) -> str:
        uid = str(ref["uid"])
        if uid in self.absent:
            return "dangling"
        res = self.resource_for(
            api_version=str(ref.get("apiVersion") or ""), kind=str(ref.get("kind"))
        )
        if res is None:
            return "solid"  # a kind we cannot look up: never delete on a guess
        if res.namespaced and not node.namespace:
            return "dangling"  # a cluster-scoped dependent cannot have a namespaced owner
        try:
            owner = await self.client.get(res, str(ref.get("name") or ""),
                                          namespace=node.namespace if res.namespaced else "")  # fmt: skip
        except NotFound:
            self._mark_absent(uid)
            return "dangling"
        om = meta(owner)
        if om.get("uid") != uid:
            self._mark_absent(uid)
            return "dangling"
        if om.get("deletionTimestamp") and FOREGROUND in (om.get("finalizers") or []):
            return "waiting"
        return "solid"

    async def _process_foreground(self, node: GraphNode, latest: Obj) -> None:
        blocking = [
            self.nodes[d]
            for d in node.dependents
            if d in self.nodes and self.nodes[d].observed and self.nodes[d].blocks(node.uid)
        ]
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)
            return
        for dep in blocking:
            if not dep.foreground:
                self._enqueue("d", dep.uid)

    async def orphan_dependents(self, node: GraphNode) -> None:
        latest = await self._get_live(node)
        if latest is None or ORPHAN not in (meta(latest).get("finalizers") or []):
            return
        for dep_uid in list(node.dependents):
            dep = self.nodes.get(dep_uid)
            if dep is None or not dep.observed or dep.res is None:
                continue
            await self._edit_owner_refs(dep, lambda rs: [r for r in rs if r.get("uid") != node.uid])
        await self._remove_finalizer(node, ORPHAN)

    # ---- writes --------------------------------------------------------------------------

    async def _delete(self, node: GraphNode, policy: str) -> None:
        assert node.res is not None
        log.info("gc: deleting %s %s/%s (%s)", node.res.kind, node.namespace, node.name, policy)
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(
                node.res,
                node.name,
                namespace=node.namespace,
                propagation_policy=policy,
                preconditions_uid=node.uid,
            )

    async def _edit_owner_refs(self, node: GraphNode, edit: Any) -> None:
        """Replace the object's ownerReferences with ``edit(current)`` (optimistically)."""
        assert node.res is not None
        for _ in range(MAX_WRITE_ATTEMPTS):
            latest = await self._get_live(node)
            if latest is None:
                return
            m = meta(latest)
            refs = list(m.get("ownerReferences") or [])
            new = edit(refs)
            if new == refs:
                return
            body = {"metadata": {"resourceVersion": m.get("resourceVersion"),
                                 "ownerReferences": new or None}}  # fmt: skip
            try:
                await self.client.patch(node.res, node.name, body, namespace=node.namespace)
                return
            except Conflict:
                continue
            except NotFound:
                return
        raise Conflict(
            {"code": 409, "reason": "Conflict", "message": "ownerReferences kept changing"}
        )

    async def _remove_finalizer(self, node: GraphNode, finalizer: str) -> None:
        assert node.res is not None
        for _ in range(MAX_WRITE_ATTEMPTS):
            latest = await self._get_live(node)
            if latest is None:
                return
            m = meta(latest)
            fins = list(m.get("finalizers") or [])
            if finalizer not in fins:
                return
            rest = [f for f in fins if f != finalizer]
            body = {"metadata": {"resourceVersion": m.get("resourceVersion"),
                                 "finalizers": rest or None}}  # fmt: skip
            try:
                await self.client.patch(node.res, node.name, body, namespace=node.namespace)
                return
            except Conflict:
                continue
            except NotFound:
                return
        raise Conflict({"code": 409, "reason": "Conflict", "message": "finalizers kept changing"})


def _unblocked(refs: list[Obj]) -> list[Obj]:
    return [{**r, "blockOwnerDeletion": False} if r.get("blockOwnerDeletion") else r for r in refs]


CONTROLLERS = [GarbageCollector]
