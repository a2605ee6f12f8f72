"""End to end over real TLS: aiohttp + server_ssl_context, clients with and without certs."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from k3py.server.auth.authn import Authenticator, ServiceAccountAuthenticator, X509Authenticator
from k3py.server.auth.kubeconfig import write_kubeconfig
from k3py.server.auth.pki import PKI, ensure_pki
from k3py.server.auth.sa_tokens import DEFAULT_ISSUER, ServiceAccountTokens
from k3py.server.auth.tls import server_ssl_context
from k3py.server.errors import APIError

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0+k3py",
    "gitCommit": "0",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "n/a",
    "compiler": "cpython",
    "platform": "linux/amd64",
}


async def lookup_sa(namespace: str, name: str) -> str | None:
    return "sa-uid" if (namespace, name) == ("default", "builder") else None


def app_for(authn: Authenticator) -> web.Application:
    async def whoami(request: web.Request) -> web.Response:
        try:
            user = await authn.authenticate(request)
        except APIError as e:
            return web.json_response(e.status(), status=e.code)
        return web.json_response({"user": user.to_api() if user else None})

    async def version(request: web.Request) -> web.Response:
        try:
            user = await authn.authenticate(request)
        except APIError as e:
            return web.json_response(e.status(), status=e.code)
        if user is None or "system:masters" not in user.groups:
            return web.json_response({"kind": "Status", "code": 403}, status=403)
        return web.json_response(VERSION)

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/version/", version)
    return app


@pytest.fixture
def tokens(pki: PKI) -> ServiceAccountTokens:
    return ServiceAccountTokens(key=pki.service_key)


@pytest.fixture
async def server(pki: PKI, tokens: ServiceAccountTokens) -> AsyncIterator[str]:
    sa = ServiceAccountAuthenticator(
        tokens=tokens, audiences=[DEFAULT_ISSUER], service_account_uid=lookup_sa
    )
    authn = Authenticator(
        x509_auth=X509Authenticator(client_ca=pki.client_ca.cert), token_authenticators=[sa]
    )
    runner = web.AppRunner(app_for(authn))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl_context(pki))
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"https://{host}:{port}"
    await runner.cleanup()


def client_ctx(pki: PKI, *, cert: PKI | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata=pki.server_ca_pem.decode())
    if cert is not None:
        ctx.load_cert_chain(certfile=cert.admin.cert_path, keyfile=cert.admin.key_path)
    return ctx


async def get_json(
    url: str, ctx: ssl.SSLContext, headers: dict[str, str] | None = None
) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, ssl=ctx, headers=headers) as resp:
            return resp.status, await resp.json()


async def test_admin_client_cert_is_system_admin(server: str, pki: PKI) -> None:
    status, body = await get_json(server + "/whoami", client_ctx(pki, cert=pki))
    assert status == 200
    assert body["user"]["username"] == "system:admin"
    assert body["user"]["groups"] == ["system:masters", "system:authenticated"]


async def test_no_client_cert_is_anonymous(server: str, pki: PKI) -> None:
    assert await get_json(server + "/whoami", client_ctx(pki)) == (200, {"user": None})


async def test_bearer_service_account_token(
    server: str, pki: PKI, tokens: ServiceAccountTokens
) -> None:
    token = tokens.issue(
        namespace="default",
        sa_name="builder",
        sa_uid="sa-uid",
        audiences=[DEFAULT_ISSUER],
        expiration_seconds=600,
    )
    status, body = await get_json(
        server + "/whoami", client_ctx(pki), headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200
    assert body["user"]["username"] == "system:serviceaccount:default:builder"


async def test_bad_bearer_token_is_401(server: str, pki: PKI) -> None:
    status, body = await get_json(
        server + "/whoami", client_ctx(pki), headers={"Authorization": "Bearer x.y.z"}
    )
    assert status == 401
    assert body["reason"] == "Unauthorized" and body["code"] == 401


async def test_cert_from_another_ca_fails_the_handshake(
    server: str, pki: PKI, tmp_path: Path
) -> None:
    other = ensure_pki(
        tls_dir=tmp_path / "other",
        node_ip="127.0.0.1",
        advertise_address=None,
        tls_sans=[],
        cluster_domain="cluster.local",
        service_cidr="10.43.0.0/16",
    )
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await get_json(server + "/whoami", client_ctx(pki, cert=other))


async def test_alpn_offers_only_http11_and_sans_verify(server: str, pki: PKI) -> None:
    port = int(server.rsplit(":", 1)[1])
    ctx = client_ctx(pki)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    _reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="kubernetes.default.svc.cluster.local"
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.selected_alpn_protocol() == "http/1.1"
        assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_official_client_with_written_kubeconfig(
    server: str, pki: PKI, tmp_path: Path
) -> None:
    path = tmp_path / "k3py.yaml"
    write_kubeconfig(
        path=path,
        mode=0o600,
        server_url=server,
        ca_pem=pki.server_ca_pem,
        client_cert_pem=pki.admin.cert_pem,
        client_key_pem=pki.admin.key_pem,
    )

    def call() -> object:
        api_client = k8s_config.new_client_from_config(config_file=str(path))
        try:
            return k8s.VersionApi(api_client).get_code()
        finally:
            api_client.close()

    info = await asyncio.to_thread(call)
    assert info.git_version == "v1.32.0+k3py"  # type: ignore[attr-defined]


def test_context_settings(pki: PKI) -> None:
    ctx = server_ssl_context(pki)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == ssl.CERT_OPTIONAL
    assert [c["subject"] for c in ctx.get_ca_certs()] == [
        ((("commonName", pki.client_ca.cert.subject.rfc4514_string().removeprefix("CN=")),),)
    ]
