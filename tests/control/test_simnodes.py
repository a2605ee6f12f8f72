"""Simulated nodes: registration, Leases, pods through their life (Running with an IP,
completion, failure, graceful deletion), and adoption after a server restart."""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import time
from pathlib import Path
from typing import Any

from tests.conftest import stop_server_thread
from tests.control.conftest import ClusterHandle, make_cluster


def _pod(name: str, *, node: str, policy: str = "Always", ann: dict[str, str] | None = None,
         init: bool = False) -> str:  # fmt: skip
    lines = [
        "apiVersion: v1",
        "kind: Pod",
        "metadata:",
        f"  name: {name}",
    ]
    if ann:
        lines.append("  annotations:")
        lines.extend(f'    {k}: "{v}"' for k, v in ann.items())
    lines += [
        "spec:",
        f"  nodeName: {node}",
        f"  restartPolicy: {policy}",
        "  containers:",
        "  - {name: app, image: busybox:1.36, command: [sleep, '1000']}",
        "  - {name: side, image: nginx}",
    ]
    if init:
        lines += ["  initContainers:", "  - {name: setup, image: busybox:1.36}"]
    return "\n".join(lines) + "\n"


def _ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def _is_running(cluster: ClusterHandle, ns: str, name: str) -> bool:
    return _phase(cluster, ns, name) == "Running"


def _phase(cluster: ClusterHandle, ns: str, name: str) -> str:
    pod = cluster.get_json("pod", "-n", ns, name)
    return str(pod.get("status", {}).get("phase", ""))


def _ready(cluster: ClusterHandle, ns: str, name: str) -> dict[str, Any] | None:
    pod: dict[str, Any] = cluster.get_json("pod", "-n", ns, name)
    return pod if _cond(pod, "Ready").get("status") == "True" else None


def _cond(obj: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in obj.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return dict(c)
    return {}


def test_nodes_register_ready_with_capacity_cidr_and_lease(cluster: ClusterHandle) -> None:
    nodes = cluster.wait_for(
        lambda: [n for n in cluster.get_json("nodes")["items"] if n["spec"].get("podCIDR")]
        if all(n["spec"].get("podCIDR") for n in cluster.get_json("nodes")["items"]) else None,
        what="every node with a podCIDR",
    )  # fmt: skip
    assert sorted(n["metadata"]["name"] for n in nodes) == ["sim-0", "sim-1", "sim-2"]
    cidrs = set()
    for n in nodes:
        name = n["metadata"]["name"]
        labels = n["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == name
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["node.kubernetes.io/instance-type"] == "k3py-simulated"
        assert n["metadata"]["annotations"]["k3py.io/simulated"] == "true"
        assert n["status"]["capacity"]["cpu"] == "4"
        assert n["status"]["capacity"]["memory"] == "16Gi"
        assert n["status"]["allocatable"]["pods"] == "110"
        assert _cond(n, "Ready")["status"] == "True"
        assert _cond(n, "MemoryPressure")["status"] == "False"
        assert n["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("simulated://")
        ip = next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
        assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.254.0.0/16")
        net = ipaddress.IPv4Network(n["spec"]["podCIDR"])
        assert net.prefixlen == 24 and net.subnet_of(ipaddress.IPv4Network("10.42.0.0/16"))
        assert n["spec"]["podCIDRs"] == [n["spec"]["podCIDR"]]
        cidrs.add(str(net))
    assert len(cidrs) == 3

    first = cluster.get_json("lease", "-n", "kube-node-lease", "sim-0")
    assert first["spec"]["holderIdentity"] == "sim-0"
    assert first["spec"]["leaseDurationSeconds"] == 4
    assert first["metadata"]["ownerReferences"][0]["kind"] == "Node"
    cluster.wait_for(
        lambda: (
            cluster.get_json("lease", "-n", "kube-node-lease", "sim-0")["spec"]["renewTime"]
            != first["spec"]["renewTime"]
        ),
        what="the Lease renewed",
    )

    out = cluster.kubectl("get", "nodes").stdout
    assert "sim-1" in out and "Ready" in out and "v1.32" in out
    desc = cluster.kubectl("describe", "node", "sim-1").stdout
    assert "kubernetes.io/hostname=sim-1" in desc
    assert "PodCIDR:" in desc and "KubeletReady" in desc


def test_bound_pod_runs_with_ip_from_node_cidr(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=_pod("web", node="sim-1", init=True))
    cluster.wait_for(lambda: _phase(cluster, ns, "web") == "Running", what="web Running")
    pod = cluster.wait_for(lambda: _ready(cluster, ns, "web"), what="web Ready")
    node = cluster.get_json("node", "sim-1")
    st = pod["status"]
    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert st["podIPs"] == [{"ip": st["podIP"]}]
    assert st["hostIP"].startswith("10.254.")
    assert st["qosClass"] == "BestEffort"
    assert st["startTime"]
    for t in ("Initialized", "ContainersReady", "PodScheduled", "PodReadyToStartContainers"):
        assert _cond(pod, t)["status"] == "True", t
    names = [c["name"] for c in st["containerStatuses"]]
    assert names == ["app", "side"]
    for c in st["containerStatuses"]:
        assert c["ready"] is True and c["restartCount"] == 0 and "running" in c["state"]
        assert c["containerID"].startswith("simulated://")
    init = st["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"
    cluster.wait_for(
        lambda: "Started container app" in cluster.kubectl("describe", "pod", "-n", ns, "web").stdout,
        what="kubelet events",
    )  # fmt: skip

    cluster.kubectl("apply", "-n", ns, "-f", "-", input=_pod("web2", node="sim-1"))
    cluster.wait_for(lambda: _phase(cluster, ns, "web2") == "Running", what="web2 Running")
    ip2 = cluster.get_json("pod", "-n", ns, "web2")["status"]["podIP"]
    assert ip2 != st["podIP"]


def test_run_to_completion_pods(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=_pod("job", node="sim-0", policy="Never"))
    cluster.kubectl(
        "apply", "-n", ns, "-f", "-",
        input=_pod("slow", node="sim-0", policy="OnFailure", ann={"k3py.io/simulate-duration": "2s"}),
    )  # fmt: skip
    cluster.kubectl(
        "apply", "-n", ns, "-f", "-",
        input=_pod("bad", node="sim-2", policy="Never", ann={"k3py.io/simulate-exit-code": "3"}),
    )  # fmt: skip
    cluster.wait_for(lambda: _phase(cluster, ns, "job") == "Succeeded", what="job Succeeded")
    pod = cluster.get_json("pod", "-n", ns, "job")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["exitCode"] == 0 and term["reason"] == "Completed"
    assert _cond(pod, "Ready")["status"] == "False"
    assert _cond(pod, "Ready")["reason"] == "PodCompleted"

    cluster.wait_for(lambda: _phase(cluster, ns, "slow") == "Succeeded", what="slow Succeeded")
    term = cluster.get_json("pod", "-n", ns, "slow")["status"]["containerStatuses"][0]["state"]
    ran = _ts(term["terminated"]["finishedAt"]) - _ts(term["terminated"]["startedAt"])
    assert ran == 2.0  # the simulated duration, from the recorded times

    cluster.wait_for(lambda: _phase(cluster, ns, "bad") == "Failed", what="bad Failed")
    term = cluster.get_json("pod", "-n", ns, "bad")["status"]["containerStatuses"][0]["state"]
    assert term["terminated"]["exitCode"] == 3 and term["terminated"]["reason"] == "Error"


def test_graceful_deletion_is_finished(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=_pod("quick", node="sim-2"))
    cluster.kubectl(
        "apply", "-n", ns, "-f", "-",
        input=_pod("linger", node="sim-2", ann={"k3py.io/simulate-termination-delay": "6s"}),
    )  # fmt: skip
    for n in ("quick", "linger"):
        cluster.wait_for(functools.partial(_is_running, cluster, ns, n), what=f"{n} Running")
    # kubectl waits for the pod to be gone: the simulated kubelet finishes the deletion.
    cluster.kubectl("delete", "pod", "-n", ns, "quick", "--timeout=30s")
    assert cluster.kubectl("get", "pod", "-n", ns, "quick", check=False).returncode != 0

    cluster.kubectl("delete", "pod", "-n", ns, "linger", "--wait=false")
    pod = cluster.get_json("pod", "-n", ns, "linger")  # still there: its delay has not passed
    assert pod["metadata"]["deletionTimestamp"]
    cluster.wait_for(
        lambda: cluster.kubectl("get", "pod", "-n", ns, "linger", check=False).returncode != 0,
        what="linger gone",
    )
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector",
                             "involvedObject.name=linger").stdout  # fmt: skip
    assert "Killing" in events and "Stopping container app" in events


def test_restart_adopts_nodes_and_keeps_ips(tmp_path: Path) -> None:
    h = make_cluster(tmp_path, nodes=2)
    try:
        h.wait_for(
            lambda: len([n for n in h.get_json("nodes")["items"] if n["spec"].get("podCIDR")]) == 2,
            what="2 nodes with podCIDRs",
        )
        h.kubectl("apply", "-n", "default", "-f", "-", input=_pod("keep", node="sim-1"))
        h.wait_for(lambda: _phase(h, "default", "keep") == "Running", what="keep Running")
        before = h.get_json("pod", "keep")["status"]["podIP"]
        uids = {n["metadata"]["name"]: n["metadata"]["uid"] for n in h.get_json("nodes")["items"]}
        cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in h.get_json("nodes")["items"]}
    finally:
        stop_server_thread(h)
    time.sleep(0.2)
    h = make_cluster(tmp_path, nodes=2)
    try:
        h.kubectl("apply", "-n", "default", "-f", "-", input=_pod("new", node="sim-1"))
        h.wait_for(lambda: _phase(h, "default", "new") == "Running", what="new Running")
        nodes = h.get_json("nodes")["items"]
        assert {n["metadata"]["name"]: n["metadata"]["uid"] for n in nodes} == uids
        assert {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in nodes} == cidrs
        assert h.get_json("pod", "keep")["status"]["podIP"] == before
        assert h.get_json("pod", "new")["status"]["podIP"] != before
        leases = h.get_json("leases", "-n", "kube-node-lease")["items"]
        assert sorted(x["metadata"]["name"] for x in leases) == ["sim-0", "sim-1"]
    finally:
        stop_server_thread(h)


def test_crash_loop_and_finalizer_pods_end_failed(cluster: ClusterHandle, ns: str) -> None:
    cluster.kubectl(
        "apply", "-n", ns, "-f", "-",
        input=_pod("crash", node="sim-0", policy="OnFailure", ann={"k3py.io/simulate-exit-code": "1"}),
    )  # fmt: skip

    def backing_off() -> bool:
        cs = (
            cluster.get_json("pod", "-n", ns, "crash")
            .get("status", {})
            .get("containerStatuses", [])
        )
        return bool(cs) and cs[0]["restartCount"] >= 1 and \
            cs[0]["state"].get("waiting", {}).get("reason") == "CrashLoopBackOff"  # fmt: skip

    cluster.wait_for(backing_off, what="CrashLoopBackOff")
    pod = cluster.get_json("pod", "-n", ns, "crash")
    assert pod["status"]["phase"] == "Running"
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    assert _cond(pod, "Ready")["status"] == "False"
    assert "CrashLoopBackOff" in cluster.kubectl("get", "pod", "-n", ns, "crash").stdout

    held = _pod("held", node="sim-0").replace(
        "metadata:\n", "metadata:\n  finalizers: [example.com/hold]\n", 1
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=held)
    cluster.wait_for(lambda: _phase(cluster, ns, "held") == "Running", what="held Running")
    cluster.kubectl("delete", "pod", "-n", ns, "held", "--wait=false")
    cluster.wait_for(lambda: _phase(cluster, ns, "held") == "Failed", what="held ends Failed")
    term = cluster.get_json("pod", "-n", ns, "held")["status"]["containerStatuses"][0]["state"]
    assert term["terminated"]["exitCode"] == 143
    cluster.kubectl(
        "patch", "pod", "-n", ns, "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}'
    )
    cluster.wait_for(
        lambda: cluster.kubectl("get", "pod", "-n", ns, "held", check=False).returncode != 0,
        what="held gone",
    )


def test_pod_that_does_not_fit_is_rejected(cluster: ClusterHandle, ns: str) -> None:
    big = _pod("big", node="sim-2").replace(
        "  - {name: side, image: nginx}\n",
        "  - {name: side, image: nginx, resources: {requests: {cpu: '5'}}}\n",
    )
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=big)
    cluster.wait_for(lambda: _phase(cluster, ns, "big") == "Failed", what="big rejected")
    st = cluster.get_json("pod", "-n", ns, "big")["status"]
    assert st["reason"] == "OutOfcpu"
    assert st["message"] == (
        "Pod was rejected: Node didn't have enough resource: cpu, requested: 5000, used: 0, capacity: 4000"
    )


def test_node_ipam_full_then_freed(tmp_path: Path) -> None:
    h = make_cluster(tmp_path, nodes=3, cluster_cidr="10.42.0.0/23")  # room for two /24s
    try:

        def with_cidr() -> list[str]:
            return [
                n["metadata"]["name"]
                for n in h.get_json("nodes")["items"]
                if n["spec"].get("podCIDR")
            ]

        h.wait_for(lambda: len(h.get_json("nodes")["items"]) == 3 and len(with_cidr()) == 2, what="2 of 3 with a podCIDR")  # fmt: skip
        starved = next(n["metadata"]["name"] for n in h.get_json("nodes")["items"] if not n["spec"].get("podCIDR"))  # fmt: skip
        h.wait_for(
            lambda: "CIDRNotAvailable" in h.kubectl("get", "events", "-n", "default", "--field-selector", f"involvedObject.name={starved}").stdout,
            what="CIDRNotAvailable event",
        )  # fmt: skip
        gone = with_cidr()[0]
        freed = h.get_json("node", gone)["spec"]["podCIDR"]
        h.loop.call_soon_threadsafe(h.simulated.stop_node, gone)
        h.kubectl("delete", "node", gone)
        got = h.wait_for(
            lambda: h.get_json("node", starved)["spec"].get("podCIDR"), what="freed range reused"
        )
        assert got == freed
    finally:
        stop_server_thread(h)
