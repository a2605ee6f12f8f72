"""OpenAPI v3 documents: the shapes kubectl's validator and ``kubectl explain`` rely on."""

from __future__ import annotations

import functools
from typing import Any

import orjson
import pytest

from k3py.server.registry import openapi
from k3py.server.registry.catalog import BUILTINS

CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "description": "CronTab spec",
            "properties": {
                "cronSpec": {"type": "string", "description": "when"},
                "image": {"type": "string"},
                "replicas": {"type": "integer", "default": 1},
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
            },
        },
        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
    },
}


def crontab(**kw: Any) -> openapi.ResourceSpec:
    args: dict[str, Any] = dict(
        group="stable.example.com",
        version="v1",
        kind="CronTab",
        plural="crontabs",
        namespaced=True,
        subresources=["status", "scale"],
        schema=CRONTAB_SCHEMA,
    )
    args.update(kw)
    return openapi.ResourceSpec(**args)


@functools.cache
def builtin_docs() -> dict[str, dict[str, Any]]:
    by_gv: dict[str, list[openapi.ResourceSpec]] = {}
    for r in BUILTINS:
        by_gv.setdefault(openapi.path_key(r.group_version), []).append(openapi.resource_spec(r))
    return {gv: openapi.group_version_document(gv, specs) for gv, specs in by_gv.items()}


def core() -> dict[str, Any]:
    return builtin_docs()["api/v1"]


# ---- helpers that mimic kubectl -------------------------------------------------------------------


def supports_query_param(doc: dict[str, Any], gvk: dict[str, str], param: str) -> bool:
    """client-go's supportsQueryParamV3, checking *every* matching PATCH (Go map order is random)."""
    found = []
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        found.append(any(p["name"] == param for p in op.get("parameters", [])))
    return bool(found) and all(found)


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        return doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def explain(doc: dict[str, Any], prefix: str, resource: str, fields: list[str]) -> dict[str, Any]:
    """The explain v2 template's walk: GVK from an operation, schema by GVK, then fields."""
    searched = [
        f"{prefix}/{resource}",
        f"{prefix}/{resource}/{{name}}",
        f"{prefix}/namespaces/{{namespace}}/{resource}",
        f"{prefix}/namespaces/{{namespace}}/{resource}/{{name}}",
    ]
    gvk = None
    for path in searched:
        item = doc["paths"].get(path) or {}
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item and "x-kubernetes-group-version-kind" in item[method]:
                gvk = item[method]["x-kubernetes-group-version-kind"]
                break
    assert gvk is not None, "GVR not found in OpenAPI schema"
    matches = [
        s
        for s in doc["components"]["schemas"].values()
        if gvk in (s.get("x-kubernetes-group-version-kind") or [])
    ]
    assert len(matches) == 1
    schema = matches[0]
    for name in fields:
        schema = step(doc, schema, name)
    return schema


def step(doc: dict[str, Any], schema: dict[str, Any], name: str) -> dict[str, Any]:
    resolved = resolve(doc, schema)
    if name in (resolved.get("properties") or {}):
        return resolved["properties"][name]
    if "items" in resolved:
        return step(doc, resolved["items"], name)
    for sub in resolved.get("allOf") or []:
        return step(doc, sub, name)
    raise AssertionError(f"field {name!r} does not exist")


def all_nodes(node: Any) -> list[Any]:
    out, stack = [], [node]
    while stack:
        cur = stack.pop()
        out.append(cur)
        if isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return out


# ---- index ---------------------------------------------------------------------------------------


def test_path_keys() -> None:
    assert openapi.path_key("v1") == "api/v1"
    assert openapi.path_key("apps/v1") == "apis/apps/v1"
    assert openapi.path_key("apis/apps/v1") == "apis/apps/v1"
    assert openapi.split_gv("api/v1") == ("", "v1")
    assert openapi.split_gv("apiextensions.k8s.io/v1") == ("apiextensions.k8s.io", "v1")


def test_index_lists_group_versions_with_hashes() -> None:
    index = openapi.group_versions_index(
        ["v1", "apps/v1", "apis/batch/v1"], hash_of=lambda gv: gv.upper()
    )
    assert index == {
        "paths": {
            "api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=API/V1"},
            "apis/apps/v1": {"serverRelativeURL": "/openapi/v3/apis/apps/v1?hash=APIS/APPS/V1"},
            "apis/batch/v1": {"serverRelativeURL": "/openapi/v3/apis/batch/v1?hash=APIS/BATCH/V1"},
        }
    }


def test_document_hash_is_upper_hex_sha512() -> None:
    h = openapi.document_hash(b"{}")
    assert len(h) == 128 and h == h.upper()


# ---- built-in documents -------------------------------------------------------------------------


def test_document_header() -> None:
    doc = core()
    assert doc["openapi"] == "3.0.0"
    assert doc["info"]["title"] == "Kubernetes"
    assert "io.k8s.api.core.v1.Pod" in doc["components"]["schemas"]


@pytest.mark.parametrize(
    "gv", ["api/v1", "apis/apps/v1", "apis/batch/v1", "apis/apiextensions.k8s.io/v1"]
)
def test_every_patch_with_a_gvk_offers_field_validation(gv: str) -> None:
    doc = builtin_docs()[gv]
    patches = [item["patch"] for item in doc["paths"].values() if "patch" in item]
    assert patches
    for op in patches:
        if "x-kubernetes-group-version-kind" in op and op["x-kubernetes-action"] == "patch":
            names = [p["name"] for p in op["parameters"]]
            assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= set(names), op[
                "operationId"
            ]


def test_query_param_verifier_accepts_common_kinds() -> None:
    docs = builtin_docs()
    for gv, kind in [
        ("api/v1", "Pod"),
        ("api/v1", "ConfigMap"),
        ("api/v1", "Namespace"),
        ("apis/apps/v1", "Deployment"),
        ("apis/batch/v1", "Job"),
    ]:
        group = "" if gv.startswith("api/") else gv.split("/")[1]
        gvk = {"group": group, "kind": kind, "version": "v1"}
        assert supports_query_param(docs[gv], gvk, "fieldValidation"), kind


def test_operations_carry_gvk_and_action() -> None:
    item = core()["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]
    assert item["get"]["x-kubernetes-action"] == "get"
    assert item["put"]["x-kubernetes-action"] == "put"
    assert item["delete"]["x-kubernetes-action"] == "delete"
    assert item["patch"]["x-kubernetes-group-version-kind"] == {
        "group": "",
        "kind": "Pod",
        "version": "v1",
    }
    assert item["patch"]["operationId"] == "patchCoreV1NamespacedPod"
    names = [p["name"] for p in item["parameters"]]
    assert names == ["name", "namespace", "pretty"]
    coll = core()["paths"]["/api/v1/namespaces/{namespace}/pods"]
    assert coll["get"]["x-kubernetes-action"] == "list"
    assert coll["post"]["x-kubernetes-action"] == "post"
    assert coll["delete"]["operationId"] == "deleteCoreV1CollectionNamespacedPod"
    assert "/api/v1/pods" in core()["paths"]


def test_subresource_kinds() -> None:
    apps = builtin_docs()["apis/apps/v1"]
    scale = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling",
        "kind": "Scale",
        "version": "v1",
    }
    assert "io.k8s.api.autoscaling.v1.Scale" in apps["components"]["schemas"]
    status = apps["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"][
        "patch"
    ]
    assert status["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert any(p["name"] == "fieldValidation" for p in status["parameters"])
    exec_op = core()["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/exec"]["post"]
    assert exec_op["x-kubernetes-action"] == "connect"
    assert exec_op["x-kubernetes-group-version-kind"]["kind"] == "PodExecOptions"


def test_create_only_resources_have_only_post() -> None:
    doc = builtin_docs()["apis/authorization.k8s.io/v1"]
    item = doc["paths"]["/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
    assert set(item) == {"post", "parameters"}


def test_cluster_scoped_paths() -> None:
    item = core()["paths"]["/api/v1/nodes/{name}"]
    assert [p["name"] for p in item["parameters"]] == ["name", "pretty"]
    assert item["patch"]["operationId"] == "patchCoreV1Node"


def test_schemas_are_openapi3() -> None:
    doc = core()
    schemas = doc["components"]["schemas"]
    for node in all_nodes(schemas):
        if isinstance(node, dict):
            assert not isinstance(node.get("type"), list)
            ref = node.get("$ref")
            if ref is not None:
                assert ref.startswith("#/components/schemas/")
                assert ref.rsplit("/", 1)[-1] in schemas, ref
                assert set(node) == {"$ref"}, "siblings of $ref must be wrapped in allOf"
    resources = schemas["io.k8s.api.core.v1.Container"]["properties"]["resources"]
    assert resources["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.api.core.v1.ResourceRequirements"}
    ]
    assert resources["description"].startswith("Compute Resources")
    assert schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]["type"] == "array"
    assert "enum" not in schemas["io.k8s.api.core.v1.Pod"]["properties"]["apiVersion"]


def test_int_or_string_and_quantity() -> None:
    schemas = builtin_docs()["apis/apps/v1"]["components"]["schemas"]
    ios = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert ios["format"] == "int-or-string"
    assert ios["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert "type" not in ios
    qty = schemas["io.k8s.apimachinery.pkg.api.resource.Quantity"]
    assert qty["oneOf"] == [{"type": "string"}, {"type": "number"}]


def test_component_gvks_are_plain_objects() -> None:
    pod = core()["components"]["schemas"]["io.k8s.api.core.v1.Pod"]
    assert pod["x-kubernetes-group-version-kind"] == [{"group": "", "kind": "Pod", "version": "v1"}]


def test_explain_pods_spec_containers() -> None:
    containers = explain(core(), "/api/v1", "pods", ["spec", "containers"])
    assert containers["type"] == "array"
    item = resolve(core(), containers["items"])
    assert "image" in item["properties"]
    assert "name" in item["required"]
    port = explain(core(), "/api/v1", "pods", ["spec", "containers", "ports", "containerPort"])
    assert port["type"] == "integer"


def test_explain_deployment_strategy() -> None:
    doc = builtin_docs()["apis/apps/v1"]
    surge = explain(
        doc, "/apis/apps/v1", "deployments", ["spec", "strategy", "rollingUpdate", "maxSurge"]
    )
    assert surge["allOf"][0]["$ref"].endswith("IntOrString")


def test_documents_are_deterministic_json() -> None:
    specs = [openapi.resource_spec(r) for r in BUILTINS if r.group == "apps"]
    a = orjson.dumps(openapi.group_version_document("apps/v1", specs))
    b = orjson.dumps(openapi.group_version_document("apis/apps/v1", list(reversed(specs))))
    assert a == b


def test_other_group_versions_are_ignored() -> None:
    doc = openapi.group_version_document("apps/v1", [crontab()])
    assert doc["paths"] == {}


# ---- custom resources ----------------------------------------------------------------------------


def test_custom_resource_document() -> None:
    doc = openapi.group_version_document("stable.example.com/v1", [crontab()])
    schemas = doc["components"]["schemas"]
    ct = schemas["com.example.stable.v1.CronTab"]
    assert ct["x-kubernetes-group-version-kind"] == [
        {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    ]
    assert ct["properties"]["metadata"]["allOf"][0]["$ref"].endswith("meta.v1.ObjectMeta")
    assert ct["properties"]["apiVersion"]["type"] == "string"
    assert ct["properties"]["spec"]["properties"]["port"]["x-kubernetes-int-or-string"] is True
    assert ct["properties"]["spec"]["properties"]["replicas"]["default"] == 1
    lst = schemas["com.example.stable.v1.CronTabList"]
    assert lst["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/com.example.stable.v1.CronTab"
    }
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta" in schemas
    assert CRONTAB_SCHEMA["properties"].keys() == {"spec", "status"}, "input must not be modified"


def test_custom_resource_paths() -> None:
    doc = openapi.group_version_document("stable.example.com/v1", [crontab()])
    base = "/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}"
    gvk = {"group": "stable.example.com", "kind": "CronTab", "version": "v1"}
    assert supports_query_param(doc, gvk, "fieldValidation")
    patch = doc["paths"][base]["patch"]
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/apply-patch+yaml" in patch["requestBody"]["content"]
    assert doc["paths"][base + "/status"]["patch"]["x-kubernetes-group-version-kind"] == gvk
    assert (
        doc["paths"][base + "/scale"]["get"]["x-kubernetes-group-version-kind"]["kind"] == "Scale"
    )
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    assert "/apis/stable.example.com/v1/crontabs" in doc["paths"]


def test_explain_custom_resource() -> None:
    doc = openapi.group_version_document("stable.example.com/v1", [crontab()])
    field = explain(doc, "/apis/stable.example.com/v1", "crontabs", ["spec", "cronSpec"])
    assert field == {"type": "string", "description": "when"}


def test_cluster_scoped_custom_resource_without_schema() -> None:
    spec = crontab(
        namespaced=False,
        subresources=[],
        schema={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    doc = openapi.group_version_document("stable.example.com/v1", [spec])
    assert "/apis/stable.example.com/v1/crontabs/{name}" in doc["paths"]
    ct = doc["components"]["schemas"]["com.example.stable.v1.CronTab"]
    assert ct["x-kubernetes-preserve-unknown-fields"] is True


# ---- cache -----------------------------------------------------------------------------------------


def test_cache_reuses_documents_and_hashes() -> None:
    cache = openapi.DocumentCache()
    first = cache.get("stable.example.com/v1", [crontab()])
    assert cache.get("apis/stable.example.com/v1", [crontab()]) is first
    assert first.hash == openapi.document_hash(first.body)
    changed = dict(CRONTAB_SCHEMA, description="changed")
    other = cache.get("stable.example.com/v1", [crontab(schema=changed)])
    assert other.hash != first.hash
    index = cache.index({"stable.example.com/v1": [crontab()]})
    url = index["paths"]["apis/stable.example.com/v1"]["serverRelativeURL"]
    assert url == f"/openapi/v3/apis/stable.example.com/v1?hash={first.hash}"
