"""NodeAgent against the in-process API (no HTTP) with a fake CRI runtime."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from k3py import GIT_VERSION
from k3py.agent.config import AgentConfig
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.kubelet.node import (
    NodeAgent,
    image_list,
    merge_conditions,
    node_resources,
    parse_duration,
    parse_labels,
    parse_taint,
    runtime_errors,
    same_status,
)
from k3py.client import LEASES, NAMESPACES, NODES

Obj = dict[str, Any]


class FakeCRI:
    def __init__(self) -> None:
        self.network_ready = True
        self.images = [
            cri.Image(id="sha256:a", repo_tags=["k3py.local/pause:3.10"], size=700_000),
            cri.Image(
                id="sha256:b",
                repo_tags=["busybox:1"],
                repo_digests=["busybox@sha256:b"],
                size=2_000_000,
            ),
            cri.Image(id="sha256:c", size=5),  # no names: not reported
        ]

    async def version(self) -> cri.VersionResponse:
        return cri.VersionResponse(
            version="0.1.0", runtime_name="containerd", runtime_version="1.6.20"
        )

    async def status(self) -> cri.StatusResponse:
        net = cri.RuntimeCondition(type="NetworkReady", status=self.network_ready)
        if not self.network_ready:
            net.reason = "NetworkPluginNotReady"
            net.message = "Network plugin returns error: cni plugin not initialized"
        rt = cri.RuntimeCondition(type="RuntimeReady", status=True)
        return cri.StatusResponse(status=cri.RuntimeStatus(conditions=[rt, net]))

    async def list_images(self, filter: cri.ImageFilter | None = None) -> list[cri.Image]:
        return list(self.images)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def agent(env: Any, tmp_path: Path, fake: FakeCRI, *, name: str = "node-a", **kw: Any) -> NodeAgent:
    cfg = AgentConfig(
        data_dir=tmp_path, node_name=name, node_ip="192.168.7.7", kubelet_port=10250,
        node_labels=["team=blue"], node_taints=["dedicated=gpu:NoSchedule"],
        kubelet_arg=kw.pop("kubelet_arg", []),
    )  # fmt: skip
    return NodeAgent(cfg, env.client, fake, **kw)


@pytest.fixture
async def lease_ns(env: Any) -> Any:
    await env.client.create(NAMESPACES, {"metadata": {"name": "kube-node-lease"}})
    return env


async def test_register_creates_node_status_and_lease(lease_ns: Any, tmp_path: Path) -> None:
    env = lease_ns
    fake = FakeCRI()
    node = await agent(env, tmp_path, fake, control_plane=True).register()
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "node-a" and labels["kubernetes.io/os"] == "linux"
    assert labels["kubernetes.io/arch"] in ("amd64", "arm64")
    assert labels["node.kubernetes.io/instance-type"] == "k3py" and labels["team"] == "blue"
    assert labels["node-role.kubernetes.io/control-plane"] == "true"
    assert labels["node-role.kubernetes.io/master"] == "true"
    assert node["spec"]["taints"] == [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]
    st = node["status"]
    assert st["addresses"] == [{"type": "InternalIP", "address": "192.168.7.7"},
                               {"type": "Hostname", "address": "node-a"}]  # fmt: skip
    assert st["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    info = st["nodeInfo"]
    assert info["containerRuntimeVersion"] == "containerd://1.6.20"
    assert info["kubeletVersion"] == GIT_VERSION and info["operatingSystem"] == "linux"
    assert info["bootID"] and info["kernelVersion"] and info["osImage"]
    assert st["capacity"]["pods"] == "110" and st["capacity"]["hugepages-2Mi"] == "0"
    assert int(st["capacity"]["cpu"]) >= 1 and st["capacity"]["memory"].endswith("Ki")
    conds = {c["type"]: c for c in st["conditions"]}
    assert [c["type"] for c in st["conditions"]] == [
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert conds["Ready"]["message"] == "kubelet is posting ready status"
    assert conds["MemoryPressure"]["status"] == "False"
    assert st["images"] == [
        {"names": ["busybox@sha256:b", "busybox:1"], "sizeBytes": 2_000_000},
        {"names": ["k3py.local/pause:3.10"], "sizeBytes": 700_000},
    ]
    lease = await env.client.get(LEASES, "node-a", namespace="kube-node-lease")
    assert (
        lease["spec"]["holderIdentity"] == "node-a" and lease["spec"]["leaseDurationSeconds"] == 40
    )
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    assert lease["metadata"]["ownerReferences"][0]["kind"] == "Node"


async def test_adopt_keeps_pod_cidr_and_taints(lease_ns: Any, tmp_path: Path) -> None:
    env = lease_ns
    await env.client.create(NODES, {"metadata": {"name": "node-a", "labels": {"user": "x"}},
                                    "spec": {"podCIDR": "10.42.3.0/24", "podCIDRs": ["10.42.3.0/24"],
                                             "taints": [{"key": "k", "effect": "NoExecute"}]}})  # fmt: skip
    na = agent(env, tmp_path, FakeCRI())
    node = await na.register()
    assert node["spec"]["podCIDR"] == "10.42.3.0/24"
    assert node["spec"]["taints"] == [
        {"key": "k", "effect": "NoExecute"}
    ]  # --node-taint: creation only
    assert (
        node["metadata"]["labels"]["user"] == "x" and node["metadata"]["labels"]["team"] == "blue"
    )
    assert "node-role.kubernetes.io/control-plane" not in node["metadata"]["labels"]
    assert await na.wait_pod_cidr(timeout=5) == "10.42.3.0/24"


async def test_status_posted_only_on_change_with_transitions(lease_ns: Any, tmp_path: Path) -> None:
    env = lease_ns
    fake = FakeCRI()
    fake.network_ready = False
    clock = Clock()
    na = agent(env, tmp_path, fake, clock=clock)
    await na.register()
    node = await env.client.get(NODES, "node-a")
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "False" and ready["reason"] == "KubeletNotReady"
    assert ready["message"] == (
        "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
        "message:Network plugin returns error: cni plugin not initialized"
    )
    t0 = ready["lastTransitionTime"]
    assert na.posts == 1
    clock.now += 30
    await na.update_status()
    assert na.posts == 1  # nothing changed: no write (the Lease is the heartbeat)
    fake.network_ready = True
    clock.now += 30
    await na.update_status()
    assert na.posts == 2
    node = await env.client.get(NODES, "node-a")
    conds = {c["type"]: c for c in node["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["lastTransitionTime"] != t0
    assert conds["Ready"]["lastHeartbeatTime"] == conds["Ready"]["lastTransitionTime"]
    # pressure conditions did not transition, but their heartbeat moved
    assert conds["DiskPressure"]["lastTransitionTime"] == t0
    assert conds["DiskPressure"]["lastHeartbeatTime"] != t0
    # an image change is a change too
    fake.images.append(cri.Image(id="sha256:d", repo_tags=["new:1"], size=9_000_000))
    await na.update_status()
    assert na.posts == 3
    node = await env.client.get(NODES, "node-a")
    assert node["status"]["images"][0]["names"] == ["new:1"]
    # after the report frequency, the status is posted even if unchanged
    na.report_every = 0
    await na.update_status()
    assert na.posts == 4


async def test_wait_pod_cidr_watches(lease_ns: Any, tmp_path: Path) -> None:
    env = lease_ns
    na = agent(env, tmp_path, FakeCRI())
    await na.register()
    waiter = asyncio.create_task(na.wait_pod_cidr(timeout=20))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await env.client.patch(NODES, "node-a", {"spec": {"podCIDR": "10.42.9.0/24"}})
    assert await asyncio.wait_for(waiter, 20) == "10.42.9.0/24"
    other = agent(env, tmp_path, FakeCRI(), name="node-b")
    await other.register()
    with pytest.raises(TimeoutError, match="node node-b got no podCIDR"):
        await other.wait_pod_cidr(timeout=0.3)


async def test_loops_renew_lease_and_poke(lease_ns: Any, tmp_path: Path) -> None:
    env = lease_ns
    fake = FakeCRI()
    clock = Clock()
    na = agent(env, tmp_path, fake, clock=clock, kubelet_arg=["node-lease-duration-seconds=4"])
    await na.register()
    first = (await env.client.get(LEASES, "node-a", namespace="kube-node-lease"))["spec"][
        "renewTime"
    ]
    await na.start()
    try:
        clock.now += 5
        fake.network_ready = False
        na.poke()
        for _ in range(200):
            node = await env.client.get(NODES, "node-a")
            ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"][0]
            lease = await env.client.get(LEASES, "node-a", namespace="kube-node-lease")
            if ready["status"] == "False" and lease["spec"]["renewTime"] != first:
                break
            await asyncio.sleep(0.05)
        assert ready["status"] == "False"
        assert lease["spec"]["renewTime"] != first and lease["spec"]["leaseDurationSeconds"] == 4
    finally:
        await na.stop()


def test_allocatable_arithmetic() -> None:
    gi = 1 << 30
    cap, alloc = node_resources(args={}, cpus=4, memory=8 * gi, disk=100 * gi, max_pods=110)
    assert (
        cap["memory"] == f"{8 * gi // 1024}Ki"
        and cap["ephemeral-storage"] == f"{100 * gi // 1024}Ki"
    )
    assert alloc["cpu"] == "4" and alloc["memory"] == f"{(8 * gi - (100 << 20)) // 1024}Ki"
    assert alloc["ephemeral-storage"] == str(100 * gi - 10 * gi)
    args = {"kube-reserved": "cpu=100m,memory=1Gi", "system-reserved": "cpu=400m,memory=512Mi,ephemeral-storage=1Gi",
            "eviction-hard": "memory.available<5%", "max-pods": "50"}  # fmt: skip
    _, alloc = node_resources(args=args, cpus=4, memory=8 * gi, disk=100 * gi, max_pods=50)
    assert alloc["cpu"] == "3500m" and alloc["pods"] == "50"
    mem = 8 * gi - gi - 512 * (1 << 20) - int(8 * gi * 0.05)
    assert alloc["memory"] in (f"{mem // 1024}Ki", str(mem))
    assert alloc["ephemeral-storage"] == str(100 * gi - gi - 10 * gi)


def test_helpers() -> None:
    assert (
        parse_duration("5m") == 300 and parse_duration("1m30s") == 90 and parse_duration("10") == 10
    )
    assert parse_taint("k:NoExecute") == {"key": "k", "effect": "NoExecute"}
    with pytest.raises(ValueError):
        parse_taint("k=v:Sometimes")
    with pytest.raises(ValueError):
        parse_labels(["novalue"])
    imgs = [cri.Image(repo_tags=[f"t{i}:{j}" for j in range(8)], size=i) for i in range(60)]
    listed = image_list(imgs)
    assert len(listed) == 50 and listed[0]["sizeBytes"] == 59 and len(listed[0]["names"]) == 5
    assert same_status({"capacity": {"memory": "1Gi"}}, {"capacity": {"memory": "1073741824"}})
    assert not same_status({"capacity": {"memory": "1Gi"}}, {"capacity": {"memory": "1G"}})
    assert runtime_errors(None, "boom") == ["container runtime is down: boom"]
    old = [{"type": "Ready", "status": "True", "lastTransitionTime": "T0", "lastHeartbeatTime": "H0"},
           {"type": "NetworkUnavailable", "status": "False"}]  # fmt: skip
    merged = merge_conditions(
        old, [{"type": "Ready", "status": "True", "reason": "r", "message": "m"}], now="T1"
    )
    assert merged[1]["lastTransitionTime"] == "T0" and merged[1]["lastHeartbeatTime"] == "H0"
    assert [c["type"] for c in merged] == ["NetworkUnavailable", "Ready"]
    flipped = merge_conditions(
        old, [{"type": "Ready", "status": "False", "reason": "r", "message": "m"}], now="T1"
    )
    assert flipped[1]["lastTransitionTime"] == "T1"
