"""Deployments on simulated nodes, driven by the real kubectl: rollout, scale, undo,
restart, pause/resume, Recreate, history limit, progress deadline, proportional scaling,
and a server restart in the middle of a rollout.  Pure rollout arithmetic is checked
against upstream's numbers first."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from k3py.client import Informer
from k3py.client.resources import PODS, REPLICASETS, Resource
from k3py.server.controllers import deployment as dep
from tests.conftest import stop_server_thread
from tests.control.conftest import ClusterHandle, make_cluster

Obj = dict[str, Any]
NEVER_READY = [{"conditionType": "example.com/never"}]  # simulated pods stay not Ready


# ---- manifests and reads ------------------------------------------------------------


def manifest(
    name: str,
    *,
    replicas: int = 3,
    image: str = "nginx:1.27",
    strategy: Obj | None = None,
    gates: list[Obj] | None = None,
    **spec: Any,
) -> str:
    pod_spec: Obj = {"containers": [{"name": "app", "image": image}]}
    if gates:
        pod_spec["readinessGates"] = gates

    body: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
            **({"strategy": strategy} if strategy else {}),
            **spec,
        },
    }
    return json.dumps(body)


def rolling(surge: Any, unavailable: Any) -> Obj:
    return {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
    }


def apply(cluster: ClusterHandle, ns: str, text: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)


def deploy(cluster: ClusterHandle, ns: str, name: str) -> Obj:
    return cluster.get_json("deployment", name, "-n", ns)  # type: ignore[no-any-return]


def replicasets(cluster: ClusterHandle, ns: str, name: str) -> list[Obj]:
    items = cluster.get_json("replicasets", "-n", ns, "-l", f"app={name}")["items"]
    return sorted(items, key=lambda rs: int(rs["metadata"]["annotations"].get(dep.REVISION, 0)))


def rolled_out(cluster: ClusterHandle, ns: str, name: str, *, image: str | None = None) -> bool:
    d = deploy(cluster, ns, name)
    st, n = d.get("status", {}), d["spec"]["replicas"]
    done = (
        st.get("observedGeneration") == d["metadata"]["generation"]
        and st.get("updatedReplicas", 0) == n
        and st.get("replicas", 0) == n
        and st.get("availableReplicas", 0) == n
    )
    tmpl_image = d["spec"]["template"]["spec"]["containers"][0]["image"]
    return done and (image is None or tmpl_image == image)


def wait_rolled_out(cluster: ClusterHandle, ns: str, name: str, **kw: Any) -> None:
    cluster.wait_for(
        lambda: rolled_out(cluster, ns, name, **kw), timeout=60, what=f"{name} rolled out"
    )


def events(cluster: ClusterHandle, ns: str, reason: str) -> list[str]:
    items = cluster.get_json("events", "-n", ns)["items"]
    return [e["message"] for e in items if e.get("reason") == reason]


class Follow:
    """An informer on the server's loop calling ``check(objects)`` after every change."""

    def __init__(
        self, cluster: ClusterHandle, res: Resource, ns: str, check: Callable[[list[Obj]], None]
    ) -> None:
        self.cluster = cluster
        self.errors: list[str] = []

        async def start() -> Informer:
            inf = cluster.client().informer(res, namespace=ns)

            def changed(*_: Any) -> None:
                if not inf.has_synced:
                    return  # the first list arrives one object at a time
                try:
                    check(inf.list())
                except AssertionError as e:
                    self.errors.append(str(e))

            inf.add_handler(on_add=changed, on_update=changed, on_delete=changed)
            inf.start()
            await inf.wait_synced()
            return inf

        self.informer: Informer = cluster.call(start())

    def stop(self) -> list[str]:
        self.cluster.call(self.informer.stop())
        return self.errors


# ---- arithmetic (upstream's numbers) ---------------------------------------------------


def test_fenceposts_round_surge_up_and_unavailable_down() -> None:
    d = json.loads(manifest("x", replicas=10, strategy=rolling("25%", "25%")))
    assert dep.resolve_fenceposts(d) == (3, 2)
    d = json.loads(manifest("x", replicas=1, strategy=rolling(0, "10%")))
    assert dep.resolve_fenceposts(d) == (0, 1)  # both zero: unavailable becomes 1
    d = json.loads(manifest("x", replicas=4, strategy=rolling(2, 1)))
    assert (dep.max_surge(d), dep.max_unavailable(d)) == (2, 1)
    d = json.loads(manifest("x", replicas=4, strategy={"type": "Recreate"}))
    assert (dep.max_surge(d), dep.max_unavailable(d)) == (0, 0)


def test_pod_template_hash_is_stable_and_safe() -> None:
    t = json.loads(manifest("x"))["spec"]["template"]
    h = dep.compute_hash(t, None)
    assert h == dep.compute_hash(json.loads(json.dumps(t)), None)
    assert set(h) <= set(dep.SAFE_ALPHABET) and 1 <= len(h) <= 10
    assert dep.compute_hash(t, 1) != h
    t2 = json.loads(manifest("x", image="nginx:2"))["spec"]["template"]
    assert dep.compute_hash(t2, None) != h


def test_proportions_follow_max_replicas_annotations() -> None:
    d = json.loads(manifest("x", replicas=20, strategy=rolling(3, 2)))
    old = {"metadata": {"annotations": {dep.MAX_REPLICAS: "13"}}, "spec": {"replicas": 8}}
    new = {"metadata": {"annotations": {dep.MAX_REPLICAS: "13"}}, "spec": {"replicas": 5}}
    assert dep.get_proportion(old, d, to_add=10, added=0) == 6
    assert dep.get_proportion(new, d, to_add=10, added=6) == 4


# ---- on the cluster -------------------------------------------------------------------


def test_apply_scale_and_upstream_names(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("web", replicas=3))
    wait_rolled_out(cluster, ns, "web")
    [rs] = replicasets(cluster, ns, "web")
    h = rs["metadata"]["labels"][dep.HASH_LABEL]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", dep.HASH_LABEL: h}
    ann = rs["metadata"]["annotations"]
    assert (ann[dep.REVISION], ann[dep.DESIRED_REPLICAS], ann[dep.MAX_REPLICAS]) == ("1", "3", "4")
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    d = deploy(cluster, ns, "web")
    assert d["metadata"]["annotations"][dep.REVISION] == "1"
    conds = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
    assert conds == {
        "Available": "MinimumReplicasAvailable",
        "Progressing": "NewReplicaSetAvailable",
    }
    pods = cluster.get_json("pods", "-n", ns, "-l", "app=web")["items"]
    assert len(pods) == 3 and all(p["metadata"]["labels"][dep.HASH_LABEL] == h for p in pods)
    assert all(p["metadata"]["name"].startswith(f"web-{h}-") for p in pods)

    cluster.kubectl("scale", "-n", ns, "deployment/web", "--replicas=5")
    wait_rolled_out(cluster, ns, "web")
    cluster.kubectl("scale", "-n", ns, "deployment/web", "--replicas=2")
    cluster.wait_for(
        lambda: deploy(cluster, ns, "web")["status"].get("replicas") == 2, what="2 replicas"
    )
    msgs = cluster.wait_for(
        lambda: (m := events(cluster, ns, "ScalingReplicaSet")) and len(m) >= 3 and m,
        what="scaling events",
    )
    assert f"Scaled up replica set web-{h} from 0 to 3" in msgs
    assert f"Scaled up replica set web-{h} from 3 to 5" in msgs
    assert f"Scaled down replica set web-{h} from 5 to 2" in msgs


def test_rolling_update_stays_within_surge_and_unavailable(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("roll", replicas=4, strategy=rolling(1, 0)))
    wait_rolled_out(cluster, ns, "roll")

    def check_rs(rss: list[Obj]) -> None:
        total = sum(rs["spec"]["replicas"] for rs in rss)
        assert total <= 5, f"replica sets sized {total} > replicas + maxSurge"

    def check_pods(pods: list[Obj]) -> None:
        ready = [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
        ]
        assert len(ready) >= 4, f"only {len(ready)} ready pods (maxUnavailable 0)"

    rs_watch = Follow(cluster, REPLICASETS, ns, check_rs)
    pod_watch = Follow(cluster, PODS, ns, check_pods)
    try:
        cluster.kubectl("set", "image", "-n", ns, "deployment/roll", "app=nginx:1.28")
        out = cluster.kubectl("rollout", "status", "-n", ns, "deployment/roll", "--timeout=60s")
        assert 'deployment "roll" successfully rolled out' in out.stdout
    finally:
        errors = rs_watch.stop() + pod_watch.stop()
    assert errors == []
    old, new = replicasets(cluster, ns, "roll")
    assert old["spec"]["replicas"] == 0 and new["spec"]["replicas"] == 4
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"


def test_history_undo_and_restart(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("hist", replicas=2, image="nginx:1.26"))
    wait_rolled_out(cluster, ns, "hist")
    cluster.kubectl("annotate", "-n", ns, "deployment/hist", "kubernetes.io/change-cause=to 1.27")
    cluster.kubectl("set", "image", "-n", ns, "deployment/hist", "app=nginx:1.27")
    wait_rolled_out(cluster, ns, "hist", image="nginx:1.27")
    out = cluster.kubectl("rollout", "history", "-n", ns, "deployment/hist").stdout
    assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["1", "2"]
    assert "to 1.27" in out

    out = cluster.kubectl("rollout", "undo", "-n", ns, "deployment/hist").stdout
    assert "rolled back" in out
    wait_rolled_out(cluster, ns, "hist", image="nginx:1.26")
    assert deploy(cluster, ns, "hist")["metadata"]["annotations"][dep.REVISION] == "3"
    rss = replicasets(cluster, ns, "hist")
    assert len(rss) == 2  # the first set came back as revision 3
    back = rss[-1]
    assert back["metadata"]["annotations"][dep.REVISION_HISTORY] == "1"
    assert back["spec"]["replicas"] == 2

    cluster.kubectl("rollout", "restart", "-n", ns, "deployment/hist")
    wait_rolled_out(cluster, ns, "hist")
    rss = replicasets(cluster, ns, "hist")
    newest = rss[-1]
    assert (
        "kubectl.kubernetes.io/restartedAt" in newest["spec"]["template"]["metadata"]["annotations"]
    )
    assert newest["metadata"]["annotations"][dep.REVISION] == "4"
    assert [rs["spec"]["replicas"] for rs in rss] == [0, 0, 2]


def test_pause_and_resume(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("pz", replicas=2))
    wait_rolled_out(cluster, ns, "pz")
    cluster.kubectl("rollout", "pause", "-n", ns, "deployment/pz")
    cluster.kubectl("set", "image", "-n", ns, "deployment/pz", "app=nginx:1.28")

    def paused_and_seen() -> bool:
        d = deploy(cluster, ns, "pz")
        prog = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
        return d["status"].get("observedGeneration") == d["metadata"]["generation"] and (
            prog["reason"] == "DeploymentPaused" and prog["status"] == "Unknown"
        )

    cluster.wait_for(paused_and_seen, what="paused condition with the new generation observed")
    assert len(replicasets(cluster, ns, "pz")) == 1  # no rollout while paused
    cluster.kubectl("scale", "-n", ns, "deployment/pz", "--replicas=3")  # scaling still works
    cluster.wait_for(
        lambda: deploy(cluster, ns, "pz")["status"].get("availableReplicas") == 3, what="3"
    )
    assert len(replicasets(cluster, ns, "pz")) == 1

    cluster.kubectl("rollout", "resume", "-n", ns, "deployment/pz")
    wait_rolled_out(cluster, ns, "pz", image="nginx:1.28")
    assert [rs["spec"]["replicas"] for rs in replicasets(cluster, ns, "pz")] == [0, 3]


def test_recreate_removes_old_pods_before_creating_new(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("rec", replicas=3, strategy={"type": "Recreate"}))
    wait_rolled_out(cluster, ns, "rec")
    [first] = replicasets(cluster, ns, "rec")
    old_hash = first["metadata"]["labels"][dep.HASH_LABEL]

    def check(pods: list[Obj]) -> None:
        hashes = {p["metadata"]["labels"].get(dep.HASH_LABEL) for p in pods}
        assert not (old_hash in hashes and len(hashes) > 1), f"old and new pods together: {hashes}"

    watch = Follow(cluster, PODS, ns, check)
    try:
        cluster.kubectl("set", "image", "-n", ns, "deployment/rec", "app=nginx:1.28")
        wait_rolled_out(cluster, ns, "rec", image="nginx:1.28")
    finally:
        errors = watch.stop()
    assert errors == []
    assert [rs["spec"]["replicas"] for rs in replicasets(cluster, ns, "rec")] == [0, 3]


def test_revision_history_limit_deletes_oldest(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("lim", replicas=1, revisionHistoryLimit=1))
    wait_rolled_out(cluster, ns, "lim")
    for tag in ("1.28", "1.29", "1.30"):
        cluster.kubectl("set", "image", "-n", ns, "deployment/lim", f"app=nginx:{tag}")
        wait_rolled_out(cluster, ns, "lim", image=f"nginx:{tag}")
    cluster.wait_for(lambda: len(replicasets(cluster, ns, "lim")) == 2, what="1 old set kept")
    revs = [rs["metadata"]["annotations"][dep.REVISION] for rs in replicasets(cluster, ns, "lim")]
    assert revs == ["3", "4"]


def test_progress_deadline_exceeded(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("slow", replicas=2, gates=NEVER_READY, progressDeadlineSeconds=2))

    def timed_out() -> Obj | None:
        conds = deploy(cluster, ns, "slow").get("status", {}).get("conditions", [])
        return next((c for c in conds if c["reason"] == "ProgressDeadlineExceeded"), None)

    cond = cluster.wait_for(timed_out, what="ProgressDeadlineExceeded")
    assert cond["status"] == "False" and cond["type"] == "Progressing"
    assert "has timed out progressing" in cond["message"]
    avail = next(
        c for c in deploy(cluster, ns, "slow")["status"]["conditions"] if c["type"] == "Available"
    )
    assert avail["reason"] == "MinimumReplicasUnavailable"
    res = cluster.kubectl(
        "rollout", "status", "-n", ns, "deployment/slow", "--timeout=20s", check=False
    )
    assert res.returncode != 0 and "exceeded its progress deadline" in res.stderr


def test_proportional_scaling_during_a_rollout(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("prop", replicas=10, strategy=rolling(3, 2)))
    wait_rolled_out(cluster, ns, "prop")
    apply(cluster, ns, manifest("prop", replicas=10, strategy=rolling(3, 2), gates=NEVER_READY))

    def sizes() -> list[int]:
        return [rs["spec"]["replicas"] for rs in replicasets(cluster, ns, "prop")]

    cluster.wait_for(lambda: sizes() == [8, 5], what="stuck rollout at old 8 / new 5")
    cluster.kubectl("scale", "-n", ns, "deployment/prop", "--replicas=20")
    cluster.wait_for(lambda: sizes() == [14, 9], what="proportional 14 / 9")
    cluster.kubectl("scale", "-n", ns, "deployment/prop", "--replicas=5")
    # 23 → 5 + 3 (14 → 5, 9 → 3), then the rollout goes on: old down to
    # 5 - maxUnavailable 2 = 3 available, the new set up to the surge limit 8 - 3 = 5
    cluster.wait_for(lambda: sizes() == [3, 5], what="old 3 / new 5 after scaling to 5")


def test_deleted_pod_is_replaced(cluster: ClusterHandle, ns: str) -> None:
    apply(cluster, ns, manifest("heal", replicas=2))
    wait_rolled_out(cluster, ns, "heal")
    pods = cluster.get_json("pods", "-n", ns, "-l", "app=heal")["items"]
    victim = pods[0]["metadata"]["name"]
    cluster.kubectl("delete", "pod", "-n", ns, victim, "--wait=false")

    def replaced() -> bool:
        names = {
            p["metadata"]["name"]
            for p in cluster.get_json("pods", "-n", ns, "-l", "app=heal")["items"]
        }
        return victim not in names and len(names) == 2 and rolled_out(cluster, ns, "heal")

    cluster.wait_for(replaced, what="a replacement pod")


def test_server_restart_mid_rollout_finishes(tmp_path: Path) -> None:
    h = make_cluster(tmp_path, nodes=2)
    ns = "default"
    try:
        apply(h, ns, manifest("rs", replicas=6, strategy=rolling(1, 0)))
        wait_rolled_out(h, ns, "rs")
        h.kubectl("set", "image", "-n", ns, "deployment/rs", "app=nginx:1.28")

        def mid() -> bool:
            rss = replicasets(h, ns, "rs")
            return (
                len(rss) == 2 and rss[0]["spec"]["replicas"] > 0 and rss[1]["spec"]["replicas"] > 0
            )

        h.wait_for(mid, every=0.02, what="a rollout in progress")
    finally:
        stop_server_thread(h)
    h = make_cluster(tmp_path, nodes=2)
    try:
        wait_rolled_out(h, ns, "rs", image="nginx:1.28")
        old, new = replicasets(h, ns, "rs")
        assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 6)
        pods = h.wait_for(
            lambda: len(ps := h.get_json("pods", "-n", ns, "-l", "app=rs")["items"]) == 6 and ps,
            what="6 pods (old ones gone)",
        )
        assert all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)
        assert deploy(h, ns, "rs")["metadata"]["annotations"][dep.REVISION] == "2"
    finally:
        stop_server_thread(h)


def test_adopts_a_matching_orphan_replicaset(cluster: ClusterHandle, ns: str) -> None:
    d = json.loads(manifest("orph", replicas=2))
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "orph-by-hand", "labels": {"app": "orph"}},
        "spec": {
            "replicas": 2,
            "selector": d["spec"]["selector"],
            "template": d["spec"]["template"],
        },
    }
    apply(cluster, ns, json.dumps(rs))
    cluster.wait_for(
        lambda: (
            cluster.get_json("rs", "orph-by-hand", "-n", ns).get("status", {}).get("readyReplicas")
            == 2
        ),
        what="the hand-made set ready",
    )
    apply(cluster, ns, json.dumps(d))
    wait_rolled_out(cluster, ns, "orph")
    [only] = replicasets(cluster, ns, "orph")  # adopted as the new set: no second one
    assert only["metadata"]["name"] == "orph-by-hand"
    assert only["metadata"]["ownerReferences"][0]["name"] == "orph"
    assert only["metadata"]["annotations"][dep.REVISION] == "1"
