"""``resource.Quantity``: parsing, exact arithmetic and upstream's canonical string form.

A quantity is an exact rational number (a ``Fraction``) plus a format: DecimalSI
(``k M G``, ``m``...), BinarySI (``Ki Mi``...) or DecimalExponent (``1e3``).  Parsing rounds
to nano precision away from zero and caps BinarySI at 2^63-1, as upstream does.

The canonical form (what the apiserver writes back) keeps the number as an integer
mantissa with a suffix: decimal mantissas move factors of ten into an exponent that is a
multiple of three (``1500k``, ``500m``); binary quantities of at least 1024 that are whole
numbers use powers of 1024 (``1536Mi``), anything else falls back to DecimalSI.  Like
upstream, an input that is already canonical in its "fast path" shape is kept verbatim
(``+1`` and ``1.500`` round-trip unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT = "DecimalSI", "BinarySI", "DecimalExponent"

SPLIT_RE = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT = f"quantities must match the regular expression '{SPLIT_RE}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

_DEC_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DEC_SUFFIX_BY_EXP = {e: s for s, e in _DEC_SUFFIX.items()}
_BIN_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BIN_SUFFIX_BY_EXP = {e // 10: s for s, e in _BIN_SUFFIX.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_NANO = Fraction(1, 10**9)
_MAX_INT64 = 2**63 - 1


class QuantityError(ValueError):
    """An unparseable quantity; ``str()`` is upstream's message."""


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Fraction
    format: str = DECIMAL_SI
    text: str | None = None  # the input, when upstream would keep it verbatim

    def __str__(self) -> str:
        return self.text if self.text is not None else _canonical(self.value, self.format)

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value


def _split(text: str) -> tuple[bool, str, str, str, str]:
    """The fast scanner: (positive, value, numerator, denominator, suffix)."""
    positive, pos, end = True, 0, len(text)
    if text[0] in "+-":
        positive = text[0] == "+"
        pos = 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and text[pos].isdigit() and text[pos].isascii():
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, text, num, "", ""
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos].isdigit() and text[pos].isascii():
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos].isdigit() and text[pos].isascii():
        pos += 1
    if pos < end:
        raise QuantityError(ERR_FORMAT)
    return positive, value, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) of a suffix."""
    if suffix in _DEC_SUFFIX:
        return 10, _DEC_SUFFIX[suffix], DECIMAL_SI
    if suffix in _BIN_SUFFIX:
        return 2, _BIN_SUFFIX[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        exp = suffix[1:]
        body = exp[1:] if exp[0] in "+-" else exp
        if body.isdigit() and body.isascii():
            n = int(exp)
            if -(2**63) <= n < 2**63:
                return 10, n, DECIMAL_EXPONENT
    raise QuantityError(ERR_SUFFIX)


def _kept_verbatim(*, num: str, denom: str, exponent: int, fmt: str) -> bool:
    """Whether upstream's fast path caches the input string as the canonical form."""
    if fmt == BINARY_SI:
        if exponent < 0 or denom:
            return False
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        if precision < 0:
            return False
        value = int(num)
        return value * (1 << exponent) <= _MAX_INT64 and exponent % 10 == 0 and value & 7 != 0
    precision = 18 - (len(num) + len(denom))
    scale = exponent - len(denom)
    if precision < 0 or scale < -9:
        return False
    shifted = num + denom
    if int(shifted) > _MAX_INT64:
        return False
    return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"


def parse(text: str | int | float) -> Quantity:
    """``resource.ParseQuantity`` (numbers are accepted as JSON numbers are)."""
    if isinstance(text, bool):
        raise QuantityError(ERR_FORMAT)
    if isinstance(text, int):
        text = str(text)
    elif isinstance(text, float):
        text = repr(text)
    text = text.strip()
    if not text:
        raise QuantityError(ERR_FORMAT)
    if text == "0":
        return Quantity(Fraction(0), DECIMAL_SI, "0")
    positive, _, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    if _kept_verbatim(num=num, denom=denom, exponent=exponent, fmt=fmt):
        verbatim: str | None = text
    else:
        verbatim = None
    amount = Fraction(int(num + denom), 10 ** len(denom))
    amount *= Fraction(10) ** exponent if base == 10 else Fraction(2) ** exponent
    if amount != 0 and amount.denominator != 1:
        scaled = amount / _NANO
        amount = math.ceil(scaled) * _NANO
    if fmt == BINARY_SI and amount > _MAX_INT64:
        amount = Fraction(_MAX_INT64)
    if fmt == BINARY_SI and 0 < amount < 1:
        fmt = DECIMAL_SI
    if not positive:
        amount = -amount
    return Quantity(amount, fmt, verbatim)


def _remove_factors(n: int, factor: int) -> tuple[int, int]:
    times = 0
    while n != 0 and n % factor == 0:
        n //= factor
        times += 1
    return n, times


def _canonical(value: Fraction, fmt: str) -> str:
    if value == 0:
        return "0"
    if fmt == BINARY_SI:
        if -1024 < value < 1024 or value.denominator != 1:
            fmt = DECIMAL_SI
        else:
            mantissa, times = _remove_factors(int(value), 1024)
            return f"{mantissa}{_BIN_SUFFIX_BY_EXP.get(times, '')}"
    # Decimal: integer mantissa * 10^exponent, exponent a multiple of three.
    sign = -1 if value < 0 else 1
    mag = abs(value)
    exponent = 0
    while mag.denominator != 1:
        mag *= 10
        exponent -= 1
    mantissa, times = _remove_factors(int(mag), 10)
    exponent += times
    while exponent % 3 != 0:
        mantissa *= 10
        exponent -= 1
    mantissa *= sign
    if fmt == DECIMAL_EXPONENT:
        return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
    suffix = _DEC_SUFFIX_BY_EXP.get(exponent)
    return f"{mantissa}{suffix}" if suffix is not None else f"{mantissa}e{exponent}"


def canonicalize(text: str | int | float) -> str:
    """The string the apiserver stores and returns for a quantity."""
    return str(parse(text))


def format_quantity(value: Fraction | int, fmt: str = DECIMAL_SI) -> str:
    """Canonical text of a computed value (``resource.NewQuantity(...).String()``)."""
    return _canonical(Fraction(value), fmt)


def compare(a: Quantity | str, b: Quantity | str) -> int:
    qa = a if isinstance(a, Quantity) else parse(a)
    qb = b if isinstance(b, Quantity) else parse(b)
    return (qa.value > qb.value) - (qa.value < qb.value)


def add(a: Quantity, b: Quantity) -> Quantity:
    """``q.Add(y)``: keeps the receiver's format unless it is zero."""
    fmt = b.format if a.value == 0 else a.format
    return Quantity(a.value + b.value, fmt)


def sub(a: Quantity, b: Quantity) -> Quantity:
    fmt = b.format if a.value == 0 else a.format
    return Quantity(a.value - b.value, fmt)


def _scaled_ceil(value: Fraction, scale: int) -> int:
    """ceil(value / 10^scale), away from zero for negatives (upstream's ScaledValue)."""
    scaled = value / Fraction(10) ** scale
    return math.ceil(scaled) if scaled >= 0 else -math.ceil(-scaled)


def value(q: Quantity | str) -> int:
    """``q.Value()``: the value rounded up to an integer."""
    return _scaled_ceil((q if isinstance(q, Quantity) else parse(q)).value, 0)


def milli_value(q: Quantity | str) -> int:
    """``q.MilliValue()``: ceil(q * 1000)."""
    return _scaled_ceil((q if isinstance(q, Quantity) else parse(q)).value, -3)


def is_valid(text: object) -> bool:
    try:
        parse(text)  # type: ignore[arg-type]
    except QuantityError:
        return False
    return True
