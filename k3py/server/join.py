"""Joining agents, K3s-style, on the API server's HTTPS port.

    GET  /cacerts                      the server CA (no credentials: the agent pins it by
                                       the sha256 in its K10<hash>::… token)
    GET  /v1-k3py/client-ca.crt        the client CA (kubelet API clients are checked against it)
    GET  /v1-k3py/config               cluster settings the agent needs (CIDRs, DNS)
    POST /v1-k3py/client-kubelet.crt   node client certificate  CN=system:node:<name>, O=system:nodes
    POST /v1-k3py/serving-kubelet.crt  kubelet serving certificate for the node's name and IP

All but /cacerts take the token as HTTP basic credentials (``node:<secret>`` or
``server:<secret>``); the certificate endpoints also take the headers
``K3py-Node-Name``, ``K3py-Node-Password`` and ``K3py-Node-IP``, and answer JSON
``{"cert": PEM, "key": PEM}`` (keys are made server-side, as K3s does).  A node name is
claimed by its first password: its PBKDF2 hash is kept in the Secret
``kube-system/<name>.node-password.k3py``, and a later claim with another password is
refused (403), so another machine cannot take the name over.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import logging
import os
from typing import Any

import orjson
from aiohttp import web

from k3py.server import errors
from k3py.server.api import encode
from k3py.server.auth import pki
from k3py.server.auth.token import ca_hash, parse_token

log = logging.getLogger("k3py.server.join")
PREFIX = "/v1-k3py/"
PASSWORD_SUFFIX = ".node-password.k3py"


def _hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 100_000)
    return "pbkdf2-sha256$100000$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def _check_password(password: str, stored: str) -> bool:
    try:
        _alg, rounds, salt, digest = stored.split("$")
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt), int(rounds))
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


class JoinService:
    def __init__(self, *, keys: Any, token: str, client_factory: Any, cfg: Any) -> None:
        self.keys = keys
        self.secret = parse_token(token)[2]
        self.client_factory = client_factory
        self.cfg = cfg

    @staticmethod
    def handles(path: str) -> bool:
        return path == "/cacerts" or path.startswith(PREFIX)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path == "/cacerts" and request.method == "GET":
            return web.Response(body=self.keys.server_ca_pem, content_type="text/plain")
        self._authenticate(request)
        if path == PREFIX + "client-ca.crt" and request.method == "GET":
            return web.Response(body=self.keys.client_ca_pem, content_type="text/plain")
        if path == PREFIX + "config" and request.method == "GET":
            return encode.json_response({
                "clusterCIDR": self.cfg.cluster_cidr, "serviceCIDR": self.cfg.service_cidr,
                "clusterDNS": self.cfg.cluster_dns, "clusterDomain": self.cfg.cluster_domain,
                "caHash": ca_hash(self.keys.server_ca_pem),
            })
        if path in (PREFIX + "client-kubelet.crt", PREFIX + "serving-kubelet.crt") and request.method == "POST":
            name = await self._claim(request)
            if path.endswith("client-kubelet.crt"):
                cert, key = pki.issue_client_cert(self.keys, common_name=f"system:node:{name}",
                                                  organizations=["system:nodes"])
            else:
                ip = request.headers.get("K3py-Node-IP", "")
                ips = [ip] if _is_ip(ip) else []
                cert, key = pki.issue_serving_cert(self.keys, common_name=name, dns_names=[name, "localhost"],
                                                   ip_addresses=[*ips, "127.0.0.1"])
            log.info("issued %s for node %s", path.rsplit("/", 1)[1], name)
            return web.Response(body=orjson.dumps({"cert": cert.decode(), "key": key.decode()}),
                                content_type="application/json")
        raise errors.not_found("paths", path)

    def _authenticate(self, request: web.Request) -> None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            raise errors.unauthorized()
        try:
            user, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise errors.unauthorized() from None
        if user not in ("node", "server") or not hmac.compare_digest(secret.encode(), self.secret.encode()):
            raise errors.unauthorized()

    async def _claim(self, request: web.Request) -> str:
        name = request.headers.get("K3py-Node-Name", "").strip().lower()
        return await self.claim(name=name, password=request.headers.get("K3py-Node-Password", ""))

    async def claim(self, *, name: str, password: str) -> str:
        """Claim ``name`` for the holder of ``password``: the first claim stores the hash,
        later ones must present the same password (403 otherwise).  The server claims its
        own node's name this way too, so an agent cannot take it over."""
        from k3py.apimachinery.names import check_dns1123_subdomain
        from k3py.client import AlreadyExists, NotFound
        from k3py.client.resources import SECRETS

        if not name or check_dns1123_subdomain(name):
            raise errors.bad_request(f"invalid node name {name!r}: it must be a DNS subdomain")
        if len(password) < 16:
            raise errors.bad_request("a node password of at least 16 characters is required")
        client = self.client_factory()
        secret_name = name + PASSWORD_SUFFIX
        for _ in range(3):
            try:
                existing = await client.get(SECRETS, secret_name, namespace="kube-system")
            except NotFound:
                existing = None
            if existing is not None:
                stored = base64.b64decode((existing.get("data") or {}).get("hash", "")).decode()
                # PBKDF2 takes tens of milliseconds: off the event loop.
                if not await asyncio.to_thread(_check_password, password, stored):
                    raise errors.APIError(
                        403,
                        "Forbidden",
                        f'node "{name}" is already claimed by another machine (node password '
                        f"mismatch); delete the secret kube-system/{secret_name} to release the name",
                        details={},
                    )
                return name
            try:
                hashed = await asyncio.to_thread(_hash_password, password)
                await client.create(SECRETS, _password_secret(name, secret_name, hashed))
            except AlreadyExists:
                continue  # claimed at the same moment: compare with that claim
            log.info("node name %s claimed", name)
            return name
        raise errors.conflict("secrets", secret_name, "", "concurrent claims of the node name")


def _password_secret(name: str, secret_name: str, hashed: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "k3py.io/node-password",
        "metadata": {"name": secret_name, "namespace": "kube-system", "labels": {"k3py.io/node": name}},
        "data": {"hash": base64.b64encode(hashed.encode()).decode()},
    }


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False
