"""EndpointSlices and Endpoints for Services with a selector (upstream's
endpointslice-controller and endpoints-controller).

Both controllers are keyed by Service (``namespace/name``).  A pod event enqueues the
Services of its namespace whose selector matches the pod's old or new labels; a Service
event enqueues itself; a change to one of our slices (or Endpoints) enqueues its Service,
so edits by hand are put back.

EndpointSlices (addressType IPv4, at most ``MAX_PER_SLICE`` endpoints each):

* Which pods: those with an IPv4 pod IP that are not Succeeded/Failed.  Terminating pods
  stay, with ``ready`` false (unless ``publishNotReadyAddresses``), ``serving`` = the
  pod's Ready condition and ``terminating`` true, as upstream.
* Ports are resolved per pod (a named ``targetPort`` is looked up among the pod's
  container ports with the same protocol; a pod without it gets no such port), so
  endpoints are grouped by their port list, one set of slices per group.
* Placement keeps churn low: an endpoint already in a slice of the right group stays
  there; new ones fill slices with room, then new slices (``generateName: <svc>-``);
  slices left empty are deleted.  A Service with no endpoints keeps one empty
  placeholder slice.  Nothing is written when a slice already holds what it should.
* Writes race the informer cache, so the controller remembers the slices it wrote and
  waits (briefly) for the cache to show them before computing again (upstream's
  endpointSliceTracker), instead of creating slices twice.

Endpoints (the legacy API, same name as the Service): ready pods in ``addresses``,
others in ``notReadyAddresses`` (all in ``addresses`` with ``publishNotReadyAddresses``);
terminating pods are left out unless ``publishNotReadyAddresses``; subsets group the
addresses with identical port sets; at most ``MAX_ENDPOINTS_ADDRESSES`` addresses (then
the ``endpoints.kubernetes.io/over-capacity: truncated`` annotation).  The label
``endpointslice.kubernetes.io/skip-mirror: "true"`` keeps the mirroring controller off.
Endpoints of a deleted Service are deleted; slices go with their Service through the
garbage collector (ownerReferences).

Skipped: Services without a selector, ExternalName Services and ``default/kubernetes``
(the API server publishes its own endpoints).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from k3py.client import (
    AlreadyExists,
    Conflict,
    Forbidden,
    NotFound,
    by_label,
    key_for,
    key_of,
    split_key,
)
from k3py.client.resources import ENDPOINTS, ENDPOINTSLICES, NODES, PODS, SERVICES
from k3py.server.controllers.base import Controller, meta, pod_is_ready

Obj = dict[str, Any]
log = logging.getLogger("k3py.controllers.endpoints")

MAX_PER_SLICE = 100
MAX_ENDPOINTS_ADDRESSES = 1000
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
LABEL_SERVICE_NAME = "kubernetes.io/service-name"
LABEL_MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
LABEL_SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
LABEL_HEADLESS = "service.kubernetes.io/headless"
ANN_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"
ANN_OVER_CAPACITY = "endpoints.kubernetes.io/over-capacity"
ZONE_LABEL = "topology.kubernetes.io/zone"
SLICE_INDEX = "endpoints.k3py.io/service-name"
POD_LABEL_INDEX = "endpoints.k3py.io/namespace-label"  # "<ns>/<key>=<value>" per label
PENDING_TTL = 10.0  # how long to wait for the cache to show our own writes

PortKey = tuple[tuple[str, int, str, str], ...]


# ---- what a Service selects ---------------------------------------------------------


def service_is_managed(svc: Obj) -> bool:
    """Whether the controllers compute endpoints for this Service."""
    m = meta(svc)
    spec = svc.get("spec") or {}
    if m.get("namespace") == "default" and m.get("name") == "kubernetes":
        return False
    if spec.get("type") == "ExternalName":
        return False
    return bool(spec.get("selector"))


def selects(svc: Obj, pod: Obj) -> bool:
    selector = (svc.get("spec") or {}).get("selector") or {}
    if not selector:
        return False
    labels = meta(pod).get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def pod_ipv4(pod: Obj) -> str:
    status = pod.get("status") or {}
    ips = [p.get("ip", "") for p in status.get("podIPs") or []] or [status.get("podIP") or ""]
    for ip in ips:
        if ip and ":" not in ip:
            return str(ip)
    return ""


def pod_is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def find_port(pod: Obj, svc_port: Obj) -> int | None:
    """The container port a Service port sends to on this pod (upstream FindPort)."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if target is None:
        return None
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = svc_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for c in [*(spec.get("containers") or []), *sidecars]:
        for p in c.get("ports") or []:
            if p.get("name") == target and (p.get("protocol") or "TCP") == protocol:
                return int(p["containerPort"])
    return None


def slim_pod(pod: Obj) -> Obj:
    """What the endpoint controllers read of a pod (kept per pod between reconciles)."""
    m = meta(pod)
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]

    def ports_of(c: Obj) -> Obj:
        return {"restartPolicy": c.get("restartPolicy"), "ports": c.get("ports") or []}

    keep_meta = ("name", "namespace", "uid", "labels", "deletionTimestamp")
    keep_spec = ("nodeName", "hostname", "subdomain")
    return {
        "metadata": {k: m[k] for k in keep_meta if k in m},
        "spec": {
            **{k: spec[k] for k in keep_spec if k in spec},
            "containers": [ports_of(c) for c in spec.get("containers") or []],
            "initContainers": [ports_of(c) for c in spec.get("initContainers") or []],
        },
        "status": {
            "phase": status.get("phase"),
            "podIP": status.get("podIP"),
            "podIPs": status.get("podIPs") or [],
            "conditions": ready,
        },
    }


def pod_label_pairs(pod: Obj) -> list[str]:
    m = meta(pod)
    ns = m.get("namespace", "")
    return [f"{ns}/{k}={v}" for k, v in (m.get("labels") or {}).items()]


def endpoint_ports(svc: Obj, pod: Obj) -> list[Obj]:
    """The slice ports of one pod for a Service (ports the pod lacks are left out)."""
    out: list[Obj] = []
    for sp in (svc.get("spec") or {}).get("ports") or []:
        port = find_port(pod, sp)
        if port is None:
            continue
        entry: Obj = {"name": sp.get("name") or "", "port": port,
                      "protocol": sp.get("protocol") or "TCP"}  # fmt: skip
        if sp.get("appProtocol"):
            entry["appProtocol"] = sp["appProtocol"]
        out.append(entry)
    return out


def port_key(ports: list[Obj]) -> PortKey:
    return tuple(
        (
            p.get("name") or "",
            int(p.get("port") or 0),
            p.get("protocol") or "TCP",
            p.get("appProtocol") or "",
        )  # fmt: skip
        for p in ports
    )


def should_set_hostname(pod: Obj, svc: Obj) -> bool:
    spec = pod.get("spec") or {}
    return bool(spec.get("hostname")) and spec.get("subdomain") == meta(svc).get("name")


def target_ref(pod: Obj) -> Obj:
    m = meta(pod)
    return {"kind": "Pod", "namespace": m.get("namespace", ""), "name": m.get("name", ""),
            "uid": m.get("uid", "")}  # fmt: skip


def slice_endpoint(pod: Obj, svc: Obj, *, zone: str) -> Obj | None:
    """The EndpointSlice endpoint for a pod, or None when the pod is not an endpoint."""
    ip = pod_ipv4(pod)
    if not ip or pod_is_terminal(pod):
        return None
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = pod_is_ready(pod)
    terminating = bool(meta(pod).get("deletionTimestamp"))
    ready = publish or (serving and not terminating)
    ep: Obj = {
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": target_ref(pod),
    }
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        ep["nodeName"] = node
    if zone:
        ep["zone"] = zone
    if should_set_hostname(pod, svc):
        ep["hostname"] = pod["spec"]["hostname"]
    return ep


def endpoint_id(ep: Obj) -> str:
    ref = ep.get("targetRef") or {}
    return str(ref.get("uid") or ref.get("name") or (ep.get("addresses") or [""])[0])


def endpoint_view(ep: Obj) -> tuple[Any, ...]:
    """What we compare of an endpoint (robust to fields the server adds or drops)."""
    c = ep.get("conditions") or {}
    ref = ep.get("targetRef") or {}
    return (
        tuple(ep.get("addresses") or ()),
        c.get("ready"), c.get("serving"), c.get("terminating"),
        ref.get("kind"), ref.get("namespace"), ref.get("name"), ref.get("uid"),
        ep.get("nodeName") or "", ep.get("zone") or "", ep.get("hostname") or "",
    )  # fmt: skip


def _placement_order(ep: Obj) -> tuple[str, tuple[Any, ...]]:
    return (str((ep.get("targetRef") or {}).get("name") or ""), endpoint_view(ep))


def headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def owner_ref(svc: Obj) -> Obj:
    m = meta(svc)
    return {"apiVersion": "v1", "kind": "Service", "name": m.get("name", ""),
            "uid": m.get("uid", ""), "controller": True, "blockOwnerDeletion": True}  # fmt: skip


def slice_labels(svc: Obj) -> dict[str, str]:
    labels = {
        k: v
        for k, v in (meta(svc).get("labels") or {}).items()
        if k not in (LABEL_SERVICE_NAME, LABEL_MANAGED_BY, LABEL_HEADLESS)
    }
    labels[LABEL_SERVICE_NAME] = meta(svc).get("name", "")
    labels[LABEL_MANAGED_BY] = CONTROLLER_NAME
    if headless(svc):
        labels[LABEL_HEADLESS] = ""
    return labels


class _Written:
    """Slices (or Endpoints) a controller wrote and its cache has not shown yet."""

    def __init__(self) -> None:
        # service key -> (written at, {object key: resourceVersion, or None if deleted})
        self._pending: dict[str, tuple[float, dict[str, str | None]]] = {}

    def note(self, svc_key: str, obj_key: str, rv: str | None) -> None:
        at, objs = self._pending.get(svc_key, (time.monotonic(), {}))
        objs[obj_key] = rv
        self._pending[svc_key] = (at, objs)

    def seen(self, svc_key: str, cached_rv: Any) -> bool:
        """Whether the cache (``cached_rv(key) -> rv | None``) shows every write."""
        entry = self._pending.get(svc_key)
        if entry is None:
            return True
        at, objs = entry
        if time.monotonic() - at > PENDING_TTL:
            self._pending.pop(svc_key, None)
            return True
        for key, rv in objs.items():
            have = cached_rv(key)
            if rv is None and have is not None:
                return False
            if rv is not None and (have is None or _rv_int(have) < _rv_int(rv)):
                return False
        self._pending.pop(svc_key, None)
        return True


def _rv_int(rv: str) -> int:
    try:
        return int(rv)
    except ValueError:
        return 0


# ---- the shared skeleton ------------------------------------------------------------


class _ServiceKeyed(Controller):
    """Services, pods and nodes feeding a queue of Service keys."""

    def setup(self) -> None:
        self.services = self.ctx.informer(SERVICES)
        self.pods = self.ctx.informer(PODS, indexers={POD_LABEL_INDEX: pod_label_pairs})
        self.nodes = self.ctx.informer(NODES)
        self.watch(self.services)
        # namespace -> {service name: selector}: pod events are matched without decoding
        # Services from the cache.
        self._selectors: dict[str, dict[str, dict[str, str]]] = {}
        self.services.add_handler(
            on_add=self._service_seen,
            on_update=lambda _o, n: self._service_seen(n),
            on_delete=self._service_gone,
        )
        self.pods.add_handler(
            on_add=self._pod_changed,
            on_update=self._pod_updated,
            on_delete=self._pod_deleted,
            readonly=True,
        )
        self.written = _Written()
        self._slim: dict[str, tuple[str, Obj]] = {}  # pod key -> (resourceVersion, slim pod)

    def _service_seen(self, svc: Obj) -> None:
        m = meta(svc)
        per_ns = self._selectors.setdefault(m.get("namespace", ""), {})
        if service_is_managed(svc):
            per_ns[m.get("name", "")] = dict((svc.get("spec") or {}).get("selector") or {})
        else:
            per_ns.pop(m.get("name", ""), None)

    def _service_gone(self, svc: Obj) -> None:
        m = meta(svc)
        per_ns = self._selectors.get(m.get("namespace", ""), {})
        per_ns.pop(m.get("name", ""), None)
        if not per_ns:
            self._selectors.pop(m.get("namespace", ""), None)

    def _services_for(self, ns: str, *pods: Obj) -> None:
        """Enqueue the Services (of ``ns``) selecting any of ``pods``."""
        for name, selector in self._selectors.get(ns, {}).items():
            for pod in pods:
                labels = meta(pod).get("labels") or {}
                if all(labels.get(k) == v for k, v in selector.items()):
                    self.queue.add(key_for(namespace=ns, name=name))
                    break

    def _pod_deleted(self, pod: Obj) -> None:
        self._slim.pop(key_of(pod), None)
        self._pod_changed(pod)

    def _pod_changed(self, pod: Obj) -> None:
        self._services_for(meta(pod).get("namespace", ""), pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._services_for(meta(new).get("namespace", ""), old, new)

    async def started(self) -> None:
        self.enqueue_all(self.services)

    def selected_pods(self, svc: Obj) -> list[Obj]:
        """The pods a Service selects, by name (only they are decoded from the cache)."""
        ns = meta(svc).get("namespace", "")
        selector = (svc.get("spec") or {}).get("selector") or {}
        keys: set[str] | None = None
        for k, v in selector.items():
            found = set(self.pods.cache.index_keys(POD_LABEL_INDEX, f"{ns}/{k}={v}"))
            keys = found if keys is None else keys & found
            if not keys:
                return []
        pods = [p for key in sorted(keys or ()) if (p := self._pod(key)) is not None]
        return [p for p in pods if selects(svc, p)]

    def _pod(self, key: str) -> Obj | None:
        """The parts of a cached pod we use, decoded once per resourceVersion."""
        rv = self.pods.cache.resource_version(key)
        if rv is None:
            self._slim.pop(key, None)
            return None
        hit = self._slim.get(key)
        if hit is not None and hit[0] == rv:
            return hit[1]
        pod = self.pods.cache.get(key)
        if pod is None:
            return None
        slim = slim_pod(pod)
        self._slim[key] = (rv, slim)
        return slim

    def zone_of(self, node_name: str, cache: dict[str, str]) -> str:
        if not node_name:
            return ""
        if node_name not in cache:
            node = self.nodes.get(node_name)
            cache[node_name] = ((meta(node).get("labels") or {}).get(ZONE_LABEL, "")
                                if node else "")  # fmt: skip
        return cache[node_name]


# ---- EndpointSlices ----------------------------------------------------------------------


class _Plan:
    """Slices to create, update and delete for one Service."""

    def __init__(self) -> None:
        self.create: list[Obj] = []
        self.update: list[Obj] = []
        self.delete: list[Obj] = []


class EndpointSliceController(_ServiceKeyed):
    name = "endpointslice"

    def setup(self) -> None:
        super().setup()
        self.slices = self.ctx.informer(
            ENDPOINTSLICES, indexers={SLICE_INDEX: by_label(LABEL_SERVICE_NAME)}
        )
        self.slices.add_handler(
            on_add=self._slice_changed,
            on_update=lambda _o, n: self._slice_changed(n),
            on_delete=self._slice_changed,
        )
        self.nodes.add_handler(on_update=self._node_updated)

    def _slice_changed(self, es: Obj) -> None:
        labels = meta(es).get("labels") or {}
        if labels.get(LABEL_MANAGED_BY) == CONTROLLER_NAME and labels.get(LABEL_SERVICE_NAME):
            self.queue.add(key_for(namespace=meta(es).get("namespace", ""),
                                   name=labels[LABEL_SERVICE_NAME]))  # fmt: skip

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if (meta(old).get("labels") or {}).get(ZONE_LABEL) != (meta(new).get("labels") or {}).get(
            ZONE_LABEL
        ):
            for pod in self.pods.list():
                if (pod.get("spec") or {}).get("nodeName") == meta(new).get("name"):
                    self._pod_changed(pod)

    def owned_slices(self, svc: Obj) -> list[Obj]:
        ns, name = meta(svc).get("namespace", ""), meta(svc).get("name", "")
        out = []
        for es in self.slices.by_index(SLICE_INDEX, name):
            if meta(es).get("namespace") != ns:
                continue
            if (meta(es).get("labels") or {}).get(LABEL_MANAGED_BY) != CONTROLLER_NAME:
                continue
            out.append(es)
        out.sort(key=lambda s: (meta(s).get("creationTimestamp", ""), meta(s).get("name", "")))
        return out

    def desired(self, svc: Obj) -> dict[PortKey, tuple[list[Obj], dict[str, Obj]]]:
        """Endpoints per port group: key -> (ports, {endpoint id: endpoint})."""
        zones: dict[str, str] = {}
        groups: dict[PortKey, tuple[list[Obj], dict[str, Obj]]] = {}
        for pod in self.selected_pods(svc):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            ep = slice_endpoint(pod, svc, zone=self.zone_of(node, zones))
            if ep is None:
                continue
            ports = endpoint_ports(svc, pod)
            group = groups.setdefault(port_key(ports), (ports, {}))
            group[1][endpoint_id(ep)] = ep
        return groups

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        svc = self.services.get(name, namespace=ns)
        if svc is None or not service_is_managed(svc):
            return None
        if not self.written.seen(key, self._cached_rv):
            return 0.1
        plan = self.plan(svc, self.owned_slices(svc), self.desired(svc))
        await self.apply(key, svc, plan)
        return None

    def _cached_rv(self, obj_key: str) -> str | None:
        return self.slices.cache.resource_version(obj_key)

    def plan(
        self,
        svc: Obj,
        existing: list[Obj],
        desired: dict[PortKey, tuple[list[Obj], dict[str, Obj]]],
    ) -> _Plan:
        plan = _Plan()
        labels = slice_labels(svc)
        by_group: dict[PortKey, list[Obj]] = {}
        for es in existing:
            by_group.setdefault(port_key(es.get("ports") or []), []).append(es)
        for pk, slices in by_group.items():
            if pk not in desired:
                plan.delete.extend(slices)
        for pk, (ports, wanted) in desired.items():
            self._plan_group(svc, plan, by_group.get(pk, []), ports, dict(wanted), labels)
        if not plan.create and len(plan.delete) == len(existing):
            self._placeholder(svc, plan, labels)
        return plan

    def _plan_group(
        self,
        svc: Obj,
        plan: _Plan,
        slices: list[Obj],
        ports: list[Obj],
        wanted: dict[str, Obj],
        labels: dict[str, str],
    ) -> None:
        contents: list[list[Obj]] = []
        for es in slices:
            keep = []
            for ep in es.get("endpoints") or []:
                ident = endpoint_id(ep)
                if ident in wanted:
                    keep.append(wanted.pop(ident))
            contents.append(keep)
        rest = sorted(wanted.values(), key=_placement_order)
        for keep in contents:
            room = MAX_PER_SLICE - len(keep)
            if room > 0 and rest:
                keep.extend(rest[:room])
                rest = rest[room:]
        for es, keep in zip(slices, contents, strict=True):
            if not keep:
                plan.delete.append(es)
            elif self._differs(es, keep, ports, labels, svc):
                plan.update.append(self._with(es, keep, ports, labels, svc))
        for i in range(0, len(rest), MAX_PER_SLICE):
            plan.create.append(self._new_slice(svc, rest[i : i + MAX_PER_SLICE], ports, labels))

    def _placeholder(self, svc: Obj, plan: _Plan, labels: dict[str, str]) -> None:
        """A Service without endpoints keeps one empty slice."""
        for es in plan.delete:
            if not es.get("endpoints") and not es.get("ports"):
                plan.delete.remove(es)
                if self._differs(es, [], [], labels, svc):
                    plan.update.append(self._with(es, [], [], labels, svc))
                return
        plan.create.append(self._new_slice(svc, [], [], labels))

    def _differs(
        self, es: Obj, eps: list[Obj], ports: list[Obj], labels: dict[str, str], svc: Obj
    ) -> bool:
        m = meta(es)
        return (
            sorted(endpoint_view(e) for e in es.get("endpoints") or [])
            != sorted(endpoint_view(e) for e in eps)
            or port_key(es.get("ports") or []) != port_key(ports)
            or (m.get("labels") or {}) != labels
            or not any(r.get("uid") == meta(svc).get("uid") for r in m.get("ownerReferences") or [])
            or es.get("addressType") != "IPv4"
        )

    def _with(
        self, es: Obj, eps: list[Obj], ports: list[Obj], labels: dict[str, str], svc: Obj
    ) -> Obj:
        m = es["metadata"]
        m["labels"] = labels
        m.setdefault("annotations", {})[ANN_TRIGGER_TIME] = self.ctx.now_rfc3339()
        refs = [r for r in m.get("ownerReferences") or [] if r.get("uid") != meta(svc).get("uid")]
        m["ownerReferences"] = [owner_ref(svc), *refs]
        es["endpoints"] = eps
        es["ports"] = ports
        es["addressType"] = "IPv4"
        return es

    def _new_slice(self, svc: Obj, eps: list[Obj], ports: list[Obj], labels: dict[str, str]) -> Obj:
        m = meta(svc)
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "generateName": f"{m.get('name', '')[:57]}-",
                "namespace": m.get("namespace", ""),
                "labels": labels,
                "annotations": {ANN_TRIGGER_TIME: self.ctx.now_rfc3339()},
                "ownerReferences": [owner_ref(svc)],
            },
            "addressType": "IPv4",
            "endpoints": eps,
            "ports": ports,
        }

    async def apply(self, key: str, svc: Obj, plan: _Plan) -> None:
        ns = meta(svc).get("namespace", "")
        # Creates and updates first, deletes last: endpoints moving between slices are
        # never missing from all of them.
        for es in plan.update:
            try:
                out = await self.client.update(ENDPOINTSLICES, es, namespace=ns)
            except NotFound:
                continue
            self.written.note(key, key_for(namespace=ns, name=meta(out)["name"]),
                              meta(out).get("resourceVersion"))  # fmt: skip
        for es in plan.create:
            try:
                out = await self.client.create(ENDPOINTSLICES, es, namespace=ns)
            except (NotFound, Forbidden):
                return  # the namespace is going
            self.written.note(key, key_for(namespace=ns, name=meta(out)["name"]),
                              meta(out).get("resourceVersion"))  # fmt: skip
        for es in plan.delete:
            name = meta(es).get("name", "")
            try:
                await self.client.delete(ENDPOINTSLICES, name, namespace=ns,
                                         preconditions_uid=meta(es).get("uid"))  # fmt: skip
            except (NotFound, Conflict):
                pass
            self.written.note(key, key_for(namespace=ns, name=name), None)


# ---- Endpoints -------------------------------------------------------------------------


def endpoint_address(pod: Obj, svc: Obj) -> Obj:
    addr: Obj = {"ip": pod_ipv4(pod), "targetRef": target_ref(pod)}
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        addr["nodeName"] = node
    if should_set_hostname(pod, svc):
        addr["hostname"] = pod["spec"]["hostname"]
    return addr


def address_view(a: Obj) -> tuple[Any, ...]:
    ref = a.get("targetRef") or {}
    return (a.get("ip"), a.get("hostname") or "", a.get("nodeName") or "",
            ref.get("kind"), ref.get("namespace"), ref.get("name"), ref.get("uid"))  # fmt: skip


def subsets_view(subsets: list[Obj]) -> list[tuple[Any, ...]]:
    return [
        (
            tuple(sorted(address_view(a) for a in s.get("addresses") or [])),
            tuple(sorted(address_view(a) for a in s.get("notReadyAddresses") or [])),
            tuple(sorted(port_key(s.get("ports") or []))),
        )
        for s in subsets
    ]


def build_subsets(svc: Obj, pods: list[Obj]) -> tuple[list[Obj], bool]:
    """Subsets (addresses grouped by identical port sets) and whether truncated."""
    spec = svc.get("spec") or {}
    tolerate = bool(spec.get("publishNotReadyAddresses"))
    svc_ports = spec.get("ports") or []
    # port set -> (ready addresses, not-ready addresses)
    groups: dict[PortKey, tuple[list[Obj], list[Obj], list[Obj]]] = {}
    count = 0
    truncated = False
    for pod in pods:
        if not pod_ipv4(pod) or pod_is_terminal(pod):
            continue
        if meta(pod).get("deletionTimestamp") and not tolerate:
            continue
        ports = endpoint_ports(svc, pod)
        if svc_ports and not ports:
            continue  # none of the Service's ports exists on this pod
        if count >= MAX_ENDPOINTS_ADDRESSES:
            truncated = True
            break
        count += 1
        ready = tolerate or pod_is_ready(pod)
        pk = port_key(ports)
        group = groups.setdefault(pk, (ports, [], []))
        (group[1] if ready else group[2]).append(endpoint_address(pod, svc))
    subsets = []
    for pk in sorted(groups):
        ports, ready_addrs, not_ready = groups[pk]
        subset: Obj = {}
        if ready_addrs:
            subset["addresses"] = sorted(ready_addrs, key=address_view)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=address_view)
        if ports:
            subset["ports"] = sorted(ports, key=lambda p: port_key([p]))
        subsets.append(subset)
    return subsets, truncated


class EndpointsController(_ServiceKeyed):
    name = "endpoints"

    def setup(self) -> None:
        super().setup()
        self.endpoints = self.ctx.informer(ENDPOINTS)
        self.endpoints.add_handler(on_update=lambda _o, n: self.enqueue(n), on_delete=self.enqueue)

    async def started(self) -> None:
        await super().started()
        # Endpoints we made for Services that are gone (deleted while we were away).
        for ep in self.endpoints.list():
            m = meta(ep)
            if (m.get("labels") or {}).get(LABEL_SKIP_MIRROR) == "true" and m.get(
                "annotations", {}
            ).get(ANN_TRIGGER_TIME) is not None:
                if self.services.get(m.get("name", ""), namespace=m.get("namespace", "")) is None:
                    self.enqueue(ep)

    def _cached_rv(self, obj_key: str) -> str | None:
        return self.endpoints.cache.resource_version(obj_key)

    async def reconcile(self, key: str) -> float | None:
        ns, name = split_key(key)
        svc = self.services.get(name, namespace=ns)
        if svc is None:
            await self._delete_orphan(ns, name)
            return None
        if not service_is_managed(svc):
            return None
        if not self.written.seen(key, self._cached_rv):
            return 0.1
        subsets, truncated = build_subsets(svc, self.selected_pods(svc))
        labels = {k: v for k, v in (meta(svc).get("labels") or {}).items() if k != LABEL_HEADLESS}
        labels[LABEL_SKIP_MIRROR] = "true"
        if headless(svc):
            labels[LABEL_HEADLESS] = ""
        current = self.endpoints.get(name, namespace=ns)
        if current is not None and not self._differs(current, subsets, labels, truncated):
            return None
        await self._write(key, svc, current, subsets=subsets, labels=labels, truncated=truncated)
        return None

    def _differs(self, ep: Obj, subsets: list[Obj], labels: dict[str, str], trunc: bool) -> bool:
        m = meta(ep)
        over = (m.get("annotations") or {}).get(ANN_OVER_CAPACITY) == "truncated"
        return (
            subsets_view(ep.get("subsets") or []) != subsets_view(subsets)
            or (m.get("labels") or {}) != labels
            or over != trunc
        )

    async def _write(
        self,
        key: str,
        svc: Obj,
        current: Obj | None,
        *,
        subsets: list[Obj],
        labels: dict[str, str],
        truncated: bool,
    ) -> None:
        ns, name = meta(svc).get("namespace", ""), meta(svc).get("name", "")
        body: Obj = current or {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": ns},
        }
        m = body["metadata"]
        m["labels"] = labels
        annotations = m.setdefault("annotations", {})
        annotations[ANN_TRIGGER_TIME] = self.ctx.now_rfc3339()
        if truncated:
            annotations[ANN_OVER_CAPACITY] = "truncated"
        else:
            annotations.pop(ANN_OVER_CAPACITY, None)
        if subsets:
            body["subsets"] = subsets
        else:
            body.pop("subsets", None)
        try:
            if current is None:
                out = await self.client.create(ENDPOINTS, body, namespace=ns)
            else:
                out = await self.client.update(ENDPOINTS, body, namespace=ns)
        except AlreadyExists:
            self.queue.add_after(key, 0.2)
            return
        except (NotFound, Forbidden):
            return  # the Service or its namespace is going
        self.written.note(key, key, meta(out).get("resourceVersion"))

    async def _delete_orphan(self, ns: str, name: str) -> None:
        ep = self.endpoints.get(name, namespace=ns)
        if ep is None:
            return
        try:
            await self.client.delete(ENDPOINTS, name, namespace=ns,
                                     preconditions_uid=meta(ep).get("uid"))  # fmt: skip
        except (NotFound, Conflict):
            pass


CONTROLLERS = [EndpointSliceController, EndpointsController]
