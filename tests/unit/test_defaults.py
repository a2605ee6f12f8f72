"""Defaulting of built-in kinds (``k3py.server.registry.defaults``), checked against the
values a kube-apiserver 1.32 returns for the same manifests."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k3py.server.registry.defaults import (
    apply_defaults,
    generate_job_selector,
    image_tag,
    prepare_for_update,
    qos_class,
)

Obj = dict[str, Any]


def defaulted(group: str, kind: str, obj: Obj) -> Obj:
    apply_defaults(group, kind, obj)
    return obj


def container(**extra: Any) -> Obj:
    return {"name": "app", "image": "nginx:1.25", **extra}


def pod(*containers: Obj, **spec: Any) -> Obj:
    body = {"containers": list(containers) or [container()], **spec}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "default"},
        "spec": body,
    }


def template(**spec: Any) -> Obj:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container()], **spec}}


# -- pods -------------------------------------------------------------------------------


def test_pod_spec_defaults() -> None:
    spec = defaulted("", "Pod", pod())["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True


def test_pod_spec_keeps_given_values() -> None:
    spec = defaulted("", "Pod", pod(restartPolicy="Never", terminationGracePeriodSeconds=0))["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["terminationGracePeriodSeconds"] == 0


def test_container_defaults() -> None:
    ctr = defaulted("", "Pod", pod(container(ports=[{"containerPort": 80}])))["spec"]["containers"][
        0
    ]
    assert ctr["terminationMessagePath"] == "/dev/termination-log"
    assert ctr["terminationMessagePolicy"] == "File"
    assert ctr["imagePullPolicy"] == "IfNotPresent"
    assert ctr["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert ctr["resources"] == {}


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("docker.io/library/nginx:1.25", "IfNotPresent"),
        ("registry.local:5000/team/app", "Always"),
        ("registry.local:5000/team/app:v2", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "IfNotPresent"),
        ("nginx:latest@sha256:" + "a" * 64, "Always"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    ctr = defaulted("", "Pod", pod(container(image=image)))["spec"]["containers"][0]
    assert ctr["imagePullPolicy"] == policy


def test_image_tag_parsing() -> None:
    assert image_tag("busybox") == "latest"
    assert image_tag("busybox:1.36") == "1.36"
    assert image_tag("") == ""


def test_probe_defaults() -> None:
    probe = {"httpGet": {"port": 8080}}
    ctr = defaulted(
        "",
        "Pod",
        pod(
            container(
                livenessProbe=probe, readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 3}
            )
        ),
    )
    live = ctr["spec"]["containers"][0]["livenessProbe"]
    ready = ctr["spec"]["containers"][0]["readinessProbe"]
    assert live == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert ready["periodSeconds"] == 3


def test_lifecycle_http_get_defaults() -> None:
    lifecycle = {"preStop": {"httpGet": {"port": 80}}}
    ctr = defaulted("", "Pod", pod(container(lifecycle=lifecycle)))["spec"]["containers"][0]
    assert ctr["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}


def test_env_field_refs() -> None:
    env = [
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ]
    ctr = defaulted("", "Pod", pod(container(env=env)))["spec"]["containers"][0]
    assert ctr["env"][0]["valueFrom"]["fieldRef"] == {
        "fieldPath": "status.podIP",
        "apiVersion": "v1",
    }
    assert ctr["env"][1]["valueFrom"]["resourceFieldRef"]["divisor"] == "0"


def test_requests_default_to_limits_on_pods_only() -> None:
    resources = {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}}
    ctr = defaulted("", "Pod", pod(container(resources=copy.deepcopy(resources))))["spec"][
        "containers"
    ][0]
    assert ctr["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    dep = deployment(template=template(containers=[container(resources=copy.deepcopy(resources))]))
    tmpl_ctr = defaulted("apps", "Deployment", dep)["spec"]["template"]["spec"]["containers"][0]
    assert tmpl_ctr["resources"]["requests"] == {"cpu": "100m"}


def test_enable_service_links_only_on_pods() -> None:
    dep = defaulted("apps", "Deployment", deployment())
    assert "enableServiceLinks" not in dep["spec"]["template"]["spec"]


def test_volume_defaults() -> None:
    volumes = [
        {"name": "cm", "configMap": {"name": "c"}},
        {"name": "sec", "secret": {"secretName": "s", "defaultMode": 256}},
        {"name": "scratch"},
        {"name": "host", "hostPath": {"path": "/var/log"}},
        {
            "name": "api",
            "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]},
        },
        {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
        {
            "name": "eph",
            "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}},
        },
    ]
    vols = defaulted("", "Pod", pod(volumes=volumes))["spec"]["volumes"]
    assert vols[0]["configMap"]["defaultMode"] == 420
    assert vols[1]["secret"]["defaultMode"] == 256
    assert vols[2]["emptyDir"] == {}
    assert vols[3]["hostPath"]["type"] == ""
    assert vols[4]["downwardAPI"]["defaultMode"] == 420
    assert vols[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"] == "v1"
    assert vols[5]["projected"]["defaultMode"] == 420
    assert vols[5]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] == 3600
    assert vols[6]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"] == "Filesystem"


def test_host_network_defaults_host_ports() -> None:
    p = defaulted("", "Pod", pod(container(ports=[{"containerPort": 8080}]), hostNetwork=True))
    assert p["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080


def test_pod_status_phase_and_qos() -> None:
    p = defaulted("", "Pod", pod())
    assert p["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


@pytest.mark.parametrize(
    ("resources", "qos"),
    [
        ({}, "BestEffort"),
        ({"requests": {"cpu": "100m"}}, "Burstable"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
        ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
        ({"limits": {"cpu": "1"}}, "Burstable"),
    ],
)
def test_qos_class(resources: Obj, qos: str) -> None:
    p = defaulted("", "Pod", pod(container(resources=resources)))
    assert p["status"]["qosClass"] == qos
    assert qos_class(p["spec"]) == qos


# -- workloads --------------------------------------------------------------------------


def deployment(**spec: Any) -> Obj:
    body = {"selector": {"matchLabels": {"app": "web"}}, "template": template(), **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": body,
    }


def test_deployment_defaults() -> None:
    spec = defaulted("apps", "Deployment", deployment())["spec"]
    assert spec["replicas"] == 1
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
    }
    assert spec["selector"] == {"matchLabels": {"app": "web"}}


def test_deployment_recreate_gets_no_rolling_update() -> None:
    spec = defaulted("apps", "Deployment", deployment(strategy={"type": "Recreate"}))["spec"]
    assert spec["strategy"] == {"type": "Recreate"}


def test_deployment_without_selector_is_not_given_one() -> None:
    dep = deployment()
    del dep["spec"]["selector"]
    assert "selector" not in defaulted("apps", "Deployment", dep)["spec"]


@pytest.mark.parametrize(
    ("group", "kind", "build", "path"),
    [
        ("apps", "Deployment", lambda: deployment(), ("spec", "template", "spec")),
        (
            "apps",
            "ReplicaSet",
            lambda: {"spec": {"template": template()}},
            ("spec", "template", "spec"),
        ),
        (
            "apps",
            "DaemonSet",
            lambda: {"spec": {"template": template()}},
            ("spec", "template", "spec"),
        ),
        (
            "apps",
            "StatefulSet",
            lambda: {"spec": {"template": template()}},
            ("spec", "template", "spec"),
        ),
        ("batch", "Job", lambda: {"spec": {"template": template()}}, ("spec", "template", "spec")),
        (
            "",
            "ReplicationController",
            lambda: {"spec": {"template": template()}},
            ("spec", "template", "spec"),
        ),
        ("", "PodTemplate", lambda: {"template": template()}, ("template", "spec")),
        (
            "batch",
            "CronJob",
            lambda: {
                "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": template()}}}
            },
            ("spec", "jobTemplate", "spec", "template", "spec"),
        ),
    ],
)
def test_pod_templates_get_pod_spec_defaults(
    group: str, kind: str, build: Any, path: tuple[str, ...]
) -> None:
    obj = defaulted(group, kind, build())
    for key in path:
        obj = obj[key]
    assert obj["restartPolicy"] == "Always"
    assert obj["dnsPolicy"] == "ClusterFirst"
    assert obj["containers"][0]["terminationMessagePolicy"] == "File"


def test_replica_set_and_daemon_set_defaults() -> None:
    assert defaulted("apps", "ReplicaSet", {"spec": {}})["spec"]["replicas"] == 1
    ds = defaulted("apps", "DaemonSet", {"spec": {}})["spec"]
    assert ds["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0},
    }
    assert ds["revisionHistoryLimit"] == 10


def test_stateful_set_defaults() -> None:
    claim = {
        "metadata": {"name": "www"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    spec = defaulted(
        "apps", "StatefulSet", {"spec": {"template": template(), "volumeClaimTemplates": [claim]}}
    )["spec"]
    assert spec["replicas"] == 1
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    vct = spec["volumeClaimTemplates"][0]
    assert vct["spec"]["volumeMode"] == "Filesystem"
    assert vct["status"] == {"phase": "Pending"}


def test_stateful_set_on_delete_strategy_untouched() -> None:
    spec = defaulted("apps", "StatefulSet", {"spec": {"updateStrategy": {"type": "OnDelete"}}})[
        "spec"
    ]
    assert spec["updateStrategy"] == {"type": "OnDelete"}


def job(**spec: Any) -> Obj:
    meta = {"name": "pi", "namespace": "default", "uid": "1234"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {"template": template(restartPolicy="Never"), **spec},
    }


def test_job_defaults() -> None:
    spec = defaulted("batch", "Job", job())["spec"]
    assert spec["completions"] == 1
    assert spec["parallelism"] == 1
    assert spec["backoffLimit"] == 6
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"
    assert "manualSelector" not in spec


def test_job_parallelism_only() -> None:
    spec = defaulted("batch", "Job", job(parallelism=3))["spec"]
    assert spec["parallelism"] == 3
    assert "completions" not in spec


def test_job_pod_failure_policy_defaults() -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    spec = defaulted("batch", "Job", job(podFailurePolicy=policy))["spec"]
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_job_template_restart_policy_is_defaulted_like_any_pod_spec() -> None:
    obj = job()
    del obj["spec"]["template"]["spec"]["restartPolicy"]
    assert defaulted("batch", "Job", obj)["spec"]["template"]["spec"]["restartPolicy"] == "Always"


def test_job_selector_generation() -> None:
    obj = defaulted("batch", "Job", job())
    labels = obj["spec"]["template"]["metadata"]["labels"]
    assert labels["controller-uid"] == labels["batch.kubernetes.io/controller-uid"] == "1234"
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "pi"
    assert obj["spec"]["selector"] == {
        "matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}
    }
    assert obj["metadata"]["labels"] == labels


def test_job_selector_not_generated_without_uid_or_with_manual_selector() -> None:
    no_uid = job()
    del no_uid["metadata"]["uid"]
    generate_job_selector(no_uid)
    assert "selector" not in no_uid["spec"]
    manual = job(manualSelector=True, selector={"matchLabels": {"app": "web"}})
    generate_job_selector(manual)
    assert manual["spec"]["selector"] == {"matchLabels": {"app": "web"}}


def test_cron_job_defaults() -> None:
    obj = {
        "spec": {
            "schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": template(restartPolicy="OnFailure")}},
        }
    }
    spec = defaulted("batch", "CronJob", obj)["spec"]
    assert spec["concurrencyPolicy"] == "Allow"
    assert spec["suspend"] is False
    assert spec["successfulJobsHistoryLimit"] == 3
    assert spec["failedJobsHistoryLimit"] == 1
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]


def test_replication_controller_defaults() -> None:
    obj = defaulted(
        "", "ReplicationController", {"metadata": {"name": "rc"}, "spec": {"template": template()}}
    )
    assert obj["spec"]["selector"] == {"app": "web"}
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert obj["spec"]["replicas"] == 1


# -- services ---------------------------------------------------------------------------


def service(**spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "default"},
        "spec": spec,
    }


def test_service_cluster_ip_defaults() -> None:
    spec = defaulted("", "Service", service(selector={"app": "web"}, ports=[{"port": 80}]))["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert spec["ipFamilies"] == ["IPv4"]
    assert "externalTrafficPolicy" not in spec
    assert "clusterIP" not in spec
    assert "allocateLoadBalancerNodePorts" not in spec


def test_service_status_load_balancer_is_always_present() -> None:
    assert defaulted("", "Service", service(ports=[{"port": 80}]))["status"] == {"loadBalancer": {}}


def test_service_named_target_port_kept() -> None:
    spec = defaulted("", "Service", service(ports=[{"port": 80, "targetPort": "http"}]))["spec"]
    assert spec["ports"][0]["targetPort"] == "http"


def test_node_port_service_defaults() -> None:
    spec = defaulted("", "Service", service(type="NodePort", ports=[{"port": 80}]))["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert "nodePort" not in spec["ports"][0]


def test_load_balancer_service_defaults() -> None:
    spec = defaulted("", "Service", service(type="LoadBalancer", ports=[{"port": 80}]))["spec"]
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["externalTrafficPolicy"] == "Cluster"


def test_client_ip_affinity_timeout() -> None:
    spec = defaulted("", "Service", service(sessionAffinity="ClientIP", ports=[{"port": 80}]))[
        "spec"
    ]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_session_affinity_none_drops_config() -> None:
    spec = defaulted(
        "",
        "Service",
        service(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}, ports=[{"port": 80}]),
    )["spec"]
    assert "sessionAffinityConfig" not in spec


def test_headless_service() -> None:
    spec = defaulted(
        "", "Service", service(clusterIP="None", selector={"app": "db"}, ports=[{"port": 5432}])
    )["spec"]
    assert spec["clusterIPs"] == ["None"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    bare = defaulted("", "Service", service(clusterIP="None", ports=[{"port": 5432}]))["spec"]
    assert bare["ipFamilyPolicy"] == "RequireDualStack"
    assert bare["ipFamilies"] == ["IPv4", "IPv6"]


def test_given_cluster_ip_is_mirrored_into_cluster_ips() -> None:
    spec = defaulted("", "Service", service(clusterIP="10.43.0.10", ports=[{"port": 53}]))["spec"]
    assert spec["clusterIPs"] == ["10.43.0.10"]
    v6 = defaulted("", "Service", service(clusterIPs=["fd00::10"], ports=[{"port": 53}]))["spec"]
    assert v6["clusterIP"] == "fd00::10"
    assert v6["ipFamilies"] == ["IPv6"]


def test_external_name_service() -> None:
    spec = defaulted("", "Service", service(type="ExternalName", externalName="db.example.com"))[
        "spec"
    ]
    assert spec["sessionAffinity"] == "None"
    for key in ("ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy", "clusterIPs"):
        assert key not in spec


def test_endpoints_and_endpoint_slice_ports() -> None:
    ep = defaulted(
        "", "Endpoints", {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
    )
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    es = defaulted(
        "discovery.k8s.io", "EndpointSlice", {"addressType": "IPv4", "ports": [{"port": 80}]}
    )
    assert es["ports"] == [{"port": 80, "name": "", "protocol": "TCP"}]


# -- other kinds ------------------------------------------------------------------------


def test_namespace_defaults() -> None:
    ns = defaulted("", "Namespace", {"metadata": {"name": "team-a"}})
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}


def test_secret_defaults_and_string_data() -> None:
    s = defaulted("", "Secret", {"data": {"a": "eA=="}, "stringData": {"user": "admin", "a": "y"}})
    assert s["type"] == "Opaque"
    assert s["data"] == {"a": "eQ==", "user": "YWRtaW4="}
    assert "stringData" not in s


def test_persistent_volume_claim_and_volume() -> None:
    pvc = defaulted("", "PersistentVolumeClaim", {"spec": {"accessModes": ["ReadWriteOnce"]}})
    assert pvc["spec"]["volumeMode"] == "Filesystem"
    assert pvc["status"] == {"phase": "Pending"}
    pv = defaulted("", "PersistentVolume", {"spec": {"hostPath": {"path": "/data"}}})
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert pv["spec"]["volumeMode"] == "Filesystem"
    assert pv["status"] == {"phase": "Pending"}


def test_network_policy_types() -> None:
    ingress_only = defaulted("networking.k8s.io", "NetworkPolicy", {"spec": {"podSelector": {}}})
    assert ingress_only["spec"]["policyTypes"] == ["Ingress"]
    both = defaulted(
        "networking.k8s.io",
        "NetworkPolicy",
        {"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}},
    )
    assert both["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert both["spec"]["egress"][0]["ports"][0]["protocol"] == "TCP"


def test_storage_and_priority_classes() -> None:
    sc = defaulted("storage.k8s.io", "StorageClass", {"provisioner": "rancher.io/local-path"})
    assert (sc["reclaimPolicy"], sc["volumeBindingMode"]) == ("Delete", "Immediate")
    pc = defaulted("scheduling.k8s.io", "PriorityClass", {"value": 10})
    assert pc["preemptionPolicy"] == "PreemptLowerPriority"


def test_rbac_binding_api_groups() -> None:
    subjects = [
        {"kind": "User", "name": "jane"},
        {"kind": "Group", "name": "devs"},
        {"kind": "ServiceAccount", "name": "sa", "namespace": "x"},
    ]
    rb = defaulted(
        "rbac.authorization.k8s.io",
        "RoleBinding",
        {"roleRef": {"kind": "Role", "name": "r"}, "subjects": subjects},
    )
    assert rb["roleRef"]["apiGroup"] == "rbac.authorization.k8s.io"
    assert [s.get("apiGroup") for s in rb["subjects"]] == [
        "rbac.authorization.k8s.io",
        "rbac.authorization.k8s.io",
        None,
    ]


def test_hpa_v2_defaults() -> None:
    obj = {
        "apiVersion": "autoscaling/v2",
        "spec": {"maxReplicas": 5, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}},
    }
    spec = defaulted("autoscaling", "HorizontalPodAutoscaler", obj)["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80},
            },
        }
    ]
    assert spec["behavior"]["scaleDown"] == {
        "stabilizationWindowSeconds": 60,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    assert spec["behavior"]["scaleUp"]["policies"][0] == {
        "type": "Pods",
        "value": 4,
        "periodSeconds": 15,
    }


def test_hpa_v1_defaults() -> None:
    spec = defaulted(
        "autoscaling",
        "HorizontalPodAutoscaler",
        {"apiVersion": "autoscaling/v1", "spec": {"maxReplicas": 3}},
    )["spec"]
    assert spec == {"maxReplicas": 3, "minReplicas": 1}


def test_ingress_class_and_ingress() -> None:
    ic = defaulted(
        "networking.k8s.io",
        "IngressClass",
        {"spec": {"controller": "k3py.io/ingress", "parameters": {"kind": "P", "name": "p"}}},
    )
    assert ic["spec"]["parameters"]["scope"] == "Cluster"
    paths = [{"path": "/", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]
    ing = defaulted(
        "networking.k8s.io", "Ingress", {"spec": {"rules": [{"http": {"paths": paths}}]}}
    )
    assert "pathType" not in ing["spec"]["rules"][0]["http"]["paths"][0]


def test_limit_range_container_defaults() -> None:
    item = {
        "type": "Container",
        "max": {"cpu": "2"},
        "min": {"memory": "64Mi"},
        "default": {"memory": "256Mi"},
    }
    lr = defaulted("", "LimitRange", {"spec": {"limits": [item]}})
    limit = lr["spec"]["limits"][0]
    assert limit["default"] == {"memory": "256Mi", "cpu": "2"}
    assert limit["defaultRequest"] == {"memory": "256Mi", "cpu": "2"}


def test_node_allocatable_from_capacity() -> None:
    node = defaulted("", "Node", {"status": {"capacity": {"cpu": "4", "memory": "8Gi"}}})
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0.5", "500m"),
        (0.5, "500m"),
        (2, "2"),
        ("1000m", "1"),
        ("1024Mi", "1Gi"),
        ("1.5Gi", "1536Mi"),
        ("0.0001", "1m"),
        ("128974848", "128974848"),
        ("1e3", "1e3"),
    ],
)
def test_quantities_are_canonical(given: Any, stored: str) -> None:
    p = defaulted("", "Pod", pod(container(resources={"limits": {"cpu": given}})))
    resources = p["spec"]["containers"][0]["resources"]
    assert resources["limits"]["cpu"] == stored
    assert resources["requests"]["cpu"] == stored


def test_non_list_quantities_are_not_rounded() -> None:
    p = defaulted("", "Pod", pod(volumes=[{"name": "v", "emptyDir": {"sizeLimit": "0.0001"}}]))
    assert p["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] == "100u"


def test_invalid_quantities_are_left_for_validation() -> None:
    p = defaulted("", "Pod", pod(container(resources={"limits": {"cpu": "lots"}})))
    assert p["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "lots"


def test_unknown_kinds_are_untouched() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": "0.5"}}
    assert defaulted("example.com", "Widget", copy.deepcopy(obj)) == obj


@pytest.mark.parametrize(
    ("group", "kind", "obj"),
    [
        (
            "",
            "Pod",
            pod(
                container(
                    resources={"limits": {"cpu": "1"}}, livenessProbe={"httpGet": {"port": 80}}
                )
            ),
        ),
        ("apps", "Deployment", deployment()),
        ("", "Service", service(clusterIP="None", ports=[{"port": 80}])),
        ("batch", "Job", job()),
        ("", "Secret", {"stringData": {"a": "b"}}),
        ("", "Namespace", {"metadata": {"name": "n"}}),
    ],
)
def test_defaulting_is_idempotent(group: str, kind: str, obj: Obj) -> None:
    once = defaulted(group, kind, copy.deepcopy(obj))
    assert defaulted(group, kind, copy.deepcopy(once)) == once


# -- updates ----------------------------------------------------------------------------


def test_prepare_for_update_keeps_allocated_service_values() -> None:
    old = defaulted(
        "",
        "Service",
        service(
            type="NodePort",
            clusterIP="10.43.0.5",
            ports=[{"name": "http", "port": 80, "nodePort": 30080}],
        ),
    )
    new = service(type="NodePort", ports=[{"name": "http", "port": 80}])
    prepare_for_update("", "Service", new, old)
    apply_defaults("", "Service", new)
    assert new["spec"]["clusterIP"] == "10.43.0.5"
    assert new["spec"]["clusterIPs"] == ["10.43.0.5"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080


def test_prepare_for_update_copies_server_metadata() -> None:
    old = {"metadata": {"name": "c", "uid": "u1", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    new = {"metadata": {"name": "c", "creationTimestamp": "2025-01-01T00:00:00Z"}}
    prepare_for_update("", "ConfigMap", new, old)
    assert new["metadata"] == old["metadata"]


def test_prepare_for_update_keeps_namespace_finalizers_and_status() -> None:
    old = {
        "metadata": {"name": "n"},
        "spec": {"finalizers": []},
        "status": {"phase": "Terminating"},
    }
    new = {"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes"]}}
    prepare_for_update("", "Namespace", new, old)
    apply_defaults("", "Namespace", new)
    assert new["spec"]["finalizers"] == []
    assert new["status"] == {"phase": "Terminating"}


def test_singular_and_plural_fields_are_kept_in_step() -> None:
    node = defaulted("", "Node", {"spec": {"podCIDR": "10.42.0.0/24"}})
    assert node["spec"]["podCIDRs"] == ["10.42.0.0/24"]
    p = pod()
    p["status"] = {"podIPs": [{"ip": "10.42.0.5"}], "hostIP": "192.168.1.2"}
    status = defaulted("", "Pod", p)["status"]
    assert status["podIP"] == "10.42.0.5"
    assert status["hostIPs"] == [{"ip": "192.168.1.2"}]
