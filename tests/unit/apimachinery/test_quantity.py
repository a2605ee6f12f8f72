"""resource.Quantity parsing, canonical form and arithmetic."""

from __future__ import annotations

from fractions import Fraction

import pytest

from k3py.apimachinery import quantity as q

CANONICAL = [
    ("1000m", "1"),
    ("0.5", "500m"),
    ("1024Mi", "1Gi"),
    ("1.5Gi", "1536Mi"),
    ("100M", "100M"),
    ("1500k", "1500k"),
    ("1e3", "1e3"),
    ("12e-1", "1200e-3"),
    ("8Ki", "8Ki"),
    ("2048Ki", "2Mi"),
    ("1025Ki", "1025Ki"),
    ("0.5Gi", "512Mi"),
    ("1.1Ki", "1126400m"),
    ("0.1", "100m"),
    ("0.0000000001", "1n"),
    ("5e-10", "1e-9"),
    ("-1.5Gi", "-1536Mi"),
    ("-0", "0"),
    ("00", "0"),
    (".5", "500m"),
    ("0.500", "500m"),
    ("1023", "1023"),
    ("8Ei", "9223372036854775807"),
    # Inputs upstream keeps verbatim because they are already in fast-path form.
    ("+1", "+1"),
    ("1.500", "1.500"),
    ("1.", "1."),
    (1, "1"),
    (0.25, "250m"),
    (2.0, "2"),
]


@pytest.mark.parametrize(("text", "expected"), CANONICAL)
def test_canonical(text: str | int | float, expected: str) -> None:
    assert q.canonicalize(text) == expected


@pytest.mark.parametrize(
    ("text", "value", "milli"),
    [
        ("1.5", 2, 1500),
        ("100m", 1, 100),
        ("1Gi", 2**30, 2**30 * 1000),
        ("1n", 1, 1),
        ("-1.5", -2, -1500),
    ],
)
def test_values(text: str, value: int, milli: int) -> None:
    assert q.value(text) == value
    assert q.milli_value(text) == milli


def test_exact_values_and_formats() -> None:
    assert q.parse("1.5Gi").value == Fraction(3 * 2**29)
    assert q.parse("1Ki").format == q.BINARY_SI
    assert q.parse("0.5Ki").format == q.BINARY_SI  # 512, at least one
    assert q.parse("1e3").format == q.DECIMAL_EXPONENT
    assert q.parse("100m").format == q.DECIMAL_SI


@pytest.mark.parametrize("text", ["abc", "1Zi", "1.2.3", "1 Gi", "", True])
def test_invalid(text: object) -> None:
    with pytest.raises(q.QuantityError) as info:
        q.parse(text)  # type: ignore[arg-type]
    assert str(info.value) == q.ERR_FORMAT


@pytest.mark.parametrize("text", ["1e", "1i", "--1"])
def test_bad_suffix(text: str) -> None:
    with pytest.raises(q.QuantityError, match="^unable to parse quantity.s suffix$"):
        q.parse(text)


def test_arithmetic_and_compare() -> None:
    assert str(q.add(q.parse("1Gi"), q.parse("512Mi"))) == "1536Mi"
    assert str(q.sub(q.parse("1"), q.parse("250m"))) == "750m"
    assert str(q.add(q.parse("0"), q.parse("1Ki"))) == "1Ki"
    assert q.compare("1Gi", "1000Mi") == 1
    assert q.compare("1000m", "1") == 0
    assert q.compare("999m", "1") == -1
    assert q.parse("1") < q.parse("2")
    assert q.format_quantity(1536, q.BINARY_SI) == "1536"
    assert q.format_quantity(2048, q.BINARY_SI) == "2Ki"
    assert q.is_valid("10Mi") and not q.is_valid("ten")
