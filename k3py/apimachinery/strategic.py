"""Strategic merge patch, applied server-side as kube-apiserver 1.32 applies it.

This is a transcription of apimachinery's ``strategicpatch.StrategicMergeMapPatch`` with
the server's options (parallel deletion lists are merged, unmatched nulls ignored).  The
per-field metadata Go reads from struct tags comes from the OpenAPI extensions of our
schema: ``x-kubernetes-patch-strategy`` (``merge``, ``retainKeys``, ``replace``) and
``x-kubernetes-patch-merge-key``.  Where the schema says nothing (RawExtension, free-form
JSON) maps merge recursively and lists are replaced, as a JSON merge patch would.

Directives: ``$patch: replace|delete`` on maps, ``$patch: delete|replace`` as list
elements, ``$retainKeys``, ``$setElementOrder/<list>`` and
``$deleteFromPrimitiveList/<list>``.  Merged lists are ordered the way upstream orders
them: items named in the patch in patch order, interleaved with the server-only items in
their live order (``mergeSortedSlice``); new items therefore come first.

Errors keep upstream's texts and statuses: malformed directives are 400, lists of lists
422, and the rest (``map: map[image:nginx] does not contain declared merge key: name``)
surface as 500 with an empty reason, exactly what ``kubectl patch`` users see as
``Error from server: ...``.
"""

from __future__ import annotations

from typing import Any

import orjson

from k3py.apimachinery.gofmt import go_type_name, go_value
from k3py.apimachinery.jsoncopy import clone
from k3py.apimachinery.jsonpatch import json_kind, rejected
from k3py.server.errors import APIError, bad_request
from k3py.server.registry import schema as sch

Schema = dict[str, Any]

DIRECTIVE = "$patch"
DELETE, REPLACE, MERGE = "delete", "replace", "merge"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

ERR_BAD_JSON_DOC = "invalid JSON document"
ERR_NO_LIST_OF_LISTS = "lists of lists are not supported"
ERR_BAD_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_BAD_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_BAD_SET_ELEMENT_ORDER = "invalid patch format of setElementOrder list"

_MAP_T, _SLICE_T = "map[string]interface {}", "[]interface {}"


class SMPError(Exception):
    def __init__(self, message: str, code: int = 500) -> None:
        super().__init__(message)
        self.code = code


def _no_merge_key(m: Any, key: str) -> SMPError:
    return SMPError(f"map: {go_value(m)} does not contain declared merge key: {key}")


def _bad_arg_type(expected: str, actual: Any) -> SMPError:
    got = "%!s(<nil>)" if actual is None else go_type_name(actual)
    return SMPError(f"expected a {expected}, but received a {got}")


def _bad_patch_type(directive: Any, m: Any) -> SMPError:
    shown = (
        directive
        if isinstance(directive, str)
        else f"%!s({go_type_name(directive)}={go_value(directive)})"
    )
    return SMPError(f"unknown patch type: {shown} in map: {go_value(m)}")


def _go_key(v: Any) -> Any:
    """A hashable stand-in for Go's interface equality (types must match exactly)."""
    if isinstance(v, (dict, list)):
        return ("json", repr(v))
    return (type(v).__name__, v)


def _go_eq(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


# --- schema lookups -----------------------------------------------------------------


class _Meta:
    __slots__ = ("schema", "merge_key", "strategy")

    def __init__(self, schema: Schema | None, merge_key: str, strategy: str) -> None:
        self.schema, self.merge_key, self.strategy = schema, merge_key, strategy


def _strategy(strategies: frozenset[str]) -> str:
    """extractRetainKeysPatchStrategy: the strategy other than retainKeys."""
    others = strategies - {"retainKeys"}
    if len(strategies) > 2 or (len(strategies) == 2 and len(others) != 1):
        raise SMPError(f"unexpected patch strategy: [{' '.join(sorted(strategies))}]")
    return next(iter(others)) if others else ""


def _lookup(schema: Schema | None, key: str, *, slice_: bool) -> _Meta:
    if schema is None:
        return _Meta(None, "", "")
    raw = sch.raw_field(schema, key)
    if raw is None:
        return _Meta(sch.additional(schema), "", "")
    merge_key, strategies = sch.patch_info(raw)
    resolved = sch.resolve(raw)
    sub = sch.items(resolved) if slice_ else resolved
    return _Meta(sub, merge_key or "", _strategy(strategies))


# --- directives ---------------------------------------------------------------------


def _remove_directives(obj: Any) -> tuple[Any, bool]:
    if isinstance(obj, dict):
        if DIRECTIVE in obj:
            return None, False
        for k in list(obj):
            v, keep = _remove_directives(obj[k])
            if keep:
                obj[k] = v
            else:
                del obj[k]
        return obj, True
    if isinstance(obj, list):
        out = []
        for v in obj:
            nv, keep = _remove_directives(v)
            if keep:
                out.append(nv)
        return out, True
    return obj, True


def _discard_nulls(obj: Any) -> None:
    if isinstance(obj, dict):
        for k in [k for k, v in obj.items() if v is None]:
            del obj[k]
        for v in obj.values():
            _discard_nulls(v)
    elif isinstance(obj, list):
        for v in obj:
            _discard_nulls(v)


def _extract_key(key: str, prefix: str) -> str:
    parts = key.split("/", 1)
    if len(parts) <= 1 or parts[0] != prefix:
        if prefix == DELETE_FROM_PRIMITIVE_LIST:
            raise SMPError(ERR_BAD_PRIMITIVE_LIST, 400)
        raise SMPError(ERR_BAD_SET_ELEMENT_ORDER, 400)
    return parts[1]


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise SMPError(ERR_BAD_RETAIN_KEYS, 400)
    keep = {v for v in retain if isinstance(v, str)}
    for k, v in patch.items():
        if v is None or k.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if k not in keep:
            raise SMPError(ERR_BAD_RETAIN_KEYS, 400)
    for k in [k for k in original if k not in keep]:
        del original[k]


# --- ordering -----------------------------------------------------------------------


def _element_kind(*lists: list[Any] | None) -> str:
    """sliceElementType: 'map' or 'scalar'; errors on lists of lists or mixed types."""
    first: str | None = None
    for lst in lists:
        for v in lst or ():
            t = go_type_name(v)
            if first is None:
                if isinstance(v, list):
                    raise SMPError(ERR_NO_LIST_OF_LISTS, 422)
                first = t
            elif t != first:
                shown = "[" + " ".join(go_value(x or []) for x in lists) + "]"
                raise SMPError(f"list element types are not identical: {shown}")
    if first is None:
        raise SMPError("no elements in any of the given slices")
    return "map" if first == _MAP_T else "scalar"


def _value_of(item: Any, *, merge_key: str, kind: str) -> Any:
    if kind == "map":
        return item.get(merge_key) if isinstance(item, dict) else None
    return item


def _index(items: list[Any], value: Any, *, merge_key: str, kind: str) -> int:
    wanted = _value_of(value, merge_key=merge_key, kind=kind)
    for i, v in enumerate(items):
        if _go_eq(_value_of(v, merge_key=merge_key, kind=kind), wanted):
            return i
    return -1


def _validate_merge_key(merge_key: str, *lists: list[Any]) -> None:
    for lst in lists:
        for item in lst:
            if not isinstance(item, dict):
                raise _bad_arg_type(_MAP_T, item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)


def _split_deletions(items: list[Any]) -> tuple[list[Any], list[Any]]:
    keep: list[Any] = []
    delete: list[Any] = []
    for v in items:
        if not isinstance(v, dict):
            raise _bad_arg_type(_MAP_T, v)
        (delete if v.get(DIRECTIVE) == DELETE else keep).append(v)
    return keep, delete


def _sort_by(items: list[Any], *, order: list[Any], merge_key: str, kind: str) -> list[Any]:
    to_delete: list[Any] = []
    if kind == "map":
        _validate_merge_key(merge_key, items, order)
        items, to_delete = _split_deletions(items)

    def position(item: Any) -> int:
        i = _index(order, item, merge_key=merge_key, kind=kind)
        return i if i >= 0 else len(order)

    return sorted(items, key=position) + to_delete


def _merge_sorted(
    left: list[Any], right: list[Any], *, order: list[Any], merge_key: str, kind: str
) -> list[Any]:
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index(order, left[i], merge_key=merge_key, kind=kind)
            ri = _index(order, right[j], merge_key=merge_key, kind=kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    *,
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    kind: str,
) -> list[Any]:
    patch_items = _sort_by(patch_items, order=patch_order, merge_key=merge_key, kind=kind)
    server_only = _sort_by(server_only, order=server_order, merge_key=merge_key, kind=kind)
    return _merge_sorted(
        server_only, patch_items, order=server_order, merge_key=merge_key, kind=kind
    )


def _find_map(items: list[Any], key: str, value: Any) -> int:
    for i, v in enumerate(items):
        if not isinstance(v, dict):
            raise SMPError(f"value for key {i} is not a map")
        if key in v and _go_eq(v[key], value):
            return i
    return -1


def _partition_primitives(merged: list[Any], by: list[Any]) -> tuple[list[Any], list[Any]]:
    present = {_go_key(v) for v in by}
    in_patch = [v for v in merged if _go_key(v) in present]
    server_only = [v for v in merged if _go_key(v) not in present]
    return in_patch, server_only


def _partition_maps(
    merged: list[Any], by: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    in_patch: list[Any] = []
    server_only: list[Any] = []
    for v in merged:
        if not isinstance(v, dict):
            raise _bad_arg_type(_MAP_T, v)
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        (in_patch if _find_map(by, merge_key, v[merge_key]) >= 0 else server_only).append(v)
    return in_patch, server_only


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    if not merge_key:
        return _partition_primitives(merged, by)
    return _partition_maps(merged, by, merge_key)


# --- merging ------------------------------------------------------------------------


def _merge_special_elements(
    original: list[Any], patch: list[Any], merge_key: str
) -> tuple[list[Any], list[Any]]:
    plain: list[Any] = []
    replace = False
    for v in patch:
        if DIRECTIVE not in v:
            plain.append(v)
            continue
        directive = v[DIRECTIVE]
        if directive == DELETE:
            if merge_key not in v:
                raise _no_merge_key(v, merge_key)
            while (i := _find_map(original, merge_key, v[merge_key])) >= 0:
                original = original[:i] + original[i + 1 :]
        elif directive == REPLACE:
            replace = True
        elif directive == MERGE:
            raise SMPError("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(directive, v)
    if replace:
        return plain, []
    return original, plain


def _merge_plain_elements(
    original: list[Any], patch: list[Any], merge_key: str, schema: Schema | None
) -> list[Any]:
    merged = list(original)
    for v in patch:
        if merge_key not in v:
            raise _no_merge_key(v, merge_key)
        i = _find_map(merged, merge_key, v[merge_key])
        if i >= 0:
            merged[i] = _merge_map(merged[i], v, schema)
        else:
            _discard_nulls(v)
            merged.append(v)
    return merged


def _unique(items: list[Any]) -> list[Any]:
    seen: set[Any] = set()
    out = []
    for v in items:
        k = _go_key(v)
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _merge_slice(
    original: list[Any], patch: list[Any], meta: _Meta, *, delete_list: bool
) -> list[Any]:
    if not original and not patch:
        return original
    kind = _element_kind(original, patch)
    merge_key = meta.merge_key
    if kind != "map":
        if delete_list:
            gone = {_go_key(v) for v in patch}
            return [v for v in original if _go_key(v) not in gone]
        merged = _unique(original + patch)
    else:
        if not merge_key:
            raise SMPError("cannot merge lists without merge key")
        original, patch = _merge_special_elements(original, patch, merge_key)
        merged = _merge_plain_elements(original, patch, merge_key, meta.schema)
    in_patch, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(
        in_patch,
        server_only,
        patch_order=patch,
        server_order=original,
        merge_key=merge_key,
        kind=kind,
    )


def _merge_slice_field(original: Any, patch: Any, meta: _Meta, *, delete_list: bool) -> list[Any]:
    if not isinstance(original, list):
        raise _bad_arg_type(_SLICE_T, original)
    if not isinstance(patch, list):
        raise _bad_arg_type(_SLICE_T, patch)
    if meta.strategy == MERGE or delete_list:
        return _merge_slice(original, patch, meta, delete_list=delete_list)
    return patch


def _validate_set_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
    if not order or not patch_list:
        return
    items = _split_deletions(patch_list)[0] if merge_key else patch_list
    pi = si = 0
    while pi < len(items) and si < len(order):
        if isinstance(items[pi], dict) and DIRECTIVE in items[pi]:
            pi += 1
            continue
        if _merge_key_equal(items[pi], order[si], merge_key):
            pi += 1
        si += 1
    if pi < len(items) and si >= len(order):
        raise SMPError(
            f"The order in patch list:\n{go_value(patch_list)}\n doesn't match "
            f"{SET_ELEMENT_ORDER} list:\n{go_value(order)}\n"
        )


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _go_eq(left, right)
    for side in (left, right):
        if not isinstance(side, dict):
            raise _bad_arg_type(_MAP_T, side)
        if merge_key not in side:
            raise _no_merge_key(side, merge_key)
    return _go_eq(left[merge_key], right[merge_key])


def _aliased_server_order(original: list[Any], patch: list[Any], merge_key: str) -> list[Any]:
    """The live list as upstream sees it after merging: Go's slices share memory.

    Deleting items shifts the rest left inside the original array and new items are
    appended into the room that frees, so the "live order" upstream sorts by is the
    original array, seen at its original length, after those in-place writes.
    """
    backing = list(original)
    size = length = len(backing)
    plain: list[Any] = []
    for v in patch:
        directive = v.get(DIRECTIVE) if isinstance(v, dict) else None
        if directive == DELETE:
            while (i := _find_map(backing[:length], merge_key, v.get(merge_key))) >= 0:
                backing[i : length - 1] = backing[i + 1 : length]
                length -= 1
        elif directive == REPLACE:
            return backing[:size]
        elif directive is None:
            plain.append(v)
    grown: list[Any] = []
    for v in plain:
        if _find_map(backing[:length] + grown, merge_key, v.get(merge_key)) >= 0:
            continue
        if length < size:
            backing[length] = v
            length += 1
        else:
            grown.append(v)
    return backing[:size]


def _apply_set_element_order(
    original: dict[str, Any], patch: dict[str, Any], schema: Schema | None
) -> None:
    for key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(key)
        if not isinstance(order, list):
            raise _bad_arg_type(_SLICE_T, order)
        field = _extract_key(key, SET_ELEMENT_ORDER)
        found_original, found_patch = field in original, field in patch
        original_list: list[Any] = []
        patch_list: list[Any] = []
        if found_original:
            if not isinstance(original[field], list):
                raise _bad_arg_type(_SLICE_T, original[field])
            original_list = original[field]
        if found_patch:
            if not isinstance(patch[field], list):
                raise _bad_arg_type(_SLICE_T, patch[field])
            patch_list = patch[field]
        meta = _lookup(schema, field, slice_=True)
        _validate_set_order(patch_list, order, meta.merge_key)
        if found_original and not found_patch:
            merged = original_list
        elif found_patch and not found_original:
            merged = _remove_directives(patch_list)[0]
        elif found_original and found_patch:
            merged = _merge_slice_field(original_list, patch_list, meta, delete_list=False)
        else:
            continue
        in_patch, server_only = _partition(merged, order, meta.merge_key)
        kind = _element_kind(original_list, patch_list)
        server_order = original_list
        if found_original and found_patch and kind == "map" and meta.strategy == MERGE:
            server_order = _aliased_server_order(original_list, patch_list, meta.merge_key)
        original[field] = _normalize_order(
            in_patch,
            server_only,
            patch_order=order,
            server_order=server_order,
            merge_key=meta.merge_key,
            kind=kind,
        )
        patch.pop(field, None)


def _merge_map(
    original: dict[str, Any] | None, patch: dict[str, Any], schema: Schema | None
) -> dict[str, Any]:
    if DIRECTIVE in patch:
        directive = patch[DIRECTIVE]
        if directive == REPLACE:
            del patch[DIRECTIVE]
            return patch
        if directive == DELETE:
            return {}
        raise _bad_patch_type(directive, patch)
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _apply_set_element_order(original, patch, schema)
    for key, value in patch.items():
        delete_list = key.startswith(DELETE_FROM_PRIMITIVE_LIST)
        if delete_list:
            key = _extract_key(key, DELETE_FROM_PRIMITIVE_LIST)
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or go_type_name(original[key]) != go_type_name(value):
            if not delete_list:
                _discard_nulls(value)
                new, keep = _remove_directives(value)
                if keep:
                    original[key] = new
                else:
                    original.pop(key, None)
            continue
        current = original[key]
        if isinstance(current, dict):
            meta = _lookup(schema, key, slice_=False)
            original[key] = (
                value if meta.strategy == REPLACE else _merge_map(current, value, meta.schema)
            )
        elif isinstance(current, list):
            meta = _lookup(schema, key, slice_=True)
            original[key] = _merge_slice_field(current, value, meta, delete_list=delete_list)
        else:
            new, keep = _remove_directives(value)
            if keep:
                original[key] = new
            else:
                del original[key]
    return original


def _strip_directive_keys(obj: Any) -> Any:
    if isinstance(obj, dict):
        for k in [k for k in obj if _is_directive(k)]:
            del obj[k]
        for v in obj.values():
            _strip_directive_keys(v)
    elif isinstance(obj, list):
        for v in obj:
            _strip_directive_keys(v)
    return obj


def _to_api_error(err: SMPError) -> APIError:
    message = str(err)
    if err.code == 400:
        return bad_request(message)
    if err.code == 422:
        return rejected(message)
    return APIError(500, "", message)


def strategic_merge(original: dict[str, Any], patch: Any, schema: Schema | None) -> dict[str, Any]:
    """Apply a strategic merge patch to ``original`` (not mutated) and return the result.

    ``schema`` is the (resolved) definition of the object's kind; None merges without
    any per-field knowledge.
    """
    if patch is None:
        patch = {}
    if not isinstance(patch, dict):
        raise bad_request(
            f"json: cannot unmarshal {json_kind(patch)} "
            "into Go value of type map[string]interface {}"
        )
    # Stored objects almost never hold "$"-keys: look for them in C before walking.
    hidden = b'"$' in orjson.dumps(original)
    base = _protect(clone(original)) if hidden else clone(original)
    try:
        merged = _merge_map(base, clone(patch), schema)
    except SMPError as e:
        raise _to_api_error(e) from None
    merged = _strip_directive_keys(merged)
    return _unprotect(merged) if hidden else merged


_HIDDEN = "\x00"  # prefix no JSON key from a client carries through the merge


def _is_directive(k: str) -> bool:
    return (
        k == DIRECTIVE
        or k == RETAIN_KEYS
        or k.startswith((SET_ELEMENT_ORDER, DELETE_FROM_PRIMITIVE_LIST))
    )


def _protect(obj: Any) -> Any:
    """Keys of the *stored* object that look like directives (opaque data such as a
    ControllerRevision's ``data``) are data, not instructions: hide them from the merge."""
    if isinstance(obj, dict):
        for k in [k for k in obj if _is_directive(k)]:
            obj[_HIDDEN + k] = obj.pop(k)
        for v in obj.values():
            _protect(v)
    elif isinstance(obj, list):
        for v in obj:
            _protect(v)
    return obj


def _unprotect(obj: Any) -> Any:
    if isinstance(obj, dict):
        for k in [k for k in obj if k.startswith(_HIDDEN)]:
            obj[k[len(_HIDDEN):]] = obj.pop(k)
        for v in obj.values():
            _unprotect(v)
    elif isinstance(obj, list):
        for v in obj:
            _unprotect(v)
    return obj
