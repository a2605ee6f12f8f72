"""Shared fixtures: a k3py server running in-process (own thread and event loop) on a
random port with a temporary data dir, the real kubectl, the official Python client."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from k3py.config import ServerConfig


@dataclass
class ServerHandle:
    data_dir: Path
    port: int
    kubeconfig: Path
    loop: asyncio.AbstractEventLoop
    running: Any

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def call(self, coro: Any, timeout: float = 60) -> Any:
        """Run a coroutine on the server's loop from a test."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = ["kubectl", "--kubeconfig", str(self.kubeconfig), *args]
        res = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res


def server_config(data_dir: Path, **overrides: Any) -> ServerConfig:
    cfg = ServerConfig(
        data_dir=data_dir,
        bind_address="127.0.0.1",
        https_listen_port=0,
        node_ip="127.0.0.1",
        advertise_address="127.0.0.1",
        node_name="test-node",
        write_kubeconfig=str(data_dir / "kubeconfig.yaml"),
        disable_agent=True,
        # API tests see the API server alone (as kube-apiserver's own tests do): no
        # controller writes objects behind their back.  tests/control turns them on.
        disable_controller_manager=True,
        disable_scheduler=True,
    )
    for k, v in overrides.items():
        setattr(cfg, k, v)
    return cfg


def start_server_thread(cfg: ServerConfig) -> ServerHandle:
    from k3py.server.run import start

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, Any] = {}

    def runner() -> None:
        asyncio.set_event_loop(loop)
        try:
            box["server"] = loop.run_until_complete(start(cfg))
        except BaseException as e:  # noqa: BLE001 - reported to the test
            box["error"] = e
            ready.set()
            return
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=runner, name="k3py-server", daemon=True)
    t.start()
    ready.wait(60)
    if "error" in box:
        raise box["error"]
    srv = box["server"]
    return ServerHandle(data_dir=cfg.data_dir, port=srv.port, kubeconfig=Path(srv.kubeconfig), loop=loop, running=srv)


def stop_server_thread(h: ServerHandle) -> None:
    try:
        h.call(h.running.stop(), timeout=30)
    finally:
        h.loop.call_soon_threadsafe(h.loop.stop)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    if shutil.which("kubectl") is None:
        raise RuntimeError("kubectl is required (make install installs the suite's needs)")
    data = tmp_path_factory.mktemp("k3py-server")
    h = start_server_thread(server_config(data))
    os.environ.setdefault("KUBECACHEDIR", str(data / "kubecache"))
    yield h
    stop_server_thread(h)


@pytest.fixture(scope="session")
def api_client(server: ServerHandle) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=str(server.kubeconfig))


@pytest.fixture
def core_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture
def apps_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.AppsV1Api(api_client)


_ns_counter = iter(range(1, 1_000_000))


@pytest.fixture
def namespace(server: ServerHandle) -> Iterator[str]:
    """A fresh namespace per test, removed afterwards."""
    name = f"t{os.getpid() % 10000}-{next(_ns_counter)}"
    # `kubectl apply` sends JSON (`kubectl create namespace` sends protobuf).
    server.kubectl("apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    yield name
    server.kubectl("delete", "namespace", name, "--wait=false", check=False)
