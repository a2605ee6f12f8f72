"""Label selectors: the string syntax of ``?labelSelector=`` and ``metav1.LabelSelector``.

The parser is a transcription of apimachinery's ``labels.Parse`` (a small lexer plus a
recursive-descent parser) so that accepted inputs and error texts match upstream:
``unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt``.
Parsing happens once per request; matching runs once per object of a list, so every
requirement is compiled into a closure over a frozenset and ``Selector.matches`` is a
plain loop over those closures.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from k3py.apimachinery.gofmt import go_json, go_quote
from k3py.apimachinery.names import check_label_value, check_qualified_name
from k3py.server.errors import APIError, Cause

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
GREATER_THAN, LESS_THAN, EXISTS, DOES_NOT_EXIST = "gt", "lt", "exists", "!"
BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
ALL_OPERATORS = (*BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST)

Labels = Mapping[str, str]
_INT64 = re.compile(r"^[+-]?[0-9]+$")


class SelectorError(APIError):
    """A selector that does not parse or validate: 400 BadRequest with upstream's message."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "BadRequest", message)


class Requirement(NamedTuple):
    key: str
    operator: str
    values: tuple[str, ...]

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        vals = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({vals})"
        sym = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{sym}{vals}"


def _parse_int64(text: str) -> int | None:
    if not _INT64.match(text):
        return None
    n = int(text)
    return n if -(2**63) <= n < 2**63 else None


def _compile(req: Requirement) -> Callable[[Labels], bool]:
    key, op = req.key, req.operator
    if op in (IN, EQUALS, DOUBLE_EQUALS):
        if len(req.values) == 1:
            only = req.values[0]
            return lambda labels: labels.get(key) == only
        wanted = frozenset(req.values)
        return lambda labels: labels.get(key) in wanted
    if op in (NOT_IN, NOT_EQUALS):
        unwanted = frozenset(req.values)
        return lambda labels: labels.get(key) not in unwanted
    if op == EXISTS:
        return lambda labels: key in labels
    if op == DOES_NOT_EXIST:
        return lambda labels: key not in labels
    bound = _parse_int64(req.values[0]) if len(req.values) == 1 else None
    greater = op == GREATER_THAN

    def compare(labels: Labels) -> bool:
        raw = labels.get(key)
        value = _parse_int64(raw) if raw is not None else None
        if value is None or bound is None:
            return False
        return value > bound if greater else value < bound

    return compare


_PLAIN = re.compile(r"^[A-Za-z0-9._/-]+$")


def _needles(req: Requirement) -> tuple[bytes, ...] | None:
    """Byte strings one of which the JSON text of any object matching ``req`` contains
    (the quoted key or values, which JSON encoders write unescaped when they hold only
    these characters); None when there is nothing to look for."""
    if req.operator == EXISTS and _PLAIN.match(req.key):
        return (b'"' + req.key.encode() + b'"',)
    if req.operator in (IN, EQUALS, DOUBLE_EQUALS) and req.values:
        if all(_PLAIN.match(v) for v in req.values):
            return tuple(b'"' + v.encode() + b'"' for v in req.values)
    return None


class Selector:
    """A compiled AND of requirements (sorted by key, as upstream prints them)."""

    __slots__ = ("requirements", "nothing", "_checks", "_needles")

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(
            sorted(requirements, key=lambda r: r.key)
        )
        self.nothing = nothing
        self._checks = tuple(_compile(r) for r in self.requirements)
        self._needles = tuple(n for n in map(_needles, self.requirements) if n is not None)

    def may_match_json(self, raw: bytes) -> bool:
        """False when the object serialized (compact, unescaped, as orjson writes it) in
        ``raw`` cannot match: a cheap test before decoding it for :meth:`matches`."""
        if self.nothing:
            return False
        for needles in self._needles:
            if not any(n in raw for n in needles):
                return False
        return True

    @classmethod
    def everything(cls) -> Selector:
        return cls()

    @classmethod
    def match_nothing(cls) -> Selector:
        return cls(nothing=True)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (the nothing-selector is not empty)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Labels | None) -> bool:
        if self.nothing:
            return False
        if labels is None:
            labels = {}
        for check in self._checks:
            if not check(labels):
                return False
        return True

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have (``key=v`` or ``key in (v)``), else None."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return f"Selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Selector)
            and self.requirements == other.requirements
            and self.nothing == other.nothing
        )

    def __hash__(self) -> int:
        return hash((self.requirements, self.nothing))


# --- field.Error rendering ----------------------------------------------------------


def _render_value(value: Any) -> str:
    return go_quote(value) if isinstance(value, str) else go_json(value)


def _invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {_render_value(value)}: {detail}"


def _aggregate(errors: list[str]) -> str:
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _key_error(key: str, path: str) -> str | None:
    errs = check_qualified_name(key)
    return _invalid(path, key, "; ".join(errs)) if errs else None


def new_requirement(
    key: str, operator: str, values: Iterable[str], *, path: str = ""
) -> Requirement:
    """Validate like ``labels.NewRequirement``; raises SelectorError with upstream's text."""
    vals = list(values)
    prefix = path + "." if path else ""
    errors: list[str] = []
    if (err := _key_error(key, prefix + "key")) is not None:
        errors.append(err)
    vpath = prefix + "values"
    if operator in (IN, NOT_IN):
        if not vals:
            errors.append(
                _invalid(vpath, vals, "for 'in', 'notin' operators, values set can't be empty")
            )
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errors.append(
                _invalid(vpath, vals, "exact-match compatibility requires one single value")
            )
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errors.append(
                _invalid(vpath, vals, "values set must be empty for exists and does not exist")
            )
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errors.append(
                _invalid(vpath, vals, "for 'Gt', 'Lt' operators, exactly one value is required")
            )
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errors.append(
                    _invalid(
                        f"{vpath}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"
                    )
                )
    else:
        supported = ", ".join(go_quote(o) for o in ALL_OPERATORS)
        errors.append(
            f"{prefix}operator: Unsupported value: {go_quote(operator)}: "
            f"supported values: {supported}"
        )
    for i, v in enumerate(vals):
        if msgs := check_label_value(v):
            errors.append(_invalid(f"{vpath}[{i}][{key}]", v, "; ".join(msgs)))
    if errors:
        raise SelectorError(_aggregate(errors))
    return Requirement(key, operator, tuple(vals))


# --- lexer --------------------------------------------------------------------------

_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _IDENT, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(
    14
)
_LITERALS = {
    ")": _CLOSE,
    ",": _COMMA,
    "!": _NOT,
    "==": _DEQ,
    "=": _EQ,
    ">": _GT,
    "in": _IN,
    "<": _LT,
    "!=": _NEQ,
    "notin": _NOTIN,
    "(": _OPEN,
}
_SPECIAL = frozenset("=!(),><")
_SPACE = frozenset(" \t\r\n")


def _lex(text: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _SPACE:
            pos += 1
        if pos >= end:
            items.append((_EOS, ""))
            return items
        if text[pos] in _SPECIAL:
            buf, last, last_end = "", None, pos
            while pos < end and text[pos] in _SPECIAL:
                buf += text[pos]
                pos += 1
                if buf in _LITERALS:
                    last, last_end = (_LITERALS[buf], buf), pos
                elif last is not None:
                    pos -= 1
                    break
            if last is None:
                items.append((_ERROR, f"error expected: keyword found '{buf}'"))
            else:
                pos = last_end
                items.append(last)
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _SPACE:
            pos += 1
        word = text[start:pos]
        items.append((_LITERALS[word], word) if word in _LITERALS else (_IDENT, word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def lookahead(self, *, values: bool) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (_IN, _NOTIN):
            tok = _IDENT
        return tok, lit

    def consume(self, *, values: bool) -> tuple[int, str]:
        tok, lit = self.lookahead(values=values)
        self.pos += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(values=True)
            if tok in (_IDENT, _NOT):
                try:
                    reqs.append(self.requirement())
                except SelectorError as e:
                    raise SelectorError(f"unable to parse requirement: {e}") from None
                t, lit2 = self.consume(values=True)
                if t == _EOS:
                    return reqs
                if t != _COMMA:
                    raise SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
                t2, lit3 = self.lookahead(values=True)
                if t2 not in (_IDENT, _NOT):
                    raise SelectorError(f"found '{lit3}', expected: identifier after ','")
            elif tok == _EOS:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        key, operator = self.key_and_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, operator, ())
        operator = self.operator()
        values = self.value_set() if operator in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, operator, sorted(values))

    def key_and_operator(self) -> tuple[str, str]:
        operator = ""
        tok, lit = self.consume(values=True)
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, lit = self.consume(values=True)
        if tok != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        if (err := _key_error(lit, "<nil>")) is not None:
            raise SelectorError(err)
        if self.lookahead(values=True)[0] in (_EOS, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return lit, operator

    def operator(self) -> str:
        tok, lit = self.consume(values=False)
        ops = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN}
        ops.update({_NOTIN: NOT_IN, _NEQ: NOT_EQUALS})
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: {', '.join(BINARY_OPERATORS)}")
        return ops[tok]

    def value_set(self) -> set[str]:
        tok, lit = self.consume(values=True)
        if tok != _OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(values=True)
        if tok in (_IDENT, _COMMA):
            values = self.identifiers()
            if self.consume(values=True)[0] != _CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self.consume(values=True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(values=True)
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.lookahead(values=True)
                if tok2 == _CLOSE:
                    return values
                if tok2 != _COMMA:
                    raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            elif tok == _COMMA:
                if not values:
                    values.add("")
                tok2, _ = self.lookahead(values=True)
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    values.add("")
            else:
                raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.lookahead(values=True)
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume(values=True)
        if tok == _IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


# --- public entry points ------------------------------------------------------------


def parse(text: str) -> Selector:
    """Parse ``labelSelector`` syntax; raises SelectorError (an APIError 400)."""
    return Selector(_Parser(text).parse())


def parse_selector(text: str | None) -> Selector:
    """Parse a query parameter (None or empty: everything); errors are 400 BadRequest."""
    return parse(text) if text else Selector.everything()


def selector_from_set(labels: Mapping[str, str] | None) -> Selector:
    """Exact match on every pair (no validation, like ``labels.SelectorFromSet``)."""
    return Selector(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())


_LS_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def from_label_selector(ls: Mapping[str, Any] | None) -> Selector:
    """``metav1.LabelSelectorAsSelector``: None matches nothing, ``{}`` everything."""
    if ls is None:
        return Selector.match_nothing()
    match_labels = ls.get("matchLabels") or {}
    match_expressions = ls.get("matchExpressions") or []
    reqs = [new_requirement(k, EQUALS, (str(v),)) for k, v in match_labels.items()]
    for expr in match_expressions:
        op = expr.get("operator", "")
        if op not in _LS_OPERATORS:
            raise SelectorError(f"{go_quote(str(op))} is not a valid label selector operator")
        reqs.append(
            new_requirement(expr.get("key", ""), _LS_OPERATORS[op], expr.get("values") or ())
        )
    return Selector(reqs)


selector_from_label_selector = from_label_selector


def validate_label_selector(ls: Mapping[str, Any] | None, *, path: str) -> list[Cause]:
    """``metav1validation.ValidateLabelSelector``: 422 causes for an object's selector field."""
    causes: list[Cause] = []
    if ls is None:
        return causes

    def invalid(field: str, value: Any, msg: str) -> None:
        body = f"Invalid value: {_render_value(value)}: {msg}"
        causes.append({"reason": "FieldValueInvalid", "message": body, "field": field})

    for k, v in (ls.get("matchLabels") or {}).items():
        for msg in check_qualified_name(k):
            invalid(f"{path}.matchLabels", k, msg)
        for msg in check_label_value(v if isinstance(v, str) else str(v)):
            invalid(f"{path}.matchLabels", v, msg)
    for i, expr in enumerate(ls.get("matchExpressions") or []):
        epath = f"{path}.matchExpressions[{i}]"
        op, values = expr.get("operator", ""), expr.get("values") or []
        if op in ("In", "NotIn"):
            if not values:
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value: must be specified when `operator` is "
                        "'In' or 'NotIn'",
                        "field": f"{epath}.values",
                    }
                )
        elif op in ("Exists", "DoesNotExist"):
            if values:
                causes.append(
                    {
                        "reason": "FieldValueForbidden",
                        "message": "Forbidden: may not be specified when `operator` is "
                        "'Exists' or 'DoesNotExist'",
                        "field": f"{epath}.values",
                    }
                )
        else:
            invalid(f"{epath}.operator", op, "not a valid selector operator")
        for msg in check_qualified_name(expr.get("key", "")):
            invalid(f"{epath}.key", expr.get("key", ""), msg)
        for j, v in enumerate(values):
            for msg in check_label_value(v):
                invalid(f"{epath}.values[{j}]", v, msg)
    return causes


__all__ = [
    "Requirement",
    "Selector",
    "SelectorError",
    "from_label_selector",
    "new_requirement",
    "parse",
    "parse_selector",
    "selector_from_label_selector",
    "selector_from_set",
    "validate_label_selector",
]
