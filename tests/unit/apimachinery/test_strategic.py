"""Strategic merge patch on the real Pod and Deployment schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from k3py.apimachinery.strategic import strategic_merge
from k3py.server.errors import APIError
from k3py.server.registry import schema as sch

POD_SCHEMA = sch.schema_for_kind("", "v1", "Pod")
DEPLOYMENT_SCHEMA = sch.schema_for_kind("apps", "v1", "Deployment")


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "finalizers": ["a", "b"], "labels": {"x": "1"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                },
                {"name": "sidecar", "image": "side:1"},
            ],
            "volumes": [{"name": "data", "emptyDir": {}}],
            "tolerations": [{"key": "k", "operator": "Exists"}],
        },
    }


def patch_pod(patch: Any) -> dict[str, Any]:
    return strategic_merge(pod(), patch, POD_SCHEMA)


def test_original_not_mutated() -> None:
    original = pod()
    before = copy.deepcopy(original)
    patch = {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}
    strategic_merge(original, patch, POD_SCHEMA)
    assert original == before


def test_containers_merge_by_name_and_env_by_name() -> None:
    out = patch_pod(
        {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "app:2",
                        "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                    }
                ]
            }
        }
    )
    app, sidecar = out["spec"]["containers"]
    assert app["image"] == "app:2" and sidecar["name"] == "sidecar"
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert app["ports"] == [{"containerPort": 80}]
    out = patch_pod(
        {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "env": [{"name": "C", "value": "4"}, {"name": "B", "value": "3"}],
                    }
                ]
            }
        }
    )
    names = [e["name"] for e in out["spec"]["containers"][0]["env"]]
    assert names == ["C", "A", "B"]


def test_new_items_come_first_like_upstream() -> None:
    out = patch_pod({"spec": {"containers": [{"name": "init", "image": "i"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["init", "app", "sidecar"]


def test_null_deletes_map_key_and_field() -> None:
    out = patch_pod(
        {
            "metadata": {"labels": {"x": None, "y": "2"}},
            "spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": None}]}]},
        }
    )
    assert out["metadata"]["labels"] == {"y": "2"}
    assert out["spec"]["containers"][0]["env"][0] == {"name": "A"}


def test_patch_delete_of_a_container() -> None:
    out = patch_pod({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}})
    assert [c["name"] for c in out["spec"]["containers"]] == ["app"]


def test_patch_replace_of_a_list() -> None:
    out = patch_pod(
        {"spec": {"containers": [{"name": "only", "image": "o"}, {"$patch": "replace"}]}}
    )
    assert out["spec"]["containers"] == [{"name": "only", "image": "o"}]


def test_patch_replace_and_delete_on_maps() -> None:
    out = patch_pod({"metadata": {"labels": {"$patch": "replace", "z": "9"}}})
    assert out["metadata"]["labels"] == {"z": "9"}
    out = patch_pod({"metadata": {"labels": {"$patch": "delete"}}})
    assert out["metadata"]["labels"] == {}


def test_atomic_list_is_replaced() -> None:
    out = patch_pod({"spec": {"tolerations": [{"key": "other", "operator": "Exists"}]}})
    assert out["spec"]["tolerations"] == [{"key": "other", "operator": "Exists"}]


def test_primitive_merge_list_is_unioned() -> None:
    out = patch_pod({"metadata": {"finalizers": ["c", "a"]}})
    assert out["metadata"]["finalizers"] == ["c", "a", "b"]


def test_delete_from_primitive_list() -> None:
    out = patch_pod({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["b"]
    out = patch_pod(
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"], "finalizers": ["d"]}}
    )
    assert out["metadata"]["finalizers"] == ["d", "a"]


def test_set_element_order() -> None:
    out = patch_pod(
        {
            "spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "app:3"}],
            }
        }
    )
    assert [(c["name"], c["image"]) for c in out["spec"]["containers"]] == [
        ("sidecar", "side:1"),
        ("app", "app:3"),
    ]
    out = patch_pod({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}})
    assert out["metadata"]["finalizers"] == ["b", "a"]


def test_retain_keys_switches_deployment_strategy() -> None:
    live = {
        "spec": {
            "replicas": 1,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
        }
    }
    out = strategic_merge(
        live,
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}},
        DEPLOYMENT_SCHEMA,
    )
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    # Without the directive the old rollingUpdate stays (what kubectl avoids by sending it).
    out = strategic_merge(live, {"spec": {"strategy": {"type": "Recreate"}}}, DEPLOYMENT_SCHEMA)
    assert out["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_retain_keys_on_volumes() -> None:
    out = patch_pod(
        {
            "spec": {
                "volumes": [
                    {
                        "name": "data",
                        "$retainKeys": ["name", "hostPath"],
                        "hostPath": {"path": "/x"},
                    }
                ]
            }
        }
    )
    assert out["spec"]["volumes"] == [{"name": "data", "hostPath": {"path": "/x"}}]


def test_restart_annotation_on_template() -> None:
    live = {
        "spec": {
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c"}]},
            }
        }
    }
    patch = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}
        }
    }
    out = strategic_merge(live, patch, DEPLOYMENT_SCHEMA)
    assert out["spec"]["template"]["metadata"] == {
        "labels": {"a": "b"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "now"},
    }


def test_schemaless_subtrees_merge_like_merge_patch() -> None:
    out = strategic_merge(
        {"data": {"a": {"b": 1, "c": [1]}}}, {"data": {"a": {"b": None, "c": [2]}}}, None
    )
    assert out == {"data": {"a": {"c": [2]}}}


def test_missing_merge_key_is_an_upstream_500() -> None:
    with pytest.raises(APIError) as info:
        patch_pod({"spec": {"containers": [{"image": "x"}]}})
    assert info.value.code == 500 and info.value.reason == ""
    assert info.value.message == "map: map[image:x] does not contain declared merge key: name"


@pytest.mark.parametrize(
    ("patch", "code", "message"),
    [
        (
            {"spec": {"$retainKeys": ["x"], "containers": []}},
            400,
            "invalid patch format of retainKeys",
        ),
        ({"spec": {"$retainKeys": "x"}}, 400, "invalid patch format of retainKeys"),
        (
            {"metadata": {"$deleteFromPrimitiveList": ["a"]}},
            400,
            "invalid patch format of primitive list",
        ),
        ({"spec": {"$setElementOrderX": []}}, 400, "invalid patch format of setElementOrder list"),
        (
            {"metadata": {"labels": {"$patch": "merge"}}},
            500,
            "unknown patch type: merge in map: map[$patch:merge]",
        ),
        (
            {"spec": {"containers": [{"name": "app", "$patch": "merge"}]}},
            500,
            "merging lists cannot yet be specified in the patch",
        ),
        (
            {"metadata": {"finalizers": [1]}},
            500,
            "list element types are not identical: [[a b] [1]]",
        ),
    ],
)
def test_invalid_directives(patch: Any, code: int, message: str) -> None:
    with pytest.raises(APIError) as info:
        patch_pod(patch)
    assert info.value.code == code and info.value.message == message


def test_non_object_patch_is_400() -> None:
    with pytest.raises(APIError) as info:
        strategic_merge({}, [1], POD_SCHEMA)
    assert info.value.code == 400
    assert (
        info.value.message
        == "json: cannot unmarshal array into Go value of type map[string]interface {}"
    )


def test_no_directives_left_in_result() -> None:
    out = patch_pod(
        {
            "spec": {
                "containers": [{"name": "new", "image": "n", "env": [{"name": "X", "value": None}]}]
            }
        }
    )
    assert out["spec"]["containers"][0] == {"name": "new", "image": "n", "env": [{"name": "X"}]}


def test_list_of_lists_is_422() -> None:
    with pytest.raises(APIError) as info:
        strategic_merge(
            {"metadata": {"finalizers": []}}, {"metadata": {"finalizers": [["x"]]}}, POD_SCHEMA
        )
    assert info.value.code == 422
    assert info.value.details == {
        "causes": [
            {"reason": "UnexpectedServerResponse", "message": "lists of lists are not supported"}
        ]
    }


def test_directive_keys_stored_in_opaque_data_are_left_alone() -> None:
    # A ControllerRevision stores a template patch in `data`; patching the revision's
    # labels must not interpret (or strip) the directives inside that data.
    original = {
        "metadata": {"name": "r", "labels": {"a": "1"}},
        "data": {"spec": {"template": {"$patch": "replace", "spec": {"x": 1}}}},
        "revision": 1,
    }
    out = strategic_merge(original, {"metadata": {"labels": {"b": "2"}}}, None)
    assert out["data"] == original["data"]
    assert out["metadata"]["labels"] == {"a": "1", "b": "2"}
    # ... while directives in the patch still work.
    out = strategic_merge(original, {"metadata": {"labels": {"$patch": "replace", "c": "3"}}}, None)
    assert out["metadata"]["labels"] == {"c": "3"}
