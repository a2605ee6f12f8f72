"""The client's pure parts: kubeconfig reading, the error tree, resource paths, the cache."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from k3py.client import (
    DEPLOYMENTS,
    NODES,
    PODS,
    AlreadyExists,
    ApiError,
    Cache,
    Conflict,
    Gone,
    Invalid,
    NotFound,
    Resource,
    ServerError,
    by_label,
    by_owner_uid,
    key_of,
    split_key,
)
from k3py.client.errors import from_status, status_for
from k3py.client.kubeconfig import KubeconfigError, load, parse
from k3py.client.resources import for_kind


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def kubeconfig(*, cluster: dict, user: dict, namespace: str | None = None) -> dict:
    ctx = {"cluster": "c", "user": "u"}
    if namespace:
        ctx["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": cluster},
            {"name": "x", "cluster": {"server": "https://x"}},
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "main", "context": ctx},
            {"name": "other", "context": {"cluster": "x"}},
        ],
        "current-context": "main",
    }


def test_kubeconfig_with_embedded_data(tmp_path: Path) -> None:
    doc = kubeconfig(
        cluster={"server": "https://127.0.0.1:6443/", "certificate-authority-data": b64(b"CA")},
        user={"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY")},
        namespace="apps",
    )
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    creds = load(path)
    assert creds.server == "https://127.0.0.1:6443"
    assert (creds.ca_pem, creds.cert_pem, creds.key_pem) == (b"CA", b"CERT", b"KEY")
    assert creds.token is None and creds.namespace == "apps" and not creds.insecure
    other = load(path, context="other")
    assert other.server == "https://x" and other.ca_pem is None and other.namespace == "default"


def test_kubeconfig_with_files_relative_to_it_and_tokens(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_bytes(b"CA-FILE")
    (tmp_path / "token").write_text("secret-token\n")
    doc = kubeconfig(
        cluster={"server": "https://h:6443", "certificate-authority": "ca.crt"},
        user={"tokenFile": "token"},
    )
    creds = parse(doc, base_dir=tmp_path)
    assert creds.ca_pem == b"CA-FILE" and creds.token == "secret-token"
    doc["users"][0]["user"] = {"token": "inline"}
    doc["clusters"][0]["cluster"]["insecure-skip-tls-verify"] = True
    creds = parse(doc, base_dir=tmp_path)
    assert creds.token == "inline" and creds.insecure


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("current-context"), "no current-context"),
        (lambda d: d.update({"current-context": "nope"}), "no context named 'nope'"),
        (lambda d: d["clusters"][0]["cluster"].pop("server"), "has no server"),
        (lambda d: d["users"][0]["user"].update({"exec": {"command": "x"}}), "not supported"),
        (
            lambda d: d["clusters"][0]["cluster"].update({"certificate-authority": "missing.crt"}),
            "cannot read",
        ),
    ],
)
def test_kubeconfig_errors(tmp_path: Path, mutate: object, message: str) -> None:
    doc = kubeconfig(cluster={"server": "https://h"}, user={})
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(KubeconfigError, match=message):
        parse(doc, base_dir=tmp_path)


def test_errors_are_built_from_status_bodies() -> None:
    def status(code: int, reason: str) -> dict:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": "m",
            "reason": reason,
            "code": code,
        }

    assert type(from_status(status(404, "NotFound"))) is NotFound
    assert type(from_status(status(409, "AlreadyExists"))) is AlreadyExists
    assert type(from_status(status(409, "Conflict"))) is Conflict
    assert type(from_status(status(410, "Expired"))) is Gone
    assert type(from_status(status(503, "ServiceUnavailable"))) is ServerError
    assert type(from_status(status(418, ""))) is ApiError
    inv = from_status(
        {
            **status(422, "Invalid"),
            "details": {"causes": [{"field": "spec.x", "reason": "FieldValueInvalid"}]},
        }
    )
    assert isinstance(inv, Invalid) and inv.causes == [
        {"field": "spec.x", "reason": "FieldValueInvalid"}
    ]
    bare = from_status(status_for(code=502, message="bad gateway"))
    assert isinstance(bare, ServerError) and bare.code == 502 and str(bare) == "502 : bad gateway"
    assert from_status({"message": "no code"}, code=404).code == 404


def test_resource_paths() -> None:
    assert PODS.path() == "/api/v1/pods"
    assert PODS.path(namespace="ns") == "/api/v1/namespaces/ns/pods"
    assert (
        PODS.path(namespace="ns", name="p", subresource="binding")
        == "/api/v1/namespaces/ns/pods/p/binding"
    )
    assert NODES.path(namespace="ignored", name="n") == "/api/v1/nodes/n"
    assert DEPLOYMENTS.path(namespace="a", name="b") == "/apis/apps/v1/namespaces/a/deployments/b"
    assert Resource("example.com", "v1", "widgets", "Widget").api_version == "example.com/v1"
    assert PODS.path(namespace="ns", name="a/b") == "/api/v1/namespaces/ns/pods/a%2Fb"
    assert for_kind("apps/v1", "Deployment") is DEPLOYMENTS and for_kind("v1", "Nope") is None
    assert str(DEPLOYMENTS) == "deployments.apps" and str(PODS) == "pods"


def test_keys() -> None:
    assert key_of({"metadata": {"name": "p", "namespace": "ns"}}) == "ns/p"
    assert key_of({"metadata": {"name": "n"}}) == "n"
    assert split_key("ns/p") == ("ns", "p") and split_key("n") == ("", "n")


def test_cache_indexes_follow_puts_and_removes() -> None:
    cache = Cache({"app": by_label("app"), "owner": by_owner_uid})

    def obj(name: str, app: str, *owners: str) -> dict:
        refs = [{"uid": u} for u in owners]
        return {
            "metadata": {
                "name": name,
                "namespace": "ns",
                "labels": {"app": app},
                "ownerReferences": refs,
                "resourceVersion": "7",
            }
        }

    cache.put("ns/a", obj("a", "web", "u1"))
    cache.put("ns/b", obj("b", "web", "u1", "u2"))
    assert cache.index_keys("app", "web") == ["ns/a", "ns/b"]
    assert cache.index_keys("owner", "u2") == ["ns/b"]
    cache.put("ns/b", obj("b", "db"))
    assert cache.index_keys("app", "web") == ["ns/a"] and cache.index_keys("owner", "u2") == []
    assert cache.index_values("app") == ["db", "web"]
    assert cache.resource_version("ns/b") == "7"
    cache.remove("ns/a")
    assert cache.index_values("app") == ["db"] and len(cache) == 1 and "ns/a" not in cache
    assert [o["metadata"]["name"] for o in cache.list("ns")] == ["b"]
    cache.add_indexer("name", lambda o: [o["metadata"]["name"]])
    assert cache.index_keys("name", "b") == ["ns/b"]
    with pytest.raises(KeyError):
        cache.index_keys("nope", "x")
    original = obj("c", "web")
    cache.put("ns/c", original)
    original["metadata"]["labels"]["app"] = "changed"  # the cache keeps what was put
    got = cache.get("ns/c")
    assert got is not None and got["metadata"]["labels"]["app"] == "web"
