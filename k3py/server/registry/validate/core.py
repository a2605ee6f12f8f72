"""Core kinds other than pods and services: config, namespaces, nodes, quotas, events."""

from __future__ import annotations

import json
from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import formats
from .access import dicts, get_int, get_list, get_map, get_str, has
from .field import (
    ROOT,
    GoValue,
    Path,
    duplicate,
    forbidden,
    go_slice,
    invalid,
    not_supported,
    required,
    too_long,
)
from .meta import as_selector, labels_value, nonnegative, validate_finalizers
from .pod import validate_template
from .resources import (
    check_container_resource_name,
    check_quantity_value,
    check_quota_resource_name,
    check_resource_name,
    parse_field,
    parse_list,
)
from .scheduling import taints

MAX_DATA_SIZE = 1024 * 1024
SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


class Base64Error(ValueError):
    pass


def _decode_map() -> dict[str, int]:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    return {c: i for i, c in enumerate(alphabet)}


_B64 = _decode_map()


def b64_decode(text: str) -> bytes:
    """Go's ``base64.StdEncoding.DecodeString`` (newlines skipped), with its error offsets."""
    out = bytearray()
    si, n = 0, len(text)
    while si < n:
        quantum: list[int] = []
        while len(quantum) < 4:
            if si == n:
                if not quantum:
                    return bytes(out)
                raise Base64Error(f"illegal base64 data at input byte {si - len(quantum)}")
            ch = text[si]
            si += 1
            if ch in _B64:
                quantum.append(_B64[ch])
                continue
            if ch in "\r\n":
                continue
            if ch != "=" or len(quantum) < 2:
                raise Base64Error(f"illegal base64 data at input byte {si - 1}")
            si = _padding(text, si, len(quantum))
            break
        out += _bytes_of(quantum)
        if len(quantum) < 4:
            return bytes(out)
    return bytes(out)


def _padding(text: str, si: int, have: int) -> int:
    """Consume the rest of the padding after the first ``=``; return the new offset."""
    n = len(text)
    if have == 2:
        while si < n and text[si] in "\r\n":
            si += 1
        if si == n:
            raise Base64Error(f"illegal base64 data at input byte {n}")
        if text[si] != "=":
            raise Base64Error(f"illegal base64 data at input byte {si - 1}")
        si += 1
    while si < n and text[si] in "\r\n":
        si += 1
    if si < n:
        raise Base64Error(f"illegal base64 data at input byte {si}")
    return si


def _bytes_of(quantum: list[int]) -> bytes:
    value = 0
    for digit in quantum:
        value = value << 6 | digit
    value <<= 6 * (4 - len(quantum))
    raw = value.to_bytes(3, "big")
    return raw[: len(quantum) - 1]


def _data_keys(data: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for key in data:
        errs += [invalid(path.key(key), key, m) for m in names.check_config_map_key(key)]
    return errs


def _decoded(data: dict[str, Any], path: Path) -> tuple[dict[str, bytes], list[Cause]]:
    out: dict[str, bytes] = {}
    errs: list[Cause] = []
    for key, value in data.items():
        try:
            out[key] = b64_decode(value if isinstance(value, str) else "")
        except Base64Error as err:
            errs.append(invalid(path.key(key), "<secret contents redacted>", str(err)))
    return out, errs


def config_map(obj: dict[str, Any]) -> list[Cause]:
    data, binary = get_map(obj, "data"), get_map(obj, "binaryData")
    errs = _data_keys(data, Path("data"))
    for key in data:
        if key in binary:
            errs.append(
                invalid(Path("data").key(key), key, "duplicate of key present in binaryData")
            )
    errs += _data_keys(binary, Path("binaryData"))
    decoded, derrs = _decoded(binary, Path("binaryData"))
    errs += derrs
    size = sum(len(v.encode()) for v in data.values() if isinstance(v, str))
    size += sum(len(v) for v in decoded.values())
    if size > MAX_DATA_SIZE:
        errs.append(too_long(ROOT, MAX_DATA_SIZE))
    return errs


def _immutable_data(obj: dict[str, Any], old: dict[str, Any], keys: tuple[str, ...]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    msg = "field is immutable when `immutable` is set"
    errs: list[Cause] = []
    if obj.get("immutable") is not True:
        errs.append(forbidden(Path("immutable"), msg))
    for key in keys:
        if (obj.get(key) or {}) != (old.get(key) or {}):
            errs.append(forbidden(Path(key), msg))
    return errs


def config_map_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return _immutable_data(obj, old, ("data", "binaryData"))


def _secret_type(kind: str, obj: dict[str, Any], data: dict[str, bytes]) -> list[Cause]:
    path = Path("data")
    if kind == "kubernetes.io/service-account-token":
        annotations = get_map(get_map(obj, "metadata"), "annotations")
        if not annotations.get("kubernetes.io/service-account.name"):
            return [
                required(
                    Path("metadata").child("annotations").key("kubernetes.io/service-account.name")
                )
            ]
        return []
    if kind == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
        return [required(path.key("username")), required(path.key("password"))]
    if kind == "kubernetes.io/ssh-auth" and not data.get("ssh-privatekey"):
        return [required(path.key("ssh-privatekey"))]
    errs: list[Cause] = []
    for key in SECRET_REQUIRED_KEYS.get(kind, ()):
        if key not in data:
            errs.append(required(path.key(key)))
            if kind != "kubernetes.io/tls":
                return errs
        elif key.startswith(".docker"):
            errs += _json_body(data[key], path.key(key))
    return errs


def _json_body(raw: bytes, path: Path) -> list[Cause]:
    try:
        parsed = json.loads(raw)
    except ValueError as err:
        return [invalid(path, "<secret contents redacted>", str(err))]
    if not isinstance(parsed, dict):
        what = type(parsed).__name__
        msg = f"json: cannot unmarshal {what} into Go value of type map[string]interface {{}}"
        return [invalid(path, "<secret contents redacted>", msg)]
    return []


def secret(obj: dict[str, Any]) -> list[Cause]:
    data = get_map(obj, "data")
    errs = _data_keys(data, Path("data"))
    decoded, derrs = _decoded(data, Path("data"))
    errs += derrs
    if sum(len(v) for v in decoded.values()) > MAX_DATA_SIZE:
        errs.append(too_long(Path("data"), MAX_DATA_SIZE))
    if not derrs:
        errs += _secret_type(get_str(obj, "type"), obj, decoded)
    return errs


def secret_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    if get_str(obj, "type") != get_str(old, "type"):
        errs.append(invalid(Path("type"), get_str(obj, "type"), "field is immutable"))
    return errs + _immutable_data(obj, old, ("data",))


def namespace(obj: dict[str, Any]) -> list[Cause]:
    path = Path("spec").child("finalizers")
    items = get_list(get_map(obj, "spec"), "finalizers")
    errs: list[Cause] = []
    for item in items:
        errs += validate_finalizers([item], path, builtin=False)
        text = item if isinstance(item, str) else ""
        if "/" not in text and text not in ("kubernetes", "orphan", "foregroundDeletion"):
            msg = "name is neither a standard finalizer name nor is it fully qualified"
            errs.append(invalid(path, text, msg))
    return errs


def node(obj: dict[str, Any], *, old: dict[str, Any] | None) -> list[Cause]:
    spec, status = get_map(obj, "spec"), get_map(obj, "status")
    errs = taints(get_list(spec, "taints"), Path("metadata").child("taints"))
    for key in ("capacity", "allocatable"):
        for name, raw in get_map(status, key).items():
            p = Path("status").child(key, name)
            q, perr = parse_field(raw, p)
            errs += perr
            if q is not None:
                errs += check_quantity_value(name, q, p)
    cidrs = get_list(spec, "podCIDRs")
    cpath = Path("spec").child("podCIDRs")
    for i, cidr in enumerate(cidrs):
        text = cidr if isinstance(cidr, str) else ""
        errs += [invalid(cpath.at(i), text, m) for m in formats.check_cidr(text)]
    if len(cidrs) > 1:
        families = {
            net.version for c in cidrs if isinstance(c, str) and (net := formats.parse_cidr(c))
        }
        if len(families) != len(cidrs):
            errs.append(
                invalid(
                    cpath, go_slice(cidrs), "may specify no more than one CIDR for each IP family"
                )
            )
        for i, cidr in enumerate(cidrs):
            if cidr in cidrs[:i]:
                errs.append(duplicate(cpath.at(i), cidr))
    if old is not None:
        errs += _node_update(obj, old)
    return errs


def _node_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    spec, old_spec = get_map(obj, "spec"), get_map(old, "spec")
    errs: list[Cause] = []
    old_cidrs = get_list(old_spec, "podCIDRs")
    if old_cidrs and old_cidrs != get_list(spec, "podCIDRs"):
        msg = 'node updates may not change podCIDR except from "" to valid'
        errs.append(forbidden(Path("spec").child("podCIDRs"), msg))
    old_provider = get_str(old_spec, "providerID")
    if old_provider and old_provider != get_str(spec, "providerID"):
        msg = 'node updates may not change providerID except from "" to valid'
        errs.append(forbidden(Path("spec").child("providerID"), msg))
    if get_str(spec, "externalID") != get_str(old_spec, "externalID"):
        errs.append(forbidden(Path("spec").child("externalID"), "may not be updated"))
    seen: list[Any] = []
    for i, addr in enumerate(get_list(get_map(obj, "status"), "addresses")):
        if addr in seen:
            errs.append(duplicate(Path("status").child("addresses").at(i), addr))
        seen.append(addr)
    return errs


def replication_controller(obj: dict[str, Any]) -> list[Cause]:
    spec = get_map(obj, "spec")
    path = Path("spec")
    errs = nonnegative(path.child("minReadySeconds"), get_int(spec, "minReadySeconds"))
    selector = get_map(spec, "selector")
    if not selector:
        errs.append(required(path.child("selector")))
    errs += nonnegative(path.child("replicas"), get_int(spec, "replicas"))
    template = spec.get("template")
    tpath = path.child("template")
    if not isinstance(template, dict):
        return errs + [required(tpath)]
    labels = get_map(get_map(template, "metadata"), "labels")
    sel = as_selector({"matchLabels": selector})
    if selector and sel is not None and not sel.matches(labels):
        errs.append(
            invalid(
                tpath.child("metadata", "labels"),
                labels_value(labels),
                "`selector` does not match template `labels`",
            )
        )
    errs += validate_template(template, tpath)
    restart = get_str(get_map(template, "spec"), "restartPolicy")
    if restart != "Always":
        errs.append(not_supported(tpath.child("spec", "restartPolicy"), restart, ["Always"]))
    if has(get_map(template, "spec"), "activeDeadlineSeconds"):
        msg = "activeDeadlineSeconds in ReplicationController is not Supported"
        errs.append(forbidden(tpath.child("spec", "activeDeadlineSeconds"), msg))
    return errs


def pod_template(obj: dict[str, Any]) -> list[Cause]:
    return validate_template(get_map(obj, "template"), Path("template"))


def _limit_item(item: dict[str, Any], path: Path) -> list[Cause]:
    kind = get_str(item, "type")
    errs = [invalid(path.child("type"), kind, m) for m in names.check_qualified_name(kind)]
    if not errs and "/" not in kind and kind not in ("Pod", "Container", "PersistentVolumeClaim"):
        errs.append(
            invalid(path.child("type"), kind, "must be a standard limit type or fully qualified")
        )
    check = check_container_resource_name if kind in ("Pod", "Container") else check_resource_name
    lists: dict[str, dict[str, Any]] = {}
    for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
        if kind == "Pod" and key in ("default", "defaultRequest"):
            if get_map(item, key):
                errs.append(forbidden(path.child(key), "may not be specified when `type` is 'Pod'"))
            continue
        parsed, perr = parse_list(get_map(item, key), path.child(key), check)
        errs += perr
        lists[key] = parsed
    if (
        kind == "PersistentVolumeClaim"
        and "storage" not in lists["min"]
        and "storage" not in lists["max"]
    ):
        msg = "either minimum or maximum storage value is required, but neither was provided"
        errs.append(required(path.child("limits"), msg))
    return errs + _limit_bounds(lists, path)


def _limit_bounds(lists: dict[str, dict[str, Any]], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    lo, hi = lists.get("min", {}), lists.get("max", {})
    default, request = lists.get("default", {}), lists.get("defaultRequest", {})
    ratio = lists.get("maxLimitRequestRatio", {})
    names_all: list[str] = []
    for group in (hi, lo, default, request, ratio):
        names_all += [n for n in group if n not in names_all]
    checks = [
        (lo, hi, "min", "min value {a} is greater than max value {b}", lambda a, b: a),
        (
            lo,
            request,
            "defaultRequest",
            "min value {a} is greater than default request value {b}",
            lambda a, b: b,
        ),
        (
            request,
            hi,
            "defaultRequest",
            "default request value {a} is greater than max value {b}",
            lambda a, b: a,
        ),
        (
            request,
            default,
            "defaultRequest",
            "default request value {a} is greater than default limit value {b}",
            lambda a, b: a,
        ),
        (lo, default, "default", "min value {a} is greater than default value {b}", lambda a, b: a),
        (default, hi, "default", "default value {a} is greater than max value {b}", lambda a, b: b),
    ]
    for name in names_all:
        for first, second, where, msg, shown in checks:
            a, b = first.get(name), second.get(name)
            if a is not None and b is not None and a.value > b.value:
                text = msg.format(a=a, b=b)
                errs.append(invalid(path.child(where).key(name), GoValue(str(shown(a, b))), text))
        r = ratio.get(name)
        if r is not None and r.value < 1:
            errs.append(
                invalid(
                    path.child("maxLimitRequestRatio").key(name),
                    GoValue(str(r)),
                    f"ratio {r} is less than 1",
                )
            )
    return errs


def limit_range(obj: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[str] = set()
    path = Path("spec").child("limits")
    for i, item in enumerate(dicts(get_list(get_map(obj, "spec"), "limits"))):
        errs += _limit_item(item, path.at(i))
        kind = get_str(item, "type")
        if kind in seen:
            errs.append(duplicate(path.at(i).child("type"), kind))
        seen.add(kind)
    return errs


QUOTA_SCOPES = [
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "CrossNamespacePodAffinity",
    "VolumeAttributesClass",
]


def resource_quota(obj: dict[str, Any]) -> list[Cause]:
    spec = get_map(obj, "spec")
    path = Path("spec")
    _, errs = parse_list(get_map(spec, "hard"), path.child("hard"), check_quota_resource_name)
    scopes = get_list(spec, "scopes")
    for scope in scopes:
        if scope not in QUOTA_SCOPES:
            errs.append(
                invalid(
                    path.child("scopes"),
                    go_slice(scopes, "[]core.ResourceQuotaScope"),
                    "unsupported scope",
                )
            )
    for a, b in (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")):
        if a in scopes and b in scopes:
            errs.append(
                invalid(
                    path.child("scopes"),
                    go_slice(scopes, "[]core.ResourceQuotaScope"),
                    "conflicting scopes",
                )
            )
    for key in ("hard", "used"):
        _, serrs = parse_list(
            get_map(get_map(obj, "status"), key),
            Path("status").child(key),
            check_quota_resource_name,
        )
        errs += serrs
    return errs


def resource_quota_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    scopes, old_scopes = get_list(spec, "scopes"), get_list(old_spec, "scopes")
    if set(scopes) != set(old_scopes):
        return [
            invalid(
                Path("spec").child("scopes"),
                go_slice(scopes, "[]core.ResourceQuotaScope"),
                "field is immutable",
            )
        ]
    return []


def event_core(obj: dict[str, Any]) -> list[Cause]:
    """``legacyValidateEvent`` for core/v1 Events (no metadata validation upstream)."""
    errs: list[Cause] = []
    ns = get_str(get_map(obj, "metadata"), "namespace")
    involved = get_map(obj, "involvedObject")
    inv_ns = get_str(involved, "namespace")
    ipath = Path("involvedObject").child("namespace")
    if not has(obj, "eventTime"):
        if not inv_ns and ns not in ("", "default") or inv_ns and ns != inv_ns:
            errs.append(invalid(ipath, inv_ns, "does not match event.namespace"))
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            errs.append(invalid(ipath, inv_ns, "does not match event.namespace"))
        errs += _event_reporting(obj, controller_field="reportingComponent", message_key="message")
    errs += [invalid(Path("namespace"), ns, m) for m in names.check_dns1123_subdomain(ns)]
    return errs


def _event_reporting(
    obj: dict[str, Any], *, controller_field: str, message_key: str
) -> list[Cause]:
    errs: list[Cause] = []
    controller = get_str(obj, controller_field)
    if not controller:
        errs.append(required(Path(controller_field)))
    errs += [
        invalid(Path(controller_field), controller, m)
        for m in names.check_qualified_name(controller)
    ]
    for key in ("reportingInstance", "action", "reason"):
        value = get_str(obj, key)
        if not value:
            errs.append(required(Path(key)))
        if len(value) > 128:
            errs.append(invalid(Path(key), "", "can have at most 128 characters"))
    if len(get_str(obj, message_key)) > 1024:
        errs.append(invalid(Path("message"), "", "can have at most 1024 characters"))
    return errs


DEPRECATED_EVENT_FIELDS = {
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "deprecatedSource": "source",
}


def event_v1(obj: dict[str, Any]) -> list[Cause]:
    """events.k8s.io/v1 Events: the legacy rules plus the strict ones for new-style events."""
    ns = get_str(get_map(obj, "metadata"), "namespace")
    errs: list[Cause] = []
    if not get_str(get_map(obj, "regarding"), "namespace") and ns not in ("default", "kube-system"):
        errs.append(
            invalid(Path("involvedObject").child("namespace"), "", "does not match event.namespace")
        )
    errs += _event_reporting(obj, controller_field="reportingController", message_key="note")
    if not has(obj, "eventTime"):
        errs.append(required(Path("eventTime")))
    kind = get_str(obj, "type")
    if kind not in ("Normal", "Warning"):
        errs.append(invalid(Path("type"), "", f"has invalid value: {kind}"))
    for key, internal_name in DEPRECATED_EVENT_FIELDS.items():
        if obj.get(key) not in (None, 0, {}):
            errs.append(invalid(Path(internal_name), "", "needs to be unset"))
    return errs
