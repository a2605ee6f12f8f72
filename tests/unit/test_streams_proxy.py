"""The API server's stream proxy: a kubelet's refused upgrade becomes the client's Status."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiohttp import RequestInfo, WSServerHandshakeError, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from k3py.server import streams
from k3py.server.auth import pki
from k3py.server.errors import APIError
from k3py.server.streams import StreamProxy, _default_container, _handshake_error


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def refused(status: int, headers: dict[str, str]) -> WSServerHandshakeError:
    url = URL("https://127.0.0.1:10250/exec/ns/p/c")
    info = RequestInfo(url=url, method="GET", headers=CIMultiDictProxy(CIMultiDict()), real_url=url)
    return WSServerHandshakeError(
        info,
        (),
        status=status,
        message="Bad Request",
        headers=CIMultiDictProxy(CIMultiDict(headers)),
    )


def test_kubelet_status_header_becomes_the_error() -> None:
    st = {
        "kind": "Status",
        "status": "Failure",
        "reason": "BadRequest",
        "code": 400,
        "message": 'container not found ("c")',
    }
    err = _handshake_error(refused(400, {"X-Kubelet-Status": orjson.dumps(st).decode()}))
    assert err.code == 400 and err.reason == "BadRequest"
    assert err.message == 'unable to upgrade connection: container not found ("c")'


def test_without_header_the_reason_phrase_is_used() -> None:
    err = _handshake_error(refused(403, {}))
    assert err.code == 400 and err.message == "unable to upgrade connection: Bad Request"
    err = _handshake_error(refused(400, {"X-Kubelet-Status": "not json"}))
    assert err.message == "unable to upgrade connection: Bad Request"


def test_default_container() -> None:
    pod = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/default-container": "b"}},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
    }
    assert _default_container(pod) == "b"
    assert _default_container({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}) == "a"


class FakeStore:
    def __init__(self, port: int) -> None:
        self.port = port

    async def get(self, info: object, ns: str, name: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
            },
        }


class FakeCatalog:
    def get(self, group: str, version: str, plural: str) -> object:
        return (group, version, plural)


async def test_dial_retries_and_rereads_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted agent comes back on another port: the proxy follows the Node."""
    keys = pki.ensure_pki(
        tls_dir=tmp_path / "tls",
        node_ip="127.0.0.1",
        advertise_address=None,
        tls_sans=[],
        cluster_domain="cluster.local",
        service_cidr="10.43.0.0/16",
    )
    cert, key = pki.issue_serving_cert(keys, common_name="n", ip_addresses=["127.0.0.1"])
    (tmp_path / "k.crt").write_bytes(cert)
    (tmp_path / "k.key").write_bytes(key)
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(str(tmp_path / "k.crt"), str(tmp_path / "k.key"))
    app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    new_port = free_port()
    store = FakeStore(port=free_port())  # nothing listens there (yet)
    state = SimpleNamespace(store=store, catalog=FakeCatalog())
    proxy = StreamProxy(state, keys=keys, tls_dir=tmp_path)
    assert (tmp_path / "client-kube-apiserver.crt").exists()

    async def agent_comes_back() -> None:
        await asyncio.sleep(1.0)
        await web.TCPSite(runner, "127.0.0.1", new_port, ssl_context=serving).start()
        store.port = new_port

    async def connect(url: str) -> str:
        async with proxy.session().get(url, ssl=proxy.ssl) as r:
            return await r.text()

    monkeypatch.setattr(streams, "DIAL_RETRY_SECONDS", 3.0)
    back = asyncio.create_task(agent_comes_back())
    try:
        assert await proxy._dial("n", "/healthz", connect) == "ok"
        store.port = free_port()
        with pytest.raises(APIError) as e:
            await proxy._dial("n", "/healthz", connect)
        assert e.value.code == 503
    finally:
        await back
        await proxy.close()
        await runner.cleanup()
