"""Text verifiers: exact (the final answer), contains (a substring), regex (a pattern anywhere)."""
from __future__ import annotations

import re
from typing import Any

from lessonlab.core.verifiers.answers import find_answer, normalise
from lessonlab.core.verifiers.registry import VerifierKind, register
from lessonlab.core.verifiers.spec import VerifierSpecError, check_fields, require, type_name
from lessonlab.core.verifiers.verdict import Verdict, quote

_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "a": re.ASCII}


# --------------------------------------------------------------------------- exact

def _validate_exact(spec: dict) -> None:
    check_fields(spec, "exact", {"answer"})
    answer = require(spec, "answer", "exact")
    if not isinstance(answer, str) or not answer.strip():
        raise VerifierSpecError(f'exact verifier: "answer" must be a non-empty string, got {type_name(answer)}')


def _score_exact(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    answer, marked = find_answer(output)
    expected = spec["answer"]
    if normalise(answer) == normalise(expected):
        return Verdict(1.0, f"correct: {quote(expected)}")
    note = "" if marked else ' (no "Answer:" line; compared the last line)'
    return Verdict(0.0, f"expected {quote(expected)}, got {quote(answer)}{note}")


# --------------------------------------------------------------------------- contains

def _validate_contains(spec: dict) -> None:
    check_fields(spec, "contains", {"text", "case_sensitive"})
    text = require(spec, "text", "contains")
    if not isinstance(text, str) or not text:
        raise VerifierSpecError(f'contains verifier: "text" must be a non-empty string, got {type_name(text)}')
    if not isinstance(spec.get("case_sensitive", False), bool):
        raise VerifierSpecError('contains verifier: "case_sensitive" must be true or false')


def _score_contains(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    text = spec["text"]
    if spec.get("case_sensitive", False):
        found = text in output
    else:
        found = text.casefold() in output.casefold()
    if found:
        return Verdict(1.0, f"found {quote(text)}")
    return Verdict(0.0, f"{quote(text)} not found in the response")


# --------------------------------------------------------------------------- regex

def _compile_regex(pattern: Any, flags: Any) -> re.Pattern:
    if not isinstance(pattern, str) or not pattern:
        raise VerifierSpecError(f'regex verifier: "pattern" must be a non-empty string, got {type_name(pattern)}')
    if not isinstance(flags, str):
        raise VerifierSpecError(f'regex verifier: "flags" must be a string such as "i", got {type_name(flags)}')
    value = 0
    for letter in flags:
        if letter not in _REGEX_FLAGS:
            raise VerifierSpecError(f'regex verifier: unknown flag "{letter}" (allowed: {"".join(_REGEX_FLAGS)})')
        value |= _REGEX_FLAGS[letter]
    try:
        return re.compile(pattern, value)
    except re.error as exc:
        raise VerifierSpecError(f"regex verifier: invalid pattern {pattern!r}: {exc}") from None


def _validate_regex(spec: dict) -> None:
    check_fields(spec, "regex", {"pattern", "flags"})
    _compile_regex(require(spec, "pattern", "regex"), spec.get("flags", ""))


def _score_regex(spec: dict, output: str) -> Verdict:
    compiled = _compile_regex(spec["pattern"], spec.get("flags", ""))
    match = compiled.search(output)
    shown = quote(spec["pattern"], 100)
    if match:
        return Verdict(1.0, f"pattern {shown} matched {quote(match.group(0), 100)}")
    suffix = " (empty response)" if not output.strip() else ""
    return Verdict(0.0, f"pattern {shown} not found in the response{suffix}")


register("exact", VerifierKind(_validate_exact, _score_exact))
register("contains", VerifierKind(_validate_contains, _score_contains))
register("regex", VerifierKind(_validate_regex, _score_regex, may_hang=lambda spec: True))
