"""Requests and limits into CRI Linux resources, QoS classes and cgroup parents.

The arithmetic is upstream's (pkg/kubelet/cm, pkg/kubelet/qos, pkg/apis/core/v1/helper/qos):

* QoS: sums of the cpu/memory requests and limits (> 0) over containers and init
  containers; Guaranteed when every container limits both and the summed requests equal
  the summed limits; BestEffort when nothing is requested or limited; else Burstable.
  A ``status.qosClass`` already set wins (it never changes for a pod).
* ``cpu.shares`` = requests.cpu millicores * 1024 / 1000, within [2, 262144] (2 when unset);
  a CFS quota of limits.cpu over a 100 ms period (at least 1 ms); the memory limit in bytes.
* ``oom_score_adj``: Guaranteed (and ``system-node-critical`` pods) -997, BestEffort 1000,
  Burstable ``1000 - 1000 * request / node memory capacity`` with upstream's bounds: at
  least 3 (``1000 + guaranteedOOMScoreAdj``, the documentation's table says 2) and 999
  rather than 1000; a restartable init container (sidecar) never scores above the
  lowest-scoring regular container.
* cgroup parents follow the cgroupfs driver: ``/kubepods/pod<uid>`` (Guaranteed),
  ``/kubepods/burstable/pod<uid>``, ``/kubepods/besteffort/pod<uid>``.  containerd runs
  with ``SystemdCgroup = false`` and runc creates the missing levels.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from k3py.agent.cri import api_pb2 as cri
from k3py.apimachinery import quantity

Obj = dict[str, Any]
CFS_PERIOD_US = 100_000
MIN_QUOTA_US = 1_000
MIN_SHARES = 2
MAX_SHARES = 262_144
GUARANTEED_OOM_SCORE_ADJ = -997
BESTEFFORT_OOM_SCORE_ADJ = 1000
QOS_RESOURCES = ("cpu", "memory")


def to_milli(value: Any) -> int:
    """Millis of a quantity, rounded up (``MilliValue``)."""
    return int(math.ceil(quantity.parse(value).value * 1000))


def to_bytes(value: Any) -> int:
    """Integer value of a quantity, rounded up (``Value``)."""
    return int(math.ceil(quantity.parse(value).value))


def _res(container: Obj, kind: str) -> Obj:
    out: Obj = ((container.get("resources") or {}).get(kind)) or {}
    return out


def _qty(value: Any) -> Fraction:
    return quantity.parse(value).value


def qos_class(pod: Obj) -> str:
    """``Guaranteed`` | ``Burstable`` | ``BestEffort``, as upstream's ``GetPodQOS``."""
    known = (pod.get("status") or {}).get("qosClass")
    if known in ("Guaranteed", "Burstable", "BestEffort"):
        return str(known)
    return compute_qos_class(pod)


def compute_qos_class(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        for name, value in _res(c, "requests").items():
            if name in QOS_RESOURCES and _qty(value) > 0:
                requests[name] = requests.get(name, Fraction(0)) + _qty(value)
        found = set()
        for name, value in _res(c, "limits").items():
            if name in QOS_RESOURCES and _qty(value) > 0:
                found.add(name)
                limits[name] = limits.get(name, Fraction(0)) + _qty(value)
        if not found >= set(QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and any(limits.get(n) != v for n, v in requests.items()):
        guaranteed = False
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def cpu_shares(milli: int) -> int:
    """``MilliCPUToShares``."""
    if milli <= 0:
        return MIN_SHARES
    return min(MAX_SHARES, max(MIN_SHARES, milli * 1024 // 1000))


def cpu_quota(milli: int, period: int = CFS_PERIOD_US) -> int:
    """``MilliCPUToQuota`` (0: no quota)."""
    if milli <= 0:
        return 0
    return max(MIN_QUOTA_US, milli * period // 1000)


def _memory_request(container: Obj) -> int:
    req = _res(container, "requests")
    return to_bytes(req["memory"]) if "memory" in req else 0


def _is_sidecar(pod: Obj, container: Obj) -> bool:
    spec = pod.get("spec") or {}
    return container.get("restartPolicy") == "Always" and any(
        c.get("name") == container.get("name") for c in spec.get("initContainers") or []
    )


def oom_score_adj(pod: Obj, container: Obj, *, node_memory: int) -> int:
    """``GetContainerOOMScoreAdjust``."""
    spec = pod.get("spec") or {}
    if spec.get("priorityClassName") == "system-node-critical":
        return GUARANTEED_OOM_SCORE_ADJ
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort" or node_memory <= 0:
        return BESTEFFORT_OOM_SCORE_ADJ
    adj = 1000 - (1000 * _memory_request(container)) // node_memory
    if _is_sidecar(pod, container):
        regular = [_memory_request(c) for c in spec.get("containers") or []]
        if regular:
            adj = min(adj, 1000 - (1000 * min(regular)) // node_memory)
    if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ:
        return 1000 + GUARANTEED_OOM_SCORE_ADJ
    if adj == BESTEFFORT_OOM_SCORE_ADJ:
        return adj - 1
    return adj


def linux_container_resources(
    pod: Obj, container: Obj, *, node_memory: int = 0
) -> cri.LinuxContainerResources:
    """The CRI resources of one container; ``node_memory`` is the node's memory capacity in
    bytes (needed for Burstable ``oom_score_adj``; 0 scores Burstable like BestEffort)."""
    req, lim = _res(container, "requests"), _res(container, "limits")
    # The API server defaults requests from limits; do the same for objects that skipped it.
    cpu_req = (
        to_milli(req["cpu"]) if "cpu" in req else (to_milli(lim["cpu"]) if "cpu" in lim else 0)
    )
    out = cri.LinuxContainerResources(cpu_shares=cpu_shares(cpu_req))
    quota = cpu_quota(to_milli(lim["cpu"])) if "cpu" in lim else 0
    if quota:
        out.cpu_period = CFS_PERIOD_US
        out.cpu_quota = quota
    if "memory" in lim and to_bytes(lim["memory"]) > 0:
        out.memory_limit_in_bytes = to_bytes(lim["memory"])
    out.oom_score_adj = oom_score_adj(pod, container, node_memory=node_memory)
    return out


def pod_cgroup_parent(pod: Obj) -> str:
    """cgroupfs parent of the pod: /kubepods[/burstable|/besteffort]/pod<uid>."""
    uid = (pod.get("metadata") or {}).get("uid", "")
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return f"/kubepods/pod{uid}"
    return f"/kubepods/{qos.lower()}/pod{uid}"
