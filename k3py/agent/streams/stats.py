"""Resource usage for the kubelet's Summary API (``/stats/summary``, the parts
metrics.k8s.io needs) and ``/metrics/resource`` (Prometheus text, as metrics-server
scrapes it).

Node CPU and memory come from ``/proc``; containers from CRI ``ListContainerStats``
(running containers only: the kept exited instance of a restarted container is not
usage).  ``usageNanoCores`` is the rate between this sample and the previous one, so
the first sample reports 0.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k3py.agent.cri import api_pb2 as cri


def proc_cpu_ns() -> int:
    """Busy CPU time of the node (all cores), in nanoseconds, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0
    vals = [int(x) for x in fields]
    busy = sum(vals) - vals[3] - (vals[4] if len(vals) > 4 else 0)
    return busy * (10**9 // os.sysconf("SC_CLK_TCK"))


def meminfo() -> tuple[int, int]:
    """(MemTotal, MemAvailable) in bytes."""
    total = avail = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
            elif line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    return total, avail


def _rate(*, used: int, before: int | None, seconds: float) -> int:
    if before is None or seconds <= 0:
        return 0
    return int(max(0, used - before) / seconds)


@dataclass
class Sampler:
    """Builds Summary documents, keeping the previous sample for CPU rates."""

    node_name: str
    _prev_t: float | None = None
    _prev_node: int = 0
    _prev: dict[str, int] = field(default_factory=dict)

    def summary(
        self,
        *,
        stats: list[cri.ContainerStats],
        running: set[str],
        t: float,
        node_cpu_ns: int,
        memory: tuple[int, int],
        wall: dt.datetime,
    ) -> dict[str, Any]:
        """``t`` is a monotonic time; ``memory`` is (total, available) bytes."""
        now = wall.strftime("%Y-%m-%dT%H:%M:%SZ")
        seconds = t - self._prev_t if self._prev_t is not None else 0.0
        pods: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        current: dict[str, int] = {}
        for st in stats:
            cid = st.attributes.id
            if cid not in running:
                continue
            labels = st.attributes.labels
            key = (
                labels.get("io.kubernetes.pod.namespace", ""),
                labels.get("io.kubernetes.pod.name", ""),
                labels.get("io.kubernetes.pod.uid", ""),
            )
            used = st.cpu.usage_core_nano_seconds.value
            current[cid] = used
            pods.setdefault(key, []).append(
                {
                    "name": labels.get("io.kubernetes.container.name")
                    or st.attributes.metadata.name,
                    "startTime": now,
                    "cpu": {
                        "time": now,
                        "usageCoreNanoSeconds": used,
                        "usageNanoCores": _rate(
                            used=used, before=self._prev.get(cid), seconds=seconds
                        ),
                    },
                    "memory": {
                        "time": now,
                        "workingSetBytes": st.memory.working_set_bytes.value,
                        "usageBytes": st.memory.usage_bytes.value,
                    },
                }
            )
        node_rate = _rate(
            used=node_cpu_ns,
            before=self._prev_node if self._prev_t is not None else None,
            seconds=seconds,
        )
        self._prev_t, self._prev_node, self._prev = t, node_cpu_ns, current
        total, avail = memory
        return {
            "node": {
                "nodeName": self.node_name,
                "startTime": now,
                "cpu": {
                    "time": now,
                    "usageNanoCores": node_rate,
                    "usageCoreNanoSeconds": node_cpu_ns,
                },
                "memory": {"time": now, "workingSetBytes": total - avail, "availableBytes": avail},
            },
            "pods": [
                {
                    "podRef": {"namespace": ns, "name": name, "uid": uid},
                    "startTime": now,
                    "containers": cs,
                }
                for (ns, name, uid), cs in sorted(pods.items())
                if name
            ],
        }


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_metrics(summary: dict[str, Any], *, ts_ms: int) -> str:
    """``/metrics/resource`` in the Prometheus text format, from a Summary."""
    node = summary["node"]
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, rows: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} [STABLE] {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(f"{name}{labels} {value:.9g} {ts_ms}" for labels, value in rows)

    containers: list[tuple[str, dict[str, Any]]] = []
    pods: list[tuple[str, float, float]] = []
    for p in summary["pods"]:
        ref = p["podRef"]
        pod_labels = f'namespace="{_label(ref["namespace"])}",pod="{_label(ref["name"])}"'
        for c in p["containers"]:
            containers.append((f'{{container="{_label(c["name"])}",{pod_labels}}}', c))
        pods.append(
            (
                f"{{{pod_labels}}}",
                sum(c["cpu"]["usageCoreNanoSeconds"] for c in p["containers"]) / 1e9,
                float(sum(c["memory"]["workingSetBytes"] for c in p["containers"])),
            )
        )
    family(
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the container in core-seconds",
        [(lb, c["cpu"]["usageCoreNanoSeconds"] / 1e9) for lb, c in containers],
    )
    family(
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set of the container in bytes",
        [(lb, float(c["memory"]["workingSetBytes"])) for lb, c in containers],
    )
    family(
        "node_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the node in core-seconds",
        [("", node["cpu"]["usageCoreNanoSeconds"] / 1e9)],
    )
    family(
        "node_memory_working_set_bytes",
        "gauge",
        "Current working set of the node in bytes",
        [("", float(node["memory"]["workingSetBytes"]))],
    )
    family(
        "pod_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed by the pod in core-seconds",
        [(lb, cpu) for lb, cpu, _ in pods],
    )
    family(
        "pod_memory_working_set_bytes",
        "gauge",
        "Current working set of the pod in bytes",
        [(lb, mem) for lb, _, mem in pods],
    )
    out.append(
        "# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise"
    )
    out.append("# TYPE scrape_error gauge")
    out.append("scrape_error 0")
    return "\n".join(out) + "\n"
