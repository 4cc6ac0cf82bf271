"""JavaScript number semantics the v1.2.1 engine depended on: Number(), String(), toFixed."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
from numbers import Real

__all__ = ["js_number", "js_string", "js_truthy", "to_fixed"]

_INF = math.inf
_NAN = math.nan

# ECMAScript WhiteSpace and LineTerminator code points (what String.prototype.trim and
# Number() strip). Python's str.strip() would also strip U+001C..U+001F and U+0085,
# which JavaScript keeps.
JS_WHITESPACE = (
    "\u0009\u000a\u000b\u000c\u000d\u0020\u00a0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)

# StrDecimalLiteral of ECMA-262 7.1.4.1.1, ASCII digits only (Python's \d would also
# accept other Unicode digits, and float() would accept "1_0", "inf" and "nan").
_DECIMAL = re.compile(
    r"[+-]?(?:Infinity|[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
)
_NON_DECIMAL = re.compile(r"0(?:[xX]([0-9a-fA-F]+)|[oO]([0-7]+)|[bB]([01]+))")

_DECIMAL_CONTEXT = Context(prec=120)
_QUANTUM = tuple(Decimal(1).scaleb(-d) for d in range(101))
_POW10 = tuple(10.0**d for d in range(23))
# Below this the fast toFixed path's product is precise enough to trust (see to_fixed).
_FAST_LIMIT = float(2**50)


def _int_to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:
        return _INF if value > 0 else -_INF


def _string_to_number(text: str) -> float:
    s = text.strip(JS_WHITESPACE)
    if not s:
        return 0.0
    if _DECIMAL.fullmatch(s):
        if s[-1] == "y":  # [+-]Infinity
            return -_INF if s[0] == "-" else _INF
        return float(s)  # correctly rounded, like the JavaScript conversion
    m = _NON_DECIMAL.fullmatch(s)
    if m:
        hexa, octal, binary = m.groups()
        if hexa is not None:
            return _int_to_float(int(hexa, 16))
        if octal is not None:
            return _int_to_float(int(octal, 8))
        return _int_to_float(int(binary, 2))
    return _NAN


def js_number(value: object) -> float:
    """Convert like JavaScript `Number(value)` (JSON-shaped values; dicts give NaN)."""
    if value is None:
        return 0.0
    if value is True:
        return 1.0
    if value is False:
        return 0.0
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return _int_to_float(value)
    if isinstance(value, str):
        return _string_to_number(value)
    if isinstance(value, (list, tuple)):
        # ToPrimitive(array) is its join(","): [] -> "" -> 0, [5] -> "5" -> 5.
        return _string_to_number(js_string(value))
    if isinstance(value, Real):  # numpy scalars, Fraction, ...
        try:
            return float(value)
        except (OverflowError, ValueError):
            return _NAN
    if isinstance(value, Decimal):
        return float(value)
    return _NAN


def _float_to_string(x: float) -> str:
    """JavaScript Number::toString(x) for radix 10."""
    if x != x:
        return "NaN"
    if x == 0.0:
        return "0"  # both +0 and -0
    if x in (_INF, -_INF):
        return "Infinity" if x > 0 else "-Infinity"
    sign = "-" if x < 0 else ""
    # repr() gives the shortest round-tripping digits, as ECMAScript requires.
    _, digit_tuple, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    assert isinstance(exp, int)
    exp += len(digit_tuple) - len(digits)
    k = len(digits)
    n = k + exp  # the decimal point sits after n digits
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        e = n - 1
        mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
        body = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + body


def js_string(value: object) -> str:
    """Convert like JavaScript `String(value)`: String(5) == String(5.0) == "5", null -> "null"."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if -(2**53) <= value <= 2**53:
            return str(value)
        return _float_to_string(_int_to_float(value))
    if isinstance(value, float):
        return _float_to_string(value)
    if isinstance(value, (list, tuple)):
        return ",".join("" if v is None else js_string(v) for v in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    if isinstance(value, Real):
        return _float_to_string(js_number(value))
    return str(value)


def js_truthy(value: object) -> bool:
    """JavaScript truthiness: false for null, false, 0, -0, NaN and ""; true otherwise."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)):
        return value == value and value != 0
    if isinstance(value, str):
        return value != ""
    return True


def _to_fixed_exact(x: float, digits: int) -> float:
    q = Decimal(x).quantize(_QUANTUM[digits], rounding=ROUND_HALF_UP, context=_DECIMAL_CONTEXT)
    return float(q)


def to_fixed(x: float, digits: int) -> float:
    """JavaScript `Number(x.toFixed(digits))`: round half up on the exact binary value."""
    if not 0 <= digits <= 100:
        raise ValueError("toFixed digits must be in 0..100")
    if x != x or x in (_INF, -_INF) or abs(x) >= 1e21:
        return x  # toFixed falls back to String(x) here; Number() gives x back
    if digits > 22:
        return _to_fixed_exact(x, digits)
    scale = _POW10[digits]
    a = -x if x < 0 else x
    s = a * scale
    if s < _FAST_LIMIT:
        f = math.floor(s)
        frac = s - f  # exact
        # s differs from the exact product a*10^digits by at most half an ulp, so a
        # fraction clearly away from .5 decides the same way the exact value does.
        if abs(frac - 0.5) > s * 1e-15 + 1e-300:
            k = f + 1 if frac > 0.5 else f
            r = k / scale  # correctly rounded quotient == Number("k/10^digits")
            return -r if x < 0 else r
    return _to_fixed_exact(x, digits)
