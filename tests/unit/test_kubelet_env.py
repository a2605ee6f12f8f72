"""Container environments as upstream's kubelet builds them."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from k3py.agent.kubelet.env import (
    ClientGetter,
    EnvError,
    build_env,
    expand,
    field_value,
    format_map,
    resource_value,
    service_env,
)
from k3py.client import CONFIGMAPS, SERVICES

Obj = dict[str, Any]


class Getter:
    """A dict-backed ObjectGetter that counts reads."""

    def __init__(self, objs: list[Obj]) -> None:
        self.objs = {
            (o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs
        }
        self.reads = 0

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        self.reads += 1
        return self.objs.get((kind, namespace, name))


def cm(name: str, data: dict[str, str], ns: str = "ns") -> Obj:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def secret(name: str, data: dict[str, str], ns: str = "ns") -> Obj:
    enc = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"kind": "Secret", "metadata": {"name": name, "namespace": ns}, "data": enc}


def svc(name: str, ip: str, ports: list[Obj], ns: str = "ns") -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": ports}}


POD: Obj = {
    "metadata": {
        "name": "web",
        "namespace": "ns",
        "uid": "u-1",
        "labels": {"app": "web", "tier": 'a"b'},
        "annotations": {"note": "x"},
    },
    "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": []},
    "status": {"podIP": "10.42.0.5", "podIPs": [{"ip": "10.42.0.5"}, {"ip": "fd00::5"}]},
}


async def run(container: Obj, getter: Getter, **kw: Any) -> list[tuple[str, str]]:
    return await build_env(
        pod=kw.pop("pod", POD), container=container, client=None, node_ip="192.168.1.2",
        cache=getter, **kw,
    )  # fmt: skip


def test_expansion_rules() -> None:
    env = {"A": "x", "B": "y"}
    assert expand("$(A)-$(B)", env) == "x-y"
    assert expand("$$(A) $$ $", env) == "$(A) $ $"
    assert expand("$(MISSING)/$()", env) == "$(MISSING)/$()"
    assert expand("$(A", env) == "$(A" and expand("$x$(A)", env) == "$xx"
    assert expand("$(S)", env, {"S": "svc"}) == "svc"


async def test_values_envfrom_and_order() -> None:
    g = Getter([
        cm("cfg", {"K1": "v1", "bad key": "no", "1X": "no", "SHARED": "from-cm"}),
        secret("sec", {"PASS": "p@ss"}),
    ])  # fmt: skip
    c = {
        "name": "c",
        "envFrom": [
            {"configMapRef": {"name": "cfg"}},
            {"secretRef": {"name": "sec"}, "prefix": "S_"},
            {"configMapRef": {"name": "absent", "optional": True}},
        ],
        "env": [
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$(A)-$(K1)-$(S_PASS)-$(LATER)-$$(A)"},
            {"name": "SHARED", "value": "from-env"},
            {"name": "EMPTY"},
            {"name": "LATER", "value": "l"},
        ],
    }
    skipped: list[str] = []
    env = await run(c, g, skipped=skipped, services=[])
    d = dict(env)
    assert d["B"] == "a-v1-p@ss-$(LATER)-$(A)"
    assert d["SHARED"] == "from-env" and d["EMPTY"] == "" and d["S_PASS"] == "p@ss"
    assert "bad key" not in d and "1X" not in d and sorted(skipped) == ["1X", "bad key"]
    names = [k for k, _ in env]
    assert names.index("K1") < names.index("A") < names.index("B") < names.index("LATER")


async def test_value_from_refs_and_errors() -> None:
    g = Getter([cm("cfg", {"k": "v"}), secret("sec", {"s": "secret!"})])
    c = {"name": "c", "env": [
        {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
        {"name": "SEC", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "s"}}},
        {"name": "OPT1", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "no", "optional": True}}},
        {"name": "OPT2", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "s", "optional": True}}},
    ]}  # fmt: skip
    d = dict(await run(c, g, services=[]))
    assert d["CM"] == "v" and d["SEC"] == "secret!" and "OPT1" not in d and "OPT2" not in d

    cases = [
        ({"configMapKeyRef": {"name": "nope", "key": "k"}}, 'configmap "nope" not found'),
        ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
        (
            {"configMapKeyRef": {"name": "cfg", "key": "x"}},
            "couldn't find key x in ConfigMap ns/cfg",
        ),
        ({"secretKeyRef": {"name": "sec", "key": "x"}}, "couldn't find key x in Secret ns/sec"),
        ({"fieldRef": {"fieldPath": "spec.bogus"}}, "unsupported fieldPath: spec.bogus"),
    ]
    for vf, message in cases:
        with pytest.raises(EnvError) as ei:
            await run({"name": "c", "env": [{"name": "X", "valueFrom": vf}]}, g, services=[])
        assert (ei.value.reason, ei.value.message) == ("CreateContainerConfigError", message)
    with pytest.raises(EnvError, match='configmap "gone" not found'):
        await run({"name": "c", "envFrom": [{"configMapRef": {"name": "gone"}}]}, g, services=[])


def test_field_refs() -> None:
    f = lambda path: field_value(POD, path, node_ip="192.168.1.2")  # noqa: E731
    assert [f("metadata.name"), f("metadata.namespace"), f("metadata.uid")] == ["web", "ns", "u-1"]
    assert f("metadata.labels['app']") == "web" and f('metadata.annotations["note"]') == "x"
    assert f("metadata.labels['missing']") == ""
    assert f("spec.nodeName") == "n1" and f("spec.serviceAccountName") == "sa"
    assert f("status.hostIP") == "192.168.1.2" and f("status.hostIPs") == "192.168.1.2"
    assert f("status.podIP") == "10.42.0.5" and f("status.podIPs") == "10.42.0.5,fd00::5"
    assert f("metadata.labels") == 'app="web"\ntier="a\\"b"'
    assert format_map({"b": "1", "a": "x\ny"}) == 'a="x\\ny"\nb="1"'


def test_resource_field_refs() -> None:
    c = {"resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "250m", "memory": "1Mi"}}}
    alloc = {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "1000"}

    def rv(res: str, divisor: str | None = None) -> str:
        ref: Obj = {"resource": res}
        if divisor:
            ref["divisor"] = divisor
        return resource_value(c, ref, allocatable=alloc)

    assert rv("limits.memory", "1Mi") == "64" and rv("limits.memory") == str(64 << 20)
    assert rv("requests.cpu", "1m") == "250" and rv("requests.cpu") == "1"  # rounded up
    assert rv("limits.cpu") == "2" and rv("limits.cpu", "1m") == "2000"  # node allocatable
    assert rv("limits.ephemeral-storage") == "1000" and rv("requests.ephemeral-storage") == "0"
    assert rv("requests.memory", "1Ki") == "1024"
    with pytest.raises(EnvError, match="unsupported container resource : limits.nvidia"):
        rv("limits.nvidia")


async def test_resource_field_ref_of_other_container() -> None:
    pod = {**POD, "spec": {**POD["spec"], "containers": [
        {"name": "a"}, {"name": "b", "resources": {"limits": {"memory": "2Mi"}}}]}}  # fmt: skip
    c: Obj = {"name": "a", "env": [{"name": "M", "valueFrom": {"resourceFieldRef": {
        "containerName": "b", "resource": "limits.memory", "divisor": "1Mi"}}}]}  # fmt: skip
    assert dict(await run(c, Getter([]), pod=pod, services=[]))["M"] == "2"
    c["env"][0]["valueFrom"]["resourceFieldRef"]["containerName"] = "zzz"
    with pytest.raises(EnvError, match="cannot find container zzz in pod web"):
        await run(c, Getter([]), pod=pod, services=[])


def test_service_env_vars() -> None:
    s = svc("my-svc", "10.43.0.7", [
        {"name": "http", "port": 80, "protocol": "TCP"}, {"name": "dns-udp", "port": 53, "protocol": "UDP"}])  # fmt: skip
    env = service_env(
        [s, svc("headless", "None", [{"port": 1}]), svc("v6", "fd00::1", [{"port": 8}])]
    )
    assert env["MY_SVC_SERVICE_HOST"] == "10.43.0.7" and env["MY_SVC_SERVICE_PORT"] == "80"
    assert env["MY_SVC_SERVICE_PORT_HTTP"] == "80" and env["MY_SVC_SERVICE_PORT_DNS_UDP"] == "53"
    assert env["MY_SVC_PORT"] == "tcp://10.43.0.7:80"
    assert env["MY_SVC_PORT_53_UDP"] == "udp://10.43.0.7:53"
    assert env["MY_SVC_PORT_53_UDP_PROTO"] == "udp" and env["MY_SVC_PORT_53_UDP_PORT"] == "53"
    assert env["MY_SVC_PORT_53_UDP_ADDR"] == "10.43.0.7"
    assert not any(k.startswith("HEADLESS") for k in env)
    assert env["V6_PORT"] == "tcp://[fd00::1]:8"


async def test_service_links_toggle_and_master_service() -> None:
    kube = svc("kubernetes", "10.43.0.1", [{"name": "https", "port": 443}], ns="default")
    local = [svc("db", "10.43.0.9", [{"port": 5432}])]
    c = {"name": "c", "env": [{"name": "URL", "value": "$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)"},
                              {"name": "DB_SERVICE_PORT", "value": "mine"}]}  # fmt: skip
    env = await run(c, Getter([]), services=local, kubernetes_service=kube)
    d = dict(env)
    assert d["URL"] == "10.43.0.9:5432" and d["DB_SERVICE_PORT"] == "mine"
    assert d["KUBERNETES_SERVICE_HOST"] == "10.43.0.1" and d["KUBERNETES_SERVICE_PORT"] == "443"
    assert [k for k, _ in env].count("DB_SERVICE_PORT") == 1
    assert [k for k, _ in env][:2] == ["URL", "DB_SERVICE_PORT"]  # container vars first
    off = {**POD, "spec": {**POD["spec"], "enableServiceLinks": False}}
    d = dict(await run(c, Getter([]), pod=off, services=local, kubernetes_service=kube))
    assert "DB_SERVICE_HOST" not in d and d["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
    assert d["URL"] == "$(DB_SERVICE_HOST):$(DB_SERVICE_PORT)"


async def test_client_getter_caches_and_lists_services(env: Any) -> None:
    client = env.client
    await client.create(
        CONFIGMAPS, {"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}}
    )
    await client.create(SERVICES, {"metadata": {"name": "kubernetes", "namespace": "default"},
                                   "spec": {"ports": [{"port": 443}], "clusterIP": "10.43.0.1"}})  # fmt: skip
    g = ClientGetter(client, ttl=3600)
    first = await g.get("ConfigMap", "default", "c")
    assert first is not None and first["data"] == {"a": "1"}
    assert await g.get("ConfigMap", "default", "missing") is None
    await client.patch(CONFIGMAPS, "c", {"data": {"a": "2"}}, namespace="default")
    cached = await g.get("ConfigMap", "default", "c")
    assert cached is not None and cached["data"] == {"a": "1"}  # within the TTL
    g.forget("ConfigMap", "default", "c")
    fresh = await g.get("ConfigMap", "default", "c")
    assert fresh is not None and fresh["data"] == {"a": "2"}
    # build_env reads the services itself through a ClientGetter
    pod = {**POD, "metadata": {**POD["metadata"], "namespace": "other"}}
    d = dict(await build_env(pod=pod, container={"name": "c"}, client=client, node_ip="", cache=g))
    assert (
        d["KUBERNETES_SERVICE_HOST"] == "10.43.0.1"
        and d["KUBERNETES_PORT"] == "tcp://10.43.0.1:443"
    )
