"""The real kubectl changing live objects: patch (all three types), label, annotate,
scale, delete (with its wait), namespace deletion and `kubectl wait`."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.api.kubectl_util import (
    apply_text,
    configmap,
    crontab,
    deployment,
    ensure_crd,
    get_json,
    kubectl_bg,
    table,
    unique,
)
from tests.conftest import ServerHandle

pytestmark = pytest.mark.timeout(180)


def _later(delay: float, fn: object, *args: object) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        fn(*args)  # type: ignore[operator]

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


# ---- patch -------------------------------------------------------------------------


def test_patch_strategic_merge(server: ServerHandle, namespace: str) -> None:
    dep = json.loads(deployment("smp"))
    dep["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "busybox:1.36"})
    apply_text(server, json.dumps(dep), "-n", namespace)
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}}}
    }
    res = server.kubectl("patch", "deployment", "smp", "-n", namespace, "-p", json.dumps(patch))
    assert res.stdout.strip() == "deployment.apps/smp patched"
    containers = get_json(server, "deployment", "smp", "-n", namespace)["spec"]["template"]["spec"][
        "containers"
    ]
    # Merged by the `name` key: the other container stays, defaults survive.
    assert [(c["name"], c["image"]) for c in containers] == [
        ("main", "busybox:1.37"),
        ("side", "busybox:1.36"),
    ]
    assert containers[0]["imagePullPolicy"] == "IfNotPresent"
    # $patch: delete removes one list element.
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}}
    server.kubectl("patch", "deployment", "smp", "-n", namespace, "-p", json.dumps(patch))
    containers = get_json(server, "deployment", "smp", "-n", namespace)["spec"]["template"]["spec"][
        "containers"
    ]
    assert [c["name"] for c in containers] == ["main"]
    res = server.kubectl(
        "patch", "deployment", "smp", "-n", namespace, "-p", '{"spec":{"replicas":1}}'
    )
    assert res.stdout.strip() == "deployment.apps/smp patched (no change)"


def test_patch_merge(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("mp", {"a": "1", "b": "2"}), "-n", namespace)
    res = server.kubectl(
        "patch",
        "configmap",
        "mp",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"data":{"a":null,"c":"3"}}',
    )
    assert res.stdout.strip() == "configmap/mp patched"
    assert get_json(server, "configmap", "mp", "-n", namespace)["data"] == {"b": "2", "c": "3"}
    # Merge patch on a custom resource (strategic merge is refused there).
    ensure_crd(server)
    apply_text(server, crontab("mp-ct"), "-n", namespace)
    server.kubectl(
        "patch",
        "crontab",
        "mp-ct",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"image":"x:1"}}',
    )
    assert get_json(server, "crontab", "mp-ct", "-n", namespace)["spec"]["image"] == "x:1"
    res = server.kubectl(
        "patch", "crontab", "mp-ct", "-n", namespace, "-p", '{"spec":{"image":"y"}}', check=False
    )
    assert res.returncode == 1
    assert (
        "application/strategic-merge-patch+json is not supported by stable.example.com/v1, Kind=CronTab"
        in res.stderr
    )


def test_patch_json(server: ServerHandle, namespace: str) -> None:
    apply_text(server, deployment("jp", replicas=2), "-n", namespace)
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 2},
        {"op": "replace", "path": "/spec/replicas", "value": 4},
        {"op": "add", "path": "/metadata/labels/extra", "value": "yes"},
    ]
    res = server.kubectl(
        "patch", "deployment", "jp", "-n", namespace, "--type=json", "-p", json.dumps(ops)
    )
    assert res.stdout.strip() == "deployment.apps/jp patched"
    obj = get_json(server, "deployment", "jp", "-n", namespace)
    assert obj["spec"]["replicas"] == 4
    assert obj["metadata"]["labels"] == {"app": "jp", "extra": "yes"}
    # A failing `test` op rejects the whole patch with 422.
    ops = [
        {"op": "test", "path": "/spec/replicas", "value": 9},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
    ]
    res = server.kubectl(
        "patch",
        "deployment",
        "jp",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(ops),
        check=False,
    )
    assert res.returncode == 1
    assert "The request is invalid" in res.stderr
    assert "testing value /spec/replicas failed: test failed" in res.stderr
    assert get_json(server, "deployment", "jp", "-n", namespace)["spec"]["replicas"] == 4
    # A path that does not exist.
    ops = [{"op": "remove", "path": "/spec/nosuch"}]
    res = server.kubectl(
        "patch",
        "deployment",
        "jp",
        "-n",
        namespace,
        "--type=json",
        "-p",
        json.dumps(ops),
        check=False,
    )
    assert res.returncode == 1
    assert res.stderr.startswith("The request is invalid")
    assert (
        "error in remove for path: '/spec/nosuch': Unable to remove nonexistent key: nosuch: "
        "missing value" in res.stderr
    )


def test_patch_invalid_result_names_fields(server: ServerHandle, namespace: str) -> None:
    apply_text(server, deployment("pv"), "-n", namespace)
    res = server.kubectl(
        "patch",
        "deployment",
        "pv",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"replicas":-3}}',
        check=False,
    )
    assert res.returncode == 1
    assert (
        res.stderr.strip()
        == 'The Deployment "pv" is invalid: spec.replicas: Invalid value: -3: must be greater than or equal to 0'
    )


# ---- label / annotate ----------------------------------------------------------------


def test_label(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("lb", {"a": "1"}), "-n", namespace)
    assert (
        server.kubectl("label", "cm", "lb", "-n", namespace, "team=red").stdout.strip()
        == "configmap/lb labeled"
    )
    res = server.kubectl("label", "cm", "lb", "-n", namespace, "team=blue", check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == "error: 'team' already has a value (red), and --overwrite is false"
    server.kubectl("label", "cm", "lb", "-n", namespace, "team=blue", "--overwrite")
    rows = table(server.kubectl("get", "cm", "lb", "-n", namespace, "--show-labels").stdout)
    assert rows[1][-1] == "team=blue"
    assert (
        server.kubectl("label", "cm", "lb", "-n", namespace, "team-").stdout.strip()
        == "configmap/lb unlabeled"
    )
    assert "labels" not in get_json(server, "cm", "lb", "-n", namespace)["metadata"]
    # Labelling all objects, and an invalid label value.
    apply_text(server, configmap("lb2", {}), "-n", namespace)
    res = server.kubectl("label", "cm", "-n", namespace, "--all", "wave=1")
    assert sorted(res.stdout.split("\n")[:2]) == ["configmap/lb labeled", "configmap/lb2 labeled"]
    # kubectl checks label syntax itself; the server's check answers a raw patch.
    patch = '{"metadata":{"labels":{"bad":"-x-"}}}'
    res = server.kubectl(
        "patch", "cm", "lb", "-n", namespace, "--type=merge", "-p", patch, check=False
    )
    assert res.returncode == 1
    assert res.stderr.startswith(
        'The ConfigMap "lb" is invalid: metadata.labels: Invalid value: "-x-": a valid label must be'
    )


def test_annotate(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("an", {"a": "1"}), "-n", namespace)
    res = server.kubectl("annotate", "cm", "an", "-n", namespace, "note=hello world")
    assert res.stdout.strip() == "configmap/an annotated"
    res = server.kubectl("annotate", "cm", "an", "-n", namespace, "note=bye", check=False)
    assert res.returncode == 1
    assert "'note' already has a value (hello world)" in res.stderr
    server.kubectl("annotate", "cm", "an", "-n", namespace, "note=bye", "--overwrite")
    annotations = get_json(server, "cm", "an", "-n", namespace)["metadata"]["annotations"]
    assert annotations["note"] == "bye"
    server.kubectl("annotate", "cm", "an", "-n", namespace, "note-")
    annotations = get_json(server, "cm", "an", "-n", namespace)["metadata"]["annotations"]
    assert "note" not in annotations
    assert "kubectl.kubernetes.io/last-applied-configuration" in annotations


# ---- scale -------------------------------------------------------------------------


def test_scale_deployment(server: ServerHandle, namespace: str) -> None:
    apply_text(server, deployment("sc", replicas=2), "-n", namespace)
    res = server.kubectl("scale", "deployment", "sc", "-n", namespace, "--replicas=3")
    assert res.stdout.strip() == "deployment.apps/sc scaled"
    obj = get_json(server, "deployment", "sc", "-n", namespace, "--show-managed-fields")
    assert obj["spec"]["replicas"] == 3
    scale_managers = [
        m for m in obj["metadata"]["managedFields"] if m.get("subresource") == "scale"
    ]
    assert [(m["manager"], m["operation"]) for m in scale_managers] == [("kubectl", "Update")]
    assert scale_managers[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    scale = get_json(server, "deployment", "sc", "-n", namespace, "--subresource=scale")
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 3}
    assert scale["status"] == {"replicas": 0, "selector": "app=sc"}
    res = server.kubectl(
        "scale",
        "deployment",
        "sc",
        "-n",
        namespace,
        "--replicas=5",
        "--current-replicas=2",
        check=False,
    )
    assert res.returncode == 1
    assert res.stderr.strip() == "error: Expected replicas to be 2, was 3"
    server.kubectl(
        "scale", "deployment", "sc", "-n", namespace, "--replicas=1", "--current-replicas=3"
    )
    assert get_json(server, "deployment", "sc", "-n", namespace)["spec"]["replicas"] == 1
    res = server.kubectl("scale", "deployment", "sc", "-n", namespace, "--replicas=-1", check=False)
    assert res.returncode == 1


def test_scale_custom_resource(server: ServerHandle, namespace: str) -> None:
    ensure_crd(server)
    apply_text(server, crontab("sc-ct", replicas=2), "-n", namespace)
    res = server.kubectl("scale", "crontab", "sc-ct", "-n", namespace, "--replicas=7")
    assert res.stdout.strip() == "crontab.stable.example.com/sc-ct scaled"
    assert get_json(server, "crontab", "sc-ct", "-n", namespace)["spec"]["replicas"] == 7
    rows = table(server.kubectl("get", "ct", "sc-ct", "-n", namespace).stdout)
    assert rows[1][:3] == ["sc-ct", "*/5 * * * *", "7"]
    res = server.kubectl(
        "scale", "ct", "sc-ct", "-n", namespace, "--replicas=1", "--current-replicas=3", check=False
    )
    assert res.returncode == 1
    assert res.stderr.strip() == "error: Expected replicas to be 3, was 7"
    scale = get_json(server, "crontab", "sc-ct", "-n", namespace, "--subresource=scale")
    assert scale["spec"] == {"replicas": 7}


# ---- delete ------------------------------------------------------------------------


def _not_found(server: ServerHandle, *args: str) -> bool:
    res = server.kubectl("get", *args, check=False)
    return res.returncode == 1 and "NotFound" in res.stderr


def test_delete_waits_for_finalizers(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("del1", {"a": "1"}), "-n", namespace)
    res = server.kubectl("delete", "cm", "del1", "-n", namespace)
    assert res.stdout.strip() == 'configmap "del1" deleted'
    assert _not_found(server, "cm", "del1", "-n", namespace)
    res = server.kubectl("delete", "cm", "del1", "-n", namespace, check=False)
    assert res.returncode == 1
    assert res.stderr.strip() == 'Error from server (NotFound): configmaps "del1" not found'
    assert (
        server.kubectl("delete", "cm", "del1", "-n", namespace, "--ignore-not-found").stdout == ""
    )
    # A finalizer holds the object: `kubectl delete` waits until someone removes it.
    doc = json.loads(configmap("held", {"a": "1"}))
    doc["metadata"]["finalizers"] = ["example.com/hold"]
    apply_text(server, json.dumps(doc), "-n", namespace)
    res = server.kubectl("delete", "cm", "held", "-n", namespace, "--wait=false")
    assert res.stdout.strip() == 'configmap "held" deleted'
    obj = get_json(server, "cm", "held", "-n", namespace)
    assert obj["metadata"]["deletionTimestamp"]
    waiter = kubectl_bg(server, "delete", "cm", "held", "-n", namespace, "--timeout=30s")
    try:
        time.sleep(0.5)
        assert waiter.poll() is None  # still waiting
        server.kubectl(
            "patch",
            "cm",
            "held",
            "-n",
            namespace,
            "--type=json",
            "-p",
            '[{"op":"remove","path":"/metadata/finalizers"}]',
        )
        out, err = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert out.strip() == 'configmap "held" deleted'
    assert _not_found(server, "cm", "held", "-n", namespace)


def test_delete_by_selector_and_all(server: ServerHandle, namespace: str) -> None:
    docs = [
        configmap("d-a", {}, {"grp": "one"}),
        configmap("d-b", {}, {"grp": "one"}),
        configmap("d-c", {}, {"grp": "two"}),
        configmap("d-d", {}),
    ]
    apply_text(server, "".join(f"---\n{d}\n" for d in docs), "-n", namespace)
    res = server.kubectl("delete", "cm", "-n", namespace, "-l", "grp=one")
    assert sorted(res.stdout.splitlines()) == ['configmap "d-a" deleted', 'configmap "d-b" deleted']
    names = [r[0] for r in table(server.kubectl("get", "cm", "-n", namespace).stdout)[1:]]
    assert names == ["d-c", "d-d"]
    res = server.kubectl("delete", "cm", "-n", namespace, "--all")
    assert sorted(res.stdout.splitlines()) == ['configmap "d-c" deleted', 'configmap "d-d" deleted']
    res = server.kubectl("get", "cm", "-n", namespace)
    assert (
        res.stdout == "" and res.stderr.strip() == f"No resources found in {namespace} namespace."
    )


def test_delete_namespace_empties_it(server: ServerHandle) -> None:
    ensure_crd(server)
    ns = unique("kdel")
    apply_text(server, f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n")
    apply_text(server, configmap("c1", {"a": "1"}), "-n", ns)
    apply_text(server, deployment("d1"), "-n", ns)
    apply_text(server, crontab("ct1"), "-n", ns)
    res = server.kubectl("delete", "namespace", ns, "--timeout=60s", timeout=90)
    assert res.stdout.strip() == f'namespace "{ns}" deleted'
    # kubectl returned only once the namespace was gone, and its contents with it.
    assert _not_found(server, "namespace", ns)
    for kind in ("configmaps", "deployments", "crontabs"):
        res = server.kubectl("get", kind, "-n", ns)
        assert res.stdout == "", kind
    # Creating in a terminating namespace is refused; test with one held by a finalizer.
    ns2 = unique("kdel")
    apply_text(server, f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns2}\n")
    doc = json.loads(configmap("pin", {}))
    doc["metadata"]["finalizers"] = ["example.com/hold"]
    apply_text(server, json.dumps(doc), "-n", ns2)
    server.kubectl("delete", "namespace", ns2, "--wait=false")
    phase = get_json(server, "namespace", ns2)["status"]["phase"]
    assert phase == "Terminating"
    rows = table(server.kubectl("get", "namespace", ns2).stdout)
    assert rows[1][:2] == [ns2, "Terminating"]
    res = apply_text(server, configmap("late", {}), "-n", ns2, check=False)
    assert res.returncode == 1
    assert (
        f"unable to create new content in namespace {ns2} because it is being terminated"
        in res.stderr
    )
    server.kubectl(
        "patch", "cm", "pin", "-n", ns2, "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    server.kubectl("wait", "--for=delete", f"namespace/{ns2}", "--timeout=30s", timeout=60)
    assert _not_found(server, "namespace", ns2)


def test_delete_immortal_namespace_refused(server: ServerHandle) -> None:
    res = server.kubectl("delete", "namespace", "default", check=False)
    assert res.returncode == 1
    assert 'namespaces "default" is forbidden: this namespace may not be deleted' in res.stderr


# ---- wait --------------------------------------------------------------------------


def test_wait_for_jsonpath(server: ServerHandle, namespace: str) -> None:
    apply_text(server, deployment("wj", replicas=1), "-n", namespace)
    _later(0.5, server.kubectl, "scale", "deployment", "wj", "-n", namespace, "--replicas=3")
    res = server.kubectl(
        "wait",
        "deployment/wj",
        "-n",
        namespace,
        "--for=jsonpath={.spec.replicas}=3",
        "--timeout=30s",
    )
    assert res.stdout.strip() == "deployment.apps/wj condition met"
    res = server.kubectl(
        "wait",
        "deployment/wj",
        "-n",
        namespace,
        "--for=jsonpath={.spec.replicas}=4",
        "--timeout=1s",
        check=False,
    )
    assert res.returncode == 1
    assert "timed out waiting for the condition on deployments/wj" in res.stderr


def test_wait_for_delete(server: ServerHandle, namespace: str) -> None:
    apply_text(server, configmap("wd", {"a": "1"}), "-n", namespace)
    _later(0.5, server.kubectl, "delete", "cm", "wd", "-n", namespace, "--wait=false")
    res = server.kubectl("wait", "cm/wd", "-n", namespace, "--for=delete", "--timeout=30s")
    assert res.stdout.strip() == "configmap/wd condition met"
    assert _not_found(server, "cm", "wd", "-n", namespace)
    # Waiting for an object that is already gone succeeds at once.
    res = server.kubectl("wait", "cm/wd", "-n", namespace, "--for=delete", "--timeout=5s")
    assert res.returncode == 0
