"""Field paths and field errors worded as apimachinery's ``util/validation/field``.

A :class:`Path` renders like Go's ``field.Path`` (``spec.containers[0].image``,
``metadata.labels[app]``).  Each error helper returns a :class:`Cause` whose
``message`` is Go's ``Error.ErrorBody()``: the error type's text, the bad value
printed the way Go's ``%q``/``%v``/``%#v`` would print it, and the detail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from k3py.server.errors import Cause


class Path(str):
    """A field path; an immutable string with Go's ``Child``/``Index``/``Key``."""

    __slots__ = ()

    def child(self, *names: str) -> Path:
        if len(names) == 1:  # the usual case, on every field validation visits
            return Path(f"{self}.{names[0]}" if self else names[0])
        text = str(self)
        for name in names:
            text = f"{text}.{name}" if text else name
        return Path(text)

    def at(self, i: int) -> Path:
        return Path(f"{self}[{i}]")

    def key(self, k: str) -> Path:
        return Path(f"{self}[{k}]")


ROOT = Path("")


class GoValue:
    """A bad value already rendered the way Go would print it (``%#v`` of a struct...)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\a": "\\a"}
_ESCAPES |= {"\b": "\\b", "\f": "\\f", "\v": "\\v"}


def go_quote(s: str) -> str:
    """``strconv.Quote``: double quotes, Go escapes, printable Unicode kept."""
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def go_float(v: float) -> str:
    if v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    return repr(v)


def go_map(m: Mapping[str, Any] | None, type_name: str = "map[string]string") -> GoValue:
    """``%#v`` of a Go map: keys sorted, ``{"k":"v", ...}``; nil prints ``(nil)``."""
    if m is None:
        return GoValue(f"{type_name}(nil)")
    inner = ", ".join(f"{go_quote(str(k))}:{describe(m[k])}" for k in sorted(m))
    return GoValue(f"{type_name}{{{inner}}}")


def go_slice(items: Iterable[Any] | None, type_name: str = "[]string") -> GoValue:
    if items is None:
        return GoValue(f"{type_name}(nil)")
    return GoValue(f"{type_name}{{{', '.join(describe(i) for i in items)}}}")


def describe(value: Any) -> str:
    """The bad value as ``field.Error.ErrorBody`` prints it."""
    if value is None:
        return "null"
    if isinstance(value, GoValue):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, Mapping):
        if all(isinstance(v, str) for v in value.values()):
            return go_map(value).text
        return go_map(value, "map[string]interface {}").text
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return go_slice(value).text
        return go_slice(value, "[]interface {}").text
    return str(value)


def _cause(reason: str, path: str, message: str) -> Cause:
    return {"reason": reason, "message": message, "field": str(path)}


def _with_detail(body: str, detail: str) -> str:
    return f"{body}: {detail}" if detail else body


def required(path: str, detail: str = "") -> Cause:
    return _cause("FieldValueRequired", path, _with_detail("Required value", detail))


def forbidden(path: str, detail: str) -> Cause:
    return _cause("FieldValueForbidden", path, _with_detail("Forbidden", detail))


def too_long(path: str, max_bytes: int) -> Cause:
    unit = "byte" if max_bytes == 1 else "bytes"
    return _cause("FieldValueTooLong", path, f"Too long: may not be more than {max_bytes} {unit}")


def too_many(path: str, actual: int, maximum: int) -> Cause:
    msg = f"Too many: {actual}: must have at most {maximum} items"
    return _cause("FieldValueTooMany", path, msg)


def invalid(path: str, value: Any, detail: str) -> Cause:
    body = f"Invalid value: {describe(value)}"
    return _cause("FieldValueInvalid", path, _with_detail(body, detail))


def type_invalid(path: str, value: Any, detail: str) -> Cause:
    body = f"Invalid value: {describe(value)}"
    return _cause("FieldValueTypeInvalid", path, _with_detail(body, detail))


def not_supported(path: str, value: Any, supported: Iterable[str]) -> Cause:
    values = ", ".join(go_quote(v) for v in supported)
    detail = f"supported values: {values}" if values else ""
    body = f"Unsupported value: {describe(value)}"
    return _cause("FieldValueNotSupported", path, _with_detail(body, detail))


def duplicate(path: str, value: Any) -> Cause:
    return _cause("FieldValueDuplicate", path, f"Duplicate value: {describe(value)}")


def not_found(path: str, value: Any, detail: str = "") -> Cause:
    return _cause("FieldValueNotFound", path, _with_detail(f"Not found: {describe(value)}", detail))


def internal(path: str, detail: str) -> Cause:
    return _cause("InternalError", path, _with_detail("Internal error", detail))


def dedupe(causes: list[Cause]) -> list[Cause]:
    """Drop repeated errors, as ``ErrorList.ToAggregate`` does (first one wins)."""
    seen: set[tuple[str, str]] = set()
    out: list[Cause] = []
    for c in causes:
        key = (c.get("field", ""), c.get("message", ""))
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
