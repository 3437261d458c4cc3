"""Reading the answer out of a reply: the final answer line, the numbers in it, a normalised form."""
from __future__ import annotations

import functools
import re
from fractions import Fraction

_THINK_RE = re.compile(r"^\s*<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_ANSWER_RE = re.compile(r"(\*\*|__)?\banswer\s*(\*\*|__)?\s*:", re.IGNORECASE)
_FENCE_LINE_RE = re.compile(r"^`{3,}[\w+-]*$")


def find_answer(output: str) -> tuple[str, bool]:
    """The final answer and whether it came from an 'Answer:' marker (else it is the last line)."""
    text = _THINK_RE.sub("", output or "", count=1)  # a reasoning block is not part of the reply
    match = None
    for match in _ANSWER_RE.finditer(text):
        pass
    if match is None:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return (lines[-1] if lines else ""), False
    rest = text[match.end():]
    opening, closing = match.group(1), match.group(2)
    first, _, after = rest.partition("\n")
    first = first.strip()
    if opening and not closing:
        # "**Answer:** 3" or "**Answer: 3**": drop the bold marker that closes around the label.
        if first.startswith(opening):
            first = first[len(opening):].strip()
        elif first.endswith(opening):
            first = first[: -len(opening)].strip()
    if first:
        return first, True
    # "Answer:" alone on its line: the answer is the next non-empty line (code fences skipped).
    for line in after.splitlines():
        line = line.strip()
        if line and not _FENCE_LINE_RE.match(line):
            return line, True
    return "", True


def final_answer(output: str) -> str:
    """The final answer of a reply: the text after the last 'Answer:' line marker (case-insensitive), else the last non-empty line."""
    return find_answer(output)[0]


_WRAPPERS = (("**", "**"), ("__", "__"), ("`", "`"), ('"', '"'), ("'", "'"),
             ("“", "”"), ("‘", "’"), ("*", "*"))


def unwrap(text: str) -> str:
    """Strip surrounding quotes, backticks and bold/italic markers, repeatedly."""
    changed = True
    while changed:
        changed = False
        text = text.strip()
        for left, right in _WRAPPERS:
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left): len(text) - len(right)]
                changed = True
                break
    return text


def normalise(text: str) -> str:
    """Casefolded, whitespace-collapsed answer without wrappers or one trailing period."""
    text = unwrap(text)
    if text.endswith("."):
        text = unwrap(text[:-1])
    return " ".join(text.casefold().split())


# A number: optional sign (only when not glued to a preceding word, so "5-3" is 5 and 3),
# then a fraction a/b, or digits with optional thousands separators, decimals and exponent.
_NUMBER_RE = re.compile(
    r"(?<![\w.])(?P<sign>[-+−]?)"
    r"(?:(?P<num>\d+)\s*/\s*(?P<den>\d+)(?![\d.,])"
    r"|(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>\.\d+)?(?P<exp>[eE][-+]?\d+)?)"
)


def numbers_in(text: str) -> list[Fraction]:
    """All numbers in text, in order, as exact fractions."""
    values = []
    for m in _NUMBER_RE.finditer(text):
        if m.group("num") is not None:
            if int(m.group("den")) == 0:
                continue
            value = Fraction(int(m.group("num")), int(m.group("den")))
        else:
            exponent = m.group("exp") or ""
            if exponent and abs(int(exponent[1:])) > 400:
                continue  # "1e999999999" would take ages to expand exactly; no real answer looks like that
            digits = m.group("int").replace(",", "")
            if not exponent and m.group("frac") is None:
                value = Fraction(int(digits))  # a whole number: int() is several times cheaper than parsing a Fraction
            else:
                try:
                    value = Fraction(digits + (m.group("frac") or "") + exponent)
                except (ValueError, OverflowError):
                    continue
        values.append(-value if m.group("sign") in ("-", "−") else value)
    return values


@functools.lru_cache(maxsize=4096, typed=True)  # typed: True, 1 and 1.0 stay apart; a Fraction is immutable
def to_fraction(value: int | float) -> Fraction:
    """Exact value of a spec number; repr() keeps 0.1 as 1/10 rather than its binary approximation."""
    return Fraction(value) if isinstance(value, int) else Fraction(repr(float(value)))


def format_number(value: Fraction, digits: int = 12) -> str:
    """Show integers as integers and everything else as a short decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.{digits}g}"
