"""Real image pulls from a local registry (Debian's docker-registry with htpasswd, on
127.0.0.1) with and without imagePullSecrets."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import BUSYBOX, Cluster, container_status, free_port

USER, PASSWORD = "puller", "s3cret-pass"


@pytest.fixture(scope="module")
def registry(cluster: Cluster) -> Iterator[str]:
    d = Path(tempfile.mkdtemp(prefix="k3reg-"))
    port = free_port()
    htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True)
    (d / "htpasswd").write_text(htpasswd.stdout)
    (d / "config.yml").write_text(f"""version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {d / 'data'}}}
http:
  addr: 127.0.0.1:{port}
auth:
  htpasswd: {{realm: k3py-test, path: {d / 'htpasswd'}}}
""")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    host = f"127.0.0.1:{port}"
    try:
        def up() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        cluster.wait_for("registry up", up, timeout=30)
        # containerd: this registry speaks plain HTTP (hosts.toml in the agent's certs.d)
        hosts = cluster.data_dir / "agent" / "containerd" / "certs.d" / host
        hosts.mkdir(parents=True, exist_ok=True)
        (hosts / "hosts.toml").write_text(f'server = "http://{host}"\n\n[host."http://{host}"]\n'
                                          '  capabilities = ["pull", "resolve"]\n')
        ref = f"{host}/test/busybox:1"
        ctr = ["ctr", "--address", cluster.cri_address, "-n", "k8s.io"]
        subprocess.run([*ctr, "images", "tag", "--force", BUSYBOX, ref], check=True, capture_output=True)
        subprocess.run([*ctr, "images", "push", "--plain-http", "--user", f"{USER}:{PASSWORD}", ref, ref],
                       check=True, capture_output=True, timeout=60)
        subprocess.run([*ctr, "images", "rm", ref], check=True, capture_output=True)
        yield ref
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


def test_pull_with_image_pull_secret(cluster: Cluster, ns: str, registry: str) -> None:
    host = registry.split("/")[0]
    cluster.kubectl("create", "secret", "docker-registry", "regcred", "-n", ns, f"--docker-server={host}",
                    f"--docker-username={USER}", f"--docker-password={PASSWORD}")
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: pulled}}
spec:
  imagePullSecrets: [{{name: regcred}}]
  containers: [{{name: c, image: "{registry}", imagePullPolicy: Always, command: ["sleep", "3600"]}}]
""", ns)
    pod = cluster.wait_running(ns, "pulled", timeout=90)
    assert container_status(pod, "c")["imageID"]
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=pulled").stdout
    assert "Pulling" in events and "Successfully pulled image" in events


def test_pull_without_credentials_backs_off(cluster: Cluster, ns: str, registry: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: denied}}
spec:
  containers: [{{name: c, image: "{registry}", imagePullPolicy: Always, command: ["sleep", "3600"]}}]
""", ns)
    cluster.wait_pod(ns, "denied", lambda p: container_status(p, "c").get("state", {}).get("waiting", {})
                     .get("reason") == "ImagePullBackOff", timeout=60)
    events = cluster.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.name=denied").stdout
    assert "Error: ErrImagePull" in events and "Error: ImagePullBackOff" in events
    assert f'Failed to pull image "{registry}"' in events
    assert "401 Unauthorized" in events or "unauthorized" in events.lower()
