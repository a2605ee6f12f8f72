"""Real pods on containerd through the embedded agent, driven by kubectl."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import urllib.request
from pathlib import Path

from tests.e2e.conftest import BUSYBOX, Cluster, container_status, is_ready


def _pod(name: str, body: str, *, extra_spec: str = "", restart: str = "Always") -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 2
{extra_spec}
  containers:
{body}
"""


def test_deployment_pods_running_ready_and_serving(cluster: Cluster, ns: str) -> None:
    cluster.apply(f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {BUSYBOX}
        command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
        readinessProbe: {{httpGet: {{path: /, port: 8080}}, periodSeconds: 1}}
        livenessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 2}}
""", ns)
    cluster.kubectl("rollout", "status", "-n", ns, "deployment/web", "--timeout=90s", timeout=120)
    pods = cluster.get_json("pods", "-n", ns)["items"]
    assert len(pods) == 2
    for p in pods:
        assert is_ready(p)
        st = p["status"]
        assert st["phase"] == "Running"
        assert st["podIP"].startswith("10.42.")
        assert st["hostIP"] == "127.0.0.1"
        cs = container_status(p, "httpd")
        assert cs["containerID"].startswith("containerd://")
        assert cs["restartCount"] == 0 and cs["started"] is True
        assert st["qosClass"] == "BestEffort"
        # Real kernel networking: the pod answers on its IP from this (the node's) netns.
        with urllib.request.urlopen(f"http://{st['podIP']}:8080/", timeout=10) as r:
            assert b"hello from k3py busybox" in r.read()
    events = cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"] if e["source"].get("component") == "kubelet"}
    assert {"Created", "Started"} <= reasons


def test_env_and_volumes_from_configmap_secret_downward_api(cluster: Cluster, ns: str) -> None:
    secret_val = base64.b64encode(b"s3cret").decode()
    cluster.apply(f"""
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg}}
data: {{greeting: hello, mode: fast}}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec}}
data: {{password: {secret_val}}}
""", ns)
    cluster.apply(_pod("envpod", f"""
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    resources: {{limits: {{cpu: 200m, memory: 64Mi}}}}
    env:
    - {{name: GREETING, valueFrom: {{configMapKeyRef: {{name: cfg, key: greeting}}}}}}
    - {{name: PASSWORD, valueFrom: {{secretKeyRef: {{name: sec, key: password}}}}}}
    - {{name: MY_POD, valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}}}
    - {{name: MY_NS, valueFrom: {{fieldRef: {{fieldPath: metadata.namespace}}}}}}
    - {{name: MEM_LIMIT, valueFrom: {{resourceFieldRef: {{resource: limits.memory, divisor: 1Mi}}}}}}
    - {{name: COMBINED, value: "$(GREETING)-$(MY_POD)"}}
    envFrom: [{{prefix: CFG_, configMapRef: {{name: cfg}}}}]
    volumeMounts:
    - {{name: cm, mountPath: /etc/cfg}}
    - {{name: sec, mountPath: /etc/sec}}
    - {{name: info, mountPath: /etc/info}}
    - {{name: scratch, mountPath: /scratch}}
    - {{name: mem, mountPath: /mem}}
""", extra_spec="""  volumes:
  - {name: cm, configMap: {name: cfg}}
  - {name: sec, secret: {secretName: sec}}
  - {name: info, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}, {path: name, fieldRef: {fieldPath: metadata.name}}]}}
  - {name: scratch, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
"""), ns)
    cluster.wait_running(ns, "envpod")
    env = cluster.kubectl("exec", "-n", ns, "envpod", "--", "env").stdout
    for line in ("GREETING=hello", "PASSWORD=s3cret", "MY_POD=envpod", f"MY_NS={ns}", "MEM_LIMIT=64",
                 "COMBINED=hello-envpod", "CFG_mode=fast", "KUBERNETES_SERVICE_HOST="):
        assert line in env, (line, env)
    assert cluster.kubectl("exec", "-n", ns, "envpod", "--", "cat", "/etc/cfg/greeting").stdout == "hello"
    assert cluster.kubectl("exec", "-n", ns, "envpod", "--", "cat", "/etc/sec/password").stdout == "s3cret"
    assert cluster.kubectl("exec", "-n", ns, "envpod", "--", "cat", "/etc/info/name").stdout == "envpod"
    mounts = cluster.kubectl("exec", "-n", ns, "envpod", "--", "cat", "/proc/mounts").stdout
    assert any(" /mem tmpfs" in line for line in mounts.splitlines())
    # A ConfigMap change reaches the mounted file in place.
    cluster.kubectl("patch", "configmap", "cfg", "-n", ns, "--type=merge", "-p", '{"data":{"greeting":"bonjour"}}')
    cluster.wait_for("configmap update in the volume", lambda: cluster.kubectl(
        "exec", "-n", ns, "envpod", "--", "cat", "/etc/cfg/greeting").stdout == "bonjour", timeout=60, interval=1)
    pod = cluster.pod(ns, "envpod")
    assert pod["status"]["qosClass"] == "Guaranteed"


def test_missing_configmap_is_create_container_config_error(cluster: Cluster, ns: str) -> None:
    cluster.apply(_pod("badenv", f"""
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    env: [{{name: X, valueFrom: {{configMapKeyRef: {{name: nope, key: k}}}}}}]
"""), ns)
    p = cluster.wait_pod(ns, "badenv", lambda p: container_status(p, "c").get("state", {}).get("waiting", {})
                         .get("reason") == "CreateContainerConfigError")
    assert 'configmap "nope" not found' in container_status(p, "c")["state"]["waiting"]["message"]


def test_init_containers_run_in_order_first(cluster: Cluster, ns: str) -> None:
    cluster.apply(_pod("init", f"""
  - name: main
    image: {BUSYBOX}
    command: ["sh", "-c", "cat /work/order; sleep 3600"]
    volumeMounts: [{{name: w, mountPath: /work}}]
""", extra_spec=f"""  volumes: [{{name: w, emptyDir: {{}}}}]
  initContainers:
  - name: one
    image: {BUSYBOX}
    command: ["sh", "-c", "echo one >> /work/order"]
    volumeMounts: [{{name: w, mountPath: /work}}]
  - name: two
    image: {BUSYBOX}
    command: ["sh", "-c", "echo two >> /work/order"]
    volumeMounts: [{{name: w, mountPath: /work}}]
"""), ns)
    p = cluster.wait_running(ns, "init")
    assert [s["state"]["terminated"]["reason"] for s in p["status"]["initContainerStatuses"]] == ["Completed"] * 2
    cluster.wait_for("main's log", lambda: cluster.kubectl("logs", "-n", ns, "init").stdout == "one\ntwo\n")


def test_failing_liveness_probe_restarts_the_container(cluster: Cluster, ns: str) -> None:
    cluster.apply(_pod("live", f"""
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    livenessProbe: {{exec: {{command: ["test", "-e", "/tmp/absent"]}}, periodSeconds: 1, failureThreshold: 2}}
"""), ns)
    p = cluster.wait_pod(ns, "live", lambda p: container_status(p, "c").get("restartCount", 0) >= 1, timeout=60)
    assert container_status(p, "c")["lastState"]["terminated"]["exitCode"] in (137, 143)
    events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "Unhealthy" and "Liveness probe failed" in e["message"] for e in events)
    assert any(e["reason"] == "Killing" for e in events)


def test_readiness_probe_failure_keeps_pod_unready(cluster: Cluster, ns: str) -> None:
    cluster.apply(_pod("unready", f"""
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    readinessProbe: {{httpGet: {{path: /, port: 9999}}, periodSeconds: 1}}
"""), ns)
    p = cluster.wait_pod(ns, "unready", lambda p: container_status(p, "c").get("state", {}).get("running"))
    assert not is_ready(p)
    cond = [c for c in p["status"]["conditions"] if c["type"] == "ContainersReady"][0]
    assert cond["status"] == "False" and "unready status: [c]" in cond["message"]


def test_crash_loop_back_off(cluster: Cluster, ns: str) -> None:
    cluster.apply(_pod("crash", f"""
  - name: c
    image: {BUSYBOX}
    command: ["sh", "-c", "echo dying; exit 3"]
"""), ns)
    p = cluster.wait_pod(ns, "crash", lambda p: container_status(p, "c").get("state", {}).get("waiting", {})
                         .get("reason") == "CrashLoopBackOff", timeout=60)
    cs = container_status(p, "c")
    assert cs["restartCount"] >= 1
    assert cs["lastState"]["terminated"]["exitCode"] == 3
    assert re.match(r"back-off \d+s restarting failed container=c pod=crash_", cs["state"]["waiting"]["message"])
    # kubectl shows what a K3s user expects
    assert "CrashLoopBackOff" in cluster.kubectl("get", "pod", "-n", ns, "crash").stdout
    assert cluster.kubectl("logs", "-n", ns, "crash", "--previous").stdout == "dying\n"


def test_oom_killed_reports_137(cluster: Cluster, ns: str) -> None:
    cluster.apply(_pod("oom", f"""
  - name: c
    image: {BUSYBOX}
    command: ["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"]
    resources: {{limits: {{memory: 24Mi}}}}
""", restart="Never"), ns)
    p = cluster.wait_pod(ns, "oom", lambda p: p["status"].get("phase") == "Failed", timeout=90)
    t = container_status(p, "c")["state"]["terminated"]
    assert t["reason"] == "OOMKilled" and t["exitCode"] == 137


def test_job_pod_succeeds(cluster: Cluster, ns: str) -> None:
    cluster.apply(f"""
apiVersion: batch/v1
kind: Job
metadata: {{name: once}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: c, image: {BUSYBOX}, command: ["sh", "-c", "echo done"]}}]
""", ns)
    cluster.kubectl("wait", "-n", ns, "--for=condition=complete", "job/once", "--timeout=60s", timeout=90)
    pod = cluster.get_json("pods", "-n", ns, "-l", "job-name=once")["items"][0]
    assert pod["status"]["phase"] == "Succeeded"
    assert container_status(pod, "c")["state"]["terminated"]["reason"] == "Completed"


def test_image_never_pull_missing(cluster: Cluster, ns: str) -> None:
    cluster.apply(_pod("never", """
  - name: c
    image: k3py.local/absent:1
    imagePullPolicy: Never
"""), ns)
    cluster.wait_pod(ns, "never", lambda p: container_status(p, "c").get("state", {}).get("waiting", {})
                     .get("reason") == "ErrImageNeverPull")


def test_deleted_pods_leave_nothing_behind(cluster: Cluster, ns: str) -> None:
    cluster.apply(_pod("gone", f"""
  - name: c
    image: {BUSYBOX}
    command: ["sleep", "3600"]
    ports: [{{containerPort: 80, hostPort: 18089}}]
"""), ns)
    p = cluster.wait_running(ns, "gone")
    ip, uid = p["status"]["podIP"], p["metadata"]["uid"]
    ipam = cluster.data_dir / "agent" / "cni" / "ipam"
    assert (ipam / ip).exists()
    assert "dport 18089" in subprocess.run(["nft", "list", "table", "ip", "k3py-cni"], capture_output=True,
                                           text=True).stdout
    links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    netns_before = {x.name for x in Path("/var/run/netns").glob("cni-*")}
    cluster.kubectl("delete", "pod", "-n", ns, "gone", "--timeout=60s", timeout=90)
    assert not cluster.sandboxes(**{"io.kubernetes.pod.uid": uid})
    assert not (ipam / ip).exists()
    assert not (cluster.data_dir / "agent" / "pods" / uid).exists()
    assert "dport 18089" not in subprocess.run(["nft", "list", "table", "ip", "k3py-cni"], capture_output=True,
                                               text=True).stdout
    links_after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert links_after.count("veth") == links_before.count("veth") - 1
    netns_after = {x.name for x in Path("/var/run/netns").glob("cni-*")}
    assert len(netns_before - netns_after) == 1 and not netns_after - netns_before


def test_host_port_reaches_the_pod(cluster: Cluster, ns: str) -> None:
    from tests.e2e.conftest import free_port

    port = free_port()
    cluster.apply(_pod("hostport", f"""
  - name: web
    image: {BUSYBOX}
    command: ["httpd", "-f", "-p", "8080", "-h", "/var/www"]
    ports: [{{containerPort: 8080, hostPort: {port}}}]
    readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
"""), ns)
    cluster.wait_running(ns, "hostport")
    # from the node itself, on loopback: DNAT in nftables' output hook to the pod
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
        assert r.read() == b"hello from k3py busybox\n"
