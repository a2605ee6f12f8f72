"""The API server's side of node streams: ``pods/log``, ``exec``, ``attach`` and
``portforward`` are proxied to the kubelet of the pod's node.

The kubelet is found from the Node (InternalIP and ``status.daemonEndpoints.
kubeletEndpoint.Port``), reached over HTTPS with a client certificate
``system:kube-apiserver`` (client CA) and verified against the server CA.  Logs stream
through unbuffered; WebSocket sessions are joined message by message (the subprotocol
is the one the kubelet chose; pings are answered on each hop).  Authorization of the
request already happened in the API pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web

from k3py.server import errors

log = logging.getLogger("k3py.server.streams")
T = TypeVar("T")
DIAL_RETRY_SECONDS = 5.0


class StreamProxy:
    def __init__(self, state: Any, *, keys: Any, tls_dir: Path) -> None:
        self.state = state
        self.ssl = self._client_ssl(keys, tls_dir)
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def _client_ssl(keys: Any, tls_dir: Path) -> ssl.SSLContext:
        from k3py.server.auth import pki

        cert_path, key_path = tls_dir / "client-kube-apiserver.crt", tls_dir / "client-kube-apiserver.key"
        if not cert_path.exists() or not key_path.exists():
            cert, key = pki.issue_client_cert(keys, common_name="system:kube-apiserver",
                                              organizations=["system:masters"])
            key_path.write_bytes(key)
            key_path.chmod(0o600)
            cert_path.write_bytes(cert)
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=keys.server_ca_pem.decode())
        ctx.check_hostname = False  # kubelets are addressed by IP; the CA is ours
        ctx.load_cert_chain(str(cert_path), str(key_path))
        return ctx

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _kubelet(self, node_name: str) -> str:
        from k3py.server.registry.catalog import Catalog  # noqa: F401 - typing only

        info = self.state.catalog.get("", "v1", "nodes")
        node = await self.state.store.get(info, "", node_name)
        status = node.get("status") or {}
        port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
        ip = ""
        for a in status.get("addresses") or []:
            if a.get("type") == "InternalIP":
                ip = a.get("address", "")
                break
        if not ip:
            raise errors.service_unavailable(f'node "{node_name}" has no InternalIP')
        host = f"[{ip}]" if ":" in ip else ip
        return f"https://{host}:{port}"

    async def __call__(self, request: web.Request, ri: Any, info: Any) -> web.StreamResponse:
        if info.kind != "Pod":
            raise errors.not_found(f"{info.plural}/{ri.subresource}", ri.name)
        pod = await self.state.store.get(info, ri.namespace, ri.name)
        spec = pod.get("spec") or {}
        node = spec.get("nodeName")
        if not node:
            raise errors.bad_request(f"pod {ri.name} does not have a host assigned")
        ns, name = quote(ri.namespace), quote(ri.name)
        query = list(request.query.items())
        if ri.subresource == "portforward":
            return await self._websocket(request, node, f"/portForward/{ns}/{name}", query)
        container = request.query.get("container") or _default_container(pod)
        if not container:
            raise errors.bad_request(f"a container name must be specified for pod {ri.name}")
        names = [c["name"] for c in spec.get("containers") or []] + \
                [c["name"] for c in spec.get("initContainers") or []] + \
                [c["name"] for c in spec.get("ephemeralContainers") or []]
        if container not in names:
            raise errors.bad_request(f"container {container} is not valid for pod {ri.name}")
        query = [(k, v) for k, v in query if k != "container"]
        if ri.subresource == "log":
            return await self._logs(request, node, f"/containerLogs/{ns}/{name}/{quote(container)}", query)
        verb = "exec" if ri.subresource == "exec" else "attach"
        return await self._websocket(request, node, f"/{verb}/{ns}/{name}/{quote(container)}", query)

    async def _dial(self, node: str, path: str, connect: Callable[[str], Awaitable[T]]) -> T:
        """``connect(url)`` to the node's kubelet; a refused connection is retried for a few
        seconds, reading the Node again (a restarted agent may be coming up, on a new port)."""
        deadline = asyncio.get_running_loop().time() + DIAL_RETRY_SECONDS
        while True:
            base = await self._kubelet(node)
            try:
                return await connect(base + path)
            except aiohttp.ClientConnectorError as e:
                if asyncio.get_running_loop().time() >= deadline:
                    raise errors.service_unavailable(f"unable to reach the kubelet: {e}") from e
            await asyncio.sleep(0.5)

    async def _logs(self, request: web.Request, node: str, path: str,
                    query: list[tuple[str, str]]) -> web.StreamResponse:
        async def connect(url: str) -> aiohttp.ClientResponse:
            return await self.session().get(url, params=query, ssl=self.ssl)

        try:
            upstream = await self._dial(node, path, connect)
        except aiohttp.ClientError as e:
            raise errors.service_unavailable(f"unable to reach the kubelet: {e}") from e
        async with upstream:
            if upstream.status != 200:
                body = await upstream.read()
                return web.Response(status=upstream.status, body=body,
                                    content_type=upstream.content_type or "application/json")
            resp = web.StreamResponse(headers={"Content-Type": "text/plain", "Cache-Control": "no-cache"})
            await resp.prepare(request)
            watcher = asyncio.create_task(_close_when_gone(request, upstream))
            try:
                async for chunk in upstream.content.iter_any():
                    await resp.write(chunk)
            except (ConnectionResetError, aiohttp.ClientError):
                pass
            finally:
                watcher.cancel()
            return resp

    async def _websocket(self, request: web.Request, node: str, path: str,
                         query: list[tuple[str, str]]) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise errors.bad_request("upgrade request required: k3py serves exec, attach and port-forward "
                                     "over WebSocket (channel.k8s.io protocols)")
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]

        async def connect(url: str) -> aiohttp.ClientWebSocketResponse:
            return await self.session().ws_connect(url, params=query, protocols=offered, ssl=self.ssl,
                                                   max_msg_size=0, autoping=True)

        try:
            upstream = await self._dial(node, path, connect)
        except aiohttp.WSServerHandshakeError as e:
            raise _handshake_error(e) from e
        except aiohttp.ClientError as e:
            raise errors.service_unavailable(f"unable to reach the kubelet: {e}") from e
        chosen = upstream.protocol
        ws = web.WebSocketResponse(protocols=[chosen] if chosen else (), max_msg_size=0, autoping=True)
        await ws.prepare(request)
        async with upstream:
            await _join(ws, upstream)
        return ws


async def _close_when_gone(request: web.Request, upstream: aiohttp.ClientResponse) -> None:
    """Ends a quiet ``logs -f`` at the kubelet once its reader has gone away."""
    while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110 - no event for it
        await asyncio.sleep(1.0)
    upstream.close()


async def _join(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    async def down() -> None:
        async for m in upstream:
            if m.type == aiohttp.WSMsgType.BINARY:
                await client.send_bytes(m.data)
            elif m.type == aiohttp.WSMsgType.TEXT:
                await client.send_str(m.data)

    async def up() -> None:
        async for m in client:
            if m.type == aiohttp.WSMsgType.BINARY:
                await upstream.send_bytes(m.data)
            elif m.type == aiohttp.WSMsgType.TEXT:
                await upstream.send_str(m.data)

    tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    if tasks[1] in done and not tasks[0].done():
        # the client is done sending: let the command's output and status drain
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await tasks[0]
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    code = upstream.close_code or 1000
    with contextlib.suppress(Exception):
        await client.close(code=code if code in (1000, 1001, 1011) else 1000)


def _handshake_error(e: aiohttp.WSServerHandshakeError) -> errors.APIError:
    """The kubelet's refusal as the client sees it upstream: its Status, with the message
    prefixed "unable to upgrade connection"."""
    raw = e.headers.get("X-Kubelet-Status", "") if e.headers else ""
    try:
        st = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        st = {}
    if not isinstance(st, dict) or not st.get("message"):
        return errors.bad_request(f"unable to upgrade connection: {e.message}")
    code = int(st.get("code") or e.status or 400)
    return errors.APIError(code, str(st.get("reason", "")), f"unable to upgrade connection: {st['message']}")


def _default_container(pod: dict[str, Any]) -> str:
    ann = (pod.get("metadata") or {}).get("annotations") or {}
    name = ann.get("kubectl.kubernetes.io/default-container")
    if name:
        return str(name)
    containers = (pod.get("spec") or {}).get("containers") or []
    if len(containers) == 1:
        return str(containers[0]["name"])
    return str(containers[0]["name"]) if containers else ""


def install(state: Any, *, keys: Any, tls_dir: Path) -> StreamProxy:
    proxy = StreamProxy(state, keys=keys, tls_dir=tls_dir)
    state.stream_proxy = proxy
    return proxy
