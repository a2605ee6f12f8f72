"""Helpers shared by the benchmarks: a server subprocess, an HTTPS client, percentiles."""

from __future__ import annotations

import base64
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
K3PY = str(ROOT / ".venv" / "bin" / "k3py")


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class ServerProc:
    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    kubeconfig: Path
    start_seconds: float

    def ssl_context(self) -> ssl.SSLContext:
        return client_ssl_context(self.kubeconfig)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def client_ssl_context(kubeconfig: Path) -> ssl.SSLContext:
    cfg = yaml.safe_load(kubeconfig.read_text())
    cluster = cfg["clusters"][0]["cluster"]
    user = cfg["users"][0]["user"]
    tmp = Path(tempfile.mkdtemp(prefix="k3py-bench-cred-"))
    (tmp / "ca.crt").write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
    (tmp / "c.crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (tmp / "c.key").write_bytes(base64.b64decode(user["client-key-data"]))
    ctx = ssl.create_default_context(cafile=str(tmp / "ca.crt"))
    ctx.load_cert_chain(str(tmp / "c.crt"), str(tmp / "c.key"))
    return ctx


def start_server(
    data_dir: Path | None = None, *, extra: list[str] | None = None, port: int = 0
) -> ServerProc:
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="k3py-bench-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    kubeconfig = data_dir / "kubeconfig.yaml"
    cmd = [
        K3PY,
        "server",
        "--data-dir",
        str(data_dir),
        "--bind-address",
        "127.0.0.1",
        "--https-listen-port",
        str(port),
        "--node-ip",
        "127.0.0.1",
        "--write-kubeconfig",
        str(kubeconfig),
        "--disable-agent",
        *(extra or []),
    ]
    env = dict(os.environ, K3PY_CONFIG_FILE=str(data_dir / "none.yaml"))
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=open(data_dir / "server.log", "ab"), env=env
    )
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = t0 + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited early: see {data_dir / 'server.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with ctx.wrap_socket(raw) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = s.recv(4096)
                    if data.startswith(b"HTTP/1.1 200"):
                        break
        except OSError:
            pass
        time.sleep(0.005)
    else:
        proc.kill()
        sys.exit("server did not become ready in 60 s")
    return ServerProc(proc, data_dir, port, kubeconfig, time.monotonic() - t0)


def configmap(name: str, size: int = 1500, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels or {"bench": "yes"}},
        "data": {"payload": "x" * size},
    }


def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c", "sleep 3600"],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                    "env": [{"name": "MODE", "value": "bench"}],
                }
            ]
        },
    }
