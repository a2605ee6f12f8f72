"""EndpointSlice and Endpoints controllers, on their own: pods are created bound to a
node and their status (IP, Ready) is written through the status subresource, as a
kubelet would, so no scheduler or simulated node is involved."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from k3py.client import PODS
from k3py.server.controllers.endpoints import CONTROLLERS
from tests.conftest import server_config, start_server_thread, stop_server_thread
from tests.control.conftest import ClusterHandle, start_only

SLICE_LABEL = "kubernetes.io/service-name"


@pytest.fixture(scope="module")
def ep_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    data = tmp_path_factory.mktemp("k3py-ep")
    cfg = server_config(data, disable_controller_manager=True, disable_scheduler=True)
    h = ClusterHandle(**start_server_thread(cfg).__dict__)
    os.environ.setdefault("KUBECACHEDIR", str(data / "kubecache"))
    h.ep_manager = start_only(h, list(CONTROLLERS))  # type: ignore[attr-defined]
    try:
        yield h
    finally:
        h.call(h.ep_manager.stop())  # type: ignore[attr-defined]
        stop_server_thread(h)


_n = iter(range(1, 10_000))


@pytest.fixture
def ns(ep_cluster: ClusterHandle) -> str:
    name = f"ep{next(_n)}"
    ep_cluster.kubectl("create", "namespace", name)
    return name


def pod(name: str, *, labels: dict[str, str], node: str = "n1", ports: list[Any] | None = None,
        hostname: str = "", subdomain: str = "") -> dict[str, Any]:  # fmt: skip
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [{"name": "c", "image": "nginx", "ports": ports or []}],
    }
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels}, "spec": spec}  # fmt: skip


def run_pod(
    h: ClusterHandle, ns: str, body: dict[str, Any], *, ip: str, ready: bool = True
) -> None:
    c = h.client()
    h.call(c.create(PODS, body, namespace=ns))
    set_status(h, ns, body["metadata"]["name"], ip=ip, ready=ready)


def set_status(h: ClusterHandle, ns: str, name: str, *, ip: str, ready: bool,
               phase: str = "Running") -> None:  # fmt: skip
    status = {
        "phase": phase,
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    h.call(h.client().patch(PODS, name, {"status": status}, namespace=ns, subresource="status"))


def slices(h: ClusterHandle, ns: str, svc: str) -> list[dict[str, Any]]:
    items = h.get_json("endpointslices", "-n", ns, "-l", f"{SLICE_LABEL}={svc}")["items"]
    return list(items)


def endpoints_by_pod(h: ClusterHandle, ns: str, svc: str) -> dict[str, dict[str, Any]]:
    out = {}
    for es in slices(h, ns, svc):
        for ep in es.get("endpoints") or []:
            out[ep["targetRef"]["name"]] = {**ep, "_ports": es.get("ports")}
    return out


def get_ep(h: ClusterHandle, ns: str, name: str) -> dict[str, Any] | None:
    r = h.kubectl("get", "endpoints", name, "-n", ns, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: web, labels: {team: a}}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: metrics, port: 9090, targetPort: 9100}
"""


def test_slices_and_endpoints_follow_pods(ep_cluster: ClusterHandle, ns: str) -> None:
    h = ep_cluster
    h.kubectl("apply", "-n", ns, "-f", "-", input=SERVICE)
    # No pods yet: one placeholder slice, Endpoints without subsets.
    h.wait_for(lambda: len(slices(h, ns, "web")) == 1, what="placeholder slice")
    es = slices(h, ns, "web")[0]
    assert not es.get("endpoints") and es["addressType"] == "IPv4"
    assert es["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == (
        "endpointslice-controller.k8s.io"
    )
    assert es["metadata"]["labels"]["team"] == "a"
    assert es["metadata"]["generateName"] == "web-"
    owner = es["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Service", "web", True)
    ep = h.wait_for(lambda: get_ep(h, ns, "web"), what="Endpoints")
    assert "subsets" not in ep
    assert ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true"

    named = [{"name": "http", "containerPort": 8080}, {"name": "other", "containerPort": 7}]
    run_pod(h, ns, pod("a", labels={"app": "web"}, ports=named), ip="10.42.0.11")
    run_pod(h, ns, pod("b", labels={"app": "web"}, ports=named), ip="10.42.0.12", ready=False)
    run_pod(h, ns, pod("other", labels={"app": "db"}, ports=named), ip="10.42.0.13")
    # a pod without an IP yet is not an endpoint
    h.call(h.client().create(PODS, pod("noip", labels={"app": "web"}), namespace=ns))

    eps = h.wait_for(lambda: (e := endpoints_by_pod(h, ns, "web")).keys() == {"a", "b"} and e,
                     what="endpoints a and b")  # fmt: skip
    assert eps["a"]["addresses"] == ["10.42.0.11"]
    assert eps["a"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert eps["b"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert eps["a"]["nodeName"] == "n1"
    assert eps["a"]["targetRef"]["kind"] == "Pod"
    ports = {p["name"]: p["port"] for p in eps["a"]["_ports"]}
    assert ports == {"http": 8080, "metrics": 9100}  # named targetPort resolved per pod
    assert len(slices(h, ns, "web")) == 1  # the placeholder was reused

    ep = h.wait_for(lambda: (e := get_ep(h, ns, "web")) and e.get("subsets") and e,
                    what="Endpoints subsets")  # fmt: skip
    (subset,) = ep["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == ["10.42.0.11"]
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["10.42.0.12"]
    assert sorted((p["name"], p["port"]) for p in subset["ports"]) == [
        ("http", 8080),
        ("metrics", 9100),
    ]
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]

    # b becomes ready
    set_status(h, ns, "b", ip="10.42.0.12", ready=True)
    h.wait_for(lambda: endpoints_by_pod(h, ns, "web")["b"]["conditions"]["ready"], what="b ready")
    h.wait_for(
        lambda: (
            sorted(
                a["ip"]
                for a in (get_ep(h, ns, "web") or {}).get("subsets", [{}])[0].get("addresses", [])
            )
            == ["10.42.0.11", "10.42.0.12"]
        ),
        what="both addresses ready",
    )
    # a pod whose container lacks the named port gets only the numeric port
    run_pod(
        h, ns, pod("c", labels={"app": "web"}, ports=[{"containerPort": 8080}]), ip="10.42.0.14"
    )
    h.wait_for(lambda: "c" in endpoints_by_pod(h, ns, "web"), what="endpoint c")
    eps = endpoints_by_pod(h, ns, "web")
    assert [(p["name"], p["port"]) for p in eps["c"]["_ports"]] == [("metrics", 9100)]
    assert len(slices(h, ns, "web")) == 2  # one slice per port set
    ep = h.wait_for(lambda: (e := get_ep(h, ns, "web")) and len(e.get("subsets", [])) == 2 and e,
                    what="two subsets")  # fmt: skip
    # kubectl shows them
    out = h.kubectl("get", "endpoints", "web", "-n", ns).stdout
    assert "10.42.0.11:8080" in out or "10.42.0.11:9100" in out
    out = h.kubectl("get", "endpointslices", "-n", ns).stdout
    assert "IPv4" in out and "10.42.0.11" in out

    # a pod whose labels stop matching leaves
    h.kubectl("label", "pod", "c", "-n", ns, "app=gone", "--overwrite")
    h.wait_for(lambda: "c" not in endpoints_by_pod(h, ns, "web"), what="c removed")
    h.wait_for(lambda: len(slices(h, ns, "web")) == 1, what="empty slice deleted")
    h.wait_for(
        lambda: len((get_ep(h, ns, "web") or {}).get("subsets", [])) == 1, what="subset gone"
    )


def test_terminating_pods_and_publish_not_ready(ep_cluster: ClusterHandle, ns: str) -> None:
    h = ep_cluster
    h.kubectl("create", "service", "clusterip", "t", "--tcp=80:8080", "-n", ns)
    h.kubectl("create", "service", "clusterip", "pub", "--tcp=80:8080", "-n", ns)
    h.kubectl("patch", "svc", "pub", "-n", ns, "--type=merge",
              "-p", '{"spec":{"publishNotReadyAddresses":true,"selector":{"app":"t"}}}')  # fmt: skip
    h.kubectl(
        "patch", "svc", "t", "-n", ns, "--type=merge", "-p", '{"spec":{"selector":{"app":"t"}}}'
    )
    run_pod(h, ns, pod("p1", labels={"app": "t"}), ip="10.42.1.1")
    run_pod(h, ns, pod("p2", labels={"app": "t"}), ip="10.42.1.2", ready=False)
    h.wait_for(lambda: endpoints_by_pod(h, ns, "t").keys() == {"p1", "p2"}, what="t endpoints")
    pub = h.wait_for(lambda: (e := endpoints_by_pod(h, ns, "pub")).keys() == {"p1", "p2"} and e,
                     what="pub endpoints")  # fmt: skip
    assert pub["p2"]["conditions"] == {"ready": True, "serving": False, "terminating": False}
    # p1 terminating (the pod is bound, so it waits for its kubelet: it stays Terminating)
    h.kubectl("delete", "pod", "p1", "-n", ns, "--wait=false")
    t = h.wait_for(lambda: (e := endpoints_by_pod(h, ns, "t"))["p1"]["conditions"]["terminating"] and e,
                   what="p1 terminating")  # fmt: skip
    assert t["p1"]["conditions"] == {"ready": False, "serving": True, "terminating": True}
    pub = h.wait_for(lambda: (e := endpoints_by_pod(h, ns, "pub"))["p1"]["conditions"]["terminating"] and e,
                     what="pub p1 terminating")  # fmt: skip
    assert pub["p1"]["conditions"] == {"ready": True, "serving": True, "terminating": True}
    # legacy Endpoints: the terminating pod is out, unless publishNotReadyAddresses
    h.wait_for(
        lambda: [a["ip"] for s in (get_ep(h, ns, "t") or {}).get("subsets", [])
                 for a in s.get("addresses", []) + s.get("notReadyAddresses", [])] == ["10.42.1.2"],
        what="t Endpoints without the terminating pod",
    )  # fmt: skip
    ep = h.wait_for(lambda: (e := get_ep(h, ns, "pub")) and e.get("subsets") and e, what="pub ep")
    assert sorted(a["ip"] for a in ep["subsets"][0]["addresses"]) == ["10.42.1.1", "10.42.1.2"]
    # a finished pod is no endpoint
    set_status(h, ns, "p2", ip="10.42.1.2", ready=False, phase="Succeeded")
    h.wait_for(lambda: "p2" not in endpoints_by_pod(h, ns, "t"), what="p2 gone")
    h.kubectl("delete", "pod", "p1", "-n", ns, "--grace-period=0", "--force")
    h.wait_for(lambda: not endpoints_by_pod(h, ns, "t"), what="no endpoints")
    # Services without selectors are left alone
    h.kubectl("apply", "-n", ns, "-f", "-",
              input="apiVersion: v1\nkind: Service\nmetadata: {name: manual}\nspec: {ports: [{port: 80}]}\n")  # fmt: skip
    h.kubectl("delete", "svc", "t", "-n", ns)  # a write after it, to wait behind
    assert not slices(h, ns, "manual")
    assert get_ep(h, ns, "manual") is None
    # Endpoints of a deleted Service go
    h.wait_for(lambda: get_ep(h, ns, "t") is None, what="Endpoints t deleted")
    assert not slices(h, ns, "manual")
    assert get_ep(h, ns, "manual") is None


def test_many_pods_many_slices_hostname_zone(ep_cluster: ClusterHandle, ns: str) -> None:
    h = ep_cluster
    h.kubectl("apply", "-f", "-", input="""
apiVersion: v1
kind: Node
metadata: {name: zoned, labels: {topology.kubernetes.io/zone: zone-a}}
""")  # fmt: skip
    h.kubectl("apply", "-n", ns, "-f", "-", input="""
apiVersion: v1
kind: Service
metadata: {name: big}
spec:
  clusterIP: None
  selector: {app: big}
  ports: [{port: 80}]
""")  # fmt: skip
    n = 205
    bodies = [
        pod(
            f"big-{i:03d}",
            labels={"app": "big"},
            node="zoned",
            hostname=f"h{i}" if i < 2 else "",
            subdomain="big",
        )  # fmt: skip
        for i in range(n)
    ]
    c = h.client()

    async def start_all() -> None:
        await asyncio.gather(*(c.create(PODS, b, namespace=ns) for b in bodies))
        await asyncio.gather(*(up(i) for i in range(n)))

    async def up(i: int) -> None:
        ip = f"10.42.2.{i}" if i < 200 else f"10.42.3.{i - 200}"
        status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                  "conditions": [{"type": "Ready", "status": "True"}]}  # fmt: skip
        await c.patch(PODS, f"big-{i:03d}", {"status": status}, namespace=ns,
                      subresource="status")  # fmt: skip

    h.call(start_all())
    h.wait_for(lambda: len(endpoints_by_pod(h, ns, "big")) == n, timeout=60, what=f"{n} endpoints")
    got = slices(h, ns, "big")
    assert len(got) == 3
    assert all(len(s["endpoints"]) <= 100 for s in got)
    assert got[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    eps = endpoints_by_pod(h, ns, "big")
    assert eps["big-000"]["hostname"] == "h0"
    assert "hostname" not in eps["big-005"]
    assert eps["big-005"]["zone"] == "zone-a"
    ep = h.wait_for(
        lambda: (
            (e := get_ep(h, ns, "big"))
            and sum(len(s.get("addresses", [])) for s in e.get("subsets", [])) == n
            and e
        ),
        what="Endpoints with all addresses",
    )
    assert any(a.get("hostname") == "h1" for a in ep["subsets"][0]["addresses"])
    # shrinking: the slices emptied go, the others are not reshuffled
    first, *others = sorted(slices(h, ns, "big"), key=lambda s: len(s["endpoints"]), reverse=True)
    doomed = [ep["targetRef"]["name"] for es in others for ep in es["endpoints"]]

    async def delete_all() -> None:
        await asyncio.gather(
            *(c.delete(PODS, p, namespace=ns, grace_period_seconds=0) for p in doomed)
        )

    h.call(delete_all())
    left = len(first["endpoints"])
    h.wait_for(lambda: len(endpoints_by_pod(h, ns, "big")) == left, timeout=60, what=f"{left} left")
    h.wait_for(lambda: len(slices(h, ns, "big")) == 1, what="one slice left")


def idle(h: ClusterHandle) -> bool:
    """Both controllers have nothing queued or in progress."""
    for c in h.ep_manager.controllers:  # type: ignore[attr-defined]
        if len(c.queue) or c.queue._processing or c.queue._timers:  # noqa: SLF001
            return False
    return True


def test_no_needless_writes_and_hand_edits_undone(ep_cluster: ClusterHandle, ns: str) -> None:
    h = ep_cluster
    h.kubectl("create", "service", "clusterip", "quiet", "--tcp=80:8080", "-n", ns)
    h.kubectl("create", "service", "clusterip", "sentinel", "--tcp=80:8080", "-n", ns)
    run_pod(h, ns, pod("q1", labels={"app": "quiet"}), ip="10.42.4.1")
    h.wait_for(lambda: "q1" in endpoints_by_pod(h, ns, "quiet"), what="q1 endpoint")
    h.wait_for(lambda: (get_ep(h, ns, "quiet") or {}).get("subsets"), what="quiet Endpoints")
    h.wait_for(lambda: idle(h), what="controllers idle")
    (es,) = slices(h, ns, "quiet")
    ep = get_ep(h, ns, "quiet")
    assert ep is not None
    # a change that does not matter to endpoints, then one that shows, then idle
    h.kubectl("annotate", "pod", "q1", "-n", ns, "note=irrelevant")
    h.kubectl("label", "pod", "q1", "-n", ns, "extra=label")
    run_pod(h, ns, pod("s1", labels={"app": "sentinel"}), ip="10.42.4.2")
    h.wait_for(lambda: "s1" in endpoints_by_pod(h, ns, "sentinel"), what="sentinel endpoint")
    h.wait_for(lambda: idle(h), what="controllers idle")
    (es2,) = slices(h, ns, "quiet")
    assert es2["metadata"]["resourceVersion"] == es["metadata"]["resourceVersion"]
    ep2 = get_ep(h, ns, "quiet")
    assert ep2 is not None
    assert ep2["metadata"]["resourceVersion"] == ep["metadata"]["resourceVersion"]
    # hand edits are put back
    name = es["metadata"]["name"]
    h.kubectl("patch", "endpointslice", name, "-n", ns, "--type=merge", "-p", '{"endpoints":[]}')
    h.wait_for(lambda: "q1" in endpoints_by_pod(h, ns, "quiet"), what="slice restored")
    assert [s["metadata"]["name"] for s in slices(h, ns, "quiet")] == [name]
    h.kubectl("patch", "endpoints", "quiet", "-n", ns, "--type=merge", "-p", '{"subsets":null}')
    h.wait_for(lambda: (get_ep(h, ns, "quiet") or {}).get("subsets"), what="Endpoints restored")
    h.kubectl("delete", "endpoints", "quiet", "-n", ns)
    h.wait_for(lambda: (get_ep(h, ns, "quiet") or {}).get("subsets"), what="Endpoints recreated")
    h.kubectl("delete", "endpointslice", name, "-n", ns)
    h.wait_for(lambda: "q1" in endpoints_by_pod(h, ns, "quiet"), what="slice recreated")


def test_with_simulated_nodes(cluster: ClusterHandle) -> None:
    """The whole control plane: a Deployment's pods become a Service's endpoints."""
    h = cluster
    ns = "ep-sim"
    h.kubectl("create", "namespace", ns)
    h.kubectl("create", "deployment", "web", "--image=nginx", "--replicas=3", "--port=80", "-n", ns)
    h.kubectl("expose", "deployment", "web", "--port=8080", "--target-port=80", "-n", ns)

    def ready_ips() -> list[str]:
        return sorted(
            ep["addresses"][0]
            for es in slices(h, ns, "web")
            for ep in es.get("endpoints") or []
            if ep["conditions"]["ready"]
        )

    ips = h.wait_for(
        lambda: len(ready_ips()) == 3 and ready_ips(), timeout=60, what="3 ready endpoints"
    )
    pod_ips = sorted(p["status"]["podIP"] for p in h.get_json("pods", "-n", ns)["items"])
    assert ips == pod_ips
    out = h.wait_for(
        lambda: (
            (o := h.kubectl("get", "endpoints", "web", "-n", ns).stdout)
            and all(f"{ip}:80" in o for ip in ips)
            and o
        ),
        what="kubectl get endpoints",
    )
    assert "web" in out
    h.kubectl("scale", "deployment", "web", "--replicas=1", "-n", ns)
    h.wait_for(lambda: len(ready_ips()) == 1, timeout=60, what="1 ready endpoint")
