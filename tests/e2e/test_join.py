"""A second agent process joining over a veth pair from its own network namespace:
labels and taints from its flags, a clean stop on SIGTERM (containerd stopped with it),
a restart that reuses its certificates, and the server's own node name claimed by the
embedded agent so that no joining agent can take it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import K3PY, Cluster, start_server, stop_server

# A /30 of our own on the veth pair only (the other agent test uses 172.31.254.0/30).
SERVER_IP, AGENT_IP = "172.31.253.1", "172.31.253.2"
NODE = "joiner"


@pytest.fixture(scope="module")
def join_cluster() -> Iterator[Cluster]:
    data_dir = Path(tempfile.mkdtemp(prefix="k3j-", dir="/tmp"))
    c = start_server(data_dir, node_name="join-server", extra=("--tls-san", SERVER_IP))
    try:
        yield c
    finally:
        stop_server(c)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    tag = uuid.uuid4().hex[:6]
    name, host, peer = f"k3pyjn-{tag}", f"vjn{tag}", f"vpn{tag}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "link", "add", host, "type", "veth", "peer", "name", peer], check=True)
        subprocess.run(["ip", "link", "set", peer, "netns", name], check=True)
        subprocess.run(["ip", "addr", "add", f"{SERVER_IP}/30", "dev", host], check=True)
        subprocess.run(["ip", "link", "set", host, "up"], check=True)
        for cmd in (["ip", "addr", "add", f"{AGENT_IP}/30", "dev", peer],
                    ["ip", "link", "set", peer, "up"], ["ip", "link", "set", "lo", "up"]):  # fmt: skip
            subprocess.run(["nsenter", f"--net=/var/run/netns/{name}", *cmd], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def start_agent(netns: str, data_dir: Path, server: str, token: str) -> subprocess.Popen[bytes]:
    log = (data_dir / "agent.log").open("ab")
    cmd = ["nsenter", f"--net=/var/run/netns/{netns}", K3PY, "agent", "--server", server,
           "--token", token, "--data-dir", str(data_dir), "--node-name", NODE, "--node-ip", AGENT_IP,
           "--node-label", "e2e.k3py.io/joined=yes", "--node-taint", "dedicated=join:NoSchedule",
           "--config", str(data_dir / "no-config.yaml")]  # fmt: skip
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def processes_under(path: Path) -> list[int]:
    """Pids whose command line mentions ``path`` (what the agent started)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmdline and int(entry.name) != os.getpid():
            out.append(int(entry.name))
    return out


def node_state(c: Cluster) -> dict | None:
    res = c.kubectl("get", "node", NODE, "-o", "json", check=False)
    if res.returncode != 0:
        return None
    return dict(json.loads(res.stdout))


def ready(c: Cluster) -> dict | None:
    node = node_state(c)
    if node is None:
        return None
    conds = {x["type"]: x["status"] for x in node["status"].get("conditions", [])}
    return node if conds.get("Ready") == "True" else None


def lease_renewed(c: Cluster) -> str:
    res = c.kubectl("get", "lease", NODE, "-n", "kube-node-lease", "-o", "json", check=False)
    return str(json.loads(res.stdout)["spec"].get("renewTime", "")) if res.returncode == 0 else ""


def stop_agent(proc: subprocess.Popen[bytes]) -> int:
    os.killpg(proc.pid, signal.SIGTERM)
    return proc.wait(60)


def test_joined_agent_stops_cleanly_and_restarts_with_its_certificates(
    join_cluster: Cluster, netns: str
) -> None:
    c = join_cluster
    token = (c.data_dir / "server" / "token").read_text().strip()
    server = f"https://{SERVER_IP}:{c.port}"
    data_dir = Path(tempfile.mkdtemp(prefix="k3ja-", dir="/tmp"))
    proc = start_agent(netns, data_dir, server, token)
    try:
        node = c.wait_for(f"{NODE} Ready", lambda: ready(c), timeout=120)
        assert node["metadata"]["labels"]["e2e.k3py.io/joined"] == "yes"
        assert {"key": "dedicated", "value": "join", "effect": "NoSchedule"} in node["spec"]["taints"]
        addrs = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addrs["InternalIP"] == AGENT_IP
        crt = data_dir / "agent" / "tls" / "client-kubelet.crt"
        first_cert = crt.read_bytes()
        assert processes_under(data_dir / "agent" / "containerd")  # its own containerd

        # SIGTERM: a clean exit, and its containerd goes with it.
        assert stop_agent(proc) == 0
        c.wait_for("containerd gone", lambda: not processes_under(data_dir / "agent" / "containerd"),
                   timeout=30)  # fmt: skip

        # Restarted: the same certificates (no new join), heartbeats resume.
        before = lease_renewed(c)
        proc = start_agent(netns, data_dir, server, token)
        c.wait_for("lease renewed after restart", lambda: lease_renewed(c) not in ("", before),
                   timeout=120)  # fmt: skip
        c.wait_for(f"{NODE} Ready again", lambda: ready(c), timeout=60)
        assert crt.read_bytes() == first_cert
        assert "reusing the certificates" in (data_dir / "agent.log").read_text()
    finally:
        if proc.poll() is None:
            stop_agent(proc)
        for pid in processes_under(data_dir):  # only if the agent failed to stop them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        c.kubectl("delete", "node", NODE, "--wait=false", check=False)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_the_servers_node_name_is_claimed(join_cluster: Cluster, tmp_path: Path) -> None:
    c = join_cluster
    token = (c.data_dir / "server" / "token").read_text().strip()
    res = subprocess.run(
        [K3PY, "agent", "--server", c.url, "--token", token, "--data-dir", str(tmp_path),
         "--node-name", "join-server", "--config", str(tmp_path / "none.yaml")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode != 0 and "already claimed" in res.stderr
    assert not (tmp_path / "agent" / "tls" / "client-kubelet.crt").exists()
    secret = c.get_json("secret", "-n", "kube-system", "join-server.node-password.k3py")
    assert secret["type"] == "k3py.io/node-password"
