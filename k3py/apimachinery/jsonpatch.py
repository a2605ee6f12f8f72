"""JSON patch (RFC 6902) with the behaviour and error texts of evanphx/json-patch v4.

kube-apiserver 1.32 applies ``application/json-patch+json`` with
``gopkg.in/evanphx/json-patch.v4`` and wraps failures like this: a body that is not a
list of operations is a 400 BadRequest; an operation that cannot be applied (a failed
``test``, a missing path, a bad index, an unknown ``op``) is a 422 whose message is
``the server rejected our request due to an error in our request`` and whose single
cause carries the library's message, e.g. ``testing value /metadata/finalizers failed:
test failed``.  kopf relies on that 422 to guard finalizer edits.

The library's quirks are kept on purpose: ``replace`` on a missing object key adds it,
negative array indices count from the end, paths are split on ``/`` without requiring a
leading slash, and a missing key tests equal to ``null``.  Inputs are never mutated.
"""

from __future__ import annotations

from typing import Any

from k3py.apimachinery.gofmt import go_quote
from k3py.apimachinery.jsoncopy import clone
from k3py.server.errors import APIError, bad_request

MAX_OPERATIONS = 10000
TEST_FAILED = "test failed"
MISSING = "missing value"
INVALID_INDEX = "invalid index referenced"


class PatchError(Exception):
    """An operation that could not be applied; ``str()`` is the library's message."""


def rejected(message: str) -> APIError:
    """apimachinery's ``NewGenericServerResponse(422, ...)`` carrying ``message`` as cause."""
    return APIError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        details={"causes": [{"reason": "UnexpectedServerResponse", "message": message}]},
    )


def _wrap(message: str, cause: str) -> PatchError:
    return PatchError(f"{message}: {cause}")


def _decode_key(key: str) -> str:
    return key.replace("~1", "/").replace("~0", "~")


def _atoi(key: str) -> int:
    """Go's ``strconv.Atoi``."""
    body = key[1:] if key[:1] in ("+", "-") else key
    if not body or not body.isascii() or not body.isdigit():
        raise PatchError(f"strconv.Atoi: parsing {go_quote(key)}: invalid syntax")
    n = int(key)
    if not -(2**63) <= n < 2**63:
        raise PatchError(f"strconv.Atoi: parsing {go_quote(key)}: value out of range")
    return n


def _index(container: list[Any], key: str, *, extra: int = 0) -> int:
    idx = _atoi(key)
    size = len(container) + extra
    if idx >= size or idx < -size:
        raise _wrap(f"Unable to access invalid index: {idx}", INVALID_INDEX)
    return idx + size if idx < 0 else idx


def _find(doc: Any, path: str) -> tuple[Any, str] | None:
    """The container holding the last path segment, and that segment (findObject)."""
    parts = path.split("/")
    if len(parts) < 2:
        return None
    cur = doc
    for part in parts[1:-1]:
        try:
            nxt = _get(cur, _decode_key(part))
        except PatchError:
            return None
        if not isinstance(nxt, (dict, list)):
            return None
        cur = nxt
    return cur, _decode_key(parts[-1])


def _get(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key)
    return container[_index(container, key)]


def _has(container: Any, key: str) -> bool:
    if isinstance(container, dict):
        return key in container and container[key] is not None
    return True


def _add(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    try:
        idx = _atoi(key)
    except PatchError as e:
        raise _wrap(f"value was not a proper array index: '{key}'", str(e)) from None
    size = len(container) + 1
    if idx >= size or idx < -size:
        raise _wrap(f"Unable to access invalid index: {idx}", INVALID_INDEX)
    container.insert(idx + size if idx < 0 else idx, value)


def _remove(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise _wrap(f"Unable to remove nonexistent key: {key}", MISSING)
        del container[key]
        return
    idx = _atoi(key)
    if idx >= len(container) or idx < -len(container):
        raise _wrap(f"Unable to access invalid index: {idx}", INVALID_INDEX)
    del container[idx]


def _set(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    else:
        container[_index(container, key)] = value


def _same(a: Any, b: Any) -> bool:
    """Structural equality as the library sees it: numbers compare by their JSON text."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _path_of(op: dict[str, Any], field: str) -> str:
    value = op.get(field)
    if not isinstance(value, str):
        raise PatchError("")
    return value


class _Applier:
    def __init__(self, doc: Any) -> None:
        self.doc = doc

    def op_add(self, op: dict[str, Any]) -> None:
        try:
            path = _path_of(op, "path")
        except PatchError:
            raise _wrap("add operation failed to decode path", MISSING) from None
        found = _find(self.doc, path)
        if found is None:
            raise _wrap(f'add operation does not apply: doc is missing path: "{path}"', MISSING)
        try:
            _add(found[0], found[1], clone(op.get("value")))
        except PatchError as e:
            raise _wrap(f"error in add for path: '{path}'", str(e)) from None

    def op_remove(self, op: dict[str, Any]) -> None:
        try:
            path = _path_of(op, "path")
        except PatchError:
            raise _wrap("remove operation failed to decode path", MISSING) from None
        found = _find(self.doc, path)
        if found is None:
            raise _wrap(f'remove operation does not apply: doc is missing path: "{path}"', MISSING)
        try:
            _remove(*found)
        except PatchError as e:
            raise _wrap(f"error in remove for path: '{path}'", str(e)) from None

    def op_replace(self, op: dict[str, Any]) -> None:
        try:
            path = _path_of(op, "path")
        except PatchError:
            raise _wrap("replace operation failed to decode path", MISSING) from None
        value = clone(op.get("value"))
        if path == "":
            if not isinstance(value, (dict, list)):
                raise PatchError("replace operation value must be object or array")
            self.doc = value
            return
        found = _find(self.doc, path)
        if found is None:
            raise _wrap(f"replace operation does not apply: doc is missing path: {path}", MISSING)
        container, key = found
        try:
            _get(container, key)
        except PatchError:
            raise _wrap(
                f"replace operation does not apply: doc is missing key: {path}", MISSING
            ) from None
        _set(container, key, value)

    def op_move(self, op: dict[str, Any]) -> None:
        try:
            src = _path_of(op, "from")
        except PatchError:
            raise _wrap("move operation failed to decode from", MISSING) from None
        found = _find(self.doc, src)
        if found is None:
            raise _wrap(f"move operation does not apply: doc is missing from path: {src}", MISSING)
        container, key = found
        try:
            value = _get(container, key)
            _remove(container, key)
        except PatchError as e:
            raise _wrap(f"error in move for path: '{key}'", str(e)) from None
        try:
            path = _path_of(op, "path")
        except PatchError:
            raise _wrap("move operation failed to decode path", MISSING) from None
        found = _find(self.doc, path)
        if found is None:
            raise _wrap(
                f"move operation does not apply: doc is missing destination path: {path}", MISSING
            )
        try:
            _add(found[0], found[1], value)
        except PatchError as e:
            raise _wrap(f"error in move for path: '{path}'", str(e)) from None

    def op_copy(self, op: dict[str, Any]) -> None:
        try:
            src = _path_of(op, "from")
        except PatchError:
            raise _wrap("copy operation failed to decode from", MISSING) from None
        found = _find(self.doc, src)
        if found is None:
            raise _wrap(f"copy operation does not apply: doc is missing from path: {src}", MISSING)
        try:
            value = _get(*found)
        except PatchError as e:
            raise _wrap(f"error in copy for from: '{src}'", str(e)) from None
        try:
            path = _path_of(op, "path")
        except PatchError:
            raise _wrap("copy operation failed to decode path", MISSING) from None
        found = _find(self.doc, path)
        if found is None:
            raise _wrap(
                f"copy operation does not apply: doc is missing destination path: {path}", MISSING
            )
        try:
            _add(found[0], found[1], clone(value))
        except PatchError as e:
            raise _wrap("error while adding value during copy", str(e)) from None

    def op_test(self, op: dict[str, Any]) -> None:
        try:
            path = _path_of(op, "path")
        except PatchError:
            raise _wrap("test operation failed to decode path", MISSING) from None
        expected = op.get("value")
        if path == "":
            if not _same(self.doc, expected):
                raise _wrap(f"testing value {path} failed", TEST_FAILED)
            return
        found = _find(self.doc, path)
        if found is None:
            raise _wrap(f"test operation does not apply: is missing path: {path}", MISSING)
        try:
            actual = _get(*found)
        except PatchError as e:
            raise _wrap(f"error in test for path: '{path}'", str(e)) from None
        if actual is None or expected is None:
            if actual is None and expected is None:
                return
            raise _wrap(f"testing value {path} failed", TEST_FAILED)
        if not _same(actual, expected):
            raise _wrap(f"testing value {path} failed", TEST_FAILED)


def _kind(op: Any) -> str:
    kind = op.get("op") if isinstance(op, dict) else None
    return kind if isinstance(kind, str) else "unknown"


def validate_operations(patch: Any) -> list[dict[str, Any]]:
    """The body must decode as a list of objects (400 otherwise); at most 10000 ops (413)."""
    if patch is None:
        return []
    if not isinstance(patch, list):
        what = "object" if isinstance(patch, dict) else json_kind(patch)
        raise bad_request(f"json: cannot unmarshal {what} into Go value of type jsonpatch.Patch")
    for op in patch:
        if not isinstance(op, dict) and op is not None:
            raise bad_request(
                f"json: cannot unmarshal {json_kind(op)} into Go value of type jsonpatch.Operation"
            )
    if len(patch) > MAX_OPERATIONS:
        raise APIError(
            413,
            "RequestEntityTooLarge",
            f"Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_OPERATIONS}, got {len(patch)}",
        )
    return [op or {} for op in patch]


def json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def apply_operations(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Apply validated operations to a copy of ``doc``; raises PatchError."""
    applier = _Applier(clone(doc))
    for op in ops:
        kind = _kind(op)
        handler = getattr(applier, f"op_{kind}", None) if kind in _OPS else None
        if handler is None:
            raise PatchError(f"Unexpected kind: {kind}")
        handler(op)
    return applier.doc


_OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def apply_json_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 6902 patch (decoded JSON) as kube-apiserver does: 400, 413 or 422."""
    ops = validate_operations(patch)
    try:
        return apply_operations(doc, ops)
    except PatchError as e:
        raise rejected(str(e)) from None


apply_patch = apply_json_patch
