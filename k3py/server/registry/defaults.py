"""Defaulting of built-in kinds as kube-apiserver 1.32 does it.

Upstream fills defaults when it decodes a request (``pkg/apis/*/v1/defaults.go``
plus the generated ``+default`` markers) and some more in the registry
strategies (a Namespace's ``kubernetes`` finalizer, a Service's IP families, a
Job's generated selector).  :func:`apply_defaults` does both, in place, so that
what we store and return reads like what a real cluster returns.  It is pure
and idempotent: applying it twice changes nothing.

Every ``resource.Quantity`` is also rewritten in its canonical form (``0.5`` →
``500m``, ``1024Mi`` → ``1Gi``) and resource lists are rounded up to milli
units, as upstream's serializer and ``SetDefaults_ResourceList`` do.  The fields
holding quantities are found through the OpenAPI schema, not listed by hand.

Not done here: anything needing cluster state (cluster IP and node port
allocation, the default ServiceAccount and its token volume, priority values,
default tolerations) and metadata system fields (uid, timestamps).
:func:`prepare_for_update` carries server-owned values from the stored object
into an update, as the strategies' ``PrepareForUpdate`` do.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from k3py.apimachinery.jsoncopy import clone
from k3py.server.registry import schema as openapi
from k3py.server.registry.validate import quantity as qty
from k3py.server.registry.validate.typecheck import version_of

Obj = dict[str, Any]
Defaulter = Callable[[Obj], None]

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
FILE_MODE_DEFAULT = 0o644
RBAC_GROUP = "rbac.authorization.k8s.io"
JOB_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")


# -- small helpers --------------------------------------------------------------------


def _map(obj: Obj, key: str) -> Obj:
    """The dict at ``obj[key]``, created when missing or null."""
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value


def _maps(obj: Obj, key: str) -> list[Obj]:
    value = obj.get(key)
    return [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []


def _sub(obj: Obj, key: str) -> Obj | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _unset(obj: Obj, key: str) -> bool:
    """Go's nil pointer: missing or null."""
    return obj.get(key) is None


def _empty(obj: Obj, key: str) -> bool:
    """Go's zero value for a string or number field."""
    return obj.get(key) in (None, "", 0)


def _fill(obj: Obj, values: dict[str, Any], *, test: Callable[[Obj, str], bool] = _empty) -> None:
    for key, value in values.items():
        if test(obj, key):
            obj[key] = clone(value)


# -- pods and pod specs ----------------------------------------------------------------


def image_tag(image: str) -> str:
    """The tag ``ParseImageName`` reports: ``latest`` when neither tag nor digest is given."""
    if not image or any(c.isupper() for c in image.split("@")[0].rsplit(":", 1)[0]):
        return ""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def _http_get(handler: Obj | None) -> None:
    action = _sub(handler, "httpGet") if handler else None
    if action is not None:
        _fill(action, {"path": "/", "scheme": "HTTP"})


def _probe(probe: Obj | None) -> None:
    if probe is None:
        return
    _fill(
        probe,
        {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
    )
    _http_get(probe)


def _field_refs(source: Obj | None) -> None:
    """``apiVersion: v1`` on field refs, ``divisor: "0"`` on resource refs."""
    if source is None:
        return
    field_ref = _sub(source, "fieldRef")
    if field_ref is not None:
        _fill(field_ref, {"apiVersion": "v1"})
    resource_ref = _sub(source, "resourceFieldRef")
    if resource_ref is not None:
        _fill(resource_ref, {"divisor": "0"}, test=_unset)


def _container(ctr: Obj) -> None:
    if _empty(ctr, "imagePullPolicy"):
        image = ctr.get("image")
        tag = image_tag(image if isinstance(image, str) else "")
        ctr["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    _fill(
        ctr, {"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
    )
    _fill(ctr, {"resources": {}}, test=_unset)
    for port in _maps(ctr, "ports"):
        _fill(port, {"protocol": "TCP"})
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(_sub(ctr, key))
    lifecycle = _sub(ctr, "lifecycle")
    if lifecycle is not None:
        for key in ("postStart", "preStop"):
            _http_get(_sub(lifecycle, key))
    for env in _maps(ctr, "env"):
        _field_refs(_sub(env, "valueFrom"))


VOLUME_SOURCES = (
    "hostPath emptyDir gcePersistentDisk awsElasticBlockStore gitRepo secret nfs iscsi glusterfs "
    "persistentVolumeClaim rbd flexVolume cinder cephfs flocker downwardAPI fc azureFile configMap "
    "vsphereVolume quobyte azureDisk photonPersistentDisk projected portworxVolume scaleIO "
    "storageos "
    "csi ephemeral image"
).split()

SOURCE_DEFAULTS: dict[str, dict[str, Any]] = {
    "iscsi": {"iscsiInterface": "default"},
    "rbd": {"pool": "rbd", "user": "admin", "keyring": "/etc/ceph/keyring"},
    "azureDisk": {
        "cachingMode": "ReadWrite",
        "kind": "Shared",
        "fsType": "ext4",
        "readOnly": False,
    },
    "scaleIO": {"storageMode": "ThinProvisioned", "fsType": "xfs"},
}


def _source_defaults(holder: Obj) -> None:
    for key, values in SOURCE_DEFAULTS.items():
        src = _sub(holder, key)
        if src is not None:
            _fill(src, values, test=_unset)


def _volume(vol: Obj) -> None:
    if not any(isinstance(vol.get(k), dict) for k in VOLUME_SOURCES):
        vol["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        src = _sub(vol, key)
        if src is not None:
            _fill(src, {"defaultMode": FILE_MODE_DEFAULT}, test=_unset)
    for item in _maps(_sub(vol, "downwardAPI") or {}, "items"):
        _field_refs(item)
    for source in _maps(_sub(vol, "projected") or {}, "sources"):
        token = _sub(source, "serviceAccountToken")
        if token is not None:
            _fill(token, {"expirationSeconds": 3600}, test=_unset)
        for item in _maps(_sub(source, "downwardAPI") or {}, "items"):
            _field_refs(item)
    host_path = _sub(vol, "hostPath")
    if host_path is not None:
        _fill(host_path, {"type": ""}, test=_unset)
    _source_defaults(vol)
    ephemeral = _sub(vol, "ephemeral")
    template = _sub(ephemeral, "volumeClaimTemplate") if ephemeral else None
    if template is not None:
        _pvc_spec(_map(template, "spec"))


def pod_spec(spec: Obj) -> None:
    """``SetDefaults_PodSpec`` and the defaults of everything inside a pod spec."""
    _fill(
        spec,
        {
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
        },
    )
    _fill(spec, {"securityContext": {}, "terminationGracePeriodSeconds": 30}, test=_unset)
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for ctr in _maps(spec, key):
            _container(ctr)
    for vol in _maps(spec, "volumes"):
        _volume(vol)


def pod_template(template: Obj | None) -> None:
    if template is not None:
        pod_spec(_map(template, "spec"))


def _requests_from_limits(ctr: Obj) -> None:
    resources = _sub(ctr, "resources")
    limits = _sub(resources, "limits") if resources else None
    if resources is None or limits is None:
        return
    requests = _map(resources, "requests")
    for name, value in limits.items():
        requests.setdefault(name, clone(value))


def _add_positive(totals: dict[str, qty.Quantity], values: Obj | None) -> set[str]:
    """Add the positive cpu/memory quantities of ``values`` into ``totals``; return their names."""
    found = set()
    for name, raw in (values or {}).items():
        q = qty.try_parse(raw)
        if name in ("cpu", "memory") and q is not None and q.value > 0:
            total = totals.get(name)
            totals[name] = q if total is None else qty.Quantity(total.value + q.value, q.format)
            found.add(name)
    return found


def qos_class(spec: Obj) -> str:
    """``qos.ComputePodQOS``: Guaranteed, Burstable or BestEffort from cpu/memory resources."""
    requests: dict[str, qty.Quantity] = {}
    limits: dict[str, qty.Quantity] = {}
    guaranteed = True
    for ctr in _maps(spec, "containers") + _maps(spec, "initContainers"):
        resources = _sub(ctr, "resources") or {}
        _add_positive(requests, _sub(resources, "requests"))
        if _add_positive(limits, _sub(resources, "limits")) != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        guaranteed = all(n in limits and limits[n].value == q.value for n, q in requests.items())
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _pod(obj: Obj) -> None:
    spec = _map(obj, "spec")
    for key in ("containers", "initContainers"):
        for ctr in _maps(spec, key):
            _requests_from_limits(ctr)
    _fill(spec, {"enableServiceLinks": True}, test=_unset)
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for ctr in _maps(spec, key):
                for port in _maps(ctr, "ports"):
                    if _empty(port, "hostPort"):
                        port["hostPort"] = port.get("containerPort")
    pod_spec(spec)
    status = _map(obj, "status")
    _fill(status, {"phase": "Pending"})
    _fill(status, {"qosClass": qos_class(spec)})
    for single, plural in (("podIP", "podIPs"), ("hostIP", "hostIPs")):
        _sync_singular(status, single, plural, _wrap_ip, _unwrap_ip)


def _wrap_ip(ip: Any) -> Obj:
    return {"ip": ip}


def _unwrap_ip(item: Any) -> Any:
    return item.get("ip") if isinstance(item, dict) else None


def _sync_singular(
    obj: Obj,
    single: str,
    plural: str,
    wrap: Callable[[Any], Any],
    unwrap: Callable[[Any], Any],
) -> None:
    """v1's ``podIP``/``podIPs``-style pairs: the conversion keeps item 0 and the scalar equal."""
    items = obj.get(plural)
    if obj.get(single) and not items:
        obj[plural] = [wrap(obj[single])]
    elif isinstance(items, list) and items and not obj.get(single):
        first = unwrap(items[0])
        if first:
            obj[single] = first


# -- workloads --------------------------------------------------------------------------


def _template_of(obj: Obj) -> None:
    pod_template(_sub(_map(obj, "spec"), "template"))


def _deployment(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _fill(
        spec,
        {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
        test=_unset,
    )
    strategy = _map(spec, "strategy")
    _fill(strategy, {"type": "RollingUpdate"})
    if strategy["type"] == "RollingUpdate":
        _fill(
            _map(strategy, "rollingUpdate"),
            {"maxUnavailable": "25%", "maxSurge": "25%"},
            test=_unset,
        )
    _template_of(obj)


def _replica_set(obj: Obj) -> None:
    _fill(_map(obj, "spec"), {"replicas": 1}, test=_unset)
    _template_of(obj)


def _daemon_set(obj: Obj) -> None:
    spec = _map(obj, "spec")
    strategy = _map(spec, "updateStrategy")
    _fill(strategy, {"type": "RollingUpdate"})
    if strategy["type"] == "RollingUpdate":
        _fill(_map(strategy, "rollingUpdate"), {"maxUnavailable": 1, "maxSurge": 0}, test=_unset)
    _fill(spec, {"revisionHistoryLimit": 10}, test=_unset)
    _template_of(obj)


def _pvc_spec(spec: Obj) -> None:
    _fill(spec, {"volumeMode": "Filesystem"}, test=_unset)


def _pvc(obj: Obj) -> None:
    _pvc_spec(_map(obj, "spec"))
    _fill(_map(obj, "status"), {"phase": "Pending"})


def _stateful_set(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _fill(spec, {"podManagementPolicy": "OrderedReady"})
    strategy = _map(spec, "updateStrategy")
    if _empty(strategy, "type"):
        strategy["type"] = "RollingUpdate"
        _map(strategy, "rollingUpdate")
    rolling = _sub(strategy, "rollingUpdate")
    if strategy["type"] == "RollingUpdate" and rolling is not None:
        _fill(rolling, {"partition": 0}, test=_unset)
    retention = _map(spec, "persistentVolumeClaimRetentionPolicy")
    _fill(retention, {"whenDeleted": "Retain", "whenScaled": "Retain"})
    _fill(spec, {"replicas": 1, "revisionHistoryLimit": 10}, test=_unset)
    for claim in _maps(spec, "volumeClaimTemplates"):
        _pvc(claim)
    _template_of(obj)


def _replication_controller(obj: Obj) -> None:
    spec = _map(obj, "spec")
    template = _sub(spec, "template")
    labels = (_sub(template, "metadata") or {}).get("labels") if template else None
    if isinstance(labels, dict):
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _map(obj, "metadata")
        if not meta.get("labels"):
            meta["labels"] = dict(labels)
    _fill(spec, {"replicas": 1}, test=_unset)
    pod_template(template)


def generate_job_selector(obj: Obj) -> None:
    """The selector and template labels a Job gets from its uid (``generateSelector``).

    Needs ``metadata.uid``; does nothing for ``manualSelector: true`` or without a uid.
    """
    meta, spec = _map(obj, "metadata"), _map(obj, "spec")
    uid, name = meta.get("uid"), meta.get("name")
    if spec.get("manualSelector") is True or not uid:
        return
    labels = _map(_map(_map(spec, "template"), "metadata"), "labels")
    for key in JOB_NAME_LABELS:
        labels.setdefault(key, name)
    for key in JOB_LABELS:
        labels.setdefault(key, uid)
    match = _map(_map(spec, "selector"), "matchLabels")
    match.setdefault(JOB_LABELS[0], uid)


def _job_spec(spec: Obj) -> None:
    if _unset(spec, "completions") and _unset(spec, "parallelism"):
        spec["completions"] = 1
    _fill(spec, {"parallelism": 1}, test=_unset)
    backoff = 2**31 - 1 if not _unset(spec, "backoffLimitPerIndex") else 6
    _fill(
        spec,
        {"backoffLimit": backoff, "completionMode": "NonIndexed", "suspend": False},
        test=_unset,
    )
    failure_policy = _sub(spec, "podFailurePolicy")
    replacement = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    _fill(spec, {"podReplacementPolicy": replacement}, test=_unset)
    for rule in _maps(failure_policy or {}, "rules"):
        for pattern in _maps(rule, "onPodConditions"):
            _fill(pattern, {"status": "True"})


def _job(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _job_spec(spec)
    pod_template(_sub(spec, "template"))
    generate_job_selector(obj)
    labels = ((_sub(spec, "template") or {}).get("metadata") or {}).get("labels")
    meta = _map(obj, "metadata")
    if isinstance(labels, dict) and not meta.get("labels"):
        meta["labels"] = dict(labels)


def _cron_job(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _fill(spec, {"concurrencyPolicy": "Allow"})
    _fill(
        spec,
        {"suspend": False, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1},
        test=_unset,
    )
    job_template = _sub(spec, "jobTemplate")
    if job_template is not None:
        pod_template(_sub(_map(job_template, "spec"), "template"))


# -- services and networking ------------------------------------------------------------


def _service(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _fill(spec, {"sessionAffinity": "None", "type": "ClusterIP"})
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        client = _map(_map(spec, "sessionAffinityConfig"), "clientIP")
        _fill(client, {"timeoutSeconds": 10800}, test=_unset)
    for port in _maps(spec, "ports"):
        _fill(port, {"protocol": "TCP"})
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    kind = spec["type"]
    if (
        kind in ("NodePort", "LoadBalancer") or kind == "ClusterIP" and spec.get("externalIPs")
    ) and _empty(spec, "externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if kind in ("NodePort", "LoadBalancer", "ClusterIP"):
        _fill(spec, {"internalTrafficPolicy": "Cluster"}, test=_unset)
    load_balancer = _map(_map(obj, "status"), "loadBalancer")
    if kind == "LoadBalancer":
        _fill(spec, {"allocateLoadBalancerNodePorts": True}, test=_unset)
        for ingress in _maps(load_balancer, "ingress"):
            if ingress.get("ip") and _unset(ingress, "ipMode"):
                ingress["ipMode"] = "VIP"
    if kind != "ExternalName":
        _service_ip_fields(spec)


def _service_ip_fields(spec: Obj) -> None:
    """ClusterIP/ClusterIPs sync and IP family defaults (strategy and allocator, IPv4 cluster)."""
    ip, ips = spec.get("clusterIP"), spec.get("clusterIPs")
    if ip and not ips:
        spec["clusterIPs"] = [ip]
    elif ips and isinstance(ips, list) and not ip:
        spec["clusterIP"] = ips[0]
    ips = spec.get("clusterIPs") or []
    headless_selectorless = ips == ["None"] and not spec.get("selector")
    if _unset(spec, "ipFamilyPolicy"):
        if headless_selectorless:
            spec["ipFamilyPolicy"] = "RequireDualStack"
        elif len(ips) == 2 or len(spec.get("ipFamilies") or []) == 2:
            spec["ipFamilyPolicy"] = "PreferDualStack"
        else:
            spec["ipFamilyPolicy"] = "SingleStack"
    families = list(spec.get("ipFamilies") or [])
    for i, addr in enumerate(a for a in ips if isinstance(a, str) and a != "None"):
        if i >= len(families):
            families.append("IPv6" if ":" in addr else "IPv4")
    if not families:
        families = ["IPv4"]
    if (
        headless_selectorless
        and spec["ipFamilyPolicy"] in ("PreferDualStack", "RequireDualStack")
        and len(families) == 1
    ):
        families.append("IPv6" if families[0] == "IPv4" else "IPv4")
    spec["ipFamilies"] = families


def _endpoints(obj: Obj) -> None:
    for subset in _maps(obj, "subsets"):
        for port in _maps(subset, "ports"):
            _fill(port, {"protocol": "TCP"})


def _endpoint_slice(obj: Obj) -> None:
    for port in _maps(obj, "ports"):
        _fill(port, {"name": "", "protocol": "TCP"}, test=_unset)


def _network_policy(obj: Obj) -> None:
    spec = _map(obj, "spec")
    for rule_key in ("ingress", "egress"):
        for rule in _maps(spec, rule_key):
            for port in _maps(rule, "ports"):
                _fill(port, {"protocol": "TCP"}, test=_unset)
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]


def _ingress_class(obj: Obj) -> None:
    params = _sub(_map(obj, "spec"), "parameters")
    if params is not None:
        _fill(params, {"scope": "Cluster"}, test=_unset)


# -- cluster-level and small kinds ------------------------------------------------------


def _namespace(obj: Obj) -> None:
    meta = _map(obj, "metadata")
    name = meta.get("name")
    if isinstance(name, str) and name:
        _map(meta, "labels")["kubernetes.io/metadata.name"] = name
    spec = _map(obj, "spec")
    if spec.get("finalizers") is None and not meta.get("deletionTimestamp"):
        spec["finalizers"] = ["kubernetes"]
    _fill(_map(obj, "status"), {"phase": "Active"})


def _secret(obj: Obj) -> None:
    _fill(obj, {"type": "Opaque"})
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = _map(obj, "data")
        for key, value in string_data.items():
            text = value if isinstance(value, str) else ""
            data[key] = base64.b64encode(text.encode()).decode()


def _persistent_volume(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _fill(spec, {"persistentVolumeReclaimPolicy": "Retain"})
    _fill(spec, {"volumeMode": "Filesystem"}, test=_unset)
    _source_defaults(spec)
    _fill(_map(obj, "status"), {"phase": "Pending"})


def _same(value: Any) -> Any:
    return value


def _node(obj: Obj) -> None:
    spec = _sub(obj, "spec")
    if spec is not None:
        _sync_singular(spec, "podCIDR", "podCIDRs", _same, _same)
    status = _sub(obj, "status")
    if (
        status is not None
        and _unset(status, "allocatable")
        and isinstance(status.get("capacity"), dict)
    ):
        status["allocatable"] = clone(status["capacity"])


def _limit_range(obj: Obj) -> None:
    for item in _maps(_map(obj, "spec"), "limits"):
        if item.get("type") != "Container":
            continue
        default, request = _map(item, "default"), _map(item, "defaultRequest")
        for source, target in (
            (_sub(item, "max"), default),
            (default, request),
            (_sub(item, "min"), request),
        ):
            for name, value in (source or {}).items():
                target.setdefault(name, clone(value))


def _binding(obj: Obj) -> None:
    _fill(_map(obj, "roleRef"), {"apiGroup": RBAC_GROUP})
    for subject in _maps(obj, "subjects"):
        if _empty(subject, "apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def _storage_class(obj: Obj) -> None:
    _fill(obj, {"reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"})


def _priority_class(obj: Obj) -> None:
    _fill(obj, {"preemptionPolicy": "PreemptLowerPriority"})


SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
SCALE_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _hpa(obj: Obj) -> None:
    spec = _map(obj, "spec")
    _fill(spec, {"minReplicas": 1}, test=_unset)
    if version_of(obj) == "v1":
        return
    if not spec.get("metrics"):
        target = {"type": "Utilization", "averageUtilization": 80}
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
    behavior = _sub(spec, "behavior")
    if behavior is not None:
        for key, rules in (("scaleUp", SCALE_UP), ("scaleDown", SCALE_DOWN)):
            current = _map(behavior, key)
            _fill(current, rules, test=_unset)


def _csi_driver(obj: Obj) -> None:
    spec = _map(obj, "spec")
    values = {
        "attachRequired": True,
        "podInfoOnMount": False,
        "storageCapacity": False,
        "fsGroupPolicy": "ReadWriteOnceWithFSType",
        "requiresRepublish": False,
        "volumeLifecycleModes": ["Persistent"],
        "seLinuxMount": False,
    }
    _fill(spec, values, test=_unset)


def _webhooks(mutating: bool) -> Defaulter:
    def apply(obj: Obj) -> None:
        for hook in _maps(obj, "webhooks"):
            values: dict[str, Any] = {
                "failurePolicy": "Fail",
                "matchPolicy": "Equivalent",
                "timeoutSeconds": 10,
            }
            values |= {"namespaceSelector": {}, "objectSelector": {}}
            if mutating:
                values["reinvocationPolicy"] = "Never"
            _fill(hook, values, test=_unset)
            for rule in _maps(hook, "rules"):
                _fill(rule, {"scope": "*"}, test=_unset)
            service = _sub(_map(hook, "clientConfig"), "service")
            if service is not None:
                _fill(service, {"port": 443}, test=_unset)

    return apply


DEFAULTERS: dict[tuple[str, str], Defaulter] = {
    ("", "Pod"): _pod,
    ("", "PodTemplate"): lambda obj: pod_template(_sub(obj, "template")),
    ("", "ReplicationController"): _replication_controller,
    ("", "Service"): _service,
    ("", "Endpoints"): _endpoints,
    ("", "Namespace"): _namespace,
    ("", "Secret"): _secret,
    ("", "PersistentVolume"): _persistent_volume,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Node"): _node,
    ("", "LimitRange"): _limit_range,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("batch", "Job"): _job,
    ("batch", "CronJob"): _cron_job,
    ("networking.k8s.io", "NetworkPolicy"): _network_policy,
    ("networking.k8s.io", "IngressClass"): _ingress_class,
    ("discovery.k8s.io", "EndpointSlice"): _endpoint_slice,
    ("rbac.authorization.k8s.io", "RoleBinding"): _binding,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): _binding,
    ("storage.k8s.io", "StorageClass"): _storage_class,
    ("storage.k8s.io", "CSIDriver"): _csi_driver,
    ("scheduling.k8s.io", "PriorityClass"): _priority_class,
    ("autoscaling", "HorizontalPodAutoscaler"): _hpa,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): _webhooks(True),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): _webhooks(False),
}


# -- quantities -------------------------------------------------------------------------


def _quantity_ref(raw: openapi.Schema) -> bool:
    name = openapi.ref_name(raw)
    if name is None and isinstance(raw.get("allOf"), list) and len(raw["allOf"]) == 1:
        name = openapi.ref_name(raw["allOf"][0])
    return name == QUANTITY


_CANONICAL: dict[tuple[str, bool], str] = {}


def _canonical(raw: Any, *, milli: bool) -> Any:
    if type(raw) is str:  # the same few texts over and over ("100m", "128Mi")
        hit = _CANONICAL.get((raw, milli))
        if hit is not None:
            return hit
    q = qty.try_parse(raw)
    if q is None:
        return raw
    text = str(q.round_up_milli() if milli else q)
    if type(raw) is str and len(raw) <= 64:
        if len(_CANONICAL) >= 4096:
            _CANONICAL.clear()
        _CANONICAL[(raw, milli)] = text
    return text


_HOLDS_QUANTITY: dict[int, bool] = {}


def _holds_quantity(raw_schema: openapi.Schema) -> bool:
    """Whether any quantity can sit at or below this schema (memoised per schema dict)."""
    key = id(raw_schema)
    found = _HOLDS_QUANTITY.get(key)
    if found is not None:
        return found
    _HOLDS_QUANTITY[key] = False  # recursion guard: a cycle adds nothing new
    if _quantity_ref(raw_schema):
        result = True
    else:
        sch = openapi.resolve(raw_schema)
        subs: list[Any] = list((sch.get("properties") or {}).values())
        for k in ("additionalProperties", "items"):
            if isinstance(sch.get(k), dict):
                subs.append(sch[k])
        result = any(isinstance(x, dict) and _holds_quantity(x) for x in subs)
    _HOLDS_QUANTITY[key] = result
    return result


# Per schema dict: None (no quantity below), True (a quantity itself), or
# (properties, additionalProperties if a dict, whether those are quantities, items).
_QUANTITY_PLANS: dict[int, tuple[openapi.Schema, Any]] = {}


def _quantity_plan(raw_schema: openapi.Schema) -> Any:
    hit = _QUANTITY_PLANS.get(id(raw_schema))
    if hit is not None and hit[0] is raw_schema:
        return hit[1]
    plan: Any = None
    if _holds_quantity(raw_schema):
        if _quantity_ref(raw_schema):
            plan = True
        else:
            sch = openapi.resolve(raw_schema)
            extra = sch.get("additionalProperties")
            extra = extra if isinstance(extra, dict) else None
            items = sch.get("items")
            plan = (
                sch.get("properties") or {},
                extra,
                extra is not None and _quantity_ref(extra),
                items if isinstance(items, dict) else None,
            )
    _QUANTITY_PLANS[id(raw_schema)] = (raw_schema, plan)
    return plan


def _walk_quantities(value: Any, raw_schema: openapi.Schema) -> Any:
    """``value`` with every quantity below it in canonical form (dicts changed in place)."""
    plan = _quantity_plan(raw_schema)
    if plan is None:
        return value
    if plan is True:
        return _canonical(value, milli=False)
    props, extra, list_of_quantities, items = plan
    if isinstance(value, dict):
        for key, item in value.items():
            if key in props:
                value[key] = _walk_quantities(item, props[key])
            elif list_of_quantities:
                value[key] = _canonical(item, milli=True)
            elif extra is not None:
                value[key] = _walk_quantities(item, extra)
    elif isinstance(value, list) and items is not None:
        for i, item in enumerate(value):
            value[i] = _walk_quantities(item, items)
    return value


def canonicalize_quantities(group: str, kind: str, obj: Obj) -> None:
    sch = openapi.schema_for_kind(group, version_of(obj), kind)
    if sch is not None:
        _walk_quantities(obj, sch)


# -- entry points -----------------------------------------------------------------------


def apply_defaults(group: str, kind: str, obj: Obj) -> None:
    """Fill in upstream's defaults for a built-in object, in place (idempotent)."""
    defaulter = DEFAULTERS.get((group, kind))
    if defaulter is not None:
        defaulter(obj)
    canonicalize_quantities(group, kind, obj)


def _copy_meta(obj: Obj, old: Obj) -> None:
    meta, old_meta = _map(obj, "metadata"), old.get("metadata") or {}
    if not meta.get("uid") and old_meta.get("uid"):
        meta["uid"] = old_meta["uid"]
    for key in ("creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
        if old_meta.get(key) is not None:
            meta[key] = clone(old_meta[key])


def _needs_node_port(spec: Obj) -> bool:
    kind = spec.get("type")
    return (
        kind == "NodePort"
        or kind == "LoadBalancer"
        and spec.get("allocateLoadBalancerNodePorts") is not False
    )


def _service_update(obj: Obj, old: Obj) -> None:
    """``patchAllocatedValues``: keep allocated IPs and ports the client left out."""
    spec, old_spec = _map(obj, "spec"), old.get("spec") or {}
    both_ip = "ExternalName" not in (spec.get("type"), old_spec.get("type"))
    if both_ip and not spec.get("clusterIP") and not spec.get("clusterIPs"):
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if old_spec.get(key) is not None:
                spec[key] = clone(old_spec[key])
    if _needs_node_port(spec) and _needs_node_port(old_spec):
        old_ports = {p.get("name", ""): p.get("nodePort") for p in _maps(old_spec, "ports")}
        used = {p.get("nodePort") for p in _maps(spec, "ports") if p.get("nodePort")}
        for port in _maps(spec, "ports"):
            candidate = old_ports.get(port.get("name", ""))
            if not port.get("nodePort") and candidate and candidate not in used:
                port["nodePort"] = candidate
                used.add(candidate)
    needs_hc = spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
    old_hc = (
        old_spec.get("type") == "LoadBalancer" and old_spec.get("externalTrafficPolicy") == "Local"
    )
    if needs_hc and old_hc and not spec.get("healthCheckNodePort"):
        spec["healthCheckNodePort"] = old_spec.get("healthCheckNodePort")


def _namespace_update(obj: Obj, old: Obj) -> None:
    spec = _map(obj, "spec")
    spec["finalizers"] = clone((old.get("spec") or {}).get("finalizers"))
    if spec["finalizers"] is None:
        del spec["finalizers"]
    if old.get("status") is not None:
        obj["status"] = clone(old["status"])


UPDATE_PREPARERS: dict[tuple[str, str], Callable[[Obj, Obj], None]] = {
    ("", "Service"): _service_update,
    ("", "Namespace"): _namespace_update,
}


def prepare_for_update(group: str, kind: str, obj: Obj, old: Obj) -> None:
    """Carry server-owned values of the stored object ``old`` into the update ``obj``.

    Metadata set by the server (uid when omitted, timestamps) always; per kind:
    a Service keeps its allocated cluster IPs, IP families and node ports when the
    client left them out; a Namespace keeps its finalizers and status (they change
    only through ``/finalize`` and ``/status``).
    """
    _copy_meta(obj, old)
    preparer = UPDATE_PREPARERS.get((group, kind))
    if preparer is not None:
        preparer(obj, old)
