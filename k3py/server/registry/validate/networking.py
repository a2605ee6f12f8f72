"""networking.k8s.io/v1: Ingress, IngressClass, NetworkPolicy."""

from __future__ import annotations

from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import formats
from .access import dicts, get_int, get_list, get_map, get_str, has
from .field import Path, forbidden, go_slice, invalid, not_supported, required, too_long
from .meta import immutable_field, validate_label_selector

SPEC = Path("spec")
PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
BAD_SEQUENCES = ["//", "/./", "/../", "%2f", "%2F"]
BAD_SUFFIXES = ["/..", "/."]


def _host(host: str, path: Path) -> list[Cause]:
    errs: list[Cause] = []
    if formats.parse_ip(host) is not None:
        errs.append(invalid(path, host, "must be a DNS name, not an IP address"))
    if "*" in host:
        return errs + [invalid(path, host, m) for m in formats.check_wildcard_subdomain(host)]
    return errs + [invalid(path, host, m) for m in names.check_dns1123_subdomain(host)]


def _typed_ref(ref: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("name", "kind"):
        value = get_str(ref, key)
        if not value:
            errs.append(required(path.child(key)))
        else:
            errs += [
                invalid(path.child(key), value, m) for m in formats.check_path_segment_name(value)
            ]
    group = get_str(ref, "apiGroup")
    if has(ref, "apiGroup") and group:
        errs += [
            invalid(path.child("apiGroup"), group, m) for m in names.check_dns1123_subdomain(group)
        ]
    return errs


def backend(value: dict[str, Any], path: Path) -> list[Cause]:
    has_resource, has_service = (
        isinstance(value.get("resource"), dict),
        isinstance(value.get("service"), dict),
    )
    if has_resource and has_service:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if has_resource:
        return _typed_ref(value["resource"], path.child("resource"))
    if not has_service:
        return [invalid(path, "", "resource or service backend is required")]
    svc = value["service"]
    errs: list[Cause] = []
    name = get_str(svc, "name")
    if not name:
        errs.append(required(path.child("service", "name")))
    else:
        errs += [
            invalid(path.child("service", "name"), name, m) for m in names.check_dns1035_label(name)
        ]
    port = get_map(svc, "port")
    port_name, number = get_str(port, "name"), get_int(port, "number")
    if port_name and number:
        errs.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs += [
            invalid(path.child("service", "port", "name"), port_name, m)
            for m in formats.check_port_name(port_name)
        ]
    elif number:
        errs += [
            invalid(path.child("service", "port", "number"), number, m)
            for m in formats.check_port_num(number)
        ]
    else:
        errs.append(required(path, "port name or number is required"))
    return errs


def _http_path(item: dict[str, Any], path: Path) -> list[Cause]:
    if not has(item, "pathType"):
        return [required(path.child("pathType"), "pathType must be specified")]
    kind, value = get_str(item, "pathType"), get_str(item, "path")
    errs: list[Cause] = []
    if kind in ("Exact", "Prefix"):
        if not value.startswith("/"):
            errs.append(invalid(path.child("path"), value, "must be an absolute path"))
        for seq in BAD_SEQUENCES if value else []:
            if seq in value:
                errs.append(invalid(path.child("path"), value, f"must not contain '{seq}'"))
        for suffix in BAD_SUFFIXES if value else []:
            if value.endswith(suffix):
                errs.append(invalid(path.child("path"), value, f"cannot end with '{suffix}'"))
    elif kind == "ImplementationSpecific":
        if value and not value.startswith("/"):
            errs.append(invalid(path.child("path"), value, "must be an absolute path"))
    else:
        errs.append(not_supported(path.child("pathType"), kind, PATH_TYPES))
    return errs + backend(get_map(item, "backend"), path.child("backend"))


def _rules(rules: list[Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for i, rule in enumerate(dicts(rules)):
        host = get_str(rule, "host")
        if host:
            errs += _host(host, path.at(i).child("host"))
        http = rule.get("http")
        if isinstance(http, dict):
            hpath = path.at(i).child("http")
            paths = get_list(http, "paths")
            if not paths:
                errs.append(required(hpath.child("paths")))
            for j, item in enumerate(dicts(paths)):
                errs += _http_path(item, hpath.child("paths").at(j))
    return errs


def _tls(items: list[Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for i, tls in enumerate(dicts(items)):
        for j, host in enumerate(get_list(tls, "hosts")):
            text = host if isinstance(host, str) else ""
            p = path.at(i).child("hosts").at(j)
            checks = (
                formats.check_wildcard_subdomain(text)
                if "*" in text
                else names.check_dns1123_subdomain(text)
            )
            errs += [invalid(p, text, m) for m in checks]
        secret = get_str(tls, "secretName")
        if secret:
            errs += [
                invalid(path.at(i).child("secretName"), secret, m)
                for m in names.check_dns1123_subdomain(secret)
            ]
    return errs


def ingress(obj: dict[str, Any], *, old: dict[str, Any] | None) -> list[Cause]:
    spec = get_map(obj, "spec")
    rules = get_list(spec, "rules")
    errs: list[Cause] = []
    default = spec.get("defaultBackend")
    if not rules and not isinstance(default, dict):
        errs.append(
            invalid(
                SPEC,
                go_slice(None, "[]networking.IngressRule"),
                "either `defaultBackend` or `rules` must be specified",
            )
        )
    if isinstance(default, dict):
        errs += backend(default, SPEC.child("defaultBackend"))
    errs += _rules(rules, SPEC.child("rules"))
    errs += _tls(get_list(spec, "tls"), SPEC.child("tls"))
    if has(spec, "ingressClassName"):
        cls = get_str(spec, "ingressClassName")
        errs += [
            invalid(SPEC.child("ingressClassName"), cls, m)
            for m in names.check_dns1123_subdomain(cls)
        ]
    annotation = get_map(get_map(obj, "metadata"), "annotations").get("kubernetes.io/ingress.class")
    if old is None and annotation is not None and has(spec, "ingressClassName"):
        path = Path("annotations").child("kubernetes.io/ingress.class")
        errs.append(invalid(path, annotation, "can not be set when the class field is also set"))
    return errs


def ingress_class(obj: dict[str, Any], *, old: dict[str, Any] | None) -> list[Cause]:
    spec = get_map(obj, "spec")
    controller = get_str(spec, "controller")
    path = SPEC.child("controller")
    errs: list[Cause] = []
    if len(controller) > 250:
        errs.append(too_long(path, 250))
    if not controller:
        errs.append(required(path))
    else:
        part, msgs = formats.check_domain_prefixed_path(controller)
        errs += [invalid(path, part, m) for m in msgs]
    params = spec.get("parameters")
    if isinstance(params, dict):
        errs += _class_parameters(params, SPEC.child("parameters"))
    if old is not None:
        errs += immutable_field(path, controller, get_str(get_map(old, "spec"), "controller"))
    return errs


def _class_parameters(params: dict[str, Any], path: Path) -> list[Cause]:
    errs = _typed_ref(params, path)
    scope = get_str(params, "scope")
    if has(params, "scope"):
        if scope not in ("Cluster", "Namespace"):
            errs.append(not_supported(path.child("scope"), scope, ["Cluster", "Namespace"]))
        elif scope == "Namespace" and not get_str(params, "namespace"):
            errs.append(
                required(path.child("namespace"), "`parameters.scope` is set to 'Namespace'")
            )
        elif scope == "Cluster" and has(params, "namespace"):
            errs.append(
                forbidden(path.child("namespace"), "`parameters.scope` is set to 'Cluster'")
            )
    return errs


def _np_port(port: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    proto = get_str(port, "protocol")
    if has(port, "protocol") and proto not in ("TCP", "UDP", "SCTP"):
        errs.append(not_supported(path.child("protocol"), proto, ["TCP", "UDP", "SCTP"]))
    value, end = port.get("port"), port.get("endPort")
    if isinstance(value, int):
        errs += [invalid(path.child("port"), value, m) for m in formats.check_port_num(value)]
        if isinstance(end, int):
            if end < value:
                errs.append(
                    invalid(path.child("endPort"), value, "must be greater than or equal to `port`")
                )
            errs += [invalid(path.child("endPort"), end, m) for m in formats.check_port_num(end)]
    elif isinstance(value, str):
        if end is not None:
            errs.append(
                invalid(
                    path.child("endPort"), end, "may not be specified when `port` is non-numeric"
                )
            )
        errs += [invalid(path.child("port"), value, m) for m in formats.check_port_name(value)]
    elif end is not None:
        errs.append(
            invalid(path.child("endPort"), end, "may not be specified when `port` is not specified")
        )
    return errs


def _peer(peer: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    count = 0
    for key in ("podSelector", "namespaceSelector"):
        if isinstance(peer.get(key), dict):
            count += 1
            errs += validate_label_selector(peer[key], path.child(key))
    block = peer.get("ipBlock")
    if isinstance(block, dict):
        count += 1
        errs += _ip_block(block, path.child("ipBlock"))
    if count == 0:
        errs.append(required(path, "must specify a peer"))
    elif count > 1 and isinstance(block, dict):
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def _ip_block(block: dict[str, Any], path: Path) -> list[Cause]:
    cidr = get_str(block, "cidr")
    if not cidr:
        return [required(path.child("cidr"))]
    net = formats.parse_cidr(cidr)
    if net is None:
        return [invalid(path.child("cidr"), cidr, m) for m in formats.check_cidr(cidr)]
    errs: list[Cause] = []
    for i, text in enumerate(get_list(block, "except")):
        text = text if isinstance(text, str) else ""
        sub = formats.parse_cidr(text)
        if sub is None:
            return errs + [
                invalid(path.child("except").at(i), text, m) for m in formats.check_cidr(text)
            ]
        if not _strict_subset(sub, net):
            errs.append(
                invalid(path.child("except").at(i), text, "must be a strict subset of `cidr`")
            )
    return errs


def _strict_subset(sub: Any, net: Any) -> bool:
    return bool(sub.version == net.version and sub.subnet_of(net) and sub.prefixlen > net.prefixlen)


def network_policy(obj: dict[str, Any]) -> list[Cause]:
    spec = get_map(obj, "spec")
    errs = validate_label_selector(get_map(spec, "podSelector"), SPEC.child("podSelector"))
    for rule_key, peer_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(dicts(get_list(spec, rule_key))):
            rpath = SPEC.child(rule_key).at(i)
            for j, port in enumerate(dicts(get_list(rule, "ports"))):
                errs += _np_port(port, rpath.child("ports").at(j))
            for j, peer in enumerate(dicts(get_list(rule, peer_key))):
                errs += _peer(peer, rpath.child(peer_key).at(j))
    types = get_list(spec, "policyTypes")
    if len(types) > 2:
        errs.append(
            invalid(
                SPEC.child("policyTypes"),
                go_slice(types, "[]networking.PolicyType"),
                "may not specify more than two policyTypes",
            )
        )
        return errs
    for i, kind in enumerate(types):
        if kind not in ("Ingress", "Egress"):
            errs.append(not_supported(SPEC.child("policyTypes").at(i), kind, ["Ingress", "Egress"]))
    return errs
