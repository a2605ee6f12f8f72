"""Services and Endpoints.

Cluster IPs, node ports and health-check node ports are allocated by the server;
validation only checks what is set (a missing ``healthCheckNodePort`` is left to
the allocator rather than reported as required).
"""

from __future__ import annotations

from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import formats
from .access import dicts, get_int, get_list, get_map, get_opt_int, get_str, has
from .containers import PROTOCOLS, port_num_or_name
from .field import GoValue, Path, duplicate, forbidden, go_slice, invalid, not_supported, required
from .meta import validate_labels

SPEC = Path("spec")
TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
MAX_AFFINITY_SECONDS = 86400
SOURCE_RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"


def is_headless(spec: dict[str, Any]) -> bool:
    ips = get_list(spec, "clusterIPs")
    return len(ips) == 1 and ips[0] == "None"


def externally_accessible(spec: dict[str, Any]) -> bool:
    kind = get_str(spec, "type")
    return kind in ("LoadBalancer", "NodePort") or (
        kind == "ClusterIP" and bool(get_list(spec, "externalIPs"))
    )


def _port(port: dict[str, Any], path: Path, *, require_name: bool, seen: set[str]) -> list[Cause]:
    errs: list[Cause] = []
    name = get_str(port, "name")
    if require_name and not name:
        errs.append(required(path.child("name")))
    elif name:
        errs += [invalid(path.child("name"), name, m) for m in names.check_dns1123_label(name)]
        if name in seen:
            errs.append(duplicate(path.child("name"), name))
        seen.add(name)
    number = get_int(port, "port")
    errs += [invalid(path.child("port"), number, m) for m in formats.check_port_num(number)]
    proto = get_str(port, "protocol")
    if not proto:
        errs.append(required(path.child("protocol")))
    elif proto not in PROTOCOLS:
        errs.append(not_supported(path.child("protocol"), proto, PROTOCOLS))
    errs += port_num_or_name(port.get("targetPort", 0), path.child("targetPort"))
    if has(port, "appProtocol"):
        app = get_str(port, "appProtocol")
        errs += [
            invalid(path.child("appProtocol"), app, m) for m in names.check_qualified_name(app)
        ]
    return errs


def _type_rules(spec: dict[str, Any]) -> list[Cause]:
    kind = get_str(spec, "type")
    errs: list[Cause] = []
    if kind in ("LoadBalancer", "NodePort") and is_headless(spec):
        msg = f"may not be set to 'None' for {kind} services"
        errs.append(invalid(SPEC.child("clusterIPs").at(0), "None", msg))
    if kind == "ExternalName":
        for key in ("clusterIPs", "ipFamilies"):
            if get_list(spec, key):
                errs.append(forbidden(SPEC.child(key), "may not be set for ExternalName services"))
        if has(spec, "ipFamilyPolicy"):
            errs.append(
                forbidden(SPEC.child("ipFamilyPolicy"), "may not be set for ExternalName services")
            )
        cname = get_str(spec, "externalName").removesuffix(".")
        if cname:
            errs += [
                invalid(SPEC.child("externalName"), cname, m)
                for m in names.check_dns1123_subdomain(cname)
            ]
        else:
            errs.append(required(SPEC.child("externalName")))
    return errs


def _affinity(spec: dict[str, Any]) -> list[Cause]:
    affinity = get_str(spec, "sessionAffinity")
    path = SPEC.child("sessionAffinityConfig")
    if not affinity:
        return [required(SPEC.child("sessionAffinity"))]
    if affinity not in ("ClientIP", "None"):
        return [not_supported(SPEC.child("sessionAffinity"), affinity, ["ClientIP", "None"])]
    config = spec.get("sessionAffinityConfig")
    if affinity == "None":
        return (
            [forbidden(path, "must not be set when session affinity is None")]
            if config is not None
            else []
        )
    when = "when session affinity type is ClientIP"
    if not isinstance(config, dict):
        return [required(path, when)]
    client = config.get("clientIP")
    if not isinstance(client, dict):
        return [required(path.child("clientIP"), when)]
    timeout = get_opt_int(client, "timeoutSeconds")
    tpath = path.child("clientIP", "timeoutSeconds")
    if timeout is None:
        return [required(tpath, when)]
    if timeout <= 0 or timeout > MAX_AFFINITY_SECONDS:
        return [
            invalid(tpath, timeout, f"must be greater than 0 and less than {MAX_AFFINITY_SECONDS}")
        ]
    return []


def cluster_ips(spec: dict[str, Any]) -> list[Cause]:
    """``ValidateServiceClusterIPsRelatedFields``."""
    if get_str(spec, "type") == "ExternalName":
        return []
    errs: list[Cause] = []
    ip, ips = (
        get_str(spec, "clusterIP"),
        [i if isinstance(i, str) else "" for i in get_list(spec, "clusterIPs")],
    )
    ips_path = SPEC.child("clusterIPs")
    if ip:
        if not ips:
            errs.append(required(ips_path))
        elif ips[0] != ip:
            errs.append(invalid(ips_path, go_slice(ips), "first value must match `clusterIP`"))
    elif ips:
        errs.append(
            invalid(ips_path, go_slice(ips), "must be empty when `clusterIP` is not specified")
        )
    families = get_list(spec, "ipFamilies")
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            errs.append(not_supported(SPEC.child("ipFamilies").at(i), family, ["IPv4", "IPv6"]))
        if family in families[:i]:
            errs.append(duplicate(SPEC.child("ipFamilies").at(i), family))
    policies = ["PreferDualStack", "RequireDualStack", "SingleStack"]
    if has(spec, "ipFamilyPolicy") and get_str(spec, "ipFamilyPolicy") not in policies:
        errs.append(
            not_supported(SPEC.child("ipFamilyPolicy"), get_str(spec, "ipFamilyPolicy"), policies)
        )
    bad = False
    for i, value in enumerate(ips):
        if i == 0 and value == "None":
            if len(ips) > 1:
                bad = True
                errs.append(
                    invalid(ips_path, go_slice(ips), "'None' must be the first and only value")
                )
            continue
        msgs = formats.check_ip(value)
        bad = bad or bool(msgs)
        errs += [invalid(ips_path.at(i), value, m) for m in msgs]
    if len(ips) > 2:
        errs.append(invalid(ips_path, go_slice(ips), "may only hold up to 2 values"))
    if bad:
        return errs
    parsed = [formats.parse_ip(v) for v in ips if v != "None"]
    if len(ips) > 1 and len({p.version for p in parsed if p is not None}) != len(ips):
        errs.append(
            invalid(ips_path, go_slice(ips), "may specify no more than one IP for each IP family")
        )
    if not is_headless(spec):
        for i, (value, family) in enumerate(zip(ips, families, strict=False)):
            v6 = ":" in value
            if family == "IPv4" and v6 or family == "IPv6" and not v6:
                want = "IPv6" if family == "IPv6" else "IPv4"
                msg = f"expected an {want} value as indicated by `ipFamilies[{i}]`"
                errs.append(invalid(ips_path.at(i), value, msg))
    return errs


def _port_list(spec: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    ports = dicts(get_list(spec, "ports"))
    seen: set[str] = set()
    for i, port in enumerate(ports):
        errs += _port(port, SPEC.child("ports").at(i), require_name=len(ports) > 1, seen=seen)
    return errs


def _port_conflicts(spec: dict[str, Any]) -> list[Cause]:
    """``nodePort`` on ClusterIP services, duplicate node ports and (protocol, port) pairs."""
    errs: list[Cause] = []
    ports = dicts(get_list(spec, "ports"))
    if get_str(spec, "type") == "ClusterIP":
        for i, port in enumerate(ports):
            if get_int(port, "nodePort"):
                path = SPEC.child("ports").at(i).child("nodePort")
                errs.append(forbidden(path, "may not be used when `type` is 'ClusterIP'"))
    node_ports: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        key = (get_str(port, "protocol"), get_int(port, "nodePort"))
        if key[1] and key in node_ports:
            errs.append(duplicate(SPEC.child("ports").at(i).child("nodePort"), key[1]))
        node_ports.add(key)
    pairs: set[tuple[str, int]] = set()
    for i, port in enumerate(ports):
        key = (get_str(port, "protocol"), get_int(port, "port"))
        if key in pairs:
            errs.append(duplicate(SPEC.child("ports").at(i), _service_port_key(*key)))
        pairs.add(key)
    return errs


def _service_port_key(protocol: str, port: int) -> GoValue:
    return GoValue(
        f'core.ServicePort{{Name:"", Protocol:"{protocol}", AppProtocol:(*string)(nil), '
        f'Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}'
    )


def _load_balancer(spec: dict[str, Any], annotations: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    is_lb = get_str(spec, "type") == "LoadBalancer"
    ranges = get_list(spec, "loadBalancerSourceRanges")
    lb_only = "may only be used when `type` is 'LoadBalancer'"
    if ranges:
        path = SPEC.child("LoadBalancerSourceRanges")
        if not is_lb:
            errs.append(forbidden(path, lb_only))
        for i, value in enumerate(ranges):
            text = value.strip() if isinstance(value, str) else ""
            errs += [invalid(path.at(i), text, m) for m in formats.check_cidr(text)]
    elif SOURCE_RANGES in annotations:
        path = Path("metadata").child("annotations").key(SOURCE_RANGES)
        if not is_lb:
            errs.append(forbidden(path, lb_only))
        value = str(annotations[SOURCE_RANGES]).strip()
        for cidr in value.split(",") if value else []:
            errs += [invalid(path, cidr.strip(), m) for m in formats.check_cidr(cidr.strip())]
    if has(spec, "allocateLoadBalancerNodePorts") and not is_lb:
        errs.append(forbidden(SPEC.child("allocateLoadBalancerNodePorts"), lb_only))
    if is_lb and not has(spec, "allocateLoadBalancerNodePorts"):
        errs.append(required(Path("allocateLoadBalancerNodePorts")))
    if has(spec, "loadBalancerClass"):
        cls = get_str(spec, "loadBalancerClass")
        if is_lb:
            errs += [
                invalid(SPEC.child("loadBalancerClass"), cls, m)
                for m in names.check_qualified_name(cls)
            ]
        else:
            errs.append(forbidden(SPEC.child("loadBalancerClass"), lb_only))
    return errs


def _traffic(spec: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    etp = get_str(spec, "externalTrafficPolicy")
    if not externally_accessible(spec):
        if etp:
            errs.append(
                invalid(
                    SPEC.child("externalTrafficPolicy"),
                    etp,
                    "may only be set for externally-accessible services",
                )
            )
    elif not etp:
        errs.append(required(SPEC.child("externalTrafficPolicy")))
    elif etp not in ("Cluster", "Local"):
        errs.append(not_supported(SPEC.child("externalTrafficPolicy"), etp, ["Cluster", "Local"]))
    hc = get_int(spec, "healthCheckNodePort")
    needs_hc = get_str(spec, "type") == "LoadBalancer" and etp == "Local"
    if not needs_hc and hc:
        msg = "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        errs.append(invalid(SPEC.child("healthCheckNodePort"), hc, msg))
    elif needs_hc and hc:
        errs += [
            invalid(SPEC.child("healthCheckNodePort"), hc, m) for m in formats.check_port_num(hc)
        ]
    itp_path = SPEC.child("internalTrafficPolicy")
    if not has(spec, "internalTrafficPolicy"):
        if get_str(spec, "type") in ("NodePort", "LoadBalancer", "ClusterIP"):
            errs.append(required(itp_path))
    elif get_str(spec, "internalTrafficPolicy") not in ("Cluster", "Local"):
        errs.append(
            not_supported(itp_path, get_str(spec, "internalTrafficPolicy"), ["Cluster", "Local"])
        )
    if has(spec, "trafficDistribution") and get_str(spec, "trafficDistribution") != "PreferClose":
        errs.append(
            not_supported(
                SPEC.child("trafficDistribution"),
                get_str(spec, "trafficDistribution"),
                ["PreferClose"],
            )
        )
    return errs


def service(obj: dict[str, Any]) -> list[Cause]:
    """``ValidateService`` (without object metadata)."""
    spec = get_map(obj, "spec")
    annotations = get_map(get_map(obj, "metadata"), "annotations")
    errs: list[Cause] = []
    hints, mode = (
        "service.kubernetes.io/topology-aware-hints",
        "service.kubernetes.io/topology-mode",
    )
    if hints in annotations and mode in annotations and annotations[hints] != annotations[mode]:
        path = Path("metadata").child("annotations").key(mode)
        errs.append(
            invalid(
                path, annotations[mode], f"must match annotations[{hints}] when both are specified"
            )
        )
    kind = get_str(spec, "type")
    if not get_list(spec, "ports") and not is_headless(spec) and kind != "ExternalName":
        errs.append(required(SPEC.child("ports")))
    errs += _type_rules(spec)
    errs += _port_list(spec)
    if isinstance(spec.get("selector"), dict):
        errs += validate_labels(spec["selector"], SPEC.child("selector"))
    errs += _affinity(spec)
    errs += cluster_ips(spec)
    for i, ip in enumerate(get_list(spec, "externalIPs")):
        text = ip if isinstance(ip, str) else ""
        msgs = formats.check_ip(text)
        errs += [invalid(SPEC.child("externalIPs").at(i), text, m) for m in msgs]
        if not msgs:
            errs += non_special_ip(text, SPEC.child("externalIPs").at(i))
    if not kind:
        errs.append(required(SPEC.child("type")))
    elif kind not in TYPES:
        errs.append(not_supported(SPEC.child("type"), kind, TYPES))
    errs += _port_conflicts(spec)
    errs += _load_balancer(spec, annotations)
    return errs + _traffic(spec)


def non_special_ip(value: str, path: Path) -> list[Cause]:
    ip = formats.parse_ip(value)
    if ip is None:
        return [invalid(path, value, "must be a valid IP address")]
    errs: list[Cause] = []
    if ip.is_unspecified:
        errs.append(invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local:
        errs.append(
            invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")
        )
    text = str(ip)
    if text.startswith("224.0.0.") or text.startswith("ff02:"):
        errs.append(
            invalid(
                path,
                value,
                "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
            )
        )
    return errs


def service_update(spec: dict[str, Any], old_spec: dict[str, Any]) -> list[Cause]:
    """Cluster IPs and families may be added or released, never changed."""
    errs: list[Cause] = []
    if "ExternalName" in (get_str(spec, "type"), get_str(old_spec, "type")):
        return errs
    new_ips, old_ips = get_list(spec, "clusterIPs"), get_list(old_spec, "clusterIPs")
    ips_path = SPEC.child("clusterIPs")
    if not (is_headless(spec) and is_headless(old_spec)):
        if len(new_ips) == len(old_ips):
            for i, ip in enumerate(old_ips):
                if ip != new_ips[i]:
                    errs.append(
                        invalid(ips_path.at(i), go_slice(new_ips), "may not change once set")
                    )
        elif len(old_ips) > len(new_ips):
            if not new_ips:
                errs.append(
                    invalid(ips_path.at(0), go_slice(new_ips), "primary clusterIP can not be unset")
                )
            elif old_ips and new_ips[0] != old_ips[0]:
                errs.append(invalid(ips_path.at(0), go_slice(new_ips), "may not change once set"))
            if len(new_ips) == 1 and get_str(spec, "ipFamilyPolicy") != "SingleStack":
                msg = "must be set to 'SingleStack' when releasing the secondary clusterIP"
                errs.append(invalid(SPEC.child("ipFamilyPolicy"), spec.get("ipFamilyPolicy"), msg))
        elif old_ips and new_ips[0] != old_ips[0]:
            errs.append(invalid(ips_path.at(0), go_slice(new_ips), "may not change once set"))
    if is_headless(spec) == is_headless(old_spec) and not is_headless(spec):
        new_f, old_f = get_list(spec, "ipFamilies"), get_list(old_spec, "ipFamilies")
        fam_path = SPEC.child("ipFamilies").at(0)
        if len(new_f) == len(old_f) and new_f != old_f:
            errs.append(
                invalid(fam_path, go_slice(new_f, "[]core.IPFamily"), "may not change once set")
            )
        elif new_f and old_f and new_f[0] != old_f[0]:
            errs.append(invalid(fam_path, go_slice(new_ips), "may not change once set"))
    if get_str(spec, "type") == get_str(old_spec, "type") == "LoadBalancer":
        if spec.get("loadBalancerClass") != old_spec.get("loadBalancerClass"):
            errs.append(
                invalid(
                    SPEC.child("loadBalancerClass"),
                    spec.get("loadBalancerClass"),
                    "may not change once set",
                )
            )
    needs = (
        get_str(spec, "type") == "LoadBalancer"
        and get_str(spec, "externalTrafficPolicy") == "Local"
    )
    old_needs = (
        get_str(old_spec, "type") == "LoadBalancer"
        and get_str(old_spec, "externalTrafficPolicy") == "Local"
    )
    if (
        needs
        and old_needs
        and get_int(spec, "healthCheckNodePort") != get_int(old_spec, "healthCheckNodePort")
    ):
        errs.append(forbidden(SPEC.child("healthCheckNodePort"), "field is immutable"))
    return errs


def endpoints(obj: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    for i, subset in enumerate(dicts(get_list(obj, "subsets"))):
        path = Path("subsets").at(i)
        if not get_list(subset, "addresses") and not get_list(subset, "notReadyAddresses"):
            errs.append(required(path, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, addr in enumerate(dicts(get_list(subset, key))):
                errs += _endpoint_address(addr, path.child(key).at(j))
        ports = dicts(get_list(subset, "ports"))
        for j, port in enumerate(ports):
            errs += _endpoint_port(port, path.child("ports").at(j), require_name=len(ports) > 1)
    return errs


def _endpoint_address(addr: dict[str, Any], path: Path) -> list[Cause]:
    ip = get_str(addr, "ip")
    errs = [invalid(path.child("ip"), ip, m) for m in formats.check_ip(ip)]
    hostname = get_str(addr, "hostname")
    if hostname:
        errs += [
            invalid(path.child("hostname"), hostname, m)
            for m in names.check_dns1123_label(hostname)
        ]
    if has(addr, "nodeName"):
        node = get_str(addr, "nodeName")
        errs += [
            invalid(path.child("nodeName"), node, m) for m in names.check_dns1123_subdomain(node)
        ]
    return errs + non_special_ip(ip, path.child("ip"))


def _endpoint_port(port: dict[str, Any], path: Path, *, require_name: bool) -> list[Cause]:
    errs: list[Cause] = []
    name = get_str(port, "name")
    if require_name and not name:
        errs.append(required(path.child("name")))
    elif name:
        errs += [invalid(path.child("name"), name, m) for m in names.check_dns1123_label(name)]
    number = get_int(port, "port")
    errs += [invalid(path.child("port"), number, m) for m in formats.check_port_num(number)]
    proto = get_str(port, "protocol")
    if not proto:
        errs.append(required(path.child("protocol")))
    elif proto not in PROTOCOLS:
        errs.append(not_supported(path.child("protocol"), proto, PROTOCOLS))
    if has(port, "appProtocol"):
        app = get_str(port, "appProtocol")
        errs += [
            invalid(path.child("appProtocol"), app, m) for m in names.check_qualified_name(app)
        ]
    return errs
