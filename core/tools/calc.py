"""The `calc` tool set: exact `add`, `sub`, `mul`, `div` on integers, decimals and fractions, never floats.

Numbers go in as JSON numbers or as text ("0.1", "-3/4", "1e3"); the work is done on fractions, so
0.1 + 0.2 is 0.3, and a result is written as an exact decimal when it has one, else as a fraction ("1/3").
Numbers are capped in size so that no call can run for long.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

from lessonlab.core.tools.registry import ToolError, ToolSet, register, tool

MAX_NUMBER_CHARS = 200
_DECIMAL_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?$")
_FRACTION_RE = re.compile(r"^[+-]?\d+\s*/\s*[+-]?\d+$")
_NUMBER = (["number", "string"], "a number: an integer, a decimal such as 2.5, or a fraction such as 1/3 as text")


def to_exact(value: object, name: str) -> Fraction:
    """The exact value of an argument; ToolError for anything that is not a number of reasonable size."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ToolError(f"{name} must be a number, got {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ToolError(f"{name} must be a finite number")
        text = repr(value)  # the shortest text that reads back as this float: 0.1, not 0.1000000000000000055
    else:
        text = str(value).strip().replace("_", "")
    if len(text) > MAX_NUMBER_CHARS:
        raise ToolError(f"{name} has more than {MAX_NUMBER_CHARS} characters")
    if _DECIMAL_RE.match(text):
        return Fraction(text)
    if _FRACTION_RE.match(text):
        top, bottom = (int(part) for part in text.split("/"))
        if bottom == 0:
            raise ToolError(f"{name} is a fraction with denominator 0")
        return Fraction(top, bottom)
    raise ToolError(f"{name} must be a number such as 12, -2.5 or 1/3, got {text[:40]!r}")


def exact_text(value: Fraction) -> str:
    """An exact decimal when the value has one (0.3, 12, -1.25), else the fraction in lowest terms (1/3)."""
    if value.denominator == 1:
        return str(value.numerator)
    rest = value.denominator
    twos = fives = 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    digits = str(abs(value.numerator) * 10 ** places // value.denominator).rjust(places + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def add(a: object, b: object) -> str:
    """Add two numbers exactly: returns a + b."""
    return exact_text(to_exact(a, "a") + to_exact(b, "b"))


def sub(a: object, b: object) -> str:
    """Subtract exactly: returns a - b."""
    return exact_text(to_exact(a, "a") - to_exact(b, "b"))


def mul(a: object, b: object) -> str:
    """Multiply two numbers exactly: returns a * b."""
    return exact_text(to_exact(a, "a") * to_exact(b, "b"))


def div(a: object, b: object) -> str:
    """Divide exactly: returns a / b as an exact decimal, or as a fraction such as 1/3 when it has no exact decimal."""
    divisor = to_exact(b, "b")
    if divisor == 0:
        raise ToolError("division by zero")
    return exact_text(to_exact(a, "a") / divisor)


_OPERANDS = {"a": _NUMBER, "b": _NUMBER}
CALC = ToolSet("calc", tuple(tool(f, _OPERANDS) for f in (add, sub, mul, div)))
register(CALC)
