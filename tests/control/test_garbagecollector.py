"""Garbage collector, driven by the real kubectl: ``kubectl delete --cascade=background|
foreground|orphan`` on objects linked by ownerReferences made by hand (ConfigMaps,
Secrets, custom resources), with only the collector running, so nothing else deletes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from k3py.server.controllers.garbagecollector import CONTROLLERS
from tests.conftest import server_config, start_server_thread, stop_server_thread
from tests.control.conftest import ClusterHandle, start_only


@pytest.fixture(scope="module")
def gc_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    data = tmp_path_factory.mktemp("k3py-gc")
    cfg = server_config(
        data, disable_controller_manager=True, disable_scheduler=True,
        kube_controller_manager_arg=["gc-resync-period=1s"],
    )  # fmt: skip
    h = ClusterHandle(**start_server_thread(cfg).__dict__)
    os.environ.setdefault("KUBECACHEDIR", str(data / "kubecache"))
    h.gc_manager = start_only(h, list(CONTROLLERS))  # type: ignore[attr-defined]
    try:
        yield h
    finally:
        h.call(h.gc_manager.stop())  # type: ignore[attr-defined]
        stop_server_thread(h)


_n = iter(range(1, 10_000))


@pytest.fixture
def ns(gc_cluster: ClusterHandle) -> str:
    name = f"gc{next(_n)}"
    gc_cluster.kubectl("create", "namespace", name)
    return name


def get(h: ClusterHandle, *args: str) -> Any:
    r = h.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def cm(h: ClusterHandle, ns: str, name: str, *owners: dict[str, Any], block: bool = False,
       finalizers: list[str] | None = None, kind: str = "ConfigMap") -> dict[str, Any]:  # fmt: skip
    """Create a ConfigMap (or Secret) owned by ``owners`` (objects as kubectl returns them)."""
    m: dict[str, Any] = {"name": name}
    if owners:
        m["ownerReferences"] = [ref(o, block=block) for o in owners]
    if finalizers:
        m["finalizers"] = finalizers
    body = {"apiVersion": "v1", "kind": kind, "metadata": m}
    h.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(body))
    out: dict[str, Any] = get(h, kind.lower(), name, "-n", ns)
    return out


def ref(owner: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "blockOwnerDeletion": block,
    }  # fmt: skip


def gone(h: ClusterHandle, ns: str, *names: str, kind: str = "cm") -> bool:
    return all(get(h, kind, n, "-n", ns) is None for n in names)


def test_background_cascades_down_a_chain(gc_cluster: ClusterHandle, ns: str) -> None:
    h = gc_cluster
    top = cm(h, ns, "top")
    mid = cm(h, ns, "mid", top)
    cm(h, ns, "leaf", mid)
    secret = cm(h, ns, "sec", top, kind="Secret")
    cm(h, ns, "unrelated")
    h.kubectl("delete", "cm", "top", "-n", ns, "--cascade=background")
    h.wait_for(lambda: gone(h, ns, "mid", "leaf"), what="mid and leaf collected")
    h.wait_for(lambda: gone(h, ns, "sec", kind="secret"), what="secret collected")
    assert secret["metadata"]["ownerReferences"][0]["uid"] == top["metadata"]["uid"]
    assert get(h, "cm", "unrelated", "-n", ns) is not None


def test_foreground_waits_for_blocking_dependents(gc_cluster: ClusterHandle, ns: str) -> None:
    h = gc_cluster
    owner = cm(h, ns, "owner")
    # a blocking dependent held by a finalizer of its own, and a non-blocking one
    cm(h, ns, "blocker", owner, block=True, finalizers=["example.com/hold"])
    cm(h, ns, "free", owner, block=False)
    h.kubectl("delete", "cm", "owner", "-n", ns, "--cascade=foreground", "--wait=false")
    o = h.wait_for(lambda: (o := get(h, "cm", "owner", "-n", ns)) and o["metadata"].get("deletionTimestamp") and o,
                   what="owner marked")  # fmt: skip
    assert "foregroundDeletion" in o["metadata"]["finalizers"]
    h.wait_for(lambda: gone(h, ns, "free"), what="non-blocking dependent deleted")
    b = h.wait_for(lambda: (b := get(h, "cm", "blocker", "-n", ns)) and b["metadata"].get("deletionTimestamp") and b,
                   what="blocker being deleted")  # fmt: skip
    assert b["metadata"]["finalizers"] == ["example.com/hold"]
    # the owner stays while its blocking dependent exists
    assert get(h, "cm", "owner", "-n", ns) is not None
    h.kubectl("patch", "cm", "blocker", "-n", ns, "--type=merge",
              "-p", '{"metadata":{"finalizers":null}}')  # fmt: skip
    h.wait_for(lambda: gone(h, ns, "blocker", "owner"), what="blocker then owner gone")


def test_foreground_chain_with_kubectl_waiting(gc_cluster: ClusterHandle, ns: str) -> None:
    h = gc_cluster
    a = cm(h, ns, "a")
    b = cm(h, ns, "b", a, block=True)
    cm(h, ns, "c", b, block=True)
    # kubectl waits until the owner is gone, which needs the whole chain gone first
    h.kubectl("delete", "cm", "a", "-n", ns, "--cascade=foreground", "--timeout=60s")
    assert gone(h, ns, "a", "b", "c")


def test_orphan_keeps_dependents_and_drops_the_reference(
    gc_cluster: ClusterHandle, ns: str
) -> None:
    h = gc_cluster
    owner = cm(h, ns, "owner")
    other = cm(h, ns, "other")
    cm(h, ns, "dep", owner, other, block=True)
    cm(h, ns, "dep2", owner)
    h.kubectl("delete", "cm", "owner", "-n", ns, "--cascade=orphan")
    assert get(h, "cm", "owner", "-n", ns) is None  # kubectl waited for it
    dep = get(h, "cm", "dep", "-n", ns)
    assert [r["name"] for r in dep["metadata"]["ownerReferences"]] == ["other"]
    dep2 = get(h, "cm", "dep2", "-n", ns)
    assert "ownerReferences" not in dep2["metadata"]
    # the orphans stay (a look after the collector had its chance)
    h.kubectl("delete", "cm", "other", "-n", ns)  # dep goes with it, dep2 has no owner now
    h.wait_for(lambda: gone(h, ns, "dep"), what="dep collected with other")
    assert get(h, "cm", "dep2", "-n", ns) is not None


def test_foreground_through_a_cycle(gc_cluster: ClusterHandle, ns: str) -> None:
    """A owns B and B owns A, both blocking: a foreground delete still ends."""
    h = gc_cluster
    a = cm(h, ns, "cyc-a")
    b = cm(h, ns, "cyc-b", a, block=True)
    h.kubectl("patch", "cm", "cyc-a", "-n", ns, "--type=merge",
              "-p", json.dumps({"metadata": {"ownerReferences": [ref(b, block=True)]}}))  # fmt: skip
    h.kubectl("delete", "cm", "cyc-a", "-n", ns, "--cascade=foreground", "--wait=false")
    h.wait_for(lambda: gone(h, ns, "cyc-a", "cyc-b"), what="both members of the cycle gone")


def test_some_owners_left_dangling_reference_removed(gc_cluster: ClusterHandle, ns: str) -> None:
    h = gc_cluster
    o1 = cm(h, ns, "o1")
    o2 = cm(h, ns, "o2")
    cm(h, ns, "shared", o1, o2)
    h.kubectl("delete", "cm", "o1", "-n", ns)
    h.wait_for(
        lambda: (
            [r["name"] for r in get(h, "cm", "shared", "-n", ns)["metadata"]["ownerReferences"]]
            == ["o2"]
        ),
        what="dangling reference to o1 removed",
    )
    h.kubectl("delete", "cm", "o2", "-n", ns)
    h.wait_for(lambda: gone(h, ns, "shared"), what="shared collected with its last owner")


def test_owner_that_never_existed(gc_cluster: ClusterHandle, ns: str) -> None:
    h = gc_cluster
    ghost = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "ghost", "uid": "3c6b6c55-0000-4000-8000-000000000001"}}  # fmt: skip
    cm(h, ns, "haunted", ghost)
    # same name, other uid: still dangling
    real = cm(h, ns, "real")
    impostor = {
        **real,
        "metadata": {**real["metadata"], "uid": "3c6b6c55-0000-4000-8000-000000000002"},
    }
    cm(h, ns, "fooled", impostor)
    # an owner of a kind nobody serves: never deleted on a guess
    alien = {"apiVersion": "nowhere.example.com/v1", "kind": "Thing",
             "metadata": {"name": "x", "uid": "3c6b6c55-0000-4000-8000-000000000003"}}  # fmt: skip
    cm(h, ns, "kept", alien)
    h.wait_for(lambda: gone(h, ns, "haunted", "fooled"), what="dependents of absent owners deleted")
    assert get(h, "cm", "real", "-n", ns) is not None
    assert get(h, "cm", "kept", "-n", ns) is not None


CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.gc.example.com}
spec:
  group: gc.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"""


def test_custom_resources_as_owners_and_dependents(gc_cluster: ClusterHandle, ns: str) -> None:
    h = gc_cluster
    h.kubectl("apply", "-f", "-", input=CRD)
    h.wait_for(lambda: h.kubectl("get", "widgets", "-n", ns, check=False).returncode == 0,
               what="widgets served")  # fmt: skip
    h.kubectl(
        "apply",
        "-n",
        ns,
        "-f",
        "-",
        input="apiVersion: gc.example.com/v1\nkind: Widget\nmetadata: {name: w1}\n",
    )
    w1 = get(h, "widget", "w1", "-n", ns)
    cm(h, ns, "of-widget", w1, block=True)
    owner = cm(h, ns, "widget-owner")
    body = {"apiVersion": "gc.example.com/v1", "kind": "Widget",
            "metadata": {"name": "w2", "ownerReferences": [ref(owner)]}}  # fmt: skip
    h.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(body))
    h.kubectl("delete", "widget", "w1", "-n", ns, "--cascade=foreground", "--timeout=60s")
    assert gone(h, ns, "of-widget")
    h.kubectl("delete", "cm", "widget-owner", "-n", ns)
    h.wait_for(lambda: gone(h, ns, "w2", kind="widget"), what="widget w2 collected")


def test_cluster_scoped_owner(gc_cluster: ClusterHandle, ns: str) -> None:
    h = gc_cluster
    h.kubectl("create", "clusterrole", f"{ns}-owner", "--verb=get", "--resource=pods")
    role = get(h, "clusterrole", f"{ns}-owner")
    cm(h, ns, "of-clusterrole", role)
    body = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": f"{ns}-dep", "ownerReferences": [ref(role)]}}  # fmt: skip
    h.kubectl("create", "-f", "-", input=json.dumps(body))
    h.kubectl("delete", "clusterrole", f"{ns}-owner")
    h.wait_for(lambda: gone(h, ns, "of-clusterrole"), what="namespaced dependent collected")
    h.wait_for(lambda: get(h, "clusterrole", f"{ns}-dep") is None, what="cluster-scoped dependent")


def test_work_left_while_the_collector_was_down(gc_cluster: ClusterHandle, ns: str) -> None:
    """A new leadership term (or a restart) finds what happened meanwhile."""
    h = gc_cluster
    gone_owner = cm(h, ns, "gone-owner")
    cm(h, ns, "left-behind", gone_owner)
    orphaner = cm(h, ns, "orphaner")
    cm(h, ns, "orphan", orphaner)
    fg = cm(h, ns, "fg")
    cm(h, ns, "fg-dep", fg, block=True)
    mgr = h.gc_manager  # type: ignore[attr-defined]
    h.call(mgr.stop())
    try:
        h.kubectl("delete", "cm", "gone-owner", "-n", ns, "--cascade=background")
        h.kubectl("delete", "cm", "orphaner", "-n", ns, "--cascade=orphan", "--wait=false")
        h.kubectl("delete", "cm", "fg", "-n", ns, "--cascade=foreground", "--wait=false")
        assert get(h, "cm", "left-behind", "-n", ns) is not None
    finally:
        h.gc_manager = start_only(h, list(CONTROLLERS))  # type: ignore[attr-defined]
    h.wait_for(lambda: gone(h, ns, "left-behind"), what="dependent of a deleted owner")
    h.wait_for(lambda: gone(h, ns, "orphaner", "fg", "fg-dep"), what="orphan and foreground done")
    assert "ownerReferences" not in get(h, "cm", "orphan", "-n", ns)["metadata"]


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx}]
"""


def _owned(h: ClusterHandle, ns: str, kind: str, owner_kind: str) -> list[dict[str, Any]]:
    items = h.get_json(kind, "-n", ns)["items"]
    return [
        o for o in items
        if any(r["kind"] == owner_kind for r in o["metadata"].get("ownerReferences", []))
    ]  # fmt: skip


def test_deployment_cascades(cluster: ClusterHandle) -> None:
    """With the whole control plane: a Deployment's ReplicaSet and pods go with it
    (foreground: kubectl waits for all of them), or stay behind (orphan)."""
    h = cluster
    ns = "gc-deploy"
    h.kubectl("create", "namespace", ns)
    h.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT)
    h.wait_for(lambda: len(_owned(h, ns, "pods", "ReplicaSet")) == 3, timeout=60, what="3 pods")
    h.kubectl("delete", "deployment", "web", "-n", ns, "--cascade=foreground", "--timeout=60s")
    assert h.get_json("replicasets", "-n", ns)["items"] == []
    h.wait_for(lambda: not h.get_json("pods", "-n", ns)["items"], timeout=60, what="pods gone")

    h.kubectl("apply", "-n", ns, "-f", "-", input=DEPLOYMENT)
    h.wait_for(lambda: len(_owned(h, ns, "pods", "ReplicaSet")) == 3, timeout=60, what="3 pods")
    h.kubectl("delete", "deployment", "web", "-n", ns, "--cascade=orphan")
    (rs,) = h.get_json("replicasets", "-n", ns)["items"]
    assert "ownerReferences" not in rs["metadata"]
    assert len(_owned(h, ns, "pods", "ReplicaSet")) == 3
    # background (kubectl's default): the ReplicaSet goes, then its pods
    h.kubectl("delete", "replicaset", rs["metadata"]["name"], "-n", ns)
    h.wait_for(lambda: not h.get_json("pods", "-n", ns)["items"], timeout=60, what="pods gone")
