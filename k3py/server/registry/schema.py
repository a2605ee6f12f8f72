"""The OpenAPI definitions of the built-in kinds, as upstream publishes them for v1.32.

We do not type the field structure of Kubernetes objects by hand: the
``kubernetes-validate`` package ships the JSON-schema form of upstream's
OpenAPI definitions (descriptions, required fields, list types, patch merge keys
and strategies, group-version-kind extensions).  This module loads that file once
and answers questions about it.  In that form nullable fields are written as
``"type": ["string", "null"]`` and references as ``#/$defs/<name>``; helpers below
hide both.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import orjson

SCHEMA_VERSION = "v1.32.0-local"
_REF_PREFIX = "#/$defs/"

Schema = dict[str, Any]


@functools.cache
def definitions() -> dict[str, Schema]:
    """All definitions keyed by their upstream name (``io.k8s.api.core.v1.Pod``)."""
    path = resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/{SCHEMA_VERSION}/_definitions.json"
    )
    data = orjson.loads(path.read_bytes())
    defs: dict[str, Schema] = data["$defs"]
    return defs


@functools.cache
def gvk_index() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> definition name, for every kind that declares one."""
    index: dict[tuple[str, str, str], str] = {}
    for name, schema in definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            key = (gvk.get("group", ""), gvk["version"], gvk["kind"])
            # Several definitions may claim the same GVK (e.g. DeleteOptions); the
            # one whose name ends in the kind and lives under io.k8s.api wins.
            if key not in index or name.endswith("." + gvk["kind"]) and "meta.v1" not in name:
                index[key] = name
    return index


def definition_for(group: str, version: str, kind: str) -> str | None:
    return gvk_index().get((group, version, kind))


def ref_name(schema: Schema) -> str | None:
    """The definition a ``$ref`` schema points at, or None."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF_PREFIX):
        return ref[len(_REF_PREFIX) :]
    return None


def resolve(schema: Schema) -> Schema:
    """Follow ``$ref`` (and a lone ``allOf: [$ref]``) to the schema it names."""
    if "$ref" not in schema and "allOf" not in schema:
        return schema  # the common case, on every node of every request walk
    seen = 0
    while True:
        name = ref_name(schema)
        if name is None and "allOf" in schema and len(schema["allOf"]) == 1:
            name = ref_name(schema["allOf"][0])
        if name is None:
            return schema
        schema = definitions()[name]
        seen += 1
        if seen > 32:
            raise ValueError("reference loop in schema definitions")


def types_of(schema: Schema) -> set[str]:
    """The JSON types a schema allows, without ``null``."""
    t = schema.get("type")
    if t is None:
        return set()
    if isinstance(t, str):
        return {t} - {"null"}
    return set(t) - {"null"}


def field(schema: Schema, name: str) -> Schema | None:
    """The (resolved) schema of property ``name`` of an object schema, or None."""
    props = resolve(schema).get("properties") or {}
    sub = props.get(name)
    return resolve(sub) if sub is not None else None


def raw_field(schema: Schema, name: str) -> Schema | None:
    """The unresolved property schema: it carries the x-kubernetes-patch-* extensions."""
    props = resolve(schema).get("properties") or {}
    sub: Schema | None = props.get(name)
    return sub


def items(schema: Schema) -> Schema | None:
    """The (resolved) item schema of an array schema."""
    it = schema.get("items")
    return resolve(it) if isinstance(it, dict) else None


def additional(schema: Schema) -> Schema | None:
    """The (resolved) value schema of a map (``additionalProperties``)."""
    ap = resolve(schema).get("additionalProperties")
    return resolve(ap) if isinstance(ap, dict) else None


def patch_info(prop: Schema) -> tuple[str | None, frozenset[str]]:
    """(merge key, strategies) declared on a property for strategic merge patch."""
    key = prop.get("x-kubernetes-patch-merge-key")
    strategy = prop.get("x-kubernetes-patch-strategy") or ""
    return key, frozenset(s for s in strategy.split(",") if s)


def schema_for_kind(group: str, version: str, kind: str) -> Schema | None:
    name = definition_for(group, version, kind)
    return definitions()[name] if name else None
