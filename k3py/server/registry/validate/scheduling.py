"""Scheduling constraints of a pod spec: affinity, tolerations, spread constraints, taints."""

from __future__ import annotations

from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import formats
from .access import dicts, get_int, get_list, get_map, get_opt_int, get_str, has
from .field import Path, duplicate, forbidden, invalid, not_supported, required
from .meta import validate_label_name, validate_label_selector

TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
NOT_POSITIVE = "must be greater than zero"


def node_selector_requirement(
    req: dict[str, Any], path: Path, *, allow_invalid_values: bool
) -> list[Cause]:
    op, values = get_str(req, "operator"), get_list(req, "values")
    errs: list[Cause] = []
    if op in ("In", "NotIn"):
        if not values:
            errs.append(
                required(
                    path.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"
                )
            )
    elif op in ("Exists", "DoesNotExist"):
        if values:
            msg = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            errs.append(forbidden(path.child("values"), msg))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            msg = "must be specified single value when `operator` is 'Lt' or 'Gt'"
            errs.append(required(path.child("values"), msg))
    else:
        errs.append(invalid(path.child("operator"), op, "not a valid selector operator"))
    errs += validate_label_name(get_str(req, "key"), path.child("key"))
    if not allow_invalid_values:
        for i, v in enumerate(values):
            text = v if isinstance(v, str) else ""
            errs += [
                invalid(path.child("values").at(i), text, m) for m in names.check_label_value(text)
            ]
    return errs


def node_field_requirement(req: dict[str, Any], path: Path) -> list[Cause]:
    op, values = get_str(req, "operator"), get_list(req, "values")
    errs: list[Cause] = []
    if op in ("In", "NotIn"):
        if len(values) != 1:
            msg = (
                "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"
            )
            errs.append(required(path.child("values"), msg))
    else:
        errs.append(invalid(path.child("operator"), op, "not a valid selector operator"))
    key = get_str(req, "key")
    if key != "metadata.name":
        errs.append(invalid(path.child("key"), key, "not a valid field selector key"))
    else:
        for i, v in enumerate(values):
            text = v if isinstance(v, str) else ""
            errs += [
                invalid(path.child("values").at(i), text, m)
                for m in names.check_dns1123_subdomain(text)
            ]
    return errs


def node_selector_term(
    term: dict[str, Any], path: Path, *, allow_invalid_values: bool
) -> list[Cause]:
    errs: list[Cause] = []
    for j, req in enumerate(dicts(get_list(term, "matchExpressions"))):
        p = path.child("matchExpressions").at(j)
        errs += node_selector_requirement(req, p, allow_invalid_values=allow_invalid_values)
    for j, req in enumerate(dicts(get_list(term, "matchFields"))):
        errs += node_field_requirement(req, path.child("matchFields").at(j))
    return errs


def node_selector(selector: dict[str, Any], path: Path) -> list[Cause]:
    terms = get_list(selector, "nodeSelectorTerms")
    tpath = path.child("nodeSelectorTerms")
    if not terms:
        return [required(tpath, "must have at least one node selector term")]
    errs: list[Cause] = []
    for i, term in enumerate(dicts(terms)):
        errs += node_selector_term(term, tpath.at(i), allow_invalid_values=False)
    return errs


def _weight(term: dict[str, Any], path: Path) -> list[Cause]:
    weight = get_int(term, "weight")
    if weight <= 0 or weight > 100:
        return [invalid(path, weight, "must be in the range 1-100")]
    return []


def _pod_affinity_term(term: dict[str, Any], path: Path) -> list[Cause]:
    errs = validate_label_selector(term.get("labelSelector"), path.child("labelSelector"))
    errs += validate_label_selector(term.get("namespaceSelector"), path.child("namespaceSelector"))
    for ns in get_list(term, "namespaces"):
        text = ns if isinstance(ns, str) else ""
        errs += [invalid(path.child("namespace"), text, m) for m in names.check_dns1123_label(text)]
    for key in ("matchLabelKeys", "mismatchLabelKeys"):
        keys = get_list(term, key)
        if keys and not isinstance(term.get("labelSelector"), dict):
            errs.append(
                forbidden(path.child(key), "must not be specified when labelSelector is not set")
            )
        for i, k in enumerate(keys):
            errs += validate_label_name(k if isinstance(k, str) else "", path.child(key).at(i))
    topology = get_str(term, "topologyKey")
    if not topology:
        errs.append(required(path.child("topologyKey"), "can not be empty"))
    return errs + validate_label_name(topology, path.child("topologyKey"))


def _pod_affinity(value: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    req_path = path.child("requiredDuringSchedulingIgnoredDuringExecution")
    for i, term in enumerate(
        dicts(get_list(value, "requiredDuringSchedulingIgnoredDuringExecution"))
    ):
        errs += _pod_affinity_term(term, req_path.at(i))
    pref_path = path.child("preferredDuringSchedulingIgnoredDuringExecution")
    for i, term in enumerate(
        dicts(get_list(value, "preferredDuringSchedulingIgnoredDuringExecution"))
    ):
        errs += _weight(term, pref_path.at(i).child("weight"))
        errs += _pod_affinity_term(
            get_map(term, "podAffinityTerm"), pref_path.at(i).child("podAffinityTerm")
        )
    return errs


def _node_affinity(value: dict[str, Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    required_sel = value.get("requiredDuringSchedulingIgnoredDuringExecution")
    if isinstance(required_sel, dict):
        errs += node_selector(
            required_sel, path.child("requiredDuringSchedulingIgnoredDuringExecution")
        )
    pref_path = path.child("preferredDuringSchedulingIgnoredDuringExecution")
    for i, term in enumerate(
        dicts(get_list(value, "preferredDuringSchedulingIgnoredDuringExecution"))
    ):
        errs += _weight(term, pref_path.at(i).child("weight"))
        errs += node_selector_term(
            get_map(term, "preference"),
            pref_path.at(i).child("preference"),
            allow_invalid_values=True,
        )
    return errs


def affinity(value: Any, path: Path) -> list[Cause]:
    if not isinstance(value, dict):
        return []
    errs: list[Cause] = []
    if isinstance(value.get("nodeAffinity"), dict):
        errs += _node_affinity(value["nodeAffinity"], path.child("nodeAffinity"))
    for key in ("podAffinity", "podAntiAffinity"):
        if isinstance(value.get(key), dict):
            errs += _pod_affinity(value[key], path.child(key))
    return errs


def taint_effect(effect: str, path: Path, *, allow_empty: bool) -> list[Cause]:
    if not effect:
        return [] if allow_empty else [required(path)]
    if effect not in TAINT_EFFECTS:
        return [not_supported(path, effect, TAINT_EFFECTS)]
    return []


def tolerations(items: list[Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    for i, tol in enumerate(dicts(items)):
        p = path.at(i)
        key, op, value = get_str(tol, "key"), get_str(tol, "operator"), get_str(tol, "value")
        effect = get_str(tol, "effect")
        if key:
            errs += validate_label_name(key, p.child("key"))
        if not key and op != "Exists":
            msg = (
                "operator must be Exists when `key` is empty, which means "
                '"match all values and all keys"'
            )
            errs.append(invalid(p.child("operator"), op, msg))
        if has(tol, "tolerationSeconds") and effect != "NoExecute":
            errs.append(
                invalid(
                    p.child("effect"),
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if op in ("Equal", ""):
            msgs = names.check_label_value(value)
            if msgs:
                errs.append(invalid(p.child("operator"), value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(
                    invalid(
                        p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errs.append(not_supported(p.child("operator"), op, ["Equal", "Exists"]))
        errs += taint_effect(effect, p.child("effect"), allow_empty=True)
    return errs


def taints(items: list[Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(dicts(items)):
        p = path.at(i)
        key, value, effect = (
            get_str(taint, "key"),
            get_str(taint, "value"),
            get_str(taint, "effect"),
        )
        errs += validate_label_name(key, p.child("key"))
        msgs = names.check_label_value(value)
        if msgs:
            errs.append(invalid(p.child("value"), value, ";".join(msgs)))
        errs += taint_effect(effect, p.child("effect"), allow_empty=False)
        if (effect, key) in seen:
            dup = duplicate(p, taint)
            dup["message"] = dup["message"] + ": taints must be unique by key and effect pair"
            errs.append(dup)
            continue
        seen.add((effect, key))
    return errs


def topology_spread(items: list[Any], path: Path) -> list[Cause]:
    errs: list[Cause] = []
    constraints = dicts(items)
    for i, c in enumerate(constraints):
        p = path.at(i)
        skew = get_int(c, "maxSkew")
        if skew <= 0:
            errs.append(invalid(p.child("maxSkew"), skew, NOT_POSITIVE))
        if not get_str(c, "topologyKey"):
            errs.append(required(p.child("topologyKey"), "can not be empty"))
        action = get_str(c, "whenUnsatisfiable")
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(
                not_supported(
                    p.child("whenUnsatisfiable"), action, ["DoNotSchedule", "ScheduleAnyway"]
                )
            )
        pair = (get_str(c, "topologyKey"), action)
        if any(
            (get_str(o, "topologyKey"), get_str(o, "whenUnsatisfiable")) == pair
            for o in constraints[i + 1 :]
        ):
            errs.append(
                duplicate(p.child("{topologyKey, whenUnsatisfiable}"), f"{{{pair[0]}, {pair[1]}}}")
            )
        min_domains = get_opt_int(c, "minDomains")
        if min_domains is not None:
            if min_domains <= 0:
                errs.append(invalid(p.child("minDomains"), min_domains, NOT_POSITIVE))
            if action != "DoNotSchedule":
                msg = f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                errs.append(invalid(p.child("minDomains"), min_domains, msg))
        for key in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            if has(c, key) and get_str(c, key) not in ("Honor", "Ignore"):
                errs.append(not_supported(p.child(key), get_str(c, key), ["Honor", "Ignore"]))
        errs += validate_label_selector(c.get("labelSelector"), p.child("labelSelector"))
    return errs


def dns_config(config: Any, policy: str, path: Path) -> list[Cause]:
    if policy == "None":
        if not isinstance(config, dict):
            return [required(path, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not get_list(config, "nameservers"):
            msg = "must provide at least one DNS nameserver when `dnsPolicy` is None"
            return [required(path.child("nameservers"), msg)]
    if not isinstance(config, dict):
        return []
    errs: list[Cause] = []
    servers = get_list(config, "nameservers")
    if len(servers) > 3:
        errs.append(
            invalid(path.child("nameservers"), servers, "must not have more than 3 nameservers")
        )
    for i, ns in enumerate(servers):
        text = ns if isinstance(ns, str) else ""
        errs += [invalid(path.child("nameservers").at(i), text, m) for m in formats.check_ip(text)]
    searches = [s if isinstance(s, str) else "" for s in get_list(config, "searches")]
    if len(searches) > 32:
        errs.append(
            invalid(path.child("searches"), searches, "must not have more than 32 search paths")
        )
    if len(" ".join(searches)) > 2048:
        msg = "must not have more than 2048 characters (including spaces) in the search list"
        errs.append(invalid(path.child("searches"), searches, msg))
    for i, search in enumerate(searches):
        trimmed = search.removesuffix(".")
        errs += [
            invalid(path.child("searches").at(i), trimmed, m)
            for m in names.check_dns1123_subdomain(trimmed)
        ]
    for i, opt in enumerate(dicts(get_list(config, "options"))):
        if not get_str(opt, "name"):
            errs.append(required(path.child("options").at(i), "must not be empty"))
    return errs
