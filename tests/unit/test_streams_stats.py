"""Summary documents from CRI stats (rates from two samples, running containers only) and
the /metrics/resource text."""

from __future__ import annotations

import datetime as dt

from k3py.agent.cri import api_pb2 as cri
from k3py.agent.streams import stats

WALL = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def stat(cid: str, name: str, *, cpu_ns: int, mem: int) -> cri.ContainerStats:
    s = cri.ContainerStats()
    s.attributes.id = cid
    s.attributes.labels.update(
        {
            "io.kubernetes.pod.namespace": "ns",
            "io.kubernetes.pod.name": "p",
            "io.kubernetes.pod.uid": "u",
            "io.kubernetes.container.name": name,
        }
    )
    s.cpu.usage_core_nano_seconds.value = cpu_ns
    s.memory.working_set_bytes.value = mem
    return s


def test_rates_from_two_samples_and_only_running_containers() -> None:
    sampler = stats.Sampler(node_name="n1")
    first = sampler.summary(
        stats=[
            stat("a", "app", cpu_ns=1_000_000_000, mem=100),
            stat("old", "app", cpu_ns=5, mem=1),
        ],
        running={"a"},
        t=10.0,
        node_cpu_ns=50_000_000_000,
        memory=(1000, 400),
        wall=WALL,
    )
    assert (
        first["node"]["cpu"]["usageNanoCores"] == 0
        and first["node"]["memory"]["workingSetBytes"] == 600
    )
    [pod] = first["pods"]
    assert pod["podRef"] == {"namespace": "ns", "name": "p", "uid": "u"}
    assert [c["name"] for c in pod["containers"]] == ["app"]
    second = sampler.summary(
        stats=[stat("a", "app", cpu_ns=1_500_000_000, mem=120)],
        running={"a"},
        t=12.0,
        node_cpu_ns=52_000_000_000,
        memory=(1000, 400),
        wall=WALL,
    )
    c = second["pods"][0]["containers"][0]
    assert c["cpu"]["usageNanoCores"] == 250_000_000 and c["memory"]["workingSetBytes"] == 120
    assert second["node"]["cpu"]["usageNanoCores"] == 1_000_000_000
    assert c["cpu"]["time"] == "2026-01-02T03:04:05Z"


def test_resource_metrics_text() -> None:
    summary = stats.Sampler(node_name="n1").summary(
        stats=[stat("a", "app", cpu_ns=1_500_000_000, mem=2048)],
        running={"a"},
        t=1.0,
        node_cpu_ns=3_000_000_000,
        memory=(4096, 1024),
        wall=WALL,
    )
    text = stats.resource_metrics(summary, ts_ms=1700000000000)
    lines = text.splitlines()
    assert (
        'container_cpu_usage_seconds_total{container="app",namespace="ns",pod="p"} 1.5 1700000000000'
        in lines
    )
    assert (
        'container_memory_working_set_bytes{container="app",namespace="ns",pod="p"} 2048 1700000000000'
        in lines
    )
    assert "node_memory_working_set_bytes 3072 1700000000000" in lines
    assert 'pod_cpu_usage_seconds_total{namespace="ns",pod="p"} 1.5 1700000000000' in lines
    assert "# TYPE node_cpu_usage_seconds_total counter" in lines and lines[-1] == "scrape_error 0"
