"""Server-side apply and managedFields tracking of ordinary writes."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from k3py.apimachinery import managedfields as mf
from k3py.apimachinery.apply import apply, update_managed_fields
from k3py.server.errors import APIError
from k3py.server.registry import schema as sch

DEPLOYMENT = sch.schema_for_kind("apps", "v1", "Deployment")
CONFIGMAP = sch.schema_for_kind("", "v1", "ConfigMap")
T0, T1, T2, T3 = (f"2024-01-01T00:0{i}:00Z" for i in range(4))


def deployment(
    *, replicas: int = 2, labels: dict[str, str] | None = None, ports: bool = True
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": "nginx:1"}
    if ports:
        container["ports"] = [{"containerPort": 80}]
    meta: dict[str, Any] = {"name": "web", "namespace": "default"}
    if labels is not None:
        meta["labels"] = labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [container]},
            },
        },
    }


def ssa(
    live: dict[str, Any] | None,
    cfg: dict[str, Any],
    manager: str = "kubectl",
    *,
    force: bool = False,
    now: str = T0,
) -> dict[str, Any]:
    out = apply(
        live, cfg, manager=manager, force=force, schema=DEPLOYMENT, now=now, ignore_status=True
    )
    out["metadata"].setdefault("uid", "u-1")
    return out


def entries(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def test_create_records_applied_fields() -> None:
    obj = ssa(None, deployment(labels={"app": "web"}))
    assert obj["spec"]["replicas"] == 2
    [entry] = obj["metadata"]["managedFields"]
    assert entry["manager"] == "kubectl" and entry["operation"] == "Apply"
    assert (
        entry["apiVersion"] == "apps/v1"
        and entry["time"] == T0
        and entry["fieldsType"] == "FieldsV1"
    )
    assert orjson.dumps(entry["fieldsV1"]) == (
        b'{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:replicas":{},"f:selector":{},'
        b'"f:template":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":'
        b'{"k:{\\"name\\":\\"web\\"}":{".":{},"f:image":{},"f:name":{},"f:ports":'
        b'{"k:{\\"containerPort\\":80,\\"protocol\\":\\"TCP\\"}":'
        b'{".":{},"f:containerPort":{}}}}}}}}}'
    )
    assert list(entry) == ["manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1"]


def test_reapply_without_a_field_removes_it() -> None:
    obj = ssa(None, deployment(labels={"app": "web", "tier": "fe"}))
    obj = ssa(obj, deployment(labels={"app": "web"}, ports=False), now=T1)
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert "ports" not in obj["spec"]["template"]["spec"]["containers"][0]
    assert entries(obj)[("kubectl", "Apply")]["time"] == T1


def test_shared_field_survives_when_one_manager_drops_it() -> None:
    obj = ssa(None, deployment(labels={"app": "web", "team": "a"}))
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "a"}},
    }
    obj = ssa(obj, other, manager="other")  # same value: no conflict, shared ownership
    obj = ssa(obj, deployment(labels={"app": "web"}), now=T1)
    assert obj["metadata"]["labels"] == {"app": "web", "team": "a"}
    other_fields = entries(obj)[("other", "Apply")]["fieldsV1"]
    assert other_fields == {"f:metadata": {"f:labels": {"f:team": {}}}}


def test_conflict_is_409_with_upstream_causes() -> None:
    obj = ssa(None, deployment())
    scaled = copy.deepcopy(obj)
    scaled["spec"]["replicas"] = 5
    obj = update_managed_fields(
        obj,
        scaled,
        manager="kubectl-client-side-apply",
        schema=DEPLOYMENT,
        now=T1,
        ignore_status=True,
    )
    with pytest.raises(APIError) as info:
        ssa(obj, deployment(replicas=3), now=T2)
    err = info.value
    assert err.code == 409 and err.reason == "Conflict"
    assert (
        err.message == "Apply failed with 1 conflict: "
        'conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    assert err.details == {
        "causes": [
            {
                "reason": "FieldManagerConflict",
                "message": 'conflict with "kubectl-client-side-apply" using apps/v1',
                "field": ".spec.replicas",
            }
        ]
    }
    # Applying the value the other manager set is not a conflict.
    same = ssa(obj, deployment(replicas=5), now=T2)
    assert same["spec"]["replicas"] == 5


def test_several_conflicts_message() -> None:
    obj = ssa(None, deployment())
    changed = copy.deepcopy(obj)
    changed["spec"]["replicas"] = 5
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    obj = update_managed_fields(obj, changed, manager="editor", schema=DEPLOYMENT, now=T1)
    with pytest.raises(APIError) as info:
        ssa(obj, deployment(replicas=3), now=T2)
    assert info.value.message == (
        'Apply failed with 2 conflicts: conflicts with "editor" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="web"].image'
    )
    assert len(info.value.details["causes"]) == 2  # type: ignore[index]


def test_force_takes_ownership() -> None:
    obj = ssa(None, deployment())
    scaled = copy.deepcopy(obj)
    scaled["spec"]["replicas"] = 5
    obj = update_managed_fields(obj, scaled, manager="hpa", schema=DEPLOYMENT, now=T1)
    obj = ssa(obj, deployment(replicas=3), force=True, now=T2)
    assert obj["spec"]["replicas"] == 3
    assert ("hpa", "Update") not in entries(obj)
    assert "f:replicas" in entries(obj)[("kubectl", "Apply")]["fieldsV1"]["f:spec"]


def test_update_after_put_moves_changed_fields() -> None:
    obj = ssa(None, deployment())
    new = copy.deepcopy(obj)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    new["metadata"]["annotations"] = {"note": "x"}
    out = update_managed_fields(obj, new, manager="kubectl-edit", schema=DEPLOYMENT, now=T1)
    edit = entries(out)[("kubectl-edit", "Update")]
    assert edit["time"] == T1 and edit["apiVersion"] == "apps/v1"
    assert edit["fieldsV1"] == {
        "f:metadata": {"f:annotations": {".": {}, "f:note": {}}},
        "f:spec": {
            "f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {"f:image": {}}}}}
        },
    }
    applied = entries(out)[("kubectl", "Apply")]["fieldsV1"]
    assert (
        "f:image"
        not in applied["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"web"}']
    )
    # Apply entries sort before Update entries.
    assert [e["operation"] for e in out["metadata"]["managedFields"]] == ["Apply", "Update"]


def test_create_via_update_and_unchanged_write() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "labels": {"a": "b"}},
        "data": {"k": "v"},
    }
    created = update_managed_fields(None, cm, manager="kubectl-create", schema=CONFIGMAP, now=T0)
    [entry] = created["metadata"]["managedFields"]
    assert entry["fieldsV1"] == {
        "f:data": {".": {}, "f:k": {}},
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
    }
    created["metadata"]["uid"] = "u"
    again = update_managed_fields(
        created, copy.deepcopy(created), manager="other", schema=CONFIGMAP, now=T1
    )
    assert again["metadata"]["managedFields"] == created["metadata"]["managedFields"]


def test_client_sent_managed_fields_are_honoured() -> None:
    obj = ssa(None, deployment())
    reset = copy.deepcopy(obj)
    reset["metadata"]["managedFields"] = []
    out = update_managed_fields(obj, reset, manager="x", schema=DEPLOYMENT, now=T1)
    assert "managedFields" not in out["metadata"]
    custom = copy.deepcopy(obj)
    custom["metadata"]["managedFields"] = [
        {
            "manager": "mine",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:replicas": {}}},
        }
    ]
    out = update_managed_fields(obj, custom, manager="x", schema=DEPLOYMENT, now=T1)
    assert [e["manager"] for e in out["metadata"]["managedFields"]] == ["mine"]
    broken = copy.deepcopy(obj)
    broken["metadata"]["managedFields"] = [{"manager": "bad"}]
    out = update_managed_fields(obj, broken, manager="x", schema=DEPLOYMENT, now=T1)
    assert out["metadata"]["managedFields"] == obj["metadata"]["managedFields"]
    # On a subresource the request's managedFields are ignored.
    out = update_managed_fields(
        obj, reset, manager="x", schema=DEPLOYMENT, now=T1, subresource="status"
    )
    assert out["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_untracked_existing_object_stays_untracked_until_apply() -> None:
    live = deployment()
    live["metadata"]["uid"] = "u"
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 9
    assert (
        "managedFields"
        not in update_managed_fields(live, new, manager="m", schema=DEPLOYMENT, now=T0)["metadata"]
    )
    applied = ssa(
        new,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 9},
        },
    )
    before = entries(applied)[("before-first-apply", "Update")]
    assert "f:template" in before["fieldsV1"]["f:spec"]
    # replicas kept its value, so both managers own it now
    assert "f:replicas" in before["fieldsV1"]["f:spec"]
    assert entries(applied)[("kubectl", "Apply")]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    changed = ssa(
        applied,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 4},
        },
        force=True,
    )
    assert (
        "f:replicas" not in entries(changed)[("before-first-apply", "Update")]["fieldsV1"]["f:spec"]
    )


def test_metadata_fields_and_status_are_not_owned() -> None:
    obj = deployment(labels={"a": "b"})
    obj["metadata"].update(uid="u", resourceVersion="7", generation=3, creationTimestamp=T0)
    obj["metadata"]["finalizers"] = ["x/y"]
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "K", "name": "o", "uid": "o-1"}
    ]
    obj["status"] = {"replicas": 1}
    out = update_managed_fields(
        None, obj, manager="m", schema=DEPLOYMENT, now=T0, ignore_status=True
    )
    fields = out["metadata"]["managedFields"][0]["fieldsV1"]
    assert "f:status" not in fields
    assert set(fields["f:metadata"]) == {"f:labels", "f:finalizers", "f:ownerReferences"}
    assert fields["f:metadata"]["f:finalizers"] == {".": {}, 'v:"x/y"': {}}
    assert list(fields["f:metadata"]["f:ownerReferences"]) == [".", 'k:{"uid":"o-1"}']


def test_status_subresource_entry() -> None:
    obj = ssa(None, deployment())
    new = copy.deepcopy(obj)
    new["status"] = {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
    out = update_managed_fields(
        obj, new, manager="kube-controller-manager", schema=DEPLOYMENT, now=T1, subresource="status"
    )
    entry = entries(out)[("kube-controller-manager", "Update")]
    assert entry["subresource"] == "status"
    assert list(entry) == [
        "manager",
        "operation",
        "apiVersion",
        "time",
        "fieldsType",
        "fieldsV1",
        "subresource",
    ]
    assert entry["fieldsV1"]["f:status"]["f:conditions"]['k:{"type":"Available"}'] == {
        ".": {},
        "f:status": {},
        "f:type": {},
    }


def test_noop_apply_keeps_time() -> None:
    obj = ssa(None, deployment())
    again = ssa(obj, deployment(), now=T3)
    assert entries(again)[("kubectl", "Apply")]["time"] == T0
    assert again["spec"] == obj["spec"]


def test_bad_apply_requests() -> None:
    cfg = deployment()
    cfg["metadata"]["managedFields"] = []
    with pytest.raises(APIError) as info:
        ssa(None, cfg)
    assert info.value.code == 400 and info.value.message == "metadata.managedFields must be nil"
    with pytest.raises(APIError) as info:
        apply(
            None,
            deployment(),
            manager="m",
            force=False,
            schema=DEPLOYMENT,
            now=T0,
            api_version="apps/v1",
            kind="StatefulSet",
        )
    assert info.value.message == "invalid object type: apps/v1, Kind=Deployment"
    bad = deployment()
    bad["spec"]["bogus"] = 1
    with pytest.raises(APIError) as info:
        ssa(None, bad)
    assert info.value.code == 500
    assert info.value.message == (
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        ".spec.bogus: field not declared in schema"
    )
    dup = deployment()
    dup["spec"]["template"]["spec"]["containers"].append({"name": "web", "image": "x"})
    with pytest.raises(APIError, match=r'duplicate entries for key \[name="web"\]'):
        ssa(None, dup)


def test_kubectl_client_side_to_server_side_migration() -> None:
    """A csa-managed field whose value matches last-applied does not conflict for 'kubectl'."""
    cfg = deployment()
    live = copy.deepcopy(cfg)
    last = orjson.dumps(cfg).decode()
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": last}
    live = update_managed_fields(
        None, live, manager="kubectl-client-side-apply", schema=DEPLOYMENT, now=T0
    )
    live["metadata"]["uid"] = "u"
    cfg3 = deployment(replicas=3)
    with pytest.raises(APIError):
        ssa(live, cfg3, manager="someone-else", now=T1)
    out = ssa(live, cfg3, manager="kubectl", now=T1)
    assert out["spec"]["replicas"] == 3
    annotation = out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
    assert orjson.loads(annotation)["spec"]["replicas"] == 3 and annotation.endswith("\n")


def test_update_managers_are_capped() -> None:
    obj = update_managed_fields(None, deployment(), manager="creator", schema=DEPLOYMENT, now=T0)
    obj["metadata"]["uid"] = "u"
    for i in range(12):
        new = copy.deepcopy(obj)
        new["metadata"].setdefault("labels", {})[f"l{i}"] = "v"
        obj = update_managed_fields(
            obj, new, manager=f"m{i:02d}", schema=DEPLOYMENT, now=f"2024-01-01T00:{i:02d}:00Z"
        )
    managers = [e["manager"] for e in obj["metadata"]["managedFields"]]
    assert len(managers) == 10 and "ancient-changes" in managers
    assert "creator" not in managers and "m01" not in managers and "m11" in managers
    ancient = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == "ancient-changes")
    assert set(ancient["fieldsV1"]["f:metadata"]["f:labels"]) >= {"f:l0", "f:l1"}
    assert "f:spec" in ancient["fieldsV1"]


def test_decode_errors_and_identifiers() -> None:
    assert (
        mf.build_identifier(manager="kubectl", operation="Apply", api_version="apps/v1")
        == '{"manager":"kubectl","operation":"Apply"}'
    )
    assert mf.print_manager(
        mf.build_identifier(manager="k", operation="Update", api_version="v1", subresource="status")
    ) == ('"k" with subresource "status" using v1')
    with pytest.raises(mf.ManagedFieldsError, match="operation must be `Apply` or `Update`"):
        mf.decode(
            [{"manager": "x", "operation": "Bogus", "apiVersion": "v1", "fieldsType": "FieldsV1"}]
        )
    with pytest.raises(mf.ManagedFieldsError, match="missing fieldsType in managed fields entry 0"):
        mf.decode([{"manager": "x", "operation": "Apply", "apiVersion": "v1"}])
    live = deployment()
    live["metadata"]["managedFields"] = [
        {"manager": "x", "operation": "Apply", "apiVersion": "", "fieldsType": "FieldsV1"}
    ]
    with pytest.raises(APIError) as info:
        ssa(live, deployment())
    assert (
        info.value.code == 500
        and info.value.message == "failed to decode managed fields: apiVersion must not be empty"
    )


def test_custom_resource_without_schema() -> None:
    cr: dict[str, Any] = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 1, "tags": ["a"], "x": {"y": 1}},
    }
    out = apply(None, cr, manager="m", force=False, schema=None, now=T0)
    assert out["metadata"]["managedFields"][0]["fieldsV1"] == {
        "f:spec": {".": {}, "f:size": {}, "f:tags": {}, "f:x": {".": {}, "f:y": {}}}
    }
    cr2 = copy.deepcopy(cr)
    del cr2["spec"]["x"]
    out = apply(out, cr2, manager="m", force=False, schema=None, now=T1)
    assert out["spec"] == {"size": 1, "tags": ["a"]}


def test_null_in_configuration_is_owned_but_not_stored() -> None:
    cfg = deployment()
    cfg["spec"]["paused"] = None
    out = ssa(None, cfg)
    assert "paused" not in out["spec"]
    assert "f:paused" in entries(out)[("kubectl", "Apply")]["fieldsV1"]["f:spec"]
