"""Smaller kinds: PodDisruptionBudget, PriorityClass, Lease, EndpointSlice, HPA, RuntimeClass."""

from __future__ import annotations

from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import formats
from .access import dicts, get_int, get_list, get_map, get_opt_int, get_str, has
from .apps import not_more_than_100_percent, positive_int_or_percent
from .containers import PROTOCOLS
from .field import GoValue, Path, duplicate, forbidden, invalid, not_supported, required, too_many
from .meta import immutable_field, validate_label_selector, validate_labels
from .resources import check_container_resource_name, parse_field
from .service import non_special_ip

SPEC = Path("spec")
SYSTEM_PRIORITY_CLASSES = {
    "system-node-critical": 2000001000,
    "system-cluster-critical": 2000000000,
}
HIGHEST_USER_PRIORITY = 1000000000
ADDRESS_TYPES = ["FQDN", "IPv4", "IPv6"]


def pod_disruption_budget(obj: dict[str, Any]) -> list[Cause]:
    spec = get_map(obj, "spec")
    errs: list[Cause] = []
    if has(spec, "minAvailable") and has(spec, "maxUnavailable"):
        shown = GoValue("policy.PodDisruptionBudgetSpec{...}")
        errs.append(invalid(SPEC, shown, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        if has(spec, key):
            errs += positive_int_or_percent(spec[key], SPEC.child(key))
            errs += not_more_than_100_percent(spec[key], SPEC.child(key))
    errs += validate_label_selector(spec.get("selector"), SPEC.child("selector"))
    policy = get_str(spec, "unhealthyPodEvictionPolicy")
    if has(spec, "unhealthyPodEvictionPolicy") and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(
            not_supported(
                SPEC.child("unhealthyPodEvictionPolicy"), policy, ["AlwaysAllow", "IfHealthyBudget"]
            )
        )
    return errs


def priority_class(obj: dict[str, Any]) -> list[Cause]:
    name = get_str(get_map(obj, "metadata"), "name")
    value = get_int(obj, "value")
    errs: list[Cause] = []
    if name.startswith("system-"):
        known = SYSTEM_PRIORITY_CLASSES.get(name)
        reason = None
        if known is None:
            reason = f"{name} is not a known system priority class"
        elif value != known:
            reason = f"value of {name} PriorityClass must be {known}"
        elif obj.get("globalDefault") is True:
            reason = f"globalDefault of {name} PriorityClass must be false"
        if reason:
            msg = (
                "priority class names with 'system-' prefix are reserved for system use only. "
                f"error: {reason}"
            )
            errs.append(forbidden(Path("metadata").child("name"), msg))
    elif value > HIGHEST_USER_PRIORITY:
        msg = f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"
        errs.append(forbidden(Path("value"), msg))
    if has(obj, "preemptionPolicy"):
        policy = get_str(obj, "preemptionPolicy")
        if not policy:
            errs.append(required(Path("preemptionPolicy")))
        elif policy not in ("PreemptLowerPriority", "Never"):
            errs.append(
                not_supported(Path("preemptionPolicy"), policy, ["PreemptLowerPriority", "Never"])
            )
    return errs


def priority_class_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    errs: list[Cause] = []
    if get_int(obj, "value") != get_int(old, "value"):
        errs.append(forbidden(Path("value"), "may not be changed in an update."))
    return errs + immutable_field(
        Path("preemptionPolicy"), obj.get("preemptionPolicy"), old.get("preemptionPolicy")
    )


def lease(obj: dict[str, Any]) -> list[Cause]:
    spec = get_map(obj, "spec")
    errs: list[Cause] = []
    duration = get_opt_int(spec, "leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errs.append(invalid(SPEC.child("leaseDurationSeconds"), duration, "must be greater than 0"))
    transitions = get_opt_int(spec, "leaseTransitions")
    if transitions is not None and transitions < 0:
        errs.append(
            invalid(
                SPEC.child("leaseTransitions"), transitions, "must be greater than or equal to 0"
            )
        )
    return errs


def _slice_address(address: str, kind: str, path: Path) -> list[Cause]:
    ip = formats.parse_ip(address)
    if kind == "IPv4":
        if ip is None or ip.version != 4:
            return [invalid(path, address, "must be a valid IPv4 address")]
        return non_special_ip(address, path)
    if kind == "IPv6":
        if ip is None or ip.version != 6:
            return [invalid(path, address, "must be a valid IPv6 address")]
        return non_special_ip(address, path)
    if kind == "FQDN":
        return _fqdn(address, path)
    return []


def _fqdn(name: str, path: Path) -> list[Cause]:
    if not name:
        return [required(path)]
    name = name.removesuffix(".")
    msgs = names.check_dns1123_subdomain(name)
    if msgs:
        return [invalid(path, name, ",".join(msgs))]
    labels = name.split(".")
    if len(labels) < 2:
        return [
            invalid(path, name, "should be a domain with at least two segments separated by dots")
        ]
    for label in labels:
        msgs = names.check_dns1123_label(label)
        if msgs:
            return [invalid(path, label, ",".join(msgs))]
    return []


def endpoint_slice(obj: dict[str, Any]) -> list[Cause]:
    kind = get_str(obj, "addressType")
    errs: list[Cause] = []
    if not kind:
        errs.append(required(Path("addressType")))
    elif kind not in ADDRESS_TYPES:
        errs.append(not_supported(Path("addressType"), kind, ADDRESS_TYPES))
    endpoints = get_list(obj, "endpoints")
    if len(endpoints) > 1000:
        return errs + [too_many(Path("endpoints"), len(endpoints), 1000)]
    for i, ep in enumerate(dicts(endpoints)):
        errs += _slice_endpoint(ep, kind, Path("endpoints").at(i))
    return errs + _slice_ports(get_list(obj, "ports"))


def _slice_endpoint(ep: dict[str, Any], kind: str, path: Path) -> list[Cause]:
    errs: list[Cause] = []
    addresses = get_list(ep, "addresses")
    apath = path.child("addresses")
    if not addresses:
        errs.append(required(apath, "must contain at least 1 address"))
    elif len(addresses) > 100:
        errs.append(too_many(apath, len(addresses), 100))
    for j, address in enumerate(addresses):
        errs += _slice_address(address if isinstance(address, str) else "", kind, apath.at(j))
    if has(ep, "nodeName"):
        node = get_str(ep, "nodeName")
        errs += [
            invalid(path.child("nodeName"), node, m) for m in names.check_dns1123_subdomain(node)
        ]
    topology = get_map(ep, "deprecatedTopology")
    if len(topology) > 16:
        errs.append(too_many(path.child("deprecatedTopology"), len(topology), 16))
    errs += validate_labels(topology, path.child("deprecatedTopology"))
    if has(ep, "hostname"):
        host = get_str(ep, "hostname")
        errs += [invalid(path.child("hostname"), host, m) for m in names.check_dns1123_label(host)]
    return errs


def _slice_ports(ports: list[Any]) -> list[Cause]:
    if len(ports) > 20000:
        return [too_many(Path("ports"), len(ports), 20000)]
    errs: list[Cause] = []
    seen: set[str] = set()
    for i, port in enumerate(dicts(ports)):
        path = Path("ports").at(i)
        name = get_str(port, "name")
        if name:
            errs += [invalid(path.child("name"), name, m) for m in names.check_dns1123_label(name)]
        if name in seen:
            errs.append(duplicate(path.child("name"), name))
        seen.add(name)
        if not has(port, "protocol"):
            errs.append(required(path.child("protocol")))
        elif get_str(port, "protocol") not in PROTOCOLS:
            errs.append(not_supported(path.child("protocol"), get_str(port, "protocol"), PROTOCOLS))
        if has(port, "appProtocol"):
            app = get_str(port, "appProtocol")
            errs += [
                invalid(path.child("appProtocol"), app, m) for m in names.check_qualified_name(app)
            ]
    return errs


def endpoint_slice_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    return immutable_field(Path("addressType"), obj.get("addressType"), old.get("addressType"))


# -- HorizontalPodAutoscaler ------------------------------------------------------

METRIC_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]
_SOURCE_KEY = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}


def _scale_target(ref: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for key in ("kind", "name"):
        value = get_str(ref, key)
        if not value:
            errs.append(required(path.child(key)))
        else:
            errs += [
                invalid(path.child(key), value, m) for m in formats.check_path_segment_name(value)
            ]
    return errs


def _metric_target(target: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    kind = get_str(target, "type")
    if not kind:
        errs.append(required(path.child("type"), "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        errs.append(
            invalid(path.child("type"), kind, "must be either Utilization, Value, or AverageValue")
        )
    for key in ("value", "averageValue"):
        if has(target, key):
            q, perr = parse_field(target[key], path.child(key))
            errs += perr
            if q is not None and q.sign() != 1:
                errs.append(invalid(path.child(key), GoValue(str(q)), "must be positive"))
    util = get_opt_int(target, "averageUtilization")
    if util is not None and util < 1:
        errs.append(invalid(path.child("averageUtilization"), util, "must be greater than 0"))
    return errs


def _resource_source(src: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    name = get_str(src, "name")
    if not name:
        errs.append(required(path.child("name"), "must specify a resource name"))
    else:
        errs += check_container_resource_name(name, path.child("name"))
    target = get_map(src, "target")
    errs += _metric_target(target, path.child("target"))
    if not has(target, "averageUtilization") and not has(target, "averageValue"):
        msg = "must set either a target raw value or a target utilization"
        errs.append(required(path.child("target", "averageUtilization"), msg))
    if has(target, "averageUtilization") and has(target, "averageValue"):
        msg = "may not set both a target raw value and a target utilization"
        errs.append(forbidden(path.child("target", "averageValue"), msg))
    return errs


def _metric(spec: dict[str, Any], path: Path) -> list[Cause]:
    kind = get_str(spec, "type")
    errs: list[Cause] = []
    if not kind:
        errs.append(required(path.child("type"), "must specify a metric source type"))
    if kind not in METRIC_TYPES:
        errs.append(not_supported(path.child("type"), kind, METRIC_TYPES))
    present = [key for key in _SOURCE_KEY.values() if isinstance(spec.get(key), dict)]
    expected = _SOURCE_KEY.get(kind)
    if expected is not None and expected not in present:
        errs.append(
            required(path.child(expected), "must populate information for the given metric source")
        )
    if expected in ("resource", "containerResource") and expected in present:
        errs += _resource_source(spec[expected], path.child(expected))
        if expected == "containerResource" and not get_str(spec[expected], "container"):
            errs.append(required(path.child(expected, "container"), "must specify a container"))
    elif expected in present:
        errs += _metric_target(get_map(spec[expected], "target"), path.child(expected, "target"))
    if len(present) != 1:
        for key in present:
            if key != expected:
                errs.append(
                    forbidden(path.child(key), "must populate the given metric source only")
                )
    return errs


def hpa(obj: dict[str, Any]) -> list[Cause]:
    spec = get_map(obj, "spec")
    errs: list[Cause] = []
    min_replicas = get_opt_int(spec, "minReplicas")
    max_replicas = get_int(spec, "maxReplicas")
    if min_replicas is not None and min_replicas < 1:
        errs.append(
            invalid(SPEC.child("minReplicas"), min_replicas, "must be greater than or equal to 1")
        )
    if max_replicas < 1:
        errs.append(invalid(SPEC.child("maxReplicas"), max_replicas, "must be greater than 0"))
    if min_replicas is not None and max_replicas < min_replicas:
        errs.append(
            invalid(
                SPEC.child("maxReplicas"),
                max_replicas,
                "must be greater than or equal to `minReplicas`",
            )
        )
    errs += _scale_target(get_map(spec, "scaleTargetRef"), SPEC.child("scaleTargetRef"))
    if get_str(obj, "apiVersion") == "autoscaling/v1":
        util = get_opt_int(spec, "targetCPUUtilizationPercentage")
        if util is not None and util < 1:
            errs.append(
                invalid(
                    SPEC.child("targetCPUUtilizationPercentage"), util, "must be greater than 0"
                )
            )
        return errs
    for i, metric in enumerate(dicts(get_list(spec, "metrics"))):
        errs += _metric(metric, SPEC.child("metrics").at(i))
    return errs + _behavior(spec.get("behavior"), SPEC.child("behavior"))


def _behavior(behavior: Any, path: Path) -> list[Cause]:
    if not isinstance(behavior, dict):
        return []
    errs: list[Cause] = []
    for key in ("scaleUp", "scaleDown"):
        rules = behavior.get(key)
        if not isinstance(rules, dict):
            continue
        rpath = path.child(key)
        window = get_opt_int(rules, "stabilizationWindowSeconds")
        if window is not None and not 0 <= window <= 3600:
            errs.append(
                invalid(
                    rpath.child("stabilizationWindowSeconds"),
                    window,
                    "must be less than or equal to 3600",
                )
            )
        policy = get_str(rules, "selectPolicy")
        if has(rules, "selectPolicy") and policy not in ("Max", "Min", "Disabled"):
            errs.append(
                not_supported(rpath.child("selectPolicy"), policy, ["Disabled", "Max", "Min"])
            )
        policies = get_list(rules, "policies")
        if not policies and policy != "Disabled":
            errs.append(required(rpath.child("policies"), "must specify at least one Policy"))
        for i, pol in enumerate(dicts(policies)):
            ppath = rpath.child("policies").at(i)
            if get_str(pol, "type") not in ("Pods", "Percent"):
                errs.append(
                    not_supported(ppath.child("type"), get_str(pol, "type"), ["Percent", "Pods"])
                )
            if get_int(pol, "value") <= 0:
                errs.append(
                    invalid(
                        ppath.child("value"), get_int(pol, "value"), "must be greater than zero"
                    )
                )
            period = get_int(pol, "periodSeconds")
            if period <= 0 or period > 1800:
                errs.append(
                    invalid(
                        ppath.child("periodSeconds"),
                        period,
                        "must be greater than zero and less than or equal to 1800",
                    )
                )
    return errs


def runtime_class(obj: dict[str, Any]) -> list[Cause]:
    handler = get_str(obj, "handler")
    return [invalid(Path("handler"), handler, m) for m in names.check_dns1123_label(handler)]
