"""The official Python client against k3py: patches (strategic merge, merge, JSON),
server-side apply, dryRun, deletion options, finalizers, deletecollection and
namespace termination."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.api.client_common import expect_error, fresh_namespace, make_namespace, wait_until

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def ns(core_v1: Any) -> Iterator[str]:
    yield from fresh_namespace(core_v1)


MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def _cm(name: str, data: dict[str, str] | None = None, **meta: Any) -> Any:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, **meta), data=data)


def _deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "a",
                            "image": "busybox:1.36",
                            "env": [{"name": "X", "value": "1"}],
                        },
                        {"name": "b", "image": "busybox:1.36"},
                    ]
                },
            },
        },
    }


def _containers(d: Any) -> dict[str, str]:
    return {c.name: c.image for c in d.spec.template.spec.containers}


def _exists(fn: Any, *args: Any) -> bool:
    try:
        fn(*args)
        return True
    except ApiException as e:
        if e.status == 404:
            return False
        raise


# ---- patches ------------------------------------------------------------------------


def test_strategic_merge_patch(apps_v1: Any, ns: str) -> None:
    apps_v1.create_namespaced_deployment(ns, _deployment("smp"))
    # A dict body is sent as a strategic merge patch: containers merge by name.
    d = apps_v1.patch_namespaced_deployment(
        "smp",
        ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "busybox:1.37"}]}}}},
    )
    assert _containers(d) == {"a": "busybox:1.36", "b": "busybox:1.37"}
    assert d.spec.template.spec.containers[0].env[0].value == "1"
    # A new element is added; env merges by name as well.
    d = apps_v1.patch_namespaced_deployment(
        "smp",
        ns,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "busybox:1.35"},
                            {"name": "a", "env": [{"name": "Y", "value": "2"}]},
                        ]
                    }
                }
            }
        },
    )
    assert _containers(d) == {"a": "busybox:1.36", "b": "busybox:1.37", "c": "busybox:1.35"}
    # Order as upstream's mergeSortedSlice: patch items in patch order, the rest where
    # the live list had them.
    assert [c.name for c in d.spec.template.spec.containers] == ["c", "a", "b"]
    env_a = [(e.name, e.value) for e in d.spec.template.spec.containers[1].env]
    assert env_a == [("Y", "2"), ("X", "1")]
    # $patch: delete removes one element by its merge key.
    d = apps_v1.patch_namespaced_deployment(
        "smp",
        ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}}},
    )
    assert _containers(d) == {"b": "busybox:1.37", "c": "busybox:1.35"}
    # $patch: replace on a map replaces it wholesale.
    d = apps_v1.patch_namespaced_deployment(
        "smp", ns, {"metadata": {"labels": {"one": "1", "two": "2"}}}
    )
    d = apps_v1.patch_namespaced_deployment(
        "smp", ns, {"metadata": {"labels": {"$patch": "replace", "three": "3"}}}
    )
    assert d.metadata.labels == {"three": "3"}


def test_explicit_strategic_merge_content_type(core_v1: Any, ns: str) -> None:
    core_v1.create_namespaced_config_map(ns, _cm("smp-cm", {"a": "1"}))
    cm = core_v1.patch_namespaced_config_map(
        "smp-cm", ns, {"data": {"b": "2"}}, _content_type="application/strategic-merge-patch+json"
    )
    assert cm.data == {"a": "1", "b": "2"}


def test_merge_patch(core_v1: Any, apps_v1: Any, ns: str) -> None:
    core_v1.create_namespaced_config_map(
        ns, _cm("mp", {"a": "1", "b": "2"}, labels={"x": "1", "y": "2"})
    )
    cm = core_v1.patch_namespaced_config_map(
        "mp",
        ns,
        {"metadata": {"labels": {"x": None, "z": "3"}}, "data": {"a": None}},
        _content_type=MERGE,
    )
    assert cm.metadata.labels == {"y": "2", "z": "3"}
    assert cm.data == {"b": "2"}
    # A merge patch replaces lists wholesale.
    apps_v1.create_namespaced_deployment(ns, _deployment("mpd"))
    d = apps_v1.patch_namespaced_deployment(
        "mpd",
        ns,
        {"spec": {"template": {"spec": {"containers": [{"name": "z", "image": "busybox:1.37"}]}}}},
        _content_type=MERGE,
    )
    assert _containers(d) == {"z": "busybox:1.37"}
    # Defaults are applied to the new element.
    assert d.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"


def test_json_patch(core_v1: Any, ns: str) -> None:
    created = core_v1.create_namespaced_config_map(ns, _cm("jp", {"k": "v"}))
    cm = core_v1.patch_namespaced_config_map(
        "jp",
        ns,
        [
            {"op": "test", "path": "/data/k", "value": "v"},
            {"op": "replace", "path": "/data/k", "value": "w"},
            {"op": "add", "path": "/data/n", "value": "new"},
            {"op": "add", "path": "/metadata/labels", "value": {"a": "b"}},
        ],
    )
    assert cm.data == {"k": "w", "n": "new"}
    assert cm.metadata.labels == {"a": "b"}
    cm = core_v1.patch_namespaced_config_map(
        "jp",
        ns,
        [{"op": "remove", "path": "/data/n"}, {"op": "move", "from": "/data/k", "path": "/data/m"}],
    )
    assert cm.data == {"m": "w"}
    # A failing test op: 422, nothing changes.
    body = expect_error(
        core_v1.patch_namespaced_config_map,
        "jp",
        ns,
        [
            {"op": "test", "path": "/data/m", "value": "other"},
            {"op": "replace", "path": "/data/m", "value": "x"},
        ],
        status=422,
        reason="Invalid",
    )
    assert body["code"] == 422
    assert core_v1.read_namespaced_config_map("jp", ns).data == {"m": "w"}
    # kopf's guard: test the resourceVersion/finalizers before editing them.
    current = core_v1.read_namespaced_config_map("jp", ns)
    expect_error(
        core_v1.patch_namespaced_config_map,
        "jp",
        ns,
        [
            {
                "op": "test",
                "path": "/metadata/resourceVersion",
                "value": created.metadata.resource_version,
            },
            {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
        ],
        status=422,
        reason="Invalid",
    )
    assert (
        core_v1.read_namespaced_config_map("jp", ns).metadata.resource_version
        == current.metadata.resource_version
    )
    # Removing a path that does not exist is also refused.
    expect_error(
        core_v1.patch_namespaced_config_map,
        "jp",
        ns,
        [{"op": "remove", "path": "/data/missing"}],
        status=422,
        reason="Invalid",
    )


def test_patch_errors(core_v1: Any, ns: str) -> None:
    expect_error(
        core_v1.patch_namespaced_config_map,
        "missing",
        ns,
        {"data": {"a": "b"}},
        status=404,
        reason="NotFound",
    )
    core_v1.create_namespaced_config_map(ns, _cm("perr"))
    body = expect_error(
        core_v1.patch_namespaced_config_map,
        "perr",
        ns,
        {"metadata": {"name": "Bad_Name"}},
        _content_type=MERGE,
        status=400,
        reason="BadRequest",
    )
    assert "does not match" in body["message"] or "name" in body["message"]


# ---- server-side apply ----------------------------------------------------------------


def _apply_cm(
    core: Any, ns: str, name: str, data: dict[str, str], *, manager: str, force: bool | None = None
) -> Any:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
    return core.patch_namespaced_config_map(
        name, ns, body, field_manager=manager, force=force, _content_type=APPLY
    )


def _managers(obj: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.manager, m.operation): m.fields_v1 for m in obj.metadata.managed_fields or []}


def test_server_side_apply(core_v1: Any, api_client: Any, ns: str) -> None:
    # Apply creates when absent.
    cm = _apply_cm(core_v1, ns, "ssa", {"a": "1", "b": "2"}, manager="alice")
    assert cm.data == {"a": "1", "b": "2"}
    mf = cm.metadata.managed_fields
    assert len(mf) == 1
    assert mf[0].manager == "alice" and mf[0].operation == "Apply" and mf[0].api_version == "v1"
    assert mf[0].fields_type == "FieldsV1"
    assert mf[0].fields_v1 == {"f:data": {"f:a": {}, "f:b": {}}}

    # Another manager changing alice's field: 409 Conflict naming the field.
    body = expect_error(
        _apply_cm, core_v1, ns, "ssa", {"a": "9"}, manager="bob", status=409, reason="Conflict"
    )
    assert "alice" in body["message"] and ".data.a" in body["message"]
    assert [c["field"] for c in body["details"]["causes"]] == [".data.a"]
    assert body["details"]["causes"][0]["reason"] == "FieldManagerConflict"

    # Same value: shared ownership, no conflict.
    cm = _apply_cm(core_v1, ns, "ssa", {"a": "1", "c": "3"}, manager="bob")
    assert cm.data == {"a": "1", "b": "2", "c": "3"}
    owners = _managers(cm)
    assert owners[("bob", "Apply")] == {"f:data": {"f:a": {}, "f:c": {}}}

    # force takes the field away.
    cm = _apply_cm(core_v1, ns, "ssa", {"b": "20"}, manager="bob", force=True)
    assert cm.data == {"a": "1", "b": "20"}  # c dropped: only bob owned it
    owners = _managers(cm)
    assert owners[("bob", "Apply")] == {"f:data": {"f:b": {}}}
    assert owners[("alice", "Apply")] == {"f:data": {"f:a": {}}}

    # Alice drops "a" from her configuration: the field goes.
    cm = _apply_cm(core_v1, ns, "ssa", {}, manager="alice")
    assert cm.data == {"b": "20"}

    # An ordinary update is tracked as an Update manager.
    cm = core_v1.patch_namespaced_config_map(
        "ssa", ns, {"data": {"u": "1"}}, field_manager="editor"
    )
    assert _managers(cm)[("editor", "Update")] == {"f:data": {"f:u": {}}}

    # Apply through call_api directly (what generic clients do), with the YAML body.
    resp = api_client.call_api(
        *api_client.param_serialize(
            method="PATCH",
            resource_path=f"/api/v1/namespaces/{ns}/configmaps/ssa-raw",
            query_params=[("fieldManager", "raw")],
            header_params={"Content-Type": APPLY, "Accept": "application/json"},
            body="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa-raw\ndata:\n  k: v\n",
        )
    )
    resp.read()
    assert resp.status == 201
    assert core_v1.read_namespaced_config_map("ssa-raw", ns).data == {"k": "v"}


def test_patch_options_validation(core_v1: Any, ns: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "nofm"},
        "data": {"a": "1"},
    }
    # Apply needs an explicit fieldManager (ValidatePatchOptions).
    status = expect_error(
        core_v1.patch_namespaced_config_map,
        "nofm",
        ns,
        body,
        _content_type=APPLY,
        status=422,
        reason="Invalid",
    )
    assert status["details"]["kind"] == "PatchOptions"
    assert [c["field"] for c in status["details"]["causes"]] == ["fieldManager"]
    # force is for apply only.
    core_v1.create_namespaced_config_map(ns, _cm("nofm"))
    status = expect_error(
        core_v1.patch_namespaced_config_map,
        "nofm",
        ns,
        {"data": {"a": "1"}},
        force=False,
        status=422,
        reason="Invalid",
    )
    assert [c["field"] for c in status["details"]["causes"]] == ["force"]


def test_apply_deployment_and_status_managers(apps_v1: Any, ns: str) -> None:
    d = apps_v1.patch_namespaced_deployment(
        "ssa-dep", ns, _deployment("ssa-dep"), field_manager="ci", _content_type=APPLY
    )
    assert d.metadata.generation == 1
    fields = _managers(d)[("ci", "Apply")]
    containers = fields["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert 'k:{"name":"a"}' in containers and 'k:{"name":"b"}' in containers
    # Re-applying the same configuration changes nothing.
    again = apps_v1.patch_namespaced_deployment(
        "ssa-dep", ns, _deployment("ssa-dep"), field_manager="ci", _content_type=APPLY
    )
    assert again.metadata.resource_version == d.metadata.resource_version
    assert again.metadata.generation == 1


# ---- dryRun --------------------------------------------------------------------------


def test_dry_run_stores_nothing(core_v1: Any, ns: str) -> None:
    w_rv = core_v1.list_namespaced_config_map(ns).metadata.resource_version
    cm = core_v1.create_namespaced_config_map(ns, _cm("dry", {"a": "1"}), dry_run="All")
    assert cm.metadata.name == "dry" and cm.metadata.uid
    assert not _exists(core_v1.read_namespaced_config_map, "dry", ns)
    gen = core_v1.create_namespaced_config_map(
        ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="dry-")), dry_run="All"
    )
    assert gen.metadata.name.startswith("dry-")

    real = core_v1.create_namespaced_config_map(ns, _cm("real", {"a": "1"}))
    patched = core_v1.patch_namespaced_config_map("real", ns, {"data": {"a": "2"}}, dry_run="All")
    assert patched.data == {"a": "2"}
    applied = core_v1.patch_namespaced_config_map(
        "real",
        ns,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "real"}, "data": {"z": "1"}},
        field_manager="dry",
        dry_run="All",
        _content_type=APPLY,
    )
    assert ("dry", "Apply") in _managers(applied)
    applied_new = core_v1.patch_namespaced_config_map(
        "nope",
        ns,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nope"}},
        field_manager="dry",
        dry_run="All",
        _content_type=APPLY,
    )
    assert applied_new.metadata.name == "nope"
    assert not _exists(core_v1.read_namespaced_config_map, "nope", ns)
    replaced = core_v1.replace_namespaced_config_map(
        "real", ns, _cm("real", {"r": "1"}), dry_run="All"
    )
    assert replaced.data == {"r": "1"}
    core_v1.delete_namespaced_config_map("real", ns, dry_run="All")
    stored = core_v1.read_namespaced_config_map("real", ns)
    assert stored.data == {"a": "1"}
    assert stored.metadata.resource_version == real.metadata.resource_version
    core_v1.delete_collection_namespaced_config_map(ns, dry_run="All")
    assert _exists(core_v1.read_namespaced_config_map, "real", ns)

    # Nothing at all was written: a watch from before sees only the one real create.
    events = watch.Watch().stream(
        core_v1.list_namespaced_config_map, ns, resource_version=w_rv, timeout_seconds=1
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "real")]
    expect_error(
        core_v1.create_namespaced_config_map,
        ns,
        _cm("x"),
        dry_run="Some",
        status=400,
        reason="BadRequest",
    )


# ---- deletion ------------------------------------------------------------------------


def test_delete_returns_object_or_status(core_v1: Any, ns: str) -> None:
    core_v1.create_namespaced_config_map(ns, _cm("del"))
    resp = core_v1.delete_namespaced_config_map("del", ns, _preload_content=False)
    assert resp.status == 200
    expect_error(core_v1.delete_namespaced_config_map, "del", ns, status=404, reason="NotFound")


def test_delete_propagation_policies(core_v1: Any, ns: str) -> None:
    core_v1.create_namespaced_config_map(ns, _cm("bg"))
    core_v1.delete_namespaced_config_map("bg", ns, propagation_policy="Background")
    assert not _exists(core_v1.read_namespaced_config_map, "bg", ns)

    for policy, finalizer in (("Foreground", "foregroundDeletion"), ("Orphan", "orphan")):
        name = policy.lower()
        core_v1.create_namespaced_config_map(ns, _cm(name))
        core_v1.delete_namespaced_config_map(name, ns, propagation_policy=policy)
        left = core_v1.read_namespaced_config_map(name, ns)
        assert left.metadata.deletion_timestamp is not None
        assert finalizer in left.metadata.finalizers
        # Whoever owns the finalizer (the garbage collector) removes it: then it goes.
        core_v1.patch_namespaced_config_map(
            name, ns, {"metadata": {"finalizers": None}}, _content_type=MERGE
        )
        assert not _exists(core_v1.read_namespaced_config_map, name, ns)

    body = expect_error(
        core_v1.delete_namespaced_config_map,
        "x",
        ns,
        propagation_policy="Sideways",
        status=422,
        reason="Invalid",
    )
    assert body["details"]["kind"] == "DeleteOptions"


def test_pod_grace_period(core_v1: Any, ns: str) -> None:
    def pod(name: str, node: str | None) -> Any:
        return client.V1Pod(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PodSpec(
                node_name=node, containers=[client.V1Container(name="c", image="busybox:1.36")]
            ),
        )

    # Not scheduled: deleted at once.
    core_v1.create_namespaced_pod(ns, pod("unscheduled", None))
    core_v1.delete_namespaced_pod("unscheduled", ns)
    assert not _exists(core_v1.read_namespaced_pod, "unscheduled", ns)

    # On a node: marked and left for its kubelet.
    core_v1.create_namespaced_pod(ns, pod("bound", "test-node"))
    core_v1.delete_namespaced_pod("bound", ns)
    left = core_v1.read_namespaced_pod("bound", ns)
    assert left.metadata.deletion_timestamp is not None
    assert left.metadata.deletion_grace_period_seconds == 30
    # A shorter grace period shortens it; a longer one does not.
    core_v1.delete_namespaced_pod("bound", ns, grace_period_seconds=5)
    assert core_v1.read_namespaced_pod("bound", ns).metadata.deletion_grace_period_seconds == 5
    core_v1.delete_namespaced_pod("bound", ns, grace_period_seconds=20)
    assert core_v1.read_namespaced_pod("bound", ns).metadata.deletion_grace_period_seconds == 5
    # Zero: gone now.
    core_v1.delete_namespaced_pod("bound", ns, grace_period_seconds=0)
    assert not _exists(core_v1.read_namespaced_pod, "bound", ns)


def test_delete_preconditions(core_v1: Any, ns: str) -> None:
    cm = core_v1.create_namespaced_config_map(ns, _cm("pre"))
    body = client.V1DeleteOptions(
        preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000")
    )
    expect_error(
        core_v1.delete_namespaced_config_map, "pre", ns, body=body, status=409, reason="Conflict"
    )
    body = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=cm.metadata.uid))
    core_v1.delete_namespaced_config_map("pre", ns, body=body)
    assert not _exists(core_v1.read_namespaced_config_map, "pre", ns)


def test_finalizers_hold_deletion(core_v1: Any, ns: str) -> None:
    core_v1.create_namespaced_config_map(
        ns, _cm("fin", {"a": "1"}, finalizers=["example.com/keep"])
    )
    rv = core_v1.list_namespaced_config_map(ns).metadata.resource_version
    core_v1.delete_namespaced_config_map("fin", ns)
    held = core_v1.read_namespaced_config_map("fin", ns)
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.finalizers == ["example.com/keep"]
    # Deleting again changes nothing.
    core_v1.delete_namespaced_config_map("fin", ns)
    assert (
        core_v1.read_namespaced_config_map("fin", ns).metadata.resource_version
        == held.metadata.resource_version
    )
    # Removing the last finalizer deletes the object.
    core_v1.patch_namespaced_config_map(
        "fin", ns, [{"op": "remove", "path": "/metadata/finalizers/0"}], _content_type=JSON_PATCH
    )
    assert not _exists(core_v1.read_namespaced_config_map, "fin", ns)
    events = watch.Watch().stream(
        core_v1.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=1
    )
    seen = [(e["type"], e["object"].metadata.name) for e in events]
    assert seen == [("MODIFIED", "fin"), ("DELETED", "fin")]


def test_delete_collection_with_label_selector(core_v1: Any, ns: str) -> None:
    for i in range(6):
        core_v1.create_namespaced_config_map(
            ns, _cm(f"dc-{i}", labels={"batch": "odd" if i % 2 else "even"})
        )
    resp = core_v1.delete_collection_namespaced_config_map(ns, label_selector="batch=odd")
    assert resp.kind == "ConfigMapList" or resp.status == "Success"
    left = [i.metadata.name for i in core_v1.list_namespaced_config_map(ns).items]
    assert left == ["dc-0", "dc-2", "dc-4"]


# ---- namespaces -------------------------------------------------------------------


def test_namespace_termination(core_v1: Any) -> None:
    name = make_namespace(core_v1, prefix="term")
    created = core_v1.read_namespace(name)
    assert created.status.phase == "Active"
    assert created.spec.finalizers == ["kubernetes"]
    assert created.metadata.labels["kubernetes.io/metadata.name"] == name
    core_v1.create_namespaced_config_map(name, _cm("plain"))
    core_v1.create_namespaced_config_map(name, _cm("held", finalizers=["example.com/hold"]))

    core_v1.delete_namespace(name)
    ns_obj = core_v1.read_namespace(name)
    assert ns_obj.status.phase == "Terminating"
    assert ns_obj.metadata.deletion_timestamp is not None
    # Nothing new may be created in it.
    body = expect_error(
        core_v1.create_namespaced_config_map, name, _cm("new"), status=403, reason="Forbidden"
    )
    assert "because it is being terminated" in body["message"]

    # Its contents are removed; the held object waits for its finalizer, and so does
    # the namespace.
    wait_until(
        lambda: not _exists(core_v1.read_namespaced_config_map, "plain", name), what="plain removed"
    )
    held = core_v1.read_namespaced_config_map("held", name)
    assert held.metadata.deletion_timestamp is not None
    assert core_v1.read_namespace(name).status.phase == "Terminating"

    core_v1.patch_namespaced_config_map(
        "held", name, {"metadata": {"finalizers": None}}, _content_type=MERGE
    )
    wait_until(lambda: not _exists(core_v1.read_namespace, name), what="namespace gone")


def test_immortal_namespace(core_v1: Any) -> None:
    with pytest.raises(ApiException) as info:
        core_v1.delete_namespace("default", dry_run="All")
    assert info.value.status == 403
