"""A container's environment, as upstream's kubelet builds it.

Order: service links (``<SVC>_SERVICE_HOST`` …, when ``enableServiceLinks``), then
``envFrom`` sources (with prefix; keys that are not valid names are skipped), then
``env`` entries, each ``value`` expanded with ``$(VAR)`` against what came before
(``$$`` escapes; unknown references stay as written).  ``valueFrom`` reads ConfigMaps
and Secrets (``optional`` honoured), ``fieldRef`` and ``resourceFieldRef`` (limits
default to the node's allocatable).  A missing required source raises ``EnvError``,
which the kubelet reports as ``CreateContainerConfigError`` with upstream's message.
"""

from __future__ import annotations

import base64
import math
import re
import time
from typing import Any, Protocol

from k3py.apimachinery import quantity
from k3py.client import Client, NotFound
from k3py.client.resources import CONFIGMAPS, SECRETS, SERVICES

Obj = dict[str, Any]
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class EnvError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ObjectGetter(Protocol):
    async def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...


class ClientGetter:
    """ConfigMaps/Secrets/Services through the client, cached for a few seconds."""

    RESOURCES = {"ConfigMap": CONFIGMAPS, "Secret": SECRETS, "Service": SERVICES}

    def __init__(self, client: Client, ttl: float = 2.0) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[tuple[str, str, str], tuple[float, Obj | None]] = {}

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        key = (kind, namespace, name)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            obj: Obj | None = await self.client.get(self.RESOURCES[kind], name, namespace=namespace)
        except NotFound:
            obj = None
        self._cache[key] = (now, obj)
        return obj

    async def list_services(self, namespace: str) -> list[Obj]:
        try:
            return list((await self.client.list(SERVICES, namespace=namespace)).items)
        except Exception:  # noqa: BLE001 - service links are best effort
            return []


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    if name in env:
                        out.append(env[name])
                    else:
                        out.append(text[i:end + 1])
                    i = end + 1
                    continue
        out.append(ch)
        i += 1
    return "".join(out)


def _data(obj: Obj, *, secret: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    if secret:
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v).decode(errors="replace")
        for k, v in (obj.get("stringData") or {}).items():
            out[k] = str(v)
    else:
        out.update({k: str(v) for k, v in (obj.get("data") or {}).items()})
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = base64.b64decode(v).decode(errors="replace")
    return out


def field_value(pod: Obj, path: str, *, node_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = re.match(r"^metadata\.(labels|annotations)\['(.*)'\]$", path) or re.match(
        r'^metadata\.(labels|annotations)\["(.*)"\]$', path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP") or node_ip,
        "status.hostIPs": ",".join(i.get("ip", "") for i in status.get("hostIPs") or []) or node_ip,
        "status.podIP": status.get("podIP", ""),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise EnvError("CreateContainerConfigError", f"unsupported fieldRef path {path!r}")
    return str(simple[path])


def resource_value(container: Obj, ref: Obj, *, allocatable: dict[str, str]) -> str:
    res = ref.get("resource", "")
    kind, _, name = res.partition(".")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(name)
    if value is None and kind == "limits":
        value = allocatable.get(name)
    if value is None:
        value = "0"
    divisor = quantity.parse(ref.get("divisor") or "1").value or 1
    amount = quantity.parse(value).value / divisor
    return str(int(math.ceil(amount)))


def _service_links(services: list[Obj]) -> dict[str, str]:
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        name = svc["metadata"]["name"].upper().replace("-", "_")
        ports = spec.get("ports") or []
        if not ports:
            continue
        first = ports[0]
        out[f"{name}_SERVICE_HOST"] = ip
        out[f"{name}_SERVICE_PORT"] = str(first.get("port"))
        for p in ports:
            if p.get("name"):
                out[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p.get("port"))
        proto = str(first.get("protocol") or "TCP").lower()
        out[f"{name}_PORT"] = f"{proto}://{ip}:{first.get('port')}"
        for p in ports:
            pp = str(p.get("protocol") or "TCP")
            prefix = f"{name}_PORT_{p.get('port')}_{pp}"
            out[prefix] = f"{pp.lower()}://{ip}:{p.get('port')}"
            out[f"{prefix}_PROTO"] = pp.lower()
            out[f"{prefix}_PORT"] = str(p.get("port"))
            out[f"{prefix}_ADDR"] = ip
    return out


async def build_env(*, pod: Obj, container: Obj, client: Client | None, node_ip: str,
                    cache: ObjectGetter, allocatable: dict[str, str] | None = None,
                    services: list[Obj] | None = None, kubernetes_service: Obj | None = None) -> list[tuple[str, str]]:
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace", "default")
    spec = pod.get("spec") or {}
    env: dict[str, str] = {}
    if spec.get("enableServiceLinks", True) and services:
        env.update(_service_links(services))
    if kubernetes_service is not None:
        env.update({k.replace("KUBERNETES_", "KUBERNETES_", 1): v
                    for k, v in _service_links([kubernetes_service]).items()})
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        if "configMapRef" in src or "secretRef" in src:
            secret = "secretRef" in src
            ref = src.get("secretRef" if secret else "configMapRef") or {}
            kind = "Secret" if secret else "ConfigMap"
            obj = await cache.get(kind, ns, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError("CreateContainerConfigError", f'{kind.lower()} "{ref.get("name", "")}" not found')
            for k, v in _data(obj, secret=secret).items():
                if _ENV_NAME.match(prefix + k):
                    env[prefix + k] = v
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = expand(str(item.get("value") or ""), env)
            continue
        vf = item["valueFrom"] or {}
        if "configMapKeyRef" in vf or "secretKeyRef" in vf:
            secret = "secretKeyRef" in vf
            ref = vf.get("secretKeyRef" if secret else "configMapKeyRef") or {}
            kind = "Secret" if secret else "ConfigMap"
            obj = await cache.get(kind, ns, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise EnvError("CreateContainerConfigError", f'{kind.lower()} "{ref.get("name", "")}" not found')
            data = _data(obj, secret=secret)
            key = ref.get("key", "")
            if key not in data:
                if ref.get("optional"):
                    continue
                raise EnvError("CreateContainerConfigError",
                               f"couldn't find key {key} in {kind} {ns}/{ref.get('name', '')}")
            env[name] = data[key]
        elif "fieldRef" in vf:
            env[name] = field_value(pod, (vf["fieldRef"] or {}).get("fieldPath", ""), node_ip=node_ip)
        elif "resourceFieldRef" in vf:
            ref = vf["resourceFieldRef"] or {}
            target = container
            if ref.get("containerName"):
                for c in spec.get("containers") or []:
                    if c.get("name") == ref["containerName"]:
                        target = c
            env[name] = resource_value(target, ref, allocatable=allocatable or {})
    return list(env.items())
