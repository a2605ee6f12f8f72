"""Requests and limits into CRI Linux resources, QoS classes and cgroup parents.

The arithmetic is upstream's (pkg/kubelet/cm and pkg/apis/core/v1/helper/qos):
cpu.shares = max(2, requests.cpu millicores * 1024 / 1000) (2 when unset), a CFS quota
of limits.cpu over a 100 ms period, memory limit in bytes, and oom_score_adj by QoS —
Guaranteed -997, BestEffort 1000, Burstable 1000 - 1000 * request / node memory clamped
to [2, 999].
"""

from __future__ import annotations

import math
from typing import Any

from k3py.agent.cri import api_pb2 as cri
from k3py.apimachinery import quantity

Obj = dict[str, Any]
CFS_PERIOD_US = 100_000
MIN_SHARES = 2


def to_milli(value: Any) -> int:
    return int(math.ceil(quantity.parse(value).value * 1000))


def to_bytes(value: Any) -> int:
    return int(math.ceil(quantity.parse(value).value))


def _res(container: Obj, kind: str) -> Obj:
    out: Obj = ((container.get("resources") or {}).get(kind)) or {}
    return out


def qos_class(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests: dict[str, int] = {}
    limits: dict[str, int] = {}
    guaranteed = True
    for c in containers:
        req, lim = _res(c, "requests"), _res(c, "limits")
        for name in ("cpu", "memory"):
            if name in req and to_milli(req[name]) > 0:
                requests[name] = requests.get(name, 0) + to_milli(req[name])
            if name in lim and to_milli(lim[name]) > 0:
                limits[name] = limits.get(name, 0) + to_milli(lim[name])
        for name in ("cpu", "memory"):
            if name not in lim:
                guaranteed = False
            elif name in req and to_milli(req[name]) != to_milli(lim[name]):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and set(limits) >= {"cpu", "memory"}:
        return "Guaranteed"
    return "Burstable"


def linux_container_resources(pod: Obj, container: Obj, *, node_memory: int = 0) -> cri.LinuxContainerResources:
    req, lim = _res(container, "requests"), _res(container, "limits")
    cpu_req = to_milli(req["cpu"]) if "cpu" in req else (to_milli(lim["cpu"]) if "cpu" in lim else 0)
    shares = max(MIN_SHARES, cpu_req * 1024 // 1000) if cpu_req else MIN_SHARES
    out = cri.LinuxContainerResources(cpu_shares=shares)
    if "cpu" in lim:
        out.cpu_period = CFS_PERIOD_US
        out.cpu_quota = max(1000, to_milli(lim["cpu"]) * CFS_PERIOD_US // 1000)
    if "memory" in lim:
        out.memory_limit_in_bytes = to_bytes(lim["memory"])
    qos = qos_class(pod)
    if qos == "Guaranteed":
        out.oom_score_adj = -997
    elif qos == "BestEffort":
        out.oom_score_adj = 1000
    else:
        mem_req = to_bytes(req["memory"]) if "memory" in req else 0
        adj = 1000 - (1000 * mem_req) // node_memory if node_memory else 1000
        out.oom_score_adj = int(min(999, max(2, adj)))
    return out


def pod_cgroup_parent(pod: Obj) -> str:
    """cgroupfs parent of the pod: /kubepods[/burstable|/besteffort]/pod<uid>."""
    uid = (pod.get("metadata") or {}).get("uid", "")
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return f"/kubepods/pod{uid}"
    return f"/kubepods/{qos.lower()}/pod{uid}"
