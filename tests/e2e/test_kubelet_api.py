"""The kubelet HTTPS API against real containerd, without an API server: client-cert
authentication, logs (tail, timestamps, follow, previous), exec over the WebSocket
channel protocols (v5 with the close signal, v4, base64), port-forward over the Python
client's framing and over SPDY/3.1 in WebSocket (a small SPDY client built on our
framing module), and the Summary API.

One containerd and one KubeletServer serve the module; pods use the node's network.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import struct
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
import pytest
import pytest_asyncio

from k3py.agent import spdy
from k3py.agent.api import KubeletServer
from k3py.agent.config import AgentConfig
from k3py.agent.containerd import Containerd
from k3py.agent.cri import api_pb2 as cri
from k3py.agent.cri.client import CRIClient
from k3py.agent.join import kubelet_ssl_context
from k3py.agent.streams import remotecommand
from k3py.server.auth import pki
from tests.e2e.conftest import free_port
from tests.e2e.runtime_fixtures import (
    BUSYBOX_REF,
    build_test_images,
    cleanup_runtime,
    remove_all_pods,
    start_runtime,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
NS = "kapi"
T = TypeVar("T")


@dataclass
class Kubelet:
    cfg: AgentConfig
    cd: Containerd
    client: CRIClient
    server: KubeletServer
    base: str
    apiserver: ssl.SSLContext  # system:kube-apiserver
    node: ssl.SSLContext  # system:node:other, not allowed
    web_port: int


def client_context(keys: pki.PKI, tmp: Path, *, cn: str, orgs: list[str]) -> ssl.SSLContext:
    cert, key = pki.issue_client_cert(keys, common_name=cn, organizations=orgs)
    (tmp / f"{cn}.crt").write_bytes(cert)
    (tmp / f"{cn}.key").write_bytes(key)
    ctx = ssl.create_default_context(cadata=keys.server_ca_pem.decode())
    ctx.check_hostname = False
    ctx.load_cert_chain(str(tmp / f"{cn}.crt"), str(tmp / f"{cn}.key"))
    return ctx


async def run_pod(
    k: AgentConfig, client: CRIClient, name: str, containers: dict[str, str]
) -> tuple[str, dict[str, str]]:
    labels = {
        "io.kubernetes.pod.namespace": NS,
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.uid": f"uid-{name}",
    }
    logs = k.pod_logs_dir / f"{NS}_{name}_uid-{name}"
    logs.mkdir(parents=True, exist_ok=True)
    sb_cfg = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name=name, namespace=NS, uid=f"uid-{name}"),
        log_directory=str(logs),
        labels=labels,
        linux=cri.LinuxPodSandboxConfig(
            cgroup_parent=f"/k3py-kapi-{os.getpid()}/pod-{name}",
            security_context=cri.LinuxSandboxSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NODE)
            ),
        ),
    )
    sb = await client.run_pod_sandbox(sb_cfg)
    ids = {}
    for cname, script in containers.items():
        ids[cname] = await start_container(
            client, sb=sb, sb_cfg=sb_cfg, name=cname, script=script, attempt=0
        )
    return sb, ids


async def start_container(
    client: CRIClient,
    *,
    sb: str,
    sb_cfg: cri.PodSandboxConfig,
    name: str,
    script: str,
    attempt: int,
) -> str:
    cfg = cri.ContainerConfig(
        metadata=cri.ContainerMetadata(name=name, attempt=attempt),
        image=cri.ImageSpec(image=BUSYBOX_REF),
        command=["/bin/sh", "-c", script],
        log_path=f"{name}/{attempt}.log",
        labels={**sb_cfg.labels, "io.kubernetes.container.name": name},
    )
    cid = await client.create_container(sb, cfg, sb_cfg)
    await client.start_container(cid)
    return cid


async def eventually(what: str, fn: Callable[[], Awaitable[T | None]], timeout: float = 30) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        got = await fn()
        if got:
            return got
        last = got
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def kubelet() -> AsyncIterator[Kubelet]:
    if os.geteuid() != 0:
        raise RuntimeError("tests/e2e run as root (containerd)")
    tmp = Path(tempfile.mkdtemp(prefix="k3ka-", dir="/tmp"))
    cfg = AgentConfig(
        data_dir=tmp / "d", node_name="kapi-node", node_ip="127.0.0.1", kubelet_port=0
    )
    imgs = await asyncio.to_thread(build_test_images, tmp / "img")
    cd, client = await start_runtime(cfg, images={"busybox": imgs["busybox"]})
    server: KubeletServer | None = None
    try:
        keys = pki.ensure_pki(
            tls_dir=tmp / "tls",
            node_ip="127.0.0.1",
            advertise_address=None,
            tls_sans=[],
            cluster_domain="cluster.local",
            service_cidr="10.43.0.0/16",
        )
        cert, key = pki.issue_serving_cert(
            keys, common_name="kapi-node", ip_addresses=["127.0.0.1"]
        )
        (tmp / "kubelet.crt").write_bytes(cert)
        (tmp / "kubelet.key").write_bytes(key)
        serving = kubelet_ssl_context(
            cert=tmp / "kubelet.crt", key=tmp / "kubelet.key", client_ca_pem=keys.client_ca_pem
        )
        server = KubeletServer(cfg, client, serving)
        port = await server.start()
        web_port = free_port()
        await run_pod(
            cfg,
            client,
            "talker",
            {
                "main": "i=0; while true; do i=$((i+1)); echo line $i; echo err $i >&2; sleep 0.2; done",
                "web": f"mkdir -p /www && echo hello-web > /www/index.html && exec httpd -f -p 127.0.0.1:{web_port} -h /www",
            },
        )
        yield Kubelet(
            cfg=cfg,
            cd=cd,
            client=client,
            server=server,
            base=f"https://127.0.0.1:{port}",
            apiserver=client_context(keys, tmp, cn="system:kube-apiserver", orgs=[]),
            node=client_context(keys, tmp, cn="system:node:other", orgs=["system:nodes"]),
            web_port=web_port,
        )
    finally:
        if server is not None:
            await server.stop()
        with contextlib.suppress(Exception):
            await remove_all_pods(client)
        await client.close()
        await cd.stop()
        cleanup_runtime(cfg.containerd_dir)
        shutil.rmtree(tmp, ignore_errors=True)


async def get(k: Kubelet, path: str, *, ctx: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s, s.get(k.base + path, ssl=ctx or k.apiserver) as r:
        return r.status, await r.read()


async def test_client_certificates(kubelet: Kubelet) -> None:
    assert await get(kubelet, "/healthz") == (200, b"ok")
    status, body = await get(kubelet, f"/containerLogs/{NS}/talker/main", ctx=kubelet.node)
    assert status == 403 and orjson.loads(body)["reason"] == "Forbidden"
    anonymous = ssl.create_default_context()
    anonymous.check_hostname, anonymous.verify_mode = False, ssl.CERT_NONE
    with pytest.raises(aiohttp.ClientError):
        await get(kubelet, f"/containerLogs/{NS}/talker/main", ctx=anonymous)


async def test_logs_tail_timestamps_and_follow(kubelet: Kubelet) -> None:
    async def some() -> bytes | None:
        body = (await get(kubelet, f"/containerLogs/{NS}/talker/main"))[1]
        return body if body.count(b"\n") >= 4 else None

    await eventually("log lines", some)
    status, body = await get(kubelet, f"/containerLogs/{NS}/talker/main?tailLines=2")
    # stdout and stderr lines, in the order containerd wrote them
    assert status == 200 and len(body.splitlines()) == 2
    assert {line.split()[0] for line in body.splitlines()} <= {b"line", b"err"}
    body = (await get(kubelet, f"/containerLogs/{NS}/talker/main?tailLines=1&timestamps=true"))[1]
    ts, text = body.decode().split(" ", 1)
    assert ts.endswith("Z") and "T" in ts and text.split()[0] in ("line", "err")
    assert (await get(kubelet, f"/containerLogs/{NS}/talker/main?limitBytes=5"))[1] in (
        b"line ",
        b"err 1",
    )
    status, body = await get(kubelet, f"/containerLogs/{NS}/talker/main?tailLines=x")
    assert status == 400
    async with (
        aiohttp.ClientSession() as s,
        s.get(
            f"{kubelet.base}/containerLogs/{NS}/talker/main?follow=true&tailLines=1",
            ssl=kubelet.apiserver,
        ) as r,
    ):
        lines = [await asyncio.wait_for(r.content.readline(), 10) for _ in range(8)]
    numbers = [int(x.split()[1]) for x in lines if x.startswith(b"line ")]
    assert len(numbers) >= 3 and numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_logs_previous_and_follow_ends_with_the_container(kubelet: Kubelet) -> None:
    k = kubelet
    sb, ids = await run_pod(k.cfg, k.client, "restarts", {"app": "echo run-0; exit 1"})

    async def exited() -> bool:
        return (await k.client.container_status(ids["app"])).status.state == cri.CONTAINER_EXITED

    await eventually("first run exits", exited)
    # while it waits to restart, --previous and the plain log both show the last run
    assert (await get(k, f"/containerLogs/{NS}/restarts/app?previous=true"))[1] == b"run-0\n"
    sb_cfg = (await k.client.pod_sandbox_status(sb)).status
    del sb_cfg
    cfg = cri.PodSandboxConfig(
        metadata=cri.PodSandboxMetadata(name="restarts", namespace=NS, uid="uid-restarts"),
        log_directory=str(k.cfg.pod_logs_dir / f"{NS}_restarts_uid-restarts"),
        labels={
            "io.kubernetes.pod.namespace": NS,
            "io.kubernetes.pod.name": "restarts",
            "io.kubernetes.pod.uid": "uid-restarts",
        },
    )
    await start_container(
        k.client, sb=sb, sb_cfg=cfg, name="app", script="echo run-1; sleep 1; echo bye", attempt=1
    )
    assert (await get(k, f"/containerLogs/{NS}/restarts/app?previous=true"))[1] == b"run-0\n"
    # follow ends once the container exits, with everything it wrote
    status, body = await asyncio.wait_for(
        get(k, f"/containerLogs/{NS}/restarts/app?follow=true"), 20
    )
    assert status == 200 and body == b"run-1\nbye\n"
    status, body = await get(k, f"/containerLogs/{NS}/talker/main?previous=true")
    assert status == 400 and b"previous terminated container" in body


async def exec_ws(
    k: Kubelet,
    query: str,
    *,
    protocols: list[str],
    stdin: list[bytes | str] | None = None,
    container: str = "main",
) -> tuple[str | None, list[tuple[int, bytes]], int | None]:
    """Runs an exec session: (chosen protocol, received (channel, data), close code)."""
    got: list[tuple[int, bytes]] = []
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(
            f"{k.base}/exec/{NS}/talker/{container}?{query}", protocols=protocols, ssl=k.apiserver
        ) as ws,
    ):
        for msg in stdin or []:
            if isinstance(msg, str):
                await ws.send_str(msg)
            else:
                await ws.send_bytes(msg)
        async with asyncio.timeout(20):
            async for m in ws:
                if m.type == aiohttp.WSMsgType.BINARY:
                    got.append((m.data[0], m.data[1:]))
                elif m.type == aiohttp.WSMsgType.TEXT:
                    import base64

                    got.append((int(m.data[0]), base64.b64decode(m.data[1:])))
        return ws.protocol, got, ws.close_code


def joined(got: list[tuple[int, bytes]], ch: int) -> bytes:
    return b"".join(d for c, d in got if c == ch)


def cmd(*args: str) -> str:
    return "&".join(f"command={quote(a)}" for a in args)


async def test_exec_v5_exit_code_and_stdin_close(kubelet: Kubelet) -> None:
    q = cmd("sh", "-c", "echo out; echo err >&2; exit 3") + "&stdout=true&stderr=true"
    proto, got, code = await exec_ws(kubelet, q, protocols=["v5.channel.k8s.io"])
    assert proto == "v5.channel.k8s.io" and code == 1000
    assert joined(got, 1) == b"out\n" and joined(got, 2) == b"err\n"
    status = orjson.loads(joined(got, 3))
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    # stdin, then the close signal: the command sees EOF, later output and status follow
    q = cmd("sh", "-c", "wc -c; sleep 1; echo done") + "&stdin=true&stdout=true&stderr=true"
    _, got, _ = await exec_ws(
        kubelet,
        q,
        protocols=["v5.channel.k8s.io"],
        stdin=[b"\x00" + b"z" * 50_000, b"\x00tail", bytes([255, 0])],
    )
    assert joined(got, 1).split() == [b"50004", b"done"]
    assert orjson.loads(joined(got, 3)) == {"metadata": {}, "status": "Success"}


async def test_exec_v4_base64_and_tty(kubelet: Kubelet) -> None:
    q = cmd("sh", "-c", "echo v4; exit 5") + "&stdout=true&stderr=true"
    proto, got, _ = await exec_ws(kubelet, q, protocols=["v4.channel.k8s.io"])
    assert proto == "v4.channel.k8s.io" and joined(got, 1) == b"v4\n"
    assert orjson.loads(joined(got, 3))["details"]["causes"][0]["message"] == "5"
    proto, got, _ = await exec_ws(kubelet, q, protocols=["v4.base64.channel.k8s.io"])
    assert proto == "v4.base64.channel.k8s.io" and joined(got, 1) == b"v4\n"
    # a terminal: one output stream, resize accepted
    q = cmd("sh", "-c", "tty; sleep 2; stty size") + "&stdout=true&stdin=true&tty=true"
    _, got, _ = await exec_ws(
        kubelet, q, protocols=["v5.channel.k8s.io"], stdin=[b'\x04{"Width":100,"Height":30}']
    )
    out = joined(got, 1)
    assert b"/dev/pts/" in out and b"30 100" in out


async def test_exec_errors(kubelet: Kubelet) -> None:
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await s.ws_connect(
                f"{kubelet.base}/exec/{NS}/talker/nope?command=true&stdout=true",
                protocols=["v5.channel.k8s.io"],
                ssl=kubelet.apiserver,
            )
        assert e.value.status == 400
        # the Status rides in a header too: a refused WebSocket upgrade has no readable body
        assert e.value.headers is not None
        status = orjson.loads(e.value.headers["X-Kubelet-Status"])
        assert status["message"] == 'container not found ("nope")' and status["code"] == 400


async def test_port_forward_websocket_framing(kubelet: Kubelet) -> None:
    port = kubelet.web_port
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(
            f"{kubelet.base}/portForward/{NS}/talker?ports={port}",
            protocols=["v4.channel.k8s.io"],
            ssl=kubelet.apiserver,
        ) as ws,
    ):
        first = [await ws.receive_bytes(timeout=10) for _ in range(2)]
        assert first == [bytes([0, port & 0xFF, port >> 8]), bytes([1, port & 0xFF, port >> 8])]
        await ws.send_bytes(b"\x00GET / HTTP/1.0\r\n\r\n")
        data = b""
        async with asyncio.timeout(10):
            while True:  # httpd closes after its answer: so does the session
                m = await ws.receive()
                if m.type != aiohttp.WSMsgType.BINARY:
                    break
                assert m.data[0] == 0
                data += m.data[1:]
    assert data.startswith(b"HTTP/1.") and data.endswith(b"hello-web\n")
    assert ws.close_code == 1000


class SpdyClient:
    """Just enough of kubectl's port-forward side: streams error + data per request."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.z = spdy.new_compressor()
        self.zin = spdy.new_decompressor()
        self.frames = spdy.FrameReader()
        self.next_id = 1

    async def open(self, headers: dict[str, str]) -> int:
        sid, self.next_id = self.next_id, self.next_id + 2
        block = spdy.encode_headers(self.z, headers)
        await self.ws.send_bytes(
            spdy.control_frame(spdy.SYN_STREAM, 0, struct.pack(">IIBB", sid, 0, 0, 0) + block)
        )
        return sid

    async def receive(self) -> list[spdy.Frame]:
        out = self.frames.feed(await self.ws.receive_bytes(timeout=10))
        for f in out:
            if f.control and f.ftype == spdy.SYN_REPLY:
                spdy.decode_headers(self.zin, f.payload[4:])
        return out


async def test_port_forward_spdy_in_websocket(kubelet: Kubelet) -> None:
    port = str(kubelet.web_port)
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(
            f"{kubelet.base}/portForward/{NS}/talker",
            protocols=[spdy.PROTOCOL],
            ssl=kubelet.apiserver,
        ) as ws,
    ):
        assert ws.protocol == spdy.PROTOCOL
        c = SpdyClient(ws)
        for request in ("0", "1"):  # two connections over one session
            err = await c.open({"streamType": "error", "port": port, "requestID": request})
            data = await c.open({"streamType": "data", "port": port, "requestID": request})
            await ws.send_bytes(spdy.data_frame(data, spdy.FLAG_FIN, b"GET / HTTP/1.0\r\n\r\n"))
            await ws.send_bytes(spdy.control_frame(spdy.PING, 0, struct.pack(">I", 9)))
            body, replies, pong, fin = b"", set(), False, False
            async with asyncio.timeout(10):
                while not (fin and pong):
                    for f in await c.receive():
                        if f.control and f.ftype == spdy.SYN_REPLY:
                            replies.add(f.stream_id)
                        elif f.control and f.ftype == spdy.PING:
                            pong = True
                        elif not f.control and f.stream_id == data:
                            body += f.payload
                            fin = fin or bool(f.flags & spdy.FLAG_FIN)
            assert replies == {err, data}
            assert body.startswith(b"HTTP/1.") and body.endswith(b"hello-web\n")
        # a port nobody listens on: the error stream says so
        closed = str(free_port())
        err = await c.open({"streamType": "error", "port": closed, "requestID": "2"})
        await c.open({"streamType": "data", "port": closed, "requestID": "2"})
        message = b""
        async with asyncio.timeout(10):
            while b"error forwarding port" not in message:
                message += b"".join(
                    f.payload for f in await c.receive() if not f.control and f.stream_id == err
                )


async def test_stats_summary(kubelet: Kubelet) -> None:
    async def summary() -> dict[str, Any] | None:
        status, body = await get(kubelet, "/stats/summary")
        assert status == 200
        s: dict[str, Any] = orjson.loads(body)
        pods = {p["podRef"]["name"]: p for p in s["pods"]}
        talker = pods.get("talker")
        if talker is None or not all(c["cpu"]["usageNanoCores"] for c in talker["containers"][:1]):
            return None
        return s

    s = await eventually("CPU rates (two samples)", summary)
    assert s["node"]["nodeName"] == "kapi-node"
    assert (
        s["node"]["memory"]["workingSetBytes"] > 0 and s["node"]["cpu"]["usageCoreNanoSeconds"] > 0
    )
    talker = next(p for p in s["pods"] if p["podRef"]["name"] == "talker")
    assert talker["podRef"] == {"namespace": NS, "name": "talker", "uid": "uid-talker"}
    names = {c["name"] for c in talker["containers"]}
    assert names == {"main", "web"}
    assert all(c["memory"]["workingSetBytes"] > 0 for c in talker["containers"])
    status, body = await get(kubelet, "/metrics/resource")
    text = body.decode()
    assert (
        status == 200
        and f'container_memory_working_set_bytes{{container="web",namespace="{NS}",pod="talker"}}'
        in text
        and "\nnode_cpu_usage_seconds_total " in text
    )


async def test_exec_command_leaving_stdin_unread(kubelet: Kubelet) -> None:
    """The command exits without reading all of stdin: its output and a status arrive."""
    q = cmd("sh", "-c", "head -c 5; exit 4") + "&stdin=true&stdout=true&stderr=true"
    chunks: list[bytes | str] = [b"\x00" + b"y" * 65536 for _ in range(32)]
    _, got, code = await exec_ws(
        kubelet, q, protocols=["v5.channel.k8s.io"], stdin=[*chunks, bytes([255, 0])]
    )
    assert joined(got, 1) == b"yyyyy" and code == 1000
    status = orjson.loads(joined(got, 3))
    # containerd reports the exit code unless its stdin copy got stuck on the full FIFO of
    # the exited command (a race in containerd): then the session still ends, with a Failure
    if "details" in status:
        assert status["details"]["causes"][0]["message"] == "4"
    else:
        assert status["status"] == "Failure" and status["message"] == remotecommand.NO_STATUS


async def test_attach_streams_the_running_container_output(kubelet: Kubelet) -> None:
    lines: list[bytes] = []
    async with (
        aiohttp.ClientSession() as s,
        s.ws_connect(
            f"{kubelet.base}/attach/{NS}/talker/main?stdout=true&stderr=true",
            protocols=["v5.channel.k8s.io"],
            ssl=kubelet.apiserver,
        ) as ws,
    ):
        async with asyncio.timeout(10):
            while len(lines) < 3:
                m = await ws.receive_bytes()
                if m[0] == 1:
                    lines += m[1:].splitlines()
    numbers = [int(x.split()[1]) for x in lines]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
