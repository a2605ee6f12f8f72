"""JSON type check of a built-in object against its OpenAPI schema.

Upstream's typed JSON decoder rejects a string where an integer belongs before any
validation runs.  We keep objects as plain dicts, so this pass does that check and
words the failures as the API server does for structural schemas
(``spec.replicas in body must be of type integer: "string"``).  Later validators
can then trust the JSON types they read.
"""

from __future__ import annotations

from typing import Any

from k3py.server.errors import Cause
from k3py.server.registry import schema as openapi

from .field import ROOT, Path, type_invalid


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _allowed(sch: openapi.Schema) -> set[str]:
    alternatives = sch.get("oneOf") or sch.get("anyOf")
    if isinstance(alternatives, list):
        found: set[str] = set()
        for alt in alternatives:
            if isinstance(alt, dict):
                found |= openapi.types_of(openapi.resolve(alt))
        return found
    return openapi.types_of(sch)


def _compatible(value: Any, actual: str, allowed: set[str]) -> bool:
    if actual in allowed:
        return True
    if actual == "integer" and "number" in allowed:
        return True
    return actual == "number" and "integer" in allowed and float(value).is_integer()


def _walk(value: Any, sch: openapi.Schema, path: Path, out: list[Cause]) -> None:
    if value is None:
        return
    sch = openapi.resolve(sch)
    allowed = _allowed(sch)
    actual = _json_type(value)
    if allowed and not _compatible(value, actual, allowed):
        where = str(path) or "body"
        expected = " or ".join(sorted(allowed))
        detail = f'{where} in body must be of type {expected}: "{actual}"'
        out.append(type_invalid(path, actual, detail))
        return
    if isinstance(value, dict):
        props = sch.get("properties") or {}
        extra = sch.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                _walk(item, props[key], path.child(key), out)
            elif isinstance(extra, dict):
                _walk(item, extra, path.key(key), out)
    elif isinstance(value, list):
        item_schema = sch.get("items")
        if isinstance(item_schema, dict):
            for i, item in enumerate(value):
                _walk(item, item_schema, path.at(i), out)


def version_of(obj: dict[str, Any]) -> str:
    api_version = obj.get("apiVersion")
    if isinstance(api_version, str) and api_version:
        return api_version.rsplit("/", 1)[-1]
    return "v1"


def check_types(group: str, kind: str, obj: dict[str, Any]) -> list[Cause]:
    """Type errors of ``obj`` against the schema of its apiVersion (none if unknown)."""
    sch = openapi.schema_for_kind(group, version_of(obj), kind)
    if sch is None:
        return []
    out: list[Cause] = []
    _walk(obj, sch, ROOT, out)
    return out
