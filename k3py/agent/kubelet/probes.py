"""Liveness, readiness and startup probes: httpGet, tcpSocket, exec and grpc.

One ``ProbeRunner`` per container instance.  Startup runs first; until it succeeds the
others wait.  Each probe honours initialDelaySeconds, periodSeconds, timeoutSeconds,
successThreshold and failureThreshold; results are reported through a callback so the
pod worker can restart the container (liveness/startup failure) or update readiness.
httpGet/tcpSocket/grpc dial the pod IP from the agent's network namespace (the bridge
routes to it); exec goes through CRI ExecSync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from k3py.agent.cri.client import CRIClient, CRIError

log = logging.getLogger("k3py.agent.probes")
Obj = dict[str, Any]


@dataclass
class ProbeResult:
    ok: bool
    message: str = ""


def resolve_port(port: Any, container: Obj) -> int:
    if isinstance(port, int):
        return port
    text = str(port)
    if text.isdigit():
        return int(text)
    for p in container.get("ports") or []:
        if p.get("name") == text:
            return int(p["containerPort"])
    raise ValueError(f"unable to find port {text!r} in container {container.get('name')}")


async def run_probe(probe: Obj, *, container: Obj, container_id: str, pod_ip: str, cri: CRIClient) -> ProbeResult:
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "exec" in probe:
            cmd = list((probe["exec"] or {}).get("command") or [])
            out, err, code = await cri.exec_sync(container_id, cmd, int(timeout))
            if code != 0:
                return ProbeResult(False, (out + err).decode(errors="replace").strip()
                                   or f"command {cmd!r} exited with {code}")
            return ProbeResult(True)
        if "httpGet" in probe:
            return await _http(probe["httpGet"] or {}, container=container, pod_ip=pod_ip, timeout=timeout)
        if "tcpSocket" in probe:
            t = probe["tcpSocket"] or {}
            host = t.get("host") or pod_ip
            port = resolve_port(t.get("port"), container)
            async with asyncio.timeout(timeout):
                _, w = await asyncio.open_connection(host, port)
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()
            return ProbeResult(True)
        if "grpc" in probe:
            g = probe["grpc"] or {}
            return await _grpc(pod_ip, int(g.get("port") or 0), str(g.get("service") or ""), timeout)
    except TimeoutError:
        return ProbeResult(False, f"probe timed out after {timeout:g}s")
    except CRIError as e:
        return ProbeResult(False, str(e))
    except (OSError, ValueError, aiohttp.ClientError) as e:
        return ProbeResult(False, str(e) or type(e).__name__)
    return ProbeResult(False, "probe has no handler")


async def _http(h: Obj, *, container: Obj, pod_ip: str, timeout: float) -> ProbeResult:
    scheme = str(h.get("scheme") or "HTTP").lower()
    host = h.get("host") or pod_ip
    port = resolve_port(h.get("port"), container)
    path = h.get("path") or "/"
    if not path.startswith("/"):
        path = "/" + path
    headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
    for hd in h.get("httpHeaders") or []:
        headers[hd.get("name", "")] = hd.get("value", "")
    url = f"{scheme}://{host}:{port}{path}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:  # noqa: SIM117
        async with s.get(url, headers=headers, ssl=False, allow_redirects=True) as r:
            await r.content.read(10 * 1024)
            if 200 <= r.status < 400:
                return ProbeResult(True)
            return ProbeResult(False, f"HTTP probe failed with statuscode: {r.status}")


async def _grpc(ip: str, port: int, service: str, timeout: float) -> ProbeResult:
    import grpc

    async with grpc.aio.insecure_channel(f"{ip}:{port}") as ch:
        payload = b""
        if service:
            data = service.encode()
            payload = b"\x0a" + _varint(len(data)) + data
        call = ch.unary_unary("/grpc.health.v1.Health/Check",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            resp = await call(payload, timeout=timeout)
        except grpc.aio.AioRpcError as e:
            return ProbeResult(False, f"failed to connect service {ip}:{port} within {timeout:g}s: {e.details()}")
    status = 0
    if len(resp) >= 2 and resp[0] == 0x08:
        status = resp[1]
    if status == 1:
        return ProbeResult(True)
    return ProbeResult(False, f"service unhealthy (responded with \"{['UNKNOWN','SERVING','NOT_SERVING','SERVICE_UNKNOWN'][min(status,3)]}\")")


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += struct.pack("B", b | 0x80)
        else:
            return out + struct.pack("B", b)


@dataclass
class ProbeRunner:
    """Runs a container instance's probes; ``ready``/``started`` are read by the worker."""

    container: Obj
    container_id: str
    pod_ip: str
    cri: CRIClient
    on_change: Callable[[], None]
    on_failure: Callable[[str, str], None]  # (probe kind, message): restart the container
    on_event: Callable[[str, str], None]
    ready: bool = False
    started: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        c = self.container
        self.started = "startupProbe" not in c
        self.ready = "readinessProbe" not in c and self.started
        self.tasks.append(asyncio.create_task(self._run_all(), name=f"probes-{c.get('name')}"))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks = []

    async def _run_all(self) -> None:
        c = self.container
        if "startupProbe" in c:
            ok = await self._loop("Startup", c["startupProbe"], until_success=True)
            if not ok:
                return
            self.started = True
            if "readinessProbe" not in c:
                self.ready = True
            self.on_change()
        loops = []
        if "livenessProbe" in c:
            loops.append(self._loop("Liveness", c["livenessProbe"]))
        if "readinessProbe" in c:
            loops.append(self._loop("Readiness", c["readinessProbe"]))
        if loops:
            await asyncio.gather(*loops)

    async def _loop(self, kind: str, probe: Obj, *, until_success: bool = False) -> bool:
        delay = float(probe.get("initialDelaySeconds") or 0)
        period = max(1.0, float(probe.get("periodSeconds") or 10))
        success_needed = int(probe.get("successThreshold") or 1)
        failures_allowed = int(probe.get("failureThreshold") or 3)
        if kind == "Startup" and delay == 0:
            delay = 0.0
        await asyncio.sleep(delay)
        ok_run = fail_run = 0
        while True:
            res = await run_probe(probe, container=self.container, container_id=self.container_id,
                                  pod_ip=self.pod_ip, cri=self.cri)
            if res.ok:
                ok_run += 1
                fail_run = 0
                if kind == "Readiness" and ok_run >= success_needed and not self.ready:
                    self.ready = True
                    self.on_change()
                if until_success:
                    return True
            else:
                fail_run += 1
                ok_run = 0
                self.on_event("Unhealthy", f"{kind} probe failed: {res.message}")
                if kind == "Readiness":
                    if self.ready and fail_run >= failures_allowed:
                        self.ready = False
                        self.on_change()
                elif fail_run >= failures_allowed:
                    self.on_failure(kind, res.message)
                    return False
            await asyncio.sleep(period)
