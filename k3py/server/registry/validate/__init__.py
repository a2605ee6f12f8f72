"""Validation of built-in kinds as kube-apiserver 1.32 does it (``pkg/apis/*/validation``).

``validate(group, kind, obj, old=..., namespaced=...)`` returns field causes worded
as upstream (``metadata.name: Invalid value: "Abc": a lowercase RFC 1123 ...``).
It runs in three steps:

1. a JSON type check against the kind's OpenAPI schema (upstream's typed decoder
   would have refused the body); if that fails, nothing else is checked;
2. object metadata: ``ValidateObjectMeta`` on create, ``ValidateObjectMetaUpdate``
   on update, with the kind's name format from :data:`RULES`;
3. the kind's own rules, then its update-only rules (immutable fields).

Objects are expected to have been through ``defaults.apply_defaults`` first, as
upstream validates decoded-and-defaulted objects; missing defaulted fields are
reported the way upstream reports them (``Required value``).  Unknown kinds
(custom resources) get metadata validation only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from k3py.server.errors import Cause

from . import apps, batch, cluster, core, formats, networking, pod, rbac, service, storage
from .access import get_map, get_str
from .field import dedupe, required
from .meta import META, validate_object_meta, validate_object_meta_update
from .typecheck import check_types

Obj = dict[str, Any]
Check = Callable[[Obj, "Obj | None"], list[Cause]]
Update = Callable[[Obj, Obj], list[Cause]]

__all__ = ["validate", "validate_custom", "check_types", "RULES", "KindRules"]


def _none(obj: Obj, old: Obj | None) -> list[Cause]:
    return []


def _spec(fn: Callable[[Obj], list[Cause]]) -> Check:
    return lambda obj, old: fn(get_map(obj, "spec"))


def _whole(fn: Callable[[Obj], list[Cause]]) -> Check:
    return lambda obj, old: fn(obj)


def _spec_update(fn: Callable[[Obj, Obj], list[Cause]]) -> Update:
    return lambda obj, old: fn(get_map(obj, "spec"), get_map(old, "spec"))


@dataclass(frozen=True)
class KindRules:
    name: formats.NameFn = formats.name_is_dns_subdomain
    check: Check = _none
    update: Update | None = None
    meta: bool = True


def _apps_update(extra: Update | None = None) -> Update:
    def update(obj: Obj, old: Obj) -> list[Cause]:
        errs = apps.selector_immutable(get_map(obj, "spec"), get_map(old, "spec"))
        return errs + (extra(obj, old) if extra else [])

    return update


def _job_update(obj: Obj, old: Obj) -> list[Cause]:
    return batch.job_update(get_map(obj, "spec"), get_map(old, "spec"))


SUBDOMAIN, LABEL = formats.name_is_dns_subdomain, formats.name_is_dns_label
SEGMENT = formats.name_is_path_segment

RULES: dict[tuple[str, str], KindRules] = {
    ("", "ConfigMap"): KindRules(check=_whole(core.config_map), update=core.config_map_update),
    ("", "Secret"): KindRules(check=_whole(core.secret), update=core.secret_update),
    ("", "Namespace"): KindRules(LABEL, _whole(core.namespace)),
    ("", "Node"): KindRules(check=lambda obj, old: core.node(obj, old=old)),
    ("", "ServiceAccount"): KindRules(),
    ("", "Service"): KindRules(
        formats.name_is_dns1035_label, _whole(service.service), _spec_update(service.service_update)
    ),
    ("", "Endpoints"): KindRules(check=_whole(service.endpoints)),
    ("", "ReplicationController"): KindRules(check=_whole(core.replication_controller)),
    ("", "PodTemplate"): KindRules(check=_whole(core.pod_template)),
    ("", "LimitRange"): KindRules(check=_whole(core.limit_range)),
    ("", "ResourceQuota"): KindRules(
        check=_whole(core.resource_quota), update=_spec_update(core.resource_quota_update)
    ),
    ("", "PersistentVolume"): KindRules(
        check=_whole(storage.persistent_volume),
        update=_spec_update(storage.persistent_volume_update),
    ),
    ("", "PersistentVolumeClaim"): KindRules(check=_whole(storage.pvc), update=storage.pvc_update),
    ("", "Event"): KindRules(check=_whole(core.event_core), meta=False),
    ("events.k8s.io", "Event"): KindRules(check=_whole(core.event_v1)),
    ("apps", "Deployment"): KindRules(check=_spec(apps.deployment_spec), update=_apps_update()),
    ("apps", "ReplicaSet"): KindRules(check=_spec(apps.replica_set_spec), update=_apps_update()),
    ("apps", "DaemonSet"): KindRules(check=_spec(apps.daemon_set_spec), update=_apps_update()),
    ("apps", "StatefulSet"): KindRules(
        LABEL, _spec(apps.stateful_set_spec), _apps_update(_spec_update(apps.stateful_set_update))
    ),
    ("apps", "ControllerRevision"): KindRules(
        check=_whole(apps.controller_revision), update=apps.controller_revision_update
    ),
    ("batch", "Job"): KindRules(check=lambda obj, old: batch.job(obj, old=old), update=_job_update),
    ("batch", "CronJob"): KindRules(check=lambda obj, old: batch.cron_job(obj, old=old)),
    ("networking.k8s.io", "Ingress"): KindRules(
        check=lambda obj, old: networking.ingress(obj, old=old)
    ),
    ("networking.k8s.io", "IngressClass"): KindRules(
        check=lambda obj, old: networking.ingress_class(obj, old=old)
    ),
    ("networking.k8s.io", "NetworkPolicy"): KindRules(check=_whole(networking.network_policy)),
    ("policy", "PodDisruptionBudget"): KindRules(check=_whole(cluster.pod_disruption_budget)),
    ("scheduling.k8s.io", "PriorityClass"): KindRules(
        check=_whole(cluster.priority_class), update=cluster.priority_class_update
    ),
    ("coordination.k8s.io", "Lease"): KindRules(check=_whole(cluster.lease)),
    ("discovery.k8s.io", "EndpointSlice"): KindRules(
        check=_whole(cluster.endpoint_slice), update=cluster.endpoint_slice_update
    ),
    ("autoscaling", "HorizontalPodAutoscaler"): KindRules(check=_whole(cluster.hpa)),
    ("node.k8s.io", "RuntimeClass"): KindRules(check=_whole(cluster.runtime_class)),
    ("storage.k8s.io", "StorageClass"): KindRules(
        check=_whole(storage.storage_class), update=storage.storage_class_update
    ),
    ("rbac.authorization.k8s.io", "Role"): KindRules(
        SEGMENT, lambda obj, old: rbac.role(obj, namespaced=True)
    ),
    ("rbac.authorization.k8s.io", "ClusterRole"): KindRules(
        SEGMENT, lambda obj, old: rbac.role(obj, namespaced=False)
    ),
    ("rbac.authorization.k8s.io", "RoleBinding"): KindRules(
        SEGMENT, lambda obj, old: rbac.binding(obj, namespaced=True), rbac.binding_update
    ),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): KindRules(
        SEGMENT, lambda obj, old: rbac.binding(obj, namespaced=False), rbac.binding_update
    ),
}


def _pod(obj: Obj, old: Obj | None, namespaced: bool) -> list[Cause]:
    if old is None:
        return pod.validate_pod_create(obj, namespaced=namespaced)
    return pod.validate_pod_update(obj, old, namespaced=namespaced)


def _metadata(
    rules: KindRules, obj: Obj, old: Obj | None, *, namespaced: bool, builtin: bool
) -> list[Cause]:
    if not rules.meta:
        if get_str(get_map(obj, "metadata"), "name") or get_str(
            get_map(obj, "metadata"), "generateName"
        ):
            return []
        return [required(META.child("name"), "name or generateName is required")]
    if old is None:
        return validate_object_meta(obj, namespaced=namespaced, name_fn=rules.name, builtin=builtin)
    return validate_object_meta_update(obj, old, builtin=builtin)


def validate(
    group: str, kind: str, obj: Obj, *, old: Obj | None, namespaced: bool, typed: bool = False
) -> list[Cause]:
    """Causes for a create (``old`` is None) or an update of a built-in object.

    ``typed`` says the object's JSON types were already checked against the schema
    (the API layer's decoder does it for every request body); pass False for objects
    from anywhere else."""
    if not typed:
        errs = check_types(group, kind, obj)
        if errs:
            return errs
    if (group, kind) == ("", "Pod"):
        return dedupe(_pod(obj, old, namespaced))
    rules = RULES.get((group, kind))
    if rules is None:
        return validate_custom(obj, old=old, namespaced=namespaced)
    errs = _metadata(rules, obj, old, namespaced=namespaced, builtin=True)
    errs += rules.check(obj, old)
    if old is not None and rules.update is not None:
        errs += rules.update(obj, old)
    return dedupe(errs)


def validate_custom(obj: Obj, *, old: Obj | None, namespaced: bool) -> list[Cause]:
    """Metadata rules for objects of unknown kinds (custom resources): DNS-subdomain names."""
    if old is None:
        errs = validate_object_meta(obj, namespaced=namespaced, name_fn=SUBDOMAIN, builtin=False)
    else:
        errs = validate_object_meta_update(obj, old, builtin=False)
    return dedupe(errs)
