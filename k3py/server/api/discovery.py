"""Legacy (v1) and aggregated (v2) discovery documents, cached per catalogue generation."""

from __future__ import annotations

import hashlib
from typing import Any

from k3py import GIT_VERSION, KUBE_VERSION
from k3py.server.registry.catalog import (
    SUBRESOURCE_KIND,
    SUBRESOURCE_VERBS,
    Catalog,
    ResourceInfo,
)


def storage_version_hash(r: ResourceInfo) -> str:
    digest = hashlib.sha256(f"{r.group}/{r.version}/{r.kind}".encode()).digest()
    import base64

    return base64.b64encode(digest[:8]).decode()


def version_info() -> dict[str, Any]:
    minor = KUBE_VERSION.split(".")[1]
    return {
        "major": "1",
        "minor": minor,
        "emulationMajor": "1",
        "emulationMinor": minor,
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    return {
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
    }


def api_group_list(catalog: Catalog) -> dict[str, Any]:
    groups = [_group_entry(g, vs) for g, vs in catalog.groups().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(catalog: Catalog, group: str) -> dict[str, Any] | None:
    vs = catalog.groups().get(group)
    if not vs:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(group, vs)}


def _crd_names(r: ResourceInfo) -> tuple[list[str], list[str]]:
    crd = r.crd or {}
    return list(crd.get("_shortNames") or r.short_names), list(crd.get("_categories") or r.categories)


def resource_list(catalog: Catalog, group: str, version: str) -> dict[str, Any] | None:
    infos = catalog.in_group_version(group, version)
    if not infos:
        return None
    rows: list[dict[str, Any]] = []
    for r in infos:
        row: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            row["shortNames"] = list(r.short_names)
        if r.categories:
            row["categories"] = list(r.categories)
        if not r.virtual:
            row["storageVersionHash"] = storage_version_hash(r)
        rows.append(row)
        for sub in r.subresources:
            srow: dict[str, Any] = {
                "name": f"{r.plural}/{sub}",
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
            if sub in SUBRESOURCE_KIND and sub not in ("log",):
                g, v, k = SUBRESOURCE_KIND[sub]
                srow["kind"] = k
                if g != r.group or v != r.version:
                    srow["group"] = g
                    srow["version"] = v
            rows.append(srow)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": rows,
    }


def _v2_resource(r: ResourceInfo) -> dict[str, Any]:
    short, cats = _crd_names(r)
    out: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if short:
        out["shortNames"] = short
    if cats:
        out["categories"] = cats
    subs = []
    for sub in r.subresources:
        g, v, k = SUBRESOURCE_KIND.get(sub, (r.group, r.version, r.kind))
        subs.append(
            {
                "subresource": sub,
                "responseKind": {"group": g, "version": v, "kind": k},
                "verbs": list(SUBRESOURCE_VERBS.get(sub, ("get",))),
            }
        )
    if subs:
        out["subresources"] = subs
    return out


def aggregated(catalog: Catalog, *, core: bool, version: str = "v2") -> dict[str, Any]:
    items = []
    for group, versions in catalog.groups().items():
        if (group == "") != core:
            continue
        vs = []
        for v in versions:
            vs.append(
                {
                    "version": v,
                    "resources": [_v2_resource(r) for r in catalog.in_group_version(group, v)],
                    "freshness": "Current",
                }
            )
        items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": vs})
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }
