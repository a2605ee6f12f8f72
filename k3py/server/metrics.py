"""metrics.k8s.io/v1beta1 (NodeMetrics, PodMetrics) for ``kubectl top``, served by the
API server itself from each Ready node's kubelet Summary API (``/stats/summary``), the
way metrics-server does.

Summaries are cached for 10 s per node; the kubelet computes CPU rates from consecutive
samples, so a node seen for the first time is sampled twice, half a second apart.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from aiohttp import web

from k3py.apimachinery.selectors import parse_selector
from k3py.server import errors
from k3py.server.api import encode
from k3py.server.registry.catalog import ResourceInfo

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
CACHE_SECONDS = 10.0


def resources() -> list[ResourceInfo]:
    common: dict[str, Any] = {"group": GROUP, "version": VERSION, "verbs": ("get", "list"), "virtual": True}
    return [
        ResourceInfo(kind="NodeMetrics", plural="nodes", singular="", namespaced=False, **common),
        ResourceInfo(kind="PodMetrics", plural="pods", singular="", namespaced=True, **common),
    ]


def _cpu(nano: int) -> str:
    return f"{nano}n"


def _mem(b: int) -> str:
    return f"{max(0, b) // 1024}Ki"


class Metrics:
    def __init__(self, state: Any) -> None:
        self.state = state
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._seen: set[str] = set()

    async def _summary(self, node: dict[str, Any]) -> dict[str, Any] | None:
        name = node["metadata"]["name"]
        hit = self._cache.get(name)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        proxy = self.state.stream_proxy
        base = await proxy._kubelet(name)  # noqa: SLF001 - same address logic as the streams
        try:
            async with proxy.session().get(f"{base}/stats/summary", ssl=proxy.ssl,
                                           timeout=aiohttp.ClientTimeout(total=5)) as r:
                body: dict[str, Any] = await r.json()
            if name not in self._seen:
                self._seen.add(name)
                await asyncio.sleep(0.5)
                async with proxy.session().get(f"{base}/stats/summary", ssl=proxy.ssl,
                                               timeout=aiohttp.ClientTimeout(total=5)) as r:
                    body = await r.json()
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        self._cache[name] = (time.monotonic(), body)
        return body

    async def _nodes(self) -> list[dict[str, Any]]:
        info = self.state.catalog.get("", "v1", "nodes")
        items = [r.obj() for r in (await self.state.store.list(info, "")).records]
        ready = []
        for n in items:
            conds = {c.get("type"): c.get("status") for c in (n.get("status") or {}).get("conditions") or []}
            if conds.get("Ready") == "True":
                ready.append(n)
        return ready

    async def __call__(self, request: web.Request, ri: Any, info: ResourceInfo) -> web.StreamResponse:
        if request.method != "GET" or ri.verb not in ("get", "list"):
            raise errors.method_not_allowed()
        selector = parse_selector(request.query.get("labelSelector", ""))
        summaries = await asyncio.gather(*(self._summary(n) for n in await self._nodes()))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        items: list[dict[str, Any]] = []
        if info.plural == "nodes":
            nodes = {n["metadata"]["name"]: n for n in await self._nodes()}
            for s in summaries:
                if not s:
                    continue
                node = s["node"]
                obj = nodes.get(node["nodeName"])
                labels = (obj or {}).get("metadata", {}).get("labels") or {}
                if not selector.matches(labels):
                    continue
                items.append({
                    "metadata": {"name": node["nodeName"], "creationTimestamp": now, "labels": labels},
                    "timestamp": node["cpu"]["time"], "window": "10s",
                    "usage": {"cpu": _cpu(node["cpu"]["usageNanoCores"]), "memory": _mem(node["memory"]["workingSetBytes"])},
                })
        else:
            pod_info = self.state.catalog.get("", "v1", "pods")
            pods = [r.obj() for r in (await self.state.store.list(pod_info, ri.namespace)).records]
            by_key = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
            for s in summaries:
                for p in (s or {}).get("pods") or []:
                    ref = p["podRef"]
                    pod = by_key.get((ref["namespace"], ref["name"]))
                    if pod is None:
                        continue
                    labels = pod["metadata"].get("labels") or {}
                    if not selector.matches(labels):
                        continue
                    items.append({
                        "metadata": {"name": ref["name"], "namespace": ref["namespace"], "creationTimestamp": now,
                                     "labels": labels},
                        "timestamp": now, "window": "10s",
                        "containers": [{"name": c["name"], "usage": {"cpu": _cpu(c["cpu"]["usageNanoCores"]),
                                                                     "memory": _mem(c["memory"]["workingSetBytes"])}}
                                       for c in p["containers"]],
                    })
        kind = info.kind
        if ri.name:
            for it in items:
                if it["metadata"]["name"] == ri.name:
                    return encode.json_response({"kind": kind, "apiVersion": f"{GROUP}/{VERSION}", **it})
            raise errors.not_found(f"{info.plural}.{GROUP}", ri.name)
        return encode.json_response({"kind": kind + "List", "apiVersion": f"{GROUP}/{VERSION}",
                                     "metadata": {}, "items": [{"kind": kind, "apiVersion": f"{GROUP}/{VERSION}", **i}
                                                               for i in items]})


def install(state: Any, **_: Any) -> Metrics:
    state.catalog.put_custom(resources(), group=GROUP, plural="nodes")
    m = Metrics(state)
    state.virtual_handlers[GROUP] = m
    return m
