"""Query parameters as the apiserver reads them (Go's ParseBool, integer checks)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from k3py.server import errors

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_INT = re.compile(r"[+-]?[0-9]+")


def parse_bool(query: Mapping[str, str], name: str, default: bool = False) -> bool:
    v = query.get(name)
    if v is None:
        return default
    if v == "" or v in _TRUE:
        return True if v != "" else default
    if v in _FALSE:
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{v}": invalid syntax')


def parse_int(query: Mapping[str, str], name: str, default: int | None = None) -> int | None:
    v = query.get(name)
    if v is None or v == "":
        return default
    if not _INT.fullmatch(v):  # Python's int() also takes "1_0" and " 1 "; Go's does not
        raise errors.bad_request(f'strconv.ParseInt: parsing "{v}": invalid syntax')
    n = int(v)
    if not -(2**63) <= n < 2**63:
        raise errors.bad_request(f'strconv.ParseInt: parsing "{v}": value out of range')
    return n


def dry_run(query: Mapping[str, str]) -> bool:
    getall = getattr(query, "getall", None)
    vals = list(getall("dryRun", [])) if getall else ([query["dryRun"]] if "dryRun" in query else [])
    for v in vals:
        if v != "All":
            raise errors.bad_request(f'Invalid dryRun value "{v}": supported values: "All"')
    return bool(vals)


def field_validation(query: Mapping[str, str]) -> str:
    v = query.get("fieldValidation", "")
    if v == "":
        return "Warn"
    if v not in ("Ignore", "Warn", "Strict"):
        raise errors.bad_request(
            f"fieldValidation parameter unsupported: {v}. Supported values are Ignore, Warn, Strict"
        )
    return v


def field_manager(query: Mapping[str, str], user_agent: str, *, required: bool = False) -> str:
    v = query.get("fieldManager", "")
    if len(v) > 128:
        raise errors.invalid(
            "PatchOptions", "", [{"reason": "FieldValueTooLong", "message": "Too long: may not be more than 128 bytes", "field": "fieldManager"}], "meta.k8s.io"
        )
    if v:
        return v
    if required:
        raise errors.invalid(
            "PatchOptions", "", [{"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}], "meta.k8s.io"
        )
    # Upstream: the user agent up to the first '/'.
    ua = user_agent.split("/", 1)[0] if user_agent else "unknown"
    return ua[:128] or "unknown"
