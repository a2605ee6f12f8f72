"""A JSONPath evaluator for the subset kubectl templates and CRD printer columns use.

It follows client-go's ``util/jsonpath`` (the evaluator behind CRD
``additionalPrinterColumns`` and ``kubectl -o jsonpath``) rather than any
JSONPath standard, because its quirks are visible in tables:

* a template is text with ``{…}`` actions; each action is a path made of
  ``.field`` (backslash escapes a dot), ``['key']``, ``[n]`` / ``[a:b:c]``
  (negative indexes count from the end; ``[*]`` is the full slice and only works
  on lists), ``.*`` (every value of a map or list), ``..field`` (recursive
  descent) and ``[?(@.a.b == "x")]`` filters (``==  !=  <  >  <=  >=`` or mere
  existence ``[?(@.a)]``); several paths may be joined by ``,``;
* missing keys yield no results when ``allow_missing_keys`` is set (the CRD
  printer sets it) and an error otherwise; a bad index, filtering a non-list or
  comparing values of different kinds (a string with a number, an int with a
  float) is always an error;
* :func:`find_results` returns one list of values per template node, like Go's
  ``FindResults``; :func:`to_text` renders one value the way ``PrintResults``
  does (maps and lists as Go's compact JSON, floats as Go's ``%v``).

``range``/``end`` blocks are not supported (the server never needs them).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


class JSONPathError(ValueError):
    """The template does not parse, or evaluating it failed."""


# ---------------------------------------------------------------------------
# Nodes


@dataclass(frozen=True)
class Field:
    name: str


@dataclass(frozen=True)
class Wildcard:
    pass


@dataclass(frozen=True)
class Recursive:
    pass


@dataclass(frozen=True)
class Slice:
    start: int | None
    end: int | None
    step: int | None
    single: bool  # written as [n]: the end is derived from the start


@dataclass(frozen=True)
class Literal:
    value: Any  # str, int, float or bool


@dataclass(frozen=True)
class Filter:
    left: tuple[Any, ...]
    op: str  # ==, !=, <, >, <=, >= or "exists"
    right: tuple[Any, ...]


@dataclass(frozen=True)
class Union:
    paths: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Template:
    nodes: tuple[Text | Union, ...] = field(default=())


# ---------------------------------------------------------------------------
# Parsing

_TERMINATORS = set(" \t\n.,[]$@{}")
_INDEX = re.compile(r"^(-?\d*)(:-?\d*)?(:-?\d*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.S)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
_OPERATORS = ("==", "!=", "<", ">", "<=", ">=")


def parse(template: str) -> Template:
    """Parse a template such as ``{.spec.replicas}`` or ``name={.metadata.name}``."""
    nodes: list[Text | Union] = []
    pos = 0
    while pos < len(template):
        start = template.find("{", pos)
        if start < 0:
            nodes.append(Text(template[pos:]))
            break
        if start > pos:
            nodes.append(Text(template[pos:start]))
        end = _matching_brace(template, start)
        nodes.append(_parse_action(template[start + 1 : end]))
        pos = end + 1
    return Template(tuple(nodes))


def _matching_brace(text: str, start: int) -> int:
    quote = ""
    i = start + 1
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "}":
            return i
        i += 1
    raise JSONPathError(f"unclosed action in {text!r}")


def _parse_action(body: str) -> Union:
    paths = [_parse_path(part) for part in _split_top_level(body, ",")]
    return Union(tuple(paths))


def _split_top_level(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _parse_path(text: str) -> tuple[Any, ...]:
    """One path: a literal, or a chain of steps starting with ``.``, ``@`` or ``$``."""
    stripped = text.strip()
    literal = _parse_literal(stripped)
    if literal is not None:
        return (literal,)
    steps: list[Any] = []
    pos = 0
    while pos < len(stripped):
        ch = stripped[pos]
        if ch in " \t\n@$":
            pos += 1
        elif stripped.startswith("..", pos):
            steps.append(Recursive())
            pos += 1  # the second dot starts the field that follows
        elif ch == ".":
            pos = _parse_field(stripped, pos + 1, steps)
        elif ch == "[":
            pos = _parse_bracket(stripped, pos, steps)
        else:
            raise JSONPathError(f"unrecognized character in action: {stripped[pos:]!r}")
    return tuple(steps)


def _parse_literal(text: str) -> Literal | None:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return Literal(_unquote(text[1:-1]))
    if text in ("true", "false"):
        return Literal(text == "true")
    if _NUMBER.match(text):
        return Literal(float(text) if any(c in text for c in ".eE") else int(text))
    return None


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _parse_field(text: str, pos: int, steps: list[Any]) -> int:
    name: list[str] = []
    while pos < len(text) and text[pos] not in _TERMINATORS:
        if text[pos] == "\\" and pos + 1 < len(text):
            pos += 1
        name.append(text[pos])
        pos += 1
    value = "".join(name)
    if value == "*":
        steps.append(Wildcard())
    elif value:
        steps.append(Field(value))
    return pos


def _parse_bracket(text: str, pos: int, steps: list[Any]) -> int:
    end = _closing_bracket(text, pos)
    inner = text[pos + 1 : end].strip()
    if inner.startswith("?(") and inner.endswith(")"):
        steps.append(_parse_filter(inner[2:-1]))
    elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        steps.append(Field(_unquote(inner[1:-1])))
    else:
        steps.append(_parse_index("" if inner == "*" else inner, whole=inner == "*"))
    return end + 1


def _closing_bracket(text: str, pos: int) -> int:
    depth, quote = 0, ""
    for i in range(pos, len(text)):
        ch = text[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i
    raise JSONPathError(f"unterminated array in {text!r}")


def _parse_index(inner: str, *, whole: bool) -> Slice:
    if whole:
        return Slice(None, None, None, single=False)
    match = _INDEX.match(inner.replace(" ", ""))
    if not match or inner == "":
        raise JSONPathError(f"invalid array index {inner!r}")
    start = int(match.group(1)) if match.group(1) not in ("", "-") else None
    if match.group(2) is None:
        if start is None:
            raise JSONPathError(f"invalid array index {inner!r}")
        return Slice(start, None, None, single=True)
    end_text = match.group(2)[1:]
    step_text = (match.group(3) or ":")[1:]
    end = int(end_text) if end_text not in ("", "-") else None
    step = int(step_text) if step_text not in ("", "-") else None
    return Slice(start, end, step, single=False)


def _parse_filter(body: str) -> Filter:
    match = _FILTER.match(body)
    if match is None:
        return Filter(_parse_path(body), "exists", ())
    op = match.group(2)
    if op not in _OPERATORS:
        raise JSONPathError(f"unrecognized filter operator {op}")
    return Filter(_parse_path(match.group(1)), op, _parse_path(match.group(3)))


# ---------------------------------------------------------------------------
# Evaluation


def find_results(
    template: Template | str, data: Any, *, allow_missing_keys: bool = True
) -> list[list[Any]]:
    """The values each node of ``template`` selects from ``data`` (Go's FindResults)."""
    parsed = parse(template) if isinstance(template, str) else template
    results: list[list[Any]] = []
    for node in parsed.nodes:
        if isinstance(node, Text):
            results.append([node.text])
            continue
        values: list[Any] = []
        for path in node.paths:
            values.extend(_eval_path(path, [data], allow_missing=allow_missing_keys))
        results.append(values)
    return results


def execute(template: Template | str, data: Any, *, allow_missing_keys: bool = True) -> str:
    """Render ``template`` against ``data`` as ``kubectl -o jsonpath`` prints it."""
    out: list[str] = []
    for values in find_results(template, data, allow_missing_keys=allow_missing_keys):
        out.append(" ".join(to_text(v) for v in values))
    return "".join(out)


def _eval_path(path: tuple[Any, ...], values: list[Any], *, allow_missing: bool) -> list[Any]:
    for step in path:
        if isinstance(step, Literal):
            values = [step.value]
        elif isinstance(step, Field):
            values = _eval_field(step, values, allow_missing=allow_missing)
        elif isinstance(step, Slice):
            values = _eval_slice(step, values)
        elif isinstance(step, Wildcard):
            values = _eval_wildcard(values)
        elif isinstance(step, Recursive):
            values = _eval_recursive(values)
        elif isinstance(step, Filter):
            values = _eval_filter(step, values, allow_missing=allow_missing)
    return values


def _eval_field(step: Field, values: list[Any], *, allow_missing: bool) -> list[Any]:
    if not values:
        return []
    out = [v[step.name] for v in values if isinstance(v, dict) and step.name in v]
    if not out and not allow_missing:
        raise JSONPathError(f"{step.name} is not found")
    return out


def _eval_slice(step: Slice, values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value is None:
            continue
        if not isinstance(value, list):
            raise JSONPathError(f"{to_text(value)} is not array or slice")
        out.extend(_slice_one(step, value))
    return out


def _slice_one(step: Slice, value: list[Any]) -> list[Any]:
    length = len(value)
    start = step.start if step.start is not None else 0
    if start < 0:
        start += length
    if step.single:
        end = start + 1
    else:
        end = step.end if step.end is not None else length
        if end < 0:
            end += length
    if end == start:
        return []
    if start >= length or start < 0:
        raise JSONPathError(f"array index out of bounds: index {start}, length {length}")
    if end > length or end < 0:
        raise JSONPathError(f"array index out of bounds: index {end - 1}, length {length}")
    if start > end:
        raise JSONPathError(f"starting index {start} is greater than ending index {end}")
    stride = 1
    if step.step is not None:
        if step.step <= 0:
            raise JSONPathError("step must be > 0")
        stride = step.step
    return value[start:end:stride]


def _eval_wildcard(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, dict):
            out.extend(value.values())
        elif isinstance(value, list):
            out.extend(value)
    return out


def _eval_recursive(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        children = _children(value)
        if children:
            out.append(value)
            out.extend(_eval_recursive(children))
    return out


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _eval_filter(step: Filter, values: list[Any], *, allow_missing: bool) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if not isinstance(value, list):
            raise JSONPathError(f"{to_text(value)} is not array or slice and cannot be filtered")
        for item in value:
            if _filter_passes(step, item, allow_missing=allow_missing):
                out.append(item)
    return out


def _filter_passes(step: Filter, item: Any, *, allow_missing: bool) -> bool:
    if step.op == "exists":
        try:
            return bool(_eval_path(step.left, [item], allow_missing=allow_missing))
        except JSONPathError:
            return False
    lefts = _eval_path(step.left, [item], allow_missing=allow_missing)
    if not lefts:
        return False
    if len(lefts) > 1:
        raise JSONPathError("can only compare one element at a time")
    rights = _eval_path(step.right, [item], allow_missing=allow_missing)
    if not rights:
        return False
    if len(rights) > 1:
        raise JSONPathError("can only compare one element at a time")
    return compare(step.op, lefts[0], rights[0])


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "invalid"


def compare(op: str, left: Any, right: Any) -> bool:
    """Go text/template's eq/ne/lt/gt/le/ge: both sides must be of one basic kind."""
    kl, kr = _kind(left), _kind(right)
    if kl == "invalid" or kr == "invalid":
        raise JSONPathError("invalid type for comparison")
    if kl != kr:
        raise JSONPathError("incompatible types for comparison")
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if kl == "bool":
        raise JSONPathError("invalid type for comparison")
    result: bool = {
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[op]
    return result


# ---------------------------------------------------------------------------
# Printing values the way Go prints them


def to_text(value: Any) -> str:
    """One value as ``PrintResults`` writes it (JSON for maps and lists)."""
    if isinstance(value, dict | list):
        return go_json(value)
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float_v(value)
    return str(value)


def go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of decoded JSON: sorted keys, HTML-safe escapes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_json(value)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_go_json_string(k)}:{go_json(value[k])}" for k in sorted(value))
        return "{" + ",".join(items) + "}"
    return _go_json_string(str(value))


_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _go_json_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _shortest_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``abs(value)`` and the decimal point position."""
    sign, digits, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    text = "".join(str(d) for d in digits).rstrip("0") or "0"
    assert isinstance(exponent, int)
    point = len(digits) + exponent  # digits before the decimal point
    return text, point


def _format_fixed(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _format_exp(digits: str, point: int, *, min_exp_digits: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exp = point - 1
    sign = "-" if exp < 0 else "+"
    return f"{mantissa}e{sign}{abs(exp):0{min_exp_digits}d}"


def _special(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return None


def go_float_v(value: float) -> str:
    """``fmt.Sprint(float64)``: shortest ``%g``, exponent form outside [1e-4, 1e6)."""
    special = _special(value)
    if special is not None:
        return special
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    digits, point = _shortest_digits(value)
    exp = point - 1
    sign = "-" if value < 0 else ""
    if exp < -4 or exp >= 6:
        return sign + _format_exp(digits, point, min_exp_digits=2)
    return sign + _format_fixed(digits, point)


def go_float_json(value: float) -> str:
    """``json.Marshal(float64)``: fixed notation, exponent below 1e-6 or from 1e21 on."""
    special = _special(value)
    if special is not None:
        return special
    if value == 0:
        return "0"
    digits, point = _shortest_digits(value)
    sign = "-" if value < 0 else ""
    if abs(value) < 1e-6 or abs(value) >= 1e21:
        return sign + _format_exp(digits, point, min_exp_digits=1)
    return sign + _format_fixed(digits, point)
