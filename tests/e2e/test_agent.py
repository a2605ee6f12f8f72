"""The agent as a process of its own: restart adoption, joining with the token, node
identity and authorization, images CLI."""

from __future__ import annotations

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
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import (
    BUSYBOX,
    K3PY,
    Cluster,
    cleanup_node,
    container_status,
    start_server,
    stop_server,
)

SERVER_IP, AGENT_IP = "172.31.254.1", "172.31.254.2"


@pytest.fixture
def own_cluster(e2e_images: dict) -> Iterator[Cluster]:
    data_dir = Path(tempfile.mkdtemp(prefix="k3r-", dir="/tmp"))
    (data_dir / "agent" / "images").mkdir(parents=True)
    shutil.copy(e2e_images["busybox"]["path"], data_dir / "agent" / "images" / "busybox.tar")
    c = start_server(data_dir, node_name="restart-node", extra=("--tls-san", SERVER_IP))
    try:
        yield c
    finally:
        stop_server(c)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_server_restart_adopts_running_containers(own_cluster: Cluster) -> None:
    c = own_cluster
    c.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: keeper}}
spec:
  containers: [{{name: c, image: {BUSYBOX}, command: ["sh", "-c", "echo started; sleep 3600"]}}]
""")
    before = c.wait_running("default", "keeper")
    cid = container_status(before, "c")["containerID"]
    # Stop the server and its agent (containers keep running), then start again.
    os.killpg(c.proc.pid, signal.SIGTERM)
    c.proc.wait(30)
    # containerd is stopped with the agent, but the runc shim (and the container) keep running
    shims = subprocess.run(["pgrep", "-f", f"containerd-shim-runc-v2.*{c.data_dir}"], capture_output=True, text=True)
    assert shims.stdout.split(), "the pod's shim died with the agent"
    again = start_server(c.data_dir, node_name="restart-node", extra=("--tls-san", SERVER_IP))
    own_cluster.proc = again.proc
    own_cluster.port = again.port
    after = again.wait_running("default", "keeper")
    cs = container_status(after, "c")
    assert cs["containerID"] == cid and cs["restartCount"] == 0
    assert again.kubectl("logs", "keeper").stdout == "started\n"
    assert len(again.sandboxes(**{"io.kubernetes.pod.name": "keeper"})) == 1


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"k3pyj-{uuid.uuid4().hex[:6]}"
    host, peer = f"vj{name[-6:]}", f"vp{name[-6:]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "link", "add", host, "type", "veth", "peer", "name", peer], check=True)
    subprocess.run(["ip", "link", "set", peer, "netns", name], check=True)
    subprocess.run(["ip", "addr", "add", f"{SERVER_IP}/30", "dev", host], check=True)
    subprocess.run(["ip", "link", "set", host, "up"], check=True)
    for cmd in (["ip", "addr", "add", f"{AGENT_IP}/30", "dev", peer], ["ip", "link", "set", peer, "up"],
                ["ip", "link", "set", "lo", "up"]):
        subprocess.run(["nsenter", f"--net=/var/run/netns/{name}", *cmd], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def _agent(netns: str, data_dir: Path, server: str, token: str, node: str) -> subprocess.Popen[bytes]:
    log = (data_dir.parent / f"{data_dir.name}.log").open("ab")
    return subprocess.Popen(
        ["nsenter", f"--net=/var/run/netns/{netns}", K3PY, "agent", "--server", server, "--token", token,
         "--data-dir", str(data_dir), "--node-name", node, "--node-ip", AGENT_IP],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_join_a_second_agent_in_a_network_namespace(own_cluster: Cluster, netns: str, e2e_images: dict) -> None:
    c = own_cluster
    token = (c.data_dir / "server" / "token").read_text().strip()
    server = f"https://{SERVER_IP}:{c.port}"
    agent_dir = Path(tempfile.mkdtemp(prefix="k3a-", dir="/tmp"))
    (agent_dir / "agent" / "images").mkdir(parents=True)
    shutil.copy(e2e_images["busybox"]["path"], agent_dir / "agent" / "images" / "busybox.tar")
    proc = _agent(netns, agent_dir, server, token, "worker-1")
    try:
        node = c.wait_for("worker-1 Ready", lambda: _ready_node(c, "worker-1"), timeout=120)
        addrs = {a["type"]: a["address"] for a in node["status"]["addresses"]}
        assert addrs["InternalIP"] == AGENT_IP
        assert "node-role.kubernetes.io/control-plane" not in node["metadata"]["labels"]
        # Its own client certificate: system:node:worker-1 in system:nodes, from the client CA.
        cert = x509.load_pem_x509_certificate((agent_dir / "agent" / "tls" / "client-kubelet.crt").read_bytes())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:worker-1"
        assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
        # The node identity may read pods but not create workloads or touch another node.
        kc = agent_dir / "agent" / "kubeconfig"
        kubectl = ["kubectl", "--kubeconfig", str(kc)]
        assert subprocess.run([*kubectl, "get", "pods", "-A"], capture_output=True).returncode == 0
        denied = subprocess.run([*kubectl, "create", "deployment", "x", f"--image={BUSYBOX}"],
                                capture_output=True, text=True)
        assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
        other = subprocess.run([*kubectl, "label", "node", "restart-node", "x=y"], capture_output=True, text=True)
        assert other.returncode != 0 and "forbidden" in other.stderr.lower()
        # A pod placed there runs, and its logs and exec come through the API server.
        c.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: remote}}
spec:
  nodeSelector: {{kubernetes.io/hostname: worker-1}}
  terminationGracePeriodSeconds: 1
  containers: [{{name: c, image: {BUSYBOX}, command: ["sh", "-c", "echo on-worker; sleep 3600"]}}]
""")
        pod = c.wait_running("default", "remote", timeout=90)
        assert pod["spec"]["nodeName"] == "worker-1" and pod["status"]["podIP"].startswith("10.42.")
        c.wait_for("remote logs", lambda: c.kubectl("logs", "remote").stdout == "on-worker\n")
        assert c.kubectl("exec", "remote", "--", "hostname").stdout == "remote\n"
        c.kubectl("delete", "pod", "remote", "--timeout=60s", timeout=90)

        # Another machine cannot take the name (different node password), a wrong token is refused.
        thief_dir = Path(tempfile.mkdtemp(prefix="k3t-", dir="/tmp"))
        thief = subprocess.run([K3PY, "agent", "--server", f"https://127.0.0.1:{c.port}", "--token", token,
                                "--data-dir", str(thief_dir), "--node-name", "worker-1"],
                               capture_output=True, text=True, timeout=60)
        assert thief.returncode != 0 and "already claimed" in thief.stderr
        wrong = subprocess.run([K3PY, "agent", "--server", f"https://127.0.0.1:{c.port}", "--token",
                                token.rsplit(":", 1)[0] + ":not-the-secret", "--data-dir", str(thief_dir),
                                "--node-name", "worker-2"], capture_output=True, text=True, timeout=60)
        assert wrong.returncode != 0 and "401" in wrong.stderr
        pinned = subprocess.run([K3PY, "agent", "--server", f"https://127.0.0.1:{c.port}", "--token",
                                 "K10" + "0" * 64 + "::server:" + token.rsplit(":", 1)[1], "--data-dir",
                                 str(thief_dir), "--node-name", "worker-3"], capture_output=True, text=True,
                                timeout=60)
        assert pinned.returncode != 0 and "does not match the token's hash" in pinned.stderr
        shutil.rmtree(thief_dir, ignore_errors=True)
        assert "worker-2" not in c.kubectl("get", "nodes").stdout
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        cleanup_node(agent_dir, root_network=False)
        subprocess.run(["nsenter", f"--net=/var/run/netns/{netns}", "nft", "delete", "table", "ip", "k3py-cni"],
                       capture_output=True)
        shutil.rmtree(agent_dir, ignore_errors=True)


def _ready_node(c: Cluster, name: str) -> dict | None:
    res = c.kubectl("get", "node", name, "-o", "json", check=False)
    if res.returncode != 0:
        return None
    node = json.loads(res.stdout)
    conds = {x["type"]: x["status"] for x in node["status"].get("conditions", [])}
    return node if conds.get("Ready") == "True" else None


def test_images_cli_import_and_list(cluster: Cluster, tmp_path: Path) -> None:
    from k3py.agent.images import build_busybox_image

    archive = build_busybox_image(path=tmp_path / "extra.tar", ref="k3py.local/extra:7", entrypoint=["/bin/sh"],
                                  applets=["sh", "echo"])
    res = subprocess.run([K3PY, "images", "import", "--data-dir", str(cluster.data_dir), str(archive)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    listing = subprocess.run([K3PY, "images", "list", "--data-dir", str(cluster.data_dir)], capture_output=True,
                             text=True, timeout=60).stdout
    lines = listing.splitlines()
    assert lines[0].split() == ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"]
    assert any(line.split()[:2] == ["k3py.local/extra", "7"] for line in lines)
    assert any(line.split()[:2] == ["k3py.local/busybox", "1"] for line in lines)
    bad = subprocess.run([K3PY, "images", "list", "--data-dir", str(tmp_path / "none")], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode != 0
