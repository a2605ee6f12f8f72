"""Joining a server with a token (the agent side of k3py.server.join).

1. Fetch ``/cacerts`` without trusting anything and compare its sha256 with the token's
   ``K10<hash>::`` part; a mismatch stops the join (a bare secret without a hash trusts
   the first CA it sees, as K3s does, and says so in the log).
2. Prove the token (HTTP basic ``node:<secret>``) and claim the node name with the node
   password kept in ``<data-dir>/agent/node-password`` (made once, 0600; K3s keeps it in
   /etc/rancher/node/password).
3. Receive the node client certificate (``system:node:<name>``), the kubelet serving
   certificate and the client CA (keys are made by the server, as K3s does); write them
   under ``<data-dir>/agent/tls``, a kubeconfig at ``<data-dir>/agent/kubeconfig`` and
   the cluster settings at ``<data-dir>/agent/cluster.json``.

A restarted agent reuses what it has when it still fits (same CA as the token's hash,
certificates signed by the CAs next to them, for this node name and IP, not expiring
within 30 days) and joins again otherwise.  Unreachable servers are retried with
back-off; refusals (401, 403, a CA mismatch) raise :class:`JoinError` at once.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import logging
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from cryptography import x509
from cryptography.x509.oid import NameOID

from k3py.agent.config import AgentConfig
from k3py.client import Client

log = logging.getLogger("k3py.agent.join")

RENEW_WITHIN = dt.timedelta(days=30)
SETTINGS = ("clusterCIDR", "serviceCIDR", "clusterDNS", "clusterDomain")


class JoinError(Exception):
    pass


@dataclass
class Joined:
    client: Client
    serving_ssl: ssl.SSLContext
    settings: dict[str, Any]
    reused: bool = False  # certificates from an earlier join, no request to the server


def parse_token(token: str) -> tuple[str | None, str]:
    """(CA hash or None, secret) of ``K10<hash>::<user>:<secret>`` / ``<secret>``."""
    from k3py.server.auth.token import TokenError
    from k3py.server.auth.token import parse_token as split

    try:
        ca, _user, secret = split(token)
    except TokenError as e:
        raise JoinError(f"malformed token: {e}") from e
    return ca, secret


def node_password(cfg: AgentConfig) -> str:
    path = cfg.agent_dir / "node-password"
    if path.exists():
        return path.read_text().strip()
    pw = secrets.token_hex(16)
    _write(path, (pw + "\n").encode())
    return pw


def _write(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


async def join(cfg: AgentConfig, *, attempts: int = 0) -> Joined:
    """Join (or rejoin with the certificates kept from last time); ``attempts`` bounds
    the retries while the server is unreachable (0: forever)."""
    if not cfg.server_url:
        raise JoinError("--server is required to join a cluster")
    if not cfg.token:
        raise JoinError("--token is required to join a cluster")
    ca_hash, _secret = parse_token(cfg.token)
    kept = reuse(cfg, ca_hash=ca_hash)
    if kept is not None:
        log.info("node %s: reusing the certificates of an earlier join", cfg.node_name)
        return kept
    delay = 1.0
    n = 0
    while True:
        n += 1
        try:
            await _join_once(cfg)
            break
        except (aiohttp.ClientConnectionError, TimeoutError) as e:
            if attempts and n >= attempts:
                raise JoinError(f"cannot reach {cfg.server_url}: {e}") from e
            log.warning("server %s unreachable (%s); retrying in %.0fs", cfg.server_url, e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
    log.info("joined %s as node %s", cfg.server_url, cfg.node_name)
    return _load(cfg, reused=False)


async def _join_once(cfg: AgentConfig) -> None:
    url = cfg.server_url.rstrip("/")
    ca_hash, secret = parse_token(cfg.token)
    auth = "Basic " + base64.b64encode(f"node:{secret}".encode()).decode()
    headers = {
        "Authorization": auth,
        "K3py-Node-Name": cfg.node_name,
        "K3py-Node-Password": node_password(cfg),
        "K3py-Node-IP": cfg.node_ip,
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        async with s.get(f"{url}/cacerts", ssl=False) as r:
            if r.status != 200:
                raise JoinError(f"{url}/cacerts answered {r.status}")
            ca_pem = await r.read()
        check_ca(ca_pem, ca_hash)
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        ctx.check_hostname = False  # pinned by hash; servers are often addressed by IP

        async def fetch(method: str, path: str) -> bytes:
            async with s.request(method, f"{url}{path}", headers=headers, ssl=ctx) as r:
                body = await r.read()
                if r.status == 401:
                    raise JoinError(f"the server refused the token (401 Unauthorized) at {path}")
                if r.status != 200:
                    raise JoinError(f"{path}: {r.status} {_message(body)}")
                return body

        settings = orjson.loads(await fetch("GET", "/v1-k3py/config"))
        client_ca = await fetch("GET", "/v1-k3py/client-ca.crt")
        client_pair = orjson.loads(await fetch("POST", "/v1-k3py/client-kubelet.crt"))
        serving_pair = orjson.loads(await fetch("POST", "/v1-k3py/serving-kubelet.crt"))
    tls = cfg.tls_dir
    _write(tls / "server-ca.crt", ca_pem, 0o644)
    _write(tls / "client-ca.crt", client_ca, 0o644)
    _write(tls / "client-kubelet.key", client_pair["key"].encode())
    _write(tls / "client-kubelet.crt", client_pair["cert"].encode(), 0o644)
    _write(tls / "serving-kubelet.key", serving_pair["key"].encode())
    _write(tls / "serving-kubelet.crt", serving_pair["cert"].encode(), 0o644)
    kept = {k: settings[k] for k in SETTINGS if settings.get(k)}
    _write(cfg.agent_dir / "cluster.json", orjson.dumps(kept), 0o644)


def check_ca(ca_pem: bytes, ca_hash: str | None) -> None:
    """Refuse a server CA whose sha256 is not the token's pinned hash."""
    got = hashlib.sha256(ca_pem).hexdigest()
    if ca_hash is None:
        log.warning(
            "the token carries no CA hash: trusting the server CA %s on first use", got[:16]
        )
    elif ca_hash != got:
        raise JoinError(
            f"the server's CA certificate (sha256 {got}) does not match the token's hash "
            f"{ca_hash}: refusing to join"
        )


def _message(body: bytes) -> str:
    try:
        status = orjson.loads(body)
        if isinstance(status, dict) and status.get("message"):
            return str(status["message"])
    except orjson.JSONDecodeError:
        pass
    return body.decode(errors="replace")[:300]


def reuse(cfg: AgentConfig, *, ca_hash: str | None) -> Joined | None:
    """The result of an earlier join if everything kept still fits, else None."""
    tls = cfg.tls_dir
    names = ("server-ca.crt", "client-ca.crt", "client-kubelet.crt", "client-kubelet.key",
             "serving-kubelet.crt", "serving-kubelet.key")  # fmt: skip
    if not all((tls / n).exists() for n in names) or not (cfg.agent_dir / "cluster.json").exists():
        return None
    try:
        server_ca_pem = (tls / "server-ca.crt").read_bytes()
        if ca_hash is not None and hashlib.sha256(server_ca_pem).hexdigest() != ca_hash:
            return None
        server_ca = x509.load_pem_x509_certificate(server_ca_pem)
        client_ca = x509.load_pem_x509_certificate((tls / "client-ca.crt").read_bytes())
        client = x509.load_pem_x509_certificate((tls / "client-kubelet.crt").read_bytes())
        serving = x509.load_pem_x509_certificate((tls / "serving-kubelet.crt").read_bytes())
    except (OSError, ValueError):
        return None
    if not _fits(client, client_ca) or not _fits(serving, server_ca):
        return None
    cn = client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cn or cn[0].value != f"system:node:{cfg.node_name}":
        return None
    if cfg.node_ip and cfg.node_ip not in _ip_sans(serving):
        return None
    try:
        return _load(cfg, reused=True)
    except (OSError, ValueError, ssl.SSLError):
        return None


def _fits(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:  # noqa: BLE001 - any failure means "join again"
        return False
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_WITHIN


def _ip_sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}


def _load(cfg: AgentConfig, *, reused: bool) -> Joined:
    """Settings into ``cfg``, the kubeconfig (rewritten: the server URL may have changed),
    the client and the kubelet's serving context, from the files of a join."""
    from k3py.server.auth.kubeconfig import write_kubeconfig

    tls = cfg.tls_dir
    settings: dict[str, Any] = orjson.loads((cfg.agent_dir / "cluster.json").read_bytes())
    cfg.cluster_cidr = settings.get("clusterCIDR") or cfg.cluster_cidr
    cfg.service_cidr = settings.get("serviceCIDR") or cfg.service_cidr
    cfg.cluster_dns = settings.get("clusterDNS") or cfg.cluster_dns
    cfg.cluster_domain = settings.get("clusterDomain") or cfg.cluster_domain
    write_kubeconfig(
        path=cfg.kubeconfig,
        mode=0o600,
        server_url=cfg.server_url.rstrip("/"),
        ca_pem=(tls / "server-ca.crt").read_bytes(),
        client_cert_pem=(tls / "client-kubelet.crt").read_bytes(),
        client_key_pem=(tls / "client-kubelet.key").read_bytes(),
    )
    serving = kubelet_ssl_context(
        cert=tls / "serving-kubelet.crt",
        key=tls / "serving-kubelet.key",
        client_ca_pem=(tls / "client-ca.crt").read_bytes(),
    )
    client = Client.from_kubeconfig(cfg.kubeconfig, field_manager="kubelet")
    return Joined(client=client, serving_ssl=serving, settings=settings, reused=reused)


def kubelet_ssl_context(*, cert: Path, key: Path, client_ca_pem: bytes) -> ssl.SSLContext:
    """The kubelet API's server context: our serving cert, client certs from the client CA
    required."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=client_ca_pem.decode())
    return ctx
