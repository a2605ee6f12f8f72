"""ReplicaSets and ReplicationControllers on simulated nodes: pods from the template,
events, status, scale, self-healing, adoption and release; and upstream's order of
deletion and slow-start batches as pure functions."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from k3py.client.resources import REPLICASETS
from k3py.server.controllers import podcontrol
from k3py.server.controllers.replicaset import calculate_status
from tests.control.conftest import ClusterHandle

Obj = dict[str, Any]


def pod_spec(**extra: Any) -> Obj:
    spec: Obj = {"containers": [{"name": "app", "image": "nginx:1.27"}], **extra}

    return spec


def replicaset(name: str, *, replicas: int = 3, min_ready: int = 0) -> str:
    return json.dumps({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name, "tier": "x"}}, "spec": pod_spec()},
        },
    })  # fmt: skip


def bare_pod(name: str, labels: dict[str, str]) -> str:
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": pod_spec(),
    })  # fmt: skip


def pods(cluster: ClusterHandle, ns: str, selector: str) -> list[Obj]:
    return cluster.get_json("pods", "-n", ns, "-l", selector)["items"]  # type: ignore[no-any-return]


def live(items: list[Obj]) -> list[Obj]:
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def status(cluster: ClusterHandle, ns: str, kind: str, name: str) -> Obj:
    return cluster.get_json(kind, name, "-n", ns).get("status", {})  # type: ignore[no-any-return]


def ready(cluster: ClusterHandle, ns: str, kind: str, name: str, n: int) -> bool:
    st = status(cluster, ns, kind, name)
    return (
        st.get("replicas") == n
        and st.get("readyReplicas", 0) == n
        and (st.get("availableReplicas", 0) == n)
    )


def events(cluster: ClusterHandle, ns: str, reason: str) -> list[Obj]:
    return [e for e in cluster.get_json("events", "-n", ns)["items"] if e.get("reason") == reason]


# ---- pure functions ---------------------------------------------------------------------


def _pod(name: str, *, node: str = "n1", phase: str = "Running", ready: bool = True,
         created: str = "2026-01-01T00:00:00Z", ready_at: str = "2026-01-01T00:00:10Z") -> Obj:  # fmt: skip
    return {
        "metadata": {"name": name, "uid": name, "creationTimestamp": created},
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                            "lastTransitionTime": ready_at}],
        },
    }  # fmt: skip


def test_deletion_order_is_upstreams() -> None:
    now = 1_800_000_000.0
    ranked = podcontrol.rank_for_deletion(
        [
            _pod("old-ready", created="2026-01-01T00:00:00Z"),
            _pod("unassigned", node="", phase="Pending", ready=False),
            _pod("new-ready", created="2027-01-01T00:00:00Z", ready_at="2027-01-01T00:00:10Z"),
            _pod("pending", phase="Pending", ready=False),
            _pod("not-ready", ready=False),
        ],
        related=[],
        now=now,
    )
    assert [p["metadata"]["name"] for p in ranked] == [
        "unassigned", "pending", "not-ready", "new-ready", "old-ready",
    ]  # fmt: skip
    # doubled up on a node (with related pods of sibling sets) goes first
    crowded = [_pod("alone", node="a"), _pod("crowded", node="b")]
    related = [*crowded, _pod("sib1", node="b"), _pod("sib2", node="b")]
    victims = podcontrol.pods_to_delete(crowded, count=1, related=related, now=now)
    assert [p["metadata"]["name"] for p in victims] == ["crowded"]


async def test_slow_start_batches_stop_at_first_failure() -> None:
    calls: list[int] = []

    async def ok() -> None:
        calls.append(1)

    assert await podcontrol.slow_start_batch(10, ok) == (10, None)
    assert len(calls) == 10  # batches 1, 2, 4, 3

    n = 0

    async def fail_from_4th() -> None:
        nonlocal n
        n += 1
        await asyncio.sleep(0)
        if n >= 4:
            raise RuntimeError("quota")

    done, err = await podcontrol.slow_start_batch(100, fail_from_4th)
    assert (done, str(err)) == (3, "quota") and n == 7  # 1 + 2 + a failed batch of 4


def test_expectations_count_a_deleted_pod_once() -> None:
    e = podcontrol.ControllerExpectations()
    e.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    e.deletion_observed("ns/rs", "ns/a")  # seen terminating
    e.deletion_observed("ns/rs", "ns/a")  # then gone
    assert not e.satisfied("ns/rs")
    e.deletion_observed("ns/rs", "ns/b")
    e.expect_creations("ns/rs", 2)
    e.creation_observed("ns/rs")
    assert not e.satisfied("ns/rs")
    e.creation_observed("ns/rs")
    assert e.satisfied("ns/rs")


def test_status_reports_replica_failure() -> None:
    rs = {"metadata": {"generation": 2}, "spec": {"replicas": 2, "template": {}}}
    st = calculate_status(rs, [], error=RuntimeError("exceeded quota"), now=0.0, now_rfc="t")
    assert st["replicas"] == 0
    [cond] = st["conditions"]
    assert (cond["type"], cond["reason"], cond["message"]) == (
        "ReplicaFailure", "FailedCreate", "exceeded quota",
    )  # fmt: skip
    rs["status"] = st
    assert "conditions" not in calculate_status(rs, [], error=None, now=0.0, now_rfc="t")


# ---- on the cluster ------------------------------------------------------------------------


def test_replicaset_creates_scales_and_heals(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=replicaset("front", replicas=3))
    cluster.wait_for(lambda: ready(cluster, ns, "rs", "front", 3), what="3 ready replicas")
    st = status(cluster, ns, "rs", "front")
    assert st["fullyLabeledReplicas"] == 3 and st["observedGeneration"] == 1
    items = pods(cluster, ns, "app=front")
    assert all(p["metadata"]["name"].startswith("front-") for p in items)
    refs = [p["metadata"]["ownerReferences"] for p in items]
    assert all(r[0]["kind"] == "ReplicaSet" and r[0]["name"] == "front" and r[0]["controller"]
               for r in refs)  # fmt: skip
    created = {e["message"] for e in events(cluster, ns, "SuccessfulCreate")}
    assert created == {f"Created pod: {p['metadata']['name']}" for p in items}
    assert all(e["source"]["component"] == "replicaset-controller"
               for e in events(cluster, ns, "SuccessfulCreate"))  # fmt: skip

    cluster.kubectl("scale", "-n", ns, "rs/front", "--replicas=1")
    cluster.wait_for(lambda: ready(cluster, ns, "rs", "front", 1), what="1 replica")
    cluster.wait_for(lambda: len(events(cluster, ns, "SuccessfulDelete")) == 2, what="2 deletes")
    [survivor] = live(pods(cluster, ns, "app=front"))
    name = survivor["metadata"]["name"]
    assert all(
        e["message"].startswith("Deleted pod: front-")
        for e in events(cluster, ns, "SuccessfulDelete")
    )

    cluster.kubectl("delete", "pod", "-n", ns, name, "--wait=false")
    cluster.wait_for(
        lambda: (
            [p["metadata"]["name"] for p in live(pods(cluster, ns, "app=front"))]
            not in ([], [name])
            and ready(cluster, ns, "rs", "front", 1)
        ),
        what="a replacement",
    )


def test_adopts_orphans_and_releases_relabelled_pods(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=bare_pod("orphan", {"app": "adopt"}))
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=replicaset("adopt", replicas=2))
    cluster.wait_for(lambda: ready(cluster, ns, "rs", "adopt", 2), what="2 ready replicas")
    items = live(pods(cluster, ns, "app=adopt"))
    assert len(items) == 2 and "orphan" in {p["metadata"]["name"] for p in items}
    orphan = cluster.get_json("pod", "orphan", "-n", ns)
    assert orphan["metadata"]["ownerReferences"][0]["name"] == "adopt"
    assert len(events(cluster, ns, "SuccessfulCreate")) == 1  # only one pod was missing

    cluster.kubectl("label", "pod", "orphan", "-n", ns, "app=gone", "--overwrite")

    def released() -> bool:
        refs = cluster.get_json("pod", "orphan", "-n", ns)["metadata"].get("ownerReferences")
        return not refs and len(live(pods(cluster, ns, "app=adopt"))) == 2

    cluster.wait_for(released, what="the relabelled pod released and replaced")


def test_min_ready_seconds_delays_availability(cluster: ClusterHandle, ns: str) -> None:
    seen: list[tuple[int, int]] = []  # (ready, available) of every status the RS had

    async def follow() -> Any:
        inf = cluster.client().informer(REPLICASETS, namespace=ns)

        def record(*objs: Obj) -> None:
            st = objs[-1].get("status") or {}
            seen.append((st.get("readyReplicas", 0), st.get("availableReplicas", 0)))

        inf.add_handler(on_add=record, on_update=record)
        inf.start()
        await inf.wait_synced()
        return inf

    inf = cluster.call(follow())
    try:
        manifest = replicaset("slowavail", replicas=2, min_ready=2)
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest)
        cluster.wait_for(lambda: ready(cluster, ns, "rs", "slowavail", 2), what="available")
    finally:
        cluster.call(inf.stop())
    assert (2, 0) in seen  # ready first, available only minReadySeconds later


def test_replication_controller(cluster: ClusterHandle, ns: str) -> None:
    rc = {
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "selector": {"app": "legacy"},
            "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": pod_spec()},
        },
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(rc))
    cluster.wait_for(lambda: ready(cluster, ns, "rc", "legacy", 2), what="2 ready RC replicas")
    owners = {p["metadata"]["ownerReferences"][0]["kind"] for p in pods(cluster, ns, "app=legacy")}
    assert owners == {"ReplicationController"}
    cluster.kubectl("scale", "-n", ns, "rc/legacy", "--replicas=3")
    cluster.wait_for(lambda: ready(cluster, ns, "rc", "legacy", 3), what="3 ready RC replicas")
