"""The official Python client against k3py: CRUD of built-in kinds, defaults and
allocations, error bodies, generateName, version and authentication."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.api.client_common import as_dict, expect_error, fresh_namespace, uniq

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def ns(core_v1: Any) -> Iterator[str]:
    yield from fresh_namespace(core_v1)


def _cm(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> Any:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data)


def _deployment(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    selector: dict[str, str] | None = None,
    replicas: int = 1,
) -> Any:
    labels = labels or {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=selector or labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="c", image="busybox:1.36")]
                ),
            ),
        ),
    )


# ---- ConfigMaps and Secrets --------------------------------------------------


def test_configmap_crud(core_v1: Any, ns: str) -> None:
    created = core_v1.create_namespaced_config_map(ns, _cm("cm1", {"a": "1"}))
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.namespace == ns
    rv1 = int(created.metadata.resource_version)
    got = core_v1.read_namespaced_config_map("cm1", ns)
    assert got.data == {"a": "1"}
    assert got.metadata.resource_version == created.metadata.resource_version

    got.data["b"] = "2"
    replaced = core_v1.replace_namespaced_config_map("cm1", ns, got)
    assert replaced.data == {"a": "1", "b": "2"}
    assert int(replaced.metadata.resource_version) > rv1
    assert replaced.metadata.uid == created.metadata.uid

    patched = core_v1.patch_namespaced_config_map("cm1", ns, {"data": {"c": "3"}})
    assert patched.data == {"a": "1", "b": "2", "c": "3"}

    items = core_v1.list_namespaced_config_map(ns).items
    assert [i.metadata.name for i in items] == ["cm1"]

    core_v1.delete_namespaced_config_map("cm1", ns)
    expect_error(core_v1.read_namespaced_config_map, "cm1", ns, status=404, reason="NotFound")


def test_secret_crud(core_v1: Any, ns: str) -> None:
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name="s1"),
        string_data={"user": "admin"},
        data={"pw": "c2VjcmV0"},
    )
    created = core_v1.create_namespaced_secret(ns, body)
    assert created.type == "Opaque"
    # stringData is folded into data (base64) and not stored.
    assert created.data == {"pw": "c2VjcmV0", "user": "YWRtaW4="}
    assert created.string_data is None
    got = core_v1.read_namespaced_secret("s1", ns)
    assert got.data == created.data
    got.data["extra"] = "eA=="
    assert core_v1.replace_namespaced_secret("s1", ns, got).data["extra"] == "eA=="
    core_v1.delete_namespaced_secret("s1", ns)
    assert core_v1.list_namespaced_secret(ns).items == []


# ---- Services ------------------------------------------------------------------


def _svc(name: str, *, type_: str = "ClusterIP", node_port: int | None = None) -> Any:
    return client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(
            type=type_,
            selector={"app": name},
            ports=[client.V1ServicePort(port=80, target_port=8080, node_port=node_port)],
        ),
    )


def test_service_cluster_ip_allocated(core_v1: Any, ns: str) -> None:
    svc = core_v1.create_namespaced_service(ns, _svc("web"))
    ip = ipaddress.ip_address(svc.spec.cluster_ip)
    assert ip in ipaddress.ip_network("10.43.0.0/16")
    assert svc.spec.cluster_ips == [svc.spec.cluster_ip]
    assert svc.spec.ports[0].protocol == "TCP"
    assert svc.spec.ports[0].node_port is None
    assert svc.spec.session_affinity == "None"
    other = core_v1.create_namespaced_service(ns, _svc("web2"))
    assert other.spec.cluster_ip != svc.spec.cluster_ip
    # An update that does not mention clusterIP keeps it.
    patched = core_v1.patch_namespaced_service("web", ns, {"metadata": {"labels": {"x": "y"}}})
    assert patched.spec.cluster_ip == svc.spec.cluster_ip
    core_v1.delete_namespaced_service("web", ns)
    core_v1.delete_namespaced_service("web2", ns)


def test_service_node_port_allocation_and_conflict(core_v1: Any, ns: str) -> None:
    svc = core_v1.create_namespaced_service(ns, _svc("np", type_="NodePort"))
    port = svc.spec.ports[0].node_port
    assert 30000 <= port <= 32767
    assert ipaddress.ip_address(svc.spec.cluster_ip) in ipaddress.ip_network("10.43.0.0/16")
    body = expect_error(
        core_v1.create_namespaced_service,
        ns,
        _svc("np2", type_="NodePort", node_port=port),
        status=422,
        reason="Invalid",
    )
    assert body["details"]["name"] == "np2"
    assert body["details"]["kind"] == "Service"
    causes = body["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.ports[0].nodePort"]
    assert "provided port is already allocated" in causes[0]["message"]
    # A free, explicitly requested port is honoured.
    wanted = 30000 + (port - 30000 + 1) % 2768
    svc3 = core_v1.create_namespaced_service(ns, _svc("np3", type_="NodePort", node_port=wanted))
    assert svc3.spec.ports[0].node_port == wanted
    # Out of range.
    body = expect_error(
        core_v1.create_namespaced_service,
        ns,
        _svc("np4", type_="NodePort", node_port=1234),
        status=422,
        reason="Invalid",
    )
    assert body["details"]["causes"][0]["field"] == "spec.ports[0].nodePort"


# ---- Deployments -----------------------------------------------------------------


def test_deployment_generation_on_spec_and_annotation_changes(apps_v1: Any, ns: str) -> None:
    d = apps_v1.create_namespaced_deployment(ns, _deployment("gen"))
    assert d.metadata.generation == 1
    assert d.spec.strategy.type == "RollingUpdate"
    assert d.spec.revision_history_limit == 10
    d = apps_v1.patch_namespaced_deployment("gen", ns, {"metadata": {"labels": {"tier": "x"}}})
    assert d.metadata.generation == 1
    # Upstream's deployment strategy bumps generation on annotation changes too (they
    # are copied to the ReplicaSets).
    d = apps_v1.patch_namespaced_deployment("gen", ns, {"metadata": {"annotations": {"a": "b"}}})
    assert d.metadata.generation == 2
    d = apps_v1.patch_namespaced_deployment("gen", ns, {"spec": {"replicas": 3}})
    assert d.metadata.generation == 3
    d.spec.template.spec.containers[0].image = "busybox:1.37"
    d = apps_v1.replace_namespaced_deployment("gen", ns, d)
    assert d.metadata.generation == 4
    # Writing the same spec again changes nothing.
    d = apps_v1.replace_namespaced_deployment("gen", ns, d)
    assert d.metadata.generation == 4


def test_deployment_status_subresource_split(apps_v1: Any, ns: str) -> None:
    d = apps_v1.create_namespaced_deployment(ns, _deployment("split"))
    # The main endpoint ignores status.
    d.status = client.V1DeploymentStatus(replicas=7, observed_generation=5)
    d.spec.replicas = 2
    d = apps_v1.replace_namespaced_deployment("split", ns, d)
    assert d.spec.replicas == 2
    assert d.status.replicas is None and d.status.observed_generation is None
    assert d.metadata.generation == 2
    # /status ignores spec.
    d.status = client.V1DeploymentStatus(replicas=2, observed_generation=2, ready_replicas=1)
    d.spec.replicas = 9
    d = apps_v1.replace_namespaced_deployment_status("split", ns, d)
    assert d.status.replicas == 2 and d.status.ready_replicas == 1
    assert d.spec.replicas == 2
    assert d.metadata.generation == 2
    # Patch on /status: status only.
    d = apps_v1.patch_namespaced_deployment_status(
        "split", ns, {"spec": {"replicas": 5}, "status": {"availableReplicas": 1}}
    )
    assert d.status.available_replicas == 1
    assert d.spec.replicas == 2
    # Patch on the main resource: status ignored.
    d = apps_v1.patch_namespaced_deployment("split", ns, {"status": {"availableReplicas": 4}})
    assert d.status.available_replicas == 1
    read = apps_v1.read_namespaced_deployment_status("split", ns)
    assert read.status.observed_generation == 2


def test_deployment_selector_mismatch_is_invalid(apps_v1: Any, ns: str) -> None:
    body = expect_error(
        apps_v1.create_namespaced_deployment,
        ns,
        _deployment("mismatch", labels={"app": "a"}, selector={"app": "b"}),
        status=422,
        reason="Invalid",
    )
    assert body["details"]["name"] == "mismatch"
    assert body["details"]["group"] == "apps"
    assert body["details"]["kind"] == "Deployment"
    fields = [c["field"] for c in body["details"]["causes"]]
    assert "spec.template.metadata.labels" in fields
    assert body["message"].startswith('Deployment.apps "mismatch" is invalid: ')
    expect_error(apps_v1.read_namespaced_deployment, "mismatch", ns, status=404, reason="NotFound")


# ---- Pods ------------------------------------------------------------------------------


def test_pod_defaults(core_v1: Any, ns: str) -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(name="latest", image="busybox:latest"),
                client.V1Container(name="untagged", image="busybox"),
                client.V1Container(
                    name="tagged",
                    image="busybox:1.36",
                    resources=client.V1ResourceRequirements(requests={"cpu": "100m"}),
                ),
            ]
        ),
    )
    p = core_v1.create_namespaced_pod(ns, pod)
    s = p.spec
    assert s.restart_policy == "Always"
    assert s.dns_policy == "ClusterFirst"
    assert s.termination_grace_period_seconds == 30
    assert s.service_account_name == "default"
    assert s.scheduler_name == "default-scheduler"
    assert s.security_context is not None
    pulls = {c.name: c.image_pull_policy for c in s.containers}
    assert pulls == {"latest": "Always", "untagged": "Always", "tagged": "IfNotPresent"}
    for c in s.containers:
        assert c.termination_message_path == "/dev/termination-log"
        assert c.termination_message_policy == "File"
    assert p.status.phase == "Pending"
    assert p.status.qos_class == "Burstable"
    tolerations = {(t.key, t.effect) for t in s.tolerations or []}
    assert ("node.kubernetes.io/not-ready", "NoExecute") in tolerations

    guaranteed = client.V1Pod(
        metadata=client.V1ObjectMeta(name="g"),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="c",
                    image="busybox:1.36",
                    resources=client.V1ResourceRequirements(limits={"cpu": "1", "memory": "64Mi"}),
                )
            ]
        ),
    )
    g = core_v1.create_namespaced_pod(ns, guaranteed)
    assert g.status.qos_class == "Guaranteed"
    # Requests default to limits.
    assert g.spec.containers[0].resources.requests == {"cpu": "1", "memory": "64Mi"}
    be = core_v1.create_namespaced_pod(
        ns,
        client.V1Pod(
            metadata=client.V1ObjectMeta(name="be"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]),
        ),
    )
    assert be.status.qos_class == "BestEffort"
    assert core_v1.read_namespaced_pod("p", ns).status.phase == "Pending"


# ---- generateName ----------------------------------------------------------------------


def test_generate_name(core_v1: Any, ns: str) -> None:
    names = set()
    for _ in range(5):
        cm = core_v1.create_namespaced_config_map(
            ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-"))
        )
        assert cm.metadata.name.startswith("gen-")
        assert len(cm.metadata.name) == len("gen-") + 5
        assert cm.metadata.generate_name == "gen-"
        names.add(cm.metadata.name)
    assert len(names) == 5
    listed = {i.metadata.name for i in core_v1.list_namespaced_config_map(ns).items}
    assert names <= listed


# ---- error bodies ----------------------------------------------------------------------


def test_already_exists_body_byte_for_byte(core_v1: Any, ns: str) -> None:
    svc = _svc("mock-2")
    core_v1.create_namespaced_service(ns, svc, _preload_content=False)
    with pytest.raises(ApiException) as info:
        core_v1.create_namespaced_service(ns, _svc("mock-2"), _preload_content=False)
    assert info.value.status == 409
    expected = (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"services \\"mock-2\\" already exists","reason":"AlreadyExists",'
        b'"details":{"name":"mock-2","kind":"services"},"code":409}\n'
    )
    body = info.value.body
    assert (body if isinstance(body, bytes) else body.encode()) == expected
    assert info.value.headers["Content-Type"] == "application/json"


def test_not_found_body(core_v1: Any, ns: str) -> None:
    with pytest.raises(ApiException) as info:
        core_v1.read_namespaced_config_map("nope", ns, _preload_content=False)
    assert info.value.status == 404
    expected = (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"configmaps \\"nope\\" not found","reason":"NotFound",'
        b'"details":{"name":"nope","kind":"configmaps"},"code":404}\n'
    )
    body = info.value.body
    assert (body if isinstance(body, bytes) else body.encode()) == expected
    body_dep = expect_error(
        client.AppsV1Api(core_v1.api_client).read_namespaced_deployment,
        "nope",
        ns,
        status=404,
        reason="NotFound",
    )
    assert body_dep["message"] == 'deployments.apps "nope" not found'
    assert body_dep["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}


def test_conflict_on_stale_resource_version(core_v1: Any, ns: str) -> None:
    cm = core_v1.create_namespaced_config_map(ns, _cm("stale", {"v": "1"}))
    fresh = core_v1.read_namespaced_config_map("stale", ns)
    fresh.data["v"] = "2"
    core_v1.replace_namespaced_config_map("stale", ns, fresh)
    cm.data["v"] = "3"  # still carries the first resourceVersion
    body = expect_error(
        core_v1.replace_namespaced_config_map, "stale", ns, cm, status=409, reason="Conflict"
    )
    assert body["message"] == (
        'Operation cannot be fulfilled on configmaps "stale": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": "stale", "kind": "configmaps"}
    assert core_v1.read_namespaced_config_map("stale", ns).data == {"v": "2"}


def test_invalid_name_causes(core_v1: Any, ns: str) -> None:
    body = expect_error(
        core_v1.create_namespaced_config_map, ns, _cm("Bad_Name"), status=422, reason="Invalid"
    )
    assert body["details"]["name"] == "Bad_Name"
    assert body["details"]["kind"] == "ConfigMap"
    causes = body["details"]["causes"]
    assert [c["field"] for c in causes] == ["metadata.name"]
    assert causes[0]["reason"] == "FieldValueInvalid"
    assert causes[0]["message"].startswith(
        'Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
    )
    assert body["message"].startswith(
        'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: '
    )
    assert core_v1.list_namespaced_config_map(ns).items == []


# ---- version, identity, tokens -------------------------------------------------------


def test_version(api_client: Any) -> None:
    v = client.VersionApi(api_client).get_code()
    assert v.major == "1"
    assert v.minor == "32"
    assert v.git_version.startswith("v1.32.")
    assert v.platform


def test_self_subject_review(api_client: Any) -> None:
    review = client.AuthenticationV1Api(api_client).create_self_subject_review(
        client.V1SelfSubjectReview()
    )
    user = review.status.user_info
    assert user.username == "system:admin"
    assert "system:masters" in user.groups
    assert "system:authenticated" in user.groups


def _client_with_token(api_client: Any, token: str) -> Any:
    base = api_client.configuration
    cfg = client.Configuration()
    cfg.host = base.host
    cfg.ssl_ca_cert = base.ssl_ca_cert
    cfg.verify_ssl = True
    cfg.api_key = {"authorization": "Bearer " + token}
    return client.ApiClient(cfg)


def test_token_request_authenticates_as_service_account(
    core_v1: Any, api_client: Any, ns: str
) -> None:
    sa = core_v1.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="robot"))
    )
    tr = core_v1.create_namespaced_service_account_token(
        "robot",
        ns,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    )
    token = tr.status.token
    assert token.count(".") == 2  # a JWT
    assert tr.status.expiration_timestamp is not None
    with _client_with_token(api_client, token) as sa_client:
        who = client.AuthenticationV1Api(sa_client).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert who.status.user_info.username == f"system:serviceaccount:{ns}:robot"
        assert f"system:serviceaccounts:{ns}" in who.status.user_info.groups
        assert who.status.user_info.uid == sa.metadata.uid
        body = expect_error(
            client.CoreV1Api(sa_client).list_namespaced_config_map,
            ns,
            status=403,
            reason="Forbidden",
        )
        assert body["message"] == (
            f'configmaps is forbidden: User "system:serviceaccount:{ns}:robot" cannot list '
            f'resource "configmaps" in API group "" in the namespace "{ns}"'
        )


def test_invalid_bearer_token_is_unauthorized(api_client: Any) -> None:
    with _client_with_token(api_client, "not-a-valid-token") as bad:
        with pytest.raises(ApiException) as info:
            client.CoreV1Api(bad).list_namespace(_preload_content=False)
    assert info.value.status == 401
    body = info.value.body
    assert json.loads(body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_as_dict_round_trip(api_client: Any, core_v1: Any, ns: str) -> None:
    created = core_v1.create_namespaced_config_map(ns, _cm(uniq("rt"), {"k": "v"}))
    d = as_dict(api_client, created)
    assert d["apiVersion"] == "v1" and d["kind"] == "ConfigMap"
