"""Streams through the API server to the kubelet: logs, exec, cp, and the official Python
client's exec and port-forward."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import BUSYBOX, Cluster


@pytest.fixture(scope="module")
def talker(cluster: Cluster) -> str:
    """A namespace with a pod that logs lines, serves HTTP and has two containers."""
    ns = "streams"
    cluster.kubectl("create", "namespace", ns, check=False)
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata:
  name: talker
  annotations: {{kubectl.kubernetes.io/default-container: main}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "i=0; while true; do i=$((i+1)); echo line $i; sleep 0.2; done"]
  - name: web
    image: {BUSYBOX}
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
""", ns)
    cluster.wait_running(ns, "talker")
    return ns


def test_logs_tail_timestamps_follow_and_container(cluster: Cluster, talker: str) -> None:
    cluster.wait_for("some lines", lambda: cluster.kubectl("logs", "-n", talker, "talker").stdout.count("\n") >= 5)
    out = cluster.kubectl("logs", "-n", talker, "talker", "--tail=2").stdout
    assert len(out.splitlines()) == 2 and out.startswith("line ")
    ts = cluster.kubectl("logs", "-n", talker, "talker", "-c", "main", "--tail=1", "--timestamps").stdout
    assert ts[:4].isdigit() and "T" in ts.split()[0] and ts.split()[1] == "line"
    assert cluster.kubectl("logs", "-n", talker, "talker", "-c", "web").stdout == ""
    since = cluster.kubectl("logs", "-n", talker, "talker", "--since=1s").stdout
    assert 0 < len(since.splitlines()) < 15
    # -f streams new lines as they are written, until we stop reading
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "logs", "-f", "-n", talker,
                             "talker", "--tail=1"], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        later = [proc.stdout.readline() for _ in range(3)]  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait()
    n0 = int(first.split()[1])
    assert [int(x.split()[1]) for x in later] == [n0 + 1, n0 + 2, n0 + 3]


def test_logs_errors(cluster: Cluster, talker: str) -> None:
    res = cluster.kubectl("logs", "-n", talker, "talker", "-c", "nope", check=False)
    assert res.returncode != 0 and "container nope is not valid for pod talker" in res.stderr
    res = cluster.kubectl("logs", "-n", talker, "talker", "--previous", check=False)
    assert res.returncode != 0 and "previous terminated container" in res.stderr


def test_exec_exit_codes_stdin_and_tty(cluster: Cluster, talker: str) -> None:
    res = cluster.kubectl("exec", "-n", talker, "talker", "--", "sh", "-c", "echo out; echo err >&2; exit 7",
                          check=False)
    assert res.returncode == 7
    assert res.stdout == "out\n" and "err\n" in res.stderr
    assert "command terminated with exit code 7" in res.stderr
    ok = cluster.kubectl("exec", "-n", talker, "talker", "-c", "web", "--", "cat", "/var/www/index.html")
    assert ok.stdout == "hello from k3py busybox\n"
    piped = cluster.kubectl("exec", "-i", "-n", talker, "talker", "--", "sh", "-c", "tr a-z A-Z",
                            input="hello stdin\n")
    assert piped.stdout == "HELLO STDIN\n"
    # -t without a terminal on our side: kubectl still runs the command (with a pty in the pod)
    tty = subprocess.run(["script", "-qec", f"kubectl --kubeconfig {cluster.kubeconfig} exec -it -n {talker} "
                          "talker -- sh -c 'tty; exit 0'", "/dev/null"], capture_output=True, text=True, timeout=60)
    assert "/dev/pts/" in tty.stdout


def test_cp_both_ways(cluster: Cluster, talker: str, tmp_path: Path) -> None:
    src = tmp_path / "payload.bin"
    src.write_bytes(bytes(range(256)) * 400)
    cluster.kubectl("cp", str(src), f"{talker}/talker:/tmp/payload.bin", "-c", "main", timeout=60)
    md5 = cluster.kubectl("exec", "-n", talker, "talker", "--", "md5sum", "/tmp/payload.bin").stdout.split()[0]
    import hashlib

    assert md5 == hashlib.md5(src.read_bytes()).hexdigest()  # noqa: S324 - a checksum, not security
    back = tmp_path / "back.bin"
    cluster.kubectl("cp", f"{talker}/talker:/tmp/payload.bin", str(back), "-c", "main", timeout=60)
    assert back.read_bytes() == src.read_bytes()


def test_python_client_exec_and_port_forward(cluster: Cluster, talker: str) -> None:
    from kubernetes import client
    from kubernetes.stream import portforward, stream

    api = client.CoreV1Api(cluster.python_client())
    out = stream(api.connect_get_namespaced_pod_exec, "talker", talker, container="main",
                 command=["sh", "-c", "echo from-python"], stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "from-python\n"
    pf = portforward(api.connect_get_namespaced_pod_portforward, "talker", talker, ports="8080")
    sock = pf.socket(8080)
    sock.settimeout(10)
    try:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        deadline = time.monotonic() + 10
        while b"hello from k3py" not in data and time.monotonic() < deadline:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
        pf.close()
    assert data.startswith(b"HTTP/1.") and b"hello from k3py busybox" in data


def test_exec_on_unscheduled_pod_is_bad_request(cluster: Cluster, ns: str) -> None:
    cluster.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: nowhere}}
spec:
  nodeSelector: {{absent: label}}
  containers: [{{name: c, image: {BUSYBOX}}}]
""", ns)
    res = cluster.kubectl("logs", "-n", ns, "nowhere", check=False)
    assert res.returncode != 0 and "does not have a host assigned" in res.stderr


def test_kubectl_port_forward(cluster: Cluster, talker: str, tmp_path: Path) -> None:
    """kubectl 1.32 speaks SPDY/3.1 inside WebSocket for port-forward."""
    import urllib.request

    from tests.e2e.conftest import free_port

    payload = tmp_path / "big.bin"
    payload.write_bytes(os.urandom(300_000))
    cluster.kubectl("cp", str(payload), f"{talker}/talker:/var/www/big.bin", "-c", "web", timeout=60)
    local = free_port()
    proc = subprocess.Popen(["kubectl", "--kubeconfig", str(cluster.kubeconfig), "port-forward", "-n", talker,
                             "pod/talker", f"{local}:8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert "Forwarding from 127.0.0.1" in proc.stdout.readline()  # type: ignore[union-attr]
        for _ in range(2):  # several connections over one session
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as r:
                assert r.read() == b"hello from k3py busybox\n"
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/big.bin", timeout=20) as r:
            assert r.read() == payload.read_bytes()
    finally:
        proc.kill()
        proc.wait()


def test_kubectl_top_nodes_and_pods(cluster: Cluster, talker: str) -> None:
    """metrics.k8s.io from the kubelets' stats (CRI container stats), as metrics-server serves it."""
    def top_pod() -> str:
        res = cluster.kubectl("top", "pod", "-n", talker, "--containers", check=False)
        return res.stdout if res.returncode == 0 else ""

    out = cluster.wait_for("kubectl top pod", top_pod, timeout=60, interval=1)
    rows = {tuple(line.split()[:2]) for line in out.splitlines()[1:]}
    assert ("talker", "main") in rows and ("talker", "web") in rows
    mem = [line.split()[3] for line in out.splitlines()[1:]]
    assert all(m.endswith("Mi") for m in mem)
    node = cluster.kubectl("top", "node").stdout.splitlines()
    assert node[0].split()[:3] == ["NAME", "CPU(cores)", "CPU(%)"]
    assert node[1].split()[0] == cluster.node_name


def test_exec_stdin_eof_keeps_later_output_and_exit_code(cluster: Cluster, talker: str) -> None:
    """kubectl's v5 close signal half-closes stdin: the command sees EOF, its output after
    that (even after a quiet second) and its exit code still come back."""
    res = cluster.kubectl("exec", "-i", "-n", talker, "talker", "--", "sh", "-c",
                          "wc -c; sleep 1.5; echo late; exit 3", input="x" * 100_000, check=False)
    assert res.stdout.split() == ["100000", "late"]
    assert res.returncode == 3 and "command terminated with exit code 3" in res.stderr


def test_exec_command_leaving_stdin_unread(cluster: Cluster, talker: str) -> None:
    """The command exits without reading all of stdin: its output and status still arrive."""
    res = cluster.kubectl("exec", "-i", "-n", talker, "talker", "--", "sh", "-c", "head -c 5; exit 4",
                          input="y" * 2_000_000, check=False)
    assert res.stdout == "yyyyy"
    # the exit code, unless containerd's stdin copy got stuck on the exited command's full
    # FIFO (then the kubelet ends the session with a Failure after a grace period)
    assert res.returncode == 4 or (res.returncode == 1 and "reported no exit status" in res.stderr)
