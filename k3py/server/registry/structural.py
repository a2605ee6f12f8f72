"""CustomResourceDefinitions: schema rules, and what a CRD's schema does to custom objects.

A CRD version's ``openAPIV3Schema`` is used four ways, each mirroring an upstream
package of apiextensions-apiserver:

* :func:`check_structural` – the static rules a schema must meet when the CRD is
  written (``validation.ValidateCustomResourceDefinitionOpenAPISchema``, structural
  invariants and completeness, default values that validate and are pruned);
* :func:`prune` – drop fields the schema does not specify (``schema/pruning``), except
  under ``x-kubernetes-preserve-unknown-fields``; ``apiVersion``/``kind``/``metadata``
  at the root and in embedded resources are kept, ``metadata`` being cut down to
  ObjectMeta's fields.  The pruned paths feed fieldValidation (Strict: 400, Warn:
  warnings);
* :func:`apply_defaults` – drop non-nullable nulls without defaults, then fill
  ``default`` values top-down (a nested default applies only where its parent exists);
* :func:`validate_custom` – the OpenAPI value validation of kube-openapi plus the
  uniqueness of ``x-kubernetes-list-type`` set/map lists.

Only the *structural* part of a schema (``properties``, ``items``,
``additionalProperties``) shapes objects; ``allOf``/``anyOf``/``oneOf``/``not`` only
validate.  Errors are :class:`~k3py.server.errors.Cause` dicts worded like
apimachinery's ``field.Error`` (``reason``, ``message`` = the error body, ``field`` =
the path, e.g. ``spec.validation.openAPIV3Schema.properties[spec].type``) and the
messages of kube-openapi (``spec.replicas in body must be of type integer:
"string"``).  Upstream moves per-version schemas, subresources and printer columns
that are identical in every version to the top level before validating, so a
single-version CRD reports ``spec.validation.openAPIV3Schema...`` paths; so do we.

CEL rules (``x-kubernetes-validations``) are checked for shape only, not compiled or
evaluated.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import ipaddress
import json
import math
import re
from decimal import Decimal
from typing import Any

from k3py.apimachinery import gofmt, names
from k3py.apimachinery.jsoncopy import clone
from k3py.server.errors import Cause
from k3py.server.registry import decode
from k3py.server.registry import schema as schemas

Schema = dict[str, Any]
_OMIT = object()
_META_FIELDS = ("apiVersion", "kind", "metadata")
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

# ---- Go renderings and field errors ------------------------------------------------------

# Go's %q lives with the other Go renderings; re-exported here for this module's callers.
go_quote = gofmt.go_quote


def go_float(f: float) -> str:
    """Go's ``%v`` for a float64 (shortest digits, exponent when exp < -4 or >= 21)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(f)).normalize().as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    assert isinstance(exponent, int)
    point = len(digits) + exponent
    exp = point - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 21:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{neg}{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def go_v(v: Any) -> str:
    """Go's ``%v`` for a number or bool."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    return str(v)


def go_sharp(v: Any) -> str:
    """Go's ``%#v`` for a decoded JSON value."""
    if v is None:
        return "interface {}(nil)"
    if isinstance(v, (bool, int, float)):
        return go_v(v)
    if isinstance(v, str):
        return go_quote(v)
    if isinstance(v, dict):
        inner = ", ".join(f"{go_quote(str(k))}:{go_sharp(v[k])}" for k in sorted(v))
        return "map[string]interface {}{" + inner + "}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}{" + ", ".join(go_sharp(x) for x in v) + "}"
    return str(v)


class Rendered(str):
    """A bad value already rendered (printed as is, not quoted)."""


def _bad_value(v: Any) -> str:
    """How ``field.Error`` prints a bad value."""
    if isinstance(v, Rendered):
        return str(v)
    if v is None:
        return '"null"'
    if isinstance(v, (bool, int, float)):
        return go_v(v)
    if isinstance(v, str):
        return go_quote(v)
    return go_sharp(v)


def _err(reason: str, fld: str, body: str, detail: str = "") -> Cause:
    msg = f"{body}: {detail}" if detail else body
    return {"reason": reason, "message": msg, "field": fld or "<nil>"}


def required(fld: str, detail: str = "") -> Cause:
    return _err("FieldValueRequired", fld, "Required value", detail)


def forbidden(fld: str, detail: str) -> Cause:
    return _err("FieldValueForbidden", fld, "Forbidden", detail)


def invalid(fld: str, value: Any, detail: str) -> Cause:
    return _err("FieldValueInvalid", fld, f"Invalid value: {_bad_value(value)}", detail)


def type_invalid(fld: str, value: Any, detail: str) -> Cause:
    return _err("FieldValueTypeInvalid", fld, f"Invalid value: {_bad_value(value)}", detail)


def not_supported(fld: str, value: Any, valid: list[str]) -> Cause:
    detail = "supported values: " + ", ".join(go_quote(v) for v in valid) if valid else ""
    return _err("FieldValueNotSupported", fld, f"Unsupported value: {_bad_value(value)}", detail)


def duplicate(fld: str, value: Any) -> Cause:
    return _err("FieldValueDuplicate", fld, f"Duplicate value: {_bad_value(value)}")


def too_many(fld: str, actual: int, limit: int) -> Cause:
    detail = f"must have at most {limit} items" if limit >= 0 else "has too many items"
    return _err("FieldValueTooMany", fld, f"Too many: {actual}", detail)


def too_long(fld: str, limit: int) -> Cause:
    unit = "byte" if limit == 1 else "bytes"
    return _err("FieldValueTooLong", fld, "Too long", f"may not be more than {limit} {unit}")


def render(cause: Cause) -> str:
    """``field: message`` as ``field.Error.Error()`` prints it."""
    return f"{cause.get('field', '')}: {cause.get('message', '')}"


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# ---- schema helpers -------------------------------------------------------------------------


def _props(s: Schema | None) -> dict[str, Schema]:
    p = (s or {}).get("properties")
    return p if isinstance(p, dict) else {}


def _items(s: Schema | None) -> Schema | None:
    it = (s or {}).get("items")
    return it if isinstance(it, dict) else None


def _addl(s: Schema | None) -> tuple[bool, Schema | None]:
    """(additionalProperties given, its schema)."""
    if not s or "additionalProperties" not in s or s["additionalProperties"] is None:
        return False, None
    ap = s["additionalProperties"]
    return True, ap if isinstance(ap, dict) else None


def _flag(s: Schema | None, name: str) -> bool:
    return bool(s) and (s or {}).get(name) is True


def _preserve(s: Schema | None) -> bool:
    return _flag(s, "x-kubernetes-preserve-unknown-fields")


def _embedded(s: Schema | None) -> bool:
    return _flag(s, "x-kubernetes-embedded-resource")


def _int_or_string(s: Schema | None) -> bool:
    return _flag(s, "x-kubernetes-int-or-string")


def _type_name(s: Schema) -> str:
    t = s.get("type")
    return t if isinstance(t, str) else ""


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _object_meta_schema() -> Schema:
    return schemas.definitions()[_OBJECT_META]


# ---- pruning ------------------------------------------------------------------------------------


def prune(obj: Any, schema: Schema) -> list[str]:
    """Remove fields ``schema`` does not specify; the sorted paths removed.

    The root is a resource: its ``apiVersion``/``kind`` stay and its ``metadata`` is
    cut down to ObjectMeta (those paths, ``metadata.foo``, come first, as upstream).
    """
    meta_paths = _prune_metadata(obj, "")
    paths: list[str] = []
    root = dict(schema)
    root["x-kubernetes-embedded-resource"] = True
    _prune(obj, root, "", paths)
    return meta_paths + sorted(paths)


def _prune_metadata(obj: Any, path: str) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        return []
    return decode.unknown_fields(
        obj["metadata"], _object_meta_schema(), path=child(path, "metadata"), drop=True
    )


def _prune(obj: Any, schema: Schema | None, path: str, out: list[str]) -> None:
    """Iterative version of upstream's prune/skipPrune pair."""
    stack: list[tuple[Any, Schema | None, str, bool]] = [(obj, schema, path, False)]
    while stack:
        x, s, p, skip = stack.pop()
        if s is not None and _preserve(s):
            skip = True
        if isinstance(x, dict):
            _prune_map(x, s, p, skip, out, stack)
        elif isinstance(x, list):
            sub = _items(s) if s is not None else None
            if s is not None and sub is None and skip:
                continue
            stack.extend((v, sub, f"{p}[{i}]", skip and s is not None) for i, v in enumerate(x))


def _prune_map(
    x: dict[str, Any],
    s: Schema | None,
    p: str,
    skip: bool,
    out: list[str],
    stack: list[tuple[Any, Schema | None, str, bool]],
) -> None:
    if s is None:
        if not skip:
            for k in list(x):
                out.append(child(p, k))
                del x[k]
        return
    props = _props(s)
    has_addl, addl = _addl(s)
    embedded = _embedded(s)
    for k in list(x):
        if embedded and k in _META_FIELDS:
            if k == "metadata" and p:
                out.extend(_prune_metadata(x, p))
            continue
        if k in props:
            stack.append((x[k], props[k], child(p, k), False))
        elif has_addl:
            stack.append((x[k], addl, child(p, k), False))
        elif not skip:
            if k not in _META_FIELDS or p:
                out.append(child(p, k))
            del x[k]


# ---- defaulting ----------------------------------------------------------------------------------


def _nullable(s: Schema | None) -> bool:
    return _flag(s, "nullable")


def _schema_for(s: Schema | None, k: str) -> Schema | None:
    if s is None:
        return None
    props = _props(s)
    if k in props:
        return props[k]
    return _addl(s)[1]


def prune_nulls(obj: Any, schema: Schema) -> None:
    """Drop nulls of non-nullable fields that have no default (they would fail validation)."""
    stack: list[tuple[Any, Schema | None]] = [(obj, schema)]
    while stack:
        x, s = stack.pop()
        if isinstance(x, dict):
            for k in list(x):
                sub = _schema_for(s, k)
                if x[k] is None and sub is not None and not _nullable(sub) and "default" not in sub:
                    del x[k]
                else:
                    stack.append((x[k], sub))
        elif isinstance(x, list):
            sub = _items(s)
            stack.extend((v, sub) for v in x)


def apply_defaults(obj: Any, schema: Schema) -> None:
    """Fill ``default`` values (after dropping non-nullable nulls without defaults).

    Used while decoding and on read, as upstream.  Defaults apply to missing fields and
    to nulls of non-nullable fields; a nested default only applies where its parent
    object exists (or was itself defaulted).
    """
    prune_nulls(obj, schema)
    stack: list[tuple[Any, Schema | None]] = [(obj, schema)]
    while stack:
        x, s = stack.pop()
        if s is None:
            continue
        if isinstance(x, dict):
            _default_map(x, s, stack)
        elif isinstance(x, list):
            sub = _items(s)
            for i, v in enumerate(x):
                if v is None and sub is not None and not _nullable(sub) and "default" in sub:
                    x[i] = clone(sub["default"])
                stack.append((x[i], sub))


def _default_map(x: dict[str, Any], s: Schema, stack: list[tuple[Any, Schema | None]]) -> None:
    props = _props(s)
    for k, prop in props.items():
        if "default" not in prop:
            continue
        if k not in x or (x[k] is None and not _nullable(prop)):
            x[k] = clone(prop["default"])
    addl = _addl(s)[1]
    for k in x:
        if k in props:
            stack.append((x[k], props[k]))
        elif addl is not None:
            if x[k] is None and not _nullable(addl) and "default" in addl:
                x[k] = clone(addl["default"])
            stack.append((x[k], addl))


# ---- value validation (kube-openapi) -------------------------------------------------------------

_FORMAT_RES = {
    "bsonobjectid": re.compile(r"^[0-9a-fA-F]{24}$"),
    "uuid": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid3": re.compile(r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$"),
    "uuid4": re.compile(
        r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"
    ),
    "uuid5": re.compile(
        r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$"
    ),
    "hostname": re.compile(
        r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$"
    ),
    "email": re.compile(r"^[^@\s<>]+@[^@\s<>]+$"),
    "mac": re.compile(
        r"^([0-9a-fA-F]{2}([:-])){5}[0-9a-fA-F]{2}$|^([0-9a-fA-F]{2}([:-])){7}[0-9a-fA-F]{2}$"
        r"|^([0-9a-fA-F]{4}\.){2}[0-9a-fA-F]{4}$"
    ),
    "hexcolor": re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"),
    "rgbcolor": re.compile(r"^rgb\(\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\)$"),
    "ssn": re.compile(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$"),
    "isbn10": re.compile(r"^(?:[0-9]{9}X|[0-9]{10})$"),
    "isbn13": re.compile(r"^(?:[0-9]{13})$"),
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "datetime": re.compile(
        r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"
    ),
    "duration": re.compile(
        r"^((\d+(\.\d+)?\s*(ns|us|µs|μs|ms|s|m|h|d|w|nanos?|nanoseconds?|micros?|microseconds?|millis?"
        r"|milliseconds?|seconds?|minutes?|hours?|days?|weeks?))\s*)+$"
    ),
    "quantity": re.compile(decode.QUANTITY_REGEX),
}
SUPPORTED_FORMATS = frozenset(
    [
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
        "quantity",
    ]
)


def _format_ok(fmt: str, v: str) -> bool:
    if fmt in ("password",):
        return True
    if fmt == "ipv4":
        return _ip_ok(v) and "." in v
    if fmt == "ipv6":
        return _ip_ok(v) and ":" in v
    if fmt == "cidr":
        try:
            ipaddress.ip_network(v, strict=False)
            return "/" in v
        except ValueError:
            return False
    if fmt == "uri":
        return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S*$|^/\S*$", v))
    if fmt == "byte":
        try:
            base64.b64decode(v, validate=True)
            return True
        except (binascii.Error, ValueError):
            return False
    if fmt == "isbn":
        return _format_ok("isbn10", v.replace("-", "").replace(" ", "")) or _format_ok(
            "isbn13", v.replace("-", "").replace(" ", "")
        )
    if fmt == "creditcard":
        return bool(re.fullmatch(r"\d{12,19}", re.sub(r"\D", "", v)))
    if fmt == "date":
        return _date_ok(v)
    if fmt == "quantity":
        return decode.quantity_error(v) is None
    rx = _FORMAT_RES.get(fmt)
    return rx is None or bool(rx.match(v))


def _ip_ok(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
        return True
    except ValueError:
        return False


def _date_ok(v: str) -> bool:
    if not _FORMAT_RES["date"].match(v):
        return False
    try:
        _dt.date.fromisoformat(v)
        return True
    except ValueError:
        return False


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _types(s: Schema) -> list[str]:
    if _int_or_string(s):
        return ["integer", "string"]
    t = s.get("type")
    return [t] if isinstance(t, str) and t else []


_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9",
    "alpha": "a-zA-Z",
    "ascii": "\\x00-\\x7f",
    "blank": " \\t",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": " \\t\\n\\v\\f\\r",
    "upper": "A-Z",
    "word": "\\w",
    "xdigit": "0-9A-Fa-f",
}
_INLINE_FLAGS = re.compile(r"\(\?([imsU]+)\)")
_UNSUPPORTED_ESCAPES = ("\\p", "\\P", "\\C", "\\Q")
_regex_cache: dict[str, tuple[re.Pattern[str] | None, str | None]] = {}


def _translate_go_regex(pattern: str) -> str:
    """RE2 syntax Python's ``re`` spells differently (best effort)."""
    text = re.sub(r"(?<!\\)((?:\\\\)*)\\z", r"\1\\Z", pattern)
    text = re.sub(r"\[:(\w+):\]", lambda m: _POSIX_CLASSES.get(m.group(1), m.group(0)), text)
    text = re.sub(r"\(\?<(?![=!])", "(?P<", text)
    flags = "".join(sorted({f for group in _INLINE_FLAGS.findall(text) for f in group if f != "U"}))
    if flags:
        text = "(?" + flags + ")" + _INLINE_FLAGS.sub("", text)
    return text


def _compile_go_regex(pattern: str) -> tuple[re.Pattern[str] | None, str | None]:
    hit = _regex_cache.get(pattern)
    if hit is not None:
        return hit
    result: tuple[re.Pattern[str] | None, str | None]
    try:
        result = (re.compile(_translate_go_regex(pattern)), None)
    except re.error as e:
        unsupported = any(esc in pattern for esc in _UNSUPPORTED_ESCAPES)
        result = (None, None if unsupported else f"error parsing regexp: {e.msg}: `{pattern}`")
    if len(_regex_cache) > 1024:
        _regex_cache.clear()
    _regex_cache[pattern] = result
    return result


def go_regex(pattern: str) -> re.Pattern[str] | None:
    """An RE2 pattern compiled with Python's engine (None when it cannot be)."""
    return _compile_go_regex(pattern)[0]


def regex_error(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid RE2 expression, or None.

    Valid RE2 that Python cannot run (Unicode classes such as ``\\pL``) is not an
    error; such patterns are simply not enforced.
    """
    return _compile_go_regex(pattern)[1]


class _Validator:
    """One pass of kube-openapi's SchemaValidator; errors become field causes."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.errs: list[Cause] = []

    def field(self, name: str) -> str:
        if not name:
            return self.base or "<nil>"
        return child(self.base, name)

    def sub(self) -> _Validator:
        return _Validator(self.base)

    def validate(self, v: Any, s: Schema, name: str) -> None:
        types = _types(s)
        if v is None:
            if types and not _nullable(s):
                self._type_fail(name, ",".join(types), "null")
            self._enum(v, s, name)
            return
        self._type(v, s, name, types)
        self._junctors(v, s, name)
        if isinstance(v, str):
            self._string(v, s, name)
            self._format(v, s, name)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            self._number(v, s, name)
        elif isinstance(v, list):
            self._slice(v, s, name)
        self._enum(v, s, name)
        if isinstance(v, dict):
            self._object(v, s, name)

    def _type_fail(self, name: str, expected: str, actual: str) -> None:
        msg = f"{name} in body must be of type {expected}: {go_quote(actual)}"
        self.errs.append(type_invalid(self.field(name), actual, msg))

    def _type(self, v: Any, s: Schema, name: str, types: list[str]) -> None:
        if not types:
            return
        actual = _json_type(v)
        float_int = actual == "number" and float(v).is_integer() and "integer" in types
        int_float = actual == "integer" and "number" in types
        fmt = s.get("format") if isinstance(s.get("format"), str) else ""
        if fmt and not _format_supported(s):
            fmt = ""
        if (
            fmt
            and actual not in ("string", "array")
            and not (actual in types or float_int or int_float)
        ):
            data_fmt = {"integer": "int64", "number": "double"}.get(actual, "")
            if data_fmt != fmt:
                self._type_fail(name, fmt, data_fmt)
                return
        if actual not in types and not float_int and not int_float:
            self._type_fail(name, ",".join(types), actual)

    def _junctors(self, v: Any, s: Schema, name: str) -> None:
        quoted = go_quote(name)
        all_of = s.get("allOf")
        if isinstance(all_of, list) and all_of:
            ok = 0
            for sub_schema in all_of:
                sv = self.sub()
                sv.validate(v, sub_schema, name)
                ok += not sv.errs
                self.errs.extend(sv.errs)
            if ok != len(all_of):
                extra = ". None validated" if ok == 0 else ""
                self._summary(f"{quoted} must validate all the schemas (allOf){extra}")
        any_of = s.get("anyOf")
        if (
            isinstance(any_of, list)
            and any_of
            and not any(self._passes(v, x, name) for x in any_of)
        ):
            self._summary(f"{quoted} must validate at least one schema (anyOf)")
        one_of = s.get("oneOf")
        if isinstance(one_of, list) and one_of:
            ok = sum(self._passes(v, x, name) for x in one_of)
            if ok != 1:
                extra = "Found none valid" if ok == 0 else f"Found {ok} valid alternatives"
                self._summary(f"{quoted} must validate one and only one schema (oneOf). {extra}")
        not_s = s.get("not")
        if isinstance(not_s, dict) and self._passes(v, not_s, name):
            self._summary(f"{quoted} must not validate the schema (not)")

    def _passes(self, v: Any, s: Any, name: str) -> bool:
        if not isinstance(s, dict):
            return True
        sv = self.sub()
        sv.validate(v, s, name)
        return not sv.errs

    def _summary(self, msg: str) -> None:
        self.errs.append(invalid(self.base or "<nil>", "", msg))

    def _string(self, v: str, s: Schema, name: str) -> None:
        mx, mn, pat = s.get("maxLength"), s.get("minLength"), s.get("pattern")
        if isinstance(mx, int) and len(v) > mx:
            self.errs.append(too_long(self.field(name), mx))
        if isinstance(mn, int) and len(v) < mn:
            self.errs.append(
                invalid(self.field(name), v, f"{name} in body should be at least {mn} chars long")
            )
        if isinstance(pat, str):
            rx = go_regex(pat)
            if rx is not None and not rx.search(v):
                self.errs.append(
                    invalid(self.field(name), v, f"{name} in body should match '{pat}'")
                )

    def _format(self, v: str, s: Schema, name: str) -> None:
        fmt = s.get("format")
        if not isinstance(fmt, str) or not _format_supported(s):
            return
        if not _format_ok(fmt.replace("-", ""), v):
            msg = f"{name} in body must be of type {fmt}: {go_quote(v)}"
            self.errs.append(type_invalid(self.field(name), v, msg))

    def _number(self, v: float, s: Schema, name: str) -> None:
        fld = self.field(name)
        mult = s.get("multipleOf")
        if isinstance(mult, (int, float)) and not isinstance(mult, bool) and mult > 0:
            q = v / mult
            if abs(q - round(q)) > 1e-9:
                self.errs.append(
                    invalid(fld, v, f"{name} in body should be a multiple of {go_v(mult)}")
                )
        mx = s.get("maximum")
        if isinstance(mx, (int, float)) and not isinstance(mx, bool):
            excl = s.get("exclusiveMaximum") is True
            if v > mx or (excl and v == mx):
                word = "less than" if excl else "less than or equal to"
                self.errs.append(
                    invalid(fld, v, f"{name} in body should be {word} {_limit(mx, v)}")
                )
        mn = s.get("minimum")
        if isinstance(mn, (int, float)) and not isinstance(mn, bool):
            excl = s.get("exclusiveMinimum") is True
            if v < mn or (excl and v == mn):
                word = "greater than" if excl else "greater than or equal to"
                self.errs.append(
                    invalid(fld, v, f"{name} in body should be {word} {_limit(mn, v)}")
                )

    def _slice(self, v: list[Any], s: Schema, name: str) -> None:
        it = _items(s)
        if it is not None:
            for i, elem in enumerate(v):
                self.validate(elem, it, f"{name}[{i}]")
        mn, mx = s.get("minItems"), s.get("maxItems")
        if isinstance(mn, int) and len(v) < mn:
            self.errs.append(
                invalid(self.field(name), len(v), f"{name} in body should have at least {mn} items")
            )
        if isinstance(mx, int) and len(v) > mx:
            self.errs.append(too_many(self.field(name), len(v), mx))
        if s.get("uniqueItems") is True:
            seen = [json.dumps(x, sort_keys=True) for x in v]
            if len(set(seen)) != len(seen):
                self.errs.append(
                    invalid(self.field(name), "", f"{name} in body shouldn't contain duplicates")
                )

    def _enum(self, v: Any, s: Schema, name: str) -> None:
        enum = s.get("enum")
        if not isinstance(enum, list) or not enum:
            return
        if any(_json_equal(v, e) for e in enum):
            return
        values = [e if isinstance(e, str) else json.dumps(e, separators=(",", ":")) for e in enum]
        self.errs.append(not_supported(self.field(name), v, values))

    def _object(self, v: dict[str, Any], s: Schema, name: str) -> None:
        fld = self.field(name)
        mx, mn = s.get("maxProperties"), s.get("minProperties")
        if isinstance(mx, int) and len(v) > mx:
            self.errs.append(too_many(fld, len(v), mx))
        if isinstance(mn, int) and len(v) < mn:
            self.errs.append(
                invalid(fld, mn, f"{name} in body should have at least {mn} properties")
            )
        req = s.get("required")
        if isinstance(req, list):
            for k in req:
                if isinstance(k, str) and k not in v:
                    self.errs.append(required(self.field(child(name, k))))
        props = _props(s)
        for k, sub_schema in props.items():
            if k in v:
                self.validate(v[k], sub_schema, child(name, k))
        if "additionalProperties" not in s:
            return
        ap = s.get("additionalProperties")
        for k, val in v.items():
            if k in props:
                continue
            if ap is False:
                msg = f"{name}.{k} in body is a forbidden property"
                self.errs.append(invalid(fld, k, msg))
            elif isinstance(ap, dict):
                self.validate(val, ap, child(name, k))


def _limit(limit: float, v: float) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and float(limit).is_integer():
        return str(int(limit))
    return go_float(float(limit))


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(a == b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def _format_supported(s: Schema) -> bool:
    fmt = s.get("format")
    if not isinstance(fmt, str) or not fmt:
        return False
    t = _type_name(s)
    if t in ("", "string"):
        return fmt.replace("-", "") in SUPPORTED_FORMATS
    if t == "integer":
        return fmt in ("int32", "int64")
    if t == "number":
        return fmt in ("float", "double")
    return False


def validate_custom(obj: Any, schema: Schema, *, path: str = "") -> list[Cause]:
    """OpenAPI validation of a custom object (or of a value) against a CRD schema.

    ``path`` prefixes the causes' fields (used for ``...default`` values); messages name
    the value's own path as kube-openapi does (``spec.replicas in body ...``).  List
    types ``set``/``map`` are checked for uniqueness.
    """
    v = _Validator(path)
    v.validate(obj, schema, "")
    if not path:
        v.errs.extend(validate_list_types(obj, schema))
    return v.errs


# ---- list types ----------------------------------------------------------------------------------


def validate_list_types(obj: Any, schema: Schema, *, path: str = "") -> list[Cause]:
    """Uniqueness of ``x-kubernetes-list-type: set`` items and ``map`` keys."""
    out: list[Cause] = []
    stack: list[tuple[Any, Schema | None, str]] = [(obj, schema, path)]
    while stack:
        x, s, p = stack.pop()
        if s is None:
            continue
        if isinstance(x, dict):
            addl = _addl(s)[1]
            props = _props(s)
            kids: list[tuple[Any, Schema | None, str]] = []
            for k, v in x.items():
                if addl is not None:
                    kids.append((v, addl, key(p, k)))
                if k in props:
                    kids.append((v, props[k], child(p, k)))
            stack.extend(reversed(kids))
        elif isinstance(x, list):
            out.extend(_list_type_errors(x, s, p))
            it = _items(s)
            stack.extend(reversed([(v, it, f"{p}[{i}]") for i, v in enumerate(x)]))
    return out


def _first_duplicates(values: list[Any]) -> list[int]:
    seen: dict[str, int] = {}
    out: list[int] = []
    for i, v in enumerate(values):
        k = (
            json.dumps(v, sort_keys=True)
            if isinstance(v, (dict, list))
            else repr((type(v).__name__, v))
        )
        seen[k] = seen.get(k, 0) + 1
        if seen[k] == 2:
            out.append(i)
    return out


def _list_type_errors(x: list[Any], s: Schema, p: str) -> list[Cause]:
    lt = s.get("x-kubernetes-list-type")
    if lt == "set":
        return [duplicate(f"{p}[{i}]", x[i]) for i in _first_duplicates(x)]
    if lt != "map":
        return []
    for i, item in enumerate(x):
        if item is not None and not isinstance(item, dict):
            return [invalid(f"{p}[{i}]", item, "must be an object for an array of list-type map")]
    keys = [k for k in s.get("x-kubernetes-list-map-keys") or [] if isinstance(k, str)]
    missing = object()
    ids: list[Any] = []
    for item in x:
        d = item or {}
        ids.append({k: d[k] for k in keys if k in d})
    if len(keys) == 1:
        single = [d.get(keys[0], missing) if isinstance(d, dict) else missing for d in ids]
        marks = ["\x00missing" if v is missing else v for v in single]
        return [duplicate(f"{p}[{i}]", ids[i]) for i in _first_duplicates(marks)]
    return [duplicate(f"{p}[{i}]", ids[i]) for i in _first_duplicates(ids)]


# ---- structural schema rules ----------------------------------------------------------------------

_ROOT, _ITEM, _FIELD = "root", "item", "field"
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
_VALUE_VALIDATION_KEYS = frozenset(
    [
        "format",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "enum",
        "maxProperties",
        "minProperties",
        "required",
        "allOf",
        "oneOf",
        "anyOf",
        "not",
    ]
)


def _is_int_or_string_any_of(s: Schema) -> bool:
    return s.get("anyOf") == _INT_OR_STRING_ANY_OF


def _is_int_or_string_all_of(s: Schema) -> bool:
    all_of = s.get("allOf")
    return (
        isinstance(all_of, list)
        and bool(all_of)
        and isinstance(all_of[0], dict)
        and (all_of[0].get("anyOf") == _INT_OR_STRING_ANY_OF)
    )


def _structural_invariants(s: Schema, lvl: str, path: str, out: list[Cause]) -> None:
    t = _type_name(s)
    if t == "array" and _items(s) is None:
        out.append(required(child(path, "items"), "must be specified"))
    it = _items(s)
    if it is not None:
        _structural_invariants(it, _ITEM, child(path, "items"), out)
    for k, v in _props(s).items():
        if isinstance(v, dict):
            _structural_invariants(v, _FIELD, key(child(path, "properties"), k), out)
    has_addl, addl = _addl(s)
    if has_addl:
        if lvl == _ROOT:
            out.append(
                forbidden(child(path, "additionalProperties"), "must not be used at the root")
            )
        if addl is not None:
            _structural_invariants(addl, _FIELD, child(path, "additionalProperties"), out)
    _extension_invariants(s, path, out)
    skip_any = _is_int_or_string_any_of(s)
    skip_first_all = _is_int_or_string_all_of(s)
    _value_validation(s, path, out, skip_any=skip_any, skip_first_all_any=skip_first_all)
    _type_invariants(s, lvl, path, t, out)
    check_meta = lvl == _ROOT or _embedded(s)
    props = _props(s)
    for name in ("kind", "apiVersion"):
        sub = props.get(name)
        if check_meta and isinstance(sub, dict) and sub.get("type") != "string":
            out.append(
                invalid(
                    child(key(child(path, "properties"), name), "type"),
                    sub.get("type", ""),
                    "must be string",
                )
            )
    meta = props.get("metadata")
    if isinstance(meta, dict):
        _metadata_invariants(meta, check_meta, lvl, key(child(path, "properties"), "metadata"), out)
    if _embedded(s) and not _preserve(s) and not props:
        out.append(
            required(
                child(path, "properties"),
                "must not be empty if x-kubernetes-embedded-resource is true without "
                "x-kubernetes-preserve-unknown-fields",
            )
        )


def _extension_invariants(s: Schema, path: str, out: list[Cause]) -> None:
    if _int_or_string(s) and _preserve(s):
        out.append(
            invalid(
                child(path, "x-kubernetes-preserve-unknown-fields"),
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    if _int_or_string(s) and _embedded(s):
        out.append(
            invalid(
                child(path, "x-kubernetes-embedded-resource"),
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )


def _type_invariants(s: Schema, lvl: str, path: str, t: str, out: list[Cause]) -> None:
    if _embedded(s) and t != "object":
        msg = "must be object if x-kubernetes-embedded-resource is true"
        out.append(
            required(child(path, "type"), msg) if not t else invalid(child(path, "type"), t, msg)
        )
    elif not t and not _int_or_string(s) and not _preserve(s):
        what = {
            _ROOT: "must not be empty at the root",
            _ITEM: "must not be empty for specified array items",
            _FIELD: "must not be empty for specified object fields",
        }[lvl]
        out.append(required(child(path, "type"), what))
    if _embedded(s) and _addl(s)[0]:
        out.append(
            forbidden(
                child(path, "additionalProperties"),
                "must not be used if x-kubernetes-embedded-resource is set",
            )
        )
    if lvl == _ROOT and t and t != "object":
        out.append(invalid(child(path, "type"), t, "must be object at the root"))


def _metadata_invariants(
    meta: Schema, check_meta: bool, lvl: str, path: str, out: list[Cause]
) -> None:
    if check_meta and meta.get("type") != "object":
        out.append(invalid(child(path, "type"), meta.get("type", ""), "must be object"))
    if lvl != _ROOT:
        return
    rest = set(meta) - {"type", "default"}
    props = _props(meta)
    if "properties" in rest and set(props) <= {"name", "generateName"}:
        rest.discard("properties")
    if rest:
        out.append(
            forbidden(
                path,
                "must not specify anything other than name and generateName, but metadata "
                "is implicitly specified",
            )
        )


def _value_validation(
    s: Schema, path: str, out: list[Cause], *, skip_any: bool, skip_first_all_any: bool
) -> None:
    if not skip_any:
        for i, sub in enumerate(_list_of(s, "anyOf")):
            _nested_value_validation(sub, child(path, f"anyOf[{i}]"), out, skip_any=False)
    for i, sub in enumerate(_list_of(s, "allOf")):
        _nested_value_validation(
            sub, child(path, f"allOf[{i}]"), out, skip_any=skip_first_all_any and i == 0
        )
    for i, sub in enumerate(_list_of(s, "oneOf")):
        _nested_value_validation(sub, child(path, f"oneOf[{i}]"), out, skip_any=False)
    not_s = s.get("not")
    if isinstance(not_s, dict):
        _nested_value_validation(not_s, child(path, "not"), out, skip_any=False)
    pat = s.get("pattern")
    problem = regex_error(pat) if isinstance(pat, str) else None
    if problem:
        out.append(
            invalid(
                child(path, "pattern"),
                pat,
                f"must be a valid regular expression, but isn't: {problem}",
            )
        )


def _list_of(s: Schema, name: str) -> list[Schema]:
    v = s.get(name)
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


_NESTED_FORBIDDEN: tuple[tuple[str, str], ...] = (
    ("type", "must be empty to be structural"),
    ("default", "must be undefined to be structural"),
    ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"),
    ("externalDocs", "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)


def _nested_value_validation(v: Schema, path: str, out: list[Cause], *, skip_any: bool) -> None:
    _value_validation(v, path, out, skip_any=skip_any, skip_first_all_any=False)
    it = _items(v)
    if it is not None:
        _nested_value_validation(it, child(path, "items"), out, skip_any=False)
    for k, sub in _props(v).items():
        if isinstance(sub, dict):
            _nested_value_validation(sub, key(child(path, "properties"), k), out, skip_any=False)
    if _addl(v)[0]:
        out.append(
            forbidden(child(path, "additionalProperties"), "must be undefined to be structural")
        )
    if v.get("nullable") is True:
        out.append(forbidden(child(path, "nullable"), "must be false to be structural"))
    for name, msg in _NESTED_FORBIDDEN:
        val = v.get(name)
        if name == "default":
            given = "default" in v
        else:
            given = val not in (None, False, "", [], {})
        if given:
            out.append(forbidden(child(path, name), msg))
    if "metadata" in _props(v):
        out.append(
            forbidden(
                key(child(path, "properties"), "metadata"),
                "must not be specified in a nested context",
            )
        )


def _completeness(s: Schema, path: str, out: list[Cause]) -> None:
    """Everything value validations mention must exist structurally (at every node)."""
    for name in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(_list_of(s, name)):
            _nested_completeness(sub, s, path, child(path, f"{name}[{i}]"), out)
    not_s = s.get("not")
    if isinstance(not_s, dict):
        _nested_completeness(not_s, s, path, child(path, "not"), out)
    it = _items(s)
    if it is not None:
        _completeness(it, child(path, "items"), out)
    for k, sub in _props(s).items():
        if isinstance(sub, dict):
            _completeness(sub, key(child(path, "properties"), k), out)
    addl = _addl(s)[1]
    if addl is not None:
        _completeness(addl, child(path, "additionalProperties"), out)


def _nested_completeness(
    v: Schema, s: Schema | None, s_path: str, v_path: str, out: list[Cause]
) -> None:
    if s is None:
        out.append(required(s_path, f"because it is defined in {v_path}"))
        return
    for name in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(_list_of(v, name)):
            _nested_completeness(sub, s, s_path, child(v_path, f"{name}[{i}]"), out)
    not_s = v.get("not")
    if isinstance(not_s, dict):
        _nested_completeness(not_s, s, s_path, child(v_path, "not"), out)
    it = _items(v)
    if it is not None:
        _nested_completeness(it, _items(s), child(s_path, "items"), child(v_path, "items"), out)
    sprops = _props(s)
    for k, sub in _props(v).items():
        if not isinstance(sub, dict):
            continue
        if k not in sprops:
            out.append(
                required(
                    key(child(s_path, "properties"), k),
                    f"because it is defined in {key(child(v_path, 'properties'), k)}",
                )
            )
        else:
            _nested_completeness(
                sub,
                sprops[k],
                key(child(s_path, "properties"), k),
                key(child(v_path, "properties"), k),
                out,
            )


def structural_errors(schema: Schema, *, path: str) -> list[Cause]:
    """Upstream's ``ValidateStructural``: invariants and completeness, sorted."""
    out: list[Cause] = []
    _structural_invariants(schema, _ROOT, path, out)
    _completeness(schema, path, out)
    return sorted(out, key=render)


def _default_errors(s: Schema, path: str, *, root: bool) -> list[Cause]:
    """Defaults must be pruned and must validate (upstream ``ValidateDefaults``)."""
    out: list[Cause] = []
    stack: list[tuple[Schema, str, bool]] = [(s, path, root)]
    while stack:
        node, p, is_root = stack.pop()
        if "default" in node:
            out.extend(_one_default(node, child(p, "default")))
        kids: list[tuple[Schema, str, bool]] = []
        it = _items(node)
        if it is not None:
            kids.append((it, child(p, "items"), False))
        for k, sub in _props(node).items():
            if isinstance(sub, dict) and not (is_root and k in _META_FIELDS):
                kids.append((sub, key(child(p, "properties"), k), False))
        stack.extend(reversed(kids))
    return out


def _one_default(node: Schema, path: str) -> list[Cause]:
    value = node.get("default")
    out: list[Cause] = []
    pruned = clone(value)
    if _embedded(node):
        prune(pruned, node)
    else:
        _prune(pruned, node, "", [])
    if pruned != value:
        out.append(invalid(path, value, "must not have unknown fields"))
    out.extend(validate_custom(value, node, path=path))
    return out


# ---- static OpenAPI schema rules ------------------------------------------------------------------

_OPENAPI_V3_TYPES = ["array", "boolean", "integer", "number", "object", "string"]
_UNSUPPORTED_KEYS = (
    ("id", "id is not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
    ("$ref", "$ref is not supported"),
)
_VALIDATION_REASONS = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
]


def _openapi_errors(
    s: Schema,
    path: str,
    *,
    root: bool,
    in_meta: bool,
    defaults_reason: str | None,
    out: list[Cause],
) -> None:
    """Upstream ``ValidateCustomResourceDefinitionOpenAPISchema`` (minus CEL compilation).

    ``defaults_reason`` is None when defaults are allowed, else why they are not.
    """
    _node_rules(s, path, in_meta=in_meta, defaults_reason=defaults_reason, out=out)
    props = _props(s)
    has_addl, addl = _addl(s)
    if has_addl:
        if props and (s.get("additionalProperties") is False or addl is not None):
            out.append(
                forbidden(
                    child(path, "additionalProperties"),
                    "additionalProperties and properties are mutual exclusive",
                )
            )
        if addl is not None:
            reason = (
                "inside additionalProperties applying to object metadata"
                if in_meta
                else defaults_reason
            )
            _openapi_errors(
                addl,
                child(path, "additionalProperties"),
                root=False,
                in_meta=in_meta,
                defaults_reason=reason,
                out=out,
            )
    for k, sub in props.items():
        if not isinstance(sub, dict):
            continue
        sub_meta, sub_reason = in_meta, defaults_reason
        if (root or _embedded(s)) and k in _META_FIELDS:
            sub_meta = True
            if root:
                sub_reason = f"in top-level {k}"
        _openapi_errors(
            sub,
            key(child(path, "properties"), k),
            root=False,
            in_meta=sub_meta,
            defaults_reason=sub_reason,
            out=out,
        )
    nested: list[tuple[Schema, str]] = []
    if isinstance(s.get("not"), dict):
        nested.append((s["not"], child(path, "not")))
    for name in ("allOf", "oneOf", "anyOf"):
        nested += [(sub, child(path, f"{name}[{i}]")) for i, sub in enumerate(_list_of(s, name))]
    defs = s.get("definitions")
    if isinstance(defs, dict):
        nested += [
            (sub, key(child(path, "definitions"), k))
            for k, sub in defs.items()
            if isinstance(sub, dict)
        ]
    it = _items(s)
    if it is not None:
        nested.append((it, child(path, "items")))
    for sub, p in nested:
        _openapi_errors(
            sub, p, root=False, in_meta=in_meta, defaults_reason=defaults_reason, out=out
        )
    _extension_rules(s, path, out)


def _node_rules(
    s: Schema, path: str, *, in_meta: bool, defaults_reason: str | None, out: list[Cause]
) -> None:
    t = s.get("type")
    if isinstance(t, str) and t and t not in _OPENAPI_V3_TYPES:
        out.append(not_supported(child(path, "type"), t, _OPENAPI_V3_TYPES))
    if "default" in s and defaults_reason is not None:
        out.append(
            forbidden(child(path, "default"), ("must not be set " + defaults_reason).strip())
        )
    for name, msg in _UNSUPPORTED_KEYS:
        if s.get(name) not in (None, "", {}, []):
            out.append(forbidden(child(path, name), msg))
    if t == "null":
        out.append(
            forbidden(
                child(path, "type"), "type cannot be set to null, use nullable as an alternative"
            )
        )
    if isinstance(s.get("items"), list):
        out.append(
            forbidden(child(path, "items"), "items must be a schema object and not an array")
        )
    if in_meta and _embedded(s):
        out.append(
            forbidden(
                child(path, "x-kubernetes-embedded-resource"),
                "must not be used inside of resource meta",
            )
        )
    if s.get("uniqueItems") is True:
        out.append(
            forbidden(
                child(path, "uniqueItems"),
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )


def _extension_rules(s: Schema, path: str, out: list[Cause]) -> None:
    t = _type_name(s)
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        out.append(
            invalid(
                child(path, "x-kubernetes-preserve-unknown-fields"),
                False,
                "must be true or undefined",
            )
        )
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None:
        if t != "object":
            msg = "must be object if x-kubernetes-map-type is specified"
            out.append(
                required(child(path, "type"), msg)
                if not t
                else invalid(child(path, "type"), t, msg)
            )
        if map_type not in ("atomic", "granular"):
            out.append(
                not_supported(
                    child(path, "x-kubernetes-map-type"), map_type, ["atomic", "granular"]
                )
            )
    _list_type_rules(s, path, t, out)
    _map_set_rules(s, path, out)
    _cel_shape_rules(s, path, out)


def _list_type_rules(s: Schema, path: str, t: str, out: list[Cause]) -> None:
    lt = s.get("x-kubernetes-list-type")
    it = _items(s)
    if lt is not None and t != "array":
        msg = "must be array if x-kubernetes-list-type is specified"
        out.append(
            required(child(path, "type"), msg) if not t else invalid(child(path, "type"), t, msg)
        )
    elif lt == "set" and it is not None:
        if it.get("type") == "array" and it.get("x-kubernetes-list-type") not in (None, "atomic"):
            out.append(
                invalid(
                    child(child(path, "items"), "x-kubernetes-list-type"),
                    it.get("x-kubernetes-list-type"),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                )
            )
        if it.get("type") == "object" and it.get("x-kubernetes-map-type") != "atomic":
            out.append(
                invalid(
                    child(child(path, "items"), "x-kubernetes-map-type"),
                    lt,
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                )
            )
    if lt is not None and lt not in ("atomic", "set", "map"):
        out.append(
            not_supported(child(path, "x-kubernetes-list-type"), lt, ["atomic", "set", "map"])
        )
    keys = s.get("x-kubernetes-list-map-keys")
    if keys:
        if lt is None:
            out.append(
                required(
                    child(path, "x-kubernetes-list-type"),
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
        elif lt != "map":
            out.append(
                invalid(
                    child(path, "x-kubernetes-list-type"),
                    lt,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
    if lt == "map":
        _list_map_rules(s, path, keys if isinstance(keys, list) else [], out)


def _list_map_rules(s: Schema, path: str, keys: list[Any], out: list[Cause]) -> None:
    if not keys:
        out.append(
            required(
                child(path, "x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            )
        )
    raw_items = s.get("items")
    if raw_items is None:
        out.append(
            required(child(path, "items"), "must have a schema if x-kubernetes-list-type is map")
        )
        return
    if not isinstance(raw_items, dict):
        out.append(
            invalid(
                child(path, "items"),
                raw_items,
                "must only have a single schema if x-kubernetes-list-type is map",
            )
        )
        return
    if raw_items.get("type") != "object":
        out.append(
            invalid(
                child(child(path, "items"), "type"),
                raw_items.get("type", ""),
                "must be object if parent array's x-kubernetes-list-type is map",
            )
        )
        return
    seen: set[str] = set()
    props = _props(raw_items)
    for k in keys:
        sub = props.get(k) if isinstance(k, str) else None
        if sub is None:
            out.append(
                invalid(
                    child(path, "x-kubernetes-list-map-keys"),
                    _go_strings(keys),
                    "entries must all be names of item properties",
                )
            )
        elif sub.get("type") in ("array", "object"):
            out.append(
                invalid(
                    child(key(child(child(path, "items"), "properties"), k), "type"),
                    "object",
                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                )
            )
        if k in seen:
            out.append(
                invalid(
                    child(path, "x-kubernetes-list-map-keys"),
                    _go_strings(keys),
                    "must not contain duplicate entries",
                )
            )
        seen.add(k)


def _map_set_rules(s: Schema, path: str, out: list[Cause]) -> None:
    lt = s.get("x-kubernetes-list-type")
    it = _items(s)
    if it is None or lt not in ("set", "map"):
        return
    if it.get("nullable") is True:
        out.append(
            forbidden(
                child(child(path, "items"), "nullable"),
                f"cannot be nullable when x-kubernetes-list-type is {lt}",
            )
        )
    if lt != "map":
        return
    req = set(it.get("required") or [])
    props = _props(it)
    for k in s.get("x-kubernetes-list-map-keys") or []:
        sub = props.get(k) if isinstance(k, str) else None
        if sub is None:
            continue
        base = key(child(child(path, "items"), "properties"), k)
        if k not in req and "default" not in sub:
            out.append(
                required(
                    child(base, "default"),
                    "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                )
            )
        if sub.get("nullable") is True:
            out.append(
                forbidden(
                    child(base, "nullable"),
                    "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                )
            )


def _cel_shape_rules(s: Schema, path: str, out: list[Cause]) -> None:
    rules = s.get("x-kubernetes-validations")
    if not isinstance(rules, list):
        return
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            continue
        p = child(path, f"x-kubernetes-validations[{i}]")
        text = str(rule.get("rule") or "").strip()
        msg = rule.get("message")
        if not text:
            out.append(required(child(p, "rule"), "rule is not specified"))
        elif isinstance(msg, str) and msg and not msg.strip():
            out.append(invalid(child(p, "message"), msg, "message must be non-empty if specified"))
        elif isinstance(msg, str) and re.search(r"[\n\r]", msg.strip()):
            out.append(invalid(child(p, "message"), msg, "message must not contain line breaks"))
        elif re.search(r"[\n\r]", text) and not (msg or "").strip():
            out.append(
                required(
                    child(p, "message"), "message must be specified if rule contains line breaks"
                )
            )
        reason = rule.get("reason")
        if reason is not None and reason not in _VALIDATION_REASONS:
            out.append(not_supported(child(p, "reason"), reason, _VALIDATION_REASONS))


_ROOT_FIELDS_WITH_STATUS = {
    "description": "Description",
    "type": "Type",
    "format": "Format",
    "title": "Title",
    "maximum": "Maximum",
    "exclusiveMaximum": "ExclusiveMaximum",
    "minimum": "Minimum",
    "exclusiveMinimum": "ExclusiveMinimum",
    "maxLength": "MaxLength",
    "minLength": "MinLength",
    "pattern": "Pattern",
    "maxItems": "MaxItems",
    "minItems": "MinItems",
    "uniqueItems": "UniqueItems",
    "multipleOf": "MultipleOf",
    "required": "Required",
    "items": "Items",
    "properties": "Properties",
    "externalDocs": "ExternalDocs",
    "example": "Example",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-validations": "XValidations",
}


# JSONSchemaProps fields of Go type bool: false is their zero value.
_BOOL_FIELDS = frozenset(
    [
        "nullable",
        "uniqueItems",
        "exclusiveMaximum",
        "exclusiveMinimum",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
    ]
)


def _status_root_rules(schema: Schema, path: str) -> list[Cause]:
    t = schema.get("type")
    if t not in (None, "", "object"):
        return [
            invalid(
                child(path, "type"),
                t,
                'only "object" is allowed as the type at the root of the schema if the status subresource is enabled',
            )
        ]
    for k, v in schema.items():
        if v in (None, "", [], {}) or (v is False and k in _BOOL_FIELDS):
            continue
        if k not in _ROOT_FIELDS_WITH_STATUS:
            allowed = "[" + " ".join(_ROOT_FIELDS_WITH_STATUS.values()) + "]"
            return [
                invalid(
                    path,
                    _compact(schema),
                    f"only {allowed} fields are allowed at the root of the schema if the status subresource is enabled",
                )
            ]
    return []


def _go_strings(v: list[Any]) -> Rendered:
    """``%#v`` of a Go ``[]string``."""
    return Rendered("[]string{" + ", ".join(go_quote(str(x)) for x in v) + "}")


def _compact(v: Any) -> Rendered:
    return Rendered(json.dumps(v, separators=(",", ":"), sort_keys=True))


def check_structural(
    schema: Schema, *, path: str = "spec.validation.openAPIV3Schema", status_enabled: bool = False
) -> list[Cause]:
    """Every rule a CRD version's ``openAPIV3Schema`` must meet on create/update.

    ``path`` is where the schema sits in the CRD (``spec.validation.openAPIV3Schema``
    when all versions share it, else ``spec.versions[i].schema.openAPIV3Schema``).
    """
    out: list[Cause] = []
    if status_enabled:
        out += _status_root_rules(schema, path)
    if schema.get("nullable") is True:
        out.append(forbidden(child(path, "nullable"), "nullable cannot be true at the root"))
    structural = structural_errors(schema, path=path)
    if structural:
        out += structural
    else:
        out += _default_errors(schema, path, root=True)
    _openapi_errors(schema, path, root=True, in_meta=False, defaults_reason=None, out=out)
    return out


# ---- CustomResourceDefinition objects ---------------------------------------------------------------

_PRINTER_TYPES = ["boolean", "date", "integer", "number", "string"]
_PRINTER_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"]
_SCOPES = ["Cluster", "Namespaced"]
_APPROVAL = "api-approved.kubernetes.io"
_APPROVAL_DOC = "see https://github.com/kubernetes/enhancements/pull/1111"


def default_crd(crd: dict[str, Any]) -> None:
    """Upstream's v1 defaults: singular and listKind names, conversion strategy None."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return
    names_ = spec.get("names")
    if isinstance(names_, dict) and isinstance(names_.get("kind"), str) and names_["kind"]:
        if not names_.get("singular"):
            names_["singular"] = names_["kind"].lower()
        if not names_.get("listKind"):
            names_["listKind"] = names_["kind"] + "List"
    if not isinstance(spec.get("conversion"), dict):
        spec["conversion"] = {"strategy": "None"}
    elif not spec["conversion"].get("strategy"):
        spec["conversion"]["strategy"] = "None"


def _established(crd: dict[str, Any] | None) -> bool:
    for c in ((crd or {}).get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == "Established" and c.get("status") == "True":
            return True
    return False


def validate_crd(crd: dict[str, Any], *, old: dict[str, Any] | None = None) -> list[Cause]:
    """Upstream's CRD validation (create when ``old`` is None, else update).

    Works on defaulted copies (:func:`default_crd`), so callers may pass what the
    client sent.
    """
    crd = clone(crd)
    default_crd(crd)
    old_spec: dict[str, Any] | None = None
    if old is not None:
        old = clone(old)
        default_crd(old)
        old_spec = _dict(old.get("spec"))
    spec = _dict(crd.get("spec"))
    out = _crd_name_errors(crd, spec)
    out += _spec_errors(spec, old_spec=old_spec)
    if old_spec is not None:
        out += _update_errors(spec, old_spec, established=_established(old))
    out += _names_errors(
        (crd.get("status") or {}).get("acceptedNames") or {}, "status.acceptedNames"
    )
    if old is not None:
        out += _stored_versions_errors(crd, spec)
    out += _approval_errors(crd, spec, old)
    out += _preserve_unknown_errors(spec, old_spec)
    return out


def _crd_name_errors(crd: dict[str, Any], spec: dict[str, Any]) -> list[Cause]:
    meta = _dict(crd.get("metadata"))
    names_ = _dict(spec.get("names"))
    want = f"{names_.get('plural', '')}.{spec.get('group', '')}"
    mismatch = 'must be spec.names.plural+"."+spec.group'
    name = meta.get("name") or ""
    if not name:
        gen = meta.get("generateName") or ""
        if gen:
            return [invalid("metadata.generateName", gen, mismatch)]
        return [required("metadata.name", "name or generateName is required")]
    out = [invalid("metadata.name", name, m) for m in names.check_dns1123_subdomain(name)]
    if name != want:
        out.append(invalid("metadata.name", name, mismatch))
    return out


def _hoisted(versions: list[dict[str, Any]], field: str) -> tuple[bool, Any]:
    """(identical in every version, the shared value) as upstream's v1 conversion decides."""
    if not versions:
        return False, None
    first = versions[0].get(field)
    if field == "additionalPrinterColumns":
        first = first or []
        same = all((v.get(field) or []) == first for v in versions)
    else:
        same = all(v.get(field) == first for v in versions)
    return same, first


def _spec_errors(spec: dict[str, Any], *, old_spec: dict[str, Any] | None) -> list[Cause]:
    out: list[Cause] = []
    out += _group_errors(spec.get("group"))
    scope = spec.get("scope") or ""
    if not scope:
        out.append(required("spec.scope"))
    elif scope not in _SCOPES:
        out.append(not_supported("spec.scope", scope, _SCOPES))
    versions = [v if isinstance(v, dict) else {} for v in spec.get("versions") or []]
    schema_same, top_schema = _hoisted(versions, "schema")
    sub_same, top_sub = _hoisted(versions, "subresources")
    cols_same, top_cols = _hoisted(versions, "additionalPrinterColumns")
    top_v3 = (
        (top_schema or {}).get("openAPIV3Schema")
        if schema_same and isinstance(top_schema, dict)
        else None
    )
    if top_v3 is None:
        for i, v in enumerate(versions):
            if not isinstance((v.get("schema") or {}).get("openAPIV3Schema"), dict):
                out.append(
                    required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required")
                )
    if spec.get("preserveUnknownFields") is True and any(_has_default(v) for v in versions):
        out.append(
            invalid(
                "spec.preserveUnknownFields",
                True,
                "must be false in order to use defaults in the schema",
            )
        )
    any_status = any(
        isinstance((v.get("subresources") or {}).get("status"), dict) for v in versions
    )
    out += _versions_errors(
        versions, schema_same=schema_same, sub_same=sub_same, cols_same=cols_same, top_sub=top_sub
    )
    out += _names_required(spec.get("names") or {})
    out += _names_errors(spec.get("names") or {}, "spec.names")
    if schema_same and isinstance(top_v3, dict):
        out += check_structural(
            top_v3, path="spec.validation.openAPIV3Schema", status_enabled=any_status
        )
    if sub_same and isinstance(top_sub, dict):
        out += _subresources_errors(top_sub, "spec.subresources")
    if cols_same:
        for j, col in enumerate(top_cols or []):
            out += _column_errors(col, f"spec.additionalPrinterColumns[{j}]")
    out += _conversion_errors(spec)
    return out


def _has_default(version: dict[str, Any]) -> bool:
    stack: list[Any] = [(version.get("schema") or {}).get("openAPIV3Schema")]
    while stack:
        s = stack.pop()
        if isinstance(s, dict):
            if "default" in s:
                return True
            stack.extend(v for k, v in s.items() if k not in ("enum", "example", "default"))
        elif isinstance(s, list):
            stack.extend(s)
    return False


def _group_errors(group: Any) -> list[Cause]:
    if not group:
        return [required("spec.group")]
    errs = names.check_dns1123_subdomain(str(group))
    if errs:
        return [invalid("spec.group", group, ",".join(errs))]
    if len(str(group).split(".")) < 2:
        return [invalid("spec.group", group, "should be a domain with at least one dot")]
    return []


def _versions_errors(
    versions: list[dict[str, Any]],
    *,
    schema_same: bool,
    sub_same: bool,
    cols_same: bool,
    top_sub: Any,
) -> list[Cause]:
    out: list[Cause] = []
    seen: set[str] = set()
    unique = True
    storage = 0
    for i, v in enumerate(versions):
        p = f"spec.versions[{i}]"
        name = v.get("name") or ""
        storage += v.get("storage") is True
        unique = unique and name not in seen
        seen.add(name)
        errs = names.check_dns1035_label(name)
        if errs:
            out.append(invalid(f"{p}.name", name, ",".join(errs)))
        out += _deprecation_errors(v, p)
        sub = top_sub if sub_same else v.get("subresources")
        status = isinstance((sub or {}).get("status"), dict)
        v3 = (v.get("schema") or {}).get("openAPIV3Schema")
        if not schema_same and isinstance(v3, dict):
            out += check_structural(v3, path=f"{p}.schema.openAPIV3Schema", status_enabled=status)
        if not sub_same and isinstance(v.get("subresources"), dict):
            out += _subresources_errors(v["subresources"], f"{p}.subresources")
        if not cols_same:
            for j, col in enumerate(v.get("additionalPrinterColumns") or []):
                out += _column_errors(col, f"{p}.additionalPrinterColumns[{j}]")
        out += _selectable_errors(v, p)
    rendered = _compact(versions)
    if not unique:
        out.append(invalid("spec.versions", rendered, "must contain unique version names"))
    if storage != 1:
        out.append(
            invalid(
                "spec.versions", rendered, "must have exactly one version marked as storage version"
            )
        )
    return out


def _deprecation_errors(v: dict[str, Any], p: str) -> list[Cause]:
    warning = v.get("deprecationWarning")
    if warning is None:
        return []
    fld = f"{p}.deprecationWarning"
    if not v.get("deprecated"):
        return [invalid(fld, warning, "can only be set for deprecated versions")]
    out: list[Cause] = []
    text = str(warning)
    if len(text) > 256:
        out.append(invalid(fld, text, "must be <= 256 characters long"))
    if not text:
        out.append(invalid(fld, text, "must not be an empty string"))
    for i, ch in enumerate(text):
        if not ch.isprintable():
            out.append(
                invalid(
                    fld,
                    text,
                    f"must only contain printable UTF-8 characters; non-printable character found at index {i}",
                )
            )
            break
    return out


def _selectable_errors(v: dict[str, Any], p: str) -> list[Cause]:
    fields = v.get("selectableFields") or []
    out: list[Cause] = []
    seen: set[str] = set()
    for i, f in enumerate(fields):
        jp = (f or {}).get("jsonPath") or ""
        fp = f"{p}.selectableFields[{i}].jsonPath"
        if not jp:
            out.append(required(fp))
            continue
        if not jp.startswith("."):
            out.append(
                invalid(fp, jp, "is an invalid path: must be a simple json path starting with .")
            )
        elif jp.startswith(".metadata"):
            out.append(invalid(fp, jp, "must not point to fields in metadata"))
        if jp in seen:
            out.append(duplicate(fp, jp))
        seen.add(jp)
    if len(seen) > 8:
        out.append(too_many(f"{p}.selectableFields", len(seen), 8))
    return out


def _names_required(n: dict[str, Any]) -> list[Cause]:
    return [
        required(f"spec.names.{f}")
        for f in ("plural", "singular", "kind", "listKind")
        if not n.get(f)
    ]


def _names_errors(n: dict[str, Any], p: str) -> list[Cause]:
    out: list[Cause] = []
    for f in ("plural", "singular"):
        val = n.get(f) or ""
        errs = names.check_dns1035_label(val) if val else []
        if errs:
            out.append(invalid(f"{p}.{f}", val, ",".join(errs)))
    for f in ("kind", "listKind"):
        val = n.get(f) or ""
        errs = names.check_dns1035_label(val.lower()) if val else []
        if errs:
            out.append(
                invalid(
                    f"{p}.{f}",
                    val,
                    "may have mixed case, but should otherwise match: " + ",".join(errs),
                )
            )
    for i, short in enumerate(n.get("shortNames") or []):
        errs = names.check_dns1035_label(str(short))
        if errs:
            out.append(invalid(f"{p}.shortNames[{i}]", short, ",".join(errs)))
    if n.get("kind") and n.get("kind") == n.get("listKind"):
        out.append(invalid(f"{p}.listKind", n["listKind"], "kind and listKind may not be the same"))
    for i, cat in enumerate(n.get("categories") or []):
        errs = names.check_dns1035_label(str(cat))
        if errs:
            out.append(invalid(f"{p}.categories[{i}]", cat, ",".join(errs)))
    return out


def _simple_json_path(s: str, fld: str) -> list[Cause]:
    if not s:
        return [invalid(fld, s, "must not be empty")]
    if s[0] != ".":
        return [invalid(fld, s, "must be a simple json path starting with .")]
    return []


def _subresources_errors(sub: dict[str, Any], p: str) -> list[Cause]:
    scale = sub.get("scale")
    if not isinstance(scale, dict):
        return []
    out: list[Cause] = []
    for name, prefixes, where in (
        ("specReplicasPath", (".spec.",), ".spec"),
        ("statusReplicasPath", (".status.",), ".status"),
    ):
        fld = f"{p}.scale.{name}"
        val = scale.get(name) or ""
        if not val:
            out.append(required(fld))
            continue
        errs = _simple_json_path(val, fld)
        if errs:
            out += errs
        elif not val.startswith(prefixes):
            out.append(invalid(fld, val, f"should be a json path under {where}"))
    sel = scale.get("labelSelectorPath")
    if sel:
        fld = f"{p}.scale.labelSelectorPath"
        errs = _simple_json_path(sel, fld)
        if errs:
            out += errs
        elif not sel.startswith((".spec.", ".status.")):
            out.append(invalid(fld, sel, "should be a json path under either .spec or .status"))
    return out


def _column_errors(col: Any, p: str) -> list[Cause]:
    col = col if isinstance(col, dict) else {}
    out: list[Cause] = []
    if not col.get("name"):
        out.append(required(f"{p}.name"))
    typ = col.get("type") or ""
    detail = "must be one of " + ",".join(_PRINTER_TYPES)
    if not typ:
        out.append(required(f"{p}.type", detail))
    elif typ not in _PRINTER_TYPES:
        out.append(invalid(f"{p}.type", typ, detail))
    fmt = col.get("format") or ""
    if fmt and fmt not in _PRINTER_FORMATS:
        out.append(invalid(f"{p}.format", fmt, "must be one of " + ",".join(_PRINTER_FORMATS)))
    jp = col.get("jsonPath") or ""
    if not jp:
        out.append(required(f"{p}.JSONPath"))
    else:
        out += _simple_json_path(jp, f"{p}.JSONPath")
    return out


def _conversion_errors(spec: dict[str, Any]) -> list[Cause]:
    conv = _dict(spec.get("conversion")) or {"strategy": "None"}
    strategy = conv.get("strategy") or ""
    out: list[Cause] = []
    if strategy != "None" and spec.get("preserveUnknownFields") is True:
        out.append(
            invalid(
                "spec.conversion.strategy",
                strategy,
                "must be None if spec.preserveUnknownFields is true",
            )
        )
    if not strategy:
        return out + [required("spec.conversion.strategy")]
    if strategy not in ("None", "Webhook"):
        return out + [not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"])]
    webhook = _dict(conv.get("webhook"))
    client = webhook.get("clientConfig")
    review = webhook.get("conversionReviewVersions") or []
    if strategy == "None":
        if client:
            out.append(
                forbidden(
                    "spec.conversion.webhookClientConfig",
                    "should not be set when strategy is not set to Webhook",
                )
            )
        if review:
            out.append(
                forbidden(
                    "spec.conversion.conversionReviewVersions",
                    "should not be set when strategy is not set to Webhook",
                )
            )
        return out
    if not isinstance(client, dict):
        out.append(
            required(
                "spec.conversion.webhookClientConfig", "required when strategy is set to Webhook"
            )
        )
    elif bool(client.get("url")) == isinstance(client.get("service"), dict):
        out.append(
            required(
                "spec.conversion.webhookClientConfig", "exactly one of url or service is required"
            )
        )
    out += _review_versions_errors(review)
    return out


def _review_versions_errors(review: list[Any]) -> list[Cause]:
    fld = "spec.conversion.conversionReviewVersions"
    if not review:
        return [required(fld)]
    out: list[Cause] = []
    seen: set[str] = set()
    for i, v in enumerate(review):
        if v in seen:
            out.append(invalid(f"{fld}[{i}]", v, "duplicate version"))
            continue
        seen.add(v)
        out += [invalid(f"{fld}[{i}]", v, e) for e in names.check_dns1035_label(str(v))]
    if not seen & {"v1", "v1beta1"}:
        out.append(invalid(fld, _go_strings(review), "must include at least one of v1, v1beta1"))
    return out


def _update_errors(spec: dict[str, Any], old: dict[str, Any], *, established: bool) -> list[Cause]:
    out: list[Cause] = []
    new_names = spec.get("names") or {}
    old_names = old.get("names") or {}
    if established:
        if spec.get("scope") != old.get("scope"):
            out.append(invalid("spec.scope", spec.get("scope"), "field is immutable"))
        if new_names.get("kind") != old_names.get("kind"):
            out.append(invalid("spec.names.kind", new_names.get("kind"), "field is immutable"))
    if spec.get("group") != old.get("group"):
        out.append(invalid("spec.group", spec.get("group"), "field is immutable"))
    if new_names.get("plural") != old_names.get("plural"):
        out.append(invalid("spec.names.plural", new_names.get("plural"), "field is immutable"))
    return out


def _stored_versions_errors(crd: dict[str, Any], spec: dict[str, Any]) -> list[Cause]:
    stored = ((crd.get("status") or {}).get("storedVersions")) or []
    if not stored:
        return []
    fld = "status.storedVersions"
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    out: list[Cause] = []
    for v in versions:
        if v.get("storage") is True and v.get("name") not in stored:
            out.append(
                invalid(
                    fld, _go_strings(stored), "must have the storage version " + str(v.get("name"))
                )
            )
    known = {v.get("name") for v in versions}
    for i, s in enumerate(stored):
        if s not in known:
            out.append(
                invalid(
                    f"{fld}[{i}]",
                    s,
                    f"missing from spec.versions; {s} was previously a storage version, and must remain "
                    f"in spec.versions until a storage migration ensures no data remains persisted in {s} "
                    f"and removes {s} from status.storedVersions",
                )
            )
    return out


def _protected_group(group: str) -> bool:
    return group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))


def _approval_errors(
    crd: dict[str, Any], spec: dict[str, Any], old: dict[str, Any] | None
) -> list[Cause]:
    if not _protected_group(str(spec.get("group") or "")):
        return []
    ann = ((crd.get("metadata") or {}).get("annotations") or {}).get(_APPROVAL)
    if old is not None:
        old_ann = ((old.get("metadata") or {}).get("annotations") or {}).get(_APPROVAL)
        if old_ann == ann:
            return []
    fld = f"metadata.annotations[{_APPROVAL}]"
    if ann is None:
        return [
            required(
                fld,
                f'protected groups must have approval annotation "{_APPROVAL}", {_APPROVAL_DOC}',
            )
        ]
    if str(ann).startswith("unapproved") or re.match(r"^https?://\S+$", str(ann)):
        return []
    return [
        invalid(
            fld,
            ann,
            f'protected groups must have approval annotation "{_APPROVAL}" with either a URL '
            f'or a reason starting with "unapproved", {_APPROVAL_DOC}',
        )
    ]


def _preserve_unknown_errors(spec: dict[str, Any], old_spec: dict[str, Any] | None) -> list[Cause]:
    if spec.get("preserveUnknownFields") is not True:
        return []
    if old_spec is not None and old_spec.get("preserveUnknownFields") is True:
        return []
    return [
        invalid(
            "spec.preserveUnknownFields",
            True,
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        )
    ]
