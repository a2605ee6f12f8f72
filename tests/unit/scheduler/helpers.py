"""Builders for scheduler unit tests."""

from __future__ import annotations

import itertools
from typing import Any

from k3py.server.scheduler.cache import Cache
from k3py.server.scheduler.podinfo import PodInfo

_uid = itertools.count(1)


def pod(
    name: str = "",
    *,
    ns: str = "default",
    cpu: str | None = "100m",
    memory: str | None = "64Mi",
    labels: dict[str, str] | None = None,
    node: str = "",
    priority: int | None = None,
    created: str = "2026-01-01T00:00:00Z",
    **spec: Any,
) -> dict[str, Any]:
    n = next(_uid)
    requests = {}
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name or f"p{n}",
            "namespace": ns,
            "uid": f"uid-{n}",
            "labels": labels or {},
            "creationTimestamp": created,
        },
        "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}], **spec},
    }
    if node:
        body["spec"]["nodeName"] = node
    if priority is not None:
        body["spec"]["priority"] = priority
    return body


def info(**kw: Any) -> PodInfo:
    return PodInfo(pod(**kw))


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}},
    }


def cache_with(*nodes: dict[str, Any]) -> Cache:
    c = Cache()
    for n in nodes:
        c.set_node(n)
    return c


def bind(c: Cache, p: dict[str, Any], node_name: str) -> PodInfo:
    p["spec"]["nodeName"] = node_name
    pi = PodInfo(p)
    c.add_pod(pi)
    return pi
