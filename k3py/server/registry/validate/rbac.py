"""rbac.authorization.k8s.io/v1: Roles, ClusterRoles and their bindings.

Object names are path segments (any text without ``/`` or ``%``); rule and
subject paths have no ``spec`` prefix because RBAC objects have no spec.
"""

from __future__ import annotations

from typing import Any

from k3py.apimachinery import names
from k3py.server.errors import Cause

from . import formats
from .access import dicts, get_list, get_map, get_str
from .field import GoValue, Path, go_quote, go_slice, invalid, not_supported, required
from .meta import as_selector, label_selector_value, validate_label_selector

GROUP = "rbac.authorization.k8s.io"


def policy_rule(rule: dict[str, Any], path: Path, *, namespaced: bool) -> list[Cause]:
    errs: list[Cause] = []
    if not get_list(rule, "verbs"):
        errs.append(required(path.child("verbs"), "verbs must contain at least one value"))
    urls = get_list(rule, "nonResourceURLs")
    if urls:
        shown = go_slice(urls)
        if namespaced:
            errs.append(
                invalid(
                    path.child("nonResourceURLs"),
                    shown,
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
        if (
            get_list(rule, "apiGroups")
            or get_list(rule, "resources")
            or get_list(rule, "resourceNames")
        ):
            msg = "rules cannot apply to both regular resources and non-resource URLs"
            errs.append(invalid(path.child("nonResourceURLs"), shown, msg))
        return errs
    if not get_list(rule, "apiGroups"):
        errs.append(
            required(path.child("apiGroups"), "resource rules must supply at least one api group")
        )
    if not get_list(rule, "resources"):
        errs.append(
            required(path.child("resources"), "resource rules must supply at least one resource")
        )
    return errs


def role(obj: dict[str, Any], *, namespaced: bool) -> list[Cause]:
    errs: list[Cause] = []
    for i, rule in enumerate(dicts(get_list(obj, "rules"))):
        errs += policy_rule(rule, Path("rules").at(i), namespaced=namespaced)
    aggregation = obj.get("aggregationRule")
    if not namespaced and isinstance(aggregation, dict):
        selectors = get_list(aggregation, "clusterRoleSelectors")
        path = Path("aggregationRule").child("clusterRoleSelectors")
        if not selectors:
            errs.append(
                required(
                    path, "at least one clusterRoleSelector required if aggregationRule is non-nil"
                )
            )
        for i, selector in enumerate(selectors):
            errs += validate_label_selector(selector, path.at(i))
            if as_selector(selector) is None:
                errs.append(
                    invalid(path.at(i), label_selector_value(selector), "invalid label selector.")
                )
    return errs


def subject(item: dict[str, Any], path: Path, *, namespaced: bool) -> list[Cause]:
    errs: list[Cause] = []
    name, kind, group = get_str(item, "name"), get_str(item, "kind"), get_str(item, "apiGroup")
    if not name:
        errs.append(required(path.child("name")))
    if kind == "ServiceAccount":
        if name:
            errs += [
                invalid(path.child("name"), name, m) for m in names.check_dns1123_subdomain(name)
            ]
        if group:
            errs.append(not_supported(path.child("apiGroup"), group, [""]))
        if not namespaced and not get_str(item, "namespace"):
            errs.append(required(path.child("namespace")))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(not_supported(path.child("apiGroup"), group, [GROUP]))
    else:
        errs.append(not_supported(path.child("kind"), kind, ["ServiceAccount", "User", "Group"]))
    return errs


def binding(obj: dict[str, Any], *, namespaced: bool) -> list[Cause]:
    ref = get_map(obj, "roleRef")
    path = Path("roleRef")
    errs: list[Cause] = []
    if get_str(ref, "apiGroup") != GROUP:
        errs.append(not_supported(path.child("apiGroup"), get_str(ref, "apiGroup"), [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if get_str(ref, "kind") not in kinds:
        errs.append(not_supported(path.child("kind"), get_str(ref, "kind"), kinds))
    name = get_str(ref, "name")
    if not name:
        errs.append(required(path.child("name")))
    else:
        errs += [
            invalid(path.child("name"), name, m) for m in formats.check_path_segment_name(name)
        ]
    for i, item in enumerate(dicts(get_list(obj, "subjects"))):
        errs += subject(item, Path("subjects").at(i), namespaced=namespaced)
    return errs


def binding_update(obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    ref, old_ref = get_map(obj, "roleRef"), get_map(old, "roleRef")
    keys = ("apiGroup", "kind", "name")
    if any(get_str(ref, k) != get_str(old_ref, k) for k in keys):
        fields = ", ".join(f"{k[0].upper()}{k[1:]}:{go_quote(get_str(ref, k))}" for k in keys)
        shown = GoValue(f"rbac.RoleRef{{{fields.replace('ApiGroup', 'APIGroup')}}}")
        return [invalid(Path("roleRef"), shown, "cannot change roleRef")]
    return []
