"""Validation of built-in kinds (``k3py.server.registry.validate``): field paths, reasons
and messages as kube-apiserver 1.32 words them.  Objects go through ``apply_defaults``
first, as they do in the server."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from k3py.server.errors import Cause, invalid
from k3py.server.registry.defaults import apply_defaults
from k3py.server.registry.validate import cron, quantity
from k3py.server.registry.validation import validate

Obj = dict[str, Any]
CLUSTER_SCOPED = {
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "RuntimeClass",
}
DNS_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def group_of(obj: Obj) -> str:
    api_version = obj.get("apiVersion", "v1")
    return api_version.split("/")[0] if "/" in api_version else ""


def run(obj: Obj, old: Obj | None = None) -> list[Cause]:
    group, kind = group_of(obj), obj["kind"]
    apply_defaults(group, kind, obj)
    if old is not None:
        apply_defaults(group, kind, old)
    return validate(group, kind, obj, old=old, namespaced=kind not in CLUSTER_SCOPED)


def put(obj: Obj, path: str, value: Any) -> Obj:
    """Copy of ``obj`` with ``value`` at a dotted path (``a.b[0].c``); ``...`` deletes."""
    out = copy.deepcopy(obj)
    parts = [p for p in re.split(r"\.|\[(\d+)\]", path) if p]
    target: Any = out
    for part in parts[:-1]:
        key: Any = int(part) if part.isdigit() else part
        if isinstance(target, dict) and key not in target:
            target[key] = {}
        target = target[key]
    last: Any = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
    if value is ...:
        del target[last]
    elif isinstance(target, list) and last == len(target):
        target.append(value)
    else:
        target[last] = value
    return out


# -- valid objects ------------------------------------------------------------------------


def meta(name: str, **extra: Any) -> Obj:
    return {"name": name, "namespace": "default", **extra}


def pod(**spec: Any) -> Obj:
    body = {
        "containers": [
            {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80, "name": "http"}]}
        ],
        **spec,
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta("web-0"), "spec": body}


def pod_template(**spec: Any) -> Obj:
    return {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}], **spec},
    }


def deployment(**spec: Any) -> Obj:
    body = {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": pod_template(),
        **spec,
    }
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"), "spec": body}


def replica_set() -> Obj:
    return {**deployment(), "kind": "ReplicaSet"}


def daemon_set() -> Obj:
    body = {"selector": {"matchLabels": {"app": "web"}}, "template": pod_template()}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("agent"), "spec": body}


def stateful_set() -> Obj:
    claim = {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    tmpl = pod_template()
    tmpl["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    body = {
        "serviceName": "db",
        "selector": {"matchLabels": {"app": "web"}},
        "template": tmpl,
        "volumeClaimTemplates": [claim],
    }
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("db"), "spec": body}


def job() -> Obj:
    body = {"template": pod_template(restartPolicy="Never"), "backoffLimit": 4}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta("pi", uid="8f1c"),
        "spec": body,
    }


def cron_job(**spec: Any) -> Obj:
    body = {
        "schedule": "*/5 * * * *",
        "jobTemplate": {"spec": {"template": pod_template(restartPolicy="OnFailure")}},
        **spec,
    }
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("backup"), "spec": body}


def service(**spec: Any) -> Obj:
    body = {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta("web"), "spec": body}


def config_map(**data: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta("cfg"),
        "data": data or {"app.conf": "x=1"},
    }


def secret(**extra: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta("creds"),
        "data": {"password": "aHVudGVyMg=="},
        **extra,
    }


def pvc(**spec: Any) -> Obj:
    body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, **spec}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": meta("data"),
        "spec": body,
    }


def pv() -> Obj:
    spec = {
        "capacity": {"storage": "10Gi"},
        "accessModes": ["ReadWriteOnce"],
        "hostPath": {"path": "/mnt/data"},
    }
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv1"},
        "spec": spec,
    }


def ingress() -> Obj:
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    rule = {
        "host": "app.example.com",
        "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
    }
    spec = {"tls": [{"hosts": ["app.example.com"], "secretName": "tls"}], "rules": [rule]}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta("web"),
        "spec": spec,
    }


def network_policy() -> Obj:
    spec = {
        "podSelector": {"matchLabels": {"role": "db"}},
        "ingress": [
            {
                "from": [{"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24"]}}],
                "ports": [{"port": 6379}],
            }
        ],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta("db"),
        "spec": spec,
    }


def hpa(**spec: Any) -> Obj:
    body = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": 5,
        **spec,
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta("web"),
        "spec": body,
    }


def pdb(**spec: Any) -> Obj:
    body = {"selector": {"matchLabels": {"app": "web"}}, **spec}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta("web"),
        "spec": body,
    }


def endpoint_slice(**extra: Any) -> Obj:
    body = {
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.42.0.7"]}],
        "ports": [{"port": 80}],
        **extra,
    }
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": meta("web-abc"),
        **body,
    }


def role() -> Obj:
    rules = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta("pod-reader"),
        "rules": rules,
    }


def role_binding(**extra: Any) -> Obj:
    body = {
        "roleRef": {"kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "User", "name": "jane"}],
        **extra,
    }
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta("read-pods"),
        **body,
    }


def cluster_role_binding() -> Obj:
    return {
        **role_binding(roleRef={"kind": "ClusterRole", "name": "view"}),
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "view-all"},
    }


def storage_class(**extra: Any) -> Obj:
    base = {
        "provisioner": "rancher.io/local-path",
        "volumeBindingMode": "WaitForFirstConsumer",
        **extra,
    }
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": "local-path"},
        **base,
    }


def priority_class(value: int = 1000, name: str = "high") -> Obj:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
    }


def namespace(name: str = "team-a") -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def node() -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node-1"},
        "spec": {"podCIDRs": ["10.42.0.0/24"]},
    }


def lease() -> Obj:
    spec = {"holderIdentity": "node-1", "leaseDurationSeconds": 40}
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta("node-1"),
        "spec": spec,
    }


def event(**extra: Any) -> Obj:
    body = {
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Started",
        "type": "Normal",
        **extra,
    }
    return {"apiVersion": "v1", "kind": "Event", "metadata": meta("p.17a"), **body}


def limit_range(item: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": meta("limits"),
        "spec": {"limits": [item]},
    }


def resource_quota(hard: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": meta("quota"),
        "spec": {"hard": hard},
    }


def replication_controller() -> Obj:
    spec = {"replicas": 1, "selector": {"app": "web"}, "template": pod_template()}
    return {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": meta("rc"),
        "spec": spec,
    }


def more_kinds() -> list[Obj]:
    rbac = "rbac.authorization.k8s.io/v1"
    revision = {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta("web-1")}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("robot")},
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": meta("web"),
            "subsets": [{"addresses": [{"ip": "10.42.0.7"}], "ports": [{"port": 80}]}],
        },
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": meta("tmpl"),
            "template": pod_template(),
        },
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": meta("web.1"),
            "eventTime": "2024-01-01T00:00:00.000000Z",
            "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
            "reportingController": "k3py.io/kubelet",
            "reportingInstance": "node-1",
            "action": "Started",
            "reason": "Started",
            "type": "Normal",
        },
        {**revision, "data": {"spec": {}}, "revision": 1},
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "k3py"},
            "spec": {"controller": "k3py.io/ingress-controller"},
        },
        {
            "apiVersion": "node.k8s.io/v1",
            "kind": "RuntimeClass",
            "metadata": {"name": "gvisor"},
            "handler": "runsc",
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": "view"},
            "rules": role()["rules"],
        },
    ]


VALID_BUILDERS: list[Callable[[], Obj]] = [
    pod,
    deployment,
    replica_set,
    daemon_set,
    stateful_set,
    job,
    cron_job,
    service,
    config_map,
    secret,
    pvc,
    pv,
    ingress,
    network_policy,
    hpa,
    pdb,
    endpoint_slice,
    role,
    role_binding,
    cluster_role_binding,
    storage_class,
    priority_class,
    namespace,
    node,
    lease,
    event,
    replication_controller,
    lambda: limit_range({"type": "Container", "max": {"cpu": "2"}, "min": {"cpu": "100m"}}),
    lambda: resource_quota({"pods": "10", "requests.cpu": "4", "count/deployments.apps": "5"}),
    lambda: hpa(
        metrics=[
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "500Mi"},
                },
            }
        ]
    ),
    lambda: service(type="NodePort", ports=[{"port": 80, "nodePort": 30080}]),
    lambda: service(type="LoadBalancer", externalTrafficPolicy="Local"),
    lambda: service(clusterIP="None"),
    lambda: {**service(), "spec": {"type": "ExternalName", "externalName": "db.example.com."}},
    lambda: cron_job(schedule="@hourly", timeZone="Europe/Berlin"),
    *[(lambda i=i: more_kinds()[i]) for i in range(len(more_kinds()))],
]


@pytest.mark.parametrize("build", VALID_BUILDERS)
def test_valid_objects_pass(build: Callable[[], Obj]) -> None:
    obj = build()
    assert run(obj) == []


@pytest.mark.parametrize("build", VALID_BUILDERS)
def test_unchanged_update_passes(build: Callable[[], Obj]) -> None:
    old = build()
    apply_defaults(group_of(old), old["kind"], old)
    assert run(copy.deepcopy(old), old=old) == []


DOCS_MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx-deployment, namespace: default, labels: {app: nginx}}
spec:
  replicas: 3
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: my-service, namespace: default}
spec:
  type: NodePort
  selector: {app.kubernetes.io/name: MyApp}
  ports:
    - port: 80
      targetPort: 80
      nodePort: 30007
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: nginx}}
  serviceName: nginx
  replicas: 3
  template:
    metadata: {labels: {app: nginx}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports: [{containerPort: 80, name: web}]
        volumeMounts: [{name: www, mountPath: /usr/share/nginx/html}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      storageClassName: my-storage-class
      resources: {requests: {storage: 1Gi}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: hello, namespace: default}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command: [/bin/sh, -c, date; echo Hello from the Kubernetes cluster]
          restartPolicy: OnFailure
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: tls-example-ingress, namespace: default}
spec:
  tls:
  - hosts: [https-example.foo.com]
    secretName: testsecret-tls
  rules:
  - host: https-example.foo.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: service1, port: {number: 80}}}
  - host: "*.foo.com"
    http:
      paths:
      - pathType: ImplementationSpecific
        backend: {service: {name: service2, port: {name: http}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: fluentd-elasticsearch, namespace: kube-system, labels: {k8s-app: fluentd-logging}}
spec:
  selector: {matchLabels: {name: fluentd-elasticsearch}}
  template:
    metadata: {labels: {name: fluentd-elasticsearch}}
    spec:
      tolerations:
      - {key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}
      containers:
      - name: fluentd-elasticsearch
        image: quay.io/fluentd_elasticsearch/fluentd:v2.5.2
        resources:
          limits: {memory: 200Mi}
          requests: {cpu: 100m, memory: 200Mi}
        volumeMounts: [{name: varlog, mountPath: /var/log}]
      volumes:
      - name: varlog
        hostPath: {path: /var/log}
---
apiVersion: v1
kind: Pod
metadata: {name: probes, namespace: default}
spec:
  containers:
  - name: app
    image: registry.k8s.io/busybox
    args: [/bin/sh, -c, touch /tmp/healthy; sleep 600]
    env:
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: LABEL, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    livenessProbe: {exec: {command: [cat, /tmp/healthy]}, initialDelaySeconds: 5}
    readinessProbe: {httpGet: {path: /healthz, port: 8080}}
    startupProbe: {tcpSocket: {port: 8080}, failureThreshold: 30}
    volumeMounts: [{name: info, mountPath: /etc/podinfo}, {name: token, mountPath: /var/run/t}]
  serviceAccountName: default
  volumes:
  - name: info
    downwardAPI:
      items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]
  - name: token
    projected:
      sources:
      - serviceAccountToken: {path: token, expirationSeconds: 3600}
      - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
"""


@pytest.mark.parametrize("doc", list(yaml.safe_load_all(DOCS_MANIFESTS)), ids=lambda d: d["kind"])
def test_documentation_manifests_pass(doc: Obj) -> None:
    assert run(doc) == []


# -- invalid objects -----------------------------------------------------------------------


@dataclass
class Case:
    id: str
    build: Callable[[], Obj]
    field: str
    reason: str
    message: str | None = None
    old: Callable[[], Obj] | None = field(default=None)


def pod_with(path: str, value: Any) -> Callable[[], Obj]:
    return lambda: put(pod(), path, value)


def dep_with(path: str, value: Any) -> Callable[[], Obj]:
    return lambda: put(deployment(), path, value)


C0 = "spec.containers[0]"
T0 = "spec.template.spec.containers[0]"

CASES = [
    # metadata
    Case(
        "name required",
        lambda: put(config_map(), "metadata.name", ...),
        "metadata.name",
        "FieldValueRequired",
        "Required value: name or generateName is required",
    ),
    Case(
        "name subdomain",
        lambda: put(config_map(), "metadata.name", "Abc"),
        "metadata.name",
        "FieldValueInvalid",
        f'Invalid value: "Abc": {DNS_SUBDOMAIN_MSG}',
    ),
    Case(
        "generateName checked",
        lambda: put(put(config_map(), "metadata.name", ...), "metadata.generateName", "Web-"),
        "metadata.generateName",
        "FieldValueInvalid",
    ),
    Case(
        "service name dns1035",
        lambda: put(service(), "metadata.name", "1web"),
        "metadata.name",
        "FieldValueInvalid",
        "Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    ),
    Case(
        "namespace name dns label",
        lambda: namespace("team.a"),
        "metadata.name",
        "FieldValueInvalid",
    ),
    Case(
        "statefulset name dns label",
        lambda: put(stateful_set(), "metadata.name", "db.v1"),
        "metadata.name",
        "FieldValueInvalid",
    ),
    Case(
        "rbac name path segment",
        lambda: put(role(), "metadata.name", "a/b"),
        "metadata.name",
        "FieldValueInvalid",
        "Invalid value: \"a/b\": may not contain '/'",
    ),
    Case(
        "namespace required",
        lambda: put(config_map(), "metadata.namespace", ...),
        "metadata.namespace",
        "FieldValueRequired",
        "Required value",
    ),
    Case(
        "namespace on cluster scope",
        lambda: put(storage_class(), "metadata.namespace", "default"),
        "metadata.namespace",
        "FieldValueForbidden",
        "Forbidden: not allowed on this type",
    ),
    Case(
        "label key",
        lambda: put(config_map(), "metadata.labels", {"-bad": "x"}),
        "metadata.labels",
        "FieldValueInvalid",
    ),
    Case(
        "label value",
        lambda: put(config_map(), "metadata.labels", {"app": "a b"}),
        "metadata.labels",
        "FieldValueInvalid",
    ),
    Case(
        "annotation key",
        lambda: put(config_map(), "metadata.annotations", {"a/b/c": "x"}),
        "metadata.annotations",
        "FieldValueInvalid",
    ),
    Case(
        "annotations too long",
        lambda: put(config_map(), "metadata.annotations", {"big": "x" * 262144}),
        "metadata.annotations",
        "FieldValueTooLong",
        "Too long: may not be more than 262144 bytes",
    ),
    Case(
        "owner reference uid",
        lambda: put(
            config_map(),
            "metadata.ownerReferences",
            [{"apiVersion": "v1", "kind": "Pod", "name": "p"}],
        ),
        "metadata.ownerReferences.uid",
        "FieldValueInvalid",
        'Invalid value: "": must not be empty',
    ),
    Case(
        "finalizer not qualified",
        lambda: put(config_map(), "metadata.finalizers", ["cleanup"]),
        "metadata.finalizers[0]",
        "FieldValueInvalid",
        'Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified',
    ),
    Case(
        "type check",
        dep_with("spec.replicas", "three"),
        "spec.replicas",
        "FieldValueTypeInvalid",
        'Invalid value: "string": spec.replicas in body must be of type integer: "string"',
    ),
    # pods
    Case(
        "containers required",
        pod_with("spec.containers", []),
        "spec.containers",
        "FieldValueRequired",
    ),
    Case(
        "image required",
        pod_with(f"{C0}.image", ""),
        f"{C0}.image",
        "FieldValueRequired",
        "Required value",
    ),
    Case("container name", pod_with(f"{C0}.name", "App"), f"{C0}.name", "FieldValueInvalid"),
    Case(
        "duplicate container",
        lambda: put(pod(), "spec.containers[1]", {"name": "app", "image": "x"}),
        "spec.containers[1].name",
        "FieldValueDuplicate",
        'Duplicate value: "app"',
    ),
    Case(
        "container port range",
        pod_with(f"{C0}.ports[0].containerPort", 70000),
        f"{C0}.ports[0].containerPort",
        "FieldValueInvalid",
        "Invalid value: 70000: must be between 1 and 65535, inclusive",
    ),
    Case(
        "container port name",
        pod_with(f"{C0}.ports[0].name", "HTTP"),
        f"{C0}.ports[0].name",
        "FieldValueInvalid",
    ),
    Case(
        "duplicate port name",
        lambda: put(pod(), f"{C0}.ports[1]", {"containerPort": 81, "name": "http"}),
        f"{C0}.ports[1].name",
        "FieldValueDuplicate",
    ),
    Case(
        "port protocol",
        pod_with(f"{C0}.ports[0].protocol", "HTTP"),
        f"{C0}.ports[0].protocol",
        "FieldValueNotSupported",
        'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"',
    ),
    Case(
        "restart policy",
        pod_with("spec.restartPolicy", "Sometimes"),
        "spec.restartPolicy",
        "FieldValueNotSupported",
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
    ),
    Case(
        "dns policy",
        pod_with("spec.dnsPolicy", "Cluster"),
        "spec.dnsPolicy",
        "FieldValueNotSupported",
    ),
    Case(
        "pull policy",
        pod_with(f"{C0}.imagePullPolicy", "Sometimes"),
        f"{C0}.imagePullPolicy",
        "FieldValueNotSupported",
        'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"',
    ),
    Case(
        "two volume sources",
        pod_with("spec.volumes", [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/x"}}]),
        "spec.volumes[0].hostPath",
        "FieldValueForbidden",
        "Forbidden: may not specify more than 1 volume type",
    ),
    Case(
        "duplicate volume",
        pod_with("spec.volumes", [{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
        "spec.volumes[1].name",
        "FieldValueDuplicate",
    ),
    Case(
        "volume name",
        pod_with("spec.volumes", [{"name": "V", "emptyDir": {}}]),
        "spec.volumes[0].name",
        "FieldValueInvalid",
    ),
    Case(
        "secret volume name",
        pod_with("spec.volumes", [{"name": "v", "secret": {}}]),
        "spec.volumes[0].secret.secretName",
        "FieldValueRequired",
    ),
    Case(
        "config map mode",
        pod_with("spec.volumes", [{"name": "v", "configMap": {"name": "c", "defaultMode": 1000}}]),
        "spec.volumes[0].configMap.defaultMode",
        "FieldValueInvalid",
        "Invalid value: 1000: must be a number between 0 and 0777 (octal), both inclusive",
    ),
    Case(
        "host path type",
        pod_with("spec.volumes", [{"name": "v", "hostPath": {"path": "/x", "type": "Dir"}}]),
        "spec.volumes[0].hostPath.type",
        "FieldValueNotSupported",
    ),
    Case(
        "mount of unknown volume",
        pod_with(f"{C0}.volumeMounts", [{"name": "data", "mountPath": "/data"}]),
        f"{C0}.volumeMounts[0].name",
        "FieldValueNotFound",
        'Not found: "data"',
    ),
    Case(
        "mount path required",
        lambda: put(
            put(pod(), "spec.volumes", [{"name": "v", "emptyDir": {}}]),
            f"{C0}.volumeMounts",
            [{"name": "v"}],
        ),
        f"{C0}.volumeMounts[0].mountPath",
        "FieldValueRequired",
    ),
    Case(
        "requests above limits",
        pod_with(f"{C0}.resources", {"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}),
        f"{C0}.resources.requests",
        "FieldValueInvalid",
        'Invalid value: "1": must be less than or equal to cpu limit of 500m',
    ),
    Case(
        "bad quantity",
        pod_with(f"{C0}.resources", {"limits": {"memory": "1GB"}}),
        f"{C0}.resources.limits[memory]",
        "FieldValueInvalid",
        "Invalid value: \"1GB\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    ),
    Case(
        "negative quantity",
        pod_with(f"{C0}.resources", {"requests": {"cpu": "-1"}}),
        f"{C0}.resources.requests[cpu]",
        "FieldValueInvalid",
        'Invalid value: "-1": must be greater than or equal to 0',
    ),
    Case(
        "resource name",
        pod_with(f"{C0}.resources", {"limits": {"gpu": "1"}}),
        f"{C0}.resources.limits[gpu]",
        "FieldValueInvalid",
        'Invalid value: "gpu": must be a standard resource type or fully qualified',
    ),
    Case(
        "env name",
        pod_with(f"{C0}.env", [{"name": "A=B", "value": "1"}]),
        f"{C0}.env[0].name",
        "FieldValueInvalid",
    ),
    Case(
        "env source missing",
        pod_with(f"{C0}.env", [{"name": "A", "valueFrom": {}}]),
        f"{C0}.env[0].valueFrom",
        "FieldValueInvalid",
    ),
    Case(
        "env field path",
        pod_with(
            f"{C0}.env",
            [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}],
        ),
        f"{C0}.env[0].valueFrom.fieldRef.fieldPath",
        "FieldValueNotSupported",
    ),
    Case(
        "probe without handler",
        pod_with(f"{C0}.livenessProbe", {"initialDelaySeconds": 1}),
        f"{C0}.livenessProbe",
        "FieldValueRequired",
        "Required value: must specify a handler type",
    ),
    Case(
        "probe with two handlers",
        pod_with(
            f"{C0}.readinessProbe", {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}
        ),
        f"{C0}.readinessProbe.tcpSocket",
        "FieldValueForbidden",
        "Forbidden: may not specify more than 1 handler type",
    ),
    Case(
        "liveness success threshold",
        pod_with(f"{C0}.livenessProbe", {"exec": {"command": ["true"]}, "successThreshold": 2}),
        f"{C0}.livenessProbe.successThreshold",
        "FieldValueInvalid",
        "Invalid value: 2: must be 1",
    ),
    Case(
        "probe port name",
        pod_with(f"{C0}.startupProbe", {"httpGet": {"port": "http_port"}}),
        f"{C0}.startupProbe.httpGet.port",
        "FieldValueInvalid",
    ),
    Case(
        "toleration operator",
        pod_with("spec.tolerations", [{"key": "k", "operator": "Is"}]),
        "spec.tolerations[0].operator",
        "FieldValueNotSupported",
    ),
    Case(
        "node affinity values",
        pod_with(
            "spec.affinity",
            {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In"}]}
                        ]
                    }
                }
            },
        ),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values",
        "FieldValueRequired",
    ),
    Case(
        "active deadline",
        pod_with("spec.activeDeadlineSeconds", 0),
        "spec.activeDeadlineSeconds",
        "FieldValueInvalid",
        "Invalid value: 0: must be between 1 and 2147483647, inclusive",
    ),
    Case(
        "init container probe",
        pod_with(
            "spec.initContainers",
            [
                {
                    "name": "init",
                    "image": "busybox",
                    "readinessProbe": {"exec": {"command": ["true"]}},
                }
            ],
        ),
        "spec.initContainers[0].readinessProbe",
        "FieldValueForbidden",
    ),
    Case(
        "host port conflict",
        lambda: put(
            pod(),
            "spec.containers[0].ports",
            [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}],
        ),
        f"{C0}.ports[1].hostPort",
        "FieldValueDuplicate",
        'Duplicate value: "TCP//8080"',
    ),
    # deployments and other workloads
    Case(
        "deployment selector required",
        dep_with("spec.selector", ...),
        "spec.selector",
        "FieldValueRequired",
    ),
    Case(
        "deployment selector mismatch",
        dep_with("spec.template.metadata.labels", {"app": "api"}),
        "spec.template.metadata.labels",
        "FieldValueInvalid",
        'Invalid value: map[string]string{"app":"api"}: `selector` does not match template `labels`',
    ),
    Case(
        "deployment empty selector",
        dep_with("spec.selector", {}),
        "spec.selector",
        "FieldValueInvalid",
    ),
    Case(
        "deployment replicas",
        dep_with("spec.replicas", -1),
        "spec.replicas",
        "FieldValueInvalid",
        "Invalid value: -1: must be greater than or equal to 0",
    ),
    Case(
        "deployment zero surge and unavailable",
        dep_with(
            "spec.strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
        ),
        "spec.strategy.rollingUpdate.maxUnavailable",
        "FieldValueInvalid",
    ),
    Case(
        "deployment recreate with rolling update",
        dep_with("spec.strategy", {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
        "spec.strategy.rollingUpdate",
        "FieldValueForbidden",
        "Forbidden: may not be specified when strategy `type` is 'Recreate'",
    ),
    Case(
        "deployment bad percent",
        dep_with("spec.strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "half"}}),
        "spec.strategy.rollingUpdate.maxSurge",
        "FieldValueInvalid",
    ),
    Case(
        "deployment restart policy",
        dep_with("spec.template.spec.restartPolicy", "Never"),
        "spec.template.spec.restartPolicy",
        "FieldValueNotSupported",
        'Unsupported value: "Never": supported values: "Always"',
    ),
    Case(
        "deployment template image",
        dep_with(f"{T0}.image", ""),
        f"{T0}.image",
        "FieldValueRequired",
    ),
    Case(
        "deployment progress deadline",
        dep_with("spec.minReadySeconds", 700),
        "spec.progressDeadlineSeconds",
        "FieldValueInvalid",
        "Invalid value: 600: must be greater than minReadySeconds",
    ),
    Case(
        "replicaset replicas",
        lambda: put(replica_set(), "spec.replicas", -2),
        "spec.replicas",
        "FieldValueInvalid",
    ),
    Case(
        "daemonset surge and unavailable",
        lambda: put(
            daemon_set(),
            "spec.updateStrategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}},
        ),
        "spec.updateStrategy.rollingUpdate.maxSurge",
        "FieldValueInvalid",
    ),
    Case(
        "daemonset selector mismatch",
        lambda: put(daemon_set(), "spec.selector", {"matchLabels": {"app": "other"}}),
        "spec.template.metadata.labels",
        "FieldValueInvalid",
    ),
    Case(
        "statefulset pod management",
        lambda: put(stateful_set(), "spec.podManagementPolicy", "Random"),
        "spec.podManagementPolicy",
        "FieldValueInvalid",
        "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
    ),
    Case(
        "statefulset retention",
        lambda: put(
            stateful_set(), "spec.persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Keep"}
        ),
        "spec.persistentVolumeClaimRetentionPolicy.whenDeleted",
        "FieldValueNotSupported",
    ),
    Case(
        "replication controller mismatch",
        lambda: put(replication_controller(), "spec.selector", {"app": "x"}),
        "spec.template.metadata.labels",
        "FieldValueInvalid",
    ),
    # jobs
    Case(
        "job restart policy",
        lambda: put(job(), "spec.template.spec.restartPolicy", ...),
        "spec.template.spec.restartPolicy",
        "FieldValueNotSupported",
        'Unsupported value: "Always": supported values: "OnFailure", "Never"',
    ),
    Case(
        "job backoff limit",
        lambda: put(job(), "spec.backoffLimit", -1),
        "spec.backoffLimit",
        "FieldValueInvalid",
    ),
    Case(
        "job completions",
        lambda: put(job(), "spec.completions", -1),
        "spec.completions",
        "FieldValueInvalid",
    ),
    Case(
        "job without uid",
        lambda: put(job(), "metadata.uid", ...),
        "spec.selector",
        "FieldValueRequired",
    ),
    Case(
        "job indexed needs completions",
        lambda: put(put(job(), "spec.completionMode", "Indexed"), "spec.parallelism", 2),
        "spec.completions",
        "FieldValueRequired",
        "Required value: when completion mode is Indexed",
    ),
    Case(
        "job manual selector mismatch",
        lambda: put(
            put(job(), "spec.manualSelector", True),
            "spec.selector",
            {"matchLabels": {"app": "other"}},
        ),
        "spec.template.metadata.labels",
        "FieldValueInvalid",
    ),
    Case(
        "cron schedule fields",
        lambda: cron_job(schedule="every minute"),
        "spec.schedule",
        "FieldValueInvalid",
        'Invalid value: "every minute": expected exactly 5 fields, found 2: [every minute]',
    ),
    Case(
        "cron schedule range",
        lambda: cron_job(schedule="61 * * * *"),
        "spec.schedule",
        "FieldValueInvalid",
        'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61',
    ),
    Case(
        "cron descriptor",
        lambda: cron_job(schedule="@fortnightly"),
        "spec.schedule",
        "FieldValueInvalid",
        'Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly',
    ),
    Case(
        "cron tz in schedule",
        lambda: cron_job(schedule="CRON_TZ=UTC 0 * * * *"),
        "spec.schedule",
        "FieldValueInvalid",
        'Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead',
    ),
    Case(
        "cron time zone",
        lambda: cron_job(timeZone="Mars/Olympus"),
        "spec.timeZone",
        "FieldValueInvalid",
        'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus',
    ),
    Case(
        "cron concurrency policy",
        lambda: cron_job(concurrencyPolicy="Sometimes"),
        "spec.concurrencyPolicy",
        "FieldValueNotSupported",
        'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"',
    ),
    Case(
        "cron job name length",
        lambda: put(cron_job(), "metadata.name", "c" * 53),
        "metadata.name",
        "FieldValueInvalid",
        f'Invalid value: "{"c" * 53}": must be no more than 52 characters',
    ),
    Case(
        "cron job template restart policy",
        lambda: put(cron_job(), "spec.jobTemplate.spec.template.spec.restartPolicy", "Always"),
        "spec.jobTemplate.spec.template.spec.restartPolicy",
        "FieldValueNotSupported",
    ),
    # services
    Case("service ports required", lambda: service(ports=[]), "spec.ports", "FieldValueRequired"),
    Case(
        "service port range",
        lambda: service(ports=[{"port": 0}]),
        "spec.ports[0].port",
        "FieldValueInvalid",
        "Invalid value: 0: must be between 1 and 65535, inclusive",
    ),
    Case(
        "service port names",
        lambda: service(ports=[{"port": 80}, {"port": 443}]),
        "spec.ports[1].name",
        "FieldValueRequired",
    ),
    Case(
        "service duplicate port",
        lambda: service(ports=[{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]),
        "spec.ports[1]",
        "FieldValueDuplicate",
    ),
    Case(
        "service type",
        lambda: service(type="Internal"),
        "spec.type",
        "FieldValueNotSupported",
        'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"',
    ),
    Case(
        "service protocol",
        lambda: service(ports=[{"port": 80, "protocol": "tcp"}]),
        "spec.ports[0].protocol",
        "FieldValueNotSupported",
    ),
    Case(
        "service target port",
        lambda: service(ports=[{"port": 80, "targetPort": 99999}]),
        "spec.ports[0].targetPort",
        "FieldValueInvalid",
    ),
    Case(
        "service node port on cluster ip",
        lambda: service(ports=[{"port": 80, "nodePort": 30001}]),
        "spec.ports[0].nodePort",
        "FieldValueForbidden",
        "Forbidden: may not be used when `type` is 'ClusterIP'",
    ),
    Case(
        "service selector",
        lambda: service(selector={"app": "a b"}),
        "spec.selector",
        "FieldValueInvalid",
    ),
    Case(
        "headless node port",
        lambda: service(type="NodePort", clusterIP="None"),
        "spec.clusterIPs[0]",
        "FieldValueInvalid",
        "Invalid value: \"None\": may not be set to 'None' for NodePort services",
    ),
    Case(
        "external name required",
        lambda: {**service(), "spec": {"type": "ExternalName"}},
        "spec.externalName",
        "FieldValueRequired",
    ),
    Case(
        "cluster ip format",
        lambda: service(clusterIP="10.43.0.300"),
        "spec.clusterIPs[0]",
        "FieldValueInvalid",
    ),
    Case(
        "affinity timeout",
        lambda: service(
            sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 0}}
        ),
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        "FieldValueInvalid",
    ),
    Case(
        "endpoints address",
        lambda: {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": meta("web"),
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}]}],
        },
        "subsets[0].addresses[0].ip",
        "FieldValueInvalid",
        'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)',
    ),
    # config and secrets
    Case(
        "config map key",
        lambda: config_map(**{"bad key": "x"}),
        "data[bad key]",
        "FieldValueInvalid",
    ),
    Case(
        "config map too large",
        lambda: config_map(a="x" * (1024 * 1024 + 1)),
        "",
        "FieldValueTooLong",
        "Too long: may not be more than 1048576 bytes",
    ),
    Case(
        "config map key in both maps",
        lambda: {**config_map(a="x"), "binaryData": {"a": "eA=="}},
        "data[a]",
        "FieldValueInvalid",
    ),
    Case(
        "secret base64",
        lambda: secret(data={"token": "abc$"}),
        "data[token]",
        "FieldValueInvalid",
        'Invalid value: "<secret contents redacted>": illegal base64 data at input byte 3',
    ),
    Case(
        "secret base64 padding",
        lambda: secret(data={"token": "YQ="}),
        "data[token]",
        "FieldValueInvalid",
        'Invalid value: "<secret contents redacted>": illegal base64 data at input byte 3',
    ),
    Case(
        "tls secret keys",
        lambda: secret(type="kubernetes.io/tls", data={"tls.crt": "YQ=="}),
        "data[tls.key]",
        "FieldValueRequired",
    ),
    Case(
        "dockerconfigjson body",
        lambda: secret(
            type="kubernetes.io/dockerconfigjson", data={".dockerconfigjson": "bm90IGpzb24="}
        ),
        "data[.dockerconfigjson]",
        "FieldValueInvalid",
    ),
    # storage
    Case(
        "pvc access modes",
        lambda: pvc(accessModes=[]),
        "spec.accessModes",
        "FieldValueRequired",
        "Required value: at least 1 access mode is required",
    ),
    Case(
        "pvc access mode value",
        lambda: pvc(accessModes=["ReadWriteSometimes"]),
        "spec.accessModes",
        "FieldValueNotSupported",
    ),
    Case(
        "pvc storage",
        lambda: pvc(resources={"requests": {}}),
        "spec.resources[storage]",
        "FieldValueRequired",
    ),
    Case(
        "pvc storage positive",
        lambda: pvc(resources={"requests": {"storage": "0"}}),
        "spec.resources[storage]",
        "FieldValueInvalid",
        'Invalid value: "0": must be greater than zero',
    ),
    Case(
        "pvc volume mode",
        lambda: pvc(volumeMode="Raw"),
        "spec.volumeMode",
        "FieldValueNotSupported",
    ),
    Case(
        "pv volume source",
        lambda: put(pv(), "spec.hostPath", ...),
        "spec",
        "FieldValueRequired",
        "Required value: must specify a volume type",
    ),
    Case(
        "pv capacity",
        lambda: put(pv(), "spec.capacity", {"storage": "10Gi", "cpu": "1"}),
        "spec.capacity",
        "FieldValueNotSupported",
    ),
    Case(
        "pv reclaim policy",
        lambda: put(pv(), "spec.persistentVolumeReclaimPolicy", "Keep"),
        "spec.persistentVolumeReclaimPolicy",
        "FieldValueNotSupported",
    ),
    Case(
        "storage class provisioner",
        lambda: storage_class(provisioner=""),
        "provisioner",
        "FieldValueRequired",
    ),
    Case(
        "storage class reclaim",
        lambda: storage_class(reclaimPolicy="Recycle"),
        "reclaimPolicy",
        "FieldValueNotSupported",
        'Unsupported value: "Recycle": supported values: "Delete", "Retain"',
    ),
    Case(
        "storage class binding",
        lambda: storage_class(volumeBindingMode="Later"),
        "volumeBindingMode",
        "FieldValueNotSupported",
    ),
    # networking
    Case(
        "ingress path type",
        lambda: put(ingress(), "spec.rules[0].http.paths[0].pathType", ...),
        "spec.rules[0].http.paths[0].pathType",
        "FieldValueRequired",
        "Required value: pathType must be specified",
    ),
    Case(
        "ingress path type value",
        lambda: put(ingress(), "spec.rules[0].http.paths[0].pathType", "Glob"),
        "spec.rules[0].http.paths[0].pathType",
        "FieldValueNotSupported",
        'Unsupported value: "Glob": supported values: "Exact", "ImplementationSpecific", "Prefix"',
    ),
    Case(
        "ingress relative path",
        lambda: put(ingress(), "spec.rules[0].http.paths[0].path", "api"),
        "spec.rules[0].http.paths[0].path",
        "FieldValueInvalid",
        'Invalid value: "api": must be an absolute path',
    ),
    Case(
        "ingress backend name",
        lambda: put(ingress(), "spec.rules[0].http.paths[0].backend.service.name", ""),
        "spec.rules[0].http.paths[0].backend.service.name",
        "FieldValueRequired",
    ),
    Case(
        "ingress backend port",
        lambda: put(ingress(), "spec.rules[0].http.paths[0].backend.service.port", {}),
        "spec.rules[0].http.paths[0].backend",
        "FieldValueRequired",
        "Required value: port name or number is required",
    ),
    Case(
        "ingress host ip",
        lambda: put(ingress(), "spec.rules[0].host", "10.0.0.1"),
        "spec.rules[0].host",
        "FieldValueInvalid",
        'Invalid value: "10.0.0.1": must be a DNS name, not an IP address',
    ),
    Case(
        "ingress tls host",
        lambda: put(ingress(), "spec.tls[0].hosts[0]", "Bad_Host"),
        "spec.tls[0].hosts[0]",
        "FieldValueInvalid",
    ),
    Case("ingress no rules", lambda: put(ingress(), "spec", {}), "spec", "FieldValueInvalid"),
    Case(
        "network policy cidr",
        lambda: put(network_policy(), "spec.ingress[0].from[0].ipBlock.cidr", "172.17.0.0"),
        "spec.ingress[0].from[0].ipBlock.cidr",
        "FieldValueInvalid",
    ),
    Case(
        "network policy except",
        lambda: put(network_policy(), "spec.ingress[0].from[0].ipBlock.except", ["10.0.0.0/8"]),
        "spec.ingress[0].from[0].ipBlock.except[0]",
        "FieldValueInvalid",
        'Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`',
    ),
    Case(
        "network policy peer",
        lambda: put(network_policy(), "spec.ingress[0].from[0]", {}),
        "spec.ingress[0].from[0]",
        "FieldValueRequired",
        "Required value: must specify a peer",
    ),
    Case(
        "network policy type",
        lambda: put(network_policy(), "spec.policyTypes", ["Both"]),
        "spec.policyTypes[0]",
        "FieldValueNotSupported",
    ),
    # autoscaling, policy, discovery, coordination
    Case(
        "hpa min replicas",
        lambda: hpa(minReplicas=0),
        "spec.minReplicas",
        "FieldValueInvalid",
        "Invalid value: 0: must be greater than or equal to 1",
    ),
    Case(
        "hpa max below min",
        lambda: hpa(minReplicas=6),
        "spec.maxReplicas",
        "FieldValueInvalid",
        "Invalid value: 5: must be greater than or equal to `minReplicas`",
    ),
    Case(
        "hpa target name",
        lambda: put(hpa(), "spec.scaleTargetRef.name", ""),
        "spec.scaleTargetRef.name",
        "FieldValueRequired",
    ),
    Case(
        "hpa metric type",
        lambda: hpa(metrics=[{"type": "Memory"}]),
        "spec.metrics[0].type",
        "FieldValueNotSupported",
    ),
    Case("pdb both", lambda: pdb(minAvailable=1, maxUnavailable=1), "spec", "FieldValueInvalid"),
    Case("pdb percent", lambda: pdb(minAvailable="150%"), "spec.minAvailable", "FieldValueInvalid"),
    Case(
        "slice address type",
        lambda: endpoint_slice(addressType="IP"),
        "addressType",
        "FieldValueNotSupported",
        'Unsupported value: "IP": supported values: "FQDN", "IPv4", "IPv6"',
    ),
    Case(
        "slice address",
        lambda: endpoint_slice(endpoints=[{"addresses": ["fd00::1"]}]),
        "endpoints[0].addresses[0]",
        "FieldValueInvalid",
        'Invalid value: "fd00::1": must be a valid IPv4 address',
    ),
    Case(
        "slice empty addresses",
        lambda: endpoint_slice(endpoints=[{"addresses": []}]),
        "endpoints[0].addresses",
        "FieldValueRequired",
    ),
    Case(
        "lease duration",
        lambda: put(lease(), "spec.leaseDurationSeconds", 0),
        "spec.leaseDurationSeconds",
        "FieldValueInvalid",
        "Invalid value: 0: must be greater than 0",
    ),
    Case(
        "event namespace",
        lambda: put(event(), "involvedObject.namespace", "other"),
        "involvedObject.namespace",
        "FieldValueInvalid",
        'Invalid value: "other": does not match event.namespace',
    ),
    # rbac
    Case(
        "rule verbs",
        lambda: put(role(), "rules[0].verbs", []),
        "rules[0].verbs",
        "FieldValueRequired",
        "Required value: verbs must contain at least one value",
    ),
    Case(
        "rule api groups",
        lambda: put(role(), "rules[0].apiGroups", ...),
        "rules[0].apiGroups",
        "FieldValueRequired",
    ),
    Case(
        "namespaced non-resource url",
        lambda: put(role(), "rules[0]", {"nonResourceURLs": ["/healthz"], "verbs": ["get"]}),
        "rules[0].nonResourceURLs",
        "FieldValueInvalid",
    ),
    Case(
        "role ref kind",
        lambda: role_binding(roleRef={"kind": "Group", "name": "x"}),
        "roleRef.kind",
        "FieldValueNotSupported",
        'Unsupported value: "Group": supported values: "Role", "ClusterRole"',
    ),
    Case(
        "subject kind",
        lambda: role_binding(subjects=[{"kind": "Robot", "name": "r2"}]),
        "subjects[0].kind",
        "FieldValueNotSupported",
    ),
    Case(
        "cluster binding service account namespace",
        lambda: {**cluster_role_binding(), "subjects": [{"kind": "ServiceAccount", "name": "sa"}]},
        "subjects[0].namespace",
        "FieldValueRequired",
    ),
    # other kinds
    Case(
        "priority class value",
        lambda: priority_class(2_000_000_000),
        "value",
        "FieldValueForbidden",
        "Forbidden: maximum allowed value of a user defined priority is 1000000000",
    ),
    Case(
        "priority class system prefix",
        lambda: priority_class(5, "system-custom"),
        "metadata.name",
        "FieldValueForbidden",
    ),
    Case(
        "node pod cidr",
        lambda: put(node(), "spec.podCIDRs", ["10.42.0.0"]),
        "spec.podCIDRs[0]",
        "FieldValueInvalid",
        'Invalid value: "10.42.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)',
    ),
    Case(
        "limit range min above max",
        lambda: limit_range({"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}),
        "spec.limits[0].min[cpu]",
        "FieldValueInvalid",
    ),
    Case(
        "quota resource name",
        lambda: resource_quota({"widgets": "1"}),
        "spec.hard[widgets]",
        "FieldValueInvalid",
    ),
    Case(
        "quota integer",
        lambda: resource_quota({"pods": "1500m"}),
        "spec.hard[pods]",
        "FieldValueInvalid",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_objects(case: Case) -> None:
    causes = run(case.build())
    matching = [c for c in causes if c["field"] == case.field and c["reason"] == case.reason]
    assert matching, f"no {case.reason} at {case.field!r} in {causes}"
    if case.message is not None:
        assert case.message in [c["message"] for c in matching]


def test_missing_selector_reports_both_errors_like_upstream() -> None:
    causes = run(put(deployment(), "spec.selector", ...))
    assert [(c["field"], c["reason"]) for c in causes] == [
        ("spec.selector", "FieldValueRequired"),
        ("spec.template.metadata.labels", "FieldValueInvalid"),
    ]


def test_aggregate_message_matches_api_server() -> None:
    causes = run(put(config_map(), "metadata.name", "Bad"))
    err = invalid("ConfigMap", "Bad", causes)
    assert (
        err.message
        == f'ConfigMap "Bad" is invalid: metadata.name: Invalid value: "Bad": {DNS_SUBDOMAIN_MSG}'
    )


def test_generate_name_without_name_is_accepted() -> None:
    obj = put(put(config_map(), "metadata.name", ...), "metadata.generateName", "cfg-")
    assert run(obj) == []


def test_custom_resources_get_metadata_rules_only() -> None:
    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": meta("w"),
        "spec": {"size": "huge"},
    }
    assert validate("example.com", "Widget", widget, old=None, namespaced=True) == []
    bad = put(widget, "metadata.name", "W")
    causes = validate("example.com", "Widget", bad, old=None, namespaced=True)
    assert [c["field"] for c in causes] == ["metadata.name"]


# -- updates --------------------------------------------------------------------------------


@dataclass
class Update:
    id: str
    build: Callable[[], Obj]
    change: Callable[[Obj], Obj]
    field: str | None
    reason: str = ""
    message: str | None = None


def stored(build: Callable[[], Obj]) -> Obj:
    obj = build()
    apply_defaults(group_of(obj), obj["kind"], obj)
    obj["metadata"].setdefault("uid", "uid-1")
    obj["metadata"]["resourceVersion"] = "7"
    return obj


UPDATES = [
    Update(
        "name immutable",
        config_map,
        lambda o: put(o, "metadata.name", "other"),
        "metadata.name",
        "FieldValueInvalid",
        'Invalid value: "other": field is immutable',
    ),
    Update(
        "namespace immutable",
        config_map,
        lambda o: put(o, "metadata.namespace", "other"),
        "metadata.namespace",
        "FieldValueInvalid",
    ),
    Update(
        "uid immutable",
        config_map,
        lambda o: put(o, "metadata.uid", "uid-2"),
        "metadata.uid",
        "FieldValueInvalid",
        'Invalid value: "uid-2": field is immutable',
    ),
    Update("uid may be omitted", config_map, lambda o: put(o, "metadata.uid", ...), None),
    Update(
        "creation timestamp",
        lambda: put(config_map(), "metadata.creationTimestamp", "2024-01-01T00:00:00Z"),
        lambda o: put(o, "metadata.creationTimestamp", "2025-01-01T00:00:00Z"),
        "metadata.creationTimestamp",
        "FieldValueInvalid",
        "Invalid value: 2025-01-01 00:00:00 +0000 UTC: field is immutable",
    ),
    Update(
        "labels may change", config_map, lambda o: put(o, "metadata.labels", {"tier": "web"}), None
    ),
    Update(
        "no new finalizers while deleting",
        lambda: put(config_map(), "metadata.deletionTimestamp", "2024-01-01T00:00:00Z"),
        lambda o: put(o, "metadata.finalizers", ["example.com/hold"]),
        "metadata.finalizers",
        "FieldValueForbidden",
    ),
    Update("pod image may change", pod, lambda o: put(o, f"{C0}.image", "nginx:1.26"), None),
    Update(
        "pod tolerations may be added",
        pod,
        lambda o: put(o, "spec.tolerations", [{"key": "k", "operator": "Exists"}]),
        None,
    ),
    Update(
        "pod spec immutable",
        pod,
        lambda o: put(o, "spec.restartPolicy", "Never"),
        "spec",
        "FieldValueForbidden",
    ),
    Update(
        "pod containers fixed",
        pod,
        lambda o: put(o, "spec.containers[1]", {"name": "side", "image": "busybox"}),
        "spec.containers",
        "FieldValueForbidden",
        "Forbidden: pod updates may not add or remove containers",
    ),
    Update(
        "pod deadline may shrink",
        lambda: pod(activeDeadlineSeconds=100),
        lambda o: put(o, "spec.activeDeadlineSeconds", 50),
        None,
    ),
    Update(
        "pod deadline may not grow",
        lambda: pod(activeDeadlineSeconds=100),
        lambda o: put(o, "spec.activeDeadlineSeconds", 200),
        "spec.activeDeadlineSeconds",
        "FieldValueInvalid",
        "Invalid value: 200: must be less than or equal to previous value",
    ),
    Update(
        "pod toleration removal",
        lambda: pod(tolerations=[{"key": "k", "operator": "Exists"}]),
        lambda o: put(o, "spec.tolerations", []),
        "spec.tolerations",
        "FieldValueForbidden",
    ),
    Update(
        "deployment selector immutable",
        deployment,
        lambda o: put(
            put(o, "spec.selector.matchLabels", {"app": "web", "v": "2"}),
            "spec.template.metadata.labels",
            {"app": "web", "v": "2"},
        ),
        "spec.selector",
        "FieldValueInvalid",
        'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web", "v":"2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable',
    ),
    Update(
        "deployment template may change",
        deployment,
        lambda o: put(o, f"{T0}.image", "nginx:1.26"),
        None,
    ),
    Update(
        "statefulset service name",
        stateful_set,
        lambda o: put(o, "spec.serviceName", "other"),
        "spec",
        "FieldValueForbidden",
    ),
    Update(
        "statefulset replicas may change", stateful_set, lambda o: put(o, "spec.replicas", 5), None
    ),
    Update(
        "job template immutable",
        job,
        lambda o: put(o, "spec.template.spec.containers[0].image", "perl:5.36"),
        "spec.template",
        "FieldValueInvalid",
    ),
    Update("job parallelism may change", job, lambda o: put(o, "spec.parallelism", 3), None),
    Update(
        "service cluster ip immutable",
        lambda: service(clusterIP="10.43.0.5"),
        lambda o: put(put(o, "spec.clusterIP", "10.43.0.6"), "spec.clusterIPs", ["10.43.0.6"]),
        "spec.clusterIPs[0]",
        "FieldValueInvalid",
    ),
    Update(
        "service ports may change",
        lambda: service(clusterIP="10.43.0.5"),
        lambda o: put(o, "spec.ports", [{"port": 8080, "protocol": "TCP", "targetPort": 8080}]),
        None,
    ),
    Update(
        "config map immutable data",
        lambda: {**config_map(), "immutable": True},
        lambda o: put(o, "data", {"app.conf": "x=2"}),
        "data",
        "FieldValueForbidden",
        "Forbidden: field is immutable when `immutable` is set",
    ),
    Update(
        "config map immutable flag",
        lambda: {**config_map(), "immutable": True},
        lambda o: put(o, "immutable", False),
        "immutable",
        "FieldValueForbidden",
    ),
    Update(
        "secret type immutable",
        secret,
        lambda o: put(o, "type", "kubernetes.io/basic-auth"),
        "type",
        "FieldValueInvalid",
    ),
    Update(
        "pvc spec immutable",
        pvc,
        lambda o: put(o, "spec.accessModes", ["ReadWriteMany"]),
        "spec",
        "FieldValueForbidden",
    ),
    Update(
        "pvc class may be set once", pvc, lambda o: put(o, "spec.storageClassName", "fast"), None
    ),
    Update("pvc may grow", pvc, lambda o: put(o, "spec.resources.requests.storage", "2Gi"), None),
    Update(
        "pvc may not shrink",
        lambda: pvc(resources={"requests": {"storage": "2Gi"}}),
        lambda o: put(o, "spec.resources.requests.storage", "1Gi"),
        "spec.resources.requests.storage",
        "FieldValueForbidden",
        "Forbidden: field can not be less than previous value",
    ),
    Update(
        "pv source immutable",
        pv,
        lambda o: put(o, "spec.hostPath.path", "/mnt/other"),
        "spec.persistentvolumesource",
        "FieldValueForbidden",
    ),
    Update(
        "storage class parameters",
        lambda: storage_class(parameters={"a": "b"}),
        lambda o: put(o, "parameters", {"a": "c"}),
        "parameters",
        "FieldValueForbidden",
        "Forbidden: updates to parameters are forbidden.",
    ),
    Update(
        "priority class value",
        priority_class,
        lambda o: put(o, "value", 5),
        "value",
        "FieldValueForbidden",
    ),
    Update(
        "role ref immutable",
        role_binding,
        lambda o: put(o, "roleRef.name", "admin"),
        "roleRef",
        "FieldValueInvalid",
    ),
    Update(
        "endpoint slice address type",
        endpoint_slice,
        lambda o: put(o, "addressType", "IPv6") | {"endpoints": [{"addresses": ["fd00::1"]}]},
        "addressType",
        "FieldValueInvalid",
    ),
    Update(
        "node pod cidr",
        node,
        lambda o: put(o, "spec.podCIDRs", ["10.42.1.0/24"]),
        "spec.podCIDRs",
        "FieldValueForbidden",
    ),
    Update(
        "quota scopes",
        lambda: put(resource_quota({"pods": "1"}), "spec.scopes", ["BestEffort"]),
        lambda o: put(o, "spec.scopes", ["NotBestEffort"]),
        "spec.scopes",
        "FieldValueInvalid",
    ),
    Update(
        "ingress class controller",
        lambda: {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {"name": "c"},
            "spec": {"controller": "k3py.io/ingress"},
        },
        lambda o: put(o, "spec.controller", "example.com/x"),
        "spec.controller",
        "FieldValueInvalid",
    ),
]


@pytest.mark.parametrize("case", UPDATES, ids=lambda c: c.id)
def test_updates(case: Update) -> None:
    old = stored(case.build)
    causes = run(case.change(copy.deepcopy(old)), old=old)
    if case.field is None:
        assert causes == []
        return
    matching = [c for c in causes if c["field"] == case.field and c["reason"] == case.reason]
    assert matching, f"no {case.reason} at {case.field!r} in {causes}"
    if case.message is not None:
        assert case.message in [c["message"] for c in matching]


def test_pod_update_message_names_the_updatable_fields() -> None:
    old = stored(pod)
    causes = run(put(copy.deepcopy(old), "spec.restartPolicy", "Never"), old=old)
    message = next(c["message"] for c in causes if c["field"] == "spec")
    assert message.startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
        "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
        "previously negative)\n"
    )
    assert "restartPolicy" in message


# -- building blocks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "schedule",
    [
        "* * * * *",
        "*/15 0-6 1,15 * mon-fri",
        "0 0 ? * SUN",
        "@daily",
        "@every 1h30m",
        "5 4 * jan,jul *",
        "0 12 * * 0-6/2",
    ],
)
def test_cron_accepts(schedule: str) -> None:
    cron.parse_standard(schedule)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("5-2 * * * *", "beginning of range (5) beyond end of range (2): 5-2"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("@every soon", 'failed to parse duration @every soon: time: invalid duration "soon"'),
    ],
)
def test_cron_rejects(schedule: str, message: str) -> None:
    with pytest.raises(cron.CronError) as err:
        cron.parse_standard(schedule)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("100m", "100m"),
        ("0.1", "100m"),
        ("1500", "1500"),
        ("2000", "2k"),
        ("1Ki", "1Ki"),
        ("1536", "1536"),
        ("3Gi", "3Gi"),
        ("1.5", "1500m"),
        ("5e6", "5e6"),
        ("1.500", "1.500"),
        ("+1", "+1"),
        ("8Gi", "8Gi"),
        ("1.0", "1"),
    ],
)
def test_quantity_canonical_form(text: str, canonical: str) -> None:
    assert str(quantity.parse(text)) == canonical


def test_quantity_errors() -> None:
    with pytest.raises(quantity.QuantityError, match="unable to parse quantity's suffix"):
        quantity.parse("5KK")
    with pytest.raises(quantity.QuantityError, match="quantities must match"):
        quantity.parse("5Kb")


def test_empty_and_missing_lists_compare_equal_on_update() -> None:
    old = stored(deployment)
    new = put(copy.deepcopy(old), "spec.selector.matchExpressions", [])
    assert run(new, old=old) == []


def test_every_kind_with_rules_has_a_valid_sample() -> None:
    from k3py.server.registry.validate import RULES

    sampled = {(group_of(b()), b()["kind"]) for b in VALID_BUILDERS}
    assert set(RULES) <= sampled
