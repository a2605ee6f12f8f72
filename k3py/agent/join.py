"""Joining a server with a token (the agent side of k3py.server.join).

1. Fetch ``/cacerts`` without trusting anything and compare its sha256 with the token's
   ``K10<hash>::`` part; a mismatch stops the join (a bare secret without a hash trusts
   the first CA it sees, as K3s does, and says so in the log).
2. Prove the token (HTTP basic ``node:<secret>``) and claim the node name with the node
   password kept in ``<data-dir>/agent/node-password`` (made once, 0600).
3. Receive the node client certificate (``system:node:<name>``), the kubelet serving
   certificate and the client CA; write them under ``<data-dir>/agent/tls`` and a
   kubeconfig at ``<data-dir>/agent/kubeconfig``; read the cluster settings.
Retried with back-off while the server is unreachable.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from k3py.agent.config import AgentConfig
from k3py.client import Client

log = logging.getLogger("k3py.agent.join")


class JoinError(Exception):
    pass


@dataclass
class Joined:
    client: Client
    serving_ssl: ssl.SSLContext
    settings: dict[str, Any]


def parse_token(token: str) -> tuple[str | None, str]:
    """(CA hash or None, secret) of ``K10<hash>::<user>:<secret>`` / ``<secret>``."""
    token = token.strip()
    ca: str | None = None
    creds = token
    if token.startswith("K10") and "::" in token:
        ca, creds = token[3:].split("::", 1)
    _user, sep, secret = creds.partition(":")
    return ca, (secret if sep else creds)


def node_password(cfg: AgentConfig) -> str:
    path = cfg.agent_dir / "node-password"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    pw = secrets.token_hex(16)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(pw + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return pw


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


async def join(cfg: AgentConfig, *, attempts: int = 0) -> Joined:
    if not cfg.server_url:
        raise JoinError("--server is required to join a cluster")
    if not cfg.token:
        raise JoinError("--token is required to join a cluster")
    delay = 1.0
    n = 0
    while True:
        n += 1
        try:
            return await _join_once(cfg)
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            if attempts and n >= attempts:
                raise JoinError(f"cannot reach {cfg.server_url}: {e}") from e
            log.warning("server %s not reachable (%s); retrying in %.0fs", cfg.server_url, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _join_once(cfg: AgentConfig) -> Joined:
    url = cfg.server_url.rstrip("/")
    ca_hash, secret = parse_token(cfg.token)
    auth = "Basic " + base64.b64encode(f"node:{secret}".encode()).decode()
    headers = {"Authorization": auth, "K3py-Node-Name": cfg.node_name, "K3py-Node-Password": node_password(cfg),
               "K3py-Node-IP": cfg.node_ip}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        async with s.get(f"{url}/cacerts", ssl=False) as r:
            if r.status != 200:
                raise JoinError(f"{url}/cacerts answered {r.status}")
            ca_pem = await r.read()
        got = hashlib.sha256(ca_pem).hexdigest()
        if ca_hash is None:
            log.warning("the token carries no CA hash: trusting the server CA %s on first use", got[:16])
        elif ca_hash != got:
            raise JoinError(f"the server's CA certificate (sha256 {got}) does not match the token's hash "
                            f"{ca_hash}: refusing to join")
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        ctx.check_hostname = False  # pinned by hash; servers are often addressed by IP

        async def fetch(method: str, path: str) -> bytes:
            async with s.request(method, f"{url}{path}", headers=headers, ssl=ctx) as r:
                body = await r.read()
                if r.status == 401:
                    raise JoinError(f"the server refused the token (401 Unauthorized) at {path}")
                if r.status != 200:
                    raise JoinError(f"{path}: {r.status} {body.decode(errors='replace')[:300]}")
                return body

        import orjson

        settings = orjson.loads(await fetch("GET", "/v1-k3py/config"))
        client_ca = await fetch("GET", "/v1-k3py/client-ca.crt")
        client_pair = orjson.loads(await fetch("POST", "/v1-k3py/client-kubelet.crt"))
        serving_pair = orjson.loads(await fetch("POST", "/v1-k3py/serving-kubelet.crt"))
    tls = cfg.tls_dir
    _write(tls / "server-ca.crt", ca_pem, 0o644)
    _write(tls / "client-ca.crt", client_ca, 0o644)
    _write(tls / "client-kubelet.crt", client_pair["cert"].encode(), 0o644)
    _write(tls / "client-kubelet.key", client_pair["key"].encode())
    _write(tls / "serving-kubelet.crt", serving_pair["cert"].encode(), 0o644)
    _write(tls / "serving-kubelet.key", serving_pair["key"].encode())
    cfg.cluster_cidr = settings.get("clusterCIDR") or cfg.cluster_cidr
    cfg.service_cidr = settings.get("serviceCIDR") or cfg.service_cidr
    cfg.cluster_dns = settings.get("clusterDNS") or cfg.cluster_dns
    cfg.cluster_domain = settings.get("clusterDomain") or cfg.cluster_domain
    from k3py.server.auth.kubeconfig import write_kubeconfig

    write_kubeconfig(path=cfg.kubeconfig, mode=0o600, server_url=url, ca_pem=ca_pem,
                     client_cert_pem=client_pair["cert"].encode(), client_key_pem=client_pair["key"].encode())
    client = Client.from_kubeconfig(cfg.kubeconfig, field_manager="kubelet")
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(str(tls / "serving-kubelet.crt"), str(tls / "serving-kubelet.key"))
    serving.verify_mode = ssl.CERT_REQUIRED
    serving.load_verify_locations(cadata=client_ca.decode())
    log.info("joined %s as node %s", url, cfg.node_name)
    return Joined(client=client, serving_ssl=serving, settings=settings)
