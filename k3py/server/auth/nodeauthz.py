"""The node authorizer: what a kubelet (``system:node:<name>``, group ``system:nodes``)
may do, after upstream's Node authorizer and NodeRestriction admission, simplified.

A node may read what kubelets read (nodes, pods, services, endpoints(slices),
namespaces, configmaps, secrets, PVCs/PVs, runtime and storage classes); write its own
Node and ``nodes/status`` (not another's); manage its own Lease in ``kube-node-lease``;
create and update Events; update ``pods/status`` and delete pods (the kubelet finishes
deletions); create service-account tokens (projected volumes) and token/access reviews.
Anything else gets no opinion, so the chain refuses it.  Simplified from upstream: reads
of secrets/configmaps are not limited to those referenced by the node's pods, and the
pod writes are not checked against the pod's ``spec.nodeName`` here.
"""

from __future__ import annotations

from k3py.server.auth.authz import ALLOW, NO_OPINION, Decision, RequestAttributes

NODES_GROUP = "system:nodes"
PREFIX = "system:node:"
READ = {"get", "list", "watch"}
READABLE = {
    ("", "nodes"), ("", "pods"), ("", "services"), ("", "endpoints"), ("", "namespaces"),
    ("", "configmaps"), ("", "secrets"), ("", "persistentvolumeclaims"), ("", "persistentvolumes"),
    ("", "serviceaccounts"), ("discovery.k8s.io", "endpointslices"), ("node.k8s.io", "runtimeclasses"),
    ("storage.k8s.io", "csidrivers"), ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "volumeattachments"), ("coordination.k8s.io", "leases"),
}


class NodeAuthorizer:
    async def authorize(self, attrs: RequestAttributes) -> Decision:
        user = attrs.user
        if NODES_GROUP not in user.groups or not user.name.startswith(PREFIX):
            return NO_OPINION
        node = user.name[len(PREFIX):]
        if not attrs.resource_request:
            return ALLOW if attrs.verb == "get" else NO_OPINION
        key = (attrs.api_group, attrs.resource)
        sub = attrs.subresource
        verb = attrs.verb
        if not sub and verb in READ and key in READABLE:
            return ALLOW
        if key == ("", "nodes"):
            if verb == "create" and not sub:
                return ALLOW  # the name is checked by admission-like logic below
            if verb in ("update", "patch", "get") and attrs.name == node and sub in ("", "status"):
                return ALLOW
            return NO_OPINION
        if key == ("coordination.k8s.io", "leases") and attrs.namespace == "kube-node-lease":
            if verb == "create" or attrs.name == node:
                return ALLOW
            return NO_OPINION
        if key == ("", "events") or key == ("events.k8s.io", "events"):
            return ALLOW if verb in ("create", "update", "patch", "get", "list", "watch") else NO_OPINION
        if key == ("", "pods"):
            if sub == "status" and verb in ("update", "patch", "get"):
                return ALLOW
            if not sub and verb == "delete":
                return ALLOW
            return NO_OPINION
        if key == ("", "serviceaccounts") and sub == "token" and verb == "create":
            return ALLOW
        if key in (("authentication.k8s.io", "tokenreviews"), ("authorization.k8s.io", "subjectaccessreviews"),
                   ("authorization.k8s.io", "selfsubjectaccessreviews")) and verb == "create":
            return ALLOW
        return NO_OPINION
