"""kubectl's typed clients send protobuf bodies; k3py decodes them into the JSON objects.

Each command below fails with 415 if the server refuses
``application/vnd.kubernetes.protobuf``; the objects are then read back as JSON.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import ServerHandle

pytestmark = pytest.mark.timeout(120)


def _get(server: ServerHandle, *args: str) -> Any:
    return json.loads(server.kubectl("get", *args, "-o", "json").stdout)


def test_create_namespace(server: ServerHandle) -> None:
    server.kubectl("create", "namespace", "pb-ns")
    try:
        obj = _get(server, "namespace", "pb-ns")
        assert obj["metadata"]["name"] == "pb-ns"
        assert obj["status"]["phase"] == "Active"
    finally:
        server.kubectl("delete", "namespace", "pb-ns", "--wait=false", check=False)


def test_create_configmap_and_secret(server: ServerHandle, namespace: str) -> None:
    server.kubectl("create", "configmap", "cm", "-n", namespace, "--from-literal=a=b")
    cm = _get(server, "configmap", "cm", "-n", namespace)
    assert cm["data"] == {"a": "b"}
    server.kubectl("create", "secret", "generic", "s", "-n", namespace, "--from-literal=a=b")
    secret = _get(server, "secret", "s", "-n", namespace)
    assert secret["data"] == {"a": base64.b64encode(b"b").decode()}
    assert secret["type"] == "Opaque"


def test_create_configmap_binary_data(server: ServerHandle, namespace: str, tmp_path: Any) -> None:
    blob = bytes(range(256))
    path = tmp_path / "blob"
    path.write_bytes(blob)
    server.kubectl("create", "configmap", "bin", "-n", namespace, f"--from-file=blob={path}")
    cm = _get(server, "configmap", "bin", "-n", namespace)
    assert base64.b64decode(cm["binaryData"]["blob"]) == blob


def test_create_deployment(server: ServerHandle, namespace: str) -> None:
    server.kubectl(
        "create", "deployment", "d", "-n", namespace, "--image=busybox", "--replicas=0", "--port=80"
    )
    dep = _get(server, "deployment", "d", "-n", namespace)
    assert dep["spec"]["replicas"] == 0
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "d"}}
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "busybox"
    assert container["ports"][0]["containerPort"] == 80
    # Server-side defaults were applied to the decoded object.
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == "25%"


def test_create_job_service_and_serviceaccount(server: ServerHandle, namespace: str) -> None:
    server.kubectl("create", "job", "j", "-n", namespace, "--image=busybox", "--", "echo", "hi")
    job = _get(server, "job", "j", "-n", namespace)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]
    server.kubectl("create", "service", "clusterip", "svc", "-n", namespace, "--tcp=80:8080")
    svc = _get(server, "service", "svc", "-n", namespace)
    assert svc["spec"]["ports"][0]["port"] == 80
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    server.kubectl("create", "serviceaccount", "sa", "-n", namespace)
    assert _get(server, "serviceaccount", "sa", "-n", namespace)["metadata"]["name"] == "sa"


def test_create_role(server: ServerHandle, namespace: str) -> None:
    server.kubectl("create", "role", "r", "-n", namespace, "--verb=get", "--resource=pods")
    role = _get(server, "role", "r", "-n", namespace)
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]


def test_auth_can_i(server: ServerHandle) -> None:
    res = server.kubectl("auth", "can-i", "get", "pods")
    assert res.stdout.strip() == "yes"


def test_auth_whoami(server: ServerHandle) -> None:
    res = server.kubectl("auth", "whoami", "-o", "json")
    review = json.loads(res.stdout)
    assert review["kind"] == "SelfSubjectReview"
    assert review["status"]["userInfo"]["username"]


def test_create_token(server: ServerHandle, namespace: str) -> None:
    server.kubectl("create", "serviceaccount", "tok", "-n", namespace)
    res = server.kubectl(
        "create", "token", "tok", "-n", namespace, "--duration=1h", "--audience=a", "--audience=b"
    )
    payload = res.stdout.strip().split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["aud"] == ["a", "b"]  # TokenRequest.spec.audiences, decoded
    assert claims["exp"] - claims["iat"] == 3600  # spec.expirationSeconds
    assert claims["sub"] == f"system:serviceaccount:{namespace}:tok"


def _node_with_pod(server: ServerHandle, *, node: str, namespace: str) -> None:
    server.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}}),
    )
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]},
    }
    server.kubectl("apply", "-f", "-", input=json.dumps(pod))


@pytest.mark.parametrize("how", ["eviction", "delete"])
def test_drain(server: ServerHandle, namespace: str, how: str) -> None:
    """drain POSTs a policy/v1 Eviction, or with --disable-eviction DELETEs with DeleteOptions."""
    node = f"pb-{how}-{namespace}"
    _node_with_pod(server, node=node, namespace=namespace)
    extra = ["--disable-eviction"] if how == "delete" else []
    try:
        res = server.kubectl("drain", node, "--force", "--grace-period=0", "--timeout=30s", *extra)
        assert f"node/{node} drained" in res.stdout
        assert _get(server, "pods", "-n", namespace)["items"] == []
        assert _get(server, "node", node)["spec"]["unschedulable"] is True
    finally:
        server.kubectl("delete", "node", node, check=False)
