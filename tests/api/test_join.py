"""Joining by token against an in-process server: /cacerts and hash pinning, token
checks, node certificates, node passwords, reuse on restart, and what a node identity
may do afterwards (the node authorizer and NodeRestriction in the real pipeline)."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from k3py.agent.config import AgentConfig
from k3py.agent.join import Joined, JoinError, join
from k3py.client import Client
from k3py.client.errors import ApiError
from k3py.client.resources import (
    DEPLOYMENTS,
    LEASES,
    NAMESPACES,
    NODES,
    PODS,
    SECRETS,
    Resource,
)
from k3py.server.errors import APIError
from tests.conftest import ServerHandle, server_config, start_server_thread, stop_server_thread

_SSR = Resource("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    h = start_server_thread(server_config(tmp_path_factory.mktemp("k3py-join")))
    yield h
    stop_server_thread(h)


@pytest.fixture(scope="module")
def token(srv: ServerHandle) -> str:
    return (srv.data_dir / "server" / "token").read_text().strip()


@pytest.fixture
async def admin(srv: ServerHandle) -> AsyncIterator[Client]:
    c = Client.from_kubeconfig(srv.kubeconfig)
    yield c
    await c.close()


def agent_cfg(srv: ServerHandle, data_dir: Path, token: str, node: str) -> AgentConfig:
    return AgentConfig(data_dir=data_dir, server_url=srv.url, token=token, node_name=node,
                       node_ip="127.0.0.2")  # fmt: skip


async def do_join(cfg: AgentConfig) -> Joined:
    return await join(cfg, attempts=1)


def basic(user: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def subject(cert: x509.Certificate, oid: Any) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


async def test_cacerts_is_public_and_matches_the_token_hash(srv: ServerHandle, token: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{srv.url}/cacerts", ssl=False) as r:
        assert r.status == 200
        pem = await r.read()
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert token.startswith("K10" + hashlib.sha256(pem).hexdigest() + "::server:")


async def test_wrong_token_gets_401_status(srv: ServerHandle, token: str) -> None:
    secret = token.rsplit(":", 1)[1]
    async with aiohttp.ClientSession() as s:
        for path, method in [("/v1-k3py/config", "GET"), ("/v1-k3py/client-kubelet.crt", "POST"),
                             ("/v1-k3py/client-ca.crt", "GET")]:  # fmt: skip
            for headers in ({}, basic("node", "nope"), basic("alice", secret)):
                async with s.request(method, srv.url + path, headers=headers, ssl=False) as r:
                    assert r.status == 401, (path, headers)
                    status = orjson.loads(await r.read())
                    assert status["kind"] == "Status" and status["code"] == 401
        async with s.get(srv.url + "/v1-k3py/config", headers=basic("node", secret), ssl=False) as r:
            assert r.status == 200
            settings = orjson.loads(await r.read())
    assert settings["clusterCIDR"] == "10.42.0.0/16" and settings["clusterDNS"] == "10.43.0.10"
    assert settings["serviceCIDR"] == "10.43.0.0/16" and settings["clusterDomain"] == "cluster.local"


async def test_agent_refuses_wrong_hash_and_wrong_token(
    srv: ServerHandle, token: str, tmp_path: Path
) -> None:
    secret = token.rsplit(":", 1)[1]
    pinned = agent_cfg(srv, tmp_path / "a", "K10" + "0" * 64 + "::server:" + secret, "pin")
    with pytest.raises(JoinError, match="does not match the token's hash"):
        await do_join(pinned)
    assert not (pinned.tls_dir / "client-kubelet.crt").exists()
    wrong = agent_cfg(srv, tmp_path / "b", token.rsplit(":", 1)[0] + ":not-it", "wrong")
    with pytest.raises(JoinError, match="401"):
        await do_join(wrong)
    with pytest.raises(JoinError, match="malformed token"):
        await do_join(agent_cfg(srv, tmp_path / "c", "K10abc::server:x", "bad"))


async def test_join_issues_node_certificates(srv: ServerHandle, token: str, tmp_path: Path) -> None:
    cfg = agent_cfg(srv, tmp_path, token, "w1")
    joined = await do_join(cfg)
    try:
        assert not joined.reused
        tls = cfg.tls_dir
        ca_dir = srv.data_dir / "server" / "tls"
        client_ca = x509.load_pem_x509_certificate((ca_dir / "client-ca.crt").read_bytes())
        server_ca = x509.load_pem_x509_certificate((ca_dir / "server-ca.crt").read_bytes())
        cert = x509.load_pem_x509_certificate((tls / "client-kubelet.crt").read_bytes())
        assert subject(cert, NameOID.COMMON_NAME) == ["system:node:w1"]
        assert subject(cert, NameOID.ORGANIZATION_NAME) == ["system:nodes"]
        cert.verify_directly_issued_by(client_ca)
        serving = x509.load_pem_x509_certificate((tls / "serving-kubelet.crt").read_bytes())
        serving.verify_directly_issued_by(server_ca)
        sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert "w1" in sans.get_values_for_type(x509.DNSName)
        assert "127.0.0.2" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
        assert (tls / "client-ca.crt").read_bytes() == (ca_dir / "client-ca.crt").read_bytes()
        for key in ("client-kubelet.key", "serving-kubelet.key"):
            assert (tls / key).stat().st_mode & 0o077 == 0
        assert (cfg.agent_dir / "node-password").stat().st_mode & 0o077 == 0
        assert cfg.kubeconfig.exists() and cfg.cluster_dns == "10.43.0.10"
        # The certificate authenticates as the node.
        review = await joined.client.create(
            _SSR, {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        )
        user = review["status"]["userInfo"]
        assert user["username"] == "system:node:w1" and "system:nodes" in user["groups"]
    finally:
        await joined.client.close()


async def test_node_password_claims_the_name(srv: ServerHandle, token: str, tmp_path: Path) -> None:
    first = agent_cfg(srv, tmp_path / "first", token, "claimed")
    await (await do_join(first)).client.close()
    # Another machine (its own data dir, so its own password) cannot take the name.
    thief = agent_cfg(srv, tmp_path / "thief", token, "claimed")
    with pytest.raises(JoinError, match="already claimed"):
        await do_join(thief)
    assert not (thief.tls_dir / "client-kubelet.crt").exists()
    # The owner may join again (lost certificates: same password, new certificates).
    shutil.rmtree(first.tls_dir)
    again = await do_join(first)
    assert not again.reused
    await again.client.close()


async def test_server_claims_its_own_node_name(srv: ServerHandle, token: str, tmp_path: Path) -> None:
    # What start_embedded_agent does before starting this node's agent.
    join_service = srv.running.state.join
    srv.call(join_service.claim(name="server-node", password="p" * 32))
    srv.call(join_service.claim(name="server-node", password="p" * 32))  # again: the same owner
    with pytest.raises(JoinError, match="already claimed"):
        await do_join(agent_cfg(srv, tmp_path, token, "server-node"))
    with pytest.raises(APIError, match="at least 16"):
        srv.call(join_service.claim(name="other", password="short"))
    with pytest.raises(APIError, match="invalid node name"):
        srv.call(join_service.claim(name="Not_A_Name", password="p" * 32))


async def test_restart_reuses_certificates(srv: ServerHandle, token: str, tmp_path: Path) -> None:
    cfg = agent_cfg(srv, tmp_path, token, "w-restart")
    await (await do_join(cfg)).client.close()
    crt = cfg.tls_dir / "client-kubelet.crt"
    before = crt.read_bytes()
    # Reused even with the server unreachable: nothing is asked of it.
    offline = agent_cfg(srv, tmp_path, token, "w-restart")
    offline.server_url = "https://127.0.0.1:9"
    kept = await do_join(offline)
    await kept.client.close()
    assert kept.reused and crt.read_bytes() == before and offline.cluster_cidr == "10.42.0.0/16"
    # A new node IP is not in the serving certificate: join again.
    moved = agent_cfg(srv, tmp_path, token, "w-restart")
    moved.node_ip = "127.0.0.3"
    rejoined = await do_join(moved)
    await rejoined.client.close()
    assert not rejoined.reused and crt.read_bytes() != before
    # A token pinned to another CA does not reuse what this CA signed.
    secret = token.rsplit(":", 1)[1]
    other = agent_cfg(srv, tmp_path, "K10" + "1" * 64 + "::server:" + secret, "w-restart")
    with pytest.raises(JoinError, match="does not match"):
        await do_join(other)


async def test_bare_secret_trusts_on_first_use(srv: ServerHandle, token: str, tmp_path: Path) -> None:
    joined = await do_join(agent_cfg(srv, tmp_path, token.rsplit(":", 1)[1], "w-bare"))
    await joined.client.close()
    assert not joined.reused


async def _forbidden(coro: Any) -> None:
    with pytest.raises(ApiError) as e:
        await coro
    assert e.value.code == 403, e.value


async def test_node_identity_is_authorized_as_a_node_only(
    srv: ServerHandle, token: str, tmp_path: Path, admin: Client
) -> None:
    for name in ("ns-w5", "ns-other"):
        await admin.create(NAMESPACES, {"metadata": {"name": name}})
    await admin.create(NODES, {"metadata": {"name": "w6"}})
    for ns, pod, bound in (("ns-w5", "mine", "w5"), ("ns-other", "theirs", "w6")):
        await admin.create(PODS, {"metadata": {"name": pod}, "spec": {
            "nodeName": bound, "containers": [{"name": "c", "image": "busybox"}]}}, namespace=ns)
        await admin.create(SECRETS, {"metadata": {"name": "s"}, "stringData": {"k": "v"}},
                           namespace=ns)  # fmt: skip
    joined = await do_join(agent_cfg(srv, tmp_path, token, "w5"))
    node = joined.client
    try:
        # Its own Node and Lease.
        await node.create(NODES, {"metadata": {"name": "w5"}})
        await node.patch(NODES, "w5", {"metadata": {"labels": {"a": "b"}}})
        await node.patch(NODES, "w5", {"status": {"nodeInfo": {"kubeletVersion": "v1.32.0"}}},
                         subresource="status")  # fmt: skip
        lease = {"metadata": {"name": "w5"}, "spec": {"holderIdentity": "w5"}}
        await node.create(LEASES, lease, namespace="kube-node-lease")
        assert (await node.get(LEASES, "w5", namespace="kube-node-lease"))["spec"]["holderIdentity"]
        assert len((await node.list(PODS)).items) >= 2
        # Not another node's, nor anything else.
        await _forbidden(node.create(NODES, {"metadata": {"name": "w7"}}))
        await _forbidden(node.patch(NODES, "w6", {"metadata": {"labels": {"a": "b"}}}))
        await _forbidden(node.delete(NODES, "w6"))
        await _forbidden(node.create(LEASES, {"metadata": {"name": "w6"}},
                                     namespace="kube-node-lease"))  # fmt: skip
        deploy = {"metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}  # fmt: skip
        await _forbidden(node.create(DEPLOYMENTS, deploy, namespace="ns-w5"))
        # Pods bound to it, and Secrets only where its pods are.
        status = {"status": {"phase": "Running"}}
        await node.patch(PODS, "mine", status, namespace="ns-w5", subresource="status")
        await _forbidden(node.patch(PODS, "theirs", status, namespace="ns-other",
                                    subresource="status"))  # fmt: skip
        assert (await node.get(SECRETS, "s", namespace="ns-w5"))["data"]["k"]
        await _forbidden(node.get(SECRETS, "s", namespace="ns-other"))
        await _forbidden(node.list(SECRETS))
        await _forbidden(node.delete(PODS, "theirs", namespace="ns-other"))
        await node.delete(PODS, "mine", namespace="ns-w5")
    finally:
        await node.close()


def test_agent_command_stops_cleanly_while_the_server_is_unreachable(tmp_path: Path) -> None:
    k3py = str(Path(sys.executable).with_name("k3py"))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [k3py, "agent", "--join", f"https://127.0.0.1:{port}", "--token", "s" * 32,
         "--data-dir", str(tmp_path), "--node-name", "offline", "--config", str(tmp_path / "none")],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "K3PY_URL": "", "K3PY_TOKEN": ""},
    )  # fmt: skip
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if "unreachable" in line:
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert "interrupted while starting" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (tmp_path / "agent" / "containerd").exists()  # joining comes first


def test_agent_command_refuses_missing_settings(tmp_path: Path) -> None:
    k3py = str(Path(sys.executable).with_name("k3py"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("K3PY_")}
    res = subprocess.run([k3py, "agent", "--config", str(tmp_path / "none"), "--token", "t"],
                         capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert res.returncode != 0 and "--server (or K3PY_URL) is required" in res.stderr
    helptext = subprocess.run([k3py, "agent", "--help"], capture_output=True, text=True, timeout=60)
    for flag in ("--server", "--join", "--token-file", "--node-label", "--kubelet-arg"):
        assert flag in helptext.stdout
