"""The official Python client's DynamicClient against k3py: CustomResourceDefinitions
and their custom resources (validation, pruning, defaults, status and scale
subresources, cleanup with the CRD)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from tests.api.client_common import fresh_namespace, uniq, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def ns(core_v1: Any) -> Iterator[str]:
    yield from fresh_namespace(core_v1)


MERGE = "application/merge-patch+json"
GROUP = f"pc{os.getpid() % 10000}.example.com"


def _crd(plural: str, kind: str, *, scope: str = "Namespaced") -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "shortNames": [plural[:3] + "x"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1, "default": 3},
                                        "color": {"type": "string", "pattern": "^[a-z]+$"},
                                        "replicas": {"type": "integer", "default": 1},
                                        "tags": {"type": "array", "items": {"type": "string"}},
                                        "free": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        },
                                    },
                                },
                                "status": {
                                    "type": "object",
                                    "properties": {
                                        "replicas": {"type": "integer"},
                                        "phase": {"type": "string"},
                                        "selector": {"type": "string"},
                                    },
                                },
                            },
                        }
                    },
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                }
            ],
        },
    }


def _dyn_error(
    fn: Callable[..., Any], *args: Any, status: int, reason: str, **kwargs: Any
) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        fn(*args, **kwargs)
    assert info.value.status == status, (info.value.status, info.value.body)
    body: dict[str, Any] = json.loads(info.value.body)
    assert body["kind"] == "Status" and body["code"] == status, body
    assert body["reason"] == reason, body
    return body


@pytest.fixture(scope="module")
def dyn(api_client: Any, tmp_path_factory: pytest.TempPathFactory) -> DynamicClient:
    cache: Path = tmp_path_factory.mktemp("dyn") / "discovery.json"
    return DynamicClient(api_client, cache_file=str(cache))


@pytest.fixture(scope="module")
def widgets(dyn: DynamicClient) -> Iterator[Any]:
    """A CRD for the module; yields the custom resource's dynamic Resource."""
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    body = _crd("widgets", "Widget")
    created = crds.create(body=body)
    # Accepted and established at once.
    conds = {c["type"]: c["status"] for c in created.status.conditions}
    assert conds.get("Established") == "True"
    assert conds.get("NamesAccepted") == "True"
    assert created.status.acceptedNames.kind == "Widget"
    assert created.status.storedVersions == ["v1"]
    dyn.resources.invalidate_cache()
    yield dyn.resources.get(api_version=f"{GROUP}/v1", kind="Widget")
    try:
        crds.delete(name=body["metadata"]["name"])
    except ApiException:
        pass


def _widget(name: str, spec: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": spec or {},
        **extra,
    }


def test_crd_is_served_in_discovery(dyn: DynamicClient, widgets: Any, api_client: Any) -> None:
    assert widgets.namespaced is True
    assert widgets.name == "widgets"
    resources = client.CustomObjectsApi(api_client).get_api_resources(GROUP, "v1")
    by_name = {r.name: r for r in resources.resources}
    assert by_name["widgets"].kind == "Widget"
    assert set(by_name["widgets"].verbs) >= {
        "create",
        "delete",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    }
    assert by_name["widgets"].short_names == ["widx"]
    assert "widgets/status" in by_name and "widgets/scale" in by_name
    read = dyn.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    ).get(name=f"widgets.{GROUP}")
    assert {c["type"]: c["status"] for c in read.status.conditions}["Established"] == "True"


def test_custom_object_crud(widgets: Any, ns: str) -> None:
    created = widgets.create(
        body=_widget("w1", {"size": 2, "color": "blue", "tags": ["a"]}), namespace=ns
    )
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.spec.size == 2 and created.spec.replicas == 1  # replicas defaulted
    got = widgets.get(name="w1", namespace=ns)
    assert got.spec.color == "blue"
    assert got.apiVersion == f"{GROUP}/v1" and got.kind == "Widget"

    widgets.create(body=_widget("w2"), namespace=ns)
    listed = widgets.get(namespace=ns)
    assert listed.kind == "WidgetList"
    assert [i.metadata.name for i in listed.items] == ["w1", "w2"]

    patched = widgets.patch(
        name="w1", namespace=ns, body={"spec": {"color": "green", "tags": None}}, content_type=MERGE
    )
    assert patched.spec.color == "green" and "tags" not in patched.spec
    assert patched.metadata.generation == 2
    # Metadata-only change: generation stays.
    patched = widgets.patch(
        name="w1", namespace=ns, body={"metadata": {"labels": {"l": "v"}}}, content_type=MERGE
    )
    assert patched.metadata.generation == 2
    # Replace with the resourceVersion read: works; again with the old one: 409.
    doc = patched.to_dict()
    doc["spec"]["size"] = 5
    replaced = widgets.replace(body=doc, namespace=ns)
    assert replaced.spec.size == 5
    _dyn_error(widgets.replace, body=doc, namespace=ns, status=409, reason="Conflict")
    # Strategic merge patch is not supported for custom resources.
    _dyn_error(
        widgets.patch,
        name="w1",
        namespace=ns,
        body={"spec": {"size": 1}},
        content_type="application/strategic-merge-patch+json",
        status=415,
        reason="UnsupportedMediaType",
    )
    # JSON patch works.
    jp = widgets.patch(
        name="w1",
        namespace=ns,
        body=[{"op": "replace", "path": "/spec/size", "value": 7}],
        content_type="application/json-patch+json",
    )
    assert jp.spec.size == 7

    widgets.delete(name="w1", namespace=ns)
    _dyn_error(widgets.get, name="w1", namespace=ns, status=404, reason="NotFound")
    body = _dyn_error(widgets.get, name="w1", namespace=ns, status=404, reason="NotFound")
    assert body["message"] == f'widgets.{GROUP} "w1" not found'
    assert body["details"] == {"name": "w1", "group": GROUP, "kind": "widgets"}


def test_schema_validation(widgets: Any, ns: str) -> None:
    body = _dyn_error(
        widgets.create,
        body=_widget("bad", {"size": "big"}),
        namespace=ns,
        status=422,
        reason="Invalid",
    )
    assert body["details"]["kind"] == "Widget" and body["details"]["group"] == GROUP
    causes = body["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.size"]
    assert causes[0]["reason"] == "FieldValueTypeInvalid"
    assert "must be of type integer" in causes[0]["message"]

    body = _dyn_error(
        widgets.create,
        body=_widget("bad", {"color": "Red1"}),
        namespace=ns,
        status=422,
        reason="Invalid",
    )
    causes = body["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.color"]
    assert "should match '^[a-z]+$'" in causes[0]["message"]

    body = _dyn_error(
        widgets.create, body=_widget("bad", {"size": 0}), namespace=ns, status=422, reason="Invalid"
    )
    causes = body["details"]["causes"]
    assert [c["field"] for c in causes] == ["spec.size"]
    assert "should be greater than or equal to 1" in causes[0]["message"]

    body = _dyn_error(
        widgets.create,
        body=_widget("bad", {"size": 0, "color": "X"}),
        namespace=ns,
        status=422,
        reason="Invalid",
    )
    assert sorted(c["field"] for c in body["details"]["causes"]) == ["spec.color", "spec.size"]

    # Invalid names are refused too.
    body = _dyn_error(
        widgets.create, body=_widget("Bad_Name"), namespace=ns, status=422, reason="Invalid"
    )
    assert [c["field"] for c in body["details"]["causes"]] == ["metadata.name"]
    # Updates are validated as well.
    widgets.create(body=_widget("good"), namespace=ns)
    _dyn_error(
        widgets.patch,
        name="good",
        namespace=ns,
        body={"spec": {"size": -1}},
        content_type=MERGE,
        status=422,
        reason="Invalid",
    )
    assert widgets.get(name="good", namespace=ns).spec.size == 3
    assert [i.metadata.name for i in widgets.get(namespace=ns).items] == ["good"]


def test_pruning_defaults_and_strict_validation(widgets: Any, ns: str) -> None:
    w = widgets.create(
        body=_widget("pruned", {"extra": 1, "free": {"anything": {"goes": True}}}, unknownTop="x"),
        namespace=ns,
    )
    spec = w.to_dict()["spec"]
    assert "extra" not in spec
    assert spec["free"] == {
        "anything": {"goes": True}
    }  # preserved by x-kubernetes-preserve-unknown-fields
    assert "unknownTop" not in w.to_dict()
    assert spec["size"] == 3 and spec["replicas"] == 1  # defaults
    stored = widgets.get(name="pruned", namespace=ns).to_dict()
    assert "extra" not in stored["spec"] and "unknownTop" not in stored

    body = _dyn_error(
        widgets.create,
        body=_widget("strict", {"extra": 1}),
        namespace=ns,
        query_params=[("fieldValidation", "Strict")],
        status=400,
        reason="BadRequest",
    )
    assert 'unknown field "spec.extra"' in body["message"]
    _dyn_error(widgets.get, name="strict", namespace=ns, status=404, reason="NotFound")
    # Known fields only: Strict accepts.
    widgets.create(
        body=_widget("strict", {"size": 4}),
        namespace=ns,
        query_params=[("fieldValidation", "Strict")],
    )


def test_status_subresource(widgets: Any, ns: str) -> None:
    w = widgets.create(
        body=_widget("st", {"replicas": 2}, status={"phase": "Ignored"}), namespace=ns
    )
    assert "status" not in w.to_dict()  # status is not set on create
    # The main endpoint ignores status.
    w = widgets.patch(
        name="st",
        namespace=ns,
        body={"status": {"phase": "Nope"}, "spec": {"color": "red"}},
        content_type=MERGE,
    )
    assert "status" not in w.to_dict() and w.spec.color == "red"
    # /status sets status and ignores spec.
    s = widgets.status.patch(
        name="st",
        namespace=ns,
        body={"status": {"phase": "Ready", "replicas": 2}, "spec": {"color": "blue"}},
        content_type=MERGE,
    )
    assert s.status.phase == "Ready" and s.spec.color == "red"
    assert s.metadata.generation == w.metadata.generation
    doc = s.to_dict()
    doc["status"]["phase"] = "Done"
    doc["spec"]["color"] = "black"
    r = widgets.status.replace(body=doc, namespace=ns)
    assert r.status.phase == "Done" and r.spec.color == "red"
    got = widgets.status.get(name="st", namespace=ns)
    assert got.status.phase == "Done"
    # Status is validated against the schema too.
    _dyn_error(
        widgets.status.patch,
        name="st",
        namespace=ns,
        body={"status": {"replicas": "many"}},
        content_type=MERGE,
        status=422,
        reason="Invalid",
    )


def test_scale_subresource(widgets: Any, ns: str) -> None:
    widgets.create(body=_widget("sc", {"replicas": 2}), namespace=ns)
    widgets.status.patch(
        name="sc",
        namespace=ns,
        body={"status": {"replicas": 1, "selector": "app=sc"}},
        content_type=MERGE,
    )
    scale = widgets.scale.get(name="sc", namespace=ns)
    assert scale.kind == "Scale" and scale.apiVersion == "autoscaling/v1"
    assert scale.spec.replicas == 2
    assert scale.status.replicas == 1
    assert scale.status.selector == "app=sc"
    scaled = widgets.scale.patch(
        name="sc", namespace=ns, body={"spec": {"replicas": 5}}, content_type=MERGE
    )
    assert scaled.spec.replicas == 5
    assert widgets.get(name="sc", namespace=ns).spec.replicas == 5
    doc = scaled.to_dict()
    doc["spec"]["replicas"] = 4
    replaced = widgets.scale.replace(body=doc, namespace=ns)
    assert replaced.spec.replicas == 4
    assert widgets.get(name="sc", namespace=ns).spec.replicas == 4


def test_custom_resources_deleted_with_their_crd(dyn: DynamicClient, ns: str) -> None:
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    plural = "gadgets"
    crds.create(body=_crd(plural, "Gadget", scope="Namespaced"))
    dyn.resources.invalidate_cache()
    gadgets = dyn.resources.get(api_version=f"{GROUP}/v1", kind="Gadget")
    for i in range(3):
        gadgets.create(
            body={"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": f"g{i}"}},
            namespace=ns,
        )
    held = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Gadget",
        "metadata": {"name": "held", "finalizers": ["x.io/f"]},
    }
    gadgets.create(body=held, namespace=ns)
    crd = crds.get(name=f"{plural}.{GROUP}")
    assert "customresourcecleanup.apiextensions.k8s.io" in crd.metadata.finalizers

    crds.delete(name=f"{plural}.{GROUP}")
    # The CRD waits, Terminating, while its instances go.
    wait_until(
        lambda: [i.metadata.name for i in gadgets.get(namespace=ns).items] == ["held"],
        what="instances deleted",
    )
    terminating = crds.get(name=f"{plural}.{GROUP}")
    assert terminating.metadata.deletionTimestamp
    assert {c["type"]: c["status"] for c in terminating.status.conditions}.get(
        "Terminating"
    ) == "True"
    gadgets.patch(
        name="held", namespace=ns, body={"metadata": {"finalizers": None}}, content_type=MERGE
    )

    def crd_gone() -> bool:
        try:
            crds.get(name=f"{plural}.{GROUP}")
            return False
        except ApiException as e:
            return e.status == 404

    wait_until(crd_gone, what="CRD gone")
    # Its endpoint is no longer served.
    with pytest.raises(ApiException) as info:
        client.CustomObjectsApi(dyn.client).list_namespaced_custom_object(GROUP, "v1", ns, plural)
    assert info.value.status == 404


def test_cluster_scoped_custom_resource(dyn: DynamicClient) -> None:
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    plural = "gizmos"
    crds.create(body=_crd(plural, "Gizmo", scope="Cluster"))
    try:
        dyn.resources.invalidate_cache()
        gizmos = dyn.resources.get(api_version=f"{GROUP}/v1", kind="Gizmo")
        assert gizmos.namespaced is False
        name = uniq("giz")
        g = gizmos.create(
            body={"apiVersion": f"{GROUP}/v1", "kind": "Gizmo", "metadata": {"name": name}}
        )
        assert "namespace" not in g.metadata.to_dict()
        # Defaults apply inside objects that are present only: no spec, no defaults.
        assert "spec" not in g.to_dict()
        g = gizmos.patch(name=name, body={"spec": {}}, content_type=MERGE)
        assert g.spec.size == 3 and g.spec.replicas == 1
    finally:
        crds.delete(name=f"{plural}.{GROUP}")
