"""A container's environment, as upstream's kubelet builds it (``makeEnvironmentVariables``).

* Service links: ``<SVC>_SERVICE_HOST``/``_SERVICE_PORT[_<NAME>]`` and the Docker-style
  ``<SVC>_PORT…`` variables for every service with a cluster IP in the pod's namespace
  (when ``enableServiceLinks``, the default), plus the ``kubernetes`` service of
  ``default`` always.
* ``envFrom`` first (ConfigMaps/Secrets with an optional prefix; keys that are not valid
  variable names are skipped and reported in ``skipped``), then ``env`` in order, each
  ``value`` expanded with ``$(VAR)`` against the variables defined so far and the service
  variables (``$$`` escapes; unknown references stay as written).  ``valueFrom`` reads
  ConfigMap/Secret keys (``optional`` honoured), ``fieldRef`` and ``resourceFieldRef``
  (limits default to the node's allocatable).
* The result: the container's variables, then the service variables it did not define.

A missing required source raises ``EnvError`` with upstream's message, which the kubelet
reports as ``CreateContainerConfigError``.
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
CONFIG_ERROR = "CreateContainerConfigError"
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SUBSCRIPT = re.compile(r"""^metadata\.(labels|annotations)\[(?:'(.*)'|"(.*)")\]$""")
MASTER_SERVICE = ("default", "kubernetes")


class EnvError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ObjectGetter(Protocol):
    """Reads ConfigMaps, Secrets and Services (``kind`` is the Kind); None when absent."""

    async def get(self, kind: str, namespace: str, name: str) -> Obj | None: ...


class ClientGetter:
    """ConfigMaps/Secrets/Services through the client, cached (also absence) for ``ttl``."""

    RESOURCES = {"ConfigMap": CONFIGMAPS, "Secret": SECRETS, "Service": SERVICES}

    def __init__(self, client: Client, ttl: float = 2.0) -> None:
        self.client = client
        self.ttl = ttl
        self._cache: dict[tuple[str, str, str], tuple[float, Obj | None]] = {}
        self._services: dict[str, tuple[float, list[Obj]]] = {}

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
        if len(self._cache) > 4096:
            self._cache = {k: v for k, v in self._cache.items() if now - v[0] < self.ttl}
        return obj

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._cache.pop((kind, namespace, name), None)

    async def list_services(self, namespace: str) -> list[Obj]:
        hit = self._services.get(namespace)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            items = list((await self.client.list(SERVICES, namespace=namespace)).items)
        except Exception:  # noqa: BLE001 - service links are best effort
            items = []
        self._services[namespace] = (now, items)
        return items


def expand(text: str, env: dict[str, str], *extra: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion (third_party/forked/golang/expansion)."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end == -1:
                out.append("$(")
                i += 2
                continue
            name = text[i + 2 : end]
            out.append(_lookup(name, env, extra))
            i = end + 1
        else:
            out.append("$" + nxt)
            i += 2
    return "".join(out)


def _lookup(name: str, env: dict[str, str], extra: tuple[dict[str, str], ...]) -> str:
    for src in (env, *extra):
        if name in src:
            return src[name]
    return f"$({name})"


def object_data(obj: Obj, *, secret: bool) -> dict[str, bytes]:
    """A ConfigMap's ``data`` + ``binaryData`` or a Secret's decoded ``data``."""
    out: dict[str, bytes] = {}
    if secret:
        for k, v in (obj.get("data") or {}).items():
            out[k] = base64.b64decode(v or "")
        for k, v in (obj.get("stringData") or {}).items():
            out[k] = str(v).encode()
    else:
        for k, v in (obj.get("binaryData") or {}).items():
            out[k] = base64.b64decode(v or "")
        out.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
    return out


def _text(data: dict[str, bytes]) -> dict[str, str]:
    return {k: v.decode(errors="replace") for k, v in data.items()}


def format_map(items: dict[str, Any]) -> str:
    """``fieldpath.FormatMap``: sorted ``key="value"`` lines (Go ``%q`` quoting)."""
    return "\n".join(f"{k}={_go_quote(str(items[k]))}" for k in sorted(items))


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x80
                else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
            )
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def field_value(pod: Obj, path: str, *, node_ip: str) -> str:
    """A ``fieldRef`` value (``podFieldSelectorRuntimeValue`` + ``ExtractFieldPathAsString``)."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = _SUBSCRIPT.match(path)
    if m:
        key = m.group(2) if m.group(2) is not None else m.group(3)
        return str((meta.get(m.group(1)) or {}).get(key, ""))
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".")[1]) or {})
    host_ips = [i.get("ip", "") for i in status.get("hostIPs") or []] or (
        [node_ip] if node_ip else []
    )
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.hostIP": status.get("hostIP") or node_ip,
        "status.hostIPs": ",".join(host_ips),
        "status.podIP": status.get("podIP", ""),
        "status.podIPs": ",".join(i.get("ip", "") for i in status.get("podIPs") or []),
    }
    if path not in simple:
        raise EnvError(CONFIG_ERROR, f"unsupported fieldPath: {path}")
    return str(simple[path] or "")


CPU_RESOURCES = ("limits.cpu", "requests.cpu")
BYTE_RESOURCES = (
    "limits.memory",
    "requests.memory",
    "limits.ephemeral-storage",
    "requests.ephemeral-storage",
)


def resource_value(container: Obj, ref: Obj, *, allocatable: dict[str, str]) -> str:
    """A ``resourceFieldRef`` value (``ExtractContainerResourceValue`` after
    ``MergeContainerResourceLimits``: unset limits are the node's allocatable)."""
    res = str(ref.get("resource", ""))
    kind, _, name = res.partition(".")
    is_huge = name.startswith("hugepages-")
    if res not in CPU_RESOURCES + BYTE_RESOURCES and not is_huge:
        raise EnvError(CONFIG_ERROR, f"unsupported container resource : {res}")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if kind == "limits" and (value is None or quantity.parse(value).value == 0):
        value = allocatable.get(name)
    divisor = ref.get("divisor") or "1"
    if quantity.parse(divisor).value == 0:
        divisor = "1"
    if res in CPU_RESOURCES:
        num = math.ceil(quantity.parse(value or "0").value * 1000)
        den = math.ceil(quantity.parse(divisor).value * 1000)
    else:
        num = math.ceil(quantity.parse(value or "0").value)
        den = math.ceil(quantity.parse(divisor).value)
    return str(math.ceil(num / den)) if den else "0"


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _join_host_port(ip: str, port: Any) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def service_env(services: list[Obj]) -> dict[str, str]:
    """``envvars.FromServices`` for services with a cluster IP."""
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        prefix = _env_name(svc["metadata"]["name"])
        out[f"{prefix}_SERVICE_HOST"] = ip
        out[f"{prefix}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                out[f"{prefix}_SERVICE_PORT_{_env_name(p['name'])}"] = str(p.get("port"))
        for i, p in enumerate(ports):
            proto = str(p.get("protocol") or "TCP")
            url = f"{proto.lower()}://{_join_host_port(ip, p.get('port'))}"
            if i == 0:
                out[f"{prefix}_PORT"] = url
            port_prefix = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
            out[port_prefix] = url
            out[f"{port_prefix}_PROTO"] = proto.lower()
            out[f"{port_prefix}_PORT"] = str(p.get("port"))
            out[f"{port_prefix}_ADDR"] = ip
    return out


def select_services(
    *, namespace: str, enable_links: bool, services: list[Obj], master: Obj | None
) -> list[Obj]:
    """``getServiceEnvVarMap``: the namespace's services when links are enabled, and the
    ``kubernetes`` service of ``default`` always (the namespace's own one of that name wins)."""
    chosen: dict[str, Obj] = {}
    if master is not None:
        chosen[master["metadata"]["name"]] = master
    if enable_links:
        for svc in services:
            if (svc.get("metadata") or {}).get("namespace", namespace) == namespace:
                chosen[svc["metadata"]["name"]] = svc
    return list(chosen.values())


async def _source(
    cache: ObjectGetter, *, kind: str, namespace: str, name: str, optional: bool
) -> dict[str, str] | None:
    obj = await cache.get(kind, namespace, name)
    if obj is None:
        if optional:
            return None
        raise EnvError(CONFIG_ERROR, f'{kind.lower()} "{name}" not found')
    if kind == "Secret":
        return _text(object_data(obj, secret=True))
    return {k: str(v) for k, v in (obj.get("data") or {}).items()}  # binaryData is not env


async def _env_from(
    container: Obj, *, namespace: str, cache: ObjectGetter, skipped: list[str] | None
) -> dict[str, str]:
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix") or ""
        secret = "secretRef" in src
        if not secret and "configMapRef" not in src:
            continue
        ref = src.get("secretRef" if secret else "configMapRef") or {}
        data = await _source(
            cache,
            kind="Secret" if secret else "ConfigMap",
            namespace=namespace,
            name=ref.get("name", ""),
            optional=bool(ref.get("optional")),
        )
        for k, v in (data or {}).items():
            if _ENV_NAME.match(prefix + k):
                env[prefix + k] = v
            elif skipped is not None:
                skipped.append(prefix + k)
    return env


async def _value_from(
    vf: Obj,
    *,
    pod: Obj,
    container: Obj,
    node_ip: str,
    cache: ObjectGetter,
    allocatable: dict[str, str],
) -> str | None:
    ns = (pod.get("metadata") or {}).get("namespace", "default")
    if "configMapKeyRef" in vf or "secretKeyRef" in vf:
        secret = "secretKeyRef" in vf
        ref = vf.get("secretKeyRef" if secret else "configMapKeyRef") or {}
        kind = "Secret" if secret else "ConfigMap"
        optional = bool(ref.get("optional"))
        name = ref.get("name", "")
        data = await _source(cache, kind=kind, namespace=ns, name=name, optional=optional)
        if data is None:
            return None
        key = ref.get("key", "")
        if key not in data:
            if optional:
                return None
            raise EnvError(CONFIG_ERROR, f"couldn't find key {key} in {kind} {ns}/{name}")
        return data[key]
    if "fieldRef" in vf:
        return field_value(pod, (vf["fieldRef"] or {}).get("fieldPath", ""), node_ip=node_ip)
    if "resourceFieldRef" in vf:
        ref = vf["resourceFieldRef"] or {}
        target = container
        if ref.get("containerName") and ref["containerName"] != container.get("name"):
            target = find_container(pod, ref["containerName"])
        return resource_value(target, ref, allocatable=allocatable)
    return ""


def find_container(pod: Obj, name: str) -> Obj:
    spec = pod.get("spec") or {}
    for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
        if c.get("name") == name:
            return dict(c)
    pod_name = (pod.get("metadata") or {}).get("name", "")
    raise EnvError(CONFIG_ERROR, f"cannot find container {name} in pod {pod_name}")


async def build_env(
    *,
    pod: Obj,
    container: Obj,
    client: Client | None,
    node_ip: str,
    cache: ObjectGetter,
    allocatable: dict[str, str] | None = None,
    services: list[Obj] | None = None,
    kubernetes_service: Obj | None = None,
    skipped: list[str] | None = None,
) -> list[tuple[str, str]]:
    """The container's environment.  ``services`` (the pod namespace's Services) and
    ``kubernetes_service`` (``default/kubernetes``) are read through ``cache`` when not
    given and ``cache`` has ``list_services`` (as ``ClientGetter``).  Invalid ``envFrom``
    keys are appended to ``skipped`` (for upstream's InvalidEnvironmentVariableNames
    event).  ``client`` is unused (kept for the contract)."""
    del client
    meta = pod.get("metadata") or {}
    ns = meta.get("namespace", "default")
    spec = pod.get("spec") or {}
    enable_links = spec.get("enableServiceLinks") is not False
    lister = getattr(cache, "list_services", None)
    if services is None and lister is not None:
        services = await lister(ns) if enable_links else []
        if kubernetes_service is None:
            defaults = services if ns == MASTER_SERVICE[0] else await lister(MASTER_SERVICE[0])
            kubernetes_service = next(
                (s for s in defaults if s["metadata"]["name"] == MASTER_SERVICE[1]), None
            )
    svc_env = service_env(
        select_services(
            namespace=ns,
            enable_links=enable_links,
            services=services or [],
            master=kubernetes_service,
        )
    )
    env = await _env_from(container, namespace=ns, cache=cache, skipped=skipped)
    for item in container.get("env") or []:
        name = item["name"]
        value = str(item.get("value") or "")
        if value:
            env[name] = expand(value, env, svc_env)
        elif item.get("valueFrom"):
            got = await _value_from(
                item["valueFrom"],
                pod=pod,
                container=container,
                node_ip=node_ip,
                cache=cache,
                allocatable=allocatable or {},
            )
            if got is None:
                continue
            env[name] = got
        else:
            env[name] = ""
    out = list(env.items())
    out.extend((k, v) for k, v in svc_env.items() if k not in env)
    return out
