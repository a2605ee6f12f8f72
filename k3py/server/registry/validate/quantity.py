"""``resource.Quantity`` as apimachinery parses, compares and prints it.

A quantity is a decimal number with a suffix (``500m``, ``1Gi``, ``1e3``).  Parsing
rounds up to nano precision; the canonical string (what the API server writes
back) picks the largest SI or binary suffix that keeps the mantissa an integer,
so ``0.5`` prints ``500m`` and ``1024Mi`` prints ``1Gi`` -- unless the input already
looks canonical to upstream's parser fast path, which then keeps it verbatim
(``1.500`` and ``+1`` round-trip unchanged).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_UP, Decimal, localcontext

REGEX_TEXT = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT = f"quantities must match the regular expression '{REGEX_TEXT}'"
ERR_SUFFIX = "unable to parse quantity's suffix"

DECIMAL_SI = "DecimalSI"
BINARY_SI = "BinarySI"
DECIMAL_EXPONENT = "DecimalExponent"

_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DEC_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_BIN_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
_NANO = Decimal("1e-9")
_MILLI = Decimal("1e-3")
_DIGITS = "0123456789"


class QuantityError(ValueError):
    pass


@dataclass(frozen=True)
class Quantity:
    value: Decimal
    format: str = DECIMAL_SI
    text: str | None = None  # the input, when upstream keeps it verbatim (see _verbatim)

    def __str__(self) -> str:
        return self.text if self.text is not None else canonical(self)

    def sign(self) -> int:
        return (self.value > 0) - (self.value < 0)

    def int_value(self) -> int:
        """``Value()``: rounded up to an integer."""
        return int(self.value.to_integral_value(rounding=ROUND_CEILING))

    def milli_value(self) -> int:
        return int((self.value * 1000).to_integral_value(rounding=ROUND_CEILING))

    def round_up_milli(self) -> Quantity:
        """``RoundUp(-3)``: what ``SetDefaults_ResourceList`` does to every value."""
        if self.value == self.value.quantize(_MILLI, rounding=ROUND_UP):
            return self
        return Quantity(self.value.quantize(_MILLI, rounding=ROUND_UP), self.format)


def _verbatim(number: str, exponent: int, fmt: str) -> bool:
    """Whether ``ParseQuantity`` caches the input string as the quantity's text.

    Upstream's fast path keeps an input that is already "canonical looking" as it was
    written (``1.500`` stays ``1.500``; ``1000`` becomes ``1k``, ``0.5`` becomes ``500m``).
    """
    int_part, _, denom = number.lstrip("+-").partition(".")
    num = int_part.lstrip("0") or "0"
    if fmt == BINARY_SI:
        if exponent < 0 or denom:
            return False
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        scale = 0
    else:
        precision = 18 - (len(num) + len(denom))
        scale = exponent - len(denom)
    if precision < 0 or scale < -9:
        return False
    shifted = num + denom
    if int(shifted) >= 2**63:
        return False
    if fmt == BINARY_SI:
        return exponent % 10 == 0 and int(shifted) & 0x07 != 0
    return int(math.fmod(scale, 3)) == 0 and not shifted.endswith("000") and shifted[0] != "0"


def _take(s: str, pos: int, chars: str) -> int:
    while pos < len(s) and s[pos] in chars:
        pos += 1
    return pos


def _split(text: str) -> tuple[str, str]:
    """(signed number, suffix) following ``parseQuantityString``."""
    pos = 1 if text[:1] in "+-" else 0
    pos = _take(text, pos, _DIGITS)
    if pos < len(text) and text[pos] == ".":
        pos = _take(text, pos + 1, _DIGITS)
    number, start = text[:pos], pos
    pos = _take(text, pos, "eEinumkKMGTP")
    if pos < len(text) and text[pos] in "+-":
        pos += 1
    if _take(text, pos, _DIGITS) != len(text):
        raise QuantityError(ERR_FORMAT)
    return number, text[start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """(base, exponent, format) for a suffix, as ``quantitySuffixer.interpret``."""
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:].lstrip("+-")
        if digits.isdigit():
            return 10, int(suffix[1:]), DECIMAL_EXPONENT
    raise QuantityError(ERR_SUFFIX)


_PARSED: dict[str, Quantity] = {}


def parse(raw: object) -> Quantity:
    """Parse a JSON value (string or number) into a Quantity; raise QuantityError."""
    if type(raw) is str:
        # Quantities are immutable and the same few texts recur ("100m", "128Mi").
        hit = _PARSED.get(raw)
        if hit is None:
            hit = _parse(raw)
            if len(raw) <= 64:
                if len(_PARSED) >= 4096:
                    _PARSED.clear()
                _PARSED[raw] = hit
        return hit
    return _parse(raw)


def _parse(raw: object) -> Quantity:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise QuantityError(ERR_FORMAT)
    text = raw.strip() if isinstance(raw, str) else repr(raw)
    if not text:
        raise QuantityError(ERR_FORMAT)
    if text == "0":
        return Quantity(Decimal(0), DECIMAL_SI, "0")
    number, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    digits = number.lstrip("+-")
    if digits in ("", "."):
        digits = "0"
    with localcontext() as ctx:
        ctx.prec = 100
        amount = Decimal(digits if not digits.endswith(".") else digits[:-1] or "0")
        amount = amount * (Decimal(base) ** exponent)
        if number.startswith("-"):
            amount = -amount
        if amount != amount.quantize(_NANO, rounding=ROUND_UP):
            amount = amount.quantize(_NANO, rounding=ROUND_UP)
    exponent = _interpret(suffix)[1]
    return Quantity(amount, fmt, text if _verbatim(number, exponent, fmt) else None)


def _go_mod3(e: int) -> int:
    return int(math.fmod(e, 3))


def canonical(q: Quantity) -> str:
    """``Quantity.String()``."""
    v = q.value
    if v == 0:
        return "0"
    fmt = q.format
    if fmt == BINARY_SI and (-1024 < v < 1024 or v != v.to_integral_value()):
        fmt = DECIMAL_SI
    sign = "-" if v < 0 else ""
    if fmt == BINARY_SI:
        mantissa, exp = int(abs(v)), 0
        while mantissa % 1024 == 0 and exp < len(_BIN_SUFFIX) - 1:
            mantissa //= 1024
            exp += 1
        return f"{sign}{mantissa}{_BIN_SUFFIX[exp]}"
    _, digit_tuple, exp10 = abs(v).normalize().as_tuple()
    assert isinstance(exp10, int)
    mantissa = int("".join(map(str, digit_tuple)))
    r = _go_mod3(exp10)
    if r in (1, -2):
        mantissa, exp10 = mantissa * 10, exp10 - 1
    elif r in (2, -1):
        mantissa, exp10 = mantissa * 100, exp10 - 2
    if fmt == DECIMAL_SI and exp10 in _DEC_SUFFIX:
        suffix = _DEC_SUFFIX[exp10]
    else:
        suffix = f"e{exp10}" if exp10 else ""
    return f"{sign}{mantissa}{suffix}"


def try_parse(raw: object) -> Quantity | None:
    try:
        return parse(raw)
    except QuantityError:
        return None
