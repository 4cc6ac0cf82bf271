"""JavaScript Number(), String() and toFixed semantics, checked against hand-derived tables."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import js_number, js_string, js_truthy, to_fixed

NAN = "nan"

NUMBER_TABLE: list[tuple[object, object]] = [
    # strings: whitespace, empty, decimal, exponent
    ("", 0.0),
    ("   ", 0.0),
    ("\t\n\r\v\f", 0.0),
    ("\u00a0\ufeff\u2003\u3000\u2028", 0.0),
    ("4", 4.0),
    (" 4 ", 4.0),
    ("\u00a04\u205f", 4.0),
    ("4.0", 4.0),
    ("4.", 4.0),
    (".5", 0.5),
    ("-.5", -0.5),
    ("+3", 3.0),
    ("-3", -3.0),
    ("1e0", 1.0),
    ("1E3", 1000.0),
    ("2.5e-1", 0.25),
    ("5.e1", 50.0),
    ("1e400", math.inf),
    ("-1e400", -math.inf),
    ("Infinity", math.inf),
    ("+Infinity", math.inf),
    ("-Infinity", -math.inf),
    ("0.1", 0.1),
    ("007", 7.0),
    # hex / octal / binary: prefixes, no sign
    ("0x4", 4.0),
    ("0XfF", 255.0),
    ("0o17", 15.0),
    ("0O7", 7.0),
    ("0b101", 5.0),
    ("0B1", 1.0),
    ("-0x4", NAN),
    ("+0x4", NAN),
    ("0x", NAN),
    ("0b2", NAN),
    ("0o8", NAN),
    ("0x1p3", NAN),
    # not numbers in JavaScript (though some are for Python's float())
    ("Agree", NAN),
    ("A", NAN),
    ("inf", NAN),
    ("infinity", NAN),
    ("nan", NAN),
    ("NaN", NAN),
    ("1_000", NAN),
    ("1,5", NAN),
    ("4 4", NAN),
    ("e5", NAN),
    (".", NAN),
    ("+", NAN),
    ("--1", NAN),
    ("\u0664", NAN),  # Arabic-Indic digit four: Python's float() accepts it
    ("\x1c4", NAN),  # U+001C is whitespace to Python's strip(), not to JavaScript
    # non-strings
    (5, 5.0),
    (5.5, 5.5),
    (-0.0, -0.0),
    (True, 1.0),
    (False, 0.0),
    (None, 0.0),
    (10**400, math.inf),
    (-(10**400), -math.inf),
    ([], 0.0),
    ([7], 7.0),
    (["7"], 7.0),
    ([[" 8 "]], 8.0),
    ([None], 0.0),
    ([1, 2], NAN),
    ({}, NAN),
    ({"a": 1}, NAN),
    (math.inf, math.inf),
]


@pytest.mark.parametrize(("value", "expected"), NUMBER_TABLE)
def test_js_number(value: object, expected: object) -> None:
    got = js_number(value)
    if expected == NAN:
        assert math.isnan(got)
    else:
        assert got == expected
        assert math.copysign(1, got) == math.copysign(1, expected)  # type: ignore[arg-type]


STRING_TABLE: list[tuple[object, str]] = [
    (5, "5"),
    (5.0, "5"),
    (-0.0, "0"),
    (0.1, "0.1"),
    (1.5e-6, "0.0000015"),
    (1e-7, "1e-7"),
    (1.25e-7, "1.25e-7"),
    (1e21, "1e+21"),
    (1.5e300, "1.5e+300"),
    (123456789012345680000.0, "123456789012345680000"),
    (2.0**53 + 2, "9007199254740994"),
    (10**22, "1e+22"),
    (math.nan, "NaN"),
    (math.inf, "Infinity"),
    (-math.inf, "-Infinity"),
    (-2.5, "-2.5"),
    (True, "true"),
    (False, "false"),
    (None, "null"),
    ("A", "A"),
    ([1, [2, 3], None], "1,2,3,"),
    ({}, "[object Object]"),
]


@pytest.mark.parametrize(("value", "expected"), STRING_TABLE)
def test_js_string(value: object, expected: str) -> None:
    assert js_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (0, False),
        (0.0, False),
        (-0.0, False),
        (math.nan, False),
        ("", False),
        (False, False),
        (1, True),
        ("0", True),
        ("false", True),
        ([], True),
        ({}, True),
    ],
)
def test_js_truthy(value: object, expected: bool) -> None:
    assert js_truthy(value) is expected


TO_FIXED_TABLE = [
    # the binary value decides: 1.005 is 1.00499999999999989..., 0.125 is exact
    (1.005, 2, 1.0),
    (0.125, 2, 0.13),
    (0.375, 2, 0.38),
    (2.5, 0, 3.0),  # Python's round() would give 2
    (-2.5, 0, -3.0),  # half away from zero on the magnitude
    (0.5, 0, 1.0),
    (1.45, 1, 1.4),  # 1.4499999999999999555...
    (8.345, 2, 8.35),  # 8.3450000000000006394...
    (10.235, 2, 10.23),  # 10.234999999999999431...
    (0.00005, 4, 0.0001),  # 0.0000500000000000000024
    (6.7, 4, 6.7),
    (0.088291, 3, 0.088),
    (0.39524, 4, 0.3952),
    (0.45628231538902897, 4, 0.4563),
    (123.45678, 0, 123.0),
    (1e21, 2, 1e21),  # toFixed falls back to String(x)
    (-1e-10, 3, -0.0),
]


@pytest.mark.parametrize(("x", "digits", "expected"), TO_FIXED_TABLE)
def test_to_fixed(x: float, digits: int, expected: float) -> None:
    got = to_fixed(x, digits)
    assert got == expected
    assert math.copysign(1, got) == math.copysign(1, expected)


def test_to_fixed_non_finite() -> None:
    assert math.isnan(to_fixed(math.nan, 3))
    assert to_fixed(math.inf, 3) == math.inf
    with pytest.raises(ValueError):
        to_fixed(1.0, 101)


def exact(x: float, digits: int) -> float:
    return float(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        # values on or next to a rounding boundary, where a naive x*10^d fails
        st.builds(
            lambda k, d, ulps: (
                math.nextafter((k + 0.5) / 10**d, math.inf if ulps > 0 else -math.inf)
                if ulps
                else (k + 0.5) / 10**d
            ),
            st.integers(-(10**6), 10**6),
            st.integers(0, 4),
            st.integers(-1, 1),
        ),
    ),
    st.integers(0, 6),
)
def test_to_fixed_equals_decimal_half_up(x: float, digits: int) -> None:
    want = exact(x, digits)
    assert to_fixed(x, digits) == want
    assert to_fixed(-x, digits) == exact(-x, digits)
