"""Node authorization: what a kubelet (``system:node:<name>``, group ``system:nodes``) may do.

After upstream's Node authorizer and NodeRestriction admission, simplified:

* reads (get/list/watch) of what every kubelet reads: nodes, pods, services, endpoints,
  endpointslices, namespaces, serviceaccounts, persistentvolumes, runtime/storage
  classes, CSI objects; its own Lease in ``kube-node-lease``;
* ``get`` of ConfigMaps, Secrets and PersistentVolumeClaims only in namespaces that
  hold a pod bound to this node (upstream walks a graph down to the very objects the
  node's pods reference; we stop at the namespace).  With no :class:`PodLookup` (unit
  tests, tools), these reads are allowed as upstream's ``system:node`` role once did;
* its own Node and ``nodes/status`` (create/get/update/patch; another node's: no);
* create/get/update/patch/delete of its own Lease in ``kube-node-lease``;
* Events (create/update/patch and reads);
* ``pods/status`` (get/update/patch) and pod deletion only for pods bound to this node;
* ``serviceaccounts/token`` (projected volumes; simplified: the bound pod's node is not
  checked), TokenReviews and SubjectAccessReviews.

Anything else gets no opinion, so the chain refuses it.  Requests whose name is only in
the body (create) are checked by :class:`NodeRestriction`, an admission hook: a node may
create only its own Node and Lease, and may not move a pod's status on another node.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from k3py.server import errors
from k3py.server.auth.authz import ALLOW, NO_OPINION, Decision, RequestAttributes

NODES_GROUP = "system:nodes"
PREFIX = "system:node:"
NODE_LEASE_NS = "kube-node-lease"
READ = frozenset({"get", "list", "watch"})
READABLE = frozenset({
    ("", "nodes"), ("", "pods"), ("", "services"), ("", "endpoints"), ("", "namespaces"),
    ("", "serviceaccounts"), ("", "persistentvolumes"), ("discovery.k8s.io", "endpointslices"),
    ("node.k8s.io", "runtimeclasses"), ("storage.k8s.io", "csidrivers"),
    ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "volumeattachments"),
})  # fmt: skip
POD_SCOPED = frozenset({("", "configmaps"), ("", "secrets"), ("", "persistentvolumeclaims")})
REVIEWS = frozenset({
    ("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews"),
    ("authorization.k8s.io", "selfsubjectaccessreviews"),
})  # fmt: skip
EVENTS = frozenset({("", "events"), ("events.k8s.io", "events")})
EVENT_VERBS = frozenset({"create", "update", "patch", "get", "list", "watch"})


def node_name_of(user: Any) -> str | None:
    """The node a user speaks for, or None when it is not a node identity."""
    if NODES_GROUP not in user.groups or not user.name.startswith(PREFIX):
        return None
    name: str = user.name[len(PREFIX) :]
    return name or None


class PodLookup(Protocol):
    """Where pods are bound (answered from the datastore, never from a lagging cache)."""

    async def pod_node(self, namespace: str, name: str) -> str | None: ...

    async def node_has_pods_in(self, node: str, namespace: str) -> bool: ...


class StorePodLookup:
    """:class:`PodLookup` over the object store; positive namespace answers are cached
    for ``ttl`` seconds (the kubelet reads a pod's ConfigMaps/Secrets in bursts)."""

    def __init__(self, *, store: Any, catalog: Any, ttl: float = 10.0) -> None:
        self.store = store
        self.catalog = catalog
        self.ttl = ttl
        self._seen: dict[tuple[str, str], float] = {}

    def _pods(self) -> Any:
        return self.catalog.get("", "v1", "pods")

    async def pod_node(self, namespace: str, name: str) -> str | None:
        try:
            pod = await self.store.get(self._pods(), namespace, name)
        except errors.APIError:
            return None
        node = (pod.get("spec") or {}).get("nodeName")
        return str(node) if node else None

    async def node_has_pods_in(self, node: str, namespace: str) -> bool:
        key = (node, namespace)
        now = time.monotonic()
        if now - self._seen.get(key, -1e9) < self.ttl:
            return True

        def on_node(rec: Any) -> bool:
            return bool((rec.obj().get("spec") or {}).get("nodeName") == node)

        page = await self.store.list(self._pods(), namespace, limit=1, match=on_node)
        if page.records:
            if len(self._seen) > 4096:
                self._seen.clear()
            self._seen[key] = now
            return True
        return False


class NodeAuthorizer:
    def __init__(self, *, lookup: PodLookup | None = None) -> None:
        self.lookup = lookup

    async def authorize(self, attrs: RequestAttributes) -> Decision:
        node = node_name_of(attrs.user)
        if node is None:
            return NO_OPINION
        if not attrs.resource_request:
            return ALLOW if attrs.verb == "get" else NO_OPINION
        key = (attrs.api_group, attrs.resource)
        sub, verb = attrs.subresource, attrs.verb
        if not sub and verb in READ and key in READABLE:
            return ALLOW
        rule = _RULES.get(key)
        if rule is None:
            return NO_OPINION
        return ALLOW if await rule(self, node, attrs) else NO_OPINION

    async def _bound_here(self, node: str, attrs: RequestAttributes) -> bool:
        if self.lookup is None:
            return True
        return await self.lookup.pod_node(attrs.namespace, attrs.name) == node

    async def _nodes(self, node: str, attrs: RequestAttributes) -> bool:
        if attrs.verb == "create" and not attrs.subresource:
            return True  # the name is in the body: NodeRestriction checks it
        return (
            attrs.verb in ("get", "update", "patch")
            and attrs.name == node
            and attrs.subresource in ("", "status")
        )

    async def _leases(self, node: str, attrs: RequestAttributes) -> bool:
        if attrs.namespace != NODE_LEASE_NS or attrs.subresource:
            return False
        if attrs.verb in ("create", "list", "watch"):
            return True  # create: NodeRestriction checks the name
        return attrs.verb in ("get", "update", "patch", "delete") and attrs.name == node

    async def _events(self, node: str, attrs: RequestAttributes) -> bool:
        return attrs.verb in EVENT_VERBS

    async def _pods(self, node: str, attrs: RequestAttributes) -> bool:
        if attrs.subresource == "status" and attrs.verb in ("get", "update", "patch"):
            return await self._bound_here(node, attrs)
        if not attrs.subresource and attrs.verb == "delete" and attrs.name:
            return await self._bound_here(node, attrs)
        return False

    async def _pod_scoped(self, node: str, attrs: RequestAttributes) -> bool:
        if attrs.subresource or attrs.verb not in READ:
            return False
        if self.lookup is None:
            return True
        if attrs.verb != "get" or not attrs.namespace:
            return False
        return await self.lookup.node_has_pods_in(node, attrs.namespace)

    async def _serviceaccounts(self, node: str, attrs: RequestAttributes) -> bool:
        return attrs.subresource == "token" and attrs.verb == "create"

    async def _reviews(self, node: str, attrs: RequestAttributes) -> bool:
        return attrs.verb == "create"


Rule = Callable[[NodeAuthorizer, str, RequestAttributes], Awaitable[bool]]
_RULES: dict[tuple[str, str], Rule] = {
    ("", "nodes"): NodeAuthorizer._nodes,
    ("coordination.k8s.io", "leases"): NodeAuthorizer._leases,
    ("", "pods"): NodeAuthorizer._pods,
    ("", "serviceaccounts"): NodeAuthorizer._serviceaccounts,
    **{k: NodeAuthorizer._events for k in EVENTS},
    **{k: NodeAuthorizer._pod_scoped for k in POD_SCOPED},
    **{k: NodeAuthorizer._reviews for k in REVIEWS},
}


class NodeRestriction:
    """Admission (``ObjectStore.admit``) for writes by nodes, where the name is in the body:
    a node creates and updates only its own Node and Lease, and writes pod status only of
    pods bound to it."""

    async def __call__(self, info: Any, obj: dict[str, Any], old: dict[str, Any] | None,
                       ctx: Any) -> None:  # fmt: skip
        if NODES_GROUP not in ctx.groups or not str(ctx.user).startswith(PREFIX):
            return
        node = str(ctx.user)[len(PREFIX) :]
        name = str((obj.get("metadata") or {}).get("name") or "")
        group, plural = info.group, info.plural
        if group == "" and plural == "nodes" and name != node:
            raise _refuse(node, f'node "{node}" is not allowed to modify node "{name}"')
        if group == "coordination.k8s.io" and plural == "leases" and name != node:
            raise _refuse(node, f'node "{node}" is not allowed to modify lease "{name}"')
        if group == "" and plural == "pods":
            bound = ((old or obj).get("spec") or {}).get("nodeName")
            if old is None:
                raise _refuse(node, f'node "{node}" is not allowed to create pods')
            if bound != node:
                raise _refuse(node, f'node "{node}" is not allowed to modify pod "{name}" '
                                    f'bound to node "{bound or ""}"')  # fmt: skip


def _refuse(node: str, message: str) -> errors.APIError:
    return errors.APIError(403, "Forbidden", message, details={})
