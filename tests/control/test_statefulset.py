"""StatefulSets on simulated nodes, driven by kubectl: ordered start, stable identities,
claims per ordinal and their retention policy, scale-down order, rolling updates with a
partition, OnDelete, Parallel, failed pods, rollout status/history/undo."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from k3py.client.resources import PODS
from tests.conftest import stop_server_thread
from tests.control.conftest import ClusterHandle, make_cluster

Obj = dict[str, Any]


def sts_manifest(
    name: str = "web",
    *,
    replicas: int = 3,
    image: str = "nginx:1.25",
    policy: str = "OrderedReady",
    claims: bool = True,
    retention: Obj | None = None,
    strategy: Obj | None = None,
    node_selector: Obj | None = None,
    extra: Obj | None = None,
) -> str:
    spec: Obj = {
        "serviceName": f"{name}-svc",
        "replicas": replicas,
        "podManagementPolicy": policy,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "containers": [{"name": "main", "image": image}],
                "terminationGracePeriodSeconds": 0,
            },
        },
    }
    if node_selector:
        spec["template"]["spec"]["nodeSelector"] = node_selector
    if claims:
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        ]
    if retention:
        spec["persistentVolumeClaimRetentionPolicy"] = retention
    if strategy:
        spec["updateStrategy"] = strategy
    spec.update(extra or {})
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-svc"},
        "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"port": 80}]},
    }
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name}, "spec": spec}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [svc, sts]})


class PodLog:
    """Every watch event on the pods of a namespace, in order, recorded from the start."""

    def __init__(self, cluster: ClusterHandle, ns: str) -> None:
        self.events: list[tuple[str, Obj]] = []
        self._started = asyncio.Event()
        self._future = asyncio.run_coroutine_threadsafe(self._run(cluster, ns), cluster.loop)
        cluster.call(self._wait_started())

    async def _wait_started(self) -> None:
        await asyncio.wait_for(self._started.wait(), 10)

    async def _run(self, cluster: ClusterHandle, ns: str) -> None:
        client = cluster.client()
        rv = (await client.list(PODS, namespace=ns)).resource_version
        stream = client.watch(PODS, namespace=ns, resource_version=rv)
        self._started.set()
        try:
            async for ev in stream:
                self.events.append((ev.type, ev.object))
        finally:
            await stream.aclose()

    def stop(self) -> None:
        self._future.cancel()

    def first(self, pred: Any) -> int:
        """Index of the first event whose (type, pod) satisfies ``pred`` (-1: none)."""
        for i, (t, pod) in enumerate(list(self.events)):
            if pred(t, pod):
                return i
        return -1


def _name(pod: Obj) -> str:
    return str(pod["metadata"]["name"])


def _ready(pod: Obj) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _deleting(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def _gone(event_type: str, pod: Obj) -> bool:
    return event_type == "DELETED" or _deleting(pod)


def _seconds(timestamp: str) -> int:
    return int(dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())


def pods(cluster: ClusterHandle, ns: str, selector: str) -> dict[str, Obj]:
    items = cluster.get_json("pods", "-n", ns, "-l", selector)["items"]
    return {_name(p): p for p in items}


def live_pods(cluster: ClusterHandle, ns: str, selector: str) -> dict[str, Obj]:
    return {n: p for n, p in pods(cluster, ns, selector).items() if not _deleting(p)}


def sts_status(cluster: ClusterHandle, ns: str, name: str) -> Obj:
    return cluster.get_json("sts", name, "-n", ns).get("status") or {}


def pvc_names(cluster: ClusterHandle, ns: str) -> set[str]:
    items = cluster.get_json("pvc", "-n", ns)["items"]
    return {p["metadata"]["name"] for p in items if not p["metadata"].get("deletionTimestamp")}


def images(cluster: ClusterHandle, ns: str, selector: str) -> dict[str, str]:
    return {
        n: p["spec"]["containers"][0]["image"] for n, p in live_pods(cluster, ns, selector).items()
    }


def apply(cluster: ClusterHandle, ns: str, manifest: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)


def set_partition(cluster: ClusterHandle, ns: str, partition: int) -> None:
    patch = {"spec": {"updateStrategy": {"rollingUpdate": {"partition": partition}}}}
    cluster.kubectl("patch", "sts", "web", "-n", ns, "-p", json.dumps(patch))


def rollout_status(cluster: ClusterHandle, ns: str, what: str) -> str:
    return cluster.kubectl("rollout", "status", what, "-n", ns, "--timeout=60s", timeout=90).stdout


def events_of(cluster: ClusterHandle, ns: str, name: str) -> list[tuple[str, str]]:
    items = cluster.get_json("events", "-n", ns)["items"]
    return [(e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == name]


# ---- tests -------------------------------------------------------------------------------


def test_ordered_start_identity_and_claims(cluster: ClusterHandle, ns: str) -> None:
    log = PodLog(cluster, ns)
    try:
        apply(cluster, ns, sts_manifest())
        out = rollout_status(cluster, ns, "sts/web")
        assert "partitioned roll out complete: 3 new pods have been updated" in out
    finally:
        log.stop()
    # Each pod was created only after its predecessor was Ready.
    for k in (1, 2):
        created = log.first(lambda t, p, k=k: t == "ADDED" and _name(p) == f"web-{k}")
        ready_before = log.first(lambda t, p, k=k: _name(p) == f"web-{k - 1}" and _ready(p))
        assert created > ready_before >= 0, (k, created, ready_before)

    st = sts_status(cluster, ns, "web")
    assert st["replicas"] == st["readyReplicas"] == st["availableReplicas"] == 3
    assert st["currentReplicas"] == st["updatedReplicas"] == 3
    assert st["currentRevision"] == st["updateRevision"].strip() != ""
    assert st["observedGeneration"] == 1

    ps = pods(cluster, ns, "app=web")
    assert sorted(ps) == ["web-0", "web-1", "web-2"]
    for i in range(3):
        p = ps[f"web-{i}"]
        labels = p["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert labels["apps.kubernetes.io/pod-index"] == str(i)
        assert labels["controller-revision-hash"] == st["updateRevision"]
        assert p["spec"]["hostname"] == f"web-{i}"
        assert p["spec"]["subdomain"] == "web-svc"
        vols = {v["name"]: v for v in p["spec"]["volumes"]}
        assert vols["data"]["persistentVolumeClaim"]["claimName"] == f"data-web-{i}"
        owner = p["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("StatefulSet", "web", True)

    claims = {c["metadata"]["name"]: c for c in cluster.get_json("pvc", "-n", ns)["items"]}
    assert set(claims) == {"data-web-0", "data-web-1", "data-web-2"}
    assert claims["data-web-0"]["metadata"]["labels"] == {"app": "web"}
    assert not claims["data-web-0"]["metadata"].get("ownerReferences")  # Retain/Retain

    revs = cluster.get_json("controllerrevisions", "-n", ns)["items"]
    assert [r["metadata"]["name"] for r in revs] == [st["updateRevision"]]
    assert revs[0]["revision"] == 1
    assert revs[0]["data"]["spec"]["template"]["$patch"] == "replace"

    cluster.wait_for(
        lambda: (
            ("SuccessfulCreate", "create Pod web-0 in StatefulSet web successful")
            in events_of(cluster, ns, "web")
        ),
        what="SuccessfulCreate event",
    )
    assert ("SuccessfulCreate", "create Claim data-web-1 Pod web-1 in StatefulSet web success") in (
        events_of(cluster, ns, "web")
    )


def test_deleted_pod_comes_back_with_its_name_and_claim(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, sts_manifest(replicas=2))
    rollout_status(cluster, ns, "sts/web")
    old_uid = pods(cluster, ns, "app=web")["web-1"]["metadata"]["uid"]
    cluster.kubectl("delete", "pod", "web-1", "-n", ns, "--wait=false")

    def back() -> Obj | None:
        p = live_pods(cluster, ns, "app=web").get("web-1")
        if p and p["metadata"]["uid"] != old_uid and _ready(p):
            return p
        return None

    p = cluster.wait_for(back, timeout=60, what="web-1 recreated and Ready")
    assert p["spec"]["hostname"] == "web-1"
    assert p["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "data-web-1"
    assert pvc_names(cluster, ns) == {"data-web-0", "data-web-1"}
    cluster.wait_for(
        lambda: sts_status(cluster, ns, "web").get("readyReplicas") == 2, what="2 ready"
    )


def test_scale_down_from_highest_ordinal_and_claim_retention(
    cluster: ClusterHandle, ns: str
) -> None:
    apply(
        cluster,
        ns,
        sts_manifest("del", retention={"whenScaled": "Delete", "whenDeleted": "Retain"}),
    )
    apply(cluster, ns, sts_manifest("keep"))
    rollout_status(cluster, ns, "sts/del")
    rollout_status(cluster, ns, "sts/keep")
    log = PodLog(cluster, ns)
    try:
        cluster.kubectl("scale", "sts/del", "sts/keep", "-n", ns, "--replicas=1")
        cluster.wait_for(
            lambda: set(pods(cluster, ns, "app in (del,keep)")) == {"del-0", "keep-0"},
            timeout=60,
            what="both sets down to one pod",
        )
    finally:
        log.stop()
    for app in ("del", "keep"):
        gone2 = log.first(lambda t, p, a=app: _name(p) == f"{a}-2" and _gone(t, p))
        gone1 = log.first(lambda t, p, a=app: _name(p) == f"{a}-1" and _gone(t, p))
        assert 0 <= gone2 < gone1, (app, gone2, gone1)
        # OrderedReady: the next one goes only once the previous one is gone.
        removed2 = log.first(lambda t, p, a=app: t == "DELETED" and _name(p) == f"{a}-2")
        assert 0 <= removed2 < gone1
    # whenScaled: Delete removes the claims of scaled-down ordinals; Retain keeps them.
    cluster.wait_for(
        lambda: (
            pvc_names(cluster, ns) == {"data-del-0", "data-keep-0", "data-keep-1", "data-keep-2"}
        ),
        timeout=60,
        what="claims of del-1 and del-2 deleted",
    )
    # Scaling back up re-creates the claims (and reuses the kept ones).
    cluster.kubectl("scale", "sts/del", "sts/keep", "-n", ns, "--replicas=2")
    rollout_status(cluster, ns, "sts/del")
    assert {"data-del-1", "data-keep-1"} <= pvc_names(cluster, ns)
    del1 = cluster.get_json("pvc", "data-del-1", "-n", ns)
    assert not del1["metadata"].get("ownerReferences")  # in range again: no pod owner


def test_claims_deleted_with_the_set_when_deleted_delete(cluster: ClusterHandle, ns: str) -> None:
    apply(
        cluster,
        ns,
        sts_manifest("db", replicas=2, retention={"whenScaled": "Retain", "whenDeleted": "Delete"}),
    )
    rollout_status(cluster, ns, "sts/db")
    uid = cluster.get_json("sts", "db", "-n", ns)["metadata"]["uid"]
    for name in ("data-db-0", "data-db-1"):
        refs = cluster.get_json("pvc", name, "-n", ns)["metadata"]["ownerReferences"]
        assert [(r["kind"], r["uid"], r["controller"]) for r in refs] == [
            ("StatefulSet", uid, True)
        ]
    cluster.kubectl("delete", "sts", "db", "-n", ns, "--wait=false")
    cluster.wait_for(lambda: not pvc_names(cluster, ns), timeout=60, what="claims deleted")


def test_rolling_update_with_partition_then_undo(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, sts_manifest(claims=False))
    rollout_status(cluster, ns, "sts/web")
    first_rev = sts_status(cluster, ns, "web")["currentRevision"]
    set_partition(cluster, ns, 2)
    cluster.kubectl("set", "image", "sts/web", "main=nginx:1.26", "-n", ns)
    out = rollout_status(cluster, ns, "sts/web")
    assert "partitioned roll out complete: 1 new pods have been updated" in out
    assert images(cluster, ns, "app=web") == {
        "web-0": "nginx:1.25",
        "web-1": "nginx:1.25",
        "web-2": "nginx:1.26",
    }
    st = sts_status(cluster, ns, "web")
    assert st["currentRevision"] == first_rev != st["updateRevision"]
    assert (st["updatedReplicas"], st["currentReplicas"]) == (1, 2)

    log = PodLog(cluster, ns)
    try:
        set_partition(cluster, ns, 0)
        rollout_status(cluster, ns, "sts/web")
        cluster.wait_for(
            lambda: (
                set(images(cluster, ns, "app=web").values()) == {"nginx:1.26"}
                and sts_status(cluster, ns, "web").get("currentRevision") == st["updateRevision"]
            ),
            timeout=60,
            what="all pods updated",
        )
    finally:
        log.stop()
    gone1 = log.first(lambda t, p: _name(p) == "web-1" and _gone(t, p))
    gone0 = log.first(lambda t, p: _name(p) == "web-0" and _gone(t, p))
    assert 0 <= gone1 < gone0  # highest ordinal first
    new1_ready = log.first(
        lambda t, p: (
            _name(p) == "web-1"
            and _ready(p)
            and not _deleting(p)
            and p["spec"]["containers"][0]["image"] == "nginx:1.26"
        )
    )
    assert 0 <= new1_ready < gone0  # web-1 replaced and Ready before web-0 goes

    hist = cluster.kubectl("rollout", "history", "sts/web", "-n", ns).stdout
    assert [ln.split()[0] for ln in hist.splitlines()[2:] if ln.strip()] == ["1", "2"]
    assert (
        "nginx:1.25"
        in cluster.kubectl("rollout", "history", "sts/web", "-n", ns, "--revision=1").stdout
    )
    undo = cluster.kubectl("rollout", "undo", "sts/web", "-n", ns).stdout
    assert "rolled back" in undo
    rollout_status(cluster, ns, "sts/web")
    cluster.wait_for(
        lambda: (
            set(images(cluster, ns, "app=web").values()) == {"nginx:1.25"}
            and sts_status(cluster, ns, "web").get("currentRevision") == first_rev
        ),
        timeout=60,
        what="rolled back to the first template",
    )
    # The first revision was re-numbered, not copied.
    revs = cluster.get_json("controllerrevisions", "-n", ns)["items"]
    assert {r["metadata"]["name"]: r["revision"] for r in revs}[first_rev] == 3
    assert len(revs) == 2
    skipped = cluster.kubectl("rollout", "undo", "sts/web", "-n", ns, "--to-revision=3").stdout
    assert "skipped rollback (current template already matches revision 3)" in skipped


def test_on_delete_updates_only_deleted_pods(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, sts_manifest(replicas=2, claims=False, strategy={"type": "OnDelete"}))
    cluster.wait_for(
        lambda: sts_status(cluster, ns, "web").get("readyReplicas") == 2, what="2 ready"
    )
    cluster.kubectl("set", "image", "sts/web", "main=nginx:1.26", "-n", ns)
    cluster.wait_for(
        lambda: (
            (s := sts_status(cluster, ns, "web")).get("observedGeneration") == 2
            and s["updateRevision"] != s["currentRevision"]
        ),
        what="new revision observed",
    )
    assert images(cluster, ns, "app=web") == {"web-0": "nginx:1.25", "web-1": "nginx:1.25"}
    assert sts_status(cluster, ns, "web").get("updatedReplicas", 0) == 0
    cluster.kubectl("delete", "pod", "web-0", "-n", ns, "--wait=false")
    cluster.wait_for(
        lambda: images(cluster, ns, "app=web") == {"web-0": "nginx:1.26", "web-1": "nginx:1.25"},
        timeout=60,
        what="web-0 recreated from the new template",
    )
    cluster.wait_for(
        lambda: sts_status(cluster, ns, "web").get("updatedReplicas") == 1, what="1 updated"
    )
    out = cluster.kubectl("rollout", "status", "sts/web", "-n", ns, check=False)
    assert "only available for RollingUpdate strategy type" in out.stderr


def test_parallel_creates_all_pods_without_waiting(cluster: ClusterHandle, ns: str) -> None:
    # Pods that can never be scheduled: OrderedReady stops at web-0, Parallel does not.
    nowhere = {"k3py.test/nowhere": "true"}
    apply(cluster, ns, sts_manifest("par", policy="Parallel", claims=False, node_selector=nowhere))
    apply(cluster, ns, sts_manifest("ord", claims=False, node_selector=nowhere))
    cluster.wait_for(
        lambda: set(pods(cluster, ns, "app=par")) == {"par-0", "par-1", "par-2"},
        what="all Parallel pods created",
    )
    cluster.wait_for(lambda: sts_status(cluster, ns, "ord").get("replicas") == 1, what="ord-0")
    assert set(pods(cluster, ns, "app=ord")) == {"ord-0"}
    # Parallel scale-down removes every condemned pod at once, without waiting.
    cluster.kubectl("scale", "sts/par", "-n", ns, "--replicas=0")
    cluster.wait_for(lambda: not pods(cluster, ns, "app=par"), what="Parallel pods removed")


def test_failed_pod_is_recreated(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, sts_manifest(replicas=1, claims=False))
    rollout_status(cluster, ns, "sts/web")
    pod = pods(cluster, ns, "app=web")["web-0"]
    old_uid = pod["metadata"]["uid"]
    pod["status"]["phase"] = "Failed"
    cluster.call(cluster.client().update_status(PODS, pod))
    cluster.wait_for(
        lambda: (
            (p := live_pods(cluster, ns, "app=web").get("web-0")) is not None
            and p["metadata"]["uid"] != old_uid
            and _ready(p)
        ),
        timeout=60,
        what="web-0 recreated",
    )
    assert any(r == "RecreatingFailedPod" for r, _ in events_of(cluster, ns, "web"))


def test_scale_up_and_status_with_kubectl_scale(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, sts_manifest(replicas=1, claims=False))
    rollout_status(cluster, ns, "sts/web")
    cluster.kubectl("scale", "sts/web", "-n", ns, "--replicas=3")
    rollout_status(cluster, ns, "sts/web")
    st = sts_status(cluster, ns, "web")
    assert (st["replicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3)
    assert st["observedGeneration"] == 2
    assert set(pods(cluster, ns, "app=web")) == {"web-0", "web-1", "web-2"}
    out = cluster.kubectl("get", "sts", "web", "-n", ns).stdout
    assert "3/3" in out


def test_min_ready_seconds_and_start_ordinal(cluster: ClusterHandle, ns: str) -> None:
    apply(
        cluster,
        ns,
        sts_manifest(
            replicas=2, claims=False, extra={"minReadySeconds": 1, "ordinals": {"start": 5}}
        ),
    )
    rollout_status(cluster, ns, "sts/web")
    cluster.wait_for(
        lambda: sts_status(cluster, ns, "web").get("availableReplicas") == 2, what="2 available"
    )
    ps = pods(cluster, ns, "app=web")
    assert sorted(ps) == ["web-5", "web-6"]
    assert ps["web-6"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "6"
    # web-6 was created only once web-5 had been Ready for minReadySeconds.
    ready5 = next(
        c["lastTransitionTime"] for c in ps["web-5"]["status"]["conditions"] if c["type"] == "Ready"
    )
    created6 = ps["web-6"]["metadata"]["creationTimestamp"]
    assert _seconds(created6) >= _seconds(ready5) + 1


def test_rolling_update_max_unavailable(cluster: ClusterHandle, ns: str) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 2}}
    apply(cluster, ns, sts_manifest(claims=False, strategy=strategy))
    rollout_status(cluster, ns, "sts/web")
    log = PodLog(cluster, ns)
    try:
        cluster.kubectl("set", "image", "sts/web", "main=nginx:1.26", "-n", ns)
        cluster.wait_for(
            lambda: (
                set(images(cluster, ns, "app=web").values()) == {"nginx:1.26"}
                and sts_status(cluster, ns, "web").get("readyReplicas") == 3
            ),
            timeout=60,
            what="all pods updated",
        )
    finally:
        log.stop()

    def gone(name: str) -> int:
        return log.first(lambda t, p: _name(p) == name and _gone(t, p))

    first_new_ready = log.first(
        lambda t, p: (
            _ready(p) and not _deleting(p) and p["spec"]["containers"][0]["image"] == "nginx:1.26"
        )
    )
    # Two pods (the highest ordinals) went at once, before any replacement was Ready.
    assert 0 <= gone("web-2") < first_new_ready
    assert 0 <= gone("web-1") < first_new_ready
    assert gone("web-0") > first_new_ready


def test_revision_history_limit_and_orphan_adoption(cluster: ClusterHandle, ns: str) -> None:
    manifest = sts_manifest(replicas=2, claims=False, extra={"revisionHistoryLimit": 1})
    apply(cluster, ns, manifest)
    rollout_status(cluster, ns, "sts/web")
    for tag in ("1.26", "1.27", "1.28"):
        cluster.kubectl("set", "image", "sts/web", f"main=nginx:{tag}", "-n", ns)
        rollout_status(cluster, ns, "sts/web")
    cluster.wait_for(
        lambda: (
            sorted(
                r["revision"] for r in cluster.get_json("controllerrevisions", "-n", ns)["items"]
            )
            == [3, 4]
        ),
        what="history truncated to the live revision and one more",
    )
    # Orphaned pods and revisions are adopted by a new set of the same name and template.
    before = {n: p["metadata"]["uid"] for n, p in live_pods(cluster, ns, "app=web").items()}
    revision = sts_status(cluster, ns, "web")["updateRevision"]
    cluster.kubectl("delete", "sts", "web", "-n", ns, "--cascade=orphan")
    cluster.wait_for(
        lambda: all(
            not p["metadata"].get("ownerReferences") for p in pods(cluster, ns, "app=web").values()
        ),
        what="pods orphaned",
    )
    apply(
        cluster,
        ns,
        sts_manifest(
            replicas=2, claims=False, image="nginx:1.28", extra={"revisionHistoryLimit": 1}
        ),
    )
    uid = cluster.get_json("sts", "web", "-n", ns)["metadata"]["uid"]
    cluster.wait_for(
        lambda: all(
            (p["metadata"].get("ownerReferences") or [{}])[0].get("uid") == uid
            for p in pods(cluster, ns, "app=web").values()
        ),
        what="pods adopted",
    )
    cluster.wait_for(
        lambda: (
            (s := sts_status(cluster, ns, "web")).get("readyReplicas") == 2
            and s.get("currentRevision") == s.get("updateRevision") == revision
        ),
        what="the adopted revision is current",
    )
    after = {n: p["metadata"]["uid"] for n, p in live_pods(cluster, ns, "app=web").items()}
    assert after == before
    revs = cluster.get_json("controllerrevisions", "-n", ns)["items"]
    assert {(r["metadata"].get("ownerReferences") or [{}])[0].get("uid") for r in revs} == {uid}, (
        json.dumps([r["metadata"] for r in revs])
    )


# ---- pure helpers (no cluster) -------------------------------------------------------------


def _set(policy: tuple[str, str], replicas: int = 2) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
        "spec": {
            "replicas": replicas,
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": policy[0],
                "whenScaled": policy[1],
            },
        },
    }


def test_claim_owner_references_follow_the_retention_policy() -> None:
    from k3py.server.controllers.statefulset import claim_owner_refs, claim_owner_up_to_date

    claim: Obj = {"metadata": {"name": "data-web-3", "ownerReferences": []}}
    in_range = {"metadata": {"name": "web-1", "uid": "pod-uid"}}
    scaled_down = {"metadata": {"name": "web-3", "uid": "pod-uid"}}
    cases = {  # (whenDeleted, whenScaled): (owners in range, owners scaled down)
        ("Retain", "Retain"): (set(), set()),
        ("Delete", "Retain"): ({"set-uid"}, {"set-uid"}),
        ("Retain", "Delete"): (set(), {"pod-uid"}),
        ("Delete", "Delete"): ({"set-uid"}, {"pod-uid"}),
    }
    for policy, (want_in, want_down) in cases.items():
        sts = _set(policy)
        for pod, want in ((in_range, want_in), (scaled_down, want_down)):
            refs = claim_owner_refs(claim, sts=sts, pod=pod)
            assert {r["uid"] for r in refs} == want, (policy, pod)
            assert all(r["controller"] for r in refs)
            fixed = {"metadata": {**claim["metadata"], "ownerReferences": refs}}
            assert claim_owner_up_to_date(fixed, sts=sts, pod=pod)
            assert claim_owner_up_to_date(claim, sts=sts, pod=pod) == (not want)
    # Another controller's claim is left alone; a previous set's (other uid) too.
    foreign = {
        "metadata": {
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Foo", "name": "x", "uid": "x", "controller": True}
            ]
        }
    }
    assert claim_owner_up_to_date(foreign, sts=_set(("Delete", "Delete")), pod=in_range)
    stale = {
        "metadata": {
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "old"}
            ]
        }
    }
    assert claim_owner_up_to_date(stale, sts=_set(("Retain", "Retain")), pod=in_range)


def test_revision_data_is_a_replace_patch_kubectl_can_compare() -> None:
    from k3py.client.resources import STATEFULSETS
    from k3py.server.controllers.history import (
        apply_revision,
        equal_revision,
        go_json,
        new_revision,
        revisions_to_truncate,
        template_patch,
    )

    sts = _set(("Retain", "Retain"))
    sts["spec"]["template"] = {
        "metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "m", "image": "a<b>&c"}]},
    }
    raw = template_patch(sts)
    assert raw.startswith(
        b'{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null'
    )
    assert b"a\\u003cb\\u003e\\u0026c" in raw  # Go's HTML-safe escaping
    assert go_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == b'{"a":[1,{"c":3,"d":2}],"b":1}'
    rev = new_revision(sts, owner_res=STATEFULSETS, revision=1, collision_count=0)
    assert rev["metadata"]["name"] == "web-" + rev["metadata"]["labels"]["controller-revision-hash"]
    assert rev["metadata"]["labels"]["app"] == "web"
    assert (
        apply_revision({"spec": {"template": {}}}, rev)["spec"]["template"]
        == sts["spec"]["template"]
    )
    again = new_revision(sts, owner_res=STATEFULSETS, revision=7, collision_count=0)
    assert equal_revision(rev, again)
    bumped = new_revision(sts, owner_res=STATEFULSETS, revision=1, collision_count=1)
    assert bumped["metadata"]["name"] != rev["metadata"]["name"]
    revs = [{"metadata": {"name": f"r{i}", "labels": {}}, "revision": i} for i in (3, 1, 2, 5, 4)]
    doomed = revisions_to_truncate(revs, live={"r5", "r1"}, limit=1)
    assert [r["metadata"]["name"] for r in doomed] == ["r2", "r3"]


def test_rollout_state_survives_a_server_restart(tmp_path: Path) -> None:
    h = make_cluster(tmp_path)
    try:
        h.wait_for(lambda: len(h.get_json("nodes")["items"]) == 3, what="3 nodes")
        h.kubectl("apply", "-f", "-", input=sts_manifest(claims=False))
        rollout_status(h, "default", "sts/web")
        first = sts_status(h, "default", "web")["currentRevision"]
        set_partition(h, "default", 1)
        h.kubectl("set", "image", "sts/web", "main=nginx:1.26")
        rollout_status(h, "default", "sts/web")
        h.wait_for(lambda: sts_status(h, "default", "web").get("updatedReplicas") == 2, what="2")
    finally:
        stop_server_thread(h)
    h = make_cluster(tmp_path)
    try:
        h.wait_for(
            lambda: sts_status(h, "default", "web").get("readyReplicas") == 3, what="3 ready again"
        )
        st = sts_status(h, "default", "web")
        assert st["currentRevision"] == first != st["updateRevision"]
        assert images(h, "default", "app=web") == {
            "web-0": "nginx:1.25",
            "web-1": "nginx:1.26",
            "web-2": "nginx:1.26",
        }
        set_partition(h, "default", 0)
        rollout_status(h, "default", "sts/web")
        h.wait_for(
            lambda: (
                set(images(h, "default", "app=web").values()) == {"nginx:1.26"}
                and sts_status(h, "default", "web").get("currentRevision") == st["updateRevision"]
            ),
            timeout=60,
            what="the rollout finished after the restart",
        )
        revs = h.get_json("controllerrevisions")["items"]
        assert sorted(r["revision"] for r in revs) == [1, 2]
    finally:
        stop_server_thread(h)
