"""Go's text renderings of values, for error messages and keys that must match upstream.

Upstream messages embed values formatted by Go's ``fmt`` (``%q``, ``%v``) or by
``encoding/json``; clients (and our own tests) compare them as text, so we render them
the same way here.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_quote(s: str) -> str:
    """Go's ``%q`` / ``strconv.Quote`` for a string (printable non-ASCII kept as is)."""
    out = ['"']
    for ch in s:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable() and code > 0x7F:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_float(f: float) -> str:
    """Go's ``%v`` for a float64: shortest digits, ``%e`` form when exp < -4 or >= 6."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1.0, f) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(f)).normalize().as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # position of the decimal point
    exp = point - 1
    neg = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        esign = "-" if exp < 0 else "+"
        return f"{neg}{mant}e{esign}{abs(exp):02d}"
    if point <= 0:
        return f"{neg}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{neg}{digits}{'0' * (point - len(digits))}"
    return f"{neg}{digits[:point]}.{digits[point:]}"


def go_value(v: Any) -> str:
    """Go's ``%v`` for a decoded JSON value (``map[k:v]``, ``[a b]``, ``<nil>``)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_value(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(go_value(x) for x in v) + "]"
    return str(v)


def go_type_name(v: Any) -> str:
    """``reflect.TypeOf(v).String()`` for a decoded JSON value."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, list):
        return "[]interface {}"
    return type(v).__name__


def _normalize(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
        return int(v)
    if isinstance(v, dict):
        return {k: _normalize(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_normalize(x) for x in v]
    return v


def go_json(v: Any, *, sort_keys: bool = True) -> str:
    """Compact JSON as Go's ``encoding/json`` writes it (HTML-escaped, sorted map keys)."""
    text = json.dumps(_normalize(v), separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)
    if any(c in text for c in _HTML_ESCAPES):
        for c, esc in _HTML_ESCAPES.items():
            text = text.replace(c, esc)
    return text
