"""The kubelet's HTTPS API (:10250), which the API server proxies ``pods/log``,
``pods/exec``, ``pods/attach`` and ``pods/portforward`` to.

* ``/containerLogs/{ns}/{pod}/{container}`` reads the CRI log files (follow, tailLines,
  sinceSeconds/sinceTime, timestamps, previous, limitBytes; ``streams.logs``).
* ``/exec`` and ``/attach`` speak the WebSocket channel protocols to the client
  (``v5.channel.k8s.io``, which kubectl 1.32 offers, ``v4`` and older, base64 variants;
  ``streams.channels``) and SPDY to containerd's streaming server (the CRI Exec/Attach
  URL; ``streams.remotecommand``), so that v5's close signal half-closes stdin and the
  exit status still follows.  Pings are answered (aiohttp autoping).
* ``/portForward/{ns}/{pod}`` speaks SPDY/3.1 in WebSocket (kubectl; ``k3py.agent.spdy``)
  and the Python client's WebSocket framing (channels 2i/2i+1 per port, first frame
  ``[ch, port lo, port hi]``), dialling the port inside the pod's network namespace.
* ``/stats/summary`` and ``/metrics/resource`` (``streams.stats``), ``/healthz``.

Only client certificates from the cluster's client CA with user ``system:kube-apiserver``
or group ``system:masters`` get in.  Errors are Status objects, repeated in the
``X-Kubelet-Status`` header for refused WebSocket upgrades.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from k3py.agent import spdy
from k3py.agent.config import AgentConfig
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.cri.client import CRIClient, CRIError
from k3py.agent.streams import channels, logs
from k3py.agent.streams import stats as stats_mod
from k3py.agent.streams.remotecommand import HandshakeError, RemoteCommand

log = logging.getLogger("k3py.agent.api")

PORTFORWARD_PROTOCOLS = ["SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io", "portforward.k8s.io"]


STATUS_HEADER = "X-Kubelet-Status"


def _status(code: int, reason: str, message: str) -> web.Response:
    """A Status error; also in a header (ASCII JSON), since a WebSocket client whose
    upgrade is refused (the API server's proxy) gets no body."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code, headers={STATUS_HEADER: json.dumps(body)})


class KubeletServer:
    def __init__(self, cfg: AgentConfig, cri_client: CRIClient, ssl_context: ssl.SSLContext) -> None:
        self.cfg = cfg
        self.cri = cri_client
        self.ssl = ssl_context
        self._runner: web.AppRunner | None = None
        self._sampler = stats_mod.Sampler(node_name=cfg.node_name)
        self.port = 0

    async def start(self) -> int:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        for verb in ("exec", "attach"):
            app.router.add_route("*", f"/{verb}/{{ns}}/{{pod}}/{{container}}", self._exec)
        app.router.add_route("*", "/portForward/{ns}/{pod}", self._portforward)
        app.router.add_get("/stats/summary", self._summary)
        app.router.add_get("/metrics/resource", self._resource_metrics)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        host = "0.0.0.0"
        site = web.TCPSite(self._runner, host=host, port=self.cfg.kubelet_port, ssl_context=self.ssl,
                           reuse_address=True)
        await site.start()
        server = site._server  # noqa: SLF001 - the bound port of an ephemeral listen
        assert server is not None
        self.port = int(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        log.info("kubelet API listening on :%d", self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/healthz":
            resp: web.StreamResponse = await handler(request)
            return resp
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        user, groups = "", []
        if peer:
            for rdn in peer.get("subject", ()):
                for k, v in rdn:
                    if k == "commonName":
                        user = v
                    elif k == "organizationName":
                        groups.append(v)
        if user != "system:kube-apiserver" and "system:masters" not in groups:
            return _status(403, "Forbidden", f'user "{user or "anonymous"}" may not use the kubelet API')
        resp = await handler(request)
        return resp

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    # ---- stats ----------------------------------------------------------------------

    async def _collect(self) -> dict[str, Any]:
        stats = await self.cri.list_container_stats()
        running = {c.id for c in await self.cri.list_containers(
            cri.ContainerFilter(state=cri.ContainerStateValue(state=cri.CONTAINER_RUNNING)))}
        return self._sampler.summary(stats=stats, running=running, t=asyncio.get_running_loop().time(),
                                     node_cpu_ns=stats_mod.proc_cpu_ns(), memory=stats_mod.meminfo(),
                                     wall=dt.datetime.now(dt.UTC))

    async def _summary(self, request: web.Request) -> web.Response:
        """The kubelet Summary API (the parts metrics.k8s.io needs): node and per-container
        CPU (usageNanoCores from two samples) and working-set memory."""
        return web.json_response(await self._collect())

    async def _resource_metrics(self, request: web.Request) -> web.Response:
        text = stats_mod.resource_metrics(await self._collect(), ts_ms=int(time.time() * 1000))
        return web.Response(text=text, content_type="text/plain", charset="utf-8",
                            headers={"X-Content-Type-Options": "nosniff"})

    # ---- finding containers ---------------------------------------------------------

    async def _containers(self, ns: str, pod: str, container: str) -> list[cri.Container]:
        sel = {"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": pod}
        if container:
            sel["io.kubernetes.container.name"] = container
        found = await self.cri.list_containers(cri.ContainerFilter(label_selector=sel))
        found.sort(key=lambda c: (c.metadata.attempt, c.created_at))
        return found

    async def _sandbox(self, ns: str, pod: str) -> cri.PodSandbox | None:
        sel = {"io.kubernetes.pod.namespace": ns, "io.kubernetes.pod.name": pod}
        sbs = await self.cri.list_pod_sandbox(cri.PodSandboxFilter(label_selector=sel))
        ready = [s for s in sbs if s.state == cri.SANDBOX_READY]
        return max(ready, key=lambda s: s.created_at) if ready else None

    # ---- logs -----------------------------------------------------------------------

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, name = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        try:
            opts = logs.LogOptions.from_query(request.query, now=dt.datetime.now(dt.UTC))
        except ValueError as e:
            return _status(400, "BadRequest", str(e))
        found = await self._containers(ns, pod, name)
        if opts.previous:
            # the newest exited instance: the one before a running container, or the
            # last run of a container waiting to restart (CrashLoopBackOff), as upstream
            exited = [c for c in found if c.state == cri.CONTAINER_EXITED]
            if not exited:
                return _status(400, "BadRequest",
                               f'previous terminated container "{name}" in pod "{pod}" not found')
            target = exited[-1]
        else:
            if not found:
                return _status(400, "BadRequest", f'container "{name}" in pod "{pod}" is waiting to start: '
                               "ContainerCreating")
            target = found[-1]
        st = (await self.cri.container_status(target.id)).status
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)

        async def running() -> bool:
            if request.transport is None or request.transport.is_closing():
                return False  # the reader went away
            try:
                return (await self.cri.container_status(target.id)).status.state == cri.CONTAINER_RUNNING
            except CRIError:
                return False

        with contextlib.suppress(ConnectionResetError):
            await logs.stream_log(Path(st.log_path), opts, write=resp.write, running=running)
        return resp

    # ---- exec / attach --------------------------------------------------------------

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        verb = request.path.split("/")[1]
        ns, pod, name = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        q = request.query
        found = await self._containers(ns, pod, name)
        running = [c for c in found if c.state == cri.CONTAINER_RUNNING]
        if not running:
            return _status(400, "BadRequest", f'container not found ("{name}")')
        cid = running[-1].id
        flag = lambda k: q.get(k) in ("1", "true", "True")  # noqa: E731
        tty = flag("tty")
        try:
            if verb == "exec":
                url = await self.cri.exec(cri.ExecRequest(container_id=cid, cmd=q.getall("command", []), tty=tty,
                                                          stdin=flag("stdin"), stdout=flag("stdout"),
                                                          stderr=flag("stderr") and not tty))
            else:
                url = await self.cri.attach(cri.AttachRequest(container_id=cid, stdin=flag("stdin"), tty=tty,
                                                              stdout=flag("stdout"), stderr=flag("stderr") and not tty))
        except CRIError as e:
            return _status(500, "InternalError", str(e))
        try:
            rc = await RemoteCommand.open(url, stdin=flag("stdin"), stdout=flag("stdout"),
                                          stderr=flag("stderr"), tty=tty)
        except (OSError, TimeoutError, HandshakeError, asyncio.IncompleteReadError) as e:
            return _status(500, "InternalError", f"unable to reach the container runtime's streaming server: {e}")
        try:
            ws = web.WebSocketResponse(protocols=channels.PROTOCOLS, heartbeat=None, autoping=True,
                                       max_msg_size=0)
            await ws.prepare(request)
            await _relay(ws, rc, codec=channels.Codec(ws.ws_protocol or "channel.k8s.io"))
        finally:
            await rc.close()
        return ws

    # ---- port-forward -----------------------------------------------------------------

    async def _portforward(self, request: web.Request) -> web.StreamResponse:
        ns, pod = request.match_info["ns"], request.match_info["pod"]
        sb = await self._sandbox(ns, pod)
        if sb is None:
            return _status(404, "NotFound", f'pod "{pod}" has no running sandbox')
        ports = [int(p) for raw in request.query.getall("ports", []) for p in raw.split(",") if p.strip()]
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        if not ports and spdy.PROTOCOL not in offered:  # SPDY names ports in its stream headers
            return _status(400, "BadRequest", "query parameter \"ports\" is required")
        netns = await self._netns_path(sb.id)
        ws = web.WebSocketResponse(protocols=PORTFORWARD_PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        if ws.ws_protocol == spdy.PROTOCOL:
            await self._portforward_spdy(ws, netns)
            return ws
        conns: dict[int, asyncio.StreamWriter] = {}
        readers: list[asyncio.Task[None]] = []
        for i, port in enumerate(ports):
            data_ch, err_ch = 2 * i, 2 * i + 1
            hdr = bytes([port & 0xFF, port >> 8])
            await ws.send_bytes(bytes([data_ch]) + hdr)
            await ws.send_bytes(bytes([err_ch]) + hdr)
            try:
                reader, writer = await _dial_in_netns(netns, port)
            except OSError as e:
                await ws.send_bytes(bytes([err_ch]) + f"error forwarding port {port} to pod: {e}".encode())
                continue
            conns[data_ch] = writer
            readers.append(asyncio.create_task(_pump(reader, ws, data_ch)))
        # as upstream: the session ends once every forwarded connection has ended
        closer = asyncio.create_task(_close_when_done(ws, readers))
        try:
            async for m in ws:
                if m.type != aiohttp.WSMsgType.BINARY or not m.data:
                    continue
                ch = m.data[0]
                w = conns.get(ch)
                if w is not None and not w.is_closing():
                    with contextlib.suppress(ConnectionError):
                        w.write(m.data[1:])
                        await w.drain()
        finally:
            closer.cancel()
            for t in readers:
                t.cancel()
            for w in conns.values():
                w.close()
        return ws

    async def _portforward_spdy(self, ws: web.WebSocketResponse, netns: str) -> None:
        """kubectl's SPDY/3.1 session tunnelled in WebSocket messages."""

        async def send(data: bytes) -> None:
            await ws.send_bytes(data)

        async def dial(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
            return await _dial_in_netns(netns, port)

        session = spdy.PortForwardSession(send, dial)
        try:
            async for m in ws:
                if m.type == aiohttp.WSMsgType.BINARY:
                    await session.feed(m.data)
        except spdy.ProtocolError as e:
            log.warning("port-forward session ended: %s", e)
        finally:
            await session.close()

    async def _netns_path(self, sandbox_id: str) -> str:
        st = await self.cri.pod_sandbox_status(sandbox_id, verbose=True)
        info = json.loads(st.info.get("info", "{}") or "{}")
        path = ((info.get("runtimeSpec") or {}).get("linux") or {}).get("namespaces") or []
        for ns in path:
            if ns.get("type") == "network" and ns.get("path"):
                return str(ns["path"])
        pid = info.get("pid")
        if pid:
            return f"/proc/{pid}/ns/net"
        raise OSError("cannot find the pod's network namespace")


async def _relay(ws: web.WebSocketResponse, rc: RemoteCommand, *, codec: channels.Codec) -> None:
    """Joins the client's channel WebSocket and the runtime's SPDY session until the
    session ends (output, then the Status) or the client goes away."""
    queue = await rc.events()

    async def send(msg: bytes | str) -> None:
        if isinstance(msg, str):
            await ws.send_str(msg)
        else:
            await ws.send_bytes(msg)

    async def down() -> None:
        status_sent = False
        while (ev := await queue.get()) is not None:
            ch, data = ev
            if ch == channels.ERROR:
                status_sent = True
                msg = codec.status(data)
                if msg is not None:
                    await send(msg)
            else:
                await send(codec.encode(ch, data))
        if not status_sent:
            msg = codec.status(json.dumps(channels.SUCCESS).encode())
            if msg is not None:
                await send(msg)

    async def up() -> None:
        async for m in ws:
            if m.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                break
            frame = codec.decode(m.data)
            if frame is None:
                continue
            ch, payload = frame
            # the command may be gone already (its output and status still drain in down())
            with contextlib.suppress(ConnectionError, OSError):
                if ch == channels.STDIN:
                    await rc.write_stdin(payload)
                elif ch == channels.RESIZE:
                    await rc.resize(payload)
                elif ch == channels.CLOSE and codec.close_signal and payload[:1] == bytes([channels.STDIN]):
                    await rc.close_stdin()

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):
            await ws.close(code=1000)


async def _close_when_done(ws: web.WebSocketResponse, readers: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*readers, return_exceptions=True)
    with contextlib.suppress(Exception):
        await ws.close(code=1000)


async def _pump(reader: asyncio.StreamReader, ws: web.WebSocketResponse, ch: int) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await ws.send_bytes(bytes([ch]) + data)
    except (ConnectionError, asyncio.CancelledError):
        pass


def _connect_in_netns(netns: str, port: int) -> socket.socket:
    from k3py.cni.plugin import _setns  # one setns helper for the agent

    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        _setns(target)
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)
    try:
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


async def _dial_in_netns(netns: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = await asyncio.to_thread(_connect_in_netns, netns, port)
    return await asyncio.open_connection(sock=sock)
