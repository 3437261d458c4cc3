"""The numeric verifier: the last number on the final answer line, within a tolerance."""
from __future__ import annotations

import math

from lessonlab.core.verifiers.answers import find_answer, format_number, numbers_in, to_fraction
from lessonlab.core.verifiers.registry import VerifierKind, register
from lessonlab.core.verifiers.spec import VerifierSpecError, check_fields, is_number, require, type_name
from lessonlab.core.verifiers.verdict import Verdict

DEFAULT_TOLERANCE = 1e-6


def _validate(spec: dict) -> None:
    check_fields(spec, "numeric", {"answer", "tolerance"})
    answer = require(spec, "answer", "numeric")
    if not is_number(answer) or not math.isfinite(answer):
        raise VerifierSpecError(f'numeric verifier: "answer" must be a finite number, got {type_name(answer)}')
    tolerance = spec.get("tolerance", DEFAULT_TOLERANCE)
    if not is_number(tolerance) or not math.isfinite(tolerance) or tolerance < 0:
        raise VerifierSpecError('numeric verifier: "tolerance" must be a non-negative number')


def _score(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    expected = to_fraction(spec["answer"])
    tolerance = to_fraction(spec.get("tolerance", DEFAULT_TOLERANCE))
    answer, marked = find_answer(output)
    found = numbers_in(answer)
    note = ""
    if not found:
        found = numbers_in(output)
        note = " (no number on the final answer line; used the last number in the response)"
    elif not marked:
        note = ' (no "Answer:" line; used the last line)'
    if not found:
        return Verdict(0.0, "no number found in the response")
    got = found[-1]
    off = abs(got - expected)
    if off <= tolerance:
        return Verdict(1.0, f"correct: {format_number(got)}")
    return Verdict(0.0, f"expected {format_number(expected)}, got {format_number(got)} "
                        f"(off by {format_number(off, 6)}, tolerance {format_number(tolerance, 6)}){note}")


register("numeric", VerifierKind(_validate, _score))
