"""JSON merge patch (RFC 7386) as evanphx/json-patch v4's ``MergePatch`` applies it.

``null`` deletes a key; objects merge recursively; anything else replaces.  Like the
library, values copied in from the patch lose their ``null`` members at every depth
(inside arrays too), and a patch that is ``null`` or not JSON is a 400
``Invalid JSON Patch``.  A patch that is an array replaces the whole document.  Inputs
are never mutated.
"""

from __future__ import annotations

from typing import Any

from k3py.apimachinery.jsoncopy import clone
from k3py.server.errors import bad_request

BAD_PATCH = "Invalid JSON Patch"


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


def _merge(current: Any, patch: Any) -> Any:
    if not isinstance(current, dict):
        return _prune_nulls(patch)
    if not isinstance(patch, dict):
        return clone(patch)
    return _merge_docs(current, patch)


def _merge_docs(doc: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif out.get(key) is None:
            out[key] = _prune_nulls(value)
        else:
            out[key] = _merge(out[key], value)
    return out


def merge_patch(doc: Any, patch: Any) -> Any:
    """Apply ``patch`` to ``doc`` and return the result (a new object)."""
    if patch is None or not isinstance(patch, (dict, list)):
        raise bad_request(BAD_PATCH)
    if isinstance(patch, list):
        return _prune_nulls(patch)
    if not isinstance(doc, dict):
        return _prune_nulls(patch)
    return clone(_merge_docs(doc, patch))


def create_merge_patch(original: dict[str, Any], modified: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``original`` into ``modified`` (for tests and tools)."""
    patch: dict[str, Any] = {}
    for key in original:
        if key not in modified:
            patch[key] = None
    for key, value in modified.items():
        old = original.get(key, _MISSING)
        if isinstance(old, dict) and isinstance(value, dict):
            sub = create_merge_patch(old, value)
            if sub:
                patch[key] = sub
        elif old is _MISSING or old != value or type(old) is not type(value):
            patch[key] = clone(value)
    return patch


_MISSING: Any = object()
