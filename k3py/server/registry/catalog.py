"""The resource catalogue: every kind the server serves, built-in or custom.

A :class:`ResourceInfo` holds what discovery, routing and storage need to know
about one resource (group/version, kind, plural, singular, short names,
categories, scope, subresources, verbs).  Built-ins come from the table below,
written to match upstream's discovery documents for v1.32; custom resources are
added and removed at run time as CRDs come and go.  Listeners are told of every
change so discovery and OpenAPI caches can be rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ_VERBS = ("get", "list", "watch")
CREATE_ONLY = ("create",)


@dataclass(frozen=True)
class ResourceInfo:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # status, scale, binding, eviction, log, exec, ...
    verbs: tuple[str, ...] = ALL_VERBS
    # Where objects live in the datastore: several versions of one resource share it.
    storage_group: str = ""
    # For custom resources: the CRD version entry (schema, printer columns, subresources).
    crd: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    # Virtual resources (reviews) are never stored; they answer a create.
    virtual: bool = False
    preferred: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def key_root(self) -> str:
        """Datastore key prefix for every object of this resource."""
        return f"/{self.storage_group or self.group or 'core'}/{self.plural}/"

    def key(self, namespace: str, name: str) -> str:
        if self.namespaced:
            return f"{self.key_root}{namespace}/{name}"
        return f"{self.key_root}{name}"

    def prefix(self, namespace: str) -> str:
        if self.namespaced and namespace:
            return f"{self.key_root}{namespace}/"
        return self.key_root

    @property
    def resource_name(self) -> str:
        """`plural.group` as RBAC, CRD names and error messages write it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _r(
    group: str,
    version: str,
    kind: str,
    plural: str,
    *,
    namespaced: bool = True,
    short: Iterable[str] = (),
    cats: Iterable[str] = (),
    sub: Iterable[str] = (),
    verbs: tuple[str, ...] = ALL_VERBS,
    singular: str = "",
    virtual: bool = False,
    preferred: bool = True,
) -> ResourceInfo:
    return ResourceInfo(
        group=group,
        version=version,
        kind=kind,
        plural=plural,
        singular=singular or kind.lower(),
        namespaced=namespaced,
        short_names=tuple(short),
        categories=tuple(cats),
        subresources=tuple(sub),
        verbs=verbs,
        virtual=virtual,
        preferred=preferred,
    )


NS_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")  # no deletecollection
REVIEW = ("create",)

BUILTINS: tuple[ResourceInfo, ...] = (
    # core/v1
    _r("", "v1", "Binding", "bindings", verbs=CREATE_ONLY, virtual=True),
    _r(
        "",
        "v1",
        "ComponentStatus",
        "componentstatuses",
        namespaced=False,
        short=["cs"],
        verbs=("get", "list"),
    ),
    _r("", "v1", "ConfigMap", "configmaps", short=["cm"]),
    _r("", "v1", "Endpoints", "endpoints", short=["ep"], singular="endpoints"),
    _r("", "v1", "Event", "events", short=["ev"]),
    _r("", "v1", "LimitRange", "limitranges", short=["limits"]),
    _r(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short=["ns"],
        sub=["finalize", "status"],
        verbs=NS_VERBS,
    ),
    _r("", "v1", "Node", "nodes", namespaced=False, short=["no"], sub=["proxy", "status"]),
    _r("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", short=["pvc"], sub=["status"]),
    _r(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        namespaced=False,
        short=["pv"],
        sub=["status"],
    ),
    _r(
        "",
        "v1",
        "Pod",
        "pods",
        short=["po"],
        cats=["all"],
        sub=[
            "attach",
            "binding",
            "ephemeralcontainers",
            "eviction",
            "exec",
            "log",
            "portforward",
            "proxy",
            "resize",
            "status",
        ],
    ),
    _r("", "v1", "PodTemplate", "podtemplates"),
    _r(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        short=["rc"],
        cats=["all"],
        sub=["scale", "status"],
    ),
    _r("", "v1", "ResourceQuota", "resourcequotas", short=["quota"], sub=["status"]),
    _r("", "v1", "Secret", "secrets"),
    _r("", "v1", "ServiceAccount", "serviceaccounts", short=["sa"], sub=["token"]),
    _r("", "v1", "Service", "services", short=["svc"], cats=["all"], sub=["proxy", "status"]),
    # apps/v1
    _r("apps", "v1", "ControllerRevision", "controllerrevisions"),
    _r("apps", "v1", "DaemonSet", "daemonsets", short=["ds"], cats=["all"], sub=["status"]),
    _r(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short=["deploy"],
        cats=["all"],
        sub=["scale", "status"],
    ),
    _r(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short=["rs"],
        cats=["all"],
        sub=["scale", "status"],
    ),
    _r(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short=["sts"],
        cats=["all"],
        sub=["scale", "status"],
    ),
    # batch/v1
    _r("batch", "v1", "CronJob", "cronjobs", short=["cj"], cats=["all"], sub=["status"]),
    _r("batch", "v1", "Job", "jobs", cats=["all"], sub=["status"]),
    # autoscaling
    _r(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        short=["hpa"],
        cats=["all"],
        sub=["status"],
    ),
    # autoscaling/v1 is not served: objects are stored as v2 and there is no v1<->v2
    # conversion yet (kubectl 1.32 reads and writes v2).
    # policy/v1
    _r(
        "policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", short=["pdb"], sub=["status"]
    ),
    # networking
    _r("networking.k8s.io", "v1", "IngressClass", "ingressclasses", namespaced=False),
    _r("networking.k8s.io", "v1", "Ingress", "ingresses", short=["ing"], sub=["status"]),
    _r("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", short=["netpol"]),
    # discovery
    _r("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
    # storage
    _r("storage.k8s.io", "v1", "CSIDriver", "csidrivers", namespaced=False),
    _r("storage.k8s.io", "v1", "CSINode", "csinodes", namespaced=False),
    _r("storage.k8s.io", "v1", "StorageClass", "storageclasses", namespaced=False, short=["sc"]),
    _r(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        namespaced=False,
        sub=["status"],
    ),
    # coordination
    _r("coordination.k8s.io", "v1", "Lease", "leases"),
    # events
    _r("events.k8s.io", "v1", "Event", "events", short=["ev"]),
    # rbac
    _r(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
    ),
    _r("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings"),
    _r("rbac.authorization.k8s.io", "v1", "Role", "roles"),
    # authentication / authorization reviews
    _r(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        namespaced=False,
        verbs=REVIEW,
        virtual=True,
    ),
    _r(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        namespaced=False,
        verbs=REVIEW,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        verbs=REVIEW,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=REVIEW,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        namespaced=False,
        verbs=REVIEW,
        virtual=True,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        namespaced=False,
        verbs=REVIEW,
        virtual=True,
    ),
    # apiextensions
    _r(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short=["crd", "crds"],
        cats=["api-extensions"],
        sub=["status"],
    ),
    # scheduling, node, certificates, admission, apiregistration, flowcontrol
    _r(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        namespaced=False,
        short=["pc"],
    ),
    _r("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", namespaced=False),
    _r(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        namespaced=False,
        short=["csr"],
        sub=["approval", "status"],
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        namespaced=False,
        cats=["api-extensions"],
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        namespaced=False,
        cats=["api-extensions"],
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        namespaced=False,
        cats=["api-extensions"],
        sub=["status"],
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        namespaced=False,
        cats=["api-extensions"],
    ),
    _r(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        namespaced=False,
        cats=["api-extensions"],
        sub=["status"],
    ),
    _r(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        "flowschemas",
        namespaced=False,
        sub=["status"],
    ),
    _r(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        namespaced=False,
        sub=["status"],
    ),
)

# Subresources and the verbs they answer (for discovery rows).
SUBRESOURCE_VERBS: dict[str, tuple[str, ...]] = {
    "status": ("get", "patch", "update"),
    "scale": ("get", "patch", "update"),
    "binding": ("create",),
    "eviction": ("create",),
    "token": ("create",),
    "log": ("get",),
    "exec": ("create", "get"),
    "attach": ("create", "get"),
    "portforward": ("create", "get"),
    "proxy": ("create", "delete", "get", "patch", "update"),
    "ephemeralcontainers": ("get", "patch", "update"),
    "resize": ("get", "patch", "update"),
    "finalize": ("update",),
    "approval": ("get", "patch", "update"),
}

# The kind a subresource speaks (group, version, kind) when it differs from its parent.
SUBRESOURCE_KIND: dict[str, tuple[str, str, str]] = {
    "scale": ("autoscaling", "v1", "Scale"),
    "binding": ("", "v1", "Binding"),
    "eviction": ("policy", "v1", "Eviction"),
    "token": ("authentication.k8s.io", "v1", "TokenRequest"),
    "log": ("", "v1", "Pod"),
    "exec": ("", "v1", "PodExecOptions"),
    "attach": ("", "v1", "PodAttachOptions"),
    "portforward": ("", "v1", "PodPortForwardOptions"),
    "proxy": ("", "v1", "PodProxyOptions"),
}

# Preferred order of groups in discovery, as upstream lists them.
GROUP_ORDER = (
    "",
    "apiregistration.k8s.io",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
    "flowcontrol.apiserver.k8s.io",
)


class Catalog:
    """Lookup of served resources by (group, version, plural) and by kind."""

    def __init__(self, resources: Iterable[ResourceInfo] = BUILTINS) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceInfo] = {}
        self._listeners: list[Callable[[], None]] = []
        self.generation = 0
        for r in resources:
            self._by_gvr[(r.group, r.version, r.plural)] = r

    def on_change(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def _changed(self) -> None:
        self.generation += 1
        for fn in self._listeners:
            fn()

    def get(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self._by_gvr.get((group, version, plural))

    def all(self) -> list[ResourceInfo]:
        return list(self._by_gvr.values())

    def by_kind(self, group: str, kind: str) -> list[ResourceInfo]:
        return [r for r in self._by_gvr.values() if r.group == group and r.kind == kind]

    def for_gvk(self, group: str, version: str, kind: str) -> ResourceInfo | None:
        for r in self._by_gvr.values():
            if r.group == group and r.version == version and r.kind == kind:
                return r
        return None

    def groups(self) -> dict[str, list[str]]:
        """group -> versions, preferred first; groups in upstream's order, then custom ones."""
        out: dict[str, list[str]] = {}
        for r in self._by_gvr.values():
            vs = out.setdefault(r.group, [])
            if r.version not in vs:
                if r.preferred:
                    vs.insert(0, r.version)
                else:
                    vs.append(r.version)
        order = {g: i for i, g in enumerate(GROUP_ORDER)}
        return dict(sorted(out.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))

    def in_group_version(self, group: str, version: str) -> list[ResourceInfo]:
        return sorted(
            (r for r in self._by_gvr.values() if r.group == group and r.version == version),
            key=lambda r: r.plural,
        )

    def put_custom(self, infos: Iterable[ResourceInfo], *, group: str, plural: str) -> None:
        """Replace every served version of one custom resource."""
        for key in [
            k
            for k, r in self._by_gvr.items()
            if r.group == group and r.plural == plural and r.crd is not None
        ]:
            del self._by_gvr[key]
        for r in infos:
            self._by_gvr[(r.group, r.version, r.plural)] = r
        self._changed()

    def remove_custom(self, *, group: str, plural: str) -> None:
        self.put_custom((), group=group, plural=plural)
