"""Health endpoints, authentication at the door, and the files and settings a K3s user
relies on: kubeconfig mode, the join token, a restart keeping the CA and token, config
precedence (flag > ``K3PY_*`` environment > config file) and ``k3py --version``.

The in-process server (own thread, own data dir) answers the HTTP questions; the
questions about files and flags run the real ``k3py server`` as a subprocess.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
import re
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bench.common import K3PY, client_ssl_context, free_port
from tests.conftest import ServerHandle, server_config, start_server_thread, stop_server_thread

pytestmark = pytest.mark.timeout(180)

HEALTH = ["/readyz", "/livez", "/healthz"]
API_PATHS = [
    ("GET", "/version"),
    ("GET", "/api"),
    ("GET", "/apis"),
    ("GET", "/api/v1/namespaces"),
    ("GET", "/api/v1/namespaces/default/configmaps"),
    ("GET", "/apis/apps/v1/deployments"),
    ("GET", "/openapi/v2"),
    ("GET", "/"),
    ("POST", "/api/v1/namespaces/default/configmaps"),
    ("DELETE", "/api/v1/namespaces/default"),
    ("GET", "/api/v1/namespaces/default/configmaps?watch=1"),
]
TOKEN_RE = re.compile(r"K10([0-9a-f]{64})::server:(\S+)")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    h = start_server_thread(server_config(tmp_path_factory.mktemp("k3py-health-auth")))
    yield h
    stop_server_thread(h)


def ca_only_context(kubeconfig: Path) -> ssl.SSLContext:
    """Trusts the cluster CA but presents no client certificate."""
    cfg = yaml.safe_load(kubeconfig.read_text())
    ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
    return ssl.create_default_context(cadata=ca)


def foreign_client_context(kubeconfig: Path, tmp: Path) -> ssl.SSLContext:
    """Trusts the cluster CA and presents system:admin/system:masters signed by another CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k3py-client-ca@1")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"),
            x509.NameAttribute(NameOID.COMMON_NAME, "system:admin"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    crt, pem = tmp / "foreign.crt", tmp / "foreign.key"
    crt.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ca_only_context(kubeconfig)
    ctx.load_cert_chain(str(crt), str(pem))
    return ctx


async def fetch(
    url: str, ctx: ssl.SSLContext, *, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx), timeout=timeout) as s:
        body = b"{}" if method in ("POST", "PUT", "PATCH") else None
        hdrs = {"Content-Type": "application/json", **(headers or {})} if body else (headers or {})
        async with s.request(method, url, data=body, headers=hdrs) as r:
            return r.status, await r.read()


def assert_status(raw: bytes, code: int, reason: str) -> None:
    import json

    body = json.loads(raw)
    assert body["kind"] == "Status" and body["apiVersion"] == "v1", body
    assert body["status"] == "Failure" and body["code"] == code and body["reason"] == reason, body


# ---- HTTP: health, 401, foreign CA, /version ------------------------------------------------


async def test_health_endpoints_answer_ok_without_credentials(live: ServerHandle) -> None:
    ctx = ca_only_context(live.kubeconfig)
    for path in HEALTH:
        status, body = await fetch(live.url + path, ctx)
        assert (status, body.decode().strip()) == (200, "ok"), (path, status, body)


async def test_api_paths_without_credentials_are_401(live: ServerHandle) -> None:
    ctx = ca_only_context(live.kubeconfig)
    for method, path in API_PATHS:
        status, body = await fetch(live.url + path, ctx, method=method)
        assert status == 401, (method, path, status, body)
        assert_status(body, 401, "Unauthorized")
    # A bearer token the server never issued is no better than none.
    for token in ["nonsense", "K10" + "0" * 64 + "::server:secret", "a.b.c"]:
        status, body = await fetch(
            live.url + "/api/v1/namespaces", ctx, headers={"Authorization": f"Bearer {token}"}
        )
        assert status == 401, (token, status, body)
        assert_status(body, 401, "Unauthorized")


async def test_client_cert_from_another_ca_is_refused(live: ServerHandle, tmp_path: Path) -> None:
    ctx = foreign_client_context(live.kubeconfig, tmp_path)
    for method, path in [
        ("GET", "/api/v1/namespaces"),
        ("POST", "/api/v1/namespaces/default/configmaps"),
    ]:
        try:
            status, body = await fetch(live.url + path, ctx, method=method)
        except (aiohttp.ClientConnectionError, ssl.SSLError, ConnectionError):
            # The server verifies client certs in the handshake and drops this one
            # (TLS 1.3 clients see the refusal as a disconnect after the handshake).
            continue
        assert status == 401, (path, status, body)
        assert_status(body, 401, "Unauthorized")
    # The server is still fine afterwards.
    status, body = await fetch(live.url + "/readyz", ca_only_context(live.kubeconfig))
    assert status == 200


async def test_version_with_the_admin_cert(live: ServerHandle) -> None:
    import json

    status, body = await fetch(live.url + "/version", client_ssl_context(live.kubeconfig))
    assert status == 200, body
    info = json.loads(body)
    assert info["gitVersion"].startswith("v1.32."), info
    assert (info["major"], info["minor"]) == ("1", "32"), info


def test_cli_version() -> None:
    res = subprocess.run([K3PY, "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "v1.32" in res.stdout, res.stdout
    assert re.search(r"\bv1\.32\.\d+", res.stdout), res.stdout


# ---- subprocess servers ------------------------------------------------------------------------


@dataclass
class Proc:
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    kubeconfig: Path
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("K3PY_")}
    env.update(extra)
    return env


def launch(
    data_dir: Path, *, args: list[str], expect_port: int, env: dict[str, str], name: str = "server"
) -> Proc:
    """Run ``k3py server`` and wait until /readyz answers on ``expect_port``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = data_dir / "kubeconfig.yaml"
    log = data_dir / f"{name}.log"
    cmd = [
        K3PY, "server", "--data-dir", str(data_dir), "--bind-address", "127.0.0.1",
        "--node-ip", "127.0.0.1", "--write-kubeconfig", str(kubeconfig), "--disable-agent", *args,
    ]  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=out, env=env)
    p = Proc(proc=proc, port=expect_port, data_dir=data_dir, kubeconfig=kubeconfig, log=log)
    try:
        wait_ready(p)
    except BaseException:
        p.stop()
        raise
    return p


def wait_ready(p: Proc, timeout: float = 60) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    import socket

    while time.monotonic() < deadline:
        if p.proc.poll() is not None:
            raise AssertionError(
                f"server exited with {p.proc.returncode}:\n{p.log.read_text()[-3000:]}"
            )
        try:
            with (
                socket.create_connection(("127.0.0.1", p.port), timeout=1) as raw,
                ctx.wrap_socket(raw) as s,
            ):
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(4096).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"no /readyz on port {p.port} in {timeout}s:\n{p.log.read_text()[-3000:]}")


def kubeconfig_port(path: Path) -> int:
    server = yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["server"]
    return int(server.rsplit(":", 1)[1])


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_kubeconfig_mode_flag_is_honoured(tmp_path: Path) -> None:
    port = free_port()
    p = launch(
        tmp_path / "d",
        args=["--https-listen-port", str(port), "--write-kubeconfig-mode", "0644"],
        expect_port=port,
        env=clean_env(K3PY_CONFIG_FILE=str(tmp_path / "absent.yaml")),
    )
    try:
        assert mode_of(p.kubeconfig) == 0o644, oct(mode_of(p.kubeconfig))
    finally:
        p.stop()


def test_token_and_ca_survive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "d"
    env = clean_env(K3PY_CONFIG_FILE=str(tmp_path / "absent.yaml"))
    args = ["--https-listen-port", str(port)]
    p = launch(data, args=args, expect_port=port, env=env)
    try:
        # Default kubeconfig mode is 0600; the token is private too.
        assert mode_of(p.kubeconfig) == 0o600, oct(mode_of(p.kubeconfig))
        token_path = data / "server" / "token"
        ca_path = data / "server" / "tls" / "server-ca.crt"
        token = token_path.read_text().strip()
        m = TOKEN_RE.fullmatch(token)
        assert m, token
        assert m.group(1) == hashlib.sha256(ca_path.read_bytes()).hexdigest()
        assert mode_of(token_path) == 0o600, oct(mode_of(token_path))
        ca_before = ca_path.read_bytes()
        old_ctx = client_ssl_context(p.kubeconfig)
    finally:
        p.stop()
    q = launch(data, args=args, expect_port=port, env=env, name="server2")
    try:
        assert ca_path.read_bytes() == ca_before
        assert token_path.read_text().strip() == token
        # The admin credentials written before the restart still work.
        status, body = asyncio.run(fetch(f"https://127.0.0.1:{port}/version", old_ctx))
        assert status == 200, body
        assert mode_of(q.kubeconfig) == 0o600
    finally:
        q.stop()


def distinct_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_config_precedence_file_then_env_then_flag(tmp_path: Path) -> None:
    p_file, p_env, p_flag = distinct_ports(3)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f'https-listen-port: {p_file}\nwrite-kubeconfig-mode: "0640"\n')
    steps: list[tuple[list[str], dict[str, str], int]] = [
        ([], {}, p_file),
        ([], {"K3PY_HTTPS_LISTEN_PORT": str(p_env)}, p_env),
        (["--https-listen-port", str(p_flag)], {"K3PY_HTTPS_LISTEN_PORT": str(p_env)}, p_flag),
    ]
    for i, (args, extra, want) in enumerate(steps):
        p = launch(
            tmp_path / f"d{i}",
            args=["--config", str(cfg), *args],
            expect_port=want,
            env=clean_env(**extra),
        )
        try:
            assert kubeconfig_port(p.kubeconfig) == want
            for other in {p_file, p_env, p_flag} - {want}:
                assert not listening(other), f"step {i}: something listens on {other}"
            # Values the flag and the environment leave alone still come from the file.
            assert mode_of(p.kubeconfig) == 0o640, oct(mode_of(p.kubeconfig))
        finally:
            p.stop()
